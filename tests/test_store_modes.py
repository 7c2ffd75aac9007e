"""The two ways to open the database: the app's repairs what a crash left, a worker's (background
consolidation, the daemon's checks, listening) changes nothing another process may be in the middle of.
A turn whose text changes after it was indexed is indexed again."""
from pathlib import Path

import numpy as np

from assistant.scheduler import newest_turn_at
from memory.bank import segment_pending
from memory.index import HybridIndex
from memory.recall import TurnIndex
from memory.segments import SegmentStore
from memory.store import Store
from tests.fakes import FakeEmbedder


def _live_answer(path):
    """The chat's connection, in the middle of streaming an answer."""
    app = Store(path)
    sid = app.new_session("Trip")
    app.add_turn(sid, "user", "What is the capital of Australia?")
    answer = app.add_turn(sid, "assistant", "The capital is", status="streaming")
    return app, sid, answer


def test_a_workers_open_leaves_the_answer_another_process_streams(tmp_path):
    path = tmp_path / "a.db"
    app, _, answer = _live_answer(path)
    newest_turn_at(path)                      # what the daemon does every minute
    worker = Store(path, worker=True)         # background consolidation, listening
    assert app.turn(answer).status == "streaming"
    worker.close()
    app.close()                               # the chat ends without finishing the answer
    again = Store(path)                       # the app's next start repairs it
    assert again.turn(answer).status == "interrupted"
    again.close()


def test_listening_does_not_index_an_answer_still_streaming(tmp_path):
    path = tmp_path / "a.db"
    app, _, answer = _live_answer(path)
    listening = Store(path, worker=True)
    TurnIndex(listening, FakeEmbedder()).index_pending()   # listening indexes what it stored
    assert app.db.execute("SELECT COUNT(*) FROM fts_turn WHERE rowid = ?", [answer]).fetchone()[0] == 0
    app.update_turn(answer, "The capital is Canberra, chosen in 1908.", status="complete")
    TurnIndex(listening, FakeEmbedder()).index_pending()
    hits = HybridIndex(listening, "turn").bm25("Canberra", 5)
    assert [h[0] for h in hits] == [answer]
    listening.close()
    app.close()


def test_a_turn_whose_text_changes_after_indexing_is_indexed_again(tmp_path):
    path = tmp_path / "a.db"
    app, _, answer = _live_answer(path)
    app.update_turn(answer, "The capital is", status="interrupted")   # cut off, then indexed
    other = Store(path, worker=True)
    emb = FakeEmbedder()
    index = TurnIndex(other, emb)
    index.index_pending()
    assert index.vectors.search(emb.embed(["Assistant: The capital is"])[0], 1)  # the mirror is loaded
    final = "The capital is Canberra, chosen in 1908."
    app.update_turn(answer, final, status="complete")       # e.g. finished by the process that streamed it
    assert index.index_pending() == 1
    hybrid = HybridIndex(other, "turn")
    assert [h[0] for h in hybrid.bm25("Canberra 1908", 5)] == [answer]
    top = index.vectors.search(emb.embed([final])[0], 1)
    assert top[0][0] == answer and top[0][1] > 0.999
    stored = index.vectors.get([answer])[answer]
    assert np.allclose(stored, emb.embed([final])[0])
    # nothing doubled: one vector and one text row for the turn
    for table, col in (("fts_turn", "rowid"), ("codes_turn", "id"), ("vectors_turn", "id")):
        assert other.db.execute(f"SELECT COUNT(*) FROM {table} WHERE {col} = ?", [answer]).fetchone()[0] == 1
    other.close()
    app.close()


def test_a_segmented_turn_whose_text_changes_is_segmented_again(tmp_path):
    path = tmp_path / "a.db"
    app, sid, answer = _live_answer(path)
    app.update_turn(answer, "The capital is", status="interrupted")
    segment_pending(app, FakeEmbedder(), mode="fast")
    segs = SegmentStore(app)
    assert segs.pending_sessions() == []
    app.update_turn(answer, "The capital is Canberra.", status="complete")
    assert segs.pending_sessions() == [sid]
    segment_pending(app, FakeEmbedder(), mode="fast")
    keys = " ".join(s.key for s in segs.for_session(sid))
    assert "Canberra" in keys
    app.close()


def test_status_changes_alone_do_not_touch_the_index(tmp_path):
    path = tmp_path / "a.db"
    app, _, answer = _live_answer(path)
    app.update_turn(answer, "The capital is Canberra.", status="complete")
    TurnIndex(app, FakeEmbedder()).index_pending()
    gen = app.get_meta("codes_gen:turn")
    app.update_turn(answer, "The capital is Canberra.", status="complete")
    assert app.get_meta("codes_gen:turn") == gen
    assert TurnIndex(app, FakeEmbedder()).index_pending() == 0
    app.close()


def test_a_with_block_is_one_transaction_even_through_sqlite_utils(tmp_path):
    """sqlite-utils commits a write at once when no transaction is open; a `with conn:` block must still
    be all or nothing (an import cut off half way by a full disk kept half of it)."""
    import pytest

    store = Store(tmp_path / "a.db")
    with pytest.raises(RuntimeError):
        with store.db.conn:
            sid = store.db.execute("INSERT INTO sessions (title, started_at) VALUES ('x', '2026-01-01')").lastrowid
            store.db.execute("INSERT INTO turns (session_id, role, text, created_at) VALUES (?, 'user', 'hi', "
                             "'2026-01-01')", [sid])
            raise RuntimeError("cut off")
    assert store.count("sessions") == 0 and store.count("turns") == 0
    store.close()


def test_another_apps_start_leaves_a_live_answer_alone_but_repairs_a_killed_one(tmp_path):
    """`assistant sessions` run while the chat streams an answer is an app's start too: it must not
    mark that answer interrupted. An answer whose process was killed is marked so at the next start."""
    import subprocess
    import sys
    import textwrap

    path = tmp_path / "a.db"
    app, _, answer = _live_answer(path)
    Store(path).close()                        # another app's start, while the answer streams
    assert app.turn(answer).status == "streaming"
    app.update_turn(answer, "The capital is Canberra.", status="complete")
    app.close()
    killed = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(Path(__file__).resolve().parent.parent)!r})
        from memory.store import Store
        s = Store({str(path)!r})
        sid = s.new_session("x")
        print(s.add_turn(sid, "assistant", "half an ans", status="streaming"), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    r = subprocess.run([sys.executable, "-c", killed], capture_output=True, text=True, timeout=120)
    cut = int(r.stdout.split()[0])
    s = Store(path)
    assert s.turn(cut).status == "interrupted" and s.turn(answer).status == "complete"
    s.close()


def test_consolidation_indexes_turns_as_the_chat_does(tmp_path):
    """BM25 matches "Speaker: text" (questions name people), whoever indexed the turn."""
    from memory.consolidate import Consolidator
    from tests.test_consolidation_fakes import SchemaLLM

    store = Store(tmp_path / "a.db")
    sid = store.new_session("Chat")
    turn = store.add_turn(sid, "user", "I adopted a beagle last week.", speaker="Caroline")
    Consolidator(store, FakeEmbedder(), SchemaLLM()).run()
    assert store.db.execute("SELECT text FROM fts_turn WHERE rowid = ?", [turn]).fetchone()[0] == \
        "Caroline: I adopted a beagle last week."
    assert [h[0] for h in HybridIndex(store, "turn").bm25("What did Caroline adopt?", 5)] == [turn]
    store.close()
