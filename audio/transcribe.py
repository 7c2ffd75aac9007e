"""Speech to text, offline: faster-whisper (CTranslate2; int8 on CPU, float16 on CUDA when present).

Segment timestamps are always kept (seconds from the start of the audio handed in); word timestamps on
request. Audio is float32 mono at 16 kHz (`SAMPLE_RATE`).
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .errors import AudioFileError, WhisperModelMissing
from .whisper_models import DEFAULT_WHISPER, WHISPER_MODELS, Progress, resolve_whisper

SAMPLE_RATE = 16000


@dataclass
class Word:
    start: float
    end: float
    text: str
    probability: float = 1.0


@dataclass
class Segment:
    """A stretch of speech; `start`/`end` are seconds from the start of the audio transcribed."""

    start: float
    end: float
    text: str
    words: list[Word] = field(default_factory=list)

    def to_dict(self) -> dict:
        d = {"start": round(self.start, 2), "end": round(self.end, 2), "text": self.text}
        if self.words:
            d["words"] = [[round(w.start, 2), round(w.end, 2), w.text] for w in self.words]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Segment":
        words = [Word(s, e, t) for s, e, t in d.get("words", [])]
        return cls(d["start"], d["end"], d["text"], words)


@dataclass
class Transcript:
    segments: list[Segment]
    language: str
    duration: float          # seconds of audio handed in

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.segments if s.text).strip()


def cuda_available() -> bool:
    try:
        import ctranslate2

        return ctranslate2.get_cuda_device_count() > 0
    except Exception:
        return False


def load_audio(path: str | os.PathLike) -> np.ndarray:
    """Any recording ffmpeg/PyAV can read, as float32 mono at 16 kHz."""
    path = Path(path)
    if not path.exists():
        raise AudioFileError(f"There is no file {path}; check the path.")
    try:
        from faster_whisper import decode_audio

        return decode_audio(str(path), sampling_rate=SAMPLE_RATE)
    except OSError as e:    # PyAV's own errors for a file it may not open are OSErrors too
        raise AudioFileError(f"Cannot read {path} ({e.strerror or 'it could not be opened'}); check its "
                             "permissions.") from e
    except Exception as e:  # PyAV raises its own error types for what is not audio it knows
        raise AudioFileError(f"{path} is not an audio file the app can read; use a recording in WAV, FLAC, MP3 "
                             "or OGG.") from e


class Transcriber:
    """A Whisper model loaded once (lazily, thread-safe) and used for many transcriptions.

    beam_size=1 (greedy) is the default: on 2 CPU cores it is several times faster than beam search
    for a small loss in accuracy; pass beam_size=5 for best accuracy.
    """

    def __init__(self, model: str = DEFAULT_WHISPER, *, models_dir: Path | None = None,
                 device: str = "auto", compute_type: str | None = None, cpu_threads: int = 0,
                 beam_size: int = 1, word_timestamps: bool = False, language: str | None = None,
                 progress: Progress | None = None):
        self.model_name = model
        self.models_dir = models_dir
        self.auto_device = device == "auto"
        self.device = ("cuda" if cuda_available() else "cpu") if device == "auto" else device
        self.notice = ""
        self.compute_type = compute_type or ("float16" if self.device == "cuda" else "int8")
        self.cpu_threads = cpu_threads or (os.cpu_count() or 2)
        self.beam_size = beam_size
        self.word_timestamps = word_timestamps
        spec = WHISPER_MODELS.get(model)
        self.language = language or ("en" if spec and spec.english_only else None)
        self.progress = progress
        self._model = None
        self._lock = threading.Lock()

    def load(self):
        with self._lock:
            if self._model is None:
                path = resolve_whisper(self.model_name, self.models_dir, self.progress)
                try:
                    self._model = self._open(path)
                except (RuntimeError, ValueError, OSError) as e:
                    if not (self.auto_device and self.device == "cuda"):
                        raise WhisperModelMissing(
                            f"The speech model at {path} could not be loaded ({e}); reinstall its package.") from e
                    # CTranslate2 sees a GPU but cannot use it (e.g. no CUDA 12 cuBLAS/cuDNN): use the CPU.
                    self.notice = f"Speech recognition runs on the CPU: the GPU could not be used ({e})."
                    self.device, self.compute_type = "cpu", "int8"
                    self._model = self._open(path)
            return self._model

    def _open(self, path: Path):
        from faster_whisper import WhisperModel

        model = WhisperModel(str(path), device=self.device, compute_type=self.compute_type,
                             cpu_threads=self.cpu_threads, local_files_only=True)
        if self.device == "cuda":  # CUDA libraries load lazily: fail here, not in the first transcription
            list(model.transcribe(np.zeros(SAMPLE_RATE // 2, np.float32), language=self.language or "en")[0])
        return model

    def transcribe(self, audio: np.ndarray, *, language: str | None = None, vad: bool = False,
                   vad_parameters: dict | None = None, word_timestamps: bool | None = None,
                   on_segment: Callable[[Segment], None] | None = None) -> Transcript:
        """Transcribe float32 16 kHz mono audio. With vad=True, silence is skipped (Silero VAD) and the
        segment times still refer to the audio handed in."""
        model = self.load()
        audio = np.asarray(audio, dtype=np.float32).reshape(-1)
        duration = len(audio) / SAMPLE_RATE
        if len(audio) < SAMPLE_RATE // 10:
            return Transcript([], language or self.language or "", duration)
        with self._lock:  # one CTranslate2 call at a time per model
            segs, info = model.transcribe(
                audio, language=language or self.language, beam_size=self.beam_size,
                word_timestamps=self.word_timestamps if word_timestamps is None else word_timestamps,
                condition_on_previous_text=False,
                vad_filter=vad, vad_parameters=vad_parameters)
            out: list[Segment] = []
            for s in segs:
                text = s.text.strip()
                if not text:
                    continue
                words = [Word(w.start, w.end, w.word.strip(), w.probability) for w in (s.words or [])]
                seg = Segment(float(s.start), float(min(s.end, duration)), text, words)
                out.append(seg)
                if on_segment:
                    on_segment(seg)
        return Transcript(out, info.language, duration)
