"""Scale benchmark of the memory index: top-10 search with a time filter on synthetic segment banks.

    python tests/bench/index_scale.py --sizes 10000 100000 1000000 --queries 200 --json OUT

Per size, side by side on the same vectors and the same queries (interleaved, query by query):
- numpy brute force: exact cosine over an in-memory float32 matrix (the reference for agreement);
- sqlite-vec brute force: KNN in the vec0 table with its metadata filters;
- sqlite-vec bit[384]: hamming KNN in a vec0 bit table, then the same exact re-rank (an alternative);
- index dense: VectorIndex.search (sign-bit mirror, Hamming shortlist, exact re-rank);
- bm25 plain FTS5 query: every content word, filters on the UNINDEXED columns (the old lexical side);
- bm25 (index): HybridIndex.bm25 (id range from the time window, posting budget);
- index hybrid: HybridIndex.search (dense + BM25 + fusion), end to end.
Agreement is the share of the exact top-10 found: dense against numpy brute force, bm25 against the
plain query, hybrid against the fusion of the exact dense top-40 and the plain BM25 top-40. Times are
p50/p95 over the queries in milliseconds, wall clock and process CPU time (the host is shared).

Data looks like real embeddings: unit vectors from a Gaussian mixture (topic centroids, sub-topics, a
shared mean direction, noise), calibrated on real MiniLM embeddings of LoCoMo turns (median query
similarity 0.12, nearest neighbour ~0.6, and the same share of true neighbours among the Hamming top
20/40/100/200 as the real data); key texts are words from a Zipf vocabulary mixed with per-topic
words. `--real` also checks agreement on real MiniLM embeddings of ~10k LoCoMo texts (cached).

Banks are built once through HybridIndex.add (insertion throughput is reported separately) and cached
in .bench-cache/index_scale/; a build that was cut off resumes where it stopped.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import resource
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

# Every method runs on one thread (the index does): BLAS threads that spin after numpy's matrix
# product would also steal the core from, and add CPU time to, the calls measured after it.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from memory.index import _STOP, HybridIndex, IndexRow, fts_query, fuse  # noqa: E402
from memory.store import Store  # noqa: E402
from memory.vectors import VectorIndex, _MIRRORS, filter_sql, to_blob  # noqa: E402

CACHE = ROOT / ".bench-cache" / "index_scale"
KIND = "segment"
DIM = 384
CHUNK = 10_000                      # rows generated per seed: a bank of n rows is a prefix of a bigger one
T0 = datetime(2023, 1, 1, tzinfo=timezone.utc)
SPAN_DAYS = 3 * 365


# -- synthetic data ------------------------------------------------------------------------------------
class Synth:
    """Clustered unit vectors: shared mean + topic centroid + sub-topic offset + isotropic noise."""

    def __init__(self, topics=300, subs=50, noise=1.1, sub_w=0.8, mean_w=0.6, seed=0):
        rng = np.random.default_rng(seed)
        self.C = rng.standard_normal((topics, DIM)).astype(np.float32) / np.sqrt(DIM)
        self.S = rng.standard_normal((topics, subs, DIM)).astype(np.float32) / np.sqrt(DIM)
        self.mean = rng.standard_normal(DIM).astype(np.float32) / np.sqrt(DIM)
        pop = 1.0 / np.arange(1, topics + 1) ** 0.8
        self.pop = pop / pop.sum()
        self.topics, self.subs, self.noise, self.sub_w, self.mean_w = topics, subs, noise, sub_w, mean_w
        self.vocab = vocabulary(30_000, rng)
        # Each topic and sub-topic has its own words (from the middle and tail of the vocabulary).
        self.topic_words = rng.integers(200, len(self.vocab), (topics, 150))
        self.sub_words = rng.integers(500, len(self.vocab), (topics, subs, 30))
        zipf = 1.0 / np.arange(1, len(self.vocab) + 1) ** 1.07
        self.zipf = np.cumsum(zipf / zipf.sum())
        local = 1.0 / np.arange(1, 151) ** 1.0
        self.local = np.cumsum(local / local.sum())

    def sample(self, n, seed):
        rng = np.random.default_rng(seed)
        t = rng.choice(self.topics, n, p=self.pop)
        s = rng.integers(0, self.subs, n)
        x = (self.mean_w * self.mean + self.C[t] + self.sub_w * self.S[t, s]
             + self.noise * rng.standard_normal((n, DIM), dtype=np.float32) / np.sqrt(DIM))
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        return x.astype(np.float32), t, s, rng

    def text(self, rng, t, s, length):
        """Words: 60% global Zipf, 28% topic words (Zipf within the topic), 12% sub-topic words."""
        kind = rng.random(length)
        glob = np.searchsorted(self.zipf, rng.random(length))
        topic = self.topic_words[t, np.minimum(np.searchsorted(self.local, rng.random(length)), 149)]
        sub = self.sub_words[t, s, rng.integers(0, 30, length)]
        idx = np.where(kind < 0.6, glob, np.where(kind < 0.88, topic, sub))
        return " ".join(self.vocab[i] for i in idx)


def vocabulary(n, rng):
    """The stop words the query builder drops take the most frequent ranks (as in English, about half
    of all tokens), then pseudo-words."""
    words = sorted(_STOP)
    rng.shuffle(words)
    onsets = "b c d f g h j k l m n p r s t v w z br ch cl dr fl gr pl sh st th tr".split()
    vowels = "a e i o u ai ea ee io oo ou".split()
    codas = ["", "", "n", "r", "s", "t", "l", "m", "nd", "st"]
    seen = set(words)
    while len(words) < n:
        w = "".join(rng.choice(onsets) + rng.choice(vowels) for _ in range(rng.integers(1, 4)))
        w += rng.choice(codas)
        if w not in seen and len(w) > 2:
            seen.add(w)
            words.append(w)
    return words


def chunk_rows(g: Synth, c: int, n_total: int, texts: bool = True):
    """Rows c*CHUNK.. of a bank of n_total rows: ids, vectors, texts, created_at, source, session."""
    start = c * CHUNK
    m = min(CHUNK, n_total - start)
    X, t, s, rng = g.sample(m, seed=1000 + c)
    ids = np.arange(start + 1, start + m + 1)
    # Chronological by id over three years; 2% back-dated (imports of older conversations).
    frac = (ids - 1 + rng.random(m)) / n_total
    back = rng.random(m) < 0.02
    frac = np.where(back, frac * rng.random(m), frac)
    times = [(T0 + timedelta(days=SPAN_DAYS * f)).isoformat(timespec="milliseconds") for f in frac]
    src = rng.choice(np.array(["chat", "audio", "import"]), m, p=[0.8, 0.15, 0.05])
    src = np.where(back, "import", src)
    sess = (ids - 1) // 20 + 1
    texts = [g.text(rng, t[i], s[i], int(rng.integers(25, 60))) for i in range(m)] if texts else None
    return ids, X, texts, times, src, sess


def queries(g: Synth, nq: int):
    X, t, s, rng = g.sample(nq, seed=7)
    texts = [g.text(rng, t[i], s[i], int(rng.integers(4, 10))) for i in range(nq)]
    filters = []
    for _ in range(nq):
        f = rng.uniform(0.05, 1.0)            # share of the timeline the window covers
        a = rng.uniform(0, 1 - f)
        since = (T0 + timedelta(days=SPAN_DAYS * a)).isoformat(timespec="milliseconds")
        until = (T0 + timedelta(days=SPAN_DAYS * (a + f))).isoformat(timespec="milliseconds")
        filters.append({"since": since} if a + f > 0.97 else {"since": since, "until": until})
    return X, texts, filters


# -- building ------------------------------------------------------------------------------------------
def build(g: Synth, n: int, batch: int) -> tuple[Path, dict]:
    CACHE.mkdir(parents=True, exist_ok=True)
    path, meta_path = CACHE / f"bank_{n}.db", CACHE / f"bank_{n}.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {"rows": 0, "seconds": 0.0}
    if meta.get("done"):
        return path, meta
    store = Store(path)
    index = HybridIndex(store, KIND)
    have = store.count(f"codes_{KIND}")
    # Resume at the first chunk not fully written (each batch is its own transaction).
    c0 = have // CHUNK
    for c in range(c0, math.ceil(n / CHUNK)):
        ids, X, texts, times, src, sess = chunk_rows(g, c, n)
        done = store.db.execute(f"SELECT COUNT(*) FROM codes_{KIND} WHERE id BETWEEN ? AND ?",
                                [int(ids[0]), int(ids[-1])]).fetchone()[0]
        rows = [IndexRow(int(ids[i]), X[i], texts[i], times[i], str(src[i]), int(sess[i]))
                for i in range(len(ids))][done:]
        t = time.perf_counter()
        for b in range(0, len(rows), batch):
            index.add(rows[b:b + batch])
        meta["seconds"] += time.perf_counter() - t
        meta["rows"] += len(rows)
        meta_path.write_text(json.dumps(meta))
        print(f"  built {ids[-1]:,}/{n:,} rows ({meta['rows'] / meta['seconds']:,.0f} rows/s)", flush=True)
    t = time.perf_counter()
    build_bits(store, n)
    meta["bits_seconds"] = time.perf_counter() - t
    store.db.execute("PRAGMA optimize")
    store.close()
    meta["done"] = True
    meta["rows_per_s"] = meta["rows"] / meta["seconds"]
    meta["db_bytes"] = path.stat().st_size
    meta_path.write_text(json.dumps(meta))
    return path, meta


def build_bits(store: Store, n: int) -> None:
    """The alternative: a vec0 table of bit[384] codes with the same metadata columns."""
    db = store.db
    with db.conn:
        db.execute(f"CREATE VIRTUAL TABLE IF NOT EXISTS bench_bits_{KIND} USING vec0(id INTEGER PRIMARY KEY, "
                   f"code bit[{DIM}], created_at TEXT, source TEXT, session_id INTEGER)")
        db.execute(f"DELETE FROM bench_bits_{KIND}")
        db.execute(f"INSERT INTO bench_bits_{KIND} (id, code, created_at, source, session_id) "
                   f"SELECT c.id, vec_quantize_binary(v.vector), c.created_at, c.source, c.session_id "
                   f"FROM codes_{KIND} c JOIN codes_{KIND}_vectors v ON v.id = c.id")


# -- measuring -----------------------------------------------------------------------------------------
def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class Exact:
    """numpy brute force on the bank's vectors (regenerated, identical to what was inserted)."""

    def __init__(self, g: Synth, n: int):
        self.X = np.empty((n, DIM), np.float32)
        times = []
        for c in range(math.ceil(n / CHUNK)):
            ids, X, _, t, _, _ = chunk_rows(g, c, n, texts=False)
            self.X[ids[0] - 1:ids[-1]] = X
            times += t
        self.times = np.array([t.encode() for t in times])

    def search(self, q, k, since=None, until=None):
        mask = np.ones(len(self.X), bool)
        if since:
            mask &= self.times >= since.encode()
        if until:
            mask &= self.times < until.encode()
        sims = self.X @ q
        sims[~mask] = -np.inf
        top = np.argpartition(-sims, k)[:k]
        top = top[np.argsort(-sims[top])]
        return [(int(i) + 1, float(sims[i])) for i in top if np.isfinite(sims[i])], float(mask.mean())


