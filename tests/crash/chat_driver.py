"""The chat, driven through the Textual pilot in a process of its own (for the crash harness):
`python -m tests.crash.chat_driver DB QUESTION` opens the app on DB with SmolLM2, sends QUESTION, prints
STORED once the message is on disk and ANSWERED once the answer is, then quits with Ctrl+Q."""
from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path


async def main(db: Path, question: str) -> None:
    from assistant import config
    from assistant.wiring import Options
    from ui.app import AssistantApp

    app = AssistantApp(Options(db=db, model="smollm2", config=config.load()), consolidation=False)
    async with app.run_test(size=(100, 30)) as pilot:
        chat = app.chat
        await _until(pilot, lambda: app.assistant is not None)
        chat.prompt.insert(question)
        await pilot.press("enter")
        await _until(pilot, chat.message_stored)
        print("STORED", flush=True)
        await _until(pilot, lambda: chat.idle.is_set() and not chat.answering)
        print("ANSWERED", flush=True)
        await pilot.press("ctrl+q")
        await _until(pilot, lambda: not app.is_running)
    app.close_assistant()


async def _until(pilot, condition, timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the chat did not get there")
        await pilot.pause(0.05)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), sys.argv[2]))
