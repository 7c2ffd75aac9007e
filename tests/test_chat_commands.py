"""Chat commands (/remember, /forget with its "yes"), pinned facts in the prompt, and the incognito chat,
through the Assistant with the fake model and embedder on a real SQLite file."""
import pytest

from assistant.config import Config
from assistant.core import Assistant
from assistant.routes import default_routes
from memory import edits
from memory.bank import SegmentRecall
from memory.recall import TurnIndex
from tests.fakes import FakeEmbedder, FakeLLM


def make(store, llm=None, incognito=False, **cfg):
    a = Assistant(store, None, Config(**cfg), model=llm or FakeLLM(replies=["Sure."]), routes=default_routes(),
                  incognito=incognito)
    a.recall = SegmentRecall(store, FakeEmbedder(), count_tokens=a.count_tokens)
    return a


def test_remember_pins_a_fact_into_every_prompt_and_stores_no_turn(store):
    llm = FakeLLM(replies=["Dr. Brooks."])
    a = make(store, llm)
    sid = a.new_session()
    ans = a.answer(sid, "/remember my dentist is Dr. Brooks")
    assert ans.text.startswith("I'll keep this in mind") and ans.turn_id is None
    assert store.turns(sid) == []
    assert [p.text for p in edits.pins(store)] == ["User: my dentist is Dr. Brooks"]
    assert a.answer(sid, "/remember: I like tea").text.endswith("): I like tea") and store.turns(sid) == []
    a.answer(None, "Who is my dentist?")
    system = llm.prompts[-1][0]["content"]
    assert "Facts the user asked you to keep in mind:\n- Your dentist is Dr. Brooks" in system


def test_pins_beyond_their_budget_are_left_out(store):
    llm = FakeLLM(replies=["ok"])
    a = make(store, llm, pinned_budget_tokens=0)
    edits.remember(store, "I like tea")
    a.answer(None, "hello there")
    assert "keep in mind" not in llm.prompts[-1][0]["content"]


def test_forget_asks_then_forgets_on_yes(store):
    a = make(store)
    old = store.new_session()
    store.add_turn(old, "user", "Daniel owes me ten euros")
    store.add_turn(old, "user", "the weather is nice")
    sid = a.new_session()
    ask = a.answer(sid, "/forget everything about Daniel")
    assert ask.text == ("This forgets 1 turn, 0 memories, 0 summaries and 0 clips.\n\n"
                        "- you: “Daniel owes me ten euros”\n\n"
                        "It cannot be undone. Forget it? Answer yes or no.")
    assert store.count("turns") == 2          # nothing yet, and the command is not stored
    done = a.answer(sid, "yes")
    assert done.text == "Forgot 1 turn, 0 memories, 0 summaries and 0 clips."
    assert ask.forget_plan is done.forget_plan and done.forget_plan.forgotten
    assert len(done.forget_plan.turn_ids) == 1
    assert [t.text for t in store.turns(old)] == ["the weather is nice"]
    assert store.turns(sid) == []


def test_forget_answered_no_changes_nothing(store):
    a = make(store)
    old = store.new_session()
    store.add_turn(old, "user", "Daniel owes me ten euros")
    sid = a.new_session()
    a.answer(sid, "/forget Daniel")
    assert a.answer(sid, "no").text == "Nothing was forgotten."
    assert store.count("turns") == 1
    # another message instead of an answer drops the question and is answered as chat
    a.answer(sid, "/forget Daniel")
    chat = a.answer(sid, "what is the weather?")
    assert chat.text == "Sure." and store.count("turns") == 3


def test_forget_with_nothing_to_forget_and_bad_ids(store):
    a = make(store)
    sid = a.new_session()
    nothing = a.answer(sid, "/forget zebras").text
    assert nothing.startswith("Nothing matches, so there is nothing to forget. Try fewer or other words")
    assert "memory screen (F3)" in nothing
    assert "There is no memory 42" in a.answer(sid, "/forget memory 42").text
    assert a.answer(sid, "/forget").text.startswith("Say what to forget")
    assert a.answer(sid, "yes").text == "Sure."      # no question was waiting


def test_the_question_shows_the_opening_words_of_the_first_three_turns_that_go(store):
    a = make(store)
    old = store.new_session()
    store.add_turn(old, "user", "My dentist is Dr. Brooks and my gym locker code is 4411, remember both please")
    store.add_turn(old, "assistant", "Dr. Brooks is your dentist.")
    store.add_turn(old, "user", "the weather is nice")
    store.add_turn(old, "user", "I am seeing the dentist on Friday")
    store.add_turn(old, "user", "a new dentist opened nearby")
    sid = a.new_session()
    ask = a.answer(sid, "/forget my dentist").text
    lines = ask.split("\n")
    # the assistant's line that says the words counts among the answers that go
    assert lines[0] == "This forgets 4 turns (1 of them an answer built on it), 0 memories, 0 summaries and 0 clips."
    assert lines[2:6] == ["- you: “My dentist is Dr. Brooks and my gym locker code is 4411…”",
                          "- assistant: “Dr. Brooks is your dentist.”",
                          "- you: “I am seeing the dentist on Friday”",
                          "- … and 1 more"]
    assert lines[-1] == "It cannot be undone. Forget it? Answer yes or no."
    assert store.count("turns") == 5
    assert a.answer(sid, "no").forget_plan is None


