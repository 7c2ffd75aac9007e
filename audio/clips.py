"""Audio clips: one FLAC file per utterance in the clips directory, a row in `audio_clips`, and the
transcript stored as a turn (source 'audio') in the same transaction.

The clips directory is handed in by the application (a folder beside the database); nothing here
knows where that is. Folders made for clips are private (0700).
"""
from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from memory.clock import to_iso
from memory.facts import ROOM
from memory.folders import private_dirs
from memory.store import Store

from .capture import check_device, import_sounddevice
from .errors import AudioFileError
from .transcribe import SAMPLE_RATE, Segment, Transcript

SPEAKER = ROOM        # how transcripts of what was heard are attributed (turn.speaker)


@dataclass
class Clip:
    id: int
    turn_id: int | None
    session_id: int | None
    path: str
    started_at: str
    ended_at: str
    text: str = ""
    language: str | None = None
    segments: list[Segment] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"id": self.id, "turn_id": self.turn_id, "session_id": self.session_id, "path": self.path,
                "started_at": self.started_at, "ended_at": self.ended_at, "text": self.text,
                "language": self.language, "segments": [s.to_dict() for s in self.segments]}


_COLUMNS = ("c.id, c.turn_id, c.session_id, c.path, c.started_at, c.ended_at, COALESCE(t.text, ''), "
            "c.language, c.segments")


def _row_to_clip(row) -> Clip:
    *head, segs = row
    return Clip(*head, segments=[Segment.from_dict(d) for d in json.loads(segs or "[]")])


