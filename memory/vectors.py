"""Dense vector index over one kind of memory unit ("turn", "segment"), with metadata filters.

Scores are cosine similarities: higher means more similar.

Storage (all in the SQLite file, which stays the source of truth):
- `vectors_<name>`: the sqlite-vec table (float32 + filter columns), kept for SQL users and as the
  fallback for kinds that have no code tables;
- `codes_<name>`: one sign bit per dimension (48 bytes at 384-d) with the filter columns and the
  change generation `gen` of the write that made the row;
- `codes_<name>_vectors`: float32 vectors by id, for exact re-ranking;
- `codes_<name>_gone`: tombstones (id, gen) of removed units.

Search runs on an in-memory mirror of `codes_<name>` (sorted by created_at, so a time filter is a
slice): Hamming distance of the query's sign bits to every eligible row (XOR + popcount), a shortlist
re-scored asymmetrically (float query against the sign bits), then exact cosine on float32 vectors
fetched for the final candidates only. Filters are exact (they select rows, they do not re-rank), and a
removed unit is never returned: candidates are fetched from `codes_<name>_vectors`, where it is gone.
The mirror is shared by every index on the same Store and catches up incrementally with writes from
this or another connection (the meta key 'codes_gen:<name>' counts generations); while this
connection has a transaction open it waits for the commit. Writes go through `add` and `remove`:
rows written to `vectors_<name>` by plain SQL are not seen by `search`.

Why sign bits: 48 bytes a unit keep a million units in ~110 MB of memory, and the Hamming distance
ranks MiniLM neighbours well enough that a shortlist of about sqrt(eligible) units, re-ranked exactly,
holds the exact top 10 (agreement 0.99+ on real and synthetic embeddings, see
tests/bench/index_scale.py). Centering the vectors before taking signs did not help on MiniLM.
"""
from __future__ import annotations

import bisect
import math
import threading
import weakref
from typing import Iterable, Sequence

import numpy as np

from .store import Store

_NO_SESSION = np.iinfo(np.int64).min
_BYTE_SIGNS = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).astype(np.float32) * 2 - 1
_MIRRORS: "weakref.WeakKeyDictionary[Store, dict[str, _Mirror]]" = weakref.WeakKeyDictionary()
_MIRRORS_LOCK = threading.Lock()


def to_blob(v: np.ndarray) -> bytes:
    return np.asarray(v, dtype=np.float32).tobytes()


def atomic(store: Store, commit: bool, fn) -> None:
    """Run `fn` in one transaction: the caller's open one when commit is False, else its own."""
    conn = store.db.conn
    if commit or not conn.in_transaction:
        with conn:
            fn()
    else:
        fn()


