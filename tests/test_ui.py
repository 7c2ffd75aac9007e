"""Pilot tests of the terminal UI with the scripted FakeLLM and FakeEmbedder."""
from __future__ import annotations

import re
import time

import pytest

from assistant.config import Config
from assistant.routes import default_routes
from assistant.core import Assistant
from assistant.errors import GenerationError, ModelError
from memory.recall import TurnRecall
from memory.store import Store
from tests.fakes import FakeEmbedder, FakeLLM
from ui.app import AssistantApp
from ui.screens.chat import ChatScreen
from ui.screens.help import HelpScreen
from ui.widgets.messages import AssistantMessage, UserMessage, Welcome
from ui.widgets.prompt import PromptInput
from ui.widgets.status import StatusBar

SIZE = (110, 36)


def make_assistant(db, model=None, config=None) -> Assistant:
    store = Store(db)
    a = Assistant(store, None, config or Config(), model=model, routes=default_routes())
    a.recall = TurnRecall(store, FakeEmbedder(), count_tokens=a.count_tokens)
    return a


@pytest.fixture
def db(tmp_path):
    return tmp_path / "data" / "ui.db"


async def wait_until(pilot, condition, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.02)


async def send(pilot, text: str) -> None:
    prompt = pilot.app.screen.query_one(PromptInput)
    prompt.focus()
    prompt.insert(text)
    await pilot.press("enter")


async def answered(pilot, timeout=10.0) -> AssistantMessage:
    screen: ChatScreen = pilot.app.chat
    await wait_until(pilot, lambda: screen.idle.is_set() and not screen.answering, timeout, "the answer")
    await pilot.pause()
    return screen.reply


def notifications(app, severity=None) -> list[str]:
    return [n.message for n in app._notifications if severity is None or n.severity == severity]


def user_texts(screen) -> list[str]:
    return [w.text for w in screen.query(UserMessage)]


# -- the hot path ----------------------------------------------------------------------------------
async def test_message_streams_token_by_token_and_is_stored(db):
    reply = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma"

    class Checking(FakeLLM):
        def stream(self, messages, max_tokens=512, cancel=None):
            # The user's message must already be on disk when the model is called.
            self.stored_before = [(t.role, t.text) for s in store.sessions() for t in store.turns(s.id)]
            yield from super().stream(messages, max_tokens, cancel)

    llm = Checking(replies=[reply], delay=0.05)
    a = make_assistant(db, llm)
    store = a.store
    app = AssistantApp(assistant=a)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "Hello there")
        screen = app.chat
        assert user_texts(screen) == ["Hello there"]
        msg = screen.reply
        seen = set()
        while screen.answering:
            seen.add(msg.shown_text)
            await pilot.pause(0.02)
        msg = await answered(pilot)
        partial = {s for s in seen if s and s != reply}
        assert partial, f"the answer did not stream: {seen}"  # seen part-way, not all at once
        assert all(reply.startswith(p.strip()) for p in partial)
        assert msg.shown_text == reply
        assert not msg.interrupted and "interrupted" not in msg.state_text
        assert screen.prompt.text == ""
        status = screen.query_one(StatusBar)
        assert status.tokens_per_second and status.tokens_per_second > 0
        assert "tok/s" in str(status.render())
        # the answer says how long it took to start, from Enter to its first word, and its speed
        started = re.fullmatch(r"started in (\d+\.\d) s · \d+\.\d tok/s", str(msg.border_subtitle))
        assert started, msg.border_subtitle
        assert msg.first_piece_at - msg.sent_at >= 0.05   # the fake model's first token comes after 0.05 s
    assert llm.stored_before[0] == ("user", "Hello there")
    sid = store.sessions()[0].id
    assert [(t.role, t.text, t.status) for t in store.turns(sid)] == [
        ("user", "Hello there", "complete"), ("assistant", reply, "complete")]
    a.close()


