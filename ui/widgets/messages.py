"""The conversation: the user's messages, and the assistant's answers streamed into Markdown."""
from __future__ import annotations

import threading
import time

from rich.text import Text
from textual.app import ComposeResult
from textual.await_complete import AwaitComplete
from textual.containers import Vertical
from textual.timer import Timer
from textual.widgets import Markdown, Static

from assistant.text import plural

from .clips import ClipList
from .timefmt import local_time

# A streaming answer is redrawn at most this often (seconds): cheap even for long answers.
REFRESH_SECONDS = 0.05
MAX_MEMORY_LINES = 5


def is_clip(memory) -> bool:
    """A memory that is an audio clip (kind 'audio', id = clip id): listed apart, and playable."""
    return getattr(memory, "kind", "") == "audio"


def memory_lines(memories) -> Text:
    """Small dim lines naming the memories an answer used: date · topic · opening words (clips are
    listed apart, in a ClipList)."""
    out = Text(no_wrap=True, overflow="ellipsis")
    memories = [m for m in memories if not is_clip(m)]
    if not memories:
        return out
    out.append(f"recalled {len(memories)} memor{'y' if len(memories) == 1 else 'ies'}", "italic")
    for m in memories[:MAX_MEMORY_LINES]:
        out.append("\n  ↳ ")
        out.append(local_time(m.started_at, "%d %b %Y"))
        if getattr(m, "topic", ""):
            out.append(" · ")
            out.append(m.topic, "bold")
        out.append(" · ")
        out.append(f"“{m.opening}”")
    if len(memories) > MAX_MEMORY_LINES:
        out.append(f"\n  … and {len(memories) - MAX_MEMORY_LINES} more")
    return out


def literal_markdown():
    """Markdown without raw HTML: a "<tag>" in an answer is shown as written (with HTML on, a line opening
    with "<memories>" hid itself and the lines after it)."""
    from markdown_it import MarkdownIt

    return MarkdownIt("gfm-like").disable(["html_inline", "html_block"])


class UserMessage(Static):
    """What the user said."""

    def __init__(self, text: str, *, when: str | None = None, turn_id: int | None = None) -> None:
        super().__init__(Text(text), classes="message user")
        self.text = text
        self.turn_id = turn_id          # the stored turn (None: not stored, or not yet)
        self.border_title = "you" + (f" · {local_time(when, '%H:%M')}" if when else "")


class AssistantMessage(Vertical):
    """An answer. While it streams, `feed` (thread-safe) buffers pieces and a timer appends them to the
    Markdown at most every REFRESH_SECONDS; `finish` settles the final state."""

    def __init__(self, text: str = "", *, streaming: bool = False, state: str = "",
                 interrupted: bool = False, memories=(), turn_id: int | None = None) -> None:
        super().__init__(classes="message assistant")
        self.border_title = "assistant"
        self.turn_id = turn_id          # the stored turn (None: not stored, or not yet)
        self.asked: UserMessage | None = None   # the message this answers, when sent from this view
        self.asks = None                # the ForgetPlan this /forget question asks about
        self._initial = text
        self._state = state
        self._memories = list(memories)
        self._lock = threading.Lock()
        self._pending: list[str] = []
        self._streamed: list[str] = []
        self._timer: Timer | None = None
        self._inflight: AwaitComplete | None = None
        self.streaming = streaming
        self.interrupted = False
        # Made when the message is sent: the wait a person feels runs from here to the first piece shown.
        self.sent_at = time.monotonic()
        self.first_piece_at: float | None = None
        if interrupted:
            self.add_class("-interrupted")
            self.interrupted = True
            self._state = self._state or "⏹ interrupted"

    def compose(self) -> ComposeResult:
        yield Markdown(self._initial, classes="body", parser_factory=literal_markdown)
        yield Static(self._state, classes="state")
        yield Static(memory_lines(self._memories), classes="memories")
        if self.cited_clips:   # mounted only when there are clips (reopened sessions stay light)
            yield Static(self._clips_title(), classes="clips-title")
            yield ClipList(self.cited_clips, classes="clips")

    def on_mount(self) -> None:
        self._show_optional()
        if self.streaming:
            self._timer = self.set_interval(REFRESH_SECONDS, self._flush)

    # -- what tests and screens read ------------------------------------------------------------
    @property
    def body(self) -> Markdown:
        return self.query_one(".body", Markdown)

    @property
    def shown_text(self) -> str:
        """The Markdown source currently on screen."""
        bodies = self.query(".body").results(Markdown)
        return next(bodies).source if self.children else self._initial

    @property
    def state_text(self) -> str:
        return self._state

    @property
    def memories_text(self) -> str:
        return str(memory_lines(self._memories))

    @property
    def memories(self) -> list:
        """The memories the answer used, as shown under it."""
        return list(self._memories)

    @property
    def cited_clips(self) -> list:
        """The audio clips among the memories the answer used."""
        return [m for m in self._memories if is_clip(m)]

    @property
    def clip_list(self) -> ClipList | None:
        found = self.query(ClipList)
        return found.first() if found else None

    def _clips_title(self) -> str:
        n = len(self.cited_clips)
        return (f"heard {n} clip{'' if n == 1 else 's'} · ctrl+o goes to "
                f"{'it' if n == 1 else 'them'}, Enter plays")

    # -- streaming --------------------------------------------------------------------------------
    def feed(self, piece: str) -> None:
        """Buffer a piece of the answer; safe to call from any thread."""
        with self._lock:
            if self.first_piece_at is None:
                self.first_piece_at = time.monotonic()
            self._pending.append(piece)

    def _flush(self) -> None:
        """Timer tick: append what arrived since the last one, unless the previous append is still
        being rendered (then the text waits for the next tick, so slow renders batch up)."""
        if self._inflight is not None and not self._inflight.is_done:
            return
        new = self._take()
        if new:
            self._inflight = self.body.append(new)

    def _take(self) -> str:
        with self._lock:
            new, self._pending = "".join(self._pending), []
        if new and not self._streamed:
            self.set_state("")
            new = new.lstrip()
        if new:
            self._streamed.append(new)
        return new

    async def finish(self, *, interrupted: bool, note: str = "", tokens_per_second: float | None = None,
                     stored: bool = True) -> None:
        """Stop streaming, show everything received, and mark the answer complete or interrupted."""
        await self._drain()
        self.interrupted = interrupted
        self.set_class(interrupted, "-interrupted")
        if interrupted:
            self.set_state(note or "⏹ interrupted")
        elif not self.shown_text.strip():
            self.set_state(note or "(empty answer)")
        else:
            self.set_state(note)
        parts = []
        if tokens_per_second:
            parts = ([f"started in {self.first_piece_at - self.sent_at:.1f} s"] if self.first_piece_at else []) \
                + [f"{tokens_per_second:.1f} tok/s"]
        if not stored:
            parts.append("incognito: not stored")
        if parts:
            self.border_subtitle = " · ".join(parts)

    async def _drain(self) -> None:
        """Stop the timer and show every piece received so far."""
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        if self._inflight is not None:
            await self._inflight
        rest = self._take()
        if rest:
            await self.body.append(rest)
        self.streaming = False

    async def fail(self, message: str) -> None:
        """Show what arrived before the error, then the error itself."""
        await self._drain()
        self.add_class("-failed")
        self.set_state(f"✗ {message}")

    # -- small parts ------------------------------------------------------------------------------
    def set_state(self, text: str) -> None:
        """The dim line under the answer: waiting…, thinking…, interrupted, an error."""
        self._state = text
        for state in self.query(".state").results(Static):  # none yet before compose
            state.update(text)
            state.display = bool(text)

    def set_memories(self, memories) -> None:
        self._memories = list(memories)
        self._show_optional()

    def drop_memories(self, gone) -> bool:
        """Take away the recalled memories for which `gone(memory)` is true (forgotten since); whether
        any went."""
        kept = [m for m in self._memories if not gone(m)]
        if len(kept) == len(self._memories):
            return False
        self.set_memories(kept)
        return True

    def _show_optional(self) -> None:
        for state in self.query(".state").results(Static):
            state.update(self._state)
            state.display = bool(self._state)
        for mems in self.query(".memories").results(Static):
            mems.update(memory_lines(self._memories))
            mems.display = any(not is_clip(m) for m in self._memories)
        clips = self.cited_clips
        if clips and self.is_mounted and not self.query(ClipList):
            self.mount(Static(self._clips_title(), classes="clips-title"), ClipList(clips, classes="clips"))
            return
        for title in self.query(".clips-title").results(Static):
            title.update(self._clips_title())
            title.display = bool(clips)
        for clip_list in self.query(ClipList):
            if clip_list.clip_ids != [c.id for c in clips]:
                clip_list.show(clips)
            clip_list.display = bool(clips)


