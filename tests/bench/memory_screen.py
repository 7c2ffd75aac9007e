"""Memory screen: how long a search takes on a synthetic year (default 100,000 turns in 25,000 segments of 4
turns, 2,500 conversations spread over 365 days; random unit vectors and text from a fixed vocabulary, as
tests/bench/load.py builds them), through the same code the screen runs in its worker: the reading recall
over the store's reader connection (`memory.detail.search`: query embedding with the real MiniLM, hybrid
ranking and packing), then the detail of the best hit (`memory.detail.detail`: turns, timeline, answers that
used it), and the latest memories listed before any search (`memory.detail.recent`).

    nice .venv/bin/python tests/bench/memory_screen.py            # builds .bench-cache/memory-screen-25000-zipf.db once
    nice .venv/bin/python tests/bench/memory_screen.py --embedder-threads 2

The query's embedding (MiniLM, numpy) is timed apart too: on a shared 2-core machine two BLAS threads wait
on each other when another process holds a core, so `--embedder-threads` (default: the app's own setting,
a quarter of the cores) shows that share. Runs before 2026-12-05 had MiniLM on torch (`--torch-threads`).

The vectors are random, so what is found means nothing here; the time is what is measured. Two vocabularies:
`small` is load.py's 60 words drawn evenly (every segment key then holds nearly every query word, so the
full-text side ranks the whole year for every query: a worst case), `zipf` (the default) draws from 3,000
words with Zipf's law (s = 1.1), as words occur in real talk, the 60 words placed among them from rank 40 on. The first search
(which loads the index's in-memory mirror) is reported apart; the figures are over the searches after it.
"""
from __future__ import annotations

import argparse
import itertools
import platform
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.bench.load import WORDS  # noqa: E402

QUERIES = ["where does my sister live", "the dentist in june", "budget for the kitchen", "train to porto on friday",
           "what did the teacher say about the cello lesson", "recipe for soup", "flight and hotel for the holiday",
           "what did I say last week about the garden", "the doctor report", "coffee and eggs in the morning",
           "what did we talk about on 3 March", "running pace in kilometres", "the plumber on thursday",
           "birthday present for my sister", "museum and concert", "project deadline yesterday",
           "the car brakes", "lisbon move and the school lease", "piano lesson", "starter for the bread"]


def vocabulary(kind: str, rng: random.Random):
    """A function that draws one word."""
    if kind == "small":
        return lambda: rng.choice(WORDS)
    letters = "bcdfghjklmnprstvz"
    vowels = "aeiou"
    made = sorted({"".join(rng.choice(letters) + rng.choice(vowels) for _ in range(rng.randint(2, 4)))
                   for _ in range(4000)} - set(WORDS))
    words = made[:3000 - len(WORDS)]
    step = (len(words) - 40) // len(WORDS)
    for i, w in enumerate(WORDS):             # the query words, spread from rank 40 on
        words.insert(40 + i * (step + 1), w)
    weights = [1 / (r + 1) ** 1.1 for r in range(len(words))]
    cum = list(itertools.accumulate(weights))
    return lambda: rng.choices(words, cum_weights=cum)[0]


def build(path: Path, segments: int, vocab: str = "zipf", per_segment: int = 4, per_session: int = 10,
          days: int = 365, dim: int = 384) -> None:
    from memory.index import HybridIndex, IndexRow
    from memory.store import Store

    rng = random.Random(11)
    nrng = np.random.default_rng(11)
    word = vocabulary(vocab, rng)
    store = Store(path)
    sessions = segments // per_session
    start = time.time() - days * 86400
    gap = days * 86400 / sessions
    t0 = time.perf_counter()
    for first in range(0, sessions, 250):
        seg_rows, turn_rows = [], []
        with store.db.conn:
            for s in range(first, min(sessions, first + 250)):
                when = start + s * gap
                iso = lambda t: time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(t))   # noqa: E731
                sid = store.db.conn.execute("INSERT INTO sessions (title, started_at, source) VALUES (?, ?, ?)",
                                            [f"conversation {s}", iso(when), "chat"]).lastrowid
                for g in range(per_session):
                    ids, texts = [], []
                    for i in range(per_segment):
                        role = "user" if i % 2 == 0 else "assistant"
                        text = " ".join(word() for _ in range(14))
                        at = iso(when + g * 300 + i * 60)
                        tid = store.db.conn.execute(
                            "INSERT INTO turns (session_id, role, text, created_at) VALUES (?, ?, ?, ?)",
                            [sid, role, text, at]).lastrowid
                        ids.append(tid)
                        texts.append(text)
                        turn_rows.append((tid, f"{role.title()}: {text}", at, sid))
                    seg_at = iso(when + g * 300)
                    topic = " ".join(word() for _ in range(2))
                    seg = store.db.conn.execute(
                        "INSERT INTO segments (session_id, first_turn_id, last_turn_id, started_at, ended_at, topic, "
                        "key, method, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'fast', ?)",
                        [sid, ids[0], ids[-1], seg_at, turn_rows[-1][2], topic, "\n".join(texts), seg_at]).lastrowid
                    store.db.conn.executemany(
                        "INSERT INTO segment_turns (segment_id, turn_id, position) VALUES (?, ?, ?)",
                        [(seg, t, i) for i, t in enumerate(ids)])
                    seg_rows.append((seg, "\n".join(texts), seg_at, sid))
            for name, rows in (("segment", seg_rows), ("turn", turn_rows)):
                vecs = nrng.standard_normal((len(rows), dim)).astype(np.float32)
                vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
                HybridIndex(store, name).add([IndexRow(r[0], v, r[1], r[2], "chat", r[3]) for r, v in zip(rows, vecs)],
                                             commit=False)
        print(f"  {min(sessions, first + 250) * per_session:,} segments in {time.perf_counter() - t0:.0f} s",
              flush=True)
    store.close()


