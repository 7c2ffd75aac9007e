"""Microphone capture with sounddevice (PortAudio): 16 kHz mono float32 blocks, cut into utterances.

The sounddevice callback only copies the block into a queue; a worker thread runs the VAD and hands
finished utterances to `on_utterance` (where transcription and storage happen). Tests and benchmarks drive
the same `callback` with blocks of their own, without a sound card.
"""
from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable

import numpy as np

from .errors import AudioError, AudioUnavailable
from .vad import SAMPLE_RATE, Segmenter, Utterance, VadSettings

NO_PORTAUDIO = ("Cannot use the sound card: the PortAudio library is not installed (on Debian or Ubuntu: "
                "sudo apt-get install libportaudio2); you can still ingest a recording with "
                "`assistant listen --file REC.wav --started-at TIME`.")
NO_INPUT = ("No microphone was found on this computer; connect one, or ingest a recording with "
            "`assistant listen --file REC.wav --started-at TIME`.")
NO_OUTPUT = "No audio output device was found on this computer, so the clip cannot be played; open its file instead."


def import_sounddevice():
    """The sounddevice module, or AudioUnavailable when PortAudio is missing."""
    try:
        import sounddevice
    except OSError as e:  # raised at import when libportaudio is not found
        raise AudioUnavailable(NO_PORTAUDIO) from e
    return sounddevice


def check_device(sd, device=None, kind: str = "input") -> dict:
    """The device's info, or AudioUnavailable with one sentence when there is none."""
    try:
        info = sd.query_devices(device, kind=kind)
    except Exception as e:  # ValueError / sd.PortAudioError: no such device, no devices at all
        raise AudioUnavailable(NO_INPUT if kind == "input" else NO_OUTPUT) from e
    channels = info.get("max_input_channels" if kind == "input" else "max_output_channels", 0)
    if not channels:
        raise AudioUnavailable(NO_INPUT if kind == "input" else NO_OUTPUT)
    return info


def _open_input(callback, device, blocksize: int):
    sd = import_sounddevice()
    check_device(sd, device, "input")
    try:
        stream = sd.InputStream(samplerate=SAMPLE_RATE, channels=1, dtype="float32", blocksize=blocksize,
                                device=device, callback=callback)
        stream.start()
    except Exception as e:  # PortAudioError: busy device, unsupported rate...
        raise AudioUnavailable(f"The microphone could not be opened ({e}); check that no other program "
                               "holds it and that it supports 16 kHz mono.") from e
    return stream


MAX_QUEUED_SECONDS = 300.0   # sound waiting for the VAD and transcription (about 19 MB)


def plural_seconds(samples: int) -> str:
    seconds = round(samples / SAMPLE_RATE)
    return f"{seconds} second" + ("" if seconds == 1 else "s")


def level_dbfs(block: np.ndarray) -> float:
    rms = float(np.sqrt(np.mean(np.square(block)))) if len(block) else 0.0
    return 20 * np.log10(max(rms, 1e-6))


@dataclass
class ListenStatus:
    """What an indicator line shows. Updated by the worker thread."""

    started_at: datetime
    seconds: float = 0.0          # audio received
    utterances: int = 0           # utterances cut so far
    in_speech: bool = False
    level_db: float = -120.0
    overflows: int = 0
    dropped_seconds: float = 0.0  # sound not kept because transcribing fell behind
    last_text: str = ""


