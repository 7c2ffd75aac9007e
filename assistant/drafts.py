"""Memories recalled for drafts of a message, kept while the message is typed on.

Each draft (the look-ahead, see ui/lookahead.py) recalls again, and a draft a word longer often recalls a
different set or order. The memories sit before the message in the prompt, so a changed set made the model
evaluate the whole block again at every draft and on Enter. Instead the memories a draft was evaluated with
stay, in their order, and what a later recall adds comes after them: the evaluated prompt only grows, and on
Enter what is left is the memories recalled last and the message's new words. They are kept only while the
words typed still begin as the draft's did, and only while the whole block stays within GROWTH x the recall
budget; past that the message gets what its own recall found, with the memories the draft began with first
as far as they are among them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from memory.attached import Attached

GROWTH = 1.5           # the block may grow to this many times the recall budget before it starts over
SAME_WORDS = 3         # a message is the draft typed on while its first words are the draft's


@dataclass
class Drafted:
    """What the last draft of a session's next message was evaluated with."""

    text: str
    attached: list[Attached] = field(default_factory=list)
    memories: list = field(default_factory=list)      # memory.protocols.Memory, shown under the answer


def same_message(draft: str, text: str) -> bool:
    """Whether `text` is `draft` typed on (or edited near its end): their first words are the same."""
    a, b = draft.lower().split()[:SAME_WORDS], text.lower().split()[:SAME_WORDS]
    return bool(a) and a == b[:len(a)]


def _key(item: Attached) -> tuple:
    # one timelines block per message: a later one would repeat most of the first
    return (item.kind,) if item.unit_id is None else (item.kind, item.unit_id)


def grow(held: Drafted | None, text: str, attached: list[Attached], memories: list, budget: int,
         count: Callable[[str], int]) -> tuple[list[Attached], list]:
    """The memories for `text` given this recall's (`attached`, `memories`) and what `held` was evaluated
    with: if `text` is the same message, what `held` has and then what this recall adds, while that fits;
    when it does not, this recall's own, those that `held` begins with first (in its order)."""
    if held is None or not held.attached or not same_message(held.text, text):
        return attached, memories
    seen = {_key(a) for a in held.attached}
    out = held.attached + [a for a in attached if _key(a) not in seen]
    if sum(count(a.text) for a in out) <= GROWTH * budget:
        ids = {(m.kind, m.id) for m in held.memories}
        return out, held.memories + [m for m in memories if (m.kind, m.id) not in ids]
    fresh = {_key(a) for a in attached}
    n = 0
    while n < len(held.attached) and _key(held.attached[n]) in fresh:
        n += 1
    head = held.attached[:n]
    first = {_key(a) for a in head}
    order = {k: i for i, k in enumerate(_key(a) for a in head if a.unit_id is not None)}
    return (head + [a for a in attached if _key(a) not in first],
            sorted(memories, key=lambda m: order.get((m.kind, m.id), len(order))))
