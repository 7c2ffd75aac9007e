"""The list of past conversations, to reopen one or start a new one."""
from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from assistant.text import plural

from .timefmt import local_time

NEW_ID = "new"
TITLE_WIDTH = 30


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


class SessionList(Vertical):
    """A sidebar listing sessions, most recent first. Choosing one posts `Picked`; t, r and d on one post
    `Action` (show its transcript, rename it, delete it)."""

    BINDINGS = [
        Binding("t", "session('transcript')", "Transcript"),
        Binding("r", "session('rename')", "Rename"),
        Binding("d,delete", "session('delete')", "Delete", key_display="d"),
        Binding("escape", "screen.toggle_sessions", "Close", show=False),   # as ctrl+s: back to the message box
    ]

    class Action(Message):
        """`action` ("transcript", "rename" or "delete") asked for on a session."""

        def __init__(self, action: str, session_id: int, title: str) -> None:
            self.action = action
            self.session_id = session_id
            self.title = title
            super().__init__()

    class Picked(Message):
        """A session was chosen; `session_id` is None for a new conversation."""

        def __init__(self, session_id: int | None) -> None:
            self.session_id = session_id
            super().__init__()

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.session_ids: list[int] = []

    def compose(self) -> ComposeResult:
        yield Static("Conversations", classes="title")
        yield OptionList(id="session-options")

    @property
    def options(self) -> OptionList:
        return self.query_one(OptionList)

    def show(self, sessions, current: int | None = None) -> None:
        """Fill the list with `sessions` (store.Session objects) and highlight `current` (else the session
        highlighted before, when it is still there: renaming one keeps it under the cursor)."""
        before = self.highlighted_session
        options = [Option(Text.assemble(("＋ New conversation", "bold"), ("  ctrl+n", "dim")), id=NEW_ID)]
        self.session_ids = []
        for s in sessions:
            if not s.turn_count:
                continue  # nothing said yet (e.g. the app quit before the first message was stored)
            title = _clip((s.title or "Untitled").replace("\n", " "), TITLE_WIDTH)
            meta = f"{local_time(s.last_at, '%d %b %H:%M')} · {plural(s.turn_count, 'turn')}"
            if s.source != "chat":
                meta += f" · {s.source}"
            options.append(Option(Text.assemble((title, "bold"), "\n", (meta, "dim")), id=str(s.id)))
            self.session_ids.append(s.id)
        ol = self.options
        ol.clear_options()
        ol.add_options(options)
        if current in self.session_ids:
            ol.highlighted = self.session_ids.index(current) + 1
        elif current is None and before in self.session_ids:
            ol.highlighted = self.session_ids.index(before) + 1
        else:   # in a new conversation the latest past one: Enter continues it (the welcome says so)
            ol.highlighted = 1 if current is None and self.session_ids else 0

    @property
    def highlighted_session(self) -> int | None:
        """The session highlighted in the list (None: "New conversation" or nothing)."""
        i = self.options.highlighted
        return self.session_ids[i - 1] if i is not None and 1 <= i <= len(self.session_ids) else None

    def action_session(self, action: str) -> None:
        sid = self.highlighted_session
        if sid is None:
            self.notify("Highlight a conversation first (↑ ↓).", timeout=3)
            return
        title = self.titles()[self.session_ids.index(sid)]
        self.post_message(self.Action(action, sid, title))

    def titles(self) -> list[str]:
        """The first line of every session option (for tests and screen readers)."""
        out = []
        for i in range(1, self.options.option_count):
            out.append(str(self.options.get_option_at_index(i).prompt).split("\n")[0])
        return out

    @on(OptionList.OptionSelected)
    def _picked(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        oid = event.option.id
        self.post_message(self.Picked(None if oid == NEW_ID else int(oid)))
