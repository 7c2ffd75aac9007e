"""An answer never holds a copy of the prompt's memory block nor invented turns of dialogue; what is shown is
what is stored (assistant/guard.py and Assistant.generate, with the scripted FakeLLM)."""
from __future__ import annotations

import random
import re
import threading

import pytest

from assistant import guard
from assistant.config import Config
from assistant.core import Assistant
from memory.recall import TurnRecall
from tests.fakes import FakeEmbedder, FakeLLM

COPY = ("<memories>\n[Monday, 3 March 2025]\nUser: My brother Tom works as a nurse\n"
        "Assistant: I started learning the cello last week, and I should practice it at least three times a week.")


CODE = ("Here is a template:\n```python\nPROMPT = \"\"\"\nUser: {question}\nAssistant:\n\"\"\"\n```\n"
        "Fill in the question.")


def make(store, llm, incognito=False):
    a = Assistant(store, None, Config(), model=llm, incognito=incognito)
    a.recall = TurnRecall(store, FakeEmbedder(), count_tokens=a.count_tokens)
    return a


def through(text: str, pieces: list[str] | None = None) -> tuple[str, guard.Guard]:
    g = guard.Guard()
    return "".join(g.filter(pieces if pieces is not None else [text])), g


@pytest.mark.parametrize("text, kept", [
    ("You started learning the cello.", "You started learning the cello."),
    (COPY, ""),
    ("You play the cello.\nUser: And Tom?\nAssistant: He is a nurse.", "You play the cello."),
    ("You play the cello.\n\n  Assistant: Practise daily.", "You play the cello.\n"),
    ("Sure.\nAssistant (your earlier reply): made up", "Sure."),
    ("Here it is: </memories> and more", "Here it is: "),
    ("User: Who is my dentist?", ""),
    ("Users can log in.\nUsed to be slow. A User: field", "Users can log in.\nUsed to be slow. A User: field"),
    ("Use `<div>` here.\n<b>bold</b> and a < b", "Use `<div>` here.\n<b>bold</b> and a < b"),
    ("Ends with a tag's start <mem", "Ends with a tag's start "),
    ("Assistant (you): I understand. Tell me more.", "I understand. Tell me more."),   # its own turn's label
    ("  Assistant: Sure.\nUser: made up", "Sure."),                 # dropped at the start, a stop after it
    ("Assistants can help.", "Assistants can help."),
    ("Assistant", "Assistant"),
    (CODE, CODE),                                                  # a label inside a code block is code
    (CODE + "\nUser: and now a made-up turn", CODE),               # after the block it stops again
    ("~~~\nUser: x\n~~~\nUser: y", "~~~\nUser: x\n~~~"),
    ("```\n<memories>\n```", "```\n"),                              # the tags stop everywhere
    ("No new memories for this message.", ""),                   # the note a message without memories has
    ("  no new memories for this message", ""),
    ("No, you have not told me.", "No, you have not told me."),
    ("No new memories? Then: you play the cello.", "No new memories? Then: you play the cello."),
    ("You said: no new memories for this message", "You said: no new memories for this message"),
])
def test_an_answer_ends_where_a_copy_or_a_dialogue_turn_begins(text, kept):
    assert through(text)[0] == kept


def test_the_cut_is_the_same_however_the_answer_arrives_in_pieces():
    rng = random.Random(7)
    for text in (COPY, "A cello.\nUser: x", "Users and <b> tags\nUse it", "One.\n  Assistant: two", "x </memories",
                 CODE + "\nUser: made up", "Assistant (you): I see.\nUser: x", "Assistants help."):
        whole = through(text)[0]
        for _ in range(200):
            cuts = sorted(rng.sample(range(1, len(text)), k=min(len(text) - 1, rng.randint(1, 8))))
            pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)])]
            assert through(text, pieces)[0] == whole, pieces


