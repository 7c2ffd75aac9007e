"""Recall: find the past moments that matter for a query and fit them into a token budget.

First version: dense retrieval over single past turns (sqlite-vec KNN on MiniLM vectors).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .protocols import Embedder, TokenCounter, approx_tokens
from .store import Store
from .index import Hit, HybridIndex, IndexRow
from .segments import memory_line, turn_line


@dataclass
class Memory:
    """One recalled unit. `score` is higher for more relevant memories."""

    kind: str                 # "turn" (later also "segment")
    id: int
    text: str                 # what the model reads
    score: float
    started_at: str
    ended_at: str
    session_id: int
    turn_ids: list[int] = field(default_factory=list)
    topic: str = ""
    source: str = "chat"

    @property
    def opening(self) -> str:
        words = self.text.split()
        return " ".join(words[:12]) + (" …" if len(words) > 12 else "")


class TurnIndex:
    """Keeps every turn in the hybrid index (vector of its text + BM25 of "Speaker: text"); embeds what
    is missing in batches."""

    def __init__(self, store: Store, embedder: Embedder, batch: int = 64):
        self.store = store
        self.embedder = embedder
        self.batch = batch
        self.hybrid = HybridIndex(store, "turn")
        self.vectors = self.hybrid.vectors

    # What the turn index holds: finished turns said by someone, as they stand after corrections.
    INDEXED = "t.status != 'streaming' AND t.role != 'system' AND t.corrected_by IS NULL"

    def _indexed_table(self) -> str:
        return self.vectors.codes if self.vectors.coded else self.vectors.table

    def pending(self, limit: int | None = None) -> list[int]:
        """Ids of the turns still to embed, oldest first, from the queue the triggers of m080 keep (reads
        only: recall runs this before every search and must not wait for another process's write)."""
        sql = (f"SELECT q.turn_id FROM turns_to_index q JOIN turns t ON t.id = q.turn_id "
               f"LEFT JOIN {self._indexed_table()} v ON v.id = q.turn_id "
               f"WHERE v.id IS NULL AND {self.INDEXED} ORDER BY q.turn_id")
        if limit:
            sql += f" LIMIT {int(limit)}"
        return [r[0] for r in self.store.db.execute(sql).fetchall()]

    def index_ids(self, ids: list[int]) -> None:
        """Embed and index these turns, and take them off the queue."""
        turns = self.store.turns_by_ids(ids)
        vecs = self.embedder.embed([t.text for t in turns])
        # BM25 sees the speaker too (questions name people); the vector is the text's alone
        self.hybrid.add([IndexRow(t.id, v, turn_line(t), t.created_at, t.source, t.session_id)
                         for t, v in zip(turns, vecs)])
        marks = ",".join("?" * len(ids))
        with self.store.db.conn:
            self.store.db.execute(f"DELETE FROM turns_to_index WHERE turn_id IN ({marks})", ids)

    def drop_stale(self, at_least: int = 1000) -> None:
        """Take off the queue the entries that will never be embedded here (turns indexed another way, as a
        restore does, gone, corrected or system turns), once there are enough of them to slow `pending`."""
        db = self.store.db
        if db.execute("SELECT COUNT(*) FROM turns_to_index").fetchone()[0] < at_least:
            return
        with db.conn:
            db.execute(f"""DELETE FROM turns_to_index WHERE turn_id IN (
                SELECT q.turn_id FROM turns_to_index q LEFT JOIN turns t ON t.id = q.turn_id
                LEFT JOIN {self._indexed_table()} v ON v.id = q.turn_id
                WHERE t.id IS NULL OR v.id IS NOT NULL OR t.role = 'system' OR t.corrected_by IS NOT NULL)""")

    def index_pending(self, progress=None) -> int:
        """Embed every turn that has no vector yet. Each batch is its own transaction."""
        done = 0
        while True:
            ids = self.pending(self.batch)
            if not ids:
                self.drop_stale()
                return done
            self.index_ids(ids)
            done += len(ids)
            if progress:
                progress(done)

    def search(self, query: str, query_vec: np.ndarray, k: int, mode: str = "hybrid", **filters) -> list[Hit]:
        return self.hybrid.search(query, query_vec, k, mode=mode, **filters)


def fill_budget(memories: list[Memory], budget_tokens: int, count: TokenCounter = approx_tokens,
                ) -> list[Memory]:
    """Best-first: take memories in score order while they fit the budget (skip ones that don't)."""
    out, used = [], 0
    for m in memories:
        cost = count(m.text) + 12  # the date header line
        if used + cost > budget_tokens:
            continue
        out.append(m)
        used += cost
    return out


class TurnRecall:
    """Turn-level hybrid recall (dense + BM25, fused) over every past turn not in `exclude_turn_ids`."""

    def __init__(self, store: Store, embedder: Embedder, count_tokens: TokenCounter = approx_tokens):
        self.store = store
        self.index = TurnIndex(store, embedder)
        self.embedder = embedder
        self.count_tokens = count_tokens

    def search(self, query: str, budget_tokens: int, *, exclude_session: int | None = None,
               exclude_turn_ids: set[int] | None = None, k: int = 40, min_similarity: float = 0.2,
               **filters) -> list[Memory]:
        """The most relevant past turns for `query`, best first, within `budget_tokens`.

        A hit the dense side alone found with cosine below `min_similarity` is noise, and dropped."""
        self.index.index_pending()  # nothing said is ever invisible to recall
        qv = self.embedder.embed([query])[0]
        hits = [h for h in self.index.search(query, qv, k, **filters)
                if h.bm25 is not None or (h.dense or 0) >= min_similarity]
        exclude = exclude_turn_ids or set()
        turns = {t.id: t for t in self.store.turns_by_ids([h.id for h in hits if h.id not in exclude])}
        memories = []
        for h in hits:
            tid, score = h.id, h.score
            t = turns.get(tid)
            if t is None or (exclude_session is not None and t.session_id == exclude_session):
                continue
            memories.append(Memory(kind="turn", id=t.id, text=memory_line(t), score=score,
                                   started_at=t.created_at, ended_at=t.created_at,
                                   session_id=t.session_id, turn_ids=[t.id], source=t.source))
        return fill_budget(memories, budget_tokens, self.count_tokens)
