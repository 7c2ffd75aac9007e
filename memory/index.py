"""Hybrid search over one kind of memory unit: dense KNN (see vectors.py) + BM25 (FTS5), fused by
reciprocal rank fusion, with filters for time range, source and session.

Each unit kind `name` has tables created by migrations: `vectors_<name>` (+ `codes_<name>*`) and
`fts_<name>`; HybridIndex writes the same ids to both sides.

The BM25 side stays cheap on large banks in two ways (its filters stay exact):
- a time filter also bounds the rowid range, taken from the dense side's in-memory copy of the
  created_at column (units are mostly written in time order, so a window is a narrow id range);
- the OR-query keeps its rarest words within a posting budget (`lexical_budget` documents, counted
  inside that range): the words left out are the most common ones, whose IDF weight is smallest.
  Document frequencies are counted by FTS5 itself (capped at the budget) and cached.
"""
from __future__ import annotations

import re
import threading
import weakref
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .store import Store
from .vectors import VectorIndex, atomic

RRF_K = 60
_DF: "weakref.WeakKeyDictionary[Store, dict]" = weakref.WeakKeyDictionary()
_DF_LOCK = threading.Lock()
_STOP = frozenset("""a an and are as at be but by did do does for from had has have he her hers him his how
i if in into is it its me my no not of on or our she so than that the their them then there these they
this to was we were what when where which who whom why will with would you your yours""".split())


@dataclass
class IndexRow:
    id: int
    vector: np.ndarray
    text: str            # what BM25 matches against (the retrieval key)
    created_at: str
    source: str
    session_id: int


@dataclass
class Hit:
    """A search result. `score` is higher for better hits (fused RRF score in hybrid mode)."""

    id: int
    score: float
    dense: float | None = None      # cosine similarity, when the dense side found it
    bm25: float | None = None       # -bm25 (higher is better), when the lexical side found it
    ranks: dict = field(default_factory=dict)


def query_words(text: str) -> list[str]:
    """The distinct content words of `text`, in order (at most 32)."""
    words = [w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in _STOP and len(w) > 1]
    return list(dict.fromkeys(words))[:32]


def fts_query(text: str) -> str | None:
    """An FTS5 OR-query of the content words of `text`, or None when there are none."""
    return " OR ".join(f'"{w}"' for w in query_words(text)) or None


