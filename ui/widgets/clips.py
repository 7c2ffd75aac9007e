"""The audio clips an answer cited ("what did I miss…"): one line each, Enter plays the highlighted one."""
from __future__ import annotations

from rich.text import Text
from textual import events, on
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from .timefmt import local_time

OPENING_WORDS = 10


def clip_span(memory) -> str:
    """'14:05–14:06': when the clip was heard, in local time."""
    start = local_time(memory.started_at, "%H:%M") or getattr(memory, "topic", "")
    end = local_time(getattr(memory, "ended_at", None), "%H:%M")
    return f"{start}–{end}" if end else start


def opening_words(text: str, n: int = OPENING_WORDS) -> str:
    words = text.split()
    return " ".join(words[:n]) + (" …" if len(words) > n else "")


def clip_line(memory, playing: bool = False) -> Text:
    line = Text.assemble(("▶ ", "bold"), (clip_span(memory), "bold"), "  ", f"“{opening_words(memory.text)}”")
    if playing:
        line.append("  ♪ playing", "italic")
    return line


class ClipList(OptionList):
    """A focusable list of cited clips (memories of kind 'audio': id = clip id). Enter (or a click)
    on one posts `Play`; the one playing is marked."""

    class Play(Message):
        """Play this clip."""

        def __init__(self, clip_list: "ClipList", clip_id: int, span: str) -> None:
            self.clip_list = clip_list
            self.clip_id = clip_id
            self.span = span
            super().__init__()

    class Leave(Message):
        """The user typed (or pressed Esc) while the list had focus: the message box takes over,
        with `character` typed into it, so that nothing typed is lost or read as a shortcut."""

        def __init__(self, character: str = "") -> None:
            self.character = character
            super().__init__()

    def __init__(self, clips=(), *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes, compact=True)
        self.clips = list(clips)
        self.playing: int | None = None

    def on_mount(self) -> None:
        self.show(self.clips)

    def show(self, clips) -> None:
        self.clips = list(clips)
        self.clear_options()
        self.add_options([Option(clip_line(c), id=str(c.id)) for c in self.clips])
        if self.clips:
            self.highlighted = 0

    def set_playing(self, clip_id: int | None) -> None:
        """Mark the clip being played (None: none)."""
        self.playing = clip_id
        for i, c in enumerate(self.clips):
            self.replace_option_prompt_at_index(i, clip_line(c, playing=c.id == clip_id))

    @property
    def clip_ids(self) -> list[int]:
        return [c.id for c in self.clips]

    def lines(self) -> list[str]:
        """The text of every line (for tests and screen readers)."""
        return [str(self.get_option_at_index(i).prompt) for i in range(self.option_count)]

    async def _on_key(self, event: events.Key) -> None:
        if event.key == "escape" or (event.is_printable and event.character):
            event.stop()
            event.prevent_default()
            self.post_message(self.Leave("" if event.key == "escape" else event.character))
            return
        await super()._on_key(event)

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        clip = self.clips[event.option_index]
        self.post_message(self.Play(self, clip.id, clip_span(clip)))