def write_flac(path: Path, audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Write 16-bit FLAC, readable only by the user."""
    import soundfile as sf

    private_dirs(path.parent)
    tmp = path.with_suffix(".partial")
    pcm = np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0)
    old = os.umask(0o077)
    try:
        sf.write(str(tmp), pcm, sample_rate, format="FLAC", subtype="PCM_16")
    finally:
        os.umask(old)
    os.replace(tmp, path)


class ClipStore:
    """Stores clips and their transcripts; queries them by time, turn or id."""

    def __init__(self, store: Store, clips_dir: Path | None = None):
        self.store = store
        self.clips_dir = Path(clips_dir) if clips_dir is not None else None

    def path_for(self, started: datetime) -> Path:
        if self.clips_dir is None:
            raise ValueError("ClipStore needs a clips directory to store clips")
        local = started.astimezone()
        name = f"{local.strftime('%H%M%S')}-{int(local.microsecond / 1000):03d}-{secrets.token_hex(3)}.flac"
        return self.clips_dir / local.strftime("%Y-%m-%d") / name

    def add(self, session_id: int, audio: np.ndarray, started: datetime, transcript: Transcript,
            *, speaker: str = SPEAKER, keep_empty: bool = False) -> Clip | None:
        """Store one utterance: FLAC file, transcript turn (created_at = when it was heard) and clip row.
        An utterance with no words is not kept (None) unless keep_empty."""
        text = transcript.text
        if not text and not keep_empty:
            return None
        ended = started + timedelta(seconds=len(audio) / SAMPLE_RATE)
        path = self.path_for(started)
        write_flac(path, audio)
        started_iso, ended_iso = to_iso(started), to_iso(ended)
        segments = json.dumps([s.to_dict() for s in transcript.segments])
        db = self.store.db
        try:
            with db.conn:
                turn_id = db.execute(
                    "INSERT INTO turns (session_id, role, speaker, text, created_at, source, status) "
                    "VALUES (?, 'user', ?, ?, ?, 'audio', 'complete')",
                    [session_id, speaker, text, started_iso]).lastrowid
                clip_id = db.execute(
                    "INSERT INTO audio_clips (session_id, turn_id, path, started_at, ended_at, sample_rate,"
                    " language, segments) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [session_id, turn_id, str(path), started_iso, ended_iso, SAMPLE_RATE,
                     transcript.language or None, segments]).lastrowid
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return Clip(clip_id, turn_id, session_id, str(path), started_iso, ended_iso, text,
                    transcript.language, list(transcript.segments))

    def get(self, clip_id: int) -> Clip | None:
        rows = self._query("c.id = ?", [clip_id])
        return rows[0] if rows else None

    def between(self, since: str, until: str, limit: int | None = None) -> list[Clip]:
        """Clips that started in [since, until), in time order."""
        sql = "c.started_at >= ? AND c.started_at < ? ORDER BY c.started_at, c.id"
        if limit:
            sql += f" LIMIT {int(limit)}"
        return self._query(sql, [since, until])

    def for_turns(self, turn_ids: list[int]) -> dict[int, Clip]:
        """turn_id -> clip, for the turns that came from a clip."""
        if not turn_ids:
            return {}
        marks = ",".join("?" * len(turn_ids))
        return {c.turn_id: c for c in self._query(f"c.turn_id IN ({marks})", list(turn_ids))}

    def recent(self, limit: int = 20) -> list[Clip]:
        return self._query("1 ORDER BY c.started_at DESC, c.id DESC LIMIT ?", [limit])

    def _query(self, where: str, params) -> list[Clip]:
        sql = f"SELECT {_COLUMNS} FROM audio_clips c LEFT JOIN turns t ON t.id = c.turn_id WHERE {where}"
        return [_row_to_clip(r) for r in self.store.db.execute(sql, params).fetchall()]


def _remove_turn_everywhere(store: Store, turn_id: int) -> None:
    """Delete a turn, its index entries (vector + full text) and the segments built from it (with
    their index entries; the other turns of such a segment stay findable through the turn index until
    they are segmented again). Caller holds the transaction."""
    from memory.index import HybridIndex

    db = store.db
    tables = set(store.tables())
    segment_ids = []
    if "segment_turns" in tables:
        segment_ids = [r[0] for r in db.execute("SELECT segment_id FROM segment_turns WHERE turn_id = ?",
                                                 [turn_id]).fetchall()]
    db.execute("DELETE FROM turns WHERE id = ?", [turn_id])
    if segment_ids:
        marks = ",".join("?" * len(segment_ids))
        db.execute(f"DELETE FROM segments WHERE id IN ({marks})", segment_ids)
        if "vectors_segment" in tables:
            HybridIndex(store, "segment").remove(segment_ids)
    HybridIndex(store, "turn").remove([turn_id])


def drop_session_if_empty(store: Store, session_id: int | None) -> bool:
    """Delete an audio session that holds no turns (nothing was heard, or its last clip was forgotten).
    Caller holds the transaction. Returns whether it was deleted."""
    if session_id is None:
        return False
    if store.db.execute("SELECT 1 FROM turns WHERE session_id = ? LIMIT 1", [session_id]).fetchone():
        return False
    return store.db.execute("DELETE FROM sessions WHERE id = ? AND source = 'audio'", [session_id]).rowcount > 0


def delete_clip(store: Store, clip_id: int) -> bool:
    """Forget a clip: its transcript turn, the turn's index entries, segments made from it, the clip row,
    the audio file, and its audio session when that was its last clip (summaries that saw the turn are
    marked stale by the database's triggers). Returns False when there is no such clip."""
    row = store.db.execute("SELECT turn_id, path, session_id FROM audio_clips WHERE id = ?", [clip_id]).fetchone()
    if row is None:
        return False
    turn_id, path, session_id = row
    store.db.execute("PRAGMA secure_delete = ON")
    with store.db.conn:
        if turn_id is not None:
            _remove_turn_everywhere(store, turn_id)
        store.db.execute("DELETE FROM audio_clips WHERE id = ?", [clip_id])
        drop_session_if_empty(store, session_id)
    Path(path).unlink(missing_ok=True)
    return True


def sweep_orphans(store: Store, clips_dir: Path | None = None, *, min_age_seconds: float = 0) -> int:
    """Remove clips whose turn was forgotten by other means (turn_id NULL), and, with clips_dir, audio
    files no row points to (a kill between writing a clip's file and committing its row leaves one).
    Files younger than min_age_seconds are kept: a listener in another process may be about to commit
    their rows. Returns how many files were removed."""
    removed = 0
    rows = store.db.execute("SELECT id, path FROM audio_clips WHERE turn_id IS NULL").fetchall()
    with store.db.conn:
        for clip_id, _ in rows:
            store.db.execute("DELETE FROM audio_clips WHERE id = ?", [clip_id])
    for _, path in rows:
        if Path(path).exists():
            Path(path).unlink()
            removed += 1
    if clips_dir is not None and Path(clips_dir).exists():
        known = {r[0] for r in store.db.execute("SELECT path FROM audio_clips").fetchall()}
        newest = time.time() - min_age_seconds
        for f in Path(clips_dir).rglob("*.flac"):
            if str(f) not in known and f.stat().st_mtime <= newest:
                f.unlink()
                removed += 1
    return removed


def play_clip(path: str | os.PathLike, *, device=None, blocking: bool = True) -> float:
    """Play a clip through the default output device; returns its duration in seconds.
    AudioUnavailable (one sentence) when there is no PortAudio or no output device."""
    import soundfile as sf

    sd = import_sounddevice()
    check_device(sd, device, "output")
    try:
        data, rate = sf.read(str(path), dtype="float32")
    except (RuntimeError, OSError) as e:
        raise AudioFileError(f"The clip file {path} cannot be read ({e}); it may have been deleted.") from e
    sd.play(data, rate, device=device)
    if blocking:
        sd.wait()
    return len(data) / rate


def stop_playback() -> None:
    try:
        import_sounddevice().stop()
    except Exception:
        pass
