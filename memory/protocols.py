"""Small protocols the memory layer needs from the outside; `assistant` hands in objects that fit."""
from __future__ import annotations

from typing import Protocol, Sequence

import numpy as np


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors of `dim` dimensions."""

    name: str
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


class LanguageModel(Protocol):
    """One blocking completion. With `schema`, the reply is JSON text valid for that JSON schema."""

    def complete(self, messages: list[dict], schema: dict | None = None, max_tokens: int = 512) -> str: ...


class Preempted(BaseException):
    """The user came back while a unit of consolidation was in flight: the unit is dropped (nothing of it
    was written). Not an Exception: the fallbacks around model calls (`except Exception`) must let it
    through, or a unit cut short would be written with its fallback instead of being done again."""


class TokenCounter(Protocol):
    def __call__(self, text: str) -> int: ...


def approx_tokens(text: str) -> int:
    """Cheap token estimate (about 4 characters a token) for when no tokenizer is at hand."""
    return max(1, (len(text) + 3) // 4)
