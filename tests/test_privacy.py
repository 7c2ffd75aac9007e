"""Privacy: the app's folders are 0700 and its files 0600, checked at start and repaired with a notice,
only for what the app made; and the suite itself opens no network connection."""
import os
import socket
import stat

import pytest
from click.testing import CliRunner

from assistant import paths
from assistant.cli import cli
from memory.store import Store


def mode(p) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


def test_what_others_could_read_is_made_private_again_with_a_notice(tmp_path):
    db = paths.default_db()
    Store(db).close()
    clip = paths.clips_dir(db) / "2026-01-01" / "100000-000-abc.flac"
    clip.parent.mkdir(parents=True)
    clip.write_bytes(b"fLaC")
    paths.config_dir().mkdir(parents=True, exist_ok=True)
    paths.config_file().write_text("n_ctx = 4096\n")
    widened = [(paths.data_dir(), 0o755), (db, 0o644), (paths.clips_dir(db), 0o755), (clip.parent, 0o775),
               (clip, 0o644), (paths.config_dir(), 0o755), (paths.config_file(), 0o664)]
    for p, m in widened:
        os.chmod(p, m)
    r = CliRunner().invoke(cli, ["sessions"])
    assert r.exit_code == 0, r.output
    for p, _ in widened:
        assert mode(p) == (0o700 if p.is_dir() else 0o600), p
    notes = [line for line in r.output.splitlines() if line.startswith("Note: ")]
    assert len(notes) == len(widened) and all("private again" in n for n in notes), "\n".join(notes)
    again = CliRunner().invoke(cli, ["sessions"])   # nothing left to say
    assert "Note:" not in again.output


def test_a_folder_the_user_chose_keeps_its_mode(tmp_path):
    mine = tmp_path / "shared-folder"
    mine.mkdir()
    os.chmod(mine, 0o755)
    db = mine / "memory.db"
    Store(db).close()
    os.chmod(db, 0o644)
    r = CliRunner().invoke(cli, ["--db", str(db), "sessions"])
    assert r.exit_code == 0
    assert mode(mine) == 0o755          # the user's folder: untouched
    assert mode(db) == 0o600            # the app's own database: private again, and said so
    assert f"Note: {db} could be read by others" in r.output


def test_a_file_that_is_not_the_assistants_database_is_refused_and_left_exactly_as_it_was(tmp_path):
    import sqlite3

    mine = tmp_path / "mine"
    mine.mkdir()
    text = mine / "notes.txt"
    text.write_text("root:x:0:0:root:/root:/bin/bash\n")
    other = mine / "bookmarks.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE bookmarks (url TEXT)")
        conn.execute("INSERT INTO bookmarks VALUES ('https://example.org')")
    conn.close()
    for f, why in [(text, "file is not a database"), (other, "is another program's SQLite database")]:
        os.chmod(f, 0o644)
        before = f.read_bytes()
        for args in (["sessions"], ["memory", "stats"], ["ask", "hello"]):
            r = CliRunner().invoke(cli, ["--db", str(f), *args])
            assert r.exit_code != 0 and why in r.output, (f, args, r.output)
            assert "Traceback" not in r.output
        assert mode(f) == 0o644 and f.read_bytes() == before, f      # neither its mode nor a byte changed
        assert sorted(p.name for p in mine.iterdir()) == ["bookmarks.db", "notes.txt"]   # nothing beside it


def test_a_path_ending_in_a_slash_names_a_folder_and_a_missing_one_is_refused(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    r = CliRunner().invoke(cli, ["--db", f"{mine / 'nowhere'}/", "sessions"])
    assert r.exit_code != 0 and f"the folder {mine / 'nowhere'} does not exist" in r.output, r.output
    assert list(mine.iterdir()) == []                 # no file named like the folder, no lock file


def test_someone_elses_file_in_the_data_folder_is_left_alone(tmp_path):
    db = paths.default_db()
    Store(db).close()
    link_target = tmp_path / "elsewhere.txt"
    link_target.write_text("x")
    os.chmod(link_target, 0o644)
    (paths.data_dir() / "link.txt").symlink_to(link_target)
    CliRunner().invoke(cli, ["sessions"])
    assert mode(link_target) == 0o644   # reached through a link: not the app's


def test_the_suite_opens_no_connection_beyond_this_machine():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(0.2)
    with pytest.raises(OSError, match="no network connection"):
        s.connect(("192.0.2.1", 80))    # TEST-NET-1: would leave the machine
    with pytest.raises(OSError, match="no names"):
        socket.getaddrinfo("example.com", 443)
    s.close()
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)   # loopback stays open (the remote-engine tests)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    client = socket.create_connection(server.getsockname(), timeout=2)
    client.close()
    server.close()


async def test_the_chat_shows_what_was_made_private(tmp_path):
    from tests.fakes import FakeLLM
    from tests.test_ui import make_assistant, notifications, wait_until
    from ui.app import AssistantApp

    a = make_assistant(tmp_path / "data" / "ui.db", FakeLLM())
    a.store.notices = ["/somewhere/assistant.db could be read by others (mode 644); it is private again (600)."]
    app = AssistantApp(assistant=a, consolidation=False)
    async with app.run_test() as pilot:
        await wait_until(pilot, lambda: any("private again" in n for n in notifications(app)), what="the notice")
    a.close()