async def test_escape_stops_the_answer_and_keeps_it_marked_interrupted(db):
    words = " ".join(f"w{i}" for i in range(300))
    a = make_assistant(db, FakeLLM(replies=[words], delay=0.03))
    app = AssistantApp(assistant=a)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "Tell me a long story")
        screen = app.chat
        await wait_until(pilot, lambda: len(screen.reply.shown_text.split()) >= 5, what="some words")
        await pilot.press("escape")
        msg = await answered(pilot)
        shown = msg.shown_text.strip()
        assert 5 <= len(shown.split()) < 300
        assert msg.interrupted and msg.has_class("-interrupted")
        assert "interrupted" in msg.state_text
        assert not app.chat.answering
    turns = a.store.turns(a.store.sessions()[0].id)
    assert turns[-1].role == "assistant"
    assert turns[-1].status == "interrupted"
    assert turns[-1].text == shown
    a.close()


async def test_enter_while_answering_keeps_the_text_and_says_why(db):
    words = " ".join(f"w{i}" for i in range(300))
    a = make_assistant(db, FakeLLM(replies=[words], delay=0.03))
    app = AssistantApp(assistant=a)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await send(pilot, "Tell me a long story")
        screen = app.chat
        await wait_until(pilot, lambda: len(screen.reply.shown_text.split()) >= 5, what="some words")
        await pilot.press(*"and then")
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.screen.query("Toast"), what="a notification")
        assert any("Wait for this answer to finish, or press Esc to stop it" in n
                   for n in notifications(app, "warning"))
        assert screen.prompt.text == "and then"
        assert user_texts(screen) == ["Tell me a long story"]
        await pilot.press("escape")
        await answered(pilot)
        assert screen.prompt.text == "and then"
    a.close()


async def test_quit_during_an_answer_finalises_it_on_disk(db):
    words = " ".join(f"w{i}" for i in range(300))
    llm = FakeLLM(replies=[words], delay=0.03)
    a = make_assistant(db, llm)
    app = AssistantApp(assistant=a)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "Count for me")
        await wait_until(pilot, lambda: len(app.chat.reply.shown_text.split()) >= 3, what="some words")
        await pilot.press("ctrl+q")
        await wait_until(pilot, lambda: not app.is_running, what="the app to exit")
    assert app.chat.idle.is_set()
    turns = a.store.turns(a.store.sessions()[0].id)
    assert [t.role for t in turns] == ["user", "assistant"]
    assert turns[1].status == "interrupted" and turns[1].text.startswith("w0 w1 w2")
    a.close()


async def test_quit_while_the_model_reads_a_long_prompt_is_quick_and_keeps_the_message(db):
    class SlowPrompt(FakeLLM):
        """Reads its prompt for seconds before the first token, deaf to cancel (as llama.cpp is)."""

        def stream(self, messages, max_tokens=512, cancel=None):
            time.sleep(6.0)
            yield "late"

    a = make_assistant(db, SlowPrompt())
    app = AssistantApp(assistant=a)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "a question with a long memory")
        await wait_until(pilot, lambda: app.chat.generating, what="the model to start")
        start = time.monotonic()
        await pilot.press("ctrl+c")
        await wait_until(pilot, lambda: not app.is_running, what="the app to exit")
        assert time.monotonic() - start < 2.0
    turns = a.store.turns(a.store.sessions()[0].id)
    assert turns[0].text == "a question with a long memory"
    await wait_until_thread(lambda: app.chat.idle.is_set())
    a.close()


