"""Memories attached to a user's message: what recall added to the prompt for that message, stored as the
model read it, so that every later prompt of the session shows it again, unchanged, at the same place.

A prompt that only grows at its end lets llama.cpp reuse everything it evaluated before; a memory already
in the prompt is not attached twice (its source turns tell). Forgetting a source turn removes the attached
memory with it (a trigger, migration m060).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

from .store import Store


@dataclass
class Attached:
    """One attached memory: `kind` is "segment", "turn" or "timelines" (the chains shown with them)."""

    kind: str
    unit_id: int | None
    text: str
    turn_ids: list[int] = field(default_factory=list)


class AttachedStore:
    def __init__(self, store: Store):
        self.store = store
        self.db = store.db

    def add(self, user_turn_id: int, items: Sequence[Attached]) -> None:
        """Attach `items` to a user's message, in order (one transaction)."""
        if not items:
            return
        with self.db.conn:
            start = self.db.execute("SELECT COALESCE(MAX(position), -1) + 1 FROM turn_memories "
                                    "WHERE user_turn_id = ?", [user_turn_id]).fetchone()[0]
            for i, a in enumerate(items):
                mid = self.db.execute(
                    "INSERT INTO turn_memories (user_turn_id, position, kind, unit_id, text) VALUES (?, ?, ?, ?, ?)",
                    [user_turn_id, start + i, a.kind, a.unit_id, a.text]).lastrowid
                self.db.conn.executemany("INSERT OR IGNORE INTO turn_memory_sources (memory_id, turn_id) VALUES (?, ?)",
                                         [(mid, t) for t in dict.fromkeys(a.turn_ids)])

    def for_turns(self, user_turn_ids: Iterable[int]) -> dict[int, list[Attached]]:
        """The memories attached to each of these messages, in order (messages with none are left out)."""
        ids = list(dict.fromkeys(user_turn_ids))
        out: dict[int, list[Attached]] = {}
        for start in range(0, len(ids), 400):
            chunk = ids[start:start + 400]
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(
                f"SELECT m.id, m.user_turn_id, m.kind, m.unit_id, m.text, group_concat(s.turn_id) "
                f"FROM turn_memories m LEFT JOIN turn_memory_sources s ON s.memory_id = m.id "
                f"WHERE m.user_turn_id IN ({marks}) GROUP BY m.id ORDER BY m.user_turn_id, m.position",
                chunk).fetchall()
            for _, turn_id, kind, unit_id, text, sources in rows:
                turn_ids = sorted(int(x) for x in sources.split(",")) if sources else []
                out.setdefault(turn_id, []).append(Attached(kind, unit_id, text, turn_ids))
        return out
