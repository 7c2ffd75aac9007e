"""Dense vector index over one kind of memory unit ("turn", "segment"), with metadata filters.

Backed by a sqlite-vec table `vectors_<name>` created by a migration. Scores are cosine
similarities: higher means more similar.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from .store import Store


def to_blob(v: np.ndarray) -> bytes:
    return np.asarray(v, dtype=np.float32).tobytes()


class VectorIndex:
    def __init__(self, store: Store, name: str):
        self.store = store
        self.table = f"vectors_{name}"

    def add(self, rows: Iterable[tuple[int, np.ndarray, str, str, int]], commit: bool = True) -> None:
        """Insert or replace (id, vector, created_at, source, session_id) rows."""
        db = self.store.db

        def write():
            for id_, vec, created_at, source, session_id in rows:
                db.execute(f"DELETE FROM {self.table} WHERE id = ?", [id_])
                db.execute(f"INSERT INTO {self.table} (id, embedding, created_at, source, session_id) "
                           "VALUES (?, ?, ?, ?, ?)", [id_, to_blob(vec), created_at, source, session_id])

        if commit:
            with db.conn:
                write()
        else:
            write()

    def remove(self, ids: Sequence[int]) -> None:
        if ids:
            marks = ",".join("?" * len(ids))
            self.store.db.execute(f"DELETE FROM {self.table} WHERE id IN ({marks})", list(ids))

    def missing(self, table: str, where: str = "1", limit: int | None = None) -> list[int]:
        """Ids of rows of `table` that have no vector yet."""
        sql = (f"SELECT t.id FROM {table} t LEFT JOIN {self.table} v ON v.id = t.id "
               f"WHERE v.id IS NULL AND ({where}) ORDER BY t.id")
        if limit:
            sql += f" LIMIT {int(limit)}"
        return [r[0] for r in self.store.db.execute(sql).fetchall()]

    def search(self, query: np.ndarray, k: int, *, since: str | None = None, until: str | None = None,
               sources: Sequence[str] | None = None, session_ids: Sequence[int] | None = None,
               ) -> list[tuple[int, float]]:
        """The k nearest (id, cosine similarity), best first, among rows that pass the filters."""
        where, params = ["embedding MATCH ?", "k = ?"], [to_blob(query), int(k)]
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
        rows = self.store.db.execute(
            f"SELECT id, distance FROM {self.table} WHERE {' AND '.join(where)} ORDER BY distance",
            params).fetchall()
        return [(id_, 1.0 - dist) for id_, dist in rows]
