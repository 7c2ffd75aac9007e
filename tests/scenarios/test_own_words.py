"""The assistant's own words stay its own, and an answer is never a copy of its prompt: with the real default
model (greedy), the real embedder and SQLite file, a past chat holds the user's cello and the assistant's
own replies (one of them a made-up dentist, one an answer that had copied the memory block and invented a
dialogue). A new chat asks about the cello: the answer names it, holds no <memories> block and no turn of
dialogue, and what was shown is what was stored; the memories it was given label the assistant's lines as
its own earlier replies and leave out the copied answer (before, the answer took "three times a week" from
its invented lines)."""
from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest

from assistant.config import Config
from assistant.models import DEFAULT_MODEL
from assistant.prompts import OWN_LABEL
from assistant.wiring import Options, build
from memory.recall import TurnIndex

NOW = datetime.now().astimezone().replace(microsecond=0)
COPIED = ("<memories>\n[Monday, 3 March 2025]\nUser: My brother Tom works as a nurse\n"
          "Assistant: I started learning the cello last week, and I should practice it at least three times a week.")
PAST = [("user", "Who is my dentist?"), ("assistant", "Your dentist is Dr. Johnson."),
        ("user", "I've started learning the cello."),
        ("assistant", "That's wonderful! Practising a little every day, even 20 minutes, helps a lot."),
        ("user", "Which instrument am I learning?"), ("assistant", COPIED)]
DIALOGUE = re.compile(r"(^|\n)\s*(User|Assistant)\b[^\n]*:|</?memories", re.I)


@pytest.fixture
def assistant(tmp_path, default_model, real_embedder):
    a = build(Options(db=tmp_path / "assistant.db", model=DEFAULT_MODEL, config=Config(max_answer_tokens=48)),
              embedder=real_embedder, model=default_model)
    sid = a.store.new_session("Music", started_at=(NOW - timedelta(days=3)).isoformat())
    for i, (role, text) in enumerate(PAST):
        a.store.add_turn(sid, role, text, created_at=(NOW - timedelta(days=3, minutes=-i)).isoformat())
    TurnIndex(a.store, real_embedder).index_pending()
    yield a
    a.close()


def test_an_answer_is_no_copy_and_the_assistants_words_are_marked_its_own(assistant):
    shown: list[str] = []
    prep = assistant.prepare(None, "What instrument did I start learning recently, and how often should I practise?")
    answer = assistant.generate(prep, on_token=shown.append)
    print("A:", answer.text)
    asked = prep.messages[-1]["content"]
    block = asked.split("</memories>")[0]
    print(block)
    assert "cello" in answer.text.lower()
    assert not DIALOGUE.search(answer.text), answer.text
    assert "".join(shown).strip() == answer.text == assistant.store.turn(answer.turn_id).text
    # who said what: the user's line as theirs, every assistant line marked as its own earlier reply, and
    # nothing of the answer that had copied its prompt (it is shown as it would be cut now: not at all)
    assert "\nUser: I've started learning the cello." in block
    assert f"\n{OWN_LABEL} That's wonderful!" in block
    assert not re.search(r"^\s*Assistant:", block, re.M)
    assert "brother Tom" not in block and "three times a week" not in block
    assert "three times" not in answer.text
