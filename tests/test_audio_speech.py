"""Synthetic speech for the audio tests: espeak-ng, resampled to 16 kHz mono (sox, else Python).

The CI installs espeak-ng and sox (`apt-get install -y espeak-ng sox libportaudio2`)."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

RATE = 16000


def have_espeak() -> bool:
    return shutil.which("espeak-ng") is not None


needs_espeak = pytest.mark.skipif(not have_espeak(), reason="espeak-ng is not installed (apt-get install espeak-ng)")


def speak_file(text: str, path: Path, *, voice: str = "en-us", speed: int = 150) -> Path:
    """Write `text` spoken by espeak-ng to `path` as 16 kHz mono WAV."""
    raw = path.with_suffix(".raw.wav")
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(raw), text], check=True,
                   capture_output=True)
    if shutil.which("sox"):
        subprocess.run(["sox", str(raw), "-r", str(RATE), "-c", "1", "-b", "16", str(path)], check=True,
                       capture_output=True)
    else:
        import soundfile as sf
        from faster_whisper import decode_audio

        sf.write(str(path), decode_audio(str(raw), sampling_rate=RATE), RATE, subtype="PCM_16")
    raw.unlink()
    return path


def speak(text: str, tmp: Path, **kw) -> np.ndarray:
    """`text` spoken, as float32 16 kHz samples."""
    import soundfile as sf

    path = speak_file(text, tmp / f"s{abs(hash(text)) % 10**8}.wav", **kw)
    audio, rate = sf.read(str(path), dtype="float32")
    assert rate == RATE
    return audio


def silence(seconds: float, level: float = 0.0, seed: int = 0) -> np.ndarray:
    if level == 0.0:
        return np.zeros(int(seconds * RATE), dtype=np.float32)
    return (np.random.default_rng(seed).standard_normal(int(seconds * RATE)) * level).astype(np.float32)


def write_wav(path: Path, audio: np.ndarray) -> Path:
    import soundfile as sf

    sf.write(str(path), audio, RATE, subtype="PCM_16")
    return path


@needs_espeak
def test_espeak_makes_16k_speech(tmp_path):
    audio = speak("Hello there", tmp_path)
    assert audio.dtype == np.float32 and 0.3 < len(audio) / RATE < 5
    assert np.abs(audio).max() > 0.05
