"""The message box: a TextArea where Enter sends and ctrl+j / alt+enter insert a new line."""
from __future__ import annotations

from textual import events
from textual.message import Message
from textual.widgets import TextArea

PLACEHOLDER = "Ask anything…  (Enter sends · ctrl+j or alt+enter: new line · F1 help)"
# A pause in typing this long (seconds) posts `Paused`: the screen prepares the answer to the draft.
PAUSE_SECONDS = 0.6


class PromptInput(TextArea):
    """Multi-line input. Enter posts `Submitted`; ctrl+j, alt+enter or shift+enter insert a new line;
    up on an empty box brings back the last message sent; a pause in typing posts `Paused`."""

    NEWLINE_KEYS = frozenset({"ctrl+j", "alt+enter", "shift+enter", "ctrl+enter"})

    class Submitted(Message):
        """The user pressed Enter with some text in the box."""

        def __init__(self, prompt: "PromptInput", text: str) -> None:
            self.prompt = prompt
            self.text = text
            super().__init__()

        @property
        def control(self) -> "PromptInput":
            return self.prompt

    class Paused(Message):
        """The user stopped typing for a moment with some text in the box (a draft)."""

        def __init__(self, prompt: "PromptInput", text: str) -> None:
            self.prompt = prompt
            self.text = text
            super().__init__()

        @property
        def control(self) -> "PromptInput":
            return self.prompt

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__("", soft_wrap=True, tab_behavior="focus", show_line_numbers=False,
                         highlight_cursor_line=False, compact=True, placeholder=PLACEHOLDER,
                         id=id, classes=classes)
        self.last_sent = ""
        self._pause_timer = None

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        if self._pause_timer is not None:
            self._pause_timer.stop()
        self._pause_timer = self.set_timer(PAUSE_SECONDS, self._paused) if self.text.strip() else None

    def _paused(self) -> None:
        self._pause_timer = None
        if self.text.strip():
            self.post_message(self.Paused(self, self.text))

    async def _on_key(self, event: events.Key) -> None:
        if event.key == "enter":
            event.stop()
            event.prevent_default()
            if self.text.strip():
                self.post_message(self.Submitted(self, self.text))
            return
        if event.key in self.NEWLINE_KEYS:
            event.stop()
            event.prevent_default()
            self.insert("\n")
            return
        if event.key == "up" and not self.text and self.last_sent:
            event.stop()
            event.prevent_default()
            self.insert(self.last_sent)
            return
        await super()._on_key(event)

    def take(self) -> str:
        """Clear the box and return what was in it (remembered for `up`)."""
        text = self.text
        self.last_sent = text
        self.clear()
        return text
