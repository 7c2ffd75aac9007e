"""Work ahead of the Enter key with the real llama.cpp (SmolLM2): in the chat, a paused draft leaves nothing
to evaluate on Enter; `assistant ask` (a new process each time) loads the prompt's beginning saved beside the
database instead of evaluating it, and a changed beginning replaces the saved one."""
from __future__ import annotations

import json
import stat
import subprocess
import sys

import pytest

from assistant.config import Config
from assistant.wiring import Options, build
from memory.store import Store
from tests.fakes import FakeEmbedder
from tests.test_ui import SIZE, answered, wait_until
from ui.app import AssistantApp
from ui.widgets.prompt import PromptInput

pytestmark = pytest.mark.real


def look_ahead_idle(app) -> bool:
    return not any(w.group == "look-ahead" and not w.is_finished for w in app.workers)


async def test_enter_after_a_pause_in_typing_leaves_nothing_to_evaluate(tmp_path, smollm2):
    smollm2.llm.reset()
    opts = Options(db=tmp_path / "data" / "real.db", model="smollm2", config=Config(max_answer_tokens=16))
    assistant = build(opts, embedder=FakeEmbedder(), model=smollm2)
    earlier = assistant.store.new_session()
    assistant.store.add_turn(earlier, "user", "My sister Maya lives in Lisbon and teaches piano.")
    app = AssistantApp(assistant=assistant)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: app.chat.status.device == "CPU", what="the model")
        folder = opts.db.parent / "real-prompt-cache"
        # once the model is up, the beginning shared by every prompt is evaluated and saved beside the database
        await wait_until(pilot, lambda: folder.is_dir() and any(folder.iterdir()), timeout=120,
                         what="the saved beginning")
        prompt = app.screen.query_one(PromptInput)
        prompt.focus()
        prompt.insert("Where does my sister Maya live?")
        await pilot.pause(1.0)                               # the pause in typing
        await wait_until(pilot, lambda: look_ahead_idle(app), timeout=120, what="the draft evaluated")
        await pilot.press("enter")
        msg = await answered(pilot, timeout=120)
        assert msg.shown_text.strip()
        st = smollm2.last_stats
        assert st.prompt_tokens > 50 and st.evaluated_tokens <= 1       # all of it was evaluated ahead
    app.close_assistant()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    (state,) = list(folder.iterdir())
    assert stat.S_IMODE(state.stat().st_mode) == 0o600


def ask(db, text):
    r = subprocess.run([sys.executable, "-m", "assistant.cli", "--db", str(db), "--model", "smollm2", "ask", text,
                        "--max-tokens", "8", "--stats"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stderr.strip().splitlines()[-1])


def test_ask_loads_the_saved_beginning_in_a_new_process(tmp_path):
    db = tmp_path / "ask.db"
    first = ask(db, "Say hello.")
    assert first["prefix_tokens"] > 20 and first["prefix_tokens_evaluated"] == first["prefix_tokens"]
    second = ask(db, "Say goodbye.")
    assert second["prefix_tokens"] == first["prefix_tokens"]
    assert second["prefix_tokens_evaluated"] == 0                  # loaded, not evaluated
    assert second["prompt_tokens_reused"] >= second["prefix_tokens"]
    assert second["prompt_tokens_evaluated"] == second["prompt_tokens"] - second["prompt_tokens_reused"]
    folder = db.parent / "ask-prompt-cache"
    (saved,) = list(folder.iterdir())

    # a new running memory changes the beginning: evaluated again, and the old state replaced
    store = Store(db)
    with store.db.conn:
        store.db.execute("INSERT INTO summaries (kind, key, text, period_start, period_end, created_at) "
                         "VALUES ('running', 'main', 'The user likes tea.', '2025-01-01', '2025-01-02', '2025-01-02')")
    store.close()
    third = ask(db, "Say hello again.")
    assert third["prefix_tokens"] > first["prefix_tokens"] and third["prefix_tokens_evaluated"] == third["prefix_tokens"]
    (replaced,) = list(folder.iterdir())
    assert replaced.name != saved.name