def encode(vectors: np.ndarray) -> np.ndarray:
    """Sign bits of each row, packed big-endian, padded to whole 64-bit words: (n, bytes) uint8."""
    vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
    width = -(-vectors.shape[1] // 64) * 8
    bits = np.packbits(vectors > 0, axis=1)
    if bits.shape[1] == width:
        return bits
    out = np.zeros((len(vectors), width), np.uint8)
    out[:, :bits.shape[1]] = bits
    return out


def smallest(d: np.ndarray, n: int) -> np.ndarray:
    """Indices of the n smallest values of a small-integer array (ties broken by position)."""
    if n >= len(d):
        return np.arange(len(d))
    counts = np.cumsum(np.bincount(d))
    t = int(np.searchsorted(counts, n))          # smallest value t with at least n rows <= t
    below = np.flatnonzero(d < t)
    at = np.flatnonzero(d == t)[: n - len(below)]
    return np.concatenate([below, at])


def time_sql(since=None, until=None, *, ends: str = "created_at", starts: str | None = None
             ) -> tuple[list[str], list]:
    """SQL conditions (and parameters) for rows that reach into [since, until): `ends` >= since and
    `starts` < until (one column for rows at a point in time, two for spans such as a session)."""
    where, params = [], []
    if since:
        where.append(f"{ends} >= ?")
        params.append(since)
    if until:
        where.append(f"{starts or ends} < ?")
        params.append(until)
    return where, params


def filter_sql(since=None, until=None, sources=None, session_ids=None) -> tuple[list[str], list]:
    """SQL conditions (and their parameters) for the time, source and session filters."""
    where, params = time_sql(since, until)
    if sources:
        where.append(f"source IN ({','.join('?' * len(sources))})")
        params.extend(sources)
    if session_ids:
        where.append(f"session_id IN ({','.join('?' * len(session_ids))})")
        params.extend(session_ids)
    return where, params


class _Mirror:
    """In-memory copy of `codes_<name>`, in created_at order. Rows are appended (or merged, when
    older than the newest) and marked dead on removal; dead rows are dropped in a compaction."""

    GROW = 1.125

    def __init__(self, words: int):
        self.words = words
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        self.n = 0
        self.dead = 0
        self.gen = -1
        self.seen = None                 # (data_version, total_changes) at the last check
        self.max_id = -1
        self.null_times = 0              # rows whose created_at is NULL (never pass a time filter)
        self.sources: dict = {}          # source text -> small int code
        self._alloc(0)

    def _alloc(self, cap: int, width: int = 1) -> None:
        self.codes = np.zeros((self.words, cap), np.uint64)
        self.ids = np.zeros(cap, np.int64)
        self.times = np.zeros(cap, f"S{max(width, 1)}")
        self.timeless = np.zeros(cap, bool)
        self.src = np.zeros(cap, np.int16)
        self.sess = np.zeros(cap, np.int64)
        self.alive = np.zeros(cap, bool)

    def arrays(self):
        return ("codes", "ids", "times", "timeless", "src", "sess", "alive")

    def nbytes(self) -> int:
        return sum(getattr(self, a).nbytes for a in self.arrays())

    # -- building ----------------------------------------------------------------------------------
    def columns(self, rows, sort: bool = True) -> dict:
        """Arrays for rows of (id, created_at, source, session_id, code), sorted by created_at."""
        ids, times, sources, sessions, codes = (list(c) for c in zip(*rows)) if rows else ([],) * 5
        n = len(ids)
        timeless = np.zeros(n, bool)
        if None in times:
            timeless = np.fromiter((t is None for t in times), bool, n)
            times = ["" if t is None else t for t in times]
        try:
            width = max(map(len, times), default=1)
            times = np.array(times, dtype=f"S{max(width, 1)}")      # ASCII (ISO-8601): the fast path
        except UnicodeEncodeError:
            encoded = [t.encode() for t in times]
            times = np.array(encoded, dtype=f"S{max(max(map(len, encoded), default=1), 1)}")
        for value in set(sources) - self.sources.keys():
            self.sources[value] = len(self.sources)
        src = np.fromiter(map(self.sources.__getitem__, sources), np.int16, n)
        if None in sessions:
            sessions = [_NO_SESSION if x is None else x for x in sessions]
        code = np.frombuffer(b"".join(codes), np.uint8).reshape(n, self.words * 8).view(np.uint64).T
        cols = dict(codes=code, ids=np.array(ids, np.int64), times=times, timeless=timeless, src=src,
                    sess=np.array(sessions, np.int64), alive=np.ones(n, bool))
        if sort and n > 1 and not bool(np.all(times[1:] >= times[:-1])):
            order = np.argsort(times, kind="stable")
            cols = {k: (v[:, order] if k == "codes" else v[order]) for k, v in cols.items()}
        return cols

    def insert(self, rows) -> None:
        if not rows:
            return
        cols = self.columns(rows)
        m, n = len(rows), self.n
        self.max_id = max(self.max_id, int(cols["ids"].max()))
        self.null_times += int(cols["timeless"].sum())
        width = max(self.times.dtype.itemsize, cols["times"].dtype.itemsize)
        if n and cols["times"][0] < self.times[n - 1]:
            # Older than the newest row: merge into place (rare: imports, back-dated audio).
            at = np.searchsorted(self.times[:n], cols["times"], side="right")
            merged = {}
            for a in self.arrays():
                old = getattr(self, a)
                if a == "codes":
                    merged[a] = np.insert(old[:, :n], at, cols[a], axis=1)
                elif a == "times":
                    merged[a] = np.insert(old[:n].astype(f"S{width}"), at, cols[a])
                else:
                    merged[a] = np.insert(old[:n], at, cols[a])
            self._load(merged, n + m)
            return
        if n + m > len(self.ids) or width > self.times.dtype.itemsize:
            cap = max(n + m, int(len(self.ids) * self.GROW) + 1024)
            old = {a: getattr(self, a) for a in self.arrays()}
            self._alloc(cap, width)
            for a in self.arrays():
                if a == "codes":
                    self.codes[:, :n] = old[a][:, :n]
                else:
                    getattr(self, a)[:n] = old[a][:n]
        for a in self.arrays():
            if a == "codes":
                self.codes[:, n:n + m] = cols[a]
            else:
                getattr(self, a)[n:n + m] = cols[a]
        self.n = n + m

    def _load(self, cols: dict, n: int) -> None:
        self._alloc(n + max(1024, n // 16), cols["times"].dtype.itemsize)
        for a in self.arrays():
            if a == "codes":
                self.codes[:, :n] = cols[a]
            else:
                getattr(self, a)[:n] = cols[a]
        self.n = n
        self.dead = int(n - cols["alive"].sum())

    def kill(self, ids: np.ndarray) -> None:
        if not len(ids) or not self.n:
            return
        ids = np.asarray(ids, np.int64)
        if int(ids.min()) > self.max_id:
            return
        hit = np.flatnonzero(np.isin(self.ids[:self.n], ids) & self.alive[:self.n])
        if len(hit):
            self.alive[hit] = False
            self.null_times -= int(self.timeless[hit].sum())
            self.dead += len(hit)
        if self.dead > max(1024, self.n // 4):
            self.compact()

    def compact(self) -> None:
        keep = np.flatnonzero(self.alive[:self.n])
        cols = {a: (self.codes[:, keep] if a == "codes" else getattr(self, a)[keep]) for a in self.arrays()}
        self._load(cols, len(keep))

    # -- querying ----------------------------------------------------------------------------------
    def select(self, since, until, sources, session_ids):
        """(lo, hi, mask): the eligible rows are positions lo..hi where mask (None: all) is set."""
        n = self.n
        lo, hi = 0, n
        # bisect, not np.searchsorted: a bound longer than the stored times ("...00.000+00:00") would
        # make numpy copy the whole column to the wider type first (7 ms at 2M rows, per search).
        if since:
            lo = bisect.bisect_left(self.times, since.encode(), 0, n)
        if until:
            hi = bisect.bisect_left(self.times, until.encode(), 0, n)
        if hi <= lo:
            return lo, lo, None
        mask = None if not self.dead else self.alive[lo:hi].copy()

        def both(m):
            return m if mask is None else (mask & m)

        if (since or until) and self.null_times:
            mask = both(~self.timeless[lo:hi])
        if sources:
            table = np.zeros(max(len(self.sources), 1), bool)
            for s in sources:
                if s in self.sources:
                    table[self.sources[s]] = True
            mask = both(table[self.src[lo:hi]])
        if session_ids:
            mask = both(np.isin(self.sess[lo:hi], np.asarray(list(session_ids), np.int64)))
        return lo, hi, mask

    def hamming(self, qcode: np.ndarray, lo: int, hi: int, block: int = 32768) -> np.ndarray:
        """Hamming distances of rows lo..hi to the query's code, in cache-sized blocks."""
        d = np.empty(hi - lo, np.uint16)
        tmp = np.empty(min(block, hi - lo), np.uint64)
        cnt = np.empty(len(tmp), np.uint8)
        for a in range(lo, hi, block):
            b = min(hi, a + block)
            t, c, out = tmp[:b - a], cnt[:b - a], d[a - lo:b - lo]
            for w in range(self.words):
                np.bitwise_xor(self.codes[w, a:b], qcode[w], out=t)
                np.bitwise_count(t, out=c)
                if w:
                    out += c
                else:
                    out[:] = c
        return d

    def asymmetric(self, q: np.ndarray, pos: np.ndarray) -> np.ndarray:
        """sum_i q_i * sign_i for the rows at `pos` (higher is closer), by byte lookup tables."""
        nbytes = self.words * 8
        qq = np.zeros(nbytes * 8, np.float32)
        qq[:len(q)] = q
        lut = qq.reshape(nbytes, 8) @ _BYTE_SIGNS.T                       # (bytes, 256)
        codes = np.ascontiguousarray(self.codes[:, pos].T).view(np.uint8)  # (len(pos), bytes)
        return lut[np.arange(nbytes), codes].sum(axis=1)


class VectorIndex:
    """Dense KNN with exact filters over `vectors_<name>`; see the module docstring.

    `rerank` (default: about the square root of the eligible row count, within 200..1500) is how many
    candidates get an exact cosine; `shortlist` times as many are re-scored from their sign bits."""

    def __init__(self, store: Store, name: str, *, rerank: int | None = None, shortlist: int = 4):
        self.store = store
        self.name = name
        self.table = f"vectors_{name}"
        self.codes = f"codes_{name}"
        self.rerank = rerank
        self.shortlist = shortlist
        self.gen_key = f"codes_gen:{name}"
        self.coded = bool(store.db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", [self.codes]).fetchone())

    # -- writing -----------------------------------------------------------------------------------
    def _bump(self) -> int:
        """Next generation; the write takes the database's write lock before the value is read."""
        conn = self.store.db.conn
        conn.execute("INSERT INTO meta (key, value) VALUES (?, '1') ON CONFLICT(key) DO UPDATE "
                     "SET value = CAST(value AS INTEGER) + 1", [self.gen_key])
        return int(conn.execute("SELECT value FROM meta WHERE key = ?", [self.gen_key]).fetchone()[0])

    def add(self, rows: Iterable[tuple[int, np.ndarray, str, str, int]], commit: bool = True) -> None:
        """Insert or replace (id, vector, created_at, source, session_id) rows, in one transaction.

        commit=False joins the caller's open transaction (committed here when none is open)."""
        atomic(self.store, commit, lambda: self.write(list(rows)))

    def write(self, rows: list) -> None:
        """The statements of `add`, in the current transaction."""
        if not rows:
            return
        conn = self.store.db.conn
        blobs = [to_blob(r[1]) for r in rows]
        conn.executemany(f"DELETE FROM {self.table} WHERE id = ?", [(r[0],) for r in rows])
        conn.executemany(
            f"INSERT INTO {self.table} (id, embedding, created_at, source, session_id) "
            "VALUES (?, ?, ?, ?, ?)", [(r[0], b, r[2], r[3], r[4]) for r, b in zip(rows, blobs)])
        if not self.coded:
            return
        gen = self._bump()
        codes = encode(np.stack([np.asarray(r[1], np.float32).ravel() for r in rows]))
        conn.executemany(
            f"INSERT OR REPLACE INTO {self.codes} (id, gen, created_at, source, session_id, code) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(r[0], gen, r[2], r[3], r[4], c.tobytes()) for r, c in zip(rows, codes)])
        conn.executemany(f"INSERT OR REPLACE INTO {self.codes}_vectors (id, vector) VALUES (?, ?)",
                         [(r[0], b) for r, b in zip(rows, blobs)])

    def write_new(self, rows: str, vectors: np.ndarray) -> None:
        """Rows that are not in the index yet (a restore into an empty one), in the current transaction:
        `rows` is a JSON array of [id, created_at, source, session_id], `vectors` their vectors in the same
        order. SQLite reads the rows and slices the vectors' bytes itself, with no delete before each
        insert: a row at a time through Python was most of restoring millions of vectors."""
        vectors = np.ascontiguousarray(vectors, dtype="<f4")
        size = vectors.shape[1] * 4
        data = vectors.tobytes()
        conn = self.store.db.conn
        conn.execute(f"INSERT INTO {self.table} (id, embedding, created_at, source, session_id) SELECT value->>0, "
                     f"substr(?2, key * {size} + 1, {size}), value->>1, value->>2, value->>3 FROM json_each(?1)",
                     [rows, data])
        if not self.coded:
            return
        codes = encode(vectors)
        width = codes.shape[1]
        conn.execute(f"INSERT INTO {self.codes} (id, gen, created_at, source, session_id, code) SELECT value->>0, ?3, "
                     f"value->>1, value->>2, value->>3, substr(?2, key * {width} + 1, {width}) FROM json_each(?1)",
                     [rows, codes.tobytes(), self._bump()])
        conn.execute(f"INSERT INTO {self.codes}_vectors (id, vector) SELECT value->>0, "
                     f"substr(?2, key * {size} + 1, {size}) FROM json_each(?1)", [rows, data])

    def remove(self, ids: Sequence[int]) -> None:
        """Delete units, in the caller's open transaction (committed here when none is open).
        A removed unit is never returned by a search again, even before the commit."""
        ids = [int(i) for i in ids]
        if ids:
            atomic(self.store, False, lambda: self.erase(ids))

    def erase(self, ids: list[int]) -> None:
        """The statements of `remove`, in the current transaction."""
        conn = self.store.db.conn
        # vec0 scans the whole table for `id IN (...)`; one point delete per id is fast.
        conn.executemany(f"DELETE FROM {self.table} WHERE id = ?", [(i,) for i in ids])
        for start in range(0, len(ids), 10000):
            part = ids[start:start + 10000]
            marks = ",".join("?" * len(part))
            if self.coded:
                conn.execute(f"DELETE FROM {self.codes}_vectors WHERE id IN ({marks})", part)
                conn.execute(f"DELETE FROM {self.codes} WHERE id IN ({marks})", part)
        if self.coded:
            gen = self._bump()
            conn.executemany(f"INSERT INTO {self.codes}_gone (id, gen) VALUES (?, ?)",
                             [(i, gen) for i in ids])

    def missing(self, table: str, where: str = "1", limit: int | None = None) -> list[int]:
        """Ids of rows of `table` that have no vector yet."""
        indexed = self.codes if self.coded else self.table
        sql = (f"SELECT t.id FROM {table} t LEFT JOIN {indexed} v ON v.id = t.id "
               f"WHERE v.id IS NULL AND ({where}) ORDER BY t.id")
        if limit:
            sql += f" LIMIT {int(limit)}"
        return [r[0] for r in self.store.db.execute(sql).fetchall()]

    # -- the in-memory mirror ----------------------------------------------------------------------
    def warm(self) -> threading.Thread:
        """Load the mirror in a background thread (about 2 s of CPU per million units), so that the
        first search does not wait for it; a search meanwhile waits for the load to finish."""
        def load() -> None:
            with self.store.background() as go:
                if go:
                    self.mirror()

        t = threading.Thread(target=load, name=f"warm-{self.codes}", daemon=True)
        t.start()
        return t

    def mirror(self) -> _Mirror:
        """The shared in-memory mirror, brought up to date with the committed database."""
        with _MIRRORS_LOCK:
            per_store = _MIRRORS.setdefault(self.store, {})
            m = per_store.get(self.name)
        if m is None:
            dim = self.store.embedding_dim
            m = _Mirror(-(-dim // 64))
            with _MIRRORS_LOCK:
                m = per_store.setdefault(self.name, m)
        with m.lock:
            self._refresh(m)
        return m

    def _refresh(self, m: _Mirror) -> None:
        conn = self.store.db.conn
        seen = (conn.execute("PRAGMA data_version").fetchone()[0], conn.total_changes)
        if seen == m.seen:
            return
        if conn.in_transaction and m.gen >= 0:
            # Uncommitted writes of this connection may still roll back: the mirror waits for the
            # commit (removed units are still filtered out when candidates are fetched).
            return
        row = conn.execute("SELECT value FROM meta WHERE key = ?", [self.gen_key]).fetchone()
        gen = int(row[0]) if row else 0
        if gen < m.gen or m.gen < 0:
            self._load(m, gen)
            if m.gen < 0:          # stopped: the store is closing
                return
        elif gen > m.gen:
            self._catch_up(m, gen)
        m.seen = None if conn.in_transaction else seen

    def _load(self, m: _Mirror, gen: int) -> None:
        m.reset()
        parts, last = [], None
        while (part := self._chunk(m, gen, last)) is not None:
            if self.store.closing:
                m.reset()
                return
            parts.append(part)
            last = int(part["ids"][-1])
        if parts:
            cols = {a: (np.concatenate([p[a] for p in parts], axis=1) if a == "codes"
                        else np.concatenate([p[a] for p in parts])) for a in m.arrays()}
            del parts
            if not bool(np.all(cols["times"][1:] >= cols["times"][:-1])):
                order = np.argsort(cols["times"], kind="stable")
                cols = {a: (v[:, order] if a == "codes" else v[order]) for a, v in cols.items()}
            m._load(cols, len(cols["ids"]))
            m.max_id = int(cols["ids"].max())
            m.null_times = int(cols["timeless"].sum())
        m.gen = gen

    LOAD_CHUNK = 65536

    def _chunk(self, m: _Mirror, gen: int, after: int | None) -> dict | None:
        """The mirror's columns for the next LOAD_CHUNK rows by id after `after`, or None past the last.

        SQLite joins each column of the chunk into one string (group_concat), decoded here by numpy:
        a row at a time through Python tuples took twice as long (8 s at 3M rows on 2 cores). Every
        value is coalesced, so that the columns stay aligned (group_concat skips NULLs)."""
        row = self.store.db.conn.execute(
            f"""SELECT count(*), group_concat(id), group_concat(hex(code), ''),
                       group_concat(COALESCE(created_at, ''), char(31)), group_concat(COALESCE(source, ''), char(31)),
                       group_concat(COALESCE(session_id, ?))
                FROM (SELECT id, code, created_at, source, session_id FROM {self.codes}
                      WHERE id > ? AND +gen <= ? ORDER BY id LIMIT ?)""",
            [int(_NO_SESSION), -(1 << 63) if after is None else after, gen, self.LOAD_CHUNK]).fetchone()
        n = row[0]
        if not n:
            return None
        times = np.array(row[3].encode().split(b"\x1f"))
        if times.dtype.itemsize == 0:
            times = times.astype("S1")
        values, codes = np.unique(np.array(row[4].encode().split(b"\x1f")), return_inverse=True)
        for v in values:
            text = v.decode() or None
            if text not in m.sources:
                m.sources[text] = len(m.sources)
        table = np.array([m.sources[v.decode() or None] for v in values], np.int16)
        bits = np.frombuffer(bytes.fromhex(row[2]), np.uint8).reshape(n, m.words * 8)
        return dict(codes=bits.view(np.uint64).T, ids=np.array(row[1].split(","), np.int64), times=times,
                    timeless=times == b"", src=table[codes.ravel()],
                    sess=np.array(row[5].split(","), np.int64), alive=np.ones(n, bool))

    def _catch_up(self, m: _Mirror, gen: int) -> None:
        db = self.store.db.conn
        rows = db.execute(f"SELECT id, created_at, source, session_id, code FROM {self.codes} "
                          "WHERE gen > ? AND gen <= ?", [m.gen, gen]).fetchall()
        gone = [r[0] for r in db.execute(f"SELECT id FROM {self.codes}_gone WHERE gen > ? AND gen <= ?",
                                         [m.gen, gen]).fetchall()]
        m.kill(np.array(gone + [r[0] for r in rows], np.int64))
        m.insert(rows)
        m.gen = gen

    # -- searching ---------------------------------------------------------------------------------
    def search(self, query: np.ndarray, k: int, *, since: str | None = None, until: str | None = None,
               sources: Sequence[str] | None = None, session_ids: Sequence[int] | None = None,
               ) -> list[tuple[int, float]]:
        """The k nearest (id, cosine similarity), best first, among rows that pass the filters.

        Filters: created_at in [since, until) compared as ISO text, source in `sources`, session_id
        in `session_ids`; a filter left empty does not filter."""
        if k <= 0:
            return []
        if not self.coded:
            return self.search_sqlite_vec(query, k, since=since, until=until, sources=sources,
                                          session_ids=session_ids)
        q = np.asarray(query, np.float32).ravel()
        m = self.mirror()
        with m.lock:
            lo, hi, mask = m.select(since, until, sources, session_ids)
            eligible = (hi - lo) if mask is None else int(np.count_nonzero(mask))
            if not eligible:
                return []
            rerank = self.rerank or min(1500, max(200, int(math.sqrt(eligible))))
            rerank = max(rerank, 2 * k)
            if eligible <= rerank:
                pos = np.arange(lo, hi) if mask is None else lo + np.flatnonzero(mask)
            else:
                qcode = encode(q[None, :])[0].view(np.uint64)
                d = m.hamming(qcode, lo, hi)
                if mask is not None:
                    d[~mask] = m.words * 64 + 1      # farther than any code
                pos = lo + smallest(d, min(eligible, rerank * self.shortlist))
                if len(pos) > rerank:
                    s = m.asymmetric(q, pos)
                    pos = pos[np.argpartition(-s, rerank - 1)[:rerank]]
            ids = m.ids[pos]
        return self.exact(q, ids, k)

    def get(self, ids: Sequence[int]) -> dict[int, np.ndarray]:
        """The stored float32 vectors of the units `ids` that exist (a fast lookup by id)."""
        found, V = self._fetch(ids)
        return {i: V[j] for j, i in enumerate(found)}

    def _fetch(self, ids) -> tuple[list[int], np.ndarray]:
        ids = [int(i) for i in ids]
        table, column = (f"{self.codes}_vectors", "vector") if self.coded else (self.table, "embedding")
        found, blobs = [], []
        for start in range(0, len(ids), 10000):
            part = ids[start:start + 10000]
            rows = self.store.db.execute(
                f"SELECT id, {column} FROM {table} WHERE id IN ({','.join('?' * len(part))})",
                part).fetchall()
            found += [r[0] for r in rows]
            blobs += [r[1] for r in rows]
        V = np.frombuffer(b"".join(blobs), np.float32).reshape(len(found), -1) if found else np.zeros((0, 0))
        return found, V

    def exact(self, q: np.ndarray, ids: np.ndarray, k: int) -> list[tuple[int, float]]:
        """Exact cosine ranking of the units `ids` (those that still exist), best first."""
        found, V = self._fetch(ids)
        if not found:
            return []
        norms = np.linalg.norm(V, axis=1) * (np.linalg.norm(q) or 1.0)
        sims = (V @ q) / np.where(norms > 0, norms, 1.0)
        top = np.argsort(-sims, kind="stable")[:k]
        return [(found[i], float(sims[i])) for i in top]

    def search_sqlite_vec(self, query: np.ndarray, k: int, *, since: str | None = None,
                          until: str | None = None, sources: Sequence[str] | None = None,
                          session_ids: Sequence[int] | None = None) -> list[tuple[int, float]]:
        """Brute-force KNN inside sqlite-vec (the reference the coded search is measured against)."""
        where, params = filter_sql(since, until, sources, session_ids)
        where, params = ["embedding MATCH ?", "k = ?", *where], [to_blob(query), int(k), *params]
        rows = self.store.db.execute(
            f"SELECT id, distance FROM {self.table} WHERE {' AND '.join(where)} ORDER BY distance",
            params).fetchall()
        return [(id_, 1.0 - dist) for id_, dist in rows]
