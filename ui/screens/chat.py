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
from assistant.text import plural

from ..controls import ListeningControl, TidyControl, VoiceControl
from ..lookahead import LookAhead
from ..widgets.clips import ClipList
from ..widgets.messages import AssistantMessage, Forgotten, UserMessage, Welcome
from ..widgets.prompt import PromptInput
from ..widgets.sessions import SessionList
from ..widgets.status import StatusBar, device_text
from .keys import HelpAndQuitFirst

# Reopening a long session shows only its last turns (mounting thousands of widgets is slow).
MAX_TURNS_SHOWN = 200
# How often the listening and recording indicators are refreshed (seconds).
METER_SECONDS = 0.25
# Enter while an answer streams: the message waits in the box.
WAIT_TO_SEND = "Wait for this answer to finish, or press Esc to stop it."
READING_SHOWN = 128     # prompts of fewer new tokens are read too fast to show how far


def error_text(e: BaseException) -> str:
    """One sentence for the user: the app's own errors as they are, anything else wrapped."""
    if isinstance(e, USER_ERRORS):
        return str(e)
    if isinstance(e, ModuleNotFoundError) and "llama_cpp" in str(e):
        return "llama-cpp-python is not installed, so no chat model can run; install it and restart."
    return f"Something went wrong ({type(e).__name__}: {e}); your message is saved, try again."


def background_error_text(e: BaseException) -> str:
    """One sentence for a failure in background work (listening, playing, tidying)."""
    if isinstance(e, USER_ERRORS) or (isinstance(e, ValueError) and str(e)):
        return str(e)
    return f"Something went wrong ({type(e).__name__}: {e})."