async def test_quit_while_waiting_for_the_model_is_quick_and_keeps_the_message(db):
    a = make_assistant(db, model=None)
    app = AssistantApp(assistant=a)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "remember this")
        await wait_until(pilot, lambda: a.store.count("turns") == 1, what="the stored message")
        start = time.monotonic()
        await pilot.press("ctrl+q")
        await wait_until(pilot, lambda: not app.is_running, what="the app to exit")
        assert time.monotonic() - start < 2.0
    assert app.busy()  # the worker still waits for the model: run_app exits without joining it
    a.set_model(FakeLLM(replies=["never shown"]))
    await wait_until_thread(lambda: app.chat.idle.is_set())
    assert [(t.role, t.text) for t in a.store.turns(a.store.sessions()[0].id)] == [("user", "remember this")]
    a.close()


async def wait_until_thread(condition, timeout=10.0):
    import asyncio

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)


async def test_enter_sends_and_ctrl_j_inserts_a_new_line(db):
    a = make_assistant(db, FakeLLM(replies=["ok"]))
    app = AssistantApp(assistant=a)
    async with app.run_test(size=SIZE) as pilot:
        prompt = app.chat.prompt
        assert app.focused is prompt
        await pilot.press("l", "i", "n", "e", "1", "ctrl+j", "l", "i", "n", "e", "2")
        assert prompt.text == "line1\nline2"
        assert not app.chat.query(UserMessage)
        await pilot.press("enter")
        await answered(pilot)
        assert user_texts(app.chat) == ["line1\nline2"]
        assert prompt.text == ""
        await pilot.press("up")  # brings back the last message
        assert prompt.text == "line1\nline2"
    a.close()


# -- sessions --------------------------------------------------------------------------------------
async def test_session_list_shows_sessions_and_reopens_one(db):
    a = make_assistant(db, FakeLLM(replies=["Tomatoes like sun.", "Use a hot pan."]))
    first = a.answer(None, "How do I grow tomatoes").session_id
    a.answer(None, "How do I sear a steak")
    a.new_session()  # empty: not listed
    app = AssistantApp(assistant=a)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.chat
        assert not screen.sidebar.display
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: len(screen.sidebar.titles()) == 2, what="the session list")
        assert screen.sidebar.display
        assert screen.sidebar.titles() == ["How do I sear a steak", "How do I grow tomatoes"]
        assert app.focused is screen.sidebar.options
        await pilot.press("escape")               # Esc closes the list, as ctrl+s does
        assert not screen.sidebar.display and app.focused is screen.prompt
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: screen.sidebar.display, what="the list again")
        # The latest one is under the cursor (Enter continues it); choose the older one with the keyboard.
        assert screen.sidebar.options.highlighted == 1
        await pilot.press("down", "enter")
        await wait_until(pilot, lambda: bool(screen.query(UserMessage)), what="the turns")
        assert screen.session_id == first
        assert user_texts(screen) == ["How do I grow tomatoes"]
        answers = list(screen.query(AssistantMessage))
        assert [m.shown_text for m in answers] == ["Tomatoes like sun."]
        assert not screen.query(Welcome)
        assert app.focused is screen.prompt and not screen.sidebar.display   # the list closes after a choice
        # The next message continues that session.
        await send(pilot, "And how often to water them")
        await answered(pilot)
        assert user_texts(screen) == ["How do I grow tomatoes", "And how often to water them"]
    assert [t.text for t in a.store.turns(first) if t.role == "user"] == [
        "How do I grow tomatoes", "And how often to water them"]
    assert len([s for s in a.store.sessions() if s.turn_count]) == 2
    a.close()


async def test_reopened_interrupted_answer_is_marked(db):
    a = make_assistant(db, FakeLLM())
    sid = a.new_session("Cut short")
    a.store.add_turn(sid, "user", "Say a lot")
    a.store.add_turn(sid, "assistant", "I was saying", status="interrupted")
    app = AssistantApp(assistant=a)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.chat.sidebar.titles() == ["Cut short"], what="sessions")
        app.chat.open_session(sid)
        await pilot.pause()
        (msg,) = app.chat.query(AssistantMessage)
        assert msg.interrupted and "interrupted" in msg.state_text
        assert msg.shown_text == "I was saying"
    a.close()


