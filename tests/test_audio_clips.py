"""Clip storage: FLAC file + transcript turn + clip row; forgetting a clip removes all of it."""
from __future__ import annotations

import os
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audio.clips import ClipStore, delete_clip, sweep_orphans
from audio.transcribe import Segment, Transcript
from memory.recall import TurnIndex, TurnRecall
from tests.test_audio_speech import silence

T0 = datetime(2025, 3, 4, 14, 0, tzinfo=timezone.utc)


def transcript(text: str, seconds: float = 1.0) -> Transcript:
    return Transcript([Segment(0.0, seconds, text)], "en", seconds)


@pytest.fixture
def clips(store, tmp_path):
    return ClipStore(store, tmp_path / "clips")


def add(clips, store, text, when=T0, seconds=1.0):
    sid = store.new_session("Listening", source="audio", started_at=when.isoformat())
    return clips.add(sid, silence(seconds, level=0.05), when, transcript(text, seconds))


def test_clip_is_flac_with_turn_and_times(clips, store):
    clip = add(clips, store, "the budget meeting moved to Thursday", seconds=1.5)
    path = Path(clip.path)
    assert path.exists() and path.suffix == ".flac"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    info = sf.info(str(path))
    assert info.format == "FLAC" and info.samplerate == 16000 and info.channels == 1
    assert info.duration == pytest.approx(1.5)
    turn = store.turn(clip.turn_id)
    assert (turn.source, turn.role, turn.text) == ("audio", "user", "the budget meeting moved to Thursday")
    assert turn.created_at == clip.started_at == "2025-03-04T14:00:00.000+00:00"
    assert clip.ended_at == "2025-03-04T14:00:01.500+00:00"
    again = clips.get(clip.id)
    assert again.text == clip.text and again.segments[0].text == clip.text


def test_empty_transcript_keeps_nothing(clips, store, tmp_path):
    assert add(clips, store, "") is None
    assert store.count("audio_clips") == 0 and store.count("turns") == 0
    assert not list((tmp_path / "clips").rglob("*.flac"))


def test_deleting_a_clip_deletes_turn_index_entries_and_file(clips, store, fake_embedder):
    keep = add(clips, store, "the plumber comes on Friday")
    gone = add(clips, store, "the secret launch code is walrus seven")
    TurnIndex(store, fake_embedder).index_pending()
    recall = TurnRecall(store, fake_embedder)
    assert any(m.id == gone.turn_id for m in recall.search("secret launch code walrus", 500))

    assert delete_clip(store, gone.id) is True
    assert not os.path.exists(gone.path)
    assert store.turn(gone.turn_id) is None
    assert clips.get(gone.id) is None
    assert store.db.execute("SELECT COUNT(*) FROM vectors_turn WHERE id = ?", [gone.turn_id]).fetchone()[0] == 0
    assert store.db.execute("SELECT COUNT(*) FROM fts_turn WHERE rowid = ?", [gone.turn_id]).fetchone()[0] == 0
    assert all(m.id != gone.turn_id for m in recall.search("secret launch code walrus", 500))
    # The other clip is untouched.
    assert os.path.exists(keep.path) and store.turn(keep.turn_id) is not None
    assert delete_clip(store, gone.id) is False


def test_deleting_the_last_clip_of_a_session_deletes_the_session(clips, store):
    sid = store.new_session("Listening", source="audio", started_at=T0.isoformat())
    a = clips.add(sid, silence(1.0, level=0.05), T0, transcript("first"))
    b = clips.add(sid, silence(1.0, level=0.05), T0, transcript("second"))
    chat = store.new_session("chat")   # sessions it did not hold are left alone, empty or not
    assert delete_clip(store, a.id) and store.session(sid) is not None
    assert delete_clip(store, b.id) and store.session(sid) is None
    assert store.session(chat) is not None


def test_sweep_removes_files_of_turns_forgotten_elsewhere(clips, store, tmp_path):
    a = add(clips, store, "first")
    b = add(clips, store, "second")
    with store.db.conn:
        store.db.execute("DELETE FROM turns WHERE id = ?", [a.turn_id])
    stray = tmp_path / "clips" / "stray.flac"
    stray.write_bytes(b"x")
    assert sweep_orphans(store, tmp_path / "clips") == 2
    assert not os.path.exists(a.path) and not stray.exists() and os.path.exists(b.path)


