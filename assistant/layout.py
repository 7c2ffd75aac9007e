"""The chat prompt's layout: a prompt that only grows at its end from one turn to the next, so that llama.cpp
reuses what it evaluated for the last turn (it keeps the longest common prefix of tokens) and evaluates only
the new message. A prompt whose top changes costs a full evaluation, about 90 tokens a second for the
default model on 2 cores.

    system     instructions, today's date, pinned facts, the running memory (the same all day)
    window     the session's turns, from the window's first turn on; each user message with the memories
               recalled for it (stored, so later prompts show them again unchanged at the same place)
    new turn   the new message with the memories recalled for it that the window does not show yet

When the window no longer fits (or holds more than twice `recent_turns` turns), old turns are dropped in one
large step, down to half the room and `recent_turns` turns, so the prompt's beginning holds for many turns
after.
Which turn the window starts at is replayed from the session's turns each time (`window_start`), so
another process (`assistant ask --session`) lays out the same prompt.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

from memory.attached import Attached
from memory.store import Turn

# Tokens a message costs beyond its text (the chat template's role markers); a close upper estimate.
MESSAGE_OVERHEAD = 8


@dataclass
class Window:
    """The session's turns that the prompt shows, with what is attached to each user message."""

    turns: list[Turn]
    attached: dict[int, list[Attached]]
    start: int                      # index in the session's shown turns of the window's first turn
    costs: list[int] = field(default_factory=list)

    def turn_ids(self) -> set[int]:
        """Every turn whose words the window already shows: its turns and the sources of its memories."""
        ids = {t.id for t in self.turns}
        for items in self.attached.values():
            ids.update(i for a in items for i in a.turn_ids)
        return ids

    @property
    def tokens(self) -> int:
        return sum(self.costs)


def shown(turns: Sequence[Turn]) -> list[Turn]:
    """The turns of a session a prompt can show: user and assistant turns with text, not still streaming,
    and not a chat message left unanswered (its answer failed, or was forgotten with what it was built on).
    Such a message was merged into the next one, and the model answered it again ("What's my dog's name?"
    came back as the answer to "I'm allergic to penicillin."). The last turn is followed by the new
    message, so an unanswered one there goes too."""
    kept = [t for t in turns if t.role in ("user", "assistant") and t.text and t.status != "streaming"]
    return [t for i, t in enumerate(kept)
            if not (t.role == "user" and t.source == "chat" and t.speaker is None
                    and (i + 1 == len(kept) or kept[i + 1].role == "user"))]


def window_start(costs: Sequence[tuple[str, int]], limit: int, keep: int) -> int:
    """The index of the window's first turn, replayed over (role, tokens) of a session's turns in order.

    Each user message is checked as it arrives: when the turns from the window's start to it cost more than
    `limit` tokens, or more than 2 x `keep` turns come before it, whole exchanges are dropped from the front in
    one step, down to at most half of `limit` and at most `keep` turns before it; the prompt then only grows
    again for many turns.
    The window always starts with a user message."""
    start, total = 0, 0
    for i, (role, cost) in enumerate(costs):
        total += cost
        if role != "user" or (total <= limit and i - start <= 2 * keep):
            continue
        while start < i and (total > limit // 2 or i - start > keep):
            total -= costs[start][1]
            start += 1
            while start < i and costs[start][0] != "user":
                total -= costs[start][1]
                start += 1
    return start


def content(turn: Turn, attached: dict[int, list[Attached]]) -> str:
    from .prompts import with_memories

    return with_memories(turn.text, attached.get(turn.id, [])) if turn.role == "user" else turn.text


def window(turns: Sequence[Turn], attached: dict[int, list[Attached]], count: Callable[[str], int],
           limit: int, keep: int, new_cost: int | None = None) -> Window:
    """The window over a session's `turns`, with `new_cost` tokens of a new message after them (None: the
    window as it stood before the new message)."""
    turns = shown(turns)
    costs = [count(content(t, attached)) + MESSAGE_OVERHEAD for t in turns]
    roles = [(t.role, c) for t, c in zip(turns, costs)]
    if new_cost is not None:
        roles.append(("user", new_cost))
    start = min(window_start(roles, limit, keep), len(turns))
    return Window(turns[start:], {t.id: attached[t.id] for t in turns[start:] if t.id in attached}, start,
                  costs[start:])


def messages(system: dict, win: Window, new_content: str) -> list[dict]:
    """The prompt: the system message, the window's turns, then the new message."""
    history = [{"role": t.role, "content": content(t, win.attached)} for t in win.turns]
    return [system, *alternate(history + [{"role": "user", "content": new_content}])]


def alternate(history: list[dict]) -> list[dict]:
    """Chat templates want user/assistant alternation: merge neighbours of the same role."""
    out: list[dict] = []
    for m in history:
        if out and out[-1]["role"] == m["role"]:
            out[-1] = {"role": m["role"], "content": out[-1]["content"] + "\n\n" + m["content"]}
        else:
            out.append(dict(m))
    while out and out[0]["role"] == "assistant":
        out.pop(0)
    return out
