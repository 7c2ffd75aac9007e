"""Load: a synthetic memory of N segments (default 100,000: 10 a session, 2 turns each, random unit
vectors and text from a fixed vocabulary), then start-up, recall latency and the resident memory of the
app's process with the default model.

    .venv/bin/python tests/bench/load.py --segments 100000          # builds .bench-cache/load-100000.db once
    .venv/bin/python tests/bench/load.py --segments 100000 --model  # also loads the default model

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
    args = ap.parse_args()
    path = args.db or ROOT / ".bench-cache" / f"load-{args.segments}.db"
    if args.db and not path.exists():
        sys.exit(f"There is no file {path}; build it first without --db, then copy it.")
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
