"""Where the database and its clips live: --db must name a file in a folder that exists, folders the app
creates are private (0700), a folder it did not create keeps its mode, and clips sit beside their database."""
import os
import stat
from datetime import datetime, timezone
from types import SimpleNamespace

import numpy as np
import pytest
from click.testing import CliRunner

from assistant import paths
from assistant.cli import cli
from assistant.config import Config
from memory.store import Store
from tests.test_audio_speech import needs_espeak, speak_file


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def shared(tmp_path):
    """A folder the user made, readable by others (0755)."""
    d = tmp_path / "shared"
    d.mkdir()
    os.chmod(d, 0o755)
    return d


def invoke(*args, **kw):
    return CliRunner().invoke(cli, list(args), **kw)


# -- folders --------------------------------------------------------------------------------------------
def test_private_dirs_makes_only_new_folders_private(shared):
    from memory.folders import private_dirs

    made = private_dirs(shared / "a" / "b")
    assert made == [shared / "a", shared / "a" / "b"]
    assert mode(shared / "a") == mode(shared / "a" / "b") == 0o700
    assert mode(shared) == 0o755
    assert private_dirs(shared / "a" / "b") == []


def test_private_dirs_is_0700_whatever_the_umask(shared):
    from memory.folders import private_dirs

    old = os.umask(0o277)
    try:
        private_dirs(shared / "c")
    finally:
        os.umask(old)
    assert mode(shared / "c") == 0o700


def test_opening_a_database_leaves_its_existing_folder_alone(shared):
    Store(shared / "x.db").close()
    assert mode(shared) == 0o755 and mode(shared / "x.db") == 0o600
    s = Store(shared / "new" / "y.db")
    s.close()
    assert mode(shared / "new") == 0o700 and mode(shared) == 0o755


# -- --db ------------------------------------------------------------------------------------------------
def test_db_in_an_existing_folder_keeps_the_folders_mode(shared):
    r = invoke("--db", str(shared / "x.db"), "sessions")
    assert r.exit_code == 0, r.output
    assert mode(shared) == 0o755 and mode(shared / "x.db") == 0o600


def test_a_failed_open_changes_nothing(shared):
    junk = shared / "notes.db"
    junk.write_text("not a database")
    r = invoke("--db", str(junk), "sessions")
    assert r.exit_code == 1 and r.output.startswith(f"Error: Cannot open the database at {junk}")
    assert "Traceback" not in r.output
    assert mode(shared) == 0o755 and junk.read_text() == "not a database"


def test_db_pointing_at_a_folder_is_a_clear_error(shared):
    r = invoke("--db", str(shared), "sessions")
    assert r.exit_code == 1
    assert r.output.strip() == (f"Error: Cannot open the database at {shared}: it is a folder; name a file in "
                                f"it, e.g. --db {shared / 'assistant.db'}.")
    assert mode(shared) == 0o755 and os.listdir(shared) == []


def test_db_in_a_folder_that_does_not_exist_is_an_error_not_a_new_memory(shared):
    db = shared / "no" / "such" / "x.db"
    r = invoke("--db", str(db), "sessions")
    assert r.exit_code == 1
    assert f"the folder {db.parent} does not exist" in r.output and f"mkdir -p {db.parent}" in r.output
    assert not (shared / "no").exists() and mode(shared) == 0o755
    # the hint works: once the folder is made, a new memory starts there
    db.parent.mkdir(parents=True)
    assert invoke("--db", str(db), "sessions").exit_code == 0 and db.exists()


def test_assistant_db_is_checked_the_same_way(shared, monkeypatch):
    monkeypatch.setenv("ASSISTANT_DB", str(shared / "typo" / "x.db"))
    r = invoke("sessions")
    assert r.exit_code == 1 and "does not exist" in r.output
    assert not (shared / "typo").exists()


def test_the_default_data_folder_is_still_created_private(tmp_path, monkeypatch):
    xdg = tmp_path / "xdg"
    xdg.mkdir()
    os.chmod(xdg, 0o755)
    monkeypatch.setenv("XDG_DATA_HOME", str(xdg))
    assert not paths.data_dir().exists()
    assert invoke("sessions").exit_code == 0
    assert paths.default_db().exists()
    assert mode(paths.data_dir()) == 0o700 and mode(xdg) == 0o755


# -- clips beside their database ----------------------------------------------------------------------------
def test_clips_folder_is_named_after_its_database(tmp_path):
    assert paths.clips_dir(tmp_path / "work.db") == tmp_path / "work-clips"
    assert paths.clips_dir(paths.default_db()) == paths.data_dir() / "assistant-clips"


def test_audio_for_the_chat_keeps_clips_beside_the_database(shared):
    from assistant.listening import AudioServices

    assistant = SimpleNamespace(config=Config(), store=SimpleNamespace(path=shared / "x.db"))
    assert AudioServices(assistant).clips_dir == shared / "x-clips"


def test_a_new_clips_folder_is_private_and_its_parent_untouched(shared):
    from audio.clips import ClipStore
    from audio.transcribe import Segment, Transcript

    store = Store(shared / "x.db")
    sid = store.new_session(source="audio")
    clip = ClipStore(store, paths.clips_dir(store.path)).add(
        sid, np.zeros(1600, dtype=np.float32), datetime(2025, 3, 4, 14, tzinfo=timezone.utc),
        Transcript([Segment(0.0, 0.1, "hello")], "en", 0.1))
    store.close()
    assert clip.path.startswith(str(shared / "x-clips"))
    assert mode(shared / "x-clips") == 0o700 and mode(os.path.dirname(clip.path)) == 0o700
    assert mode(shared) == 0o755


def test_clips_stored_at_the_old_place_still_list_and_delete(tmp_path):
    """Clip rows hold their file's path: a database whose clips are in the data folder's clips/ keeps working."""
    from audio.clips import ClipStore
    from audio.transcribe import Segment, Transcript

    db = tmp_path / "old.db"
    store = Store(db)
    old_place = paths.data_dir() / "clips"
    clip = ClipStore(store, old_place).add(
        store.new_session(source="audio"), np.zeros(1600, dtype=np.float32),
        datetime(2025, 3, 4, 14, tzinfo=timezone.utc), Transcript([Segment(0.0, 0.1, "remember the milk")], "en", 0.1))
    store.close()
    assert os.path.exists(clip.path)
    r = invoke("--db", str(db), "clips", "list")
    assert r.exit_code == 0 and "remember the milk" in r.output
    r = invoke("--db", str(db), "clips", "delete", str(clip.id), "--yes")
    assert r.exit_code == 0 and not os.path.exists(clip.path)


@pytest.mark.real
@needs_espeak
def test_listen_file_keeps_clips_beside_the_db_given(shared):
    rec = speak_file("The budget meeting moved to Thursday.", shared.parent / "r.wav")
    db = shared / "x.db"
    r = invoke("--db", str(db), "listen", "--file", str(rec), "--started-at", "2025-03-04T14:00:00+00:00",
               "--no-index")
    assert r.exit_code == 0, r.output
    store = Store(db)
    paths_stored = [row[0] for row in store.db.execute("SELECT path FROM audio_clips").fetchall()]
    store.close()
    assert paths_stored and all(p.startswith(str(shared / "x-clips") + os.sep) for p in paths_stored)
    assert not (paths.data_dir() / "clips").exists()
    assert mode(shared / "x-clips") == 0o700 and mode(shared) == 0o755