def bm25_plain(hybrid: HybridIndex, text, k, since=None, until=None):
    """The lexical side as a plain FTS5 query (every content word, filters on UNINDEXED columns):
    the reference for agreement, and what the index did before the id-range bound and the budget."""
    q = fts_query(text)
    if q is None:
        return []
    where, params = filter_sql(since, until)
    where, params = [f"{hybrid.fts} MATCH ?", *where], [q, *params]
    return [(i, -s) for i, s in hybrid.store.db.execute(
        f"SELECT rowid, bm25({hybrid.fts}) AS s FROM {hybrid.fts} WHERE {' AND '.join(where)} "
        "ORDER BY s LIMIT ?", params + [k]).fetchall()]


def bits_search(vi: VectorIndex, q, k, rerank, since=None, until=None):
    where, params = filter_sql(since, until)
    where = ["code MATCH vec_quantize_binary(?)", "k = ?", *where]
    params = [to_blob(q), int(min(rerank, 4096)), *params]
    ids = [r[0] for r in vi.store.db.execute(
        f"SELECT id FROM bench_bits_{KIND} WHERE {' AND '.join(where)} ORDER BY distance", params)]
    return vi.exact(q, np.array(ids), k)


CPU_MS: list[float] = []   # process CPU time of the last timed call (all threads), ms


