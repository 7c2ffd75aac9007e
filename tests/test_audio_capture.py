"""Capture without a sound card: audio blocks go through the same callback the sounddevice stream
calls; the VAD cuts utterances on pauses. Also: no PortAudio / no microphone gives one sentence."""
from __future__ import annotations

import importlib.abc
import sys
import threading
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from click.testing import CliRunner

from audio import capture
from audio.capture import Listener, Recorder, check_device, import_sounddevice
from audio.errors import AudioUnavailable
from audio.vad import SAMPLE_RATE, Segmenter, StreamingVAD
from tests.test_audio_speech import needs_espeak, silence, speak

BLOCK = 1600  # 100 ms, what the live stream uses


def feed(target, audio: np.ndarray, block: int = BLOCK) -> None:
    """Drive `target.callback` the way PortAudio does: (frames x channels) float32 blocks."""
    for i in range(0, len(audio), block):
        chunk = audio[i:i + block].reshape(-1, 1)
        target.callback(chunk, len(chunk), None, None)


@pytest.fixture(scope="module")
def two_sentences(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("speech")
    a = speak("The meeting about the budget is moved to Thursday.", tmp)
    b = speak("Please call the plumber tomorrow morning.", tmp)
    audio = np.concatenate([silence(1.0), a, silence(2.5), b, silence(1.5)])
    return audio, len(a), len(b)


def test_streaming_vad_matches_block_size():
    """Probabilities do not depend on how the stream is cut into blocks."""
    rng = np.random.default_rng(1)
    audio = (rng.standard_normal(SAMPLE_RATE * 2) * 0.05).astype(np.float32)
    one = StreamingVAD()(audio)[1]
    vad = StreamingVAD()
    parts = [vad(audio[i:i + 700])[1] for i in range(0, len(audio), 700)]
    assert np.allclose(one, np.concatenate(parts), atol=1e-5)


def test_silence_makes_no_utterance():
    seg = Segmenter()
    out = []
    for i in range(0, SAMPLE_RATE * 5, BLOCK):
        out += seg.feed(silence(0.1, level=0.001, seed=i))
    out += seg.flush()
    assert out == []


@needs_espeak
def test_segmenter_cuts_on_pauses(two_sentences):
    audio, na, nb = two_sentences
    seg = Segmenter()
    utts = []
    for i in range(0, len(audio), BLOCK):
        utts += seg.feed(audio[i:i + BLOCK])
    utts += seg.flush()
    assert len(utts) == 2
    first, second = utts
    assert first.start_s == pytest.approx(1.0, abs=0.4)
    assert first.duration == pytest.approx(na / SAMPLE_RATE, abs=0.8)
    assert second.start_s == pytest.approx(1.0 + na / SAMPLE_RATE + 2.5, abs=0.4)
    assert len(first.audio) == first.end_sample - first.start_sample


@needs_espeak
def test_listener_callback_path(two_sentences):
    audio, na, _ = two_sentences
    t0 = datetime(2025, 3, 4, 14, 0, tzinfo=timezone.utc)
    got = []
    listener = Listener(lambda u, started: got.append((u, started)), clock=lambda: t0)
    listener.start(open_stream=False)
    feed(listener, audio)
    listener.stop()
    assert len(got) == 2
    assert got[0][1] == t0 + timedelta(seconds=got[0][0].start_s)
    assert abs((got[1][1] - t0).total_seconds() - (1.0 + na / SAMPLE_RATE + 2.5)) < 0.4
    assert listener.status.utterances == 2
    assert listener.status.seconds == pytest.approx(len(audio) / SAMPLE_RATE, abs=0.11)


def test_listener_keeps_going_when_handler_fails():
    def boom(u, started):
        raise RuntimeError("disk full")

    listener = Listener(boom)
    listener.start(open_stream=False)
    from audio.vad import Utterance

    listener._deliver([Utterance(0, 1600, silence(0.1))])  # the handler fails, the listener does not
    listener.stop()
    assert len(listener.errors) == 1


# -- no sound card ------------------------------------------------------------------------------------
class _NoPortAudio(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name in ("sounddevice", "_sounddevice"):
            raise OSError("PortAudio library not found")
        return None


@pytest.fixture
def no_portaudio(monkeypatch):
    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
    finder = _NoPortAudio()
    sys.meta_path.insert(0, finder)
    yield
    sys.meta_path.remove(finder)


class FakeSoundDevice:
    """A sounddevice module on a machine with no input device."""

    class PortAudioError(Exception):
        pass

    def query_devices(self, device=None, kind=None):
        raise self.PortAudioError("Error querying device -1")


def test_no_portaudio_is_one_sentence(no_portaudio):
    with pytest.raises(AudioUnavailable) as e:
        import_sounddevice()
    assert "PortAudio" in str(e.value) and "libportaudio2" in str(e.value)


def test_no_input_device_is_one_sentence():
    with pytest.raises(AudioUnavailable, match="No microphone"):
        check_device(FakeSoundDevice(), None, "input")


def test_real_sounddevice_here_has_no_microphone():
    try:
        sd = import_sounddevice()
    except AudioUnavailable:
        pytest.skip("PortAudio is not installed here")
    try:
        sd.query_devices(kind="input")
        pytest.skip("this machine has a microphone")
    except Exception:
        pass
    with pytest.raises(AudioUnavailable):
        Listener(lambda *a: None).start()


@pytest.mark.parametrize("case", ["no_portaudio", "no_device"])
def test_cli_listen_without_sound_card(case, request, monkeypatch, tmp_path):
    from assistant.cli import cli

    if case == "no_portaudio":
        request.getfixturevalue("no_portaudio")
    else:
        monkeypatch.setattr(capture, "import_sounddevice", lambda: FakeSoundDevice())
    result = CliRunner().invoke(cli, ["--db", str(tmp_path / "a.db"), "listen", "--no-index"])
    assert result.exit_code == 1
    lines = [l for l in result.output.strip().splitlines() if l]
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    assert ("PortAudio" if case == "no_portaudio" else "No microphone") in lines[0]
    assert "Traceback" not in result.output


def test_play_without_sound_card(no_portaudio, tmp_path):
    from audio.clips import play_clip

    with pytest.raises(AudioUnavailable, match="PortAudio"):
        play_clip(tmp_path / "x.flac")


def test_no_output_device_for_playback():
    with pytest.raises(AudioUnavailable, match="output device"):
        check_device(FakeSoundDevice(), None, "output")


# -- voice questions --------------------------------------------------------------------------------
def test_recorder_collects_blocks_until_stopped():
    rec = Recorder(max_seconds=1.0)
    rec.start(open_stream=False)
    feed(rec, silence(0.5, level=0.01))
    assert rec.seconds == pytest.approx(0.5)
    feed(rec, silence(1.0, level=0.01))
    assert rec.full.is_set()
    audio = rec.stop()
    assert len(audio) == SAMPLE_RATE  # capped at max_seconds


@pytest.mark.real
@needs_espeak
def test_push_to_talk_and_record_question(tmp_path, tiny_transcriber):
    from audio.voice import PushToTalk, record_question

    words = speak("What is on my calendar tomorrow?", tmp_path)
    ptt = PushToTalk(tiny_transcriber)
    ptt.start(open_stream=False)                  # first key press
    feed(ptt.recorder, np.concatenate([silence(0.5), words, silence(0.5)]))
    q = ptt.stop()                                # second key press
    assert "calendar" in q.text.lower() and "tomorrow" in q.text.lower()

    # record_question stops by itself when the speaker pauses.
    rec = Recorder()
    stop = threading.Event()
    feeder = threading.Thread(target=lambda: feed(rec, np.concatenate([words, silence(2.0)])))
    rec_start = rec.start
    rec.start = lambda open_stream=True: (rec_start(open_stream=False), feeder.start())[0]
    q2 = record_question(tiny_transcriber, seconds=20, until_pause=True, recorder=rec, stop=stop)
    feeder.join()
    assert "calendar" in q2.text.lower()


@pytest.fixture(scope="module")
def tiny_transcriber():
    from audio.transcribe import Transcriber

    t = Transcriber("tiny.en")
    t.load()
    return t
