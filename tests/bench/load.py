"""Load: a synthetic memory of N segments (default 100,000: 10 a session, 2 turns each, random unit
vectors and text from a fixed vocabulary), then start-up, recall latency and the resident memory of the
app's process with the default model.

    .venv/bin/python tests/bench/load.py --segments 100000          # builds .bench-cache/load-100000.db once
    .venv/bin/python tests/bench/load.py --segments 100000 --model  # also loads the default model
    .venv/bin/python tests/bench/load.py --segments 100000 --db COPY.db --mark-consolidated --add-day 3
        # on a copy: the history as consolidation leaves it, then a new day to consolidate

The vectors are random, so recall quality means nothing here; sizes and speeds are what is measured.
"""
from __future__ import annotations

import argparse
import random
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

WORDS = ("garden tomato basil cello lesson teacher lisbon move school lease car brakes trip coast bread "
         "starter dentist june budget kitchen euros running pace kilometres sister porto piano plumber "
         "thursday meeting friday milk eggs coffee train nine morning evening doctor report project deadline "
         "holiday flight hotel museum concert birthday present recipe soup salad").split()


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build(path: Path, segments: int, dim: int = 384) -> None:
    from memory.index import HybridIndex, IndexRow
    from memory.store import Store

    rng = random.Random(7)
    nrng = np.random.default_rng(7)
    store = Store(path)
    per_session, t0 = 10, time.perf_counter()
    sessions = segments // per_session
    day0 = 1_600_000_000
    batch = 1000
    for start in range(0, sessions, batch):
        seg_rows, turn_rows = [], []
        with store.db.conn:
            for s in range(start, min(sessions, start + batch)):
                when = day0 + s * 3600 * 4
                iso = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(when))
                sid = store.db.conn.execute("INSERT INTO sessions (title, started_at, source) VALUES (?, ?, 'chat')",
                                            [f"session {s}", iso]).lastrowid
                for g in range(per_session):
                    ids = []
                    for role in ("user", "assistant"):
                        text = " ".join(rng.choice(WORDS) for _ in range(14))
                        t_iso = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(when + g * 60))
                        tid = store.db.conn.execute(
                            "INSERT INTO turns (session_id, role, text, created_at) VALUES (?, ?, ?, ?)",
                            [sid, role, text, t_iso]).lastrowid
                        ids.append(tid)
                        turn_rows.append((tid, text, t_iso, sid, role))
                    seg = store.db.conn.execute(
                        "INSERT INTO segments (session_id, first_turn_id, last_turn_id, started_at, ended_at, topic, "
                        "key, method, created_at) VALUES (?, ?, ?, ?, ?, '', ?, 'fast', ?)",
                        [sid, ids[0], ids[1], t_iso, t_iso, turn_rows[-1][1], t_iso]).lastrowid
                    store.db.conn.executemany("INSERT INTO segment_turns (segment_id, turn_id, position) VALUES (?, ?, ?)",
                                              [(seg, ids[0], 0), (seg, ids[1], 1)])
                    seg_rows.append((seg, turn_rows[-2][1] + "\n" + turn_rows[-1][1], t_iso, sid))
            for name, rows, text in (("segment", seg_rows, lambda r: r[1]),
                                     ("turn", turn_rows, lambda r: f"{r[4].title()}: {r[1]}")):
                vecs = nrng.standard_normal((len(rows), dim)).astype(np.float32)
                vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
                HybridIndex(store, name).add([IndexRow(r[0], v, text(r), r[2], "chat", r[3])
                                              for r, v in zip(rows, vecs)], commit=False)
        done = min(sessions, start + batch) * per_session
        print(f"  {done:,} segments in {time.perf_counter() - t0:.0f} s", flush=True)
    store.close()


