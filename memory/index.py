"""Hybrid search over one kind of memory unit: dense KNN (sqlite-vec) + BM25 (FTS5), fused by
reciprocal rank fusion, with filters for time range, source and session.

Each unit kind `name` has two tables created by migrations: `vectors_<name>` and `fts_<name>`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .store import Store
from .vectors import VectorIndex, atomic

RRF_K = 60
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


def fts_query(text: str) -> str | None:
    """An FTS5 OR-query of the content words of `text`, or None when there are none."""
    words = [w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in _STOP and len(w) > 1]
    words = list(dict.fromkeys(words))[:32]
    return " OR ".join(f'"{w}"' for w in words) or None


class HybridIndex:
    def __init__(self, store: Store, name: str):
        self.store = store
        self.name = name
        self.vectors = VectorIndex(store, name)
        self.fts = f"fts_{name}"

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
        """(id, -bm25) for the k best lexical matches, best first."""
        q = fts_query(text)
        if q is None:
            return []
        where, params = [f"{self.fts} MATCH ?"], [q]
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
        rows = self.store.db.execute(
            f"SELECT rowid, bm25({self.fts}) AS s FROM {self.fts} WHERE {' AND '.join(where)} "
            "ORDER BY s LIMIT ?", params).fetchall()
        return [(id_, -s) for id_, s in rows]

    def search(self, text: str, vector: np.ndarray | None, k: int = 10, *, mode: str = "hybrid",
               candidates: int | None = None, **filters) -> list[Hit]:
        """The k best units for a query, best first. mode: "hybrid" (RRF), "dense" or "bm25"."""
        n = candidates or max(k * 4, 40)
        dense = self.vectors.search(vector, n, **filters) if mode in ("hybrid", "dense") else []
        lexical = self.bm25(text, n, **filters) if mode in ("hybrid", "bm25") else []
        hits: dict[int, Hit] = {}
        for side, results in (("dense", dense), ("bm25", lexical)):
            for rank, (id_, s) in enumerate(results):
                h = hits.setdefault(id_, Hit(id_, 0.0))
                setattr(h, side, s)
                h.ranks[side] = rank
                h.score += 1.0 / (RRF_K + rank) if mode == "hybrid" else s
        return sorted(hits.values(), key=lambda h: -h.score)[:k]