def test_nothing_that_may_begin_a_stop_is_shown_before_it_is_decided():
    g = guard.Guard()
    shown = []
    for piece in g.filter(["Fine.", "\n", "Us", "er", ": made up"]):
        shown.append(piece)
    assert shown == ["Fine."] and g.stopped_at == len("Fine.")
    assert through("", ["<", "mem", "ories>"])[1].copied.startswith("<memories>")


def test_the_engine_stop_strings_are_the_tags_and_the_guard_stops_at_a_label_itself():
    assert guard.STOP_STRINGS == ["<memories", "</memories"]     # a literal "\nUser:" would stop inside code
    closed = []

    class Stream:                                               # an engine's stream: closed at the stop
        def __init__(self, pieces):
            self.pieces = iter(pieces)

        def __iter__(self):
            return self

        def __next__(self):
            return next(self.pieces)

        def close(self):
            closed.append(True)

    g = guard.Guard()
    assert "".join(g.filter(Stream(["Fine.", "\nUser: made", " up", " more"]))) == "Fine."
    assert closed == [True]
    from assistant.prompts import OWN_LABEL

    assert through(f"Fine.\n{OWN_LABEL} made up")[0] == "Fine."
    assert guard.avoid(COPY) == ["<memories"]
    assert guard.avoid("User: hi") == ["User:"]


def test_an_answer_that_began_with_a_copy_is_asked_again_avoiding_that_start(store):
    llm = FakeLLM([COPY, "You started learning the cello; practise a little every day."])
    a = make(store, llm)
    got = []
    ans = a.answer(None, "What instrument did I start learning recently?", on_token=got.append)
    assert ans.text == "You started learning the cello; practise a little every day."
    assert "".join(got).strip() == ans.text == store.turn(ans.turn_id).text      # shown is stored
    assert llm.avoided == [[], ["<memories"]]
    assert len(llm.prompts) == 2 and llm.prompts[0] == llm.prompts[1]


def test_a_second_copy_gives_one_honest_sentence_shown_and_stored(store):
    llm = FakeLLM([COPY, "User: Who is Tom?\nAssistant: Your brother."])
    a = make(store, llm)
    got = []
    ans = a.answer(None, "What instrument did I start learning recently?", on_token=got.append)
    assert ans.text == guard.FALLBACK == "".join(got) == store.turn(ans.turn_id).text
    assert llm.avoided == [[], ["<memories"]]


def test_a_model_that_cannot_avoid_gives_the_honest_sentence(store):
    class Plain(FakeLLM):
        def stream(self, messages, max_tokens=512, cancel=None):
            yield from super().stream(messages, max_tokens, cancel)

    a = make(store, Plain([COPY]))
    assert a.answer(None, "What did I start learning?").text == guard.FALLBACK


def test_an_empty_answer_is_asked_again_avoiding_every_tag_and_label(store):
    """The engine's own stop strings may cut a copy before the Guard sees it: the answer is then empty."""
    llm = FakeLLM(["", "The cello."])
    ans = make(store, llm).answer(None, "What did I start learning?")
    assert ans.text == "The cello." and llm.avoided[1] == [*guard.TAGS, *guard.LABELS]


def test_invented_turns_after_an_answer_are_neither_shown_nor_stored(store):
    llm = FakeLLM(["You started the cello.\nUser: My brother Tom works as a nurse\nAssistant: Noted."])
    a = make(store, llm)
    got = []
    ans = a.answer(None, "What did I start learning?", on_token=got.append)
    assert ans.text == "You started the cello." == "".join(got).strip() == store.turn(ans.turn_id).text
    assert llm.avoided == [[]]                  # no second call: the answer had words before the cut


def test_a_cancelled_empty_answer_is_not_asked_again(store):
    llm = FakeLLM([COPY, "never"])
    cancel = threading.Event()
    cancel.set()
    ans = make(store, llm).answer(None, "What did I start learning?", cancel=cancel)
    assert ans.text == "" and ans.interrupted and len(llm.avoided) == 1