async def test_a_restart_opens_a_new_chat_that_names_the_last_one_and_ctrl_s_enter_continues_it(db):
    first = make_assistant(db)
    old = first.store.new_session("Biscuit and the beach")
    first.store.add_turn(old, "user", "My dog is called Biscuit.")
    first.store.add_turn(old, "assistant", "What a lovely name.")
    first.close()
    a = make_assistant(db, FakeLLM(replies=["ok"]))
    app = AssistantApp(assistant=a)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.chat
        await wait_until(pilot, lambda: "Last time" in str(screen.query_one(Welcome).render()), what="the hint")
        hint = str(screen.query_one(Welcome).render())
        assert "Last time: “Biscuit and the beach”" in hint and "2 turns" in hint
        assert screen.session_id is None
        await pilot.press("ctrl+s")
        await pilot.press("enter")
        await wait_until(pilot, lambda: screen.session_id == old, what="the last chat")
        assert user_texts(screen) == ["My dog is called Biscuit."]
    a.close()


async def test_ctrl_n_starts_a_new_session(db):
    a = make_assistant(db, FakeLLM(replies=["first answer", "second answer"]))
    app = AssistantApp(assistant=a)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.chat
        await send(pilot, "first question")
        await answered(pilot)
        first = screen.session_id
        assert first is not None
        await pilot.press("ctrl+n")
        assert screen.session_id is None
        assert not screen.query(UserMessage) and not screen.query(AssistantMessage)
        assert screen.query(Welcome)
        await send(pilot, "second question")
        await answered(pilot)
        assert screen.session_id not in (None, first)
        assert user_texts(screen) == ["second question"]
    sessions = a.store.sessions()
    assert len(sessions) == 2
    assert [t.text for t in a.store.turns(first)] == ["first question", "first answer"]
    a.close()


# -- memories, status, errors ----------------------------------------------------------------------
async def test_answer_shows_the_memories_it_used(db):
    a = make_assistant(db, FakeLLM(replies=["Noted.", "Your dog is Rex."]))
    a.answer(None, "my dog is called Rex and he likes the beach")
    app = AssistantApp(assistant=a)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "what is my dog called")
        msg = await answered(pilot)
        text = msg.memories_text
        assert "recalled" in text
        assert "my dog is called Rex" in text
        assert time.strftime("%Y") in text  # the date of the memory
        assert app.chat.status.memories >= 1
    a.close()


async def test_waits_for_the_model_then_answers(db):
    a = make_assistant(db, model=None)
    app = AssistantApp(assistant=a)
    async with app.run_test(size=SIZE) as pilot:
        status = app.chat.status
        assert "loading model" in str(status.render())
        await send(pilot, "are you there")
        await wait_until(pilot, lambda: "waiting for model" in app.chat.reply.state_text, what="waiting")
        # The message is stored while the model is still loading.
        await wait_until(pilot, lambda: a.store.count("turns") == 1, what="the stored message")
        a.set_model(FakeLLM(replies=["I am here now."]))
        msg = await answered(pilot)
        assert msg.shown_text == "I am here now."
        await wait_until(pilot, lambda: status.device == "CPU", what="the status bar")
        assert "fake" in str(status.render()) and "loading" not in str(status.render())
    a.close()


async def test_escape_while_waiting_for_the_model_keeps_only_the_message(db):
    a = make_assistant(db, model=None)
    app = AssistantApp(assistant=a)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "never mind")
        await wait_until(pilot, lambda: a.store.count("turns") == 1, what="the stored message")
        await pilot.press("escape")
        assert app.chat.answering  # still waiting: the model has not arrived
        a.set_model(FakeLLM(replies=["too late"]))
        msg = await answered(pilot)
        assert msg.interrupted and "stopped before the answer began" in msg.state_text
        assert msg.shown_text == ""
    assert [(t.role, t.text) for t in a.store.turns(a.store.sessions()[0].id)] == [("user", "never mind")]
    a.close()


