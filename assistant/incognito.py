"""An incognito chat: its turns live only in this process, never in the database (no turns, no index, no
memories attached, no clips). It still reads the memory: recall and the running memory answer as usual."""
from __future__ import annotations

from itertools import count

from memory.attached import Attached
from memory.clock import utcnow
from memory.store import Turn

NOTICE = "Incognito: nothing of this chat is stored; it is gone when you close it."


class Scratch:
    """Sessions and turns kept in memory. Ids are negative, so they never meet a stored one."""

    def __init__(self):
        self._ids = count(1)
        self.sessions: dict[int, list[Turn]] = {}
        self.attached: dict[int, list[Attached]] = {}

    def new_session(self) -> int:
        sid = -next(self._ids)
        self.sessions[sid] = []
        return sid

    def has(self, session_id: int) -> bool:
        return session_id in self.sessions

    def turns(self, session_id: int) -> list[Turn]:
        return list(self.sessions.get(session_id, []))

    def add_turn(self, session_id: int, role: str, text: str, status: str = "complete") -> int:
        tid = -next(self._ids)
        self.sessions.setdefault(session_id, []).append(Turn(tid, session_id, role, text, utcnow(), status=status))
        return tid

    def attach(self, turn_id: int, items: list[Attached]) -> None:
        if items:
            self.attached[turn_id] = list(items)

    def for_turns(self, ids) -> dict[int, list[Attached]]:
        return {i: self.attached[i] for i in ids if i in self.attached}
