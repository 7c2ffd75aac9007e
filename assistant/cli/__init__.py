"""The `assistant` command. With no subcommand it opens the chat in the terminal UI.

Each module adds its commands to the one group in `common`; importing them here is what registers them."""
from __future__ import annotations

import os

from . import audio, backup, chat, consolidate, export, memory, settings, system  # noqa: F401  (they add their commands)
from .common import cli
from . import forget, sessions  # noqa: F401,E402  (forget, remember, memory correct/pin, sessions ...)

__all__ = ["cli", "main"]


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    cli(prog_name="assistant")
