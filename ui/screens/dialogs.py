"""Small dialogs: a yes/no confirmation and a text box (correcting a memory, renaming a session)."""
from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static, TextArea


class ConfirmDialog(ModalScreen[bool]):
    """Asks before something that cannot be undone. y or Enter on the button confirms; n or Esc cancels."""

    BINDINGS = [Binding("escape,n", "answer(False)", "Cancel"), Binding("y", "answer(True)", "Yes")]

    def __init__(self, title: str, message: str, yes: str = "Forget") -> None:
        super().__init__(classes="dialog")
        self.title_text = title
        self.message = message
        self.yes = yes

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box") as box:
            box.border_title = self.title_text
            yield Static(self.message, id="confirm-message")
            yield Static("This cannot be undone.", classes="dialog-note")
            with Horizontal(classes="dialog-buttons"):
                yield Button(f"{self.yes} (y)", variant="error", id="confirm-yes")
                yield Button("Cancel (n · Esc)", id="confirm-no")

    def on_mount(self) -> None:
        self.query_one("#confirm-no", Button).focus()   # Enter alone never destroys anything

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "confirm-yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


# Under a box opened with text in it: that text is selected, so typing replaces it.
REPLACE_HINT = "The text is selected: type to replace it, or press ← or → first to edit it."


class TextDialog(ModalScreen["str | None"]):
    """A text to edit: one line (Enter saves) or several (ctrl+s saves). Esc cancels; None when cancelled."""

    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "save", "Save", priority=True)]

    def __init__(self, title: str, text: str = "", *, multiline: bool = False, hint: str = "") -> None:
        super().__init__(classes="dialog")
        self.title_text = title
        self.text = text
        self.multiline = multiline
        self.hint = hint

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box") as box:
            box.border_title = self.title_text
            replace = self.text and REPLACE_HINT + (" F7 selects it all again." if self.multiline else "")
            hint = "\n".join(part for part in (self.hint, replace) if part)
            if hint:
                yield Static(hint, classes="dialog-note")
            if self.multiline:
                yield TextArea(self.text, id="dialog-text", soft_wrap=True, show_line_numbers=False)
            else:
                yield Input(self.text, id="dialog-text")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save (ctrl+s)" if self.multiline else "Save (Enter)", variant="primary",
                             id="dialog-save")
                yield Button("Cancel (Esc)", id="dialog-cancel")

    def on_mount(self) -> None:
        box = self.query_one("#dialog-text")
        box.focus()
        if isinstance(box, TextArea):   # an Input selects its text when focused; a TextArea is told to
            box.select_all()

    @property
    def value(self) -> str:
        box = self.query_one("#dialog-text")
        return box.text if isinstance(box, TextArea) else box.value

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_save()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "dialog-save":
            self.action_save()
        else:
            self.action_cancel()

    def action_save(self) -> None:
        if not self.value.strip():
            self.notify("Write some text first, or press Esc to cancel.", severity="warning", timeout=4)
            return
        self.dismiss(self.value.strip())

    def action_cancel(self) -> None:
        self.dismiss(None)
