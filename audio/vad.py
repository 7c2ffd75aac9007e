"""Voice activity detection and utterance cutting, streaming, with the Silero VAD that faster-whisper
bundles (ONNX, offline).

`StreamingVAD` scores each 32 ms window (512 samples at 16 kHz) carrying the model's state from one block
to the next; `Segmenter` turns those scores into utterances cut on pauses. Silence costs one small ONNX
call per block and nothing else: no transcription, no storage.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SAMPLE_RATE = 16000
WINDOW = 512          # samples per VAD window (32 ms)
CONTEXT = 64          # samples of the previous window the model sees


class StreamingVAD:
    """Speech probability per 512-sample window, for audio that arrives in blocks of any size."""

    def __init__(self, session=None):
        if session is None:
            from faster_whisper.vad import get_vad_model

            session = get_vad_model().session
        self.session = session
        self.reset()

    def reset(self) -> None:
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(CONTEXT, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)

    def __call__(self, block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Feed a block; return (windows, probs): the complete windows now available (n x 512) and their
        speech probabilities. Samples that do not fill a window wait for the next block."""
        audio = np.concatenate([self._pending, np.asarray(block, dtype=np.float32).reshape(-1)])
        n = len(audio) // WINDOW
        self._pending = audio[n * WINDOW:]
        if n == 0:
            return np.zeros((0, WINDOW), dtype=np.float32), np.zeros(0, dtype=np.float32)
        windows = audio[: n * WINDOW].reshape(n, WINDOW)
        contexts = np.empty((n, CONTEXT), dtype=np.float32)
        contexts[0] = self._context
        if n > 1:
            contexts[1:] = windows[:-1, -CONTEXT:]
        self._context = windows[-1, -CONTEXT:].copy()
        batch = np.concatenate([contexts, windows], axis=1)
        probs, self._h, self._c = self.session.run(None, {"input": batch, "h": self._h, "c": self._c})
        return windows, np.asarray(probs, dtype=np.float32).reshape(-1)


@dataclass
class Utterance:
    """Speech cut on pauses. Samples count from the start of the stream (16 kHz)."""

    start_sample: int
    end_sample: int
    audio: np.ndarray

    @property
    def start_s(self) -> float:
        return self.start_sample / SAMPLE_RATE

    @property
    def end_s(self) -> float:
        return self.end_sample / SAMPLE_RATE

    @property
    def duration(self) -> float:
        return (self.end_sample - self.start_sample) / SAMPLE_RATE


@dataclass
class VadSettings:
    threshold: float = 0.5          # a window at or above this is speech
    neg_threshold: float = 0.35     # below this is silence; in between continues what was going on
    min_silence_ms: int = 700       # a pause this long ends an utterance
    speech_pad_ms: int = 250        # audio kept before and after the speech
    min_speech_ms: int = 250        # shorter bursts (clicks, coughs) are dropped
    max_utterance_s: float = 30.0   # longer speech is cut here (Whisper's window)

    def faster_whisper_options(self) -> dict:
        """The same settings for faster-whisper's offline `vad_filter` (file ingestion)."""
        return dict(threshold=self.threshold, neg_threshold=self.neg_threshold,
                    min_silence_duration_ms=self.min_silence_ms, speech_pad_ms=self.speech_pad_ms,
                    min_speech_duration_ms=self.min_speech_ms, max_speech_duration_s=self.max_utterance_s)


class Segmenter:
    """Cuts a stream into utterances: feed blocks, get the utterances that ended in them."""

    def __init__(self, settings: VadSettings | None = None, vad: StreamingVAD | None = None):
        self.s = settings or VadSettings()
        self.vad = vad or StreamingVAD()
        ms = SAMPLE_RATE // 1000
        self._pad_windows = max(1, self.s.speech_pad_ms * ms // WINDOW)
        self._min_silence = max(1, self.s.min_silence_ms * ms // WINDOW)
        self._min_speech = self.s.min_speech_ms * ms
        self._max_windows = int(self.s.max_utterance_s * SAMPLE_RATE) // WINDOW
        self.reset()

    def reset(self) -> None:
        self.vad.reset()
        self.position = 0                 # samples consumed (whole windows)
        self._preroll: list[np.ndarray] = []
        self._current: list[np.ndarray] = []
        self._start = 0
        self._speech_windows = 0
        self._silence_run = 0
        self.in_speech = False
        self.last_prob = 0.0

    def feed(self, block: np.ndarray) -> list[Utterance]:
        windows, probs = self.vad(block)
        out: list[Utterance] = []
        for window, p in zip(windows, probs):
            self.last_prob = float(p)
            if not self.in_speech:
                if p >= self.s.threshold:
                    self.in_speech = True
                    self._start = self.position - len(self._preroll) * WINDOW
                    self._current = self._preroll + [window]
                    self._preroll = []
                    self._speech_windows = 1
                    self._silence_run = 0
                else:
                    self._preroll.append(window)
                    if len(self._preroll) > self._pad_windows:
                        self._preroll.pop(0)
            else:
                self._current.append(window)
                if p < self.s.neg_threshold:
                    self._silence_run += 1
                elif p >= self.s.threshold:
                    self._silence_run = 0
                    self._speech_windows += 1
                else:
                    self._speech_windows += 1
                if self._silence_run >= self._min_silence:
                    out.extend(self._emit(trailing_silence=self._silence_run))
                elif len(self._current) >= self._max_windows:
                    out.extend(self._emit(trailing_silence=0, keep_going=True))
            self.position += WINDOW
        return out

    def flush(self) -> list[Utterance]:
        """End of stream: whatever speech is open becomes a last utterance."""
        if not self.in_speech:
            return []
        return self._emit(trailing_silence=self._silence_run)

    def _emit(self, trailing_silence: int, keep_going: bool = False) -> list[Utterance]:
        keep = len(self._current) - max(0, trailing_silence - self._pad_windows)
        audio = np.concatenate(self._current[:keep]) if keep > 0 else np.zeros(0, np.float32)
        start = self._start
        speech = self._speech_windows * WINDOW
        tail = self._current[keep:]
        self._current = []
        self._silence_run = 0
        self._speech_windows = 0
        if keep_going:
            self._start = self.position + WINDOW
        else:
            self.in_speech = False
            self._preroll = tail[-self._pad_windows:] if tail else []
        if speech < self._min_speech:
            return []
        return [Utterance(start, start + len(audio), audio)]
