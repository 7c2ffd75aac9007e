"""Forgetting on a synthetic year: 100,000 turns in 25,000 segments (2,500 sessions of 10 segments of 4
turns, about 7 sessions a day), each session with its summary, a day, week and month roll-up of every
period and a running memory folded 400 times, all with their sessions listed (what forgetting hides); a
name ("Daniel") said in about 0.3% of the turns, across the whole year. Random unit vectors and text from
a fixed vocabulary: sizes and speeds are what is measured.

    nice -n 10 .venv/bin/python tests/bench/forget.py            # builds .bench-cache/forget-year.db once
    nice -n 10 .venv/bin/python tests/bench/forget.py --runs 5

Each run copies the year, then times plan_forget + forget (secure_delete, FTS5 secure-delete, the WAL
checkpoint included) of one session from the middle of the year, and of the phrase across the year.
"""
from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.bench.load import WORDS  # noqa: E402

SESSIONS, SEGMENTS_PER_SESSION, TURNS_PER_SEGMENT = 2500, 10, 4
NAME = "Daniel"


def build(path: Path, dim: int = 384) -> None:
    from memory.index import HybridIndex, IndexRow
    from memory.store import Store
    from memory.summaries import day_key, month_key, week_key

    rng, nrng = random.Random(13), np.random.default_rng(13)
    store = Store(path)
    db = store.db.conn
    t_start, year = time.perf_counter(), 365 * 24 * 3600
    day0 = 1_704_067_200   # 2024-01-01
    iso = lambda t: time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(t))   # noqa: E731
    periods: dict[tuple[str, str], set[int]] = {}
    session_summaries: list[tuple[int, int, str]] = []
    for start in range(0, SESSIONS, 250):
        seg_rows, turn_rows = [], []
        with db:
            for s in range(start, min(SESSIONS, start + 250)):
                when = day0 + int(s * year / SESSIONS)
                sid = db.execute("INSERT INTO sessions (title, started_at, source) VALUES (?, ?, 'chat')",
                                 [f"session {s}", iso(when)]).lastrowid
                facts = []
                for g in range(SEGMENTS_PER_SESSION):
                    ids, texts = [], []
                    for k in range(TURNS_PER_SEGMENT):
                        role = "user" if k % 2 == 0 else "assistant"
                        words = [rng.choice(WORDS) for _ in range(14)]
                        if rng.random() < 0.003:
                            words[rng.randrange(14)] = NAME
                        text = " ".join(words)
                        t = iso(when + g * 240 + k * 60)
                        tid = db.execute("INSERT INTO turns (session_id, role, text, created_at) VALUES (?, ?, ?, ?)",
                                         [sid, role, text, t]).lastrowid
                        ids.append(tid)
                        texts.append(text)
                        turn_rows.append((tid, f"{role.title()}: {text}", t, sid))
                        if role == "user" and g < 3:
                            facts.append(f"User: {text}")
                    seg = db.execute(
                        "INSERT INTO segments (session_id, first_turn_id, last_turn_id, started_at, ended_at, topic, "
                        "key, method, created_at) VALUES (?, ?, ?, ?, ?, '', ?, 'fast', ?)",
                        [sid, ids[0], ids[-1], iso(when + g * 240), iso(when + g * 240 + 180), "\n".join(texts),
                         iso(when)]).lastrowid
                    db.executemany("INSERT INTO segment_turns (segment_id, turn_id, position) VALUES (?, ?, ?)",
                                   [(seg, t, i) for i, t in enumerate(ids)])
                    seg_rows.append((seg, "\n".join(texts), iso(when + g * 240), sid))
                db.execute("INSERT INTO segmentation_log (session_id, last_turn_id, method, segments, done_at) "
                           "VALUES (?, ?, 'fast', ?, ?)", [sid, ids[-1], SEGMENTS_PER_SESSION, iso(when)])
                sm = db.execute("INSERT INTO summaries (kind, key, text, period_start, period_end, last_turn_id, "
                                "method, created_at) VALUES ('session', ?, ?, ?, ?, ?, 'facts', ?)",
                                [str(sid), "\n".join(facts), iso(when), iso(when + 3600), ids[-1], iso(when)]).lastrowid
                db.execute("INSERT INTO summary_sessions (summary_id, session_id) VALUES (?, ?)", [sm, sid])
                session_summaries.append((sm, sid, "\n".join(facts[:2])))
                d = day_key(iso(when))
                for kind, key in (("day", d), ("week", week_key(d)), ("month", month_key(d))):
                    periods.setdefault((kind, key), set()).add(sid)
            for name, rows in (("segment", seg_rows), ("turn", turn_rows)):
                vecs = nrng.standard_normal((len(rows), dim)).astype(np.float32)
                vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
                HybridIndex(store, name).add([IndexRow(r[0], v, r[1], r[2], "chat", r[3]) for r, v in zip(rows, vecs)],
                                             commit=False)
        print(f"  {min(SESSIONS, start + 250) * SEGMENTS_PER_SESSION:,} segments in "
              f"{time.perf_counter() - t_start:.0f} s", flush=True)
    with db:
        for (kind, key), sids in periods.items():
            sm = db.execute("INSERT INTO summaries (kind, key, text, period_start, period_end, method, created_at) "
                            "VALUES (?, ?, ?, ?, ?, 'join', ?)", [kind, key, f"{kind} {key} facts", key, key, key]).lastrowid
            db.executemany("INSERT INTO summary_sessions (summary_id, session_id) VALUES (?, ?)",
                           [(sm, s) for s in sids])
        # the running memory, folded every 6 sessions: each version lists every session folded so far
        folded: list[int] = []
        for i in range(0, len(session_summaries), 6):
            batch = session_summaries[i:i + 6]
            folded += [sid for _, sid, _ in batch]
            status = "current" if i + 6 >= len(session_summaries) else "superseded"
            sm = db.execute("INSERT INTO summaries (kind, key, text, period_start, period_end, status, method, "
                            "created_at) VALUES ('running', 'main', ?, '', '', ?, 'facts', '')",
                            ["\n".join(t for _, _, t in batch), status]).lastrowid
            db.executemany("INSERT INTO summary_sessions (summary_id, session_id) VALUES (?, ?)",
                           [(sm, s) for s in folded])
    store.close()