def test_an_incognito_answer_is_guarded_too(store):
    llm = FakeLLM([COPY, "The cello."])
    a = make(store, llm, incognito=True)
    ans = a.answer(None, "What did I start learning?")
    assert ans.text == "The cello." and a.turns(ans.session_id)[-1].text == "The cello."


async def test_the_answer_view_shows_a_tag_as_written():
    """Rendered with raw HTML on, a stored answer that opened with "<memories>" showed as "<memories" or
    nothing: the tag and the lines after it were taken for HTML."""
    from textual.app import App
    from textual.widgets import Markdown
    from textual.widgets._markdown import MarkdownParagraph

    from ui.widgets.messages import AssistantMessage

    class One(App):
        def compose(self):
            yield AssistantMessage("<memories>\n[Monday]\nUser: hi\n</memories>\n\nUse <b>bold</b> or `<i>`.")

    async with One().run_test() as pilot:
        await pilot.pause()
        shown = " ".join(str(p._content) for p in pilot.app.query_one(Markdown).query(MarkdownParagraph))
        assert "<memories> [Monday] User: hi </memories>" in shown and "<b>bold</b>" in shown


def test_recalled_assistant_lines_are_marked_as_its_own_earlier_replies(store):
    """Recalled turns keep who said what: the user's lines are "User:", the assistant's own are labelled as
    its earlier replies (the system prompt says what that label means); a turn's further lines are indented,
    and what an old answer holds of a copied memory block or invented dialogue is left out."""
    from assistant.prompts import OWN_LABEL, SYSTEM

    sid = store.new_session("Earlier")
    for role, text in [("user", "What is your favourite colour?"), ("assistant", "My favourite colour is blue."),
                       ("user", "Which instrument am I learning?"), ("assistant", COPY)]:
        store.add_turn(sid, role, text)        # the copy was stored before answers were guarded
    llm = FakeLLM(["You have not told me."])
    a = make(store, llm)
    a.answer(None, "What is my favourite colour?")
    block = llm.prompts[-1][-1]["content"].split("</memories>")[0]
    assert "\nUser: What is your favourite colour?" in block
    assert f"\n{OWN_LABEL} My favourite colour is blue." in block
    assert not any(line.startswith("Assistant:") for line in block.splitlines())
    from assistant.prompts import attachments, with_memories

    found = a.recall.search("Which instrument am I learning? brother Tom works as a nurse", 10 ** 6)
    assert any("brother Tom" in m.text for m in found)
    block = with_memories("", attachments(found))
    # the answer stored before answers were guarded, a copy of its prompt, is left out as it would be cut now
    assert "\nUser: Which instrument am I learning?" in block
    assert "brother Tom" not in block and "3 March 2025" not in block and "cello" not in block
    assert not re.search(r"^\s*Assistant:", block, re.M)
    assert f'"{OWN_LABEL}" lines are replies you gave then' in SYSTEM
    assert llm.prompts[-1][0]["content"].startswith(SYSTEM)


def test_an_old_answer_is_shown_to_the_model_as_it_would_be_cut_now():
    from assistant.prompts import OWN_LABEL, own_words

    text = ("User: hi\nAssistant: Hello!\n  Here is a list:\n  - one\n  User: made up\nUser: next?\n"
            "Assistant: <memories>\n  [Monday]\n  User: My brother Tom works as a nurse\nUser: last")
    assert own_words(text) == (f"User: hi\n{OWN_LABEL} Hello!\n  Here is a list:\n  - one\nUser: next?\n"
                               "User: last")
    chain = "[3 May] cello: User: I play / Assistant: Nice -(Changed)-> [4 May] Assistant: ok\n  Assistant: x"
    assert own_words(chain, anywhere=True) == chain.replace("Assistant:", OWN_LABEL)