async def test_model_load_error_becomes_a_notification(db):
    a = make_assistant(db, model=None)
    a.set_model_error(ModelError("The model file is missing; reinstall it."))
    app = AssistantApp(assistant=a)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: notifications(app, "error"), what="a notification")
        assert notifications(app, "error") == ["The model file is missing; reinstall it."]
        assert app.chat.status.error
        await send(pilot, "hello?")
        msg = await answered(pilot)
        assert "The model file is missing" in msg.state_text and msg.has_class("-failed")
        assert len(notifications(app, "error")) == 2
        assert app.chat.status.state == "model not loaded"   # not left at "answering…"
        assert app.is_running
    assert [t.text for t in a.store.turns(a.store.sessions()[0].id)] == ["hello?"]
    a.close()


async def test_error_while_streaming_becomes_a_notification(db):
    class Broken(FakeLLM):
        def stream(self, messages, max_tokens=512, cancel=None):
            yield "Half an"
            raise GenerationError("The model stopped unexpectedly; try again.")

    a = make_assistant(db, Broken())
    app = AssistantApp(assistant=a)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "go")
        msg = await answered(pilot)
        assert notifications(app, "error") == ["The model stopped unexpectedly; try again."]
        assert msg.shown_text == "Half an" and "stopped unexpectedly" in msg.state_text
        assert app.is_running and not app.chat.answering
    turns = a.store.turns(a.store.sessions()[0].id)
    assert (turns[-1].text, turns[-1].status) == ("Half an", "interrupted")
    a.close()


async def test_notices_are_shown_as_warnings(db):
    a = make_assistant(db, FakeLLM(replies=["ok"], n_ctx=1024))
    app = AssistantApp(assistant=a)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "word " * 2000)
        await answered(pilot)
        warnings = notifications(app, "warning")
        assert len(warnings) == 1 and "stored whole" in warnings[0]
    a.close()


async def test_options_path_builds_in_background_and_reports_a_missing_model(db, tmp_path, monkeypatch):
    from assistant import wiring

    monkeypatch.setattr(wiring, "SentenceTransformerEmbedder", FakeEmbedder)
    opts = wiring.Options(db=db, model=str(tmp_path / "missing.gguf"), config=Config())
    app = AssistantApp(opts)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.interactive_at is not None, what="interactive")
        assert app.focused is app.chat.prompt
        await wait_until(pilot, lambda: notifications(app, "error"), what="the model error")
        assert "No model file at" in notifications(app, "error")[0]
        assert "missing.gguf" in str(app.chat.status.render())
        await send(pilot, "still saved?")
        await answered(pilot)
    store = Store(db)
    assert [t.text for s in store.sessions() for t in store.turns(s.id)] == ["still saved?"]
    store.close()
    app.close_assistant()


# -- help and layout -------------------------------------------------------------------------------
async def test_help_screen_lists_keys(db):
    a = make_assistant(db, FakeLLM())
    app = AssistantApp(assistant=a)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        shot = app.export_screenshot()
        for key in ("ctrl+n", "ctrl+s", "Esc", "Enter", "ctrl+j", "ctrl+q"):
            assert key in shot, key
        await pilot.press("escape")
        assert isinstance(app.screen, ChatScreen)
        assert app.focused is app.chat.prompt
    a.close()


async def test_help_screen_lists_the_chat_commands(db):
    a = make_assistant(db, FakeLLM())
    app = AssistantApp(assistant=a)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f1")
        shot = app.export_screenshot().replace("&#160;", " ")
        for command in ("/forget WORDS", "/forget memory ID", "/remember", "/help"):
            assert command in shot, command
    a.close()