class HybridIndex:
    def __init__(self, store: Store, name: str, *, lexical_budget: int = 100_000):
        self.store = store
        self.name = name
        self.vectors = VectorIndex(store, name)
        self.fts = f"fts_{name}"
        self.lexical_budget = lexical_budget
        with _DF_LOCK:
            self._df = _DF.setdefault(store, {}).setdefault(name, {})  # word -> (documents, counted up to)

    def add(self, rows: Sequence[IndexRow], commit: bool = True) -> None:
        """Insert or replace units in both indexes, in one transaction (commit=False: the caller's
        open transaction, committed here when none is open)."""
        rows = list(rows)
        if not rows:
            return

        def write():
            conn = self.store.db.conn
            self.vectors.write([(r.id, r.vector, r.created_at, r.source, r.session_id) for r in rows])
            conn.executemany(f"DELETE FROM {self.fts} WHERE rowid = ?", [(r.id,) for r in rows])
            conn.executemany(f"INSERT INTO {self.fts} (rowid, text, created_at, source, session_id) "
                             "VALUES (?, ?, ?, ?, ?)",
                             [(r.id, r.text, r.created_at, r.source, r.session_id) for r in rows])

        atomic(self.store, commit, write)

    def remove(self, ids: Sequence[int]) -> None:
        """Delete units from both indexes, in the caller's open transaction (committed here when none
        is open). A removed unit is never returned again."""
        ids = [int(i) for i in ids]
        if not ids:
            return

        def erase():
            self.vectors.erase(ids)
            for start in range(0, len(ids), 10000):
                part = ids[start:start + 10000]
                self.store.db.conn.execute(
                    f"DELETE FROM {self.fts} WHERE rowid IN ({','.join('?' * len(part))})", part)

        atomic(self.store, False, erase)

    def bm25(self, text: str, k: int, *, since=None, until=None, sources=None, session_ids=None,
             ) -> list[tuple[int, float]]:
        """(id, -bm25) for the k best lexical matches, best first (higher is better)."""
        words = query_words(text)
        if not words or k <= 0:
            return []
        where, params = [], []
        span = self._rowid_span(since, until)
        if span is not None:
            if span[1] < span[0]:
                return []
            where.append("rowid BETWEEN ? AND ?")
            params += list(span)
        words = self.informative(words, span)
        where.insert(0, f"{self.fts} MATCH ?")
        params.insert(0, " OR ".join(f'"{w}"' for w in words))
        if since:
            where.append("created_at >= ?")
            params.append(since)
        if until:
            where.append("created_at < ?")
            params.append(until)
        if sources:
            where.append(f"source IN ({','.join('?' * len(sources))})")
            params.extend(sources)
        if session_ids:
            where.append(f"session_id IN ({','.join('?' * len(session_ids))})")
            params.extend(session_ids)
        params.append(int(k))
        # bm25() in ORDER BY costs less than FTS5's own `ORDER BY rank` sorter (same order).
        rows = self.store.db.execute(
            f"SELECT rowid, bm25({self.fts}) AS s FROM {self.fts} WHERE {' AND '.join(where)} "
            "ORDER BY s LIMIT ?", params).fetchall()
        return [(id_, -s) for id_, s in rows]

    def _rowid_span(self, since, until) -> tuple[int, int] | None:
        """The smallest id range holding every unit in the time window, or None (no bound)."""
        if not (since or until) or not self.vectors.coded or self.store.db.conn.in_transaction:
            return None
        m = self.vectors.mirror()
        with m.lock:
            lo, hi, _ = m.select(since, until, None, None)
            if hi - lo > 0.9 * m.n:
                return None
            ids = m.ids[lo:hi][m.alive[lo:hi]]
            return (int(ids.min()), int(ids.max())) if len(ids) else (1, 0)

    def informative(self, words: list[str], span: tuple[int, int] | None = None) -> list[str]:
        """The rarest words of the query whose postings fit the lexical budget (always at least the
        rarest one). A word's postings inside `span` are estimated from its document frequency."""
        if len(words) <= 1 or not self.lexical_budget:
            return words
        size, top = 0, 0
        if self.vectors.coded:
            m = self.vectors.mirror()
            size, top = m.n, m.max_id
        if abs(size - self._df.get("", (0,))[0]) > 0.05 * max(self._df.get("", (0,))[0], 1000) \
                or len(self._df) > 50_000:
            self._df.clear()
            self._df[""] = (size, 0)   # the bank size the counts were taken at
        share = 1.0
        if span and top > 0:
            share = min(1.0, (span[1] - span[0] + 1) / top)
        cap = int(self.lexical_budget / share) + 1
        df = {}
        for w in words:
            known = self._df.get(w)
            if known is None or (known[0] >= known[1] and known[1] < cap):
                n = self.store.db.execute(
                    f"SELECT count(*) FROM (SELECT rowid FROM {self.fts} WHERE {self.fts} MATCH ? LIMIT ?)",
                    [f'"{w}"', cap]).fetchone()[0]
                known = self._df[w] = (n, cap)
            df[w] = known[0] * share
        keep, total = [], 0.0
        for w in sorted(words, key=lambda w: df[w]):
            if keep and total + df[w] > self.lexical_budget:
                break
            if df[w]:
                keep.append(w)
                total += df[w]
        return keep or words[:1]

    def search(self, text: str, vector: np.ndarray | None, k: int = 10, *, mode: str = "hybrid",
               candidates: int | None = None, **filters) -> list[Hit]:
        """The k best units for a query, best first. mode: "hybrid" (RRF), "dense" or "bm25"."""
        n = candidates or max(k * 4, 40)
        dense = (self.vectors.search(vector, n, **filters)
                 if mode in ("hybrid", "dense") and vector is not None else [])
        lexical = self.bm25(text, n, **filters) if mode in ("hybrid", "bm25") else []
        return fuse(dense, lexical, k, mode)


def fuse(dense: list[tuple[int, float]], lexical: list[tuple[int, float]], k: int,
         mode: str = "hybrid") -> list[Hit]:
    """Reciprocal rank fusion of two best-first lists (or one list's own scores outside "hybrid")."""
    hits: dict[int, Hit] = {}
    for side, results in (("dense", dense), ("bm25", lexical)):
        for rank, (id_, s) in enumerate(results):
            h = hits.setdefault(id_, Hit(id_, 0.0))
            setattr(h, side, s)
            h.ranks[side] = rank
            h.score += 1.0 / (RRF_K + rank) if mode == "hybrid" else s
    return sorted(hits.values(), key=lambda h: -h.score)[:k]