def timed(fn):
    """(result, wall ms); the call's process CPU ms is left in CPU_MS[-1]."""
    c, t = time.process_time(), time.perf_counter()
    out = fn()
    wall = (time.perf_counter() - t) * 1000
    CPU_MS.append((time.process_time() - c) * 1000)
    return out, wall


def agree(got, ref, k=10):
    """Share of the reference top-k in the top-k found (1.0 when both are empty)."""
    ref = [i for i, *_ in ref[:k]]
    if not ref:
        return 0.0 if got else 1.0
    return len({i for i, *_ in got[:k]} & set(ref)) / len(ref)


def run_size(g: Synth, n: int, nq: int, svec_queries: int, batch: int, repeat: int) -> dict:
    print(f"\n== {n:,} rows", flush=True)
    path, meta = build(g, n, batch)
    QX, qtext, qfilt = queries(g, nq)
    rss0 = rss_mb()
    exact = Exact(g, n)
    rss_exact = rss_mb() - rss0
    _MIRRORS.clear()
    store = Store(path)
    hybrid = HybridIndex(store, KIND)
    vi = hybrid.vectors
    rss1 = rss_mb()
    _, load_ms = timed(vi.mirror)
    mirror = vi.mirror()
    rss_mirror = rss_mb() - rss1
    methods = ("numpy brute force", "sqlite-vec brute force", "sqlite-vec bit[384] + re-rank",
               "index dense", "bm25 plain FTS5 query", "bm25 (index)", "index hybrid")
    res = {m: {"ms": [], "cpu": [], "best": [], "agree": []} for m in methods}

    def measure(method, fn, times=1):
        """Run fn `times` times: the first run's wall and CPU ms, and the best wall ms of all runs."""
        out, ms = timed(fn)
        r = res[method]
        r["ms"].append(ms)
        r["cpu"].append(CPU_MS[-1])
        best = ms
        for _ in range(times - 1):
            best = min(best, timed(fn)[1])
        r["best"].append(best)
        return out

    eligible = []
    for i in range(nq):
        q, text, f = QX[i], qtext[i], qfilt[i]
        ref, share = measure("numpy brute force", lambda: exact.search(q, 10, **f), repeat)
        eligible.append(share)
        res["numpy brute force"]["agree"].append(1.0)
        got = measure("index dense", lambda: vi.search(q, 10, **f), repeat)
        res["index dense"]["agree"].append(agree(got, ref))
        plain = measure("bm25 plain FTS5 query", lambda: bm25_plain(hybrid, text, 40, **f), repeat)
        res["bm25 plain FTS5 query"]["agree"].append(1.0)
        hybrid._df.clear()  # first runs pay for counting the words' document frequencies
        lex = measure("bm25 (index)", lambda: hybrid.bm25(text, 40, **f), repeat)
        res["bm25 (index)"]["agree"].append(agree(lex, plain))
        hybrid._df.clear()
        got = measure("index hybrid", lambda: hybrid.search(text, q, 10, **f), repeat)
        ref40, _ = exact.search(q, 40, **f)
        res["index hybrid"]["agree"].append(agree([(h.id,) for h in got],
                                                  [(h.id,) for h in fuse(ref40, plain, 10)]))
        if i < svec_queries:
            rerank = vi.rerank or min(1500, max(200, int(math.sqrt(share * n))))
            got = measure("sqlite-vec bit[384] + re-rank", lambda: bits_search(vi, q, 10, rerank, **f))
            res["sqlite-vec bit[384] + re-rank"]["agree"].append(agree(got, ref))
            got = measure("sqlite-vec brute force", lambda: vi.search_sqlite_vec(q, 10, **f))
            res["sqlite-vec brute force"]["agree"].append(agree(got, ref))
        if (i + 1) % 50 == 0:
            print(f"  {i + 1}/{nq} queries", flush=True)
    out = {"n": n, "build": meta, "incremental": incremental(g, store, hybrid, n),
           "mirror_load_ms": load_ms, "mirror_bytes": mirror.nbytes(),
           "mirror_rss_mb": rss_mirror, "numpy_matrix_mb": exact.X.nbytes / 2**20,
           "numpy_rss_mb": rss_exact, "eligible_share_median": float(np.median(eligible)),
           "methods": {}}
    for m, r in res.items():
        if not r["ms"]:
            continue
        ms, cpu, best = np.array(r["ms"]), np.array(r["cpu"]), np.array(r["best"])
        out["methods"][m] = {"queries": len(ms), "p50_ms": float(np.percentile(ms, 50)),
                             "p95_ms": float(np.percentile(ms, 95)), "mean_ms": float(ms.mean()),
                             "best_p50_ms": float(np.percentile(best, 50)),
                             "best_p95_ms": float(np.percentile(best, 95)),
                             "cpu_p50_ms": float(np.percentile(cpu, 50)),
                             "cpu_p95_ms": float(np.percentile(cpu, 95)),
                             "agreement": float(np.mean(r["agree"])) if r["agree"] else None}
    store.close()
    return out


