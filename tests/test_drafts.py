"""Memories recalled for drafts of a message stay while it is typed on (assistant/drafts.py): what a later
draft or the message sent recalls comes after them, so the prompt evaluated ahead is still the sent prompt's
beginning; a different message, or a block grown too big, gets its own recall."""
from __future__ import annotations

import re
from types import SimpleNamespace

import numpy as np
import pytest

from assistant import drafts
from assistant.config import Config
from assistant.core import Assistant
from memory.attached import Attached
from memory.recall import Memory
from memory.store import Store
from tests.test_ui_lookahead import WarmingLLM

ONE = np.eye(384, dtype=np.float32)[0]
STOP = {"where", "does", "what", "is", "the", "her", "have", "day", "on", "in"}


class WordRecall:
    """Finds the past user turns that share a content word with the query, oldest first: as with a real
    index, a draft a word longer finds more. Every memory it finds is close enough to be shown."""

    def __init__(self, store: Store):
        self.store = store
        self.embedder = SimpleNamespace(embed=lambda texts: np.stack([ONE] * len(texts)))
        self.index = SimpleNamespace(vectors=SimpleNamespace(get=lambda ids: {i: ONE for i in ids}))

    def search(self, query, budget, exclude_turn_ids=(), **kw):
        words = set(re.findall(r"[a-z]+", query.lower())) - STOP
        rows = self.store.db.execute("SELECT id FROM turns WHERE role = 'user' ORDER BY created_at").fetchall()
        found = []
        for t in self.store.turns_by_ids([r[0] for r in rows]):
            if t.id not in exclude_turn_ids and words & set(re.findall(r"[a-z]+", t.text.lower())):
                found.append(Memory("turn", t.id, f"User: {t.text}", 1.0, t.created_at, t.created_at,
                                    t.session_id, [t.id]))
        return found


@pytest.fixture
def assistant(tmp_path):
    store = Store(tmp_path / "drafts.db")
    old = store.new_session()
    # the lesson was mentioned first: recall alone would put it before Maya's city
    store.add_turn(old, "user", "The cello lesson is on Tuesday.", created_at="2026-11-01T10:00:00+00:00")
    store.add_turn(old, "user", "Maya lives in Lisbon.", created_at="2026-11-02T10:00:00+00:00")
    a = Assistant(store, None, Config(), model=WarmingLLM(["Tuesday."]))
    a.recall = WordRecall(store)
    yield a
    store.close()


def memory_block(messages) -> list[str]:
    body = messages[-1]["content"].split("<memories>\n", 1)[1].split("\n</memories>", 1)[0]
    return [item.splitlines()[-1] for item in body.split("\n\n")]     # each after its date line


def shared(a: list, b: list) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def test_the_drafts_memories_stay_first_and_the_sent_prompt_begins_as_the_draft_did(assistant):
    llm = assistant.model
    draft = assistant.ahead(None, "Where does Maya")
    prep = assistant.prepare(None, "Where does Maya have her cello lesson?")
    # the message's own recall finds both, the lesson first; the draft's memory keeps its place
    assert memory_block(prep.messages) == ["User: Maya lives in Lisbon.", "User: The cello lesson is on Tuesday."]
    assert [m.text for m in prep.memories] == ["User: Maya lives in Lisbon.", "User: The cello lesson is on Tuesday."]
    sent = llm.tokens(prep.messages)
    # what was evaluated for the draft, up to its message's words, is the sent prompt's beginning
    maya = llm.tokens([{"role": "user", "content": "Lisbon."}])[2]
    assert shared(draft, sent) > draft.index(maya)
    # and the memories stay attached to the message for the rest of the session, in that order
    attached = assistant.store.db.execute("SELECT COUNT(*) FROM turn_memories").fetchone()[0]
    assert attached == 2


def test_a_message_that_is_not_the_draft_typed_on_gets_its_own_recall(assistant):
    assistant.ahead(None, "Where does Maya")
    prep = assistant.prepare(None, "What day is the cello lesson?")
    assert memory_block(prep.messages) == ["User: The cello lesson is on Tuesday."]


def test_what_a_draft_held_is_used_once(assistant):
    assistant.ahead(None, "Where does Maya")
    assistant.prepare(None, "Where does Maya live?")
    prep = assistant.prepare(None, "Where does Maya have her cello lesson?")    # not a draft: its own recall
    assert memory_block(prep.messages) == ["User: The cello lesson is on Tuesday.", "User: Maya lives in Lisbon.",
                                           "User: Where does Maya live?"]


def item(i, words=10):
    return Attached("segment", i, " ".join(["w"] * words), [i])


def mem(i):
    return SimpleNamespace(kind="segment", id=i)


def count(text: str) -> int:
    return len(text.split())


def test_drafts_grow_the_block_and_start_over_when_it_is_too_big():
    held = drafts.Drafted("where does maya", [item(2), item(1)], [mem(2), mem(1)])
    items, memories = drafts.grow(held, "where does Maya live", [item(1), item(3)], [mem(1), mem(3)], 100, count)
    assert [a.unit_id for a in items] == [2, 1, 3] and [m.id for m in memories] == [2, 1, 3]
    # the block would pass 1.5 x the budget: the message's own recall
    items, _ = drafts.grow(held, "where does Maya live", [item(1), item(3, 200)], [mem(1), mem(3)], 100, count)
    assert [a.unit_id for a in items] == [1, 3]
    # another message, or nothing held
    assert drafts.grow(held, "who is Maya", [item(3)], [mem(3)], 100, count)[0] == [item(3)]
    assert drafts.grow(None, "where does maya", [item(3)], [mem(3)], 100, count)[0] == [item(3)]
    # one timelines block: the first one stays
    chains = Attached("timelines", None, "a -> b", [1])
    with_chains = drafts.Drafted("where does maya", [item(1), chains], [mem(1)])
    items, _ = drafts.grow(with_chains, "where does maya live",
                           [item(1), item(4), Attached("timelines", None, "a -> c", [4])], [mem(1), mem(4)], 100,
                           count)
    assert [(a.kind, a.unit_id) for a in items] == [("segment", 1), ("timelines", None), ("segment", 4)]


@pytest.mark.parametrize("draft,text,same", [
    ("Where does", "Where does Maya live?", True),
    ("where does maya", "Where does Maya live?", True),
    ("Where does Maya", "When does Maya come?", False),
    ("", "anything", False),
])
def test_same_message(draft, text, same):
    assert drafts.same_message(draft, text) is same


def test_past_the_limit_the_message_gets_its_own_recall_with_the_drafts_first_memories_first():
    held = drafts.Drafted("where does maya", [item(5, 40), item(2, 40), item(7, 40)], [mem(5), mem(2), mem(7)])
    # 5 and 2 are recalled again, 7 is not, and the union (6 x 40 words) passes 1.5 x 100
    items, memories = drafts.grow(held, "where does Maya live", [item(1, 40), item(2, 40), item(5, 40), item(8, 40)],
                                  [mem(1), mem(2), mem(5), mem(8)], 100, count)
    assert [a.unit_id for a in items] == [5, 2, 1, 8] and [m.id for m in memories] == [5, 2, 1, 8]