def test_forgetting_the_current_conversation_by_phrase_keeps_it_open(store):
    a = make(store)
    sid = a.new_session()
    a.answer(sid, "Daniel is my cousin")
    a.answer(sid, "/forget Daniel")
    a.answer(sid, "yes")
    assert store.session(sid) is not None
    assert a.answer(sid, "hello again").text == "Sure."


def test_incognito_stores_nothing_and_says_so(store):
    llm = FakeLLM(replies=["Hi.", "You said your name is Zed."])
    a = make(store, llm, incognito=True)
    sid = a.new_session()
    first = a.answer(sid, "My name is Zed")
    assert "Incognito" in first.notices[0]
    second = a.answer(sid, "What is my name?")
    assert "My name is Zed" in [m["content"] for m in llm.prompts[-1]][1]   # the chat remembers it in memory
    assert second.turn_id is not None and second.turn_id < 0
    assert store.count("turns") == 0 and store.count("sessions") == 0
    pinned = a.answer(sid, "/remember x")
    assert store.count("pins") == 0 and "incognito" in pinned.text and "ctrl+g" in pinned.text


def test_commands_answer_in_incognito_without_the_model_and_store_nothing(store):
    """/help and a mistyped command are the app's, not the model's, in an incognito chat too; /forget there
    forgets from the stored memory, which is what the user asked for."""
    kept = make(store)
    kept.answer(None, "My neighbour Daniel plays the drums.")
    kept.answer(None, "I like green tea.")
    turns = store.count("turns")
    llm = FakeLLM(replies=["model"])
    a = make(store, llm, incognito=True)
    sid = a.new_session()
    assert "/forget" in a.answer(sid, "/help").text
    assert "Did you mean /forget?" in a.answer(sid, "/forgt drums").text
    assert "Daniel" in a.answer(sid, "/forget Daniel").text
    assert a.answer(sid, "yes").text.startswith("Forgot")
    assert llm.prompts == [] and store.count("sessions") == 1 and store.count("turns") == turns - 2
    assert not [t for t in store.db.execute("SELECT text FROM turns").fetchall() if "Daniel" in t[0]]


def test_after_a_forget_the_prompt_keeps_the_running_memory_made_before_it(store):
    from memory.consolidate import Consolidator
    from memory.forget import forget, plan_forget
    from memory.summaries import SummaryStore
    from tests.test_consolidation_fakes import SchemaLLM, add_segment, add_session, day

    a = add_session(store, day(1), [("User", "I am allergic to penicillin."), ("Assistant", "Noted.")])
    add_segment(store, a)
    Consolidator(store, FakeEmbedder(), SchemaLLM()).run()
    b = add_session(store, day(2), [("User", "My neighbour Daniel plays the drums."), ("Assistant", "Loud!")])
    add_segment(store, b)
    Consolidator(store, FakeEmbedder(), SchemaLLM()).run()
    assert "Daniel" in SummaryStore(store).running().text
    forget(store, plan_forget(store, phrase="Daniel"))
    llm = FakeLLM(replies=["ok"])
    make(store, llm).answer(None, "hello")
    system = llm.prompts[-1][0]["content"]
    assert "penicillin" in system and "Daniel" not in system


# -- forgetting asked for in words, /help and unknown commands ---------------------------------------------
def with_past(store, llm, *said):
    """An assistant over a memory where an earlier conversation holds the user's `said`, indexed; the
    assistant, that conversation and a new one."""
    a = make(store, llm)
    old = store.new_session()
    for text in said:
        store.add_turn(old, "user", text)
    TurnIndex(store, FakeEmbedder()).index_pending()
    return a, old, a.new_session()


@pytest.mark.parametrize("said", [
    "Please forget that my friend Sam has cats.",
    "forget that my friend Sam has cats",
    "Can you forget about my friend Sam?",
    "could you please forget everything about my friend Sam!",
    "Forget my friend Sam",
])
def test_a_forget_request_in_words_asks_like_the_command(store, said):
    llm = FakeLLM(replies=["I'm sorry to hear that."])
    # "Sam has cats" finds "Sam has two cats"
    a, old, sid = with_past(store, llm, "My friend Sam has two cats", "the weather is nice")
    ask = a.answer(sid, said)
    assert ask.text.startswith("This forgets 1 turn") and "- you: “My friend Sam has two cats”" in ask.text
    assert ask.text.endswith("Answer yes or no.") and ask.turn_id is None
    assert llm.prompts == [] and store.count("turns") == 2 and store.turns(sid) == []
    done = a.answer(sid, "yes")
    assert done.text.startswith("Forgot 1 turn")
    assert [t.text for t in store.turns(old)] == ["the weather is nice"] and store.turns(sid) == []