def test_a_turn_asked_again_reports_the_first_calls_prompt_and_the_second_calls_answer(store):
    from assistant.llm import GenerationStats

    class Counting(FakeLLM):
        def stream(self, messages, max_tokens=512, cancel=None, avoid=()):
            stats = (GenerationStats(prompt_tokens=300, reused_tokens=20, completion_tokens=40) if not avoid else
                     GenerationStats(prompt_tokens=300, reused_tokens=299, completion_tokens=5,
                                     time_to_first_token=0.1, generation_seconds=0.4))
            try:
                yield from super().stream(messages, max_tokens, cancel, avoid)
            finally:
                self.last_stats = stats
                self.closed = getattr(self, "closed", 0) + 1

    llm = Counting([COPY, "The cello, every day."])
    ans = make(store, llm).answer(None, "What did I start learning?")
    st = ans.stats
    assert llm.closed == 2               # the first call was closed when its answer was cut
    assert ans.text == "The cello, every day."
    assert (st.prompt_tokens, st.evaluated_tokens, st.completion_tokens) == (300, 280, 5)
    assert st.time_to_first_token >= 0.1 and st.generation_seconds == 0.4


def test_an_answer_that_only_repeats_the_no_memories_note_is_asked_again(store):
    # a new user's first message, with nothing to recall: the default model answered with the note itself
    llm = FakeLLM(["No new memories for this message.", "Nice to meet Tomasz! What else would you like to share?"])
    a = make(store, llm)
    got = []
    ans = a.answer(None, "My brother Tomasz works as a nurse in Gdansk.", on_token=got.append)
    assert ans.text == "Nice to meet Tomasz! What else would you like to share?"
    assert "".join(got).strip() == ans.text == store.turn(ans.turn_id).text
    assert llm.avoided == [[], ["No"]]
    # held back only while it could still be the note: "No," is shown once it is not
    shown, g = through("No, he is not.", ["No", ",", " he is not."])
    assert shown == "No, he is not." and g.copied == ""


def test_an_answer_that_names_its_own_turn_first_is_kept_without_the_label(store):
    llm = FakeLLM(["Assistant (you): I understand. I will keep that in mind."])
    a = make(store, llm)
    got = []
    ans = a.answer(None, "I'm allergic to penicillin, so please keep that in mind.", on_token=got.append)
    assert ans.text == "I understand. I will keep that in mind."
    assert "".join(got).strip() == ans.text == store.turn(ans.turn_id).text
    assert llm.avoided == [[]]                  # kept at once, not asked again


# -- an answer that only repeats the user's message --------------------------------------------------------
STATEMENT = "My dog is called Biscuit and she loves the beach."


def test_an_answer_that_only_repeats_the_message_is_asked_again_avoiding_its_first_word(store):
    llm = FakeLLM([STATEMENT, "Biscuit sounds like a happy dog!"])
    a = make(store, llm)
    got = []
    ans = a.answer(None, STATEMENT, on_token=got.append)
    assert ans.text == "Biscuit sounds like a happy dog!" == "".join(got).strip() == store.turn(ans.turn_id).text
    assert llm.avoided == [[], ["My"]]


def test_a_second_repeat_is_taken_as_it_comes_and_a_model_that_cannot_avoid_keeps_the_first(store):
    llm = FakeLLM([STATEMENT.lower(), STATEMENT])
    ans = make(store, llm).answer(None, STATEMENT)
    assert ans.text == STATEMENT and len(llm.avoided) == 2

    class Plain(FakeLLM):
        def stream(self, messages, max_tokens=512, cancel=None):
            yield from super().stream(messages, max_tokens, cancel)

    plain = Plain([STATEMENT])
    ans = make(store, plain).answer(None, STATEMENT)
    assert ans.text == STATEMENT and len(plain.prompts) == 1


@pytest.mark.parametrize("reply", ["My dog is called Biscuit too, what a coincidence!", "My dog!",
                                   "Biscuit is a lovely name."])
def test_an_answer_that_goes_on_from_the_message_or_repeats_little_of_it_is_shown_whole(store, reply):
    llm = FakeLLM([reply])
    got = []
    ans = make(store, llm).answer(None, STATEMENT, on_token=got.append)
    assert ans.text == reply == "".join(got).strip() and llm.avoided == [[]]
