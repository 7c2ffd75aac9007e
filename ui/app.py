"""The Textual app: opens at once; the database, embedder and model come up in the background."""
from __future__ import annotations

import asyncio
import os
import threading
import time
from typing import Callable

from textual import work
from textual.app import App
from textual.binding import Binding

from .screens.chat import ChatScreen

# How long quitting waits for a streaming answer to be finalised on disk, or for a message that waits
# for the model to be stored (it is written first, so that takes a moment).
QUIT_GRACE_SECONDS = 3.0


class AssistantApp(App):
    """The chat app. Give it `options` (it builds the Assistant in the background) or an already
    built `assistant` (tests). `on_interactive(app)` is called once the input has focus."""

    CSS_PATH = "app.tcss"
    TITLE = "assistant"
    BINDINGS = [
        Binding("ctrl+q", "quit", "Quit", priority=True),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
    ]

    def __init__(self, options=None, *, assistant=None,
                 on_interactive: Callable[["AssistantApp"], None] | None = None) -> None:
        if options is None and assistant is None:
            raise ValueError("AssistantApp needs options or an assistant")
        super().__init__()
        self.options = options
        self.assistant = assistant
        self.on_interactive = on_interactive
        self.interactive_at: float | None = None
        self.build_error: BaseException | None = None
        self._built = threading.Event()
        if assistant is not None:
            self._built.set()
        self._last_percent = -1
        self.chat: ChatScreen | None = None

    def get_default_screen(self) -> ChatScreen:
        if self.options is not None:
            name = self.options.model
        else:
            name = getattr(self.assistant.model, "name", "") if self.assistant.model else ""
        self.chat = ChatScreen(model_name=name)
        return self.chat

    # -- start-up ---------------------------------------------------------------------------------
    def became_interactive(self) -> None:
        """Called after the first screen is drawn with the input focused; heavy work starts now."""
        if self.interactive_at is not None:
            return
        self.interactive_at = time.perf_counter()
        if self.assistant is None:
            self._build()
        else:
            self._assistant_built()
        if self.on_interactive is not None:
            self.on_interactive(self)

    @work(thread=True, exit_on_error=False, group="build")
    def _build(self) -> None:
        from assistant.wiring import build

        try:
            self.assistant = build(self.options, load="background", progress=self._progress)
        except BaseException as e:
            self.build_error = e
            self._to_chat(ChatScreen.ModelFailed(e))
        finally:
            self._built.set()
        if self.assistant is not None:
            self.call_from_thread(self._assistant_built)

    def _assistant_built(self) -> None:
        self.chat.post_message(ChatScreen.AssistantReady())
        threading.Thread(target=self._watch_model, name="model-watch", daemon=True).start()

    def _watch_model(self) -> None:
        """Waits (in its own daemon thread) for the background model load to end, then tells the UI."""
        try:
            model = self.assistant.wait_for_model()
        except BaseException as e:
            self._to_chat(ChatScreen.ModelFailed(e))
        else:
            self._to_chat(ChatScreen.ModelLoaded(model))

    def _progress(self, done: int, total: int) -> None:
        percent = int(done * 100 / total) if total else 0
        if percent != self._last_percent:
            self._last_percent = percent
            self._to_chat(ChatScreen.ModelProgress(percent))

    def _to_chat(self, message) -> None:
        """Post a message to the chat screen from any thread."""
        if self.chat is None or not self.is_running:
            return
        try:
            self.call_from_thread(self.chat.post_message, message)
        except RuntimeError:
            pass

    def wait_for_assistant(self, timeout: float = 120.0):
        """The Assistant, once built (opening the database takes a moment); raises if that failed."""
        if not self._built.wait(timeout):
            raise TimeoutError("the database took too long to open")
        if self.assistant is None:
            raise self.build_error or RuntimeError("the assistant could not be started")
        return self.assistant

    # -- quitting ---------------------------------------------------------------------------------
    async def action_quit(self) -> None:
        """Stop a running answer and give its worker a moment to finalise it on disk, then exit."""
        chat = self.chat
        if chat is not None and not chat.idle.is_set():
            chat.stop_for_quit()
            start = time.monotonic()
            while not chat.idle.is_set() and time.monotonic() - start < QUIT_GRACE_SECONDS:
                if not chat.generating and chat.message_stored():
                    break  # still waiting for the model, and the message is safe: nothing to finalise
                await asyncio.sleep(0.05)
        self.exit()

    def busy(self) -> bool:
        """True while an answer worker is still running (e.g. still waiting for the model)."""
        return self.chat is not None and not self.chat.idle.is_set()

    def close_assistant(self) -> None:
        if self.assistant is not None and not self.busy():
            self.assistant.close()


def run_app(options, *, headless: bool = False,
            on_interactive: Callable[[AssistantApp], None] | None = None) -> None:
    """Run the chat UI until the user quits (`headless` and `on_interactive` serve benchmarks)."""
    app = AssistantApp(options, on_interactive=on_interactive)
    # Our own loop: asyncio.run() would join worker threads on exit, and one may still be waiting
    # for the model to load (its message is already saved).
    loop = asyncio.new_event_loop()
    try:
        app.run(loop=loop, headless=headless, size=(120, 35) if headless else None)
    finally:
        stuck = app.busy()
        if not stuck:
            app.close_assistant()
    if stuck:
        os._exit(app.return_code or 0)
