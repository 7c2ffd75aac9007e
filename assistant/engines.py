"""Which engine runs the model: llama.cpp in this process (the default) or an OpenAI-compatible server."""
from __future__ import annotations

from pathlib import Path
from typing import Callable


def open_model(model: str, cfg, progress: Callable[[int, int], None] | None = None):
    """The model of this run. With engine "openai", the configured server (no connection is made until the
    first call); else `model` (a name from `assistant models` or a .gguf path), joined, checked and loaded."""
    if cfg.engine == "openai":
        from .server_engine import OpenAIModel

        return OpenAIModel.from_config(cfg)
    from . import models
    from .llm import load_model

    path: Path = models.resolve_model(model, progress=progress)
    return load_model(path, model if model in models.MODELS else path.name, cfg)
