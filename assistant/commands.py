"""Chat commands, a route (assistant/routes.py): `/remember TEXT` pins a fact; `/forget ...` shows what would go
and forgets it after the user answers "yes". Neither the command nor its answer is stored as a turn: a
conversation that says "/forget Daniel" must not keep "Daniel".

    /forget PHRASE            every turn that holds the phrase
    /forget memory ID         one memory (as `assistant memory search` lists them)
    /forget session ID        a whole session
    /remember TEXT            a fact kept in every prompt (`assistant memory pins` lists them)
"""
from __future__ import annotations

import re
import threading
from typing import Iterator

from memory.edits import remember
from memory.errors import MemoryError_
from memory.forget import ForgetPlan, forget, plan_forget

from .core import PreparedTurn

YES = {"yes", "y", "yes please", "go ahead", "do it"}
NO = {"no", "n", "cancel", "stop", "don't", "no thanks"}
HELP_FORGET = ("Say what to forget: /forget followed by words (every turn that holds them), "
               "/forget memory ID or /forget session ID.")


NOTHING_HINT = "Try fewer or other words, or find it first with `assistant memory search` (F3 in the chat app)."


def _reply(session_id, text: str, plan: ForgetPlan | None = None) -> PreparedTurn:
    def produce(_model, _cancel) -> Iterator[str]:
        yield text
    return PreparedTurn(session_id, None, [], [], [], 0.0, produce=produce, stored=False, forget_plan=plan)


def _question(plan: ForgetPlan) -> str:
    """The confirmation: what goes, counted (the first paragraph), and the opening words of the first turns
    that go."""
    preview = "".join(f"- {line}\n" for line in plan.preview())
    return (f"{plan.describe()}\n\n{preview}\n" if preview else f"{plan.describe()} ") + \
        "It cannot be undone. Forget it? Answer yes or no."


class ChatCommands:
    """The route for chat commands. Holds, per session, a /forget plan waiting for its "yes"."""

    def __init__(self):
        self.waiting: dict[object, ForgetPlan] = {}
        self._lock = threading.Lock()

    def __call__(self, assistant, session_id, text: str) -> PreparedTurn | None:
        said = " ".join(text.split())
        with self._lock:
            plan = self.waiting.pop(session_id, None)
        if plan is not None:
            answer = said.lower().rstrip(".!")
            if answer in YES:
                forget(assistant.store, plan)
                return _reply(session_id, plan.describe(), plan)
            if answer in NO:
                return _reply(session_id, "Nothing was forgotten.")
            # anything else: the question is dropped and the message is answered as usual
        m = re.match(r"^/(remember|forget)\b\s*(.*)$", said, re.I | re.S)
        if not m:
            return None
        command, rest = m.group(1).lower(), m.group(2).strip()
        if command == "remember":
            if not rest:
                return _reply(session_id, "Say what to remember: /remember followed by the fact.")
            pin_id = remember(assistant.store, rest)
            return _reply(session_id, f"I'll keep this in mind (pinned fact {pin_id}): {rest}")
        return self._forget(assistant, session_id, rest)

    def _forget(self, assistant, session_id, rest: str) -> PreparedTurn:
        if not rest:
            return _reply(session_id, HELP_FORGET)
        by = re.match(r"^(memory|session)\s+(\d+)$", rest, re.I)
        about = re.sub(r"^(everything|anything|all)\s+(about|on|with)\s+", "", rest, flags=re.I)
        try:
            if by:
                kind, number = by.group(1).lower(), int(by.group(2))
                plan = plan_forget(assistant.store, **{"segment_id" if kind == "memory" else "session_id": number})
            else:
                plan = plan_forget(assistant.store, phrase=about.strip("\"'“”"))
        except (MemoryError_, ValueError) as e:
            return _reply(session_id, str(e))
        if not by and session_id in plan.session_ids:
            # the conversation going on stays (empty), so that the chat can go on in it
            plan.session_ids.remove(session_id)
            plan.touched_sessions.append(session_id)
        if plan.empty:
            return _reply(session_id, plan.describe() + ("" if by else " " + NOTHING_HINT))
        with self._lock:
            self.waiting[session_id] = plan
        return _reply(session_id, _question(plan), plan)
