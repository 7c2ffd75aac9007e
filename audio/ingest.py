"""From sound to memory: utterances (live or from a recording) are transcribed, stored as clips and
transcript turns in an audio session, and indexed like chat.

`index` is any callable that indexes turns not yet indexed (the application hands in
`TurnIndex(store, embedder).index_pending`); without it, turns are indexed at the next recall.
"""
from __future__ import annotations

import bisect
import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Callable

import numpy as np

from memory.clock import to_iso
from memory.store import Store

from .clips import Clip, ClipStore, delete_clip, drop_session_if_empty
from .errors import AudioFileError
from .transcribe import SAMPLE_RATE, Segment, Transcriber, Transcript, load_audio
from .vad import Utterance, VadSettings

Progress = Callable[[float, float], None]     # (seconds of audio done, seconds in all)


@dataclass
class IngestResult:
    session_id: int
    clips: list[Clip] = field(default_factory=list)
    duration: float = 0.0            # seconds of audio
    speech_seconds: float = 0.0      # seconds the VAD kept
    seconds: float = 0.0             # wall time spent, indexing included
    transcribe_seconds: float = 0.0  # wall time to VAD, transcribe and store (no indexing)
    duplicate: bool = False          # the same sound was ingested before (session_id): nothing was stored

    @property
    def text(self) -> str:
        return "\n".join(c.text for c in self.clips)


def audio_digest(audio: np.ndarray) -> str:
    """What a recording holds, whatever its file: a hash of its decoded 16 kHz samples (the same sound
    copied, renamed or stored as FLAC instead of WAV has the same digest)."""
    return hashlib.sha256(np.ascontiguousarray(audio, dtype=np.float32).tobytes()).hexdigest()[:32]


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
        return self.add_utterances(session_id, [(utterance, started)])[0]

    def add_utterances(self, session_id: int, items: list[tuple[Utterance, datetime]]) -> list[Clip | None]:
        """Transcribe several utterances in one Whisper pass and store each as its own clip.

        Whisper pads every call to 30 s of audio, so one call per short utterance costs many times
        the speech; here the utterances are joined with short gaps (up to ~28 s) and the words are
        handed back to the utterance they were heard in (word timestamps)."""
        clips: list[Clip | None] = []
        for batch in _batches(items):
            for (u, started), transcript in zip(batch, self._transcribe_joined([u for u, _ in batch])):
                clips.append(self.clips.add(session_id, u.audio, started, transcript))
        if self.index is not None and any(clips):
            self.index()
        return clips

    def _transcribe_joined(self, utterances: list[Utterance]) -> list[Transcript]:
        if len(utterances) == 1:
            u = utterances[0]
            return [self.transcriber.transcribe(u.audio, word_timestamps=True)]
        gap = np.zeros(int(JOIN_GAP_S * SAMPLE_RATE), dtype=np.float32)
        parts, spans, pos = [], [], 0
        for u in utterances:
            parts += [u.audio, gap]
            spans.append((pos / SAMPLE_RATE, (pos + len(u.audio)) / SAMPLE_RATE))
            pos += len(u.audio) + len(gap)
        joined = self.transcriber.transcribe(np.concatenate(parts), word_timestamps=True)
        per: list[list[Segment]] = [[] for _ in utterances]
        for seg in joined.segments:
            pieces = _split_by_spans(spans, seg)
            for piece, i in pieces:
                a = spans[i][0]
                piece.start, piece.end = max(0.0, piece.start - a), max(0.0, piece.end - a)
                for w in piece.words:
                    w.start, w.end = max(0.0, w.start - a), max(0.0, w.end - a)
                per[i].append(piece)
        return [Transcript(segs, joined.language, u.duration) for segs, u in zip(per, utterances)]

    def end_session(self, session_id: int) -> None:
        """Drop the session if nothing was heard in it."""
        with self.store.db.conn:
            drop_session_if_empty(self.store, session_id)

    # -- recordings -------------------------------------------------------------------------------
    def ingest_file(self, path: str | Path, started: datetime, *, title: str | None = None,
                    progress: Progress | None = None, on_clip: Callable[[Clip], None] | None = None,
                    ) -> IngestResult:
        """Ingest a recording as if it had been heard from `started` (an aware datetime).

        Silence is skipped with the Silero VAD; speech is cut on pauses into clips, with the same
        settings as live listening. Each clip is stored as soon as it is transcribed. A recording whose
        sound was ingested before (at any time, from any file) is skipped: the result says `duplicate`
        and names the session that holds it.
        """
        import time

        from faster_whisper.vad import VadOptions, get_speech_timestamps

        t0 = time.perf_counter()
        path = Path(path)
        audio = load_audio(path)
        if not len(audio):
            raise AudioFileError(f"{path} holds no sound (it is 0 seconds long); nothing was stored.")
        duration = len(audio) / SAMPLE_RATE
        external_id = f"audio:{audio_digest(audio)}"
        existing = self.store.session_by_external_id(external_id)
        if existing is not None:
            return IngestResult(existing, duration=duration, duplicate=True, seconds=time.perf_counter() - t0)
        opts = self.settings.faster_whisper_options()
        chunks = get_speech_timestamps(audio, VadOptions(**opts))
        # Until the whole recording is stored the session is marked unfinished: a run cut off (a kill, a
        # crash) is then done again from the start instead of passing for a complete one.
        unfinished = UNFINISHED + external_id
        self._forget_unfinished(unfinished)
        session_id = self.start_session(started, title or f"Recording {path.name}", unfinished)
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

        spans = [(c["start"] / SAMPLE_RATE, c["end"] / SAMPLE_RATE) for c in chunks]

        def on_segment(seg: Segment) -> None:
            for piece, i in _split_by_spans(spans, seg):
                add_piece(piece, i, i)
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
        result.transcribe_seconds = time.perf_counter() - t0
        if self.index is not None and result.clips:
            self.index()
        with self.store.db.conn:
            self.store.db.execute("UPDATE sessions SET external_id = ? WHERE id = ?", [external_id, session_id])
        self.end_session(session_id)
        result.seconds = time.perf_counter() - t0
        return result

    def _forget_unfinished(self, unfinished: str) -> None:
        """Forget what an ingest of the same recording that was cut off had stored (clips and files)."""
        session_id = self.store.session_by_external_id(unfinished)
        if session_id is None:
            return
        ids = [r[0] for r in self.store.db.execute("SELECT id FROM audio_clips WHERE session_id = ?",
                                                   [session_id]).fetchall()]
        for clip_id in ids:
            delete_clip(self.store, clip_id)
        with self.store.db.conn:
            self.store.db.execute("DELETE FROM sessions WHERE id = ?", [session_id])


