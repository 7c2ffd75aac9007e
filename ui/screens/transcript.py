"""A conversation's transcript as it was said, the turns the user corrected marked (read-only)."""
from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from ..widgets.timefmt import local_time


def transcript_text(turns) -> Text:
    out = Text()
    corrections = {t.corrected_by for t in turns if getattr(t, "corrected_by", None)}
    for t in turns:
        who = t.speaker or ("you" if t.role == "user" else t.role)
        out.append(f"{local_time(t.created_at, '%d %b %H:%M')} ", "dim")
        out.append(f"{who}: ", "bold" if t.role == "user" else "")
        out.append(t.text, "strike dim" if getattr(t, "corrected_by", None) else "")
        if getattr(t, "corrected_by", None):
            out.append("  (corrected)", "italic dim")
        elif t.id in corrections:
            out.append("  (your correction)", "italic yellow")
        elif t.status not in ("complete", "streaming"):
            out.append(f"  ({t.status})", "italic dim")
        out.append("\n")
    return out


class TranscriptScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,t", "close", "Close")]

    def __init__(self, title: str, turns) -> None:
        super().__init__(classes="dialog")
        self.title_text = title
        self.turns = turns

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog-box", id="transcript") as box:
            box.border_title = self.title_text
            box.border_subtitle = "Esc closes"
            yield Static(transcript_text(self.turns) if self.turns else Text("No turns.", "dim"),
                         id="transcript-text")

    def on_mount(self) -> None:
        self.query_one("#transcript").focus()

    @property
    def shown(self) -> str:
        return str(self.query_one("#transcript-text", Static).render())

    def action_close(self) -> None:
        self.dismiss(None)
