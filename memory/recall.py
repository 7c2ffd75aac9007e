"""Recall: find the past moments that matter for a query and fit them into a token budget.

First version: dense retrieval over single past turns (sqlite-vec KNN on MiniLM vectors).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .protocols import Embedder, TokenCounter, approx_tokens
from .store import Store


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


def _vec(v: np.ndarray) -> bytes:
    return np.asarray(v, dtype=np.float32).tobytes()


class TurnIndex:
    """Keeps a MiniLM vector for every turn in `turn_vectors`; embeds what is missing in batches."""

    def __init__(self, store: Store, embedder: Embedder, batch: int = 64):
        self.store = store
        self.embedder = embedder
        self.batch = batch

    def pending(self, limit: int | None = None) -> list[tuple[int, str]]:
        sql = ("SELECT t.id, t.text FROM turns t LEFT JOIN turn_vectors v ON v.turn_id = t.id "
               "WHERE v.turn_id IS NULL AND t.status != 'streaming' AND t.role != 'system' ORDER BY t.id")
        if limit:
            sql += f" LIMIT {int(limit)}"
        return self.store.db.execute(sql).fetchall()

    def add(self, turn_ids: list[int], vectors: np.ndarray) -> None:
        db = self.store.db
        with db.conn:
            for tid, v in zip(turn_ids, vectors):
                db.execute("DELETE FROM turn_vectors WHERE turn_id = ?", [tid])
                db.execute("INSERT INTO turn_vectors (turn_id, embedding) VALUES (?, ?)", [tid, _vec(v)])

    def index_pending(self, progress=None) -> int:
        """Embed every turn that has no vector yet. Each batch is its own transaction."""
        done = 0
        while True:
            rows = self.pending(self.batch)
            if not rows:
                return done
            ids = [r[0] for r in rows]
            self.add(ids, self.embedder.embed([r[1] for r in rows]))
            done += len(ids)
            if progress:
                progress(done)

    def knn(self, query_vec: np.ndarray, k: int) -> list[tuple[int, float]]:
        """(turn_id, cosine similarity) for the k nearest turns."""
        rows = self.store.db.execute(
            "SELECT turn_id, distance FROM turn_vectors WHERE embedding MATCH ? AND k = ? "
            "ORDER BY distance", [_vec(query_vec), int(k)]).fetchall()
        return [(tid, 1.0 - dist) for tid, dist in rows]


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
    """Dense turn-level recall over every past turn not in `exclude_turn_ids`."""

    def __init__(self, store: Store, embedder: Embedder, count_tokens: TokenCounter = approx_tokens):
        self.store = store
        self.index = TurnIndex(store, embedder)
        self.embedder = embedder
        self.count_tokens = count_tokens

    def search(self, query: str, budget_tokens: int, *, exclude_session: int | None = None,
               exclude_turn_ids: set[int] | None = None, k: int = 40, min_score: float = 0.15,
               ) -> list[Memory]:
        """The most relevant past turns for `query`, best first, within `budget_tokens`."""
        self.index.index_pending()  # provisional entries: nothing said is ever invisible to recall
        qv = self.embedder.embed([query])[0]
        hits = [(t, s) for t, s in self.index.knn(qv, k) if s >= min_score]
        exclude = exclude_turn_ids or set()
        turns = {t.id: t for t in self.store.turns_by_ids([t for t, _ in hits if t not in exclude])}
        memories = []
        for tid, score in hits:
            t = turns.get(tid)
            if t is None or (exclude_session is not None and t.session_id == exclude_session):
                continue
            who = t.speaker or ("User" if t.role == "user" else "Assistant")
            memories.append(Memory(kind="turn", id=t.id, text=f"{who}: {t.text}", score=score,
                                   started_at=t.created_at, ended_at=t.created_at,
                                   session_id=t.session_id, turn_ids=[t.id], source=t.source))
        return fill_budget(memories, budget_tokens, self.count_tokens)