UNFINISHED = "unfinished:"   # external_id prefix of a recording's session while it is being ingested


JOIN_GAP_S = 0.6          # silence put between utterances transcribed together
BATCH_SPEECH_S = 27.0     # at most this much audio (gaps included) in one Whisper pass


def _batches(items: list) -> list[list]:
    batches, cur, total = [], [], 0.0
    for item in items:
        d = item[0].duration + JOIN_GAP_S
        if cur and total + d > BATCH_SPEECH_S:
            batches.append(cur)
            cur, total = [], 0.0
        cur.append(item)
        total += d
    if cur:
        batches.append(cur)
    return batches


def _split_by_spans(spans: list[tuple[float, float]], seg: Segment) -> list[tuple[Segment, int]]:
    """Cut a segment of joined audio into pieces per utterance span (by word midpoints)."""
    starts = [a for a, _ in spans]

    def which(t: float) -> int:   # the span holding t, else the nearer neighbour
        i = max(0, bisect.bisect_right(starts, t) - 1)
        if t < spans[i][1] or i + 1 == len(spans):
            return i
        return i if t - spans[i][1] <= spans[i + 1][0] - t else i + 1

    if not seg.words:
        return [(Segment(seg.start, seg.end, seg.text), which((seg.start + seg.end) / 2))]
    pieces: list[tuple[Segment, int]] = []
    for w in seg.words:
        i = which((w.start + w.end) / 2)
        if pieces and pieces[-1][1] == i:
            p = pieces[-1][0]
            p.words.append(w)
            p.end = w.end
            p.text += " " + w.text
        else:
            pieces.append((Segment(w.start, w.end, w.text, [w]), i))
    return pieces


class LiveBatcher:
    """Collects utterances while listening and stores them in batches: when ~`max_speech_s` of speech
    is waiting, or the oldest has waited `max_delay_s` of stream time, or at `flush()`.
    Feed it from Listener(on_utterance=batcher.add, on_tick=batcher.tick)."""

    def __init__(self, ingestor: "AudioIngestor", session_id: int, *, max_speech_s: float = 20.0,
                 max_delay_s: float = 30.0, on_clip: Callable[[Clip], None] | None = None):
        self.ingestor = ingestor
        self.session_id = session_id
        self.max_speech_s = max_speech_s
        self.max_delay_s = max_delay_s
        self.on_clip = on_clip
        self.pending: list[tuple[Utterance, datetime]] = []
        self.clips: list[Clip] = []

    def add(self, utterance: Utterance, started: datetime) -> None:
        self.pending.append((utterance, started))
        if sum(u.duration for u, _ in self.pending) >= self.max_speech_s:
            self.flush()

    def tick(self, stream_seconds: float) -> None:
        if self.pending and stream_seconds - self.pending[0][0].end_s >= self.max_delay_s:
            self.flush()

    def flush(self) -> list[Clip]:
        items, self.pending = self.pending, []
        if not items:
            return []
        stored = [c for c in self.ingestor.add_utterances(self.session_id, items) if c is not None]
        self.clips += stored
        for c in stored:
            if self.on_clip:
                self.on_clip(c)
        return stored
