"""Voice questions: record from the microphone (a push-to-talk toggle, or a fixed number of seconds, or
until the speaker pauses) and transcribe.

Terminals do not report key release, so push-to-talk is a toggle: `PushToTalk.start()` on the first key
press, `PushToTalk.stop()` on the second returns the transcribed question.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np

from .capture import Recorder
from .transcribe import SAMPLE_RATE, Transcriber, Transcript
from .vad import Segmenter, VadSettings


@dataclass
class VoiceQuestion:
    text: str
    seconds: float             # length of the recording
    transcript: Transcript
    audio: np.ndarray


def transcribe_question(transcriber: Transcriber, audio: np.ndarray) -> VoiceQuestion:
    """Silence around the words is skipped (VAD) so Whisper does not invent text in it."""
    transcript = transcriber.transcribe(audio, vad=True, vad_parameters=VadSettings().faster_whisper_options())
    return VoiceQuestion(transcript.text, len(audio) / SAMPLE_RATE, transcript, audio)


class PushToTalk:
    """start() opens the microphone; stop() closes it and returns the transcribed question."""

    def __init__(self, transcriber: Transcriber, *, device=None, max_seconds: float = 60.0,
                 recorder: Recorder | None = None):
        self.transcriber = transcriber
        self.recorder = recorder or Recorder(device=device, max_seconds=max_seconds)
        self.recording = False

    def start(self, open_stream: bool = True) -> None:
        """Raises AudioUnavailable (one sentence) when there is no microphone."""
        self.recorder.start(open_stream=open_stream)
        self.recording = True

    @property
    def seconds(self) -> float:
        return self.recorder.seconds

    @property
    def level_db(self) -> float:
        return self.recorder.level_db

    def stop(self) -> VoiceQuestion:
        audio = self.recorder.stop()
        self.recording = False
        return transcribe_question(self.transcriber, audio)

    def cancel(self) -> None:
        self.recorder.stop()
        self.recording = False


def record_question(transcriber: Transcriber, *, seconds: float | None = 10.0,
                    stop: threading.Event | None = None, until_pause: bool = False, device=None,
                    recorder: Recorder | None = None, open_stream: bool = True,
                    poll: float = 0.05) -> VoiceQuestion:
    """Record until `seconds` have passed, `stop` is set, or (until_pause) the speaker has spoken and
    paused; then transcribe. Blocking: run it in a worker thread from a UI."""
    recorder = recorder or Recorder(device=device, max_seconds=max(seconds or 0, 120.0))
    recorder.start(open_stream=open_stream)
    segmenter = Segmenter(VadSettings()) if until_pause else None
    fed = 0
    try:
        while True:
            if stop is not None and stop.is_set():
                break
            if seconds is not None and recorder.seconds >= seconds:
                break
            if recorder.full.is_set():
                break
            if segmenter is not None:
                blocks = recorder._blocks[fed:]
                fed += len(blocks)
                if any(segmenter.feed(b) for b in blocks):
                    break
            time.sleep(poll)
    finally:
        audio = recorder.stop()
    return transcribe_question(transcriber, audio)