async def test_help_and_an_unknown_command_are_answered_in_the_chat_and_not_stored(db):
    llm = FakeLLM(replies=["Sure."])
    a = make_assistant(db, llm)
    app = AssistantApp(assistant=a)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "/help")
        shown = (await answered(pilot)).shown_text
        assert "/forget WORDS" in shown and "/remember FACT" in shown and "F1" in shown
        await send(pilot, "/forgt cello")
        assert (await answered(pilot)).shown_text.startswith("Unknown command /forgt.")
        assert user_texts(app.chat) == ["/help", "/forgt cello"]
    assert a.store.count("turns") == 0 and llm.prompts == []
    a.close()


async def test_layout_at_a_fixed_size(db):
    """A snapshot in words: at 110x36 the chat fills the top, then the input, status bar and footer."""
    a = make_assistant(db, FakeLLM(replies=["Sure."]))
    app = AssistantApp(assistant=a)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "hi")
        await answered(pilot)
        screen = app.chat
        footer = screen.query_one("Footer")
        assert footer.region.y == 35
        assert screen.status.region.y == 34 and screen.status.region.height == 1
        assert screen.prompt.region.bottom == 34
        assert screen.chat.region.y == 0 and screen.chat.region.bottom == screen.prompt.region.y
        keys = {k.key for k in footer.query("FooterKey")}
        assert {"ctrl+n", "ctrl+s", "f1", "ctrl+q"} <= keys
        assert "escape" not in keys
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert screen.sidebar.region.width == 34 and screen.chat.region.x >= 34
    a.close()


SMALL = (80, 24)   # a common terminal: everything must fit, be reachable and be readable there


async def test_long_code_lines_wrap_and_show_whole_at_80_columns(db):
    """A code block's long line is wrapped inside the answer (a chat cannot scroll sideways), and the
    block has one blank line above it, not two."""
    from textual.widgets import Label
    from textual.widgets._markdown import MarkdownFence, MarkdownParagraph

    long_line = "x = compute(" + ", ".join(f"arg{i}" for i in range(20)) + ', "ENDMARK")'
    assert len(long_line) > 130
    reply = f"Here is the code:\n\n```python\n{long_line}\nprint(x)\n```\n\nThat is all."
    a = make_assistant(db, FakeLLM(replies=[reply]))
    app = AssistantApp(assistant=a)
    async with app.run_test(size=SMALL) as pilot:
        await send(pilot, "code please")
        answer = await answered(pilot)
        await pilot.pause()
        fence = answer.query_one(MarkdownFence)
        code = fence.query_one(Label)
        assert code.region.right <= fence.region.right <= SMALL[0]
        assert code.region.height >= 3            # the long line takes two lines or more, print(x) one
        assert "ENDMARK" in app.export_screenshot()
        intro = answer.query(MarkdownParagraph).first()
        assert code.content_region.y - intro.region.bottom == 1   # one blank line, not two
    a.close()


def footer_keys(app) -> dict[str, object]:
    """The footer's keys shown on the current screen, with where each is."""
    return {k.key: k.region for k in app.screen.query_one("Footer").query("FooterKey")}


async def test_footer_shows_help_and_quit_whole_at_80_columns(db):
    words = " ".join(f"w{i}" for i in range(300))
    a = make_assistant(db, FakeLLM(replies=[words], delay=0.03))
    app = AssistantApp(assistant=a)
    async with app.run_test(size=SMALL) as pilot:
        await pilot.pause()
        keys = footer_keys(app)
        assert {"f1", "ctrl+q", "ctrl+n", "ctrl+s", "f3", "f4"} <= set(keys)
        assert all(r.right <= SMALL[0] for r in keys.values()), keys
        await send(pilot, "Tell me a long story")
        await wait_until(pilot, lambda: len(app.chat.reply.shown_text.split()) >= 5, what="some words")
        await pilot.pause(0.1)
        keys = footer_keys(app)           # Stop joins them while the answer streams; all still fit
        assert {"escape", "f1", "ctrl+q", "f4"} <= set(keys)
        assert all(r.right <= SMALL[0] for r in keys.values()), keys
        await pilot.press("escape")
        await answered(pilot)
        await pilot.press("ctrl+s")        # the sessions list adds its own keys: help and quit stay
        await pilot.pause(0.2)
        keys = footer_keys(app)
        assert keys["f1"].right <= SMALL[0] and keys["ctrl+q"].right <= SMALL[0]
        assert {"t", "r", "d"} <= set(keys)   # the list's own keys, and only whole keys after them
        assert all(r.right <= SMALL[0] for r in keys.values()), keys
    a.close()