@pytest.mark.parametrize("said", [
    "Forget it, let's talk about dinner",
    "Forget the zebras.",
    "Don't forget to buy milk",
    "forget it",
])
def test_a_forget_request_in_words_that_matches_nothing_is_chat(store, said):
    llm = FakeLLM(replies=["Sure."])
    a, _, sid = with_past(store, llm, "Let's talk about dinner later, and I have to buy milk")
    ans = a.answer(sid, said)
    assert ans.text == "Sure." and len(llm.prompts) == 1
    assert [t.text for t in store.turns(sid)] == [said, "Sure."]
    assert a.answer(sid, "yes").text == "Sure."          # no question was waiting


@pytest.mark.parametrize("said", [
    "Please forget the zebras.",
    "can you forget what I said about the zebras?",
    "Could you please forget the zebra thing",
])
def test_a_forget_request_made_to_the_assistant_that_matches_nothing_is_answered_by_the_app(store, said):
    """Not sent to the model, which answered "Sure, I can forget that" when nothing was forgotten."""
    llm = FakeLLM(replies=["Sure, I can forget that."])
    a, _, sid = with_past(store, llm, "Let's talk about dinner later")
    ans = a.answer(sid, said)
    assert ans.text.startswith("Nothing matches, so there is nothing to forget.") and llm.prompts == []
    assert ans.forget_plan is None or ans.forget_plan.empty
    assert store.count("turns") == 1


@pytest.mark.parametrize("said", [
    "can you forget what I said about my friend Sam",
    "please forget everything I told you about my friend Sam",
    "forget the my friend Sam thing",
])
def test_what_i_said_about_and_a_trailing_thing_are_not_part_of_what_to_forget(store, said):
    a, old, sid = with_past(store, FakeLLM(replies=["Chat."]), "My friend Sam has two cats", "the weather is nice")
    ask = a.answer(sid, said)
    assert ask.text.startswith("This forgets 1 turn") and "My friend Sam has two cats" in ask.text
    assert a.answer(sid, "yes").text.startswith("Forgot 1 turn")
    assert [t.text for t in store.turns(old)] == ["the weather is nice"]


@pytest.mark.parametrize("said", ["Can you forget things?", "could you forget stuff", "Can you forget anything?",
                                  "Can you forget something I said?", "Will you forget my memories?"])
def test_asking_whether_it_can_forget_forgets_nothing_even_when_the_words_match(store, said):
    """Answered by the app with how to forget (or, for "my memories", as chat): never a forget question."""
    llm = FakeLLM(replies=["Chat."])
    a = make(store, llm)
    old = store.new_session()
    for text in ("I have so many things to do and stuff to sort", "Something I said about anything",
                 "my memories of Lisbon"):
        store.add_turn(old, "user", text)
    TurnIndex(store, FakeEmbedder()).index_pending()
    sid = a.new_session()
    ans = a.answer(sid, said)
    assert ans.forget_plan is None and a.answer(sid, "yes").text == "Chat."     # no question was waiting
    if "memories" not in said:
        assert "/forget" in ans.text and ans.turn_id is None and store.turns(sid)[0].text == "yes"
    assert store.count("turns") == 3 + (4 if "memories" in said else 2)    # a command's answer is not kept


def test_help_in_an_incognito_chat_says_remember_pins_nothing_there(store):
    assert "(not from an incognito one)" in make(store, incognito=True).answer(None, "/help").text
    assert "(not from an incognito one)" not in make(store).answer(None, "/help").text


@pytest.mark.parametrize("said", ["/help", "/?", "/commands", "/HELP", "/help?"])
def test_help_lists_the_chat_commands_and_is_not_stored(store, said):
    llm = FakeLLM(replies=["Sure."])
    a = make(store, llm)
    sid = a.new_session()
    ans = a.answer(sid, said)
    for command in ("/forget WORDS", "/forget memory ID", "/forget session ID", "/remember FACT", "/help"):
        assert command in ans.text, command
    assert "F1" in ans.text
    assert ans.turn_id is None and store.count("turns") == 0 and llm.prompts == []


def test_an_unknown_command_is_answered_and_neither_stored_nor_sent(store):
    llm = FakeLLM(replies=["Sure."])
    a = make(store, llm)
    old = store.new_session()
    store.add_turn(old, "user", "my cello lesson is on Thursday")
    sid = a.new_session()
    ans = a.answer(sid, "/forgt cello")
    assert ans.text == ("Unknown command /forgt. Commands: /forget, /remember, /help. Did you mean /forget?")
    assert a.answer(sid, "/rmember x").text.endswith("Did you mean /remember?")
    assert a.answer(sid, "/zzz").text == "Unknown command /zzz. Commands: /forget, /remember, /help."
    assert a.answer(sid, "/hlep.").text.endswith("Did you mean /help?")
    assert ans.turn_id is None and store.turns(sid) == [] and store.count("turns") == 1 and llm.prompts == []


def test_a_message_starting_with_a_path_is_chat(store):
    llm = FakeLLM(replies=["Sure."])
    a = make(store, llm)
    sid = a.new_session()
    assert a.answer(sid, "/usr/bin is full").text == "Sure."
    assert [t.text for t in store.turns(sid)] == ["/usr/bin is full", "Sure."] and len(llm.prompts) == 1
