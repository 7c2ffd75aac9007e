"""The status bar: model, where its layers run, speed of the last answer, what is going on, and the
background: listening to the room, a voice question being recorded, memory being tidied."""
from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static


def device_text(model) -> str:
    """'GPU 28/28 layers' when layers are offloaded, else 'CPU'; a model on a server says where it runs."""
    where = getattr(model, "device", None)
    if isinstance(where, str) and where:
        return where
    on_gpu = int(getattr(model, "gpu_layers", 0) or 0)
    if on_gpu <= 0:
        return "CPU"
    total = getattr(model, "n_layers", None) or on_gpu
    return f"GPU {on_gpu}/{total} layers"


def level_meter(level_db: float | None, width: int = 5) -> str:
    """A little bar for a sound level in dBFS: -60 dB or less is empty, 0 dB is full."""
    if level_db is None:
        return ""
    filled = max(0, min(width, round((level_db + 60) / 60 * width)))
    return "▮" * filled + "▯" * (width - filled)


def clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class StatusBar(Static):
    """One line above the footer. Set its reactive fields; it redraws itself. What happens in the
    background (microphone open, recording, tidying) comes right after the state, so a narrow
    terminal still shows it."""

    model_name: reactive[str] = reactive("")
    device: reactive[str] = reactive("")
    state: reactive[str] = reactive("loading model…")
    tokens_per_second: reactive[float | None] = reactive(None)
    session_id: reactive[int | None] = reactive(None)
    memories: reactive[int | None] = reactive(None)
    error: reactive[bool] = reactive(False)
    # listening to the room: "" (off), "starting", "on" or "paused"; level and time while on
    listening: reactive[str] = reactive("")
    listen_level: reactive[float | None] = reactive(None)
    listen_seconds: reactive[int] = reactive(0)
    heard: reactive[int] = reactive(0)
    # a voice question: "" (none), "starting", "recording" or "transcribing"
    voice: reactive[str] = reactive("")
    voice_seconds: reactive[int] = reactive(0)
    voice_level: reactive[float | None] = reactive(None)
    # memory consolidation in the background, e.g. "tidying memory: linking memories 3/12"
    tidying: reactive[str] = reactive("")
    # an incognito chat: nothing of it is stored
    incognito: reactive[bool] = reactive(False)

    def render(self) -> Text:
        out = Text(no_wrap=True, overflow="ellipsis")
        sep = (" │ ", "dim")
        out.append(" ● ", "bold red" if self.error else ("bold green" if self.device else "bold yellow"))
        out.append(self.model_name or "model", "bold")
        if self.incognito:   # first, so that it always shows
            out.append(*sep)
            out.append(" incognito: nothing is stored ", "bold reverse magenta")
        if self.device:
            out.append(*sep)
            out.append(self.device)
        if self.state:
            out.append(*sep)
            out.append(self.state, "red" if self.error else "italic")
        background = self.background_text()
        if background:   # before the figures: whether the microphone is open must always show
            out.append(*sep)
            out.append_text(background)
        if self.tokens_per_second is not None:
            out.append(*sep)
            out.append(f"{self.tokens_per_second:.1f} tok/s")
        if self.memories is not None:
            out.append(*sep)
            out.append(f"{self.memories} memor{'y' if self.memories == 1 else 'ies'} used")
        if self.session_id is not None:
            out.append(*sep)
            out.append(f"session {self.session_id}", "dim")
        return out

    def background_text(self) -> Text:
        """The right-hand part: voice question, listening, tidying (each only while it happens)."""
        out = Text(no_wrap=True, overflow="ellipsis")
        parts: list[Text] = []
        if self.voice == "starting":
            parts.append(Text("⏺ opening microphone…", "italic"))
        elif self.voice == "recording":
            parts.append(Text.assemble(("⏺ rec ", "bold red"), clock(self.voice_seconds), " ",
                                       (level_meter(self.voice_level), "red"), (" ctrl+r sends", "dim")))
        elif self.voice == "transcribing":
            parts.append(Text("⏺ transcribing…", "italic"))
        if self.listening == "starting":
            parts.append(Text("◌ starting to listen…", "italic"))
        elif self.listening == "on":
            part = Text.assemble(("● listening ", "bold red"), clock(self.listen_seconds), " ",
                                 (level_meter(self.listen_level), "green"))
            if self.heard:
                part.append(f" · {self.heard} heard", "dim")
            parts.append(part)
        elif self.listening == "paused":
            parts.append(Text.assemble(("❚❚ paused", "bold yellow"), (" ctrl+l resumes", "dim")))
        if self.tidying:
            parts.append(Text(self.tidying, "italic cyan"))
        for i, part in enumerate(parts):
            if i:
                out.append(" │ ", "dim")
            out.append_text(part)
        return out