class Forgotten(Static):
    """One dim line where turns were forgotten from the conversation on screen."""

    def __init__(self, turns: int) -> None:
        super().__init__(f"{plural(turns, 'turn')} forgotten", classes="note forgotten")
        self.turns = turns


class Welcome(Static):
    """Shown in an empty conversation; `last` names the latest past conversation and how to go back to it
    (the app opens on a new one)."""

    def __init__(self, incognito: bool = False) -> None:
        self.session, self.incognito = None, incognito
        super().__init__(self._text(None, incognito), classes="welcome")

    def last(self, session) -> None:
        """Name `session` (a store.Session, or None for none) as the one to go back to."""
        self.session = session
        self.update(self._text(session, self.incognito))

    def set_incognito(self, on: bool) -> None:
        self.incognito = on
        self.update(self._text(self.session, on))

    @staticmethod
    def _text(session, incognito: bool = False) -> Text:
        back: tuple = ()
        if session is not None:
            title = " ".join((session.title or "Untitled").split())
            title = title if len(title) <= 40 else title[:39].rstrip() + "…"
            back = ("Last time: ", (f"“{title}”", "bold"),
                    f" ({local_time(session.last_at, '%d %b %H:%M')}, {plural(session.turn_count, 'turn')}). ",
                    ("ctrl+s", "bold"), " then ", ("Enter", "bold"), " continues it.\n\n")
        opening = ((("Incognito.", "bold magenta"), " Nothing of this chat is stored, and it is gone when you "
                    "leave it (", ("ctrl+g", "bold"), "); I still bring up what I remember when it matters.\n\n")
                   if incognito else
                   (("Ask me anything.", "bold"), " I remember our past conversations and bring them up when "
                    "they matter.\n\n"))
        return Text.assemble(
            *opening, *back,
            ("Enter", "bold"), " sends · ", ("ctrl+j", "bold"), " or ", ("alt+enter", "bold"), " new line · ",
            ("Esc", "bold"), " stops an answer · ", ("ctrl+s", "bold"), " past conversations · ",
            ("ctrl+n", "bold"), " new one · ", ("F3", "bold"), " memory · ", ("F4", "bold"), " journal · ",
            ("ctrl+g", "bold"), " incognito · ", ("ctrl+l", "bold"), " listen to the room · ",
            ("ctrl+r", "bold"), " ask by voice · ", ("F1", "bold"), " help")
