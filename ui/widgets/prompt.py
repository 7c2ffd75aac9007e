"""The message box: a TextArea where Enter sends and ctrl+j / alt+enter insert a new line."""
from __future__ import annotations

import time

from textual import events
from textual.message import Message
from textual.widgets import TextArea

PLACEHOLDER = "Ask anything…  (Enter sends · ctrl+j or alt+enter: new line · F1 help)"
# A pause in typing this long (seconds) posts `Draft`: the screen prepares the answer to the draft.
PAUSE_SECONDS = 0.6
# While typing goes on, a finished word posts `Draft` too, at most this often and once the draft has a few
# words: recalling and evaluating the memories takes seconds on a small CPU, and the typing time pays for it.
TYPING_DRAFT_SECONDS = 1.0
TYPING_DRAFT_WORDS = 3


def draft_due(text: str, seconds_since_last: float) -> bool:
    """While typing: whether `text` (the box as it is now) is a draft worth preparing the answer for."""
    return (bool(text) and not text[-1].isalnum() and len(text.split()) >= TYPING_DRAFT_WORDS
            and seconds_since_last >= TYPING_DRAFT_SECONDS)


class PromptInput(TextArea):
    """Multi-line input. Enter posts `Submitted`; ctrl+j, alt+enter or shift+enter insert a new line;
    up on an empty box brings back the last message sent; a pause in typing, or a finished word while typing
    goes on (see `draft_due`), posts `Draft`."""

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

    class Draft(Message):
        """The box holds a draft worth preparing the answer for: typing paused, or went on a few words."""

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
        self._drafted_at = 0.0     # time.monotonic() of the last `Draft` posted

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        if self._pause_timer is not None:
            self._pause_timer.stop()
        self._pause_timer = self.set_timer(PAUSE_SECONDS, self._paused) if self.text.strip() else None
        if draft_due(self.text, time.monotonic() - self._drafted_at):
            self._post_draft()

    def _paused(self) -> None:
        self._pause_timer = None
        if self.text.strip():
            self._post_draft()

    def _post_draft(self) -> None:
        self._drafted_at = time.monotonic()
        self.post_message(self.Draft(self, self.text))

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
