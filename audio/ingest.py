"""From sound to memory: utterances (live or from a recording) are transcribed, stored as clips and
transcript turns in an audio session, and indexed like chat.

`index` is any callable that indexes turns not yet indexed (the application hands in
`TurnIndex(store, embedder).index_pending`); without it, turns are indexed at the next recall.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Callable

from memory.clock import to_iso
from memory.store import Store

from .clips import Clip, ClipStore
from .errors import AudioError
from .transcribe import SAMPLE_RATE, Segment, Transcriber, Transcript, load_audio
from .vad import Utterance, VadSettings

Progress = Callable[[float, float], None]     # (seconds of audio done, seconds in all)


class AlreadyIngested(AudioError):
    """The same recording was already ingested at the same start time."""


@dataclass
class IngestResult:
    session_id: int
    clips: list[Clip] = field(default_factory=list)
    duration: float = 0.0            # seconds of audio
    speech_seconds: float = 0.0      # seconds the VAD kept
    seconds: float = 0.0             # wall time spent

    @property
    def text(self) -> str:
        return "\n".join(c.text for c in self.clips)


def _file_digest(path: Path) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()[:16]


class AudioIngestor:
    def __init__(self, store: Store, transcriber: Transcriber, clips_dir: Path, *,
                 index: Callable[[], object] | None = None, settings: VadSettings | None = None):
        self.store = store
        self.transcriber = transcriber
        self.clips = ClipStore(store, clips_dir)
        self.index = index
        self.settings = settings or VadSettings()

    # -- live listening ---------------------------------------------------------------------------
    def start_session(self, started: datetime, title: str | None = None, external_id: str | None = None) -> int:
        local = started.astimezone()
        return self.store.new_session(title or f"Listening {local.strftime('%Y-%m-%d %H:%M')}",
                                      source="audio", started_at=to_iso(started), external_id=external_id)

    def add_utterance(self, session_id: int, utterance: Utterance, started: datetime) -> Clip | None:
        """Transcribe one utterance and store it (clip file, turn, index). None when no words were heard."""
        transcript = self.transcriber.transcribe(utterance.audio)
        clip = self.clips.add(session_id, utterance.audio, started, transcript)
        if clip is not None and self.index is not None:
            self.index()
        return clip

    def end_session(self, session_id: int) -> None:
        """Drop the session if nothing was heard in it."""
        n = self.store.db.execute("SELECT COUNT(*) FROM turns WHERE session_id = ?", [session_id]).fetchone()[0]
        if n == 0:
            with self.store.db.conn:
                self.store.db.execute("DELETE FROM sessions WHERE id = ?", [session_id])

    # -- recordings -------------------------------------------------------------------------------
    def ingest_file(self, path: str | Path, started: datetime, *, title: str | None = None,
                    progress: Progress | None = None, on_clip: Callable[[Clip], None] | None = None,
                    ) -> IngestResult:
        """Ingest a recording as if it had been heard from `started` (an aware datetime).

        Silence is skipped with the Silero VAD; speech is cut on pauses into clips, with the same
        settings as live listening. Each clip is stored as soon as it is transcribed.
        """
        import time

        from faster_whisper.vad import VadOptions, get_speech_timestamps

        t0 = time.perf_counter()
        path = Path(path)
        external_id = f"file:{_file_digest(path)}:{to_iso(started)}" if path.exists() else None
        audio = load_audio(path)
        existing = self.store.session_by_external_id(external_id) if external_id else None
        if existing is not None:
            raise AlreadyIngested(f"This recording was already ingested at that time (session {existing}); "
                                  "delete that session first or pass another --started-at.")
        duration = len(audio) / SAMPLE_RATE
        opts = self.settings.faster_whisper_options()
        chunks = get_speech_timestamps(audio, VadOptions(**opts))
        session_id = self.start_session(started, title or f"Recording {path.name}", external_id)
        result = IngestResult(session_id, duration=duration,
                              speech_seconds=sum(c["end"] - c["start"] for c in chunks) / SAMPLE_RATE)
        if progress:
            progress(0.0, duration)
        groups: list[list] = []          # [first_chunk, last_chunk, segments]

        def store_group(g) -> None:
            first, last, segs = g
            a, b = chunks[first]["start"], chunks[last]["end"]
            offset = a / SAMPLE_RATE
            span = (b - a) / SAMPLE_RATE
            rel = [Segment(min(max(0.0, s.start - offset), span), min(max(0.0, s.end - offset), span), s.text,
                           s.words) for s in segs]
            for s in rel:
                for w in s.words:
                    w.start, w.end = max(0.0, w.start - offset), max(0.0, w.end - offset)
            clip = self.clips.add(session_id, audio[a:b], started + timedelta(seconds=offset),
                                  Transcript(rel, self.transcriber.language or "", (b - a) / SAMPLE_RATE))
            if clip is not None:
                result.clips.append(clip)
                if on_clip:
                    on_clip(clip)

        def add_piece(seg: Segment, first: int, last: int) -> None:
            if groups and first <= groups[-1][1]:
                groups[-1][1] = max(groups[-1][1], last)
                groups[-1][2].append(seg)
            else:
                if groups:
                    store_group(groups[-1])
                groups.append([first, last, [seg]])

        def on_segment(seg: Segment) -> None:
            for piece, i in _split_by_chunk(chunks, seg):
                add_piece(piece, i, i)
            if not seg.words:
                add_piece(seg, *_chunk_range(chunks, seg))
            if progress:
                progress(min(seg.end, duration), duration)

        if chunks:
            # Word timestamps let a Whisper segment that spans a pause be split between two clips.
            self.transcriber.transcribe(audio, vad=True, vad_parameters=opts, word_timestamps=True,
                                        on_segment=on_segment)
            if groups:
                store_group(groups[-1])
        if progress:
            progress(duration, duration)
        if self.index is not None and result.clips:
            self.index()
        self.end_session(session_id)
        result.seconds = time.perf_counter() - t0
        return result


def _chunk_of(chunks: list[dict], t: float) -> int:
    sample = t * SAMPLE_RATE
    for i, c in enumerate(chunks):
        if sample < c["end"]:
            return i if sample >= c["start"] or i == 0 else (i if c["start"] - sample < sample - chunks[i - 1]["end"]
                                                             else i - 1)
    return len(chunks) - 1


def _split_by_chunk(chunks: list[dict], seg: Segment) -> list[tuple[Segment, int]]:
    """A segment with word timestamps, cut where its words fall in different VAD chunks."""
    pieces: list[tuple[Segment, int]] = []
    for w in seg.words:
        i = _chunk_of(chunks, (w.start + w.end) / 2)
        if pieces and pieces[-1][1] == i:
            p = pieces[-1][0]
            p.words.append(w)
            p.end = w.end
            p.text += " " + w.text
        else:
            pieces.append((Segment(w.start, w.end, w.text, [w]), i))
    return pieces


def _chunk_range(chunks: list[dict], seg: Segment) -> tuple[int, int]:
    """The VAD chunks a Whisper segment belongs to: the one its start falls in, and following ones only
    when it reaches more than half a second into them (ends restored by faster-whisper often land just
    past a chunk boundary)."""
    start = seg.start * SAMPLE_RATE + SAMPLE_RATE // 20
    end = seg.end * SAMPLE_RATE - SAMPLE_RATE // 2
    first = next((i for i, c in enumerate(chunks) if c["end"] > start), len(chunks) - 1)
    last = first
    while last + 1 < len(chunks) and chunks[last + 1]["start"] < end:
        last += 1
    return first, last