async def test_help_fits_and_scrolls_at_80x24(db):
    from ui.screens.help import ABOUT

    a = make_assistant(db, FakeLLM())
    app = AssistantApp(assistant=a)
    async with app.run_test(size=SMALL) as pilot:
        await pilot.press("f1")
        await pilot.pause()
        box = app.screen.query_one("#help-box")
        assert box.region.right <= SMALL[0] and box.region.bottom <= SMALL[1]
        assert box.region.x >= 0 and box.region.y >= 0
        assert app.focused is box
        last_words = ABOUT.split()[-1]
        await pilot.press("end")
        await pilot.pause()
        about = app.screen.query_one("#help-about")
        assert about.region.bottom <= box.region.bottom      # the last line is on screen once scrolled
        assert last_words in app.export_screenshot()
        await pilot.press("escape")
        assert isinstance(app.screen, ChatScreen)
    a.close()


def test_status_bar_device_text():
    from types import SimpleNamespace

    from ui.widgets.status import device_text

    assert device_text(SimpleNamespace(gpu_layers=28, n_layers=28)) == "GPU 28/28 layers"
    assert device_text(SimpleNamespace(gpu_layers=10, n_layers=30)) == "GPU 10/30 layers"
    assert device_text(SimpleNamespace(gpu_layers=0, n_layers=30)) == "CPU"
    assert device_text(FakeLLM()) == "CPU"


async def test_ctrl_c_quits(db):
    a = make_assistant(db, FakeLLM())
    app = AssistantApp(assistant=a)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+c")
        await wait_until(pilot, lambda: not app.is_running, what="the app to exit")
    a.close()


async def test_an_answer_that_has_not_begun_shows_how_much_of_its_prompt_is_read(db):
    import threading

    go = threading.Event()

    class Reading(FakeLLM):
        reading = None

        def stream(self, messages, max_tokens=512, cancel=None, avoid=()):
            self.reading = (256, 1024)
            go.wait(10)
            self.reading = None
            yield from super().stream(messages, max_tokens, cancel, avoid)

    a = make_assistant(db, Reading(["Here it is."]))
    app = AssistantApp(assistant=a)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "What did I say about the garden?")
        reply = app.chat.reply
        await wait_until(pilot, lambda: reply.state_text == "reading… 25%", what="the share read")
        go.set()
        done = await answered(pilot)
        assert done.shown_text.strip() == "Here it is." and not done.state_text.startswith("reading")
    a.close()


async def test_page_keys_in_the_message_box_scroll_the_conversation(db):
    words = " ".join(f"w{i}" for i in range(400))
    a = make_assistant(db, FakeLLM(replies=[words, words]))
    app = AssistantApp(assistant=a)
    async with app.run_test(size=SMALL) as pilot:
        screen = app.chat
        for q in ("first", "second"):
            await send(pilot, q)
            await answered(pilot)
        await pilot.pause(0.2)
        assert app.focused is screen.prompt
        bottom = screen.chat.scroll_y
        assert bottom > 0
        await pilot.press("pageup")
        await wait_until(pilot, lambda: screen.chat.scroll_y < bottom, what="the conversation to scroll up")
        await pilot.press("pagedown", "pagedown", "pagedown")
        await wait_until(pilot, lambda: screen.chat.scroll_y == bottom, what="back at the end")
        assert app.focused is screen.prompt
    a.close()
