"""Hybrid search over one kind of memory unit: dense KNN (see vectors.py) + BM25 (FTS5), fused by
reciprocal rank fusion, with filters for time range, source and session.

Each unit kind `name` has tables created by migrations: `vectors_<name>` (+ `codes_<name>*`) and
`fts_<name>`; HybridIndex writes the same ids to both sides.

The BM25 side stays cheap on large banks in three ways (its filters stay exact):
- a time filter also bounds the rowid range, taken from the dense side's in-memory copy of the
  created_at column (units are mostly written in time order, so a window is a narrow id range);
- the OR-query leaves out the corpus's own stop words: words held by more than `max_df` (10%) of the
  units (BM25 weight below ln 9) when that means more than MIN_POSTINGS postings in the whole index
  (FTS5 reads every posting of a query word to weigh it, whatever the id range), and, past a posting
  budget (`lexical_budget`), the most common of the rest; a query made only of such words leaves the
  lexical side silent (the dense side ranks alone) rather than ranking hundreds of thousands of rows
  by a word that tells them apart so little; document frequencies are estimated on the most recent
  units by FTS5 itself, and cached;
- the filters are checked on the top rows of the unfiltered ranking (bm25() in ORDER BY is FTS5's
  cheapest plan) when most units in the id range pass them, else by the filtered query.
"""
from __future__ import annotations

import re
import threading
import weakref
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .store import Store
from .vectors import VectorIndex, atomic, filter_sql