def incremental(g: Synth, store: Store, hybrid: HybridIndex, n: int, m: int = 2000, batch: int = 64):
    """Add m rows in app-sized batches on top of the bank, catch the mirror up, then remove them."""
    X, t, s, rng = g.sample(m, seed=99)  # fresh rows
    texts = [g.text(rng, t[i], s[i], 40) for i in range(m)]
    now = (T0 + timedelta(days=SPAN_DAYS + 1)).isoformat(timespec="milliseconds")
    rows = [IndexRow(n + 1 + i, X[i], texts[i], now, "chat", 10**9) for i in range(m)]
    t = time.perf_counter()
    for b in range(0, m, batch):
        hybrid.add(rows[b:b + batch])
    add_s = time.perf_counter() - t
    _, catch_ms = timed(lambda: hybrid.vectors.search(X[0], 10))
    found = hybrid.vectors.search(X[0], 1)[0][0] == n + 1
    t = time.perf_counter()
    for b in range(0, m, batch):
        hybrid.remove([r.id for r in rows[b:b + batch]])
    remove_s = time.perf_counter() - t
    gone = all(h[0] <= n for h in hybrid.vectors.search(X[0], 10))
    return {"rows": m, "batch": batch, "add_rows_per_s": m / add_s, "remove_rows_per_s": m / remove_s,
            "catch_up_ms": catch_ms, "new_row_found": found, "removed_rows_gone": gone}