class ChatScreen(HelpAndQuitFirst, Screen):
    """One conversation at a time. Model work runs in a thread worker; the UI is touched only from
    the UI thread (`call_from_thread`), except the answer's token buffer, which is thread-safe."""

    BINDINGS = [
        Binding("escape", "stop", "Stop", priority=True),
        Binding("ctrl+n", "new_session", "New", priority=True),
        Binding("ctrl+s,f2", "toggle_sessions", "Chats", priority=True),
        Binding("ctrl+l", "toggle_listening", "Listen", priority=True),
        Binding("ctrl+r", "push_to_talk", "Voice", priority=True),
        Binding("ctrl+o", "focus_clips", "Clips", priority=True),
        Binding("f3", "memory", "Memory", priority=True),
        Binding("f4", "journal", "Journal", priority=True),
        Binding("ctrl+g", "toggle_incognito", "Incognito", show=False, priority=True),
        Binding("f1,question_mark", "help", "Help"),
        # from the message box, the Page keys scroll the conversation (elsewhere they are the list's own)
        Binding("pageup", "page_chat(-1)", "Page up", show=False, priority=True),
        Binding("pagedown", "page_chat(1)", "Page down", show=False, priority=True),
    ]

    # -- messages from the app (model lifecycle) ------------------------------------------------
    class AssistantReady(Message):
        """The Assistant is built (the database is open); the model may still be loading."""

    class ModelLoaded(Message):
        def __init__(self, model, state: str = "ready") -> None:
            self.model = model
            self.state = state         # what the status says until the first answer ("server not reachable")
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
        self.look_ahead = LookAhead(self)
        self.incognito = False          # this conversation is stored nowhere (ctrl+g, or --incognito)
        self._twin = None               # the incognito Assistant of a window that otherwise stores

    def compose(self) -> ComposeResult:
        with Horizontal(id="body"):
            yield SessionList(id="sidebar")
            with Vertical(id="main"):
                yield VerticalScroll(Welcome(), id="chat")
                yield PromptInput(id="prompt")
        yield StatusBar(id="status")
        # 80 columns hold every key shown here, Stop included; ctrl+p (commands) is in the help.
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.status.model_name = self.model_name
        if getattr(self.app.options, "incognito", False):
            self._show_incognito(True)
        self.chat.anchor()
        self.sidebar.display = False
        self.prompt.focus()
        self.set_interval(METER_SECONDS, self._meters)
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
        if getattr(self.assistant, "incognito", False):
            self._show_incognito(True)
        self.refresh_sessions()
        for notice in getattr(self.assistant.store, "notices", []):   # e.g. permissions made private again
            self.notify(notice, title="Privacy", severity="warning", timeout=15)

    @on(ModelLoaded)
    def _model_loaded(self, event: ModelLoaded) -> None:
        self.status.model_name = getattr(event.model, "name", "") or self.model_name
        self.status.device = device_text(event.model)
        self.status.error = False
        self.status.state = "answering…" if self.answering else event.state
        reply = self.reply
        if self.answering and reply is not None and reply.state_text == "waiting for model…":
            reply.set_state("recalling memories…")
        if not self.answering:
            self.look_ahead.warm(self.session_id)

    def _idle_state(self) -> str:
        """What the status says when no answer is running."""
        if self.status.device:
            return "ready"
        return "model not loaded" if self.status.error else "loading model…"

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
            sessions = self.assistant.store.reader().sessions(limit=200)
        except USER_ERRORS as e:
            self.notify(error_text(e), severity="error")
            return
        self.sidebar.show(sessions, self.session_id)
        if self.session_id is None:     # a new conversation: the welcome says how to go back to the last one
            last = next((s for s in sessions if s.turn_count), None)
            for w in self.chat.query(Welcome):
                w.last(last)

    # -- sending and answering ------------------------------------------------------------------
    @on(PromptInput.Draft)
    def _draft(self, event: PromptInput.Draft) -> None:
        if not self.answering:
            self.look_ahead.draft(self.session_id, event.text)

    @on(PromptInput.Submitted)
    async def _submitted(self, event: PromptInput.Submitted) -> None:
        if self.answering:   # the text stays in the box, to send once the answer is done
            self.notify(WAIT_TO_SEND, severity="warning", timeout=5)
            return
        await self.send(self.prompt.take())

    async def send(self, text: str) -> None:
        """Send `text` as the user's message (typed, or a transcribed voice question)."""
        text = text.strip()
        if not text or self.answering:
            return
        self.app.tidy.activity()   # a running consolidation stops between units of work
        self.look_ahead.sent()
        for w in self.chat.query(Welcome):
            w.remove()
        reply = AssistantMessage(streaming=True, state=self._waiting_state())
        reply.asked = UserMessage(text)
        self.reply = reply
        self.cancel = threading.Event()
        self.answering = True
        await self.chat.mount_all([reply.asked, reply])
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
        with self.app.using_store():
            self._answer_in_worker(text, reply, cancel, session_id)

    def _answer_in_worker(self, text: str, reply: AssistantMessage, cancel: threading.Event,
                          session_id: int | None) -> None:
        try:
            assistant = self.app.wait_for_assistant()
            if self.incognito and not assistant.incognito:
                assistant = self._incognito_assistant(assistant)
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

    def _incognito_assistant(self, base):
        if self._twin is None:
            self._twin = base.incognito_twin()
        return self._twin

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
        self.status.session_id = session_id if session_id > 0 else None   # an incognito one has no number

    def _prepared(self, prep, reply: AssistantMessage) -> None:
        if prep.stored and reply.asked is not None:
            reply.asked.turn_id = prep.user_turn_id
        reply.set_memories(prep.memories)
        self.status.memories = len(prep.memories)
        if reply.streaming and not reply.shown_text:
            reply.set_state("thinking…" if not self.cancel or not self.cancel.is_set() else "stopping…")

    async def _answered(self, answer, reply: AssistantMessage) -> None:
        tps = answer.stats.tokens_per_second
        await reply.finish(interrupted=answer.interrupted, tokens_per_second=tps, stored=not self.incognito)
        reply.turn_id = answer.turn_id
        reply.set_memories(answer.memories)
        plan = answer.forget_plan
        if plan is not None and plan.forgotten:    # "yes" to /forget: what went leaves the view
            self.show_forgotten(plan)
        elif plan is not None:                     # the /forget question, which quotes the turns that would go
            reply.asks = plan
        if tps:   # an answer written without the model (what did I miss) has no speed to show
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
            self.status.state = self._idle_state()
        self.refresh_bindings()
        self.refresh_sessions()
        if self.prompt.text.strip():      # typed while the answer streamed: take the draft up now
            self.look_ahead.draft(self.session_id, self.prompt.text)

    def on_unmount(self) -> None:
        self.look_ahead.stop()

    # -- actions ----------------------------------------------------------------------------------
    def check_action(self, action: str, parameters) -> bool | None:
        if action == "stop":
            return self.answering or self.app.voice.state == VoiceControl.RECORDING
        if action == "focus_clips":
            return self.last_clip_list() is not None
        if action == "page_chat":
            return self.focused is self.prompt
        return True

    def action_page_chat(self, direction: int) -> None:
        if direction < 0:
            self.chat.scroll_page_up()
        else:
            self.chat.scroll_page_down()

    def action_stop(self) -> None:
        if self.app.voice.state == VoiceControl.RECORDING:
            self.app.voice.cancel()
            self._show_voice()
            self.notify("Voice question dropped.", timeout=3)
            self.refresh_bindings()
            return
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
        last = self.assistant.store.reader().turns(session_id, limit=1)
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
        self.chat.mount(Welcome(self.incognito))
        self.sidebar.options.highlighted = 0
        self.prompt.focus()
        self.look_ahead.warm(None)

    def action_toggle_sessions(self) -> None:
        sidebar = self.sidebar
        sidebar.display = not sidebar.display
        if sidebar.display:
            self.refresh_sessions()
            sidebar.options.focus()
        else:
            self.prompt.focus()

    def action_memory(self) -> None:
        from .memory import MemoryScreen

        self.app.push_screen(MemoryScreen())

    def action_journal(self) -> None:
        from .journal import JournalScreen

        self.app.push_screen(JournalScreen())

    def action_help(self) -> None:
        from .help import HelpScreen

        self.app.push_screen(HelpScreen())

    # -- incognito (ctrl+g) ---------------------------------------------------------------------------
    def action_toggle_incognito(self) -> None:
        """Start an incognito conversation (nothing of it is stored), or leave it for a new stored one."""
        if self.answering:
            self.notify("Still answering; press Esc to stop it first.", severity="warning", timeout=3)
            return
        if getattr(self.assistant, "incognito", False) or getattr(self.app.options, "incognito", False):
            self.notify("This whole window is incognito (--incognito): nothing is stored.", timeout=5)
            return
        on = not self.incognito
        self.action_new_session()
        self._show_incognito(on)
        self.notify("Incognito: nothing of this chat is stored; it is gone when you leave it (ctrl+g)."
                    if on else "Incognito is off: this conversation is remembered.", timeout=6)

    def _show_incognito(self, on: bool) -> None:
        self.incognito = on
        self.status.incognito = on
        for w in self.chat.query(Welcome):
            w.set_incognito(on)
        self.set_class(on, "-incognito")
        self.prompt.border_title = "incognito · nothing is stored" if on else None

    @on(SessionList.Picked)
    def _picked(self, event: SessionList.Picked) -> None:
        if event.session_id is None:
            self.action_new_session()
        else:
            self.open_session(event.session_id)
        if not self.answering:      # the list did its job: the conversation gets the width (ctrl+s reopens it)
            self.sidebar.display = False

    @on(SessionList.Action)
    def _session_action(self, event: SessionList.Action) -> None:
        from ..session_actions import run

        run(self, event.action, event.session_id, event.title)

    def open_session(self, session_id: int) -> None:
        """Show the turns of a past session; the next message continues it."""
        if self.answering:
            self.notify("Still answering; press Esc to stop it first.", severity="warning", timeout=3)
            return
        if self.assistant is None:
            return
        if self.incognito and not getattr(self.assistant, "incognito", False):
            self._show_incognito(False)   # a stored conversation goes on being stored
        turns = self.assistant.store.reader().turns(session_id)
        hidden = max(0, len(turns) - MAX_TURNS_SHOWN)
        widgets = []
        if hidden:
            widgets.append(Static(f"… {plural(hidden, 'earlier turn')} not shown", classes="note"))
        for t in turns[hidden:]:
            if t.role == "user":
                widgets.append(UserMessage(t.text, when=t.created_at, turn_id=t.id))
            elif t.role == "assistant":
                widgets.append(AssistantMessage(t.text, interrupted=t.status != "complete", turn_id=t.id))
        self.session_id = session_id
        self.status.session_id = session_id
        self.status.memories = None
        self.chat.remove_children()
        if widgets:
            self.chat.mount_all(widgets)
        else:
            self.chat.mount(Welcome(self.incognito))
        self.chat.scroll_end(animate=False)
        self.refresh_sessions()
        self.prompt.focus()
        self.look_ahead.warm(session_id)

    def show_forgotten(self, plan) -> None:
        """Take what `plan` (a done memory.forget.ForgetPlan) forgot out of the conversation on screen: its
        turns give way to one dim "N turns forgotten" line per stretch, the recalled memories quoted under
        answers that hold forgotten text go (and the turns the /forget question quoted), and the sessions
        list is read again. A conversation forgotten
        whole is left (for a new one; while its own `/forget` answer is on screen, that answer stays)."""
        whole = self.session_id is not None and self.session_id in plan.session_ids
        if whole and not self.answering:
            self.action_new_session()
            self.refresh_sessions()
            return
        if whole:
            self.session_id = None        # the next message starts a new conversation
            self.status.session_id = None
        gone = set(plan.turn_ids)
        stretch: list = []
        for w in [*self.chat.children, None]:
            if isinstance(w, Forgotten) or (isinstance(w, (UserMessage, AssistantMessage))
                                            and w.turn_id is not None and (whole or w.turn_id in gone)):
                stretch.append(w)
                continue
            if any(not isinstance(x, Forgotten) for x in stretch):
                turns = sum(x.turns if isinstance(x, Forgotten) else 1 for x in stretch)
                self.chat.mount(Forgotten(turns), before=stretch[0])
                for x in stretch:
                    x.remove()
            stretch = []
        for reply in self.chat.query(AssistantMessage):
            if reply.drop_memories(plan.covers) and reply is self.reply:
                self.status.memories = len(reply.memories)
            if reply.asks is plan and plan.samples:   # its question keeps the count, not the quoted turns
                reply.body.update(reply.shown_text.split("\n\n")[0] + "\n\n*(the turns it listed are forgotten)*")
        self.refresh_sessions()
        if not self.answering:
            self.look_ahead.warm(self.session_id)

    # -- listening to the room (ctrl+l) --------------------------------------------------------------
    def action_toggle_listening(self) -> None:
        control = self.app.listening
        before = control.state
        control.toggle()
        self._show_listening()
        if before == control.state == ListeningControl.STARTING:
            self.notify("Still opening the microphone…", timeout=3)

    def action_stop_listening(self) -> None:
        self.app.listening.stop()
        self._show_listening()

    @on(ListeningControl.Changed)
    def _listening_changed(self, event: ListeningControl.Changed) -> None:
        control = self.app.listening
        if event.state == control.want:
            control.state = event.state
        if event.state == ListeningControl.ON and not control.errors_seen:
            notice = self._speech_notice()
            if notice:
                self.notify(notice, title="Listening", severity="warning", timeout=10)
        self._show_listening()

    @on(ListeningControl.Failed)
    def _listening_failed(self, event: ListeningControl.Failed) -> None:
        self.app.listening.state = ListeningControl.OFF
        self._show_listening()
        prefix = "Listening is turned on in the config, but it could not start: " if event.auto else ""
        self.notify(prefix + background_error_text(event.error), title="Listening", severity="error",
                    timeout=12)

    def _speech_notice(self) -> str:
        audio = self.app.audio
        transcriber = getattr(audio, "_transcriber", None) if audio is not None else None
        return getattr(transcriber, "notice", "") or ""

    def _show_listening(self) -> None:
        control = self.app.listening
        self.status.listening = "" if control.state == ListeningControl.OFF else control.state
        self._meters()

    # -- voice questions (ctrl+r) ---------------------------------------------------------------------
    def action_push_to_talk(self) -> None:
        voice = self.app.voice
        if voice.state in (VoiceControl.STARTING, VoiceControl.TRANSCRIBING):
            self.notify("Still working on the last voice question…", timeout=3)
            return
        voice.toggle()
        self._show_voice()
        self.refresh_bindings()

    @on(VoiceControl.Opened)
    def _voice_started(self, event) -> None:
        self.app.voice.started(event.ptt)
        self._show_voice()
        self.refresh_bindings()

    @on(VoiceControl.Failed)
    def _voice_failed(self, event: VoiceControl.Failed) -> None:
        self.app.voice.state = VoiceControl.IDLE
        self._show_voice()
        self.refresh_bindings()
        self.notify(background_error_text(event.error), title="Voice question", severity="error", timeout=12)

    @on(VoiceControl.Heard)
    async def _voice_heard(self, event: VoiceControl.Heard) -> None:
        self.app.voice.state = VoiceControl.IDLE
        self._show_voice()
        self.refresh_bindings()
        if not event.text:
            self.notify("No words were heard; speak closer to the microphone and try again.",
                        title="Voice question", severity="warning", timeout=8)
        elif self.answering:   # not lost: it waits in the box
            self.prompt.insert(event.text)
            self.notify("Still answering; your voice question is in the message box.", timeout=5)
        else:
            await self.send(event.text)

    def _show_reading(self) -> None:
        """Under an answer that has not begun: how much of its prompt the model has read, where that takes
        long enough to watch (a long conversation or many memories on a CPU)."""
        reply = self.reply
        if reply is None or not reply.streaming or not reply.state_text.startswith(("thinking…", "reading")):
            return
        model = self.assistant.model if self.assistant is not None else None
        reading = getattr(model, "reading", None)
        if reading and reading[1] >= READING_SHOWN:
            reply.set_state(f"reading… {100 * reading[0] // reading[1]}%")
        elif reply.state_text.startswith("reading"):
            reply.set_state("thinking…")

    def _show_voice(self) -> None:
        self.status.voice = self.app.voice.state
        self._meters()

    def _meters(self) -> None:
        """Timer: how much of the prompt the model has read, the level and time of the open microphone(s),
        and clips heard."""
        self._show_reading()
        status = self.status
        voice = self.app.voice
        if voice.state == VoiceControl.RECORDING and voice.ptt is not None:
            status.voice_seconds = int(getattr(voice.ptt, "seconds", 0) or 0)
            status.voice_level = getattr(voice.ptt, "level_db", None)
            if voice.full:
                self.action_push_to_talk()   # the longest recording: send what was said
        listening = self.app.listening
        session = listening.session
        if session is not None and listening.state == ListeningControl.ON:
            s = session.status
            if s is not None:
                status.listen_seconds = int(s.seconds)
                status.listen_level = s.level_db if session.active else None
            status.heard = len(session.clips)
            errors = session.errors
            if len(errors) > listening.errors_seen:
                listening.errors_seen = len(errors)
                self.notify(f"A clip could not be stored ({errors[-1]}); listening goes on.",
                            title="Listening", severity="warning", timeout=10)

    # -- cited clips (ctrl+o, Enter) -----------------------------------------------------------------
    def last_clip_list(self) -> ClipList | None:
        for msg in reversed(list(self.chat.query(AssistantMessage))):
            clips = msg.clip_list
            if clips is not None and clips.display and clips.option_count:
                return clips
        return None

    def action_focus_clips(self) -> None:
        clips = self.last_clip_list()
        if clips is not None:
            clips.focus()
            clips.scroll_visible()

    @on(ClipList.Leave)
    def _leave_clips(self, event: ClipList.Leave) -> None:
        self.prompt.focus()
        if event.character:
            self.prompt.insert(event.character)

    @on(ClipList.Play)
    def _play(self, event: ClipList.Play) -> None:
        for clips in self.chat.query(ClipList):
            if clips.playing is not None and clips is not event.clip_list:
                clips.set_playing(None)   # a new clip stops the one playing
        event.clip_list.set_playing(event.clip_id)
        self._play_clip(event.clip_list, event.clip_id)

    @work(thread=True, group="play", exclusive=True, exit_on_error=False)
    def _play_clip(self, clip_list: ClipList, clip_id: int) -> None:
        try:
            with self.app.using_store():
                self.app.audio_services().play(clip_id)
        except BaseException as e:  # no speakers, file gone: one sentence
            if not isinstance(e, USER_ERRORS):
                self.app.log.error("".join(traceback.format_exception(e)))
            self._ui(self.notify, background_error_text(e), title="Playing a clip", severity="error",
                     timeout=10)
        finally:
            self._ui(self._played, clip_list, clip_id)

    def _played(self, clip_list: ClipList, clip_id: int) -> None:
        if clip_list.playing == clip_id:
            clip_list.set_playing(None)

    # -- tidying memory in the background ------------------------------------------------------------
    def action_tidy_now(self) -> None:
        tidy = self.app.tidy
        if tidy.running:
            self.notify("Memory is being tidied already.", timeout=4)
        elif tidy.run_now():
            self.notify("Tidying memory in the background; keep chatting, it steps aside when you do.",
                        timeout=5)
        else:
            self.notify("Memory tidying is off in this window; run `assistant consolidate`.",
                        severity="warning", timeout=6)

    @on(TidyControl.Started)
    def _tidy_started(self, event: TidyControl.Started) -> None:
        self.status.tidying = "tidying memory…"

    @on(TidyControl.Progress)
    def _tidy_progress(self, event: TidyControl.Progress) -> None:
        p = event.progress
        if not self.app.tidy.running:
            return   # a late message from a run that ended
        title = p.title[:1].lower() + p.title[1:]
        self.status.tidying = f"tidying memory: {title} {p.done}/{p.total}" if p.total else \
            f"tidying memory: {title}"

    @on(TidyControl.Finished)
    def _tidy_finished(self, event: TidyControl.Finished) -> None:
        self.status.tidying = ""
        report, manual = event.report, event.trigger == "manual"
        if event.error is not None:
            self.notify(f"Tidying memory failed: {background_error_text(event.error)}", title="Memory",
                        severity="error", timeout=10)
        elif report is None:
            if manual:
                self.notify("Nothing to tidy: memory is up to date (or the model is still loading).",
                            title="Memory", timeout=5)
        elif report.status == "error":
            self.notify(f"Tidying memory failed: {report.error or 'unknown error'}; what was done is kept.",
                        title="Memory", severity="error", timeout=10)
        elif manual and report.status == "done":
            units = sum(report.units.values())
            self.notify(f"Memory tidied: {units} unit{'' if units == 1 else 's'} of work in "
                        f"{report.seconds:.0f} s.", title="Memory", timeout=6)
        elif manual and report.status == "busy":
            self.notify("Another consolidation is running (another window or the daemon).",
                        title="Memory", timeout=6)
        if report is not None and report.status != "busy" and not self.answering:
            # A run may have changed the running memory that every prompt begins with: evaluate the new
            # beginning now, while the user is away, rather than on their next message.
            self.look_ahead.warm(self.session_id)

    @on(TidyControl.Failed)
    def _tidy_failed(self, event: TidyControl.Failed) -> None:
        self.notify(f"Memory tidying is off: {background_error_text(event.error)}", title="Memory",
                    severity="error", timeout=12)
