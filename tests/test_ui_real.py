"""The terminal UI with real components: SmolLM2 through llama.cpp and the MiniLM embedder."""
from __future__ import annotations

import pytest

from assistant.config import Config
from assistant.wiring import Options, build
from tests.test_ui import SIZE, answered, send, user_texts, wait_until
from ui.app import AssistantApp
from ui.widgets.messages import AssistantMessage
from ui.widgets.prompt import PromptInput


@pytest.mark.real
async def test_real_chat_is_remembered_across_app_runs(tmp_path, smollm2, real_embedder):
    opts = Options(db=tmp_path / "data" / "real.db", model="smollm2", config=Config(max_answer_tokens=48))
    question = "Hello, what is a good name for a cat?"

    assistant = build(opts, embedder=real_embedder, model=smollm2)
    app = AssistantApp(assistant=assistant)
    async with app.run_test(size=SIZE) as pilot:
        assert isinstance(app.focused, PromptInput)
        await wait_until(pilot, lambda: app.chat.status.device == "CPU", what="the model in the status bar")
        await send(pilot, question)
        msg = await answered(pilot, timeout=120)
        assert msg.shown_text.strip(), "the real model streamed nothing"
        assert not msg.interrupted
        answer_text = msg.shown_text.strip()
        assert app.chat.status.tokens_per_second and app.chat.status.tokens_per_second > 0
        session_id = app.chat.session_id
        await pilot.press("ctrl+q")
        await wait_until(pilot, lambda: not app.is_running, what="the app to quit")
    app.close_assistant()

    # A new app on the same database file lists the session and reopens it.
    assistant = build(opts, embedder=real_embedder, model=smollm2)
    app = AssistantApp(assistant=assistant)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.chat
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: screen.sidebar.titles(), what="the session list")
        (title,) = screen.sidebar.titles()
        assert title and question.startswith(title.rstrip("…"))
        assert screen.sidebar.session_ids == [session_id]
        await pilot.press("enter")                 # the latest conversation is under the cursor
        await wait_until(pilot, lambda: user_texts(screen), what="the reopened turns")
        assert user_texts(screen) == [question]
        assert [m.shown_text.strip() for m in screen.query(AssistantMessage)] == [answer_text]
    app.close_assistant()