def run_once(year: Path, work: Path) -> dict:
    from memory.forget import forget, plan_forget
    from memory.store import Store

    out = {}
    for what in ("session", "phrase"):
        for f in work.parent.glob(work.name + "*"):
            f.unlink()
        shutil.copy(year, work)
        store = Store(work)
        store.db.execute("SELECT COUNT(*) FROM turns").fetchone()   # opened and migrated, as the app has it
        t0 = time.perf_counter()
        if what == "session":
            mid = store.db.execute("SELECT id FROM sessions ORDER BY id LIMIT 1 OFFSET ?", [SESSIONS // 2]).fetchone()[0]
            plan = plan_forget(store, session_id=mid)
        else:
            plan = plan_forget(store, phrase=NAME)
        t1 = time.perf_counter()
        forget(store, plan)
        t2 = time.perf_counter()
        out[what] = (t1 - t0, t2 - t1, plan.describe())
        store.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    year = ROOT / ".bench-cache" / "forget-year.db"
    if not year.exists():
        year.parent.mkdir(exist_ok=True)
        tmp = year.with_suffix(".building")
        for f in tmp.parent.glob(tmp.name + "*"):
            f.unlink()
        t = time.perf_counter()
        build(tmp)
        print(f"built the year in {time.perf_counter() - t:.0f} s")
        tmp.rename(year)
        for f in tmp.parent.glob(tmp.name + "*"):
            f.unlink()
    from memory.store import Store

    s = Store(year)
    print(f"year: {s.count('turns'):,} turns, {s.count('segments'):,} segments, {s.count('sessions'):,} sessions, "
          f"{s.count('summaries'):,} summaries, {year.stat().st_size / 2**20:.0f} MB")
    s.close()
    work = ROOT / ".bench-cache" / "forget-work.db"
    results: dict[str, list] = {"session": [], "phrase": []}
    for i in range(args.runs):
        for what, r in run_once(year, work).items():
            results[what].append(r)
            print(f"run {i + 1} {what}: plan {r[0]:.3f} s, forget {r[1]:.3f} s, total {r[0] + r[1]:.3f} s ({r[2]})",
                  flush=True)
    for what, rs in results.items():
        totals = [p + f for p, f, _ in rs]
        print(f"{what}: median total {statistics.median(totals):.3f} s (plan {statistics.median(p for p, _, _ in rs):.3f}"
              f" s, forget {statistics.median(f for _, f, _ in rs):.3f} s), worst {max(totals):.3f} s; {rs[0][2]}")
    for f in work.parent.glob(work.name + "*"):
        f.unlink()


if __name__ == "__main__":
    main()
