"""The Textual app: opens at once; the database, embedder and model come up in the background."""
from __future__ import annotations

import asyncio
import os
import threading
import time
from contextlib import contextmanager
from typing import Callable

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding

from .controls import ListeningControl, TidyControl, VoiceControl, default_consolidation
from .screens.chat import ChatScreen
from .signals import quit_on_signals, release_signals

# How long quitting waits for listening to store the last words it heard.
QUIT_GRACE_SECONDS = 3.0
# How long quitting waits for an answer to be finalised on disk. A streaming answer stops at its next
# token; an answer still reading its prompt (which llama.cpp cannot stop) is not waited for: the
# message is already stored, and the empty answer is marked interrupted at the next start.
ANSWER_GRACE_SECONDS = 1.0


class AssistantApp(App):
    """The chat app. Give it `options` (it builds the Assistant in the background) or an already
    built `assistant` (tests). `on_interactive(app)` is called once the input has focus.

    `audio`: what listening, voice questions and clip playback use (an
    `assistant.listening.AudioServices`, built from the Assistant when not given).
    `consolidation`: a factory `(assistant, on_progress, on_done) -> ConsolidationService` for the
    background tidying of memory, True for the one the config describes, False for none; by default
    it runs when the app builds its own Assistant (from `options`) and not when one is handed in."""

    CSS_PATH = "app.tcss"
    TITLE = "assistant"
    BINDINGS = [
        Binding("ctrl+q", "quit", "Quit", priority=True),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
    ]

    def __init__(self, options=None, *, assistant=None,
                 on_interactive: Callable[["AssistantApp"], None] | None = None,
                 audio=None, consolidation: bool | Callable | None = None) -> None:
        if options is None and assistant is None:
            raise ValueError("AssistantApp needs options or an assistant")
        super().__init__()
        self.audio = audio
        self._audio_lock = threading.Lock()
        self._store_users = threading.Condition()
        self._store_user_count = 0
        if consolidation is None:
            consolidation = options is not None
        self.listening = ListeningControl(self)
        self.voice = VoiceControl(self)
        self.tidy = TidyControl(self, default_consolidation if consolidation is True else consolidation)
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
        self.tidy.start(self.assistant)
        if getattr(self.assistant.config, "listen", False) and self.listening.state == ListeningControl.OFF \
                and not getattr(self.assistant, "incognito", False):   # an incognito chat keeps no clips
            self.listening.toggle(auto=True)

    def _watch_model(self) -> None:
        """Waits (in its own daemon thread) for the background model load to end, then tells the UI."""
        try:
            model = self.assistant.wait_for_model()
        except BaseException as e:
            self._to_chat(ChatScreen.ModelFailed(e))
            return
        check = getattr(model, "check", None)    # a model server: asked now which model it serves, and
        state = "ready"                          # a server that is down is said at once, not at the first answer
        if callable(check):
            try:
                check()
            except Exception as e:               # messages are still kept; each answer asks the server again
                state = "server not reachable"
                self.call_from_thread(self.notify, f"{e} Your messages are kept meanwhile.",
                                      title="Model server", severity="warning", timeout=15)
        self._to_chat(ChatScreen.ModelLoaded(model, state))

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

    def audio_services(self):
        """What audio goes through (any thread; waits until the Assistant is built)."""
        assistant = self.wait_for_assistant()
        with self._audio_lock:
            if self.audio is None:
                from assistant.listening import AudioServices

                self.audio = AudioServices(assistant)
            return self.audio

    # -- commands (ctrl+p) ----------------------------------------------------------------------------
    def get_system_commands(self, screen):
        yield from super().get_system_commands(screen)
        if self.chat is None:
            return
        yield SystemCommand("Tidy memory now", "Consolidate memory in the background: segment, link into "
                            "timelines, summarize (it also runs when you are idle and at night)",
                            self.chat.action_tidy_now)
        listening = self.listening.state
        if listening in (ListeningControl.OFF, ListeningControl.PAUSED):
            yield SystemCommand("Listen to the room" if listening == ListeningControl.OFF else "Resume listening",
                                "Remember what is said nearby, to ask later what you missed (ctrl+l)",
                                self.chat.action_toggle_listening)
        else:
            yield SystemCommand("Pause listening", "Close the microphone for now (ctrl+l resumes)",
                                self.chat.action_toggle_listening)
        if listening != ListeningControl.OFF:
            yield SystemCommand("Stop listening", "Close the microphone and end this listening session",
                                self.chat.action_stop_listening)

    # -- quitting ---------------------------------------------------------------------------------
    async def action_quit(self) -> None:
        """Stop a running answer and give its worker a moment to finalise it on disk, stop listening
        (storing the last words) and tidying, then exit."""
        chat = self.chat
        stopping = self._stop_background()
        if chat is not None and not chat.idle.is_set():
            chat.stop_for_quit()
            start = time.monotonic()
            while not chat.idle.is_set() and time.monotonic() - start < ANSWER_GRACE_SECONDS:
                if not chat.generating and chat.message_stored():
                    break  # still waiting for the model, and the message is safe: nothing to finalise
                await asyncio.sleep(0.05)
        start = time.monotonic()
        while stopping is not None and stopping.is_alive() and time.monotonic() - start < QUIT_GRACE_SECONDS:
            await asyncio.sleep(0.05)
        self.exit()

    def _stop_background(self) -> threading.Thread | None:
        """Drop a voice recording, stop tidying (after its current unit), and stop listening in a
        thread (returned) that stores the last words heard."""
        self.voice.cancel()
        self.tidy.shutdown()
        return self.listening.stop_for_quit()

    def on_mount(self) -> None:
        self._signals = quit_on_signals(self)   # SIGTERM, SIGHUP: quit as Ctrl+Q does

    def on_unmount(self) -> None:
        release_signals(getattr(self, "_signals", []))
        self._stop_background()

    def busy(self) -> bool:
        """True while an answer worker is still running (e.g. still waiting for the model)."""
        return self.chat is not None and not self.chat.idle.is_set()

    def background_busy(self, grace: float = 0.0) -> bool:
        """Whether listening is still storing its last words (waited for up to `grace` seconds) or a
        consolidation is still finishing its unit of work (not waited for: a unit is one transaction,
        so a unit cut short is simply done again by the next run)."""
        deadline = time.monotonic() + grace
        while self.listening.busy:
            if time.monotonic() >= deadline:
                return True
            time.sleep(0.05)
        return self.tidy.running

    @contextmanager
    def using_store(self):
        """Held by worker threads while they may touch the database, so that it is never closed under
        them (closing an SQLite connection during another thread's query can crash the process)."""
        with self._store_users:
            self._store_user_count += 1
        try:
            yield
        finally:
            with self._store_users:
                self._store_user_count -= 1
                self._store_users.notify_all()

    def close_assistant(self, grace: float = 3.0) -> None:
        """Close the database once no worker uses it; if one still does after `grace`, leave it to the
        process exit (every write is already committed)."""
        if self.assistant is None:
            return
        with self._store_users:
            free = self._store_users.wait_for(lambda: self._store_user_count == 0 and not self.busy(),
                                              timeout=grace)
        if free:
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
        # A consolidation stops after its unit of work (each is one transaction: nothing is lost if it
        # does not finish); threads that outlive the grace would keep the process alive.
        stuck = app.busy() or app.background_busy(QUIT_GRACE_SECONDS)
        if not stuck:
            app.close_assistant()
    if stuck:
        os._exit(app.return_code or 0)
