"""Correct a memory on the memory screen, then ask: the real app through its pilot, the real default model
(greedy), the real embedder and SQLite file. The answer uses the correction, never the old words."""
from __future__ import annotations

from assistant.config import Config
from assistant.wiring import Options, build
from memory.bank import segment_pending
from memory.recall import TurnIndex
from tests.test_ui import answered, send, wait_until
from tests.test_ui_memory import open_memory, search
from ui.app import AssistantApp
from ui.screens.dialogs import TextDialog

SIZE = (120, 40)


async def test_correct_a_memory_then_ask_and_the_answer_uses_the_correction(tmp_path, default_model, real_embedder):
    opts = Options(db=tmp_path / "data" / "scenario.db", model="default", config=Config(max_answer_tokens=40))
    assistant = build(opts, embedder=real_embedder, model=default_model)
    store = assistant.store
    for at, said, reply in [("2025-03-04T18:00:00+00:00", "My cello lesson with Marta is on Thursday evening.",
                             "Enjoy your cello lesson with Marta."),
                            ("2025-03-05T08:30:00+00:00", "My dentist appointment is in June.",
                             "I will remember the dentist appointment.")]:
        sid = store.new_session(title=said[:30], started_at=at)
        store.add_turn(sid, "user", said, created_at=at)
        store.add_turn(sid, "assistant", reply, created_at=at)
    TurnIndex(store, real_embedder).index_pending()
    segment_pending(store, real_embedder, mode="fast")

    app = AssistantApp(assistant=assistant)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_memory(pilot)
        await search(pilot, screen, "cello lesson")
        assert "Thursday evening" in screen.texts()[0]
        await pilot.press("e")
        await wait_until(pilot, lambda: isinstance(app.screen, TextDialog), what="the correction box")
        app.screen.query_one("#dialog-text").text = "My cello lesson with Marta moved to Friday morning."
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: screen.texts() and "Friday morning" in screen.texts()[0], timeout=60,
                         what="the corrected memory in the list")
        await pilot.press("escape")
        await send(pilot, "On which day is my cello lesson with Marta?")
        reply = await answered(pilot, timeout=300)
        assert "Friday" in reply.memories_text and "Thursday" not in reply.memories_text
        answer = reply.shown_text.lower()
        assert "friday" in answer and "thursday" not in answer, reply.shown_text
    app.close_assistant()
