"""Fakes for fast unit tests: a scripted language model and a deterministic embedder."""
from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from typing import Iterator

import numpy as np

from assistant.llm import GenerationStats


class FakeEmbedder:
    """Bag of hashed words (and word bigrams) -> 384-d unit vector. Same words, similar vectors."""

    name = "fake"
    dim = 384

    def embed(self, texts):
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            words = re.findall(r"[a-z0-9]+", text.lower())
            for w in words + [a + " " + b for a, b in zip(words, words[1:])]:
                h = int.from_bytes(hashlib.blake2b(w.encode(), digest_size=8).digest(), "little")
                out[i, h % self.dim] += 1.0 if (h >> 32) & 1 else -1.0
            n = np.linalg.norm(out[i])
            out[i] = out[i] / n if n else out[i]
            if not n:
                out[i, 0] = 1.0
        return out


class FakeLLM:
    """Scripted replies in order (the last one repeats); records every prompt it was given."""

    name = "fake"
    n_ctx = 4096
    gpu_layers = 0

    def __init__(self, replies=None, json_replies=None, delay: float = 0.0, n_ctx: int = 4096):
        self.replies = list(replies or ["Hello from the fake model."])
        self.json_replies = list(json_replies or [])
        self.delay = delay
        self.n_ctx = n_ctx
        self.prompts: list[list[dict]] = []
        self.avoided: list[list[str]] = []    # each stream's `avoid` (what its answer may not begin with)
        self.last_stats = GenerationStats()
        self.started = threading.Event()

    def _next(self, pool):
        return pool.pop(0) if len(pool) > 1 else pool[0]

    def count_tokens(self, text: str) -> int:
        return max(1, len(text) // 4)

    def stream(self, messages, max_tokens=512, cancel=None, avoid=()) -> Iterator[str]:
        self.prompts.append(messages)
        self.avoided.append(list(avoid))
        reply = self._next(self.replies)
        stats = GenerationStats()
        t0 = time.perf_counter()
        self.started.set()
        for i, piece in enumerate(re.findall(r"\S+\s*", reply)[:max_tokens]):
            if cancel is not None and cancel.is_set():
                break
            if self.delay:
                time.sleep(self.delay)
            stats.completion_tokens += 1
            stats.generation_seconds = time.perf_counter() - t0
            yield piece
        self.last_stats = stats

    def complete(self, messages, schema=None, max_tokens=512) -> str:
        self.prompts.append(messages)
        if schema is not None and self.json_replies:
            reply = self._next(self.json_replies)
            return reply if isinstance(reply, str) else json.dumps(reply)
        return self._next(self.replies)