RRF_K = 60
DF_SAMPLE = 20_000     # the most recent units a word's document frequency is estimated on
MIN_POSTINGS = 20_000  # a common word is only left out when it would cost more postings than this
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
    def __init__(self, store: Store, name: str, *, lexical_budget: int = 250_000, max_df: float = 0.1):
        self.store = store
        self.name = name
        self.vectors = VectorIndex(store, name)
        self.fts = f"fts_{name}"
        self.lexical_budget = lexical_budget
        self.max_df = max_df
        with _DF_LOCK:
            self._df = _DF.setdefault(store, {}).setdefault(name, {})  # word -> share of units holding it

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
        filters = dict(since=since, until=until, sources=sources, session_ids=session_ids)
        plan = self._plan(**filters)
        if plan is None:
            return []
        span, share = plan
        words = self.informative(words, span)
        if not words:
            return []
        match = " OR ".join(f'"{w}"' for w in words)
        where, params = [f"{self.fts} MATCH ?"], [match]
        if span is not None:
            where.append("rowid BETWEEN ? AND ?")
            params += list(span)
        if not any(filters.values()) or share >= 0.2:
            # Rank without the filters (bm25() in ORDER BY is the cheapest plan), then check the
            # filters on the few rows fetched; too few left: the filtered query below.
            want = k if not any(filters.values()) else min(4000, int(k / share * 1.5) + 20)
            rows = self.store.db.execute(
                f"SELECT rowid, bm25({self.fts}) AS s FROM {self.fts} WHERE {' AND '.join(where)} "
                "ORDER BY s LIMIT ?", params + [want]).fetchall()
            if not any(filters.values()):
                return [(id_, -s) for id_, s in rows]
            ok = self._passing([r[0] for r in rows], **filters)
            hits = [(id_, -s) for id_, s in rows if id_ in ok]
            if len(hits) >= k or len(rows) < want:
                return hits[:k]
        # Filters on the UNINDEXED columns: FTS5's `ORDER BY rank` sorts before they are checked.
        clauses, extra = filter_sql(**filters)
        rows = self.store.db.execute(
            f"SELECT rowid, rank FROM {self.fts} WHERE {' AND '.join(where + clauses)} "
            "ORDER BY rank LIMIT ?", params + extra + [int(k)]).fetchall()
        return [(id_, -s) for id_, s in rows]

    def _plan(self, since, until, sources, session_ids):
        """(rowid span or None, share of the units in the span that pass the filters), or None when
        no unit passes. The span is the smallest id range holding every unit in the time window."""
        if not self.vectors.coded or self.store.db.conn.in_transaction:
            return None, 0.0
        if not (since or until or sources or session_ids):
            return None, 1.0       # nothing to bound: no need to wait for the mirror (it may be loading)
        m = self.vectors.mirror()
        with m.lock:
            lo, hi, mask = m.select(since, until, sources, session_ids)
            eligible = (hi - lo) if mask is None else int(np.count_nonzero(mask))
            if not eligible:
                return None
            live = m.n - m.dead
            if not (since or until) or hi - lo > 0.9 * m.n:
                return None, eligible / max(live, 1)
            ids = m.ids[lo:hi][m.alive[lo:hi]]
            span = (int(ids.min()), int(ids.max()))
            return span, eligible / max(1, min(live, span[1] - span[0] + 1))

    def _passing(self, ids: list[int], since, until, sources, session_ids) -> set[int]:
        """The ids among `ids` whose FTS row passes the filters (the same tests as the SQL ones)."""
        if not ids:
            return set()
        rows = self.store.db.execute(
            f"SELECT rowid, created_at, source, session_id FROM {self.fts} "
            f"WHERE rowid IN ({','.join('?' * len(ids))})", ids).fetchall()
        src = set(sources or ())
        sess = set(session_ids or ())
        return {i for i, t, s, ss in rows
                if (not since or (t is not None and t >= since))
                and (not until or (t is not None and t < until))
                and (not sources or s in src) and (not session_ids or ss in sess)}

    def informative(self, words: list[str], span: tuple[int, int] | None = None) -> list[str]:
        """The query's words without its corpus stop words: a word held by more than `max_df` of
        the units, when that is more than MIN_POSTINGS units of the whole index, is dropped (none may
        be left: then BM25 has nothing to rank by); of the rest the rarest are kept while their
        postings fit the lexical budget, the first that occurs always. A word's share of units is
        estimated on the most recent `DF_SAMPLE` units (counted by FTS5, cached); its postings inside
        `span` are that share times the units there."""
        if not words or not (self.lexical_budget or self.max_df):
            return words
        size, top = self.size()
        if not size:
            return words
        if abs(size - self._df.get("", 0)) > 0.05 * max(self._df.get("", 0), 1000) or len(self._df) > 50_000:
            self._df.clear()
            self._df[""] = size   # the bank size the shares were taken at
        first = max(0, top - DF_SAMPLE)
        sample = min(size, top - first)
        units = min(size, span[1] - span[0] + 1) if span else size
        share = {}
        for w in words:
            if w not in self._df:
                n = self.store.db.execute(
                    f"SELECT count(*) FROM {self.fts} WHERE {self.fts} MATCH ? AND rowid > ?",
                    [f'"{w}"', first]).fetchone()[0]
                self._df[w] = n / max(sample, 1)
            share[w] = self._df[w]
        budget = self.lexical_budget or float("inf")
        keep, total = [], 0.0
        for w in sorted(words, key=lambda w: share[w]):
            if self.max_df and share[w] > self.max_df and share[w] * size > MIN_POSTINGS:
                break      # this word and the more common ones after it: stop words of this corpus
            postings = share[w] * units
            if total > 0 and total + postings > budget:
                break
            keep.append(w)
            total += postings
        return keep

    def size(self) -> tuple[int, int]:
        """(units, largest id) of the full-text side, from FTS5's own statistics: the row count its
        bm25() reads (the first varint of the averages record, id 1 of `fts_<name>_data`). Cheap, and it
        does not wait for the vector mirror, which takes seconds to load at a million units."""
        row = self.store.db.execute(f"SELECT block FROM {self.fts}_data WHERE id = 1").fetchone()
        top = self.store.db.execute(f"SELECT max(rowid) FROM {self.fts}").fetchone()[0]
        return (varint(row[0]) if row and row[0] else 0), int(top or 0)

    def search(self, text: str, vector: np.ndarray | None, k: int = 10, *, mode: str = "hybrid",
               candidates: int | None = None, **filters) -> list[Hit]:
        """The k best units for a query, best first. mode: "hybrid" (RRF), "dense" or "bm25"."""
        n = candidates or max(k * 4, 40)
        dense = (self.vectors.search(vector, n, **filters)
                 if mode in ("hybrid", "dense") and vector is not None else [])
        lexical = self.bm25(text, n, **filters) if mode in ("hybrid", "bm25") else []
        return fuse(dense, lexical, k, mode)


def varint(blob: bytes) -> int:
    """The SQLite varint at the start of `blob` (7 bits a byte, high bit: more follow; a ninth byte
    gives 8 bits), the encoding of FTS5's records."""
    value = 0
    for i, b in enumerate(blob[:9]):
        if i == 8:
            return (value << 8) | b
        value = (value << 7) | (b & 0x7F)
        if not b & 0x80:
            return value
    return value


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
