"""Work ahead of the Enter key in the chat: the prompt's beginning is evaluated once the model is up and on
a new session; after a pause in typing, the draft is recalled for and its whole prompt evaluated, so that
the prompt sent on Enter is exactly the one already evaluated; while typing goes on, a finished word takes a
draft up too (at most once a second). Nothing of a draft is stored."""
from __future__ import annotations

import zlib

from assistant.config import Config
from tests.fakes import FakeLLM
from tests.test_ui import SIZE, answered, db, make_assistant, wait_until  # noqa: F401 (db: a fixture)
from ui.app import AssistantApp
from ui.widgets import prompt as prompt_module
from ui.widgets.prompt import PromptInput, draft_due


class WarmingLLM(FakeLLM):
    """A FakeLLM with the chat cache's abilities: prompts as tokens (one per word and role), warm(), and
    what the cache holds."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.held: list[int] = []
        self.warmed: list[list[int]] = []

    @staticmethod
    def _message_tokens(m: dict) -> list[int]:
        return [1, zlib.crc32(m["role"].encode())] + [zlib.crc32(w.encode()) for w in m["content"].split()] + [2]

    def tokens(self, messages):
        return [t for m in messages for t in self._message_tokens(m)] + [1, 3]

    def stable_tokens(self, messages, n):
        return [t for m in messages[:n] for t in self._message_tokens(m)]

    def cached(self, tokens):
        n = 0
        while n < min(len(tokens), len(self.held)) and tokens[n] == self.held[n]:
            n += 1
        return n

    def warm(self, messages=None, tokens=None, cancel=None):
        tokens = self.tokens(messages) if tokens is None else tokens
        self.warmed.append(tokens)
        self.held = list(tokens)

    def stream(self, messages, max_tokens=512, cancel=None):
        self.held = self.tokens(messages)
        yield from super().stream(messages, max_tokens, cancel)


def user_turns(store) -> list[str]:
    return [r[0] for r in store.db.execute("SELECT text FROM turns WHERE role = 'user'").fetchall()]


def app_remembering_maya(db) -> tuple[AssistantApp, WarmingLLM]:
    """The chat over a memory that holds one earlier message, "My sister Maya lives in Lisbon." """
    llm = WarmingLLM(["Lisbon."])
    assistant = make_assistant(db, llm, Config())
    assistant.store.add_turn(assistant.store.new_session(), "user", "My sister Maya lives in Lisbon.")
    return AssistantApp(assistant=assistant), llm


async def test_a_paused_draft_is_evaluated_and_enter_sends_that_very_prompt(db):
    app, llm = app_remembering_maya(db)
    assistant = app.assistant
    async with app.run_test(size=SIZE) as pilot:
        # once the model is up: the beginning of every prompt (the system message)
        await wait_until(pilot, lambda: llm.warmed, what="the prompt's beginning evaluated")
        assert llm.warmed[0][:2] == [1, zlib.crc32(b"system")] and llm.warmed[0][-1] == 2
        prompt = app.screen.query_one(PromptInput)
        prompt.focus()
        prompt.insert("Where does my sister Maya live?")
        await wait_until(pilot, lambda: len(llm.warmed) >= 2, what="the draft evaluated")
        draft_tokens = llm.warmed[-1]
        assert user_turns(assistant.store) == ["My sister Maya lives in Lisbon."]     # nothing stored
        assert llm.prompts == []                                                     # and no answer
        await pilot.press("enter")
        await answered(pilot)
        sent = llm.prompts[-1]
        assert llm.tokens(sent) == draft_tokens          # the prompt evaluated ahead is the one sent
        assert "Lisbon" in sent[-1]["content"].split("</memories>")[0]


async def test_a_new_session_evaluates_the_prompts_beginning_before_the_first_message(db):
    llm = WarmingLLM(["Fine."])
    assistant = make_assistant(db, llm, Config())
    app = AssistantApp(assistant=assistant)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: llm.warmed, what="the prompt's beginning evaluated")
        prompt = app.screen.query_one(PromptInput)
        prompt.focus()
        prompt.insert("hello there")
        await pilot.press("enter")
        await answered(pilot)
        before = len(llm.warmed)
        await pilot.press("ctrl+n")
        await wait_until(pilot, lambda: len(llm.warmed) > before, what="the new session's beginning")
        first = llm.tokens(llm.prompts[-1])
        assert first[:len(llm.warmed[-1])] == llm.warmed[-1]        # what every new prompt begins with
        assert zlib.crc32(b"hello") not in llm.warmed[-1]           # not the last session's turns


def test_a_draft_is_due_at_a_finished_word_once_it_has_a_few_words_and_not_more_than_once_a_second():
    assert draft_due("where does my ", 5.0)
    assert draft_due("where does Maya live?", 5.0)
    assert not draft_due("where does my", 5.0)          # a word still being typed
    assert not draft_due("where does ", 5.0)            # too few words to recall for
    assert not draft_due("where does my sister ", 0.4)  # one was taken up a moment ago
    assert not draft_due("", 5.0)


async def test_a_draft_is_taken_up_while_typing_goes_on_without_a_pause(db, monkeypatch):
    monkeypatch.setattr(prompt_module, "PAUSE_SECONDS", 60.0)     # no pause in this typing
    monkeypatch.setattr(prompt_module, "TYPING_DRAFT_SECONDS", 60.0)   # and one draft while typing, however slow
    app, llm = app_remembering_maya(db)
    assistant = app.assistant
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: llm.warmed, what="the prompt's beginning evaluated")
        prompt = app.screen.query_one(PromptInput)
        prompt.focus()
        for word in ["my", "sister", "Maya", "now"]:
            for key in word:
                await pilot.press(key)
            await pilot.press("space")
        await wait_until(pilot, lambda: len(llm.warmed) >= 2, what="a draft taken up while typing")
        draft = llm.warmed[-1]
        # the draft is the box three words in ("my sister Maya "), with the memory recalled for it
        assert draft[-6:] == [zlib.crc32(w.encode()) for w in ("my", "sister", "Maya")] + [2, 1, 3]
        assert zlib.crc32(b"Lisbon.") in draft
        assert len(llm.warmed) == 2          # the next finished word came too soon: not taken up
        assert user_turns(assistant.store) == ["My sister Maya lives in Lisbon."]