def mark_consolidated(path: Path) -> dict:
    """Write what consolidation would have left after working through the synthetic history, so that a
    run afterwards does only the new work: every session segmented (segmentation_log), summarized
    (a one-line session summary of its first user turn), every segment's links decided (link_log; one
    segment in ten linked to an earlier one), the running memory folded ten sessions at a time (its
    chain of versions, as folds leave it) and the day, week and month roll-ups built by the app's own
    code. Returns seconds per part."""
    from memory import summaries as sm
    from memory.clock import utcnow
    from memory.store import Store

    store = Store(path)
    db, now, out = store.db, utcnow(), {}

    def part(name, fn):
        t = time.perf_counter()
        with db.conn:
            fn()
        out[name] = time.perf_counter() - t

    part("segmentation log", lambda: db.execute(
        "INSERT OR IGNORE INTO segmentation_log (session_id, last_turn_id, method, segments, done_at) "
        "SELECT session_id, MAX(id), 'fast', COUNT(*) / 2, ? FROM turns GROUP BY session_id", [now]))

    def sessions():
        db.execute("""INSERT INTO summaries (kind, key, text, period_start, period_end, last_turn_id, status,
                          method, created_at)
                      SELECT 'session', CAST(s.id AS TEXT), 'User: ' || (SELECT text FROM turns t WHERE
                             t.session_id = s.id AND t.role = 'user' ORDER BY t.id LIMIT 1),
                             s.started_at, COALESCE(s.last_at, s.started_at), g.last_turn_id, 'current', 'facts', ?
                      FROM sessions s JOIN segmentation_log g ON g.session_id = s.id
                      WHERE NOT EXISTS (SELECT 1 FROM summaries m WHERE m.kind = 'session'
                                        AND m.key = CAST(s.id AS TEXT))""", [now])
        db.execute("INSERT OR IGNORE INTO summary_sessions (summary_id, session_id) "
                   "SELECT id, CAST(key AS INTEGER) FROM summaries WHERE kind = 'session'")
    part("session summaries", sessions)

    def links():
        db.execute("INSERT OR IGNORE INTO link_log (segment_id, candidates, links, method, done_at) "
                   "SELECT id, 2, 0, 'llm', ? FROM segments WHERE status = 'final'", [now])
        db.execute("""INSERT OR IGNORE INTO links (earlier_id, later_id, label, earlier_at, later_at, similarity,
                          method, created_at)
                      SELECT e.id, l.id, 'SameTopic', e.started_at, l.started_at, 0.5, 'llm', ?
                      FROM segments l JOIN segments e ON e.id = l.id - 37 WHERE l.id % 10 = 0""", [now])
        db.execute("UPDATE link_log SET links = 1 WHERE segment_id % 10 = 0 AND segment_id > 37")
    part("links", links)

    def running():
        store_ = sm.SummaryStore(store)
        if store_.running_base() is not None:
            return
        pending = sorted(store_.list("session"), key=lambda x: (x.period_start, x.id))
        base_id = last = base = None
        for i in range(0, len(pending), 10):
            new = pending[i:i + 10]
            text = sm.fold(sm.FoldPlan(base, new))
            status = "current" if i + 10 >= len(pending) else "superseded"
            start = base.period_start if base else new[0].period_start
            rid = db.execute("INSERT INTO summaries (kind, key, text, period_start, period_end, inputs, status, "
                             "method, created_at) VALUES ('running', ?, ?, ?, ?, '', ?, 'facts', ?)",
                             [sm.RUNNING_KEY, text, start, new[-1].period_end, status, now]).lastrowid
            db.conn.executemany("INSERT INTO summary_inputs (summary_id, input_id) VALUES (?, ?)",
                                [(rid, x.id) for x in new] + ([(rid, base_id)] if base_id else []))
            base_id = last = rid
            base = sm.Summary(rid, "running", sm.RUNNING_KEY, text, start, new[-1].period_end, None, "", status,
                              "facts", now)
        # Only the current version lists the sessions it covers: each fold's version lists every session
        # before it, which would be ~5e8 rows here (see docs/reliability.md).
        db.execute("INSERT OR IGNORE INTO summary_sessions (summary_id, session_id) "
                   "SELECT ?, id FROM sessions", [last])
    part("running memory", running)

    for kind in ("day", "week", "month"):
        def rollups(kind=kind):
            store_ = sm.SummaryStore(store)
            for plan in sm.plan_rollups(store_, kind):
                text, method = sm.rollup(plan)
                sm.write_rollup(store, plan, text, method, 0)
        part(f"{kind} summaries", rollups)
    store.close()
    return out


