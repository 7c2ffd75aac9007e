import os
import stat

import pytest

from memory.errors import StoreError
from memory.migrations import MIGRATIONS
from memory.store import Store


def test_blank_database_gets_every_table(tmp_path):
    s = Store(tmp_path / "d" / "blank.db")
    tables = set(s.tables())
    for expected in ("_migrations", "sessions", "turns", "meta", "vectors_turn", "fts_turn"):
        assert expected in tables
    applied = [r[0] for r in s.db.execute("SELECT name FROM _migrations ORDER BY name").fetchall()]
    assert applied == sorted(name for name, _ in MIGRATIONS)
    cols = {c.name for c in s.db["turns"].columns}
    assert {"id", "session_id", "role", "text", "created_at", "source", "status"} <= cols
    assert s.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert s.integrity_ok()


def test_migrations_run_once(tmp_path):
    path = tmp_path / "m.db"
    Store(path).close()
    s = Store(path)
    assert s.count("_migrations") == len(MIGRATIONS)


def test_private_permissions(tmp_path):
    path = tmp_path / "private" / "a.db"
    Store(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700


def test_turns_round_trip_and_sources(store):
    sid = store.new_session("t")
    a = store.add_turn(sid, "user", "hello", source="chat")
    b = store.add_turn(sid, "assistant", "hi", source="chat")
    assert [t.id for t in store.turns(sid)] == [a, b]
    assert store.turns(sid, limit=1)[0].id == b
    with pytest.raises(Exception):
        store.add_turn(sid, "user", "x", source="bogus")


def test_streaming_answer_recovered_as_interrupted(tmp_path):
    path = tmp_path / "r.db"
    s = Store(path)
    sid = s.new_session()
    tid = s.add_turn(sid, "assistant", "half an ans", status="streaming")
    s.close()  # as if the process died (its lock on the streaming answer goes with it)
    s2 = Store(path)
    assert s2.turn(tid).status == "interrupted"
    assert s2.turn(tid).text == "half an ans"


def test_unwritable_location_is_one_sentence(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError) as e:
        Store(blocker / "sub" / "db.sqlite")
    msg = str(e.value)
    assert str(blocker / "sub" / "db.sqlite") in msg and "--db" in msg
    assert "\n" not in msg
