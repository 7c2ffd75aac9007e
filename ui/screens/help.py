"""The help screen: every key and chat command, in one place."""
from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS = [
    ("Enter", "send the message"),
    ("ctrl+j · alt+enter", "new line in the message"),
    ("↑ (empty box)", "bring back the last message"),
    ("Esc", "stop the answer (what was written stays, marked interrupted)"),
    ("PageUp · PageDown", "scroll the conversation from the message box"),
    ("ctrl+n", "start a new conversation"),
    ("ctrl+s · F2", "past conversations: Enter opens · t transcript · r rename · d delete · Esc closes"),
    ("F3", "memory: search (/), read a memory in full, e correct · p pin · f forget · u unpin"),
    ("F4", "journal, day by day: ← → move between days"),
    ("ctrl+g", "incognito chat: nothing of it is stored (again: back to a remembered chat)"),
    ("Tab", "move between the message box, the lists and the clips"),
    ("ctrl+l", "listen to the room: start · pause · resume"),
    ("ctrl+r", "ask by voice: press, speak, press again (Esc drops it)"),
    ("ctrl+o", "go to the clips an answer cited; Enter plays one"),
    ("ctrl+p", "commands: tidy memory now, stop listening, themes…"),
    ("/forget WORDS", "forget what holds them; also /forget memory ID, session ID"),
    ("/remember · /help", "pin a fact for every chat · list the chat commands"),
    ("F1 · ?", "this help"),
    ("ctrl+q · ctrl+c", "quit (a running answer is saved first)"),
]

ABOUT = ("Everything stays on this machine: conversations are kept in one SQLite file and recalled when "
         "they matter; the dim lines under an answer name the past moments it used. Listening is off "
         "until you turn it on, and the status bar shows while it is on; then ask \"what did I miss in "
         "the last hour?\". Memory is tidied in the background while you are away.")


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,f1,q,question_mark", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold cyan", no_wrap=True)
        table.add_column()
        for key, what in KEYS:
            table.add_row(key, what)
        with VerticalScroll(id="help-box") as box:   # scrolls where the terminal is short
            box.border_title = "Keys"
            box.border_subtitle = "↑ ↓ scroll · Esc closes"
            yield Static(table, id="help-keys")
            yield Static(ABOUT, id="help-about")

    def on_mount(self) -> None:
        self.query_one("#help-box").focus()   # the arrows and Page Up/Down scroll it

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.dismiss(None)
