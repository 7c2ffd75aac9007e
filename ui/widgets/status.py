"""The status bar: model, where its layers run, speed of the last answer, and what is going on."""
from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static


def device_text(model) -> str:
    """'GPU 28/28 layers' when layers are offloaded, else 'CPU'."""
    on_gpu = int(getattr(model, "gpu_layers", 0) or 0)
    if on_gpu <= 0:
        return "CPU"
    total = getattr(model, "n_layers", None) or on_gpu
    return f"GPU {on_gpu}/{total} layers"


class StatusBar(Static):
    """One line above the footer. Set its reactive fields; it redraws itself."""

    model_name: reactive[str] = reactive("")
    device: reactive[str] = reactive("")
    state: reactive[str] = reactive("loading model…")
    tokens_per_second: reactive[float | None] = reactive(None)
    session_id: reactive[int | None] = reactive(None)
    memories: reactive[int | None] = reactive(None)
    error: reactive[bool] = reactive(False)

    def render(self) -> Text:
        out = Text(no_wrap=True, overflow="ellipsis")
        sep = (" │ ", "dim")
        out.append(" ● ", "bold red" if self.error else ("bold green" if self.device else "bold yellow"))
        out.append(self.model_name or "model", "bold")
        if self.device:
            out.append(*sep)
            out.append(self.device)
        if self.state:
            out.append(*sep)
            out.append(self.state, "red" if self.error else "italic")
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
