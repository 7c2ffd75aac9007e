"""The journal screen: the journal read day by day (assistant.journal), the latest day first."""
from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Markdown, Static

from .. import changes
from .keys import HelpAndQuitFirst


class JournalScreen(HelpAndQuitFirst, Screen):
    """One day at a time; ← → (or p n) move between the days that have something in them."""

    BINDINGS = [
        Binding("escape", "back", "Back to chat"),
        Binding("left,p", "move(-1)", "Previous day", key_display="←"),
        Binding("right,n", "move(1)", "Next day", key_display="→"),
        Binding("home", "go(0)", "First day", show=False),
        Binding("end", "go(-1)", "Latest day", show=False),
        Binding("f1,question_mark", "help", "Help"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.days: list = []
        self.waiting = 0
        self.index = -1
        self.loaded = False

    def compose(self) -> ComposeResult:
        yield Static("Loading the journal…", id="journal-where", classes="title")
        with VerticalScroll(id="journal-body"):
            yield Markdown("", id="journal-day")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#journal-body").focus()
        self._load()

    @property
    def day(self):
        return self.days[self.index] if 0 <= self.index < len(self.days) else None

    @property
    def shown(self) -> str:
        return self.query_one("#journal-day", Markdown).source

    def _load(self) -> None:
        from assistant.journal import journal_days, waiting_sessions

        changes.read(self, lambda reader: (journal_days(reader), waiting_sessions(reader)),
                     lambda found: self._loaded(*found), title="Journal", group="journal")

    def _loaded(self, days, waiting: int) -> None:
        self.days, self.waiting = days, waiting
        self.loaded = True
        self.action_go(-1)

    def action_go(self, index: int) -> None:
        if self.days:
            self.index = index % len(self.days)
        self._show()

    def action_move(self, step: int) -> None:
        if not self.days:
            return
        index = self.index + step
        if not 0 <= index < len(self.days):
            self.notify("That was the first day in the journal." if step < 0 else "That is the latest day.",
                        timeout=3)
            return
        self.index = index
        self._show()

    def _show(self) -> None:
        from assistant.journal_export import render_markdown

        day = self.day
        where = self.query_one("#journal-where", Static)
        if day is None:
            where.update("Journal")
        else:
            where.update(f"Journal · day {self.index + 1} of {len(self.days)} · ← → move between days")
        self.query_one("#journal-day", Markdown).update(render_markdown([day] if day else [], self.waiting))
        self.query_one("#journal-body", VerticalScroll).scroll_home(animate=False)

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_help(self) -> None:
        from .help import HelpScreen

        self.app.push_screen(HelpScreen())
