"""The queue of turns still to embed (m080): kept by triggers, read before every recall."""
from __future__ import annotations

from memory.recall import TurnIndex
from memory.store import Store
from tests.fakes import FakeEmbedder


def _index(tmp_path):
    store = Store(tmp_path / "q.db")
    return store, TurnIndex(store, FakeEmbedder())


def test_a_new_turn_is_pending_until_indexed_and_a_changed_one_is_pending_again(tmp_path):
    store, ti = _index(tmp_path)
    sid = store.new_session("t")
    a = store.add_turn(sid, "user", "my sister lives in Porto")
    assert ti.pending() == [a]
    assert ti.index_pending() == 1 and ti.pending() == []
    assert store.count("turns_to_index") == 0
    with store.db.conn:
        store.db.execute("UPDATE turns SET text = 'my sister lives in Lisbon' WHERE id = ?", [a])
    assert ti.pending() == [a]
    ti.index_pending()
    assert ti.pending() == [] and ti.hybrid.vectors.missing("turns") == []


def test_a_streaming_answer_waits_in_the_queue_and_a_deleted_turn_leaves_it(tmp_path):
    store, ti = _index(tmp_path)
    sid = store.new_session("t")
    q = store.add_turn(sid, "user", "hello there")
    ans = store.add_turn(sid, "assistant", "Hel", status="streaming")
    assert ti.pending() == [q]
    ti.index_pending()
    assert store.count("turns_to_index") == 1          # the answer still streams
    with store.db.conn:
        store.db.execute("UPDATE turns SET text = 'Hello!', status = 'complete' WHERE id = ?", [ans])
    assert ti.pending() == [ans]
    gone = store.add_turn(sid, "user", "never mind")
    with store.db.conn:
        store.db.execute("DELETE FROM turns WHERE id = ?", [gone])
    assert ti.pending() == [ans]


def test_turns_indexed_another_way_are_dropped_from_the_queue_once_there_are_many(tmp_path):
    store, ti = _index(tmp_path)
    sid = store.new_session("t")
    ids = [store.add_turn(sid, "user", f"line {i}") for i in range(5)]
    ti.index_ids(ids[:3])
    with store.db.conn:   # as a restore writes index rows itself: the queue still lists them
        store.db.conn.executemany("INSERT OR IGNORE INTO turns_to_index (turn_id) VALUES (?)", [(i,) for i in ids])
    assert ti.pending() == ids[3:]
    ti.drop_stale(at_least=1)
    assert store.count("turns_to_index") == 2


def test_the_migration_queues_the_turns_an_older_database_left_unindexed(tmp_path):
    store, ti = _index(tmp_path)
    sid = store.new_session("t")
    a = store.add_turn(sid, "user", "one")
    b = store.add_turn(sid, "user", "two")
    ti.index_ids([a])
    with store.db.conn:   # back to the schema before m080, with b not indexed
        for name in ("turns_to_index_new", "turns_to_index_changed", "turns_to_index_gone"):
            store.db.execute(f"DROP TRIGGER {name}")
        store.db.execute("DROP TABLE turns_to_index")
        store.db.execute("DELETE FROM _migrations WHERE name = 'm080_turns_to_index'")
    store.close()
    store, ti = _index(tmp_path)
    assert ti.pending() == [b]