def real_agreement(rerank_values=(None,)) -> dict:
    """Agreement on real MiniLM embeddings of LoCoMo texts (questions as queries), if cached/available."""
    X_path, Q_path = CACHE / "locomo_X.npy", CACHE / "locomo_Q.npy"
    if not X_path.exists():
        return {}
    X, Q = np.load(X_path), np.load(Q_path)
    path = CACHE / "locomo_real.db"
    if path.exists():
        path.unlink()
    store = Store(path)
    vi = VectorIndex(store, KIND)
    vi.add([(i + 1, X[i], (T0 + timedelta(minutes=i)).isoformat(), "chat", i // 20) for i in range(len(X))])
    out = {"rows": len(X), "queries": len(Q)}
    a = []
    for q in Q:
        sims = X @ q
        ref = [(int(i) + 1,) for i in np.argsort(-sims)[:10]]
        a.append(agree(vi.search(q, 10), ref))
    out["agreement"] = float(np.mean(a))
    store.close()
    path.unlink()
    return out


def machine() -> str:
    model = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?")
    return f"{os.cpu_count()} CPUs ({model}), numpy {np.__version__}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--svec-queries", type=int, default=None,
                    help="queries per size for the two sqlite-vec methods (default: all up to 100k, 40 above)")
    ap.add_argument("--batch", type=int, default=1000, help="rows per HybridIndex.add while building")
    ap.add_argument("--repeat", type=int, default=3,
                    help="runs per query of the fast methods; 'best' columns take the fastest (host noise)")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--no-real", action="store_true")
    ap.add_argument("--build-only", action="store_true", help="build (or finish building) the banks and stop")
    args = ap.parse_args()
    g = Synth()
    if args.build_only:
        for n in args.sizes:
            print(n, build(g, n, args.batch)[1])
        return
    report = {"machine": machine(), "sizes": []}
    if not args.no_real:
        report["real_minilm"] = real_agreement()
        print("real MiniLM (LoCoMo) agreement:", report["real_minilm"], flush=True)
    for n in args.sizes:
        svec = args.svec_queries if args.svec_queries is not None else (args.queries if n <= 100_000 else 40)
        report["sizes"].append(run_size(g, n, args.queries, svec, args.batch, args.repeat))
        if args.json:
            args.json.write_text(json.dumps(report, indent=1))
    print(f"\nmachine: {report['machine']}")
    print("p50/p95: wall clock of each query's first run; best: the fastest of --repeat runs of the query;"
          " cpu: process CPU time of the first run (all in ms)")
    print(f"{'size':>9}  {'method':<30} {'queries':>7} {'p50':>7} {'p95':>7} {'best p50':>8} {'best p95':>8}"
          f" {'cpu p50':>7} {'cpu p95':>7} {'top-10 agree':>12}  memory")
    for s in report["sizes"]:
        for m, r in s["methods"].items():
            mem = {"numpy brute force": f"{s['numpy_matrix_mb']:.0f} MB float32 matrix",
                   "index dense": f"mirror {s['mirror_bytes'] / 2**20:.0f} MB (RSS +{s['mirror_rss_mb']:.0f} MB)",
                   "index hybrid": "same mirror + FTS5 in SQLite"}.get(m, "in SQLite")
            a = "-" if r["agreement"] is None else f"{r['agreement']:.3f}"
            print(f"{s['n']:>9,}  {m:<30} {r['queries']:>7} {r['p50_ms']:>7.1f} {r['p95_ms']:>7.1f}"
                  f" {r['best_p50_ms']:>8.1f} {r['best_p95_ms']:>8.1f}"
                  f" {r['cpu_p50_ms']:>7.1f} {r['cpu_p95_ms']:>7.1f} {a:>12}  {mem}")
    for s in report["sizes"]:
        b = s["build"]
        print(f"{s['n']:>9,}  build {b['rows_per_s']:,.0f} rows/s through HybridIndex.add (batches of "
              f"{args.batch}); mirror cold load {s['mirror_load_ms']:.0f} ms; db {b['db_bytes'] / 2**20:,.0f} MB; "
              f"median eligible share {s['eligible_share_median']:.2f}")
        inc = s["incremental"]
        print(f"{'':>9}  on top of it, batches of {inc['batch']}: add {inc['add_rows_per_s']:,.0f} rows/s, "
              f"remove {inc['remove_rows_per_s']:,.0f} rows/s, mirror catch-up {inc['catch_up_ms']:.0f} ms "
              f"(found {inc['new_row_found']}, removed gone {inc['removed_rows_gone']})")


if __name__ == "__main__":
    main()
