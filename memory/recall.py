"""Recall: find the past moments that matter for a query and fit them into a token budget.

First version: dense retrieval over single past turns (sqlite-vec KNN on MiniLM vectors).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .protocols import Embedder, TokenCounter, approx_tokens
from .store import Store
from .index import Hit, HybridIndex, IndexRow
from .segments import turn_line


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

    def index_pending(self, progress=None) -> int:
        """Embed every turn that has no vector yet. Each batch is its own transaction."""
        done = 0
        while True:
            ids = self.vectors.missing("turns", "t.status != 'streaming' AND t.role != 'system' "
                                        "AND t.corrected_by IS NULL", self.batch)
            if not ids:
                return done
            turns = self.store.turns_by_ids(ids)
            vecs = self.embedder.embed([t.text for t in turns])
            # BM25 sees the speaker too (questions name people); the vector is the text's alone
            self.hybrid.add([IndexRow(t.id, v, turn_line(t), t.created_at, t.source, t.session_id)
                             for t, v in zip(turns, vecs)])
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
            who = t.speaker or ("User" if t.role == "user" else "Assistant")
            memories.append(Memory(kind="turn", id=t.id, text=f"{who}: {t.text}", score=score,
                                   started_at=t.created_at, ended_at=t.created_at,
                                   session_id=t.session_id, turn_ids=[t.id], source=t.source))
        return fill_budget(memories, budget_tokens, self.count_tokens)