def add_day(path: Path, sessions: int = 3) -> dict:
    """Append one day of real conversation after the memory's last turn: the first `sessions` sessions of
    the first LoCoMo conversation, as chat sessions (first speaker: the user), two hours apart, not yet
    consolidated. Returns what was added."""
    from datetime import datetime, timedelta, timezone

    from memory.clock import to_iso
    from memory.importers import parse_locomo
    from memory.store import Store

    data = ROOT.parent / "shared" / "data" / "locomo" / "locomo_dev.json"
    if not data.exists():
        sys.exit(f"There is no file {data}; the LoCoMo data is needed for --add-day.")
    store = Store(path)
    last = store.db.execute("SELECT MAX(created_at) FROM turns").fetchone()[0]
    day = (datetime.fromisoformat(last) + timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0,
                                                                      tzinfo=timezone.utc)
    turns = 0
    for n, imported in enumerate(parse_locomo(data)[:sessions]):
        first = imported.turns[0].speaker
        start = day + timedelta(hours=2 * n)
        sid = store.new_session(title=f"day session {n + 1}", started_at=to_iso(start))
        for i, t in enumerate(imported.turns):
            store.add_turn(sid, "user" if t.speaker == first else "assistant", t.text, speaker=t.speaker,
                           created_at=to_iso(start + timedelta(seconds=30 * i)))
            turns += 1
    store.close()
    return {"day": day.date().isoformat(), "sessions": sessions, "turns": turns}


def measure(path: Path, with_model: bool) -> dict:
    from memory.bank import SegmentRecall
    from memory.embedder import SentenceTransformerEmbedder
    from memory.store import Store

    out = {}
    t0 = time.perf_counter()
    embedder = SentenceTransformerEmbedder(background=False)
    embedder.wait()
    out["embedder load s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    store = Store(path)
    out["open s"] = time.perf_counter() - t0
    recall = SegmentRecall(store, embedder)
    warm = recall.warm()            # as the app does when it opens the memory
    recall.search("what did I say about the garden", 700)
    out["open and first recall (asked at once) s"] = time.perf_counter() - t0
    warm.join()
    out["open to indexes loaded s"] = time.perf_counter() - t0
    times = []
    for q in ["where does my sister live", "the dentist in june", "budget for the kitchen",
              "train to porto on friday", "what did the teacher say about the cello lesson", "recipe for soup",
              "flight and hotel for the holiday"]:
        t = time.perf_counter()
        recall.search(q, 700)
        times.append(time.perf_counter() - t)
    out["recall median ms"] = statistics.median(times) * 1000
    out["rss MB without model"] = rss_mb()
    if with_model:
        from assistant.llm import LlamaCppModel
        from assistant.models import DEFAULT_MODEL, resolve_model

        m = LlamaCppModel(resolve_model(DEFAULT_MODEL), name=DEFAULT_MODEL, n_ctx=4096, gpu_layers=0)
        list(m.stream([{"role": "user", "content": "Say hello."}], 8))
        out["rss MB with the default model"] = rss_mb()
    out["segments"] = store.count("segments")
    out["database MB"] = path.stat().st_size / 2**20
    store.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--segments", type=int, default=100_000)
    ap.add_argument("--model", action="store_true", help="also load the default model and report its memory")
    ap.add_argument("--db", type=Path, help="measure this database (e.g. a copy of the cached one: opening it "
                    "may write to it) instead of .bench-cache/load-N.db")
    ap.add_argument("--mark-consolidated", action="store_true",
                    help="write what consolidating the synthetic history would have left (needs --db)")
    ap.add_argument("--add-day", type=int, metavar="SESSIONS", default=0,
                    help="append a day of SESSIONS real LoCoMo sessions after the last turn (needs --db)")
    args = ap.parse_args()
    path = args.db or ROOT / ".bench-cache" / f"load-{args.segments}.db"
    if args.db and not path.exists():
        sys.exit(f"There is no file {path}; build it first without --db, then copy it.")
    if (args.mark_consolidated or args.add_day) and not args.db:
        sys.exit("--mark-consolidated and --add-day change the database: give a copy with --db.")
    if args.mark_consolidated:
        for k, v in mark_consolidated(path).items():
            print(f"marked consolidated, {k}: {v:.1f} s", flush=True)
    if args.add_day:
        print(f"added {add_day(path, args.add_day)}", flush=True)
    if args.mark_consolidated or args.add_day:
        return
    if not path.exists():
        path.parent.mkdir(exist_ok=True)
        tmp = path.with_suffix(".building")
        for f in tmp.parent.glob(tmp.name + "*"):
            f.unlink()
        build(tmp, args.segments)
        tmp.rename(path)
    for k, v in measure(path, args.model).items():
        print(f"{k}: {v:,.1f}" if isinstance(v, float) else f"{k}: {v:,}")


if __name__ == "__main__":
    main()
