"""The chat screen: the conversation, the message box, past sessions, and the status bar."""
from __future__ import annotations

import threading
import traceback
from typing import Callable

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Static

from assistant.errors import USER_ERRORS

from ..widgets.messages import AssistantMessage, UserMessage, Welcome
from ..widgets.prompt import PromptInput
from ..widgets.sessions import SessionList
from ..widgets.status import StatusBar, device_text

# Reopening a long session shows only its last turns (mounting thousands of widgets is slow).
MAX_TURNS_SHOWN = 200


def error_text(e: BaseException) -> str:
    """One sentence for the user: the app's own errors as they are, anything else wrapped."""
    if isinstance(e, USER_ERRORS):
        return str(e)
    if isinstance(e, ModuleNotFoundError) and "llama_cpp" in str(e):
        return "llama-cpp-python is not installed, so no chat model can run; install it and restart."
    return f"Something went wrong ({type(e).__name__}: {e}); your message is saved, try again."


class ChatScreen(Screen):
    """One conversation at a time. Model work runs in a thread worker; the UI is touched only from
    the UI thread (`call_from_thread`), except the answer's token buffer, which is thread-safe."""

    BINDINGS = [
        Binding("escape", "stop", "Stop answer", priority=True),
        Binding("ctrl+n", "new_session", "New chat", priority=True),
        Binding("ctrl+s,f2", "toggle_sessions", "Conversations", priority=True),
        Binding("f1,question_mark", "help", "Help"),
    ]

    # -- messages from the app (model lifecycle) ------------------------------------------------
    class AssistantReady(Message):
        """The Assistant is built (the database is open); the model may still be loading."""

    class ModelLoaded(Message):
        def __init__(self, model) -> None:
            self.model = model
            super().__init__()

    class ModelFailed(Message):
        def __init__(self, error: BaseException) -> None:
            self.error = error
            super().__init__()

    class ModelProgress(Message):
        def __init__(self, percent: int) -> None:
            self.percent = percent
            super().__init__()

    def __init__(self, model_name: str = "") -> None:
        super().__init__()
        self.model_name = model_name
        self.session_id: int | None = None
        self.answering = False
        self.cancel: threading.Event | None = None
        self.idle = threading.Event()   # set while no answer worker is running (read from any thread)
        self.idle.set()
        self.generating = False         # the model is streaming (as opposed to waiting or recalling)
        self.pending: tuple[int, str] | None = None  # (session, text) of the message being answered
        self.closing = False            # the app is quitting: workers stop touching the UI
        self.reply: AssistantMessage | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(id="body"):
            yield SessionList(id="sidebar")
            with Vertical(id="main"):
                yield VerticalScroll(Welcome(), id="chat")
                yield PromptInput(id="prompt")
        yield StatusBar(id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.status.model_name = self.model_name
        self.chat.anchor()
        self.sidebar.display = False
        self.prompt.focus()
        self.app.call_after_refresh(self.app.became_interactive)

    # -- shortcuts to parts ---------------------------------------------------------------------
    @property
    def chat(self) -> VerticalScroll:
        return self.query_one("#chat", VerticalScroll)

    @property
    def prompt(self) -> PromptInput:
        return self.query_one("#prompt", PromptInput)

    @property
    def sidebar(self) -> SessionList:
        return self.query_one("#sidebar", SessionList)

    @property
    def status(self) -> StatusBar:
        return self.query_one("#status", StatusBar)

    @property
    def assistant(self):
        return self.app.assistant

    def messages(self) -> list:
        """The user and assistant messages now in the view, in order."""
        return [w for w in self.chat.children if isinstance(w, (UserMessage, AssistantMessage))]

    # -- model lifecycle ------------------------------------------------------------------------
    @on(AssistantReady)
    def _assistant_ready(self) -> None:
        self.refresh_sessions()

    @on(ModelLoaded)
    def _model_loaded(self, event: ModelLoaded) -> None:
        self.status.model_name = getattr(event.model, "name", "") or self.model_name
        self.status.device = device_text(event.model)
        self.status.error = False
        self.status.state = "answering…" if self.answering else "ready"
        reply = self.reply
        if self.answering and reply is not None and reply.state_text == "waiting for model…":
            reply.set_state("recalling memories…")

    @on(ModelFailed)
    def _model_failed(self, event: ModelFailed) -> None:
        self.status.error = True
        self.status.state = "model not loaded"
        self.notify(error_text(event.error), title="Model", severity="error", timeout=15)

    @on(ModelProgress)
    def _model_progress(self, event: ModelProgress) -> None:
        if not self.status.device and not self.status.error:
            self.status.state = (f"checking model file {event.percent}%…" if event.percent < 100
                                 else "loading model…")

    def refresh_sessions(self) -> None:
        if self.assistant is None:
            return
        try:
            self.sidebar.show(self.assistant.store.sessions(limit=200), self.session_id)
        except USER_ERRORS as e:
            self.notify(error_text(e), severity="error")

    # -- sending and answering ------------------------------------------------------------------
    @on(PromptInput.Submitted)
    async def _submitted(self, event: PromptInput.Submitted) -> None:
        if self.answering:
            self.notify("Still answering; press Esc to stop it first.", severity="warning", timeout=3)
            return
        text = self.prompt.take().strip()
        if not text:
            return
        for w in self.chat.query(Welcome):
            w.remove()
        reply = AssistantMessage(streaming=True, state=self._waiting_state())
        self.reply = reply
        self.cancel = threading.Event()
        self.answering = True
        await self.chat.mount_all([UserMessage(text), reply])
        self.chat.scroll_end(animate=False)
        self.idle.clear()
        self.status.state = "answering…"
        self.refresh_bindings()
        self._answer(text, reply, self.cancel, self.session_id)

    def _waiting_state(self) -> str:
        a = self.assistant
        return "recalling memories…" if a is not None and a.model is not None else "waiting for model…"

    @work(thread=True, group="answer", exit_on_error=False)
    def _answer(self, text: str, reply: AssistantMessage, cancel: threading.Event,
                session_id: int | None) -> None:
        try:
            assistant = self.app.wait_for_assistant()
            if session_id is None:
                # Created here (not in prepare) so the screen knows the session even if prepare fails.
                session_id = assistant.new_session()
                self._ui(self._session_started, session_id)
            self.pending = (session_id, text)
            prep = assistant.prepare(session_id, text)   # stores the message, waits for the model
            self._ui(self._prepared, prep, reply)
            if cancel.is_set():
                self._ui(reply.finish, interrupted=True, note="⏹ stopped before the answer began")
                return
            self.generating = True
            answer = assistant.generate(prep, on_token=reply.feed, cancel=cancel)
            self._ui(self._answered, answer, reply)
        except BaseException as e:  # shown as a notification, never a traceback
            self.app.log.error("".join(traceback.format_exception(e)))
            self._ui(self._failed, reply, e)
        finally:
            self.generating = False
            self.pending = None
            self.idle.set()
            self._ui(self._done)

    def _ui(self, fn: Callable, *args, **kwargs) -> None:
        """Run `fn` on the UI thread, unless the app is closing."""
        if self.closing or not self.app.is_running:
            return
        try:
            self.app.call_from_thread(fn, *args, **kwargs)
        except RuntimeError:  # the app stopped meanwhile
            pass

    def _session_started(self, session_id: int) -> None:
        self.session_id = session_id
        self.status.session_id = session_id

    def _prepared(self, prep, reply: AssistantMessage) -> None:
        reply.set_memories(prep.memories)
        self.status.memories = len(prep.memories)
        if reply.streaming and not reply.shown_text:
            reply.set_state("thinking…" if not self.cancel or not self.cancel.is_set() else "stopping…")

    async def _answered(self, answer, reply: AssistantMessage) -> None:
        tps = answer.stats.tokens_per_second
        await reply.finish(interrupted=answer.interrupted, tokens_per_second=tps)
        reply.set_memories(answer.memories)
        self.status.tokens_per_second = tps
        for notice in answer.notices:
            self.notify(notice, severity="warning", timeout=10)

    async def _failed(self, reply: AssistantMessage, error: BaseException) -> None:
        message = error_text(error)
        self.notify(message, severity="error", timeout=10)
        await reply.fail(message)

    def _done(self) -> None:
        self.answering = False
        self.cancel = None
        if self.status.state in ("answering…", "stopping…"):
            self.status.state = "ready" if self.status.device else self.status.state
        self.refresh_bindings()
        self.refresh_sessions()

    # -- actions ----------------------------------------------------------------------------------
    def check_action(self, action: str, parameters) -> bool | None:
        if action == "stop":
            return self.answering
        return True

    def action_stop(self) -> None:
        if not self.answering or self.cancel is None:
            return
        self.cancel.set()
        self.status.state = "stopping…"
        if self.reply is not None and not self.reply.shown_text:
            self.reply.set_state("stopping…")

    def message_stored(self) -> bool:
        """Whether the message being answered is on disk yet (prepare stores it before anything else)."""
        if self.pending is None or self.assistant is None:
            return False
        session_id, text = self.pending
        last = self.assistant.store.turns(session_id, limit=1)
        return bool(last) and last[-1].role == "user" and last[-1].text == text

    def stop_for_quit(self) -> None:
        """The app is quitting: stop the answer; the worker still finalises it on disk."""
        self.closing = True
        if self.cancel is not None:
            self.cancel.set()

    def action_new_session(self) -> None:
        if self.answering:
            self.notify("Still answering; press Esc to stop it first.", severity="warning", timeout=3)
            return
        self.session_id = None
        self.status.session_id = None
        self.status.memories = None
        self.chat.remove_children()
        self.chat.mount(Welcome())
        self.sidebar.options.highlighted = 0
        self.prompt.focus()

    def action_toggle_sessions(self) -> None:
        sidebar = self.sidebar
        sidebar.display = not sidebar.display
        if sidebar.display:
            self.refresh_sessions()
            sidebar.options.focus()
        else:
            self.prompt.focus()

    def action_help(self) -> None:
        from .help import HelpScreen

        self.app.push_screen(HelpScreen())

    @on(SessionList.Picked)
    def _picked(self, event: SessionList.Picked) -> None:
        if event.session_id is None:
            self.action_new_session()
        else:
            self.open_session(event.session_id)

    def open_session(self, session_id: int) -> None:
        """Show the turns of a past session; the next message continues it."""
        if self.answering:
            self.notify("Still answering; press Esc to stop it first.", severity="warning", timeout=3)
            return
        if self.assistant is None:
            return
        turns = self.assistant.store.turns(session_id)
        hidden = max(0, len(turns) - MAX_TURNS_SHOWN)
        widgets = []
        if hidden:
            widgets.append(Static(f"… {hidden} earlier turns not shown", classes="note"))
        for t in turns[hidden:]:
            if t.role == "user":
                widgets.append(UserMessage(t.text, when=t.created_at))
            elif t.role == "assistant":
                widgets.append(AssistantMessage(t.text, interrupted=t.status != "complete"))
        self.session_id = session_id
        self.status.session_id = session_id
        self.status.memories = None
        self.chat.remove_children()
        if widgets:
            self.chat.mount_all(widgets)
        else:
            self.chat.mount(Welcome())
        self.chat.scroll_end(animate=False)
        self.refresh_sessions()
        self.prompt.focus()