def test_between_and_for_turns(clips, store):
    a = add(clips, store, "one", when=T0)
    b = add(clips, store, "two", when=T0.replace(hour=15))
    got = clips.between("2025-03-04T14:30:00", "2025-03-04T16:00:00")
    assert [c.id for c in got] == [b.id]
    assert set(clips.for_turns([a.turn_id, b.turn_id])) == {a.turn_id, b.turn_id}


def test_cli_clips_list_play_and_delete(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from assistant.cli import cli
    from memory.store import Store

    db = tmp_path / "a.db"
    store = Store(db)
    clip = add(ClipStore(store, tmp_path / "clips"), store, "remember the milk")
    store.close()
    runner = CliRunner()
    out = runner.invoke(cli, ["--db", str(db), "clips", "list"])
    assert out.exit_code == 0 and "remember the milk" in out.output
    played = []
    monkeypatch.setattr("audio.clips.play_clip", lambda path, **kw: played.append(path) or 1.0)
    out = runner.invoke(cli, ["--db", str(db), "clips", "play", str(clip.id)])
    assert out.exit_code == 0, out.output
    local = T0.astimezone()
    assert out.output.splitlines() == [f"Playing clip {clip.id} (heard {local:%Y-%m-%d %H:%M:%S}, 1 second) from "
                                       f"{clip.path}", "  remember the milk"]
    assert played == [clip.path]
    out = runner.invoke(cli, ["--db", str(db), "clips", "delete", str(clip.id), "--yes"])
    assert out.exit_code == 0, out.output
    assert not os.path.exists(clip.path)
    store = Store(db)
    assert store.count("sessions") == 0      # its session held nothing else
    store.close()
    out = runner.invoke(cli, ["--db", str(db), "clips", "play", str(clip.id)])
    assert out.exit_code == 1 and "no clip" in out.output


def test_deleting_a_clip_deletes_segments_made_from_it(clips, store, fake_embedder):
    from memory.index import HybridIndex, IndexRow

    a = add(clips, store, "the budget is frozen until June")
    b = add(clips, store, "nobody may order new laptops")
    with store.db.conn:
        seg = store.db.execute(
            "INSERT INTO segments (session_id, first_turn_id, last_turn_id, started_at, ended_at, key, source,"
            " method, created_at) VALUES (?, ?, ?, ?, ?, 'budget frozen, no laptops', 'audio', 'fast', ?)",
            [a.session_id, a.turn_id, a.turn_id, a.started_at, a.ended_at, a.started_at]).lastrowid
        store.db.execute("INSERT INTO segment_turns (segment_id, turn_id, position) VALUES (?, ?, 0)", [seg, a.turn_id])
    vec = fake_embedder.embed(["budget frozen, no laptops"])[0]
    HybridIndex(store, "segment").add([IndexRow(seg, vec, "budget frozen, no laptops", a.started_at, "audio",
                                                a.session_id)])
    assert delete_clip(store, a.id)
    assert store.db.execute("SELECT COUNT(*) FROM segments WHERE id = ?", [seg]).fetchone()[0] == 0
    assert HybridIndex(store, "segment").search("budget frozen", vec, 5) == []
    assert store.turn(b.turn_id) is not None


def test_the_app_start_removes_an_old_audio_file_no_clip_points_to_and_keeps_a_new_one(tmp_path):
    from assistant import paths
    from assistant.wiring import open_store

    db = tmp_path / "mem.db"
    open_store(db, quiet=True).close()
    day = paths.clips_dir(db) / "2025-03-04"
    day.mkdir(parents=True)
    old, new = day / "140000-000-aaaaaa.flac", day / "140001-000-bbbbbb.flac"
    old.write_bytes(b"fLaC")
    new.write_bytes(b"fLaC")
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    store = open_store(db, quiet=True)
    assert not old.exists() and new.exists()
    assert any("1 audio file left behind" in n for n in store.notices)
    store.close()