class Listener:
    """Listens until `stop()`: each utterance goes to `on_utterance(utterance, started_at)` in a worker
    thread, with `started_at` its UTC wall-clock start; `on_tick(stream_seconds)` after every block."""

    def __init__(self, on_utterance: Callable[[Utterance, datetime], None], *, device=None,
                 on_tick: Callable[[float], None] | None = None,
                 settings: VadSettings | None = None, block_ms: int = 100, segmenter: Segmenter | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
                 max_queued_seconds: float = MAX_QUEUED_SECONDS):
        self.on_utterance = on_utterance
        self.on_tick = on_tick
        self.device = device
        self.blocksize = SAMPLE_RATE * block_ms // 1000
        self.segmenter = segmenter or Segmenter(settings)
        self.clock = clock
        # Bounded: when transcribing falls this far behind, new sound is dropped (and said so), rather
        # than memory growing until the process dies with everything queued.
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, int(max_queued_seconds * 1000 / block_ms)))
        self._dropping = False
        self._worker: threading.Thread | None = None
        self._stream = None
        self.status = ListenStatus(started_at=clock())
        self.errors: list[BaseException] = []

    # The sounddevice callback: runs on PortAudio's thread, so it only copies and queues.
    def callback(self, indata, frames, time_info, status) -> None:
        if status and getattr(status, "input_overflow", False):
            self.status.overflows += 1
        block = np.asarray(indata, dtype=np.float32)
        try:
            self._queue.put_nowait(block[:, 0].copy() if block.ndim == 2 else block.copy())
            self._dropping = False
        except queue.Full:
            self.status.dropped_seconds += len(block) / SAMPLE_RATE
            if not self._dropping:   # one notice each time it falls behind
                self._dropping = True
                self.errors.append(AudioError(
                    f"transcribing fell more than {plural_seconds(self._queue.maxsize * self.blocksize)} "
                    "behind, so new sound is not kept until it catches up"))

    def start(self, open_stream: bool = True) -> "Listener":
        """Start the worker, and (unless open_stream=False, for feeding `callback` by hand) the microphone."""
        self.segmenter.reset()
        self.status = ListenStatus(started_at=self.clock())
        self._worker = threading.Thread(target=self._run, name="listener", daemon=True)
        self._worker.start()
        if open_stream:
            try:
                self._stream = _open_input(self.callback, self.device, self.blocksize)
            except BaseException:
                self._queue.put(None)
                self._worker.join()
                raise
        return self

    def stop(self) -> None:
        """Close the microphone, process what was queued, and cut the last open utterance."""
        if self._stream is not None:
            try:
                self._stream.stop()
                self._stream.close()
            finally:
                self._stream = None
        if self._worker is not None:
            self._queue.put(None)
            self._worker.join()
            self._worker = None

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Block until every queued block was processed (for tests and benchmarks)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.005)

    def _run(self) -> None:
        while True:
            block = self._queue.get()
            try:
                if block is None:
                    self._deliver(self.segmenter.flush())
                    return
                self.status.seconds += len(block) / SAMPLE_RATE
                self.status.level_db = level_dbfs(block)
                utterances = self.segmenter.feed(block)
                self.status.in_speech = self.segmenter.in_speech
                self._deliver(utterances)
                if self.on_tick is not None:
                    self._call(self.on_tick, self.status.seconds)
            finally:
                self._queue.task_done()

    def _deliver(self, utterances: list[Utterance]) -> None:
        for u in utterances:
            self.status.utterances += 1
            self._call(self.on_utterance, u, self.status.started_at + timedelta(seconds=u.start_s))

    def _call(self, fn, *args) -> None:
        try:
            fn(*args)
        except Exception as e:  # keep listening; the caller decides what to show
            self.errors.append(e)


class Recorder:
    """Records from the microphone between `start()` and `stop()` (a push-to-talk toggle)."""

    def __init__(self, device=None, max_seconds: float = 120.0, block_ms: int = 100):
        self.device = device
        self.max_samples = int(max_seconds * SAMPLE_RATE)
        self.blocksize = SAMPLE_RATE * block_ms // 1000
        self._blocks: list[np.ndarray] = []
        self._samples = 0
        self._stream = None
        self.full = threading.Event()
        self.level_db = -120.0

    def callback(self, indata, frames, time_info, status) -> None:
        if self._samples >= self.max_samples:
            self.full.set()
            return
        block = np.asarray(indata, dtype=np.float32)
        block = block[:, 0].copy() if block.ndim == 2 else block.copy()
        self._blocks.append(block)
        self._samples += len(block)
        self.level_db = level_dbfs(block)

    @property
    def seconds(self) -> float:
        return self._samples / SAMPLE_RATE

    def start(self, open_stream: bool = True) -> "Recorder":
        self._blocks, self._samples = [], 0
        self.full.clear()
        if open_stream:
            self._stream = _open_input(self.callback, self.device, self.blocksize)
        return self

    def stop(self) -> np.ndarray:
        if self._stream is not None:
            try:
                self._stream.stop()
                self._stream.close()
            finally:
                self._stream = None
        return np.concatenate(self._blocks) if self._blocks else np.zeros(0, np.float32)