def percentile(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(p / 100 * len(xs)) - 1))]


def measure(path: Path, rounds: int, threads: int | None = None) -> dict:
    from threadpoolctl import threadpool_info, threadpool_limits

    from memory import detail
    from memory.bank import SegmentRecall
    from memory.embedder import SentenceTransformerEmbedder
    from memory.store import Store

    out: dict = {}
    embedder = SentenceTransformerEmbedder(background=False)
    embedder.wait()
    if threads:
        threadpool_limits(threads, user_api="blas")
    out["embedder threads"] = max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")
    store = Store(path)
    reader = store.reader()
    recall = detail.reading_recall(reader, SegmentRecall(store, embedder))
    t = time.perf_counter()
    detail.search(recall, "warming up the index")
    out["first search ms (loads the index mirror)"] = (time.perf_counter() - t) * 1000
    searches, embeds, details, lists, found = [], [], [], [], []
    for r in range(rounds):
        for q in QUERIES:
            q = f"{q} ({r})"                 # a new text each round: the embedder remembers recent ones
            t = time.perf_counter()
            memories, _ = detail.search(recall, q)
            searches.append(time.perf_counter() - t)
            t = time.perf_counter()
            embedder.embed([q + "?"])
            embeds.append(time.perf_counter() - t)
            found.append(len(memories))
            if memories:
                m = memories[0]
                t = time.perf_counter()
                detail.detail(reader, m.kind, m.id)
                details.append(time.perf_counter() - t)
        t = time.perf_counter()
        detail.recent(reader)
        lists.append(time.perf_counter() - t)
    ms = lambda xs: [x * 1000 for x in xs]   # noqa: E731
    out["searches"] = len(searches)
    out["memories listed per search (median)"] = statistics.median(found)
    out["search median ms"] = statistics.median(ms(searches))
    out["search p95 ms"] = percentile(ms(searches), 95)
    out["search max ms"] = max(ms(searches))
    out["query embedding alone median ms"] = statistics.median(ms(embeds))
    out["query embedding alone p95 ms"] = percentile(ms(embeds), 95)
    out["detail median ms"] = statistics.median(ms(details))
    out["detail p95 ms"] = percentile(ms(details), 95)
    out["latest memories list median ms"] = statistics.median(ms(lists))
    out["turns"] = store.count("turns")
    out["segments"] = store.count("segments")
    out["sessions"] = store.count("sessions")
    store.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--segments", type=int, default=25_000)
    ap.add_argument("--rounds", type=int, default=5, help="times each of the 20 queries is searched")
    ap.add_argument("--vocabulary", choices=["zipf", "small"], default="zipf",
                    help="the words of the synthetic talk (see above)")
    ap.add_argument("--embedder-threads", type=int,
                    help="numpy's BLAS threads for MiniLM (default: the app's own, a quarter of the cores)")
    args = ap.parse_args()
    path = ROOT / ".bench-cache" / f"memory-screen-{args.segments}-{args.vocabulary}.db"
    if not path.exists():
        path.parent.mkdir(exist_ok=True)
        tmp = path.with_suffix(".building")
        for f in tmp.parent.glob(tmp.name + "*"):
            f.unlink()
        t = time.perf_counter()
        build(tmp, args.segments, args.vocabulary)
        print(f"built in {time.perf_counter() - t:.0f} s (not part of the figures)")
        tmp.rename(path)
    print(f"machine: {platform.machine()}, {platform.processor() or 'cpu'}, python {platform.python_version()}")
    for k, v in measure(path, args.rounds, args.embedder_threads).items():
        print(f"{k}: {v:,.1f}" if isinstance(v, float) else f"{k}: {v:,}")


if __name__ == "__main__":
    main()
