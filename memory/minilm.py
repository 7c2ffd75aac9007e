"""The packaged all-MiniLM-L6-v2 in numpy alone: a BERT encoder (6 layers, 384 wide) in float32, then the
sentence-transformers pipeline of its folder (modules.json: Transformer, mean Pooling, Normalize) with its
max_seq_length. The vectors equal those of sentence-transformers to float32 rounding (a test compares them),
so the vectors already in every database stay comparable; torch and transformers are not needed."""
from __future__ import annotations

import json
import os

import numpy as np

# erf(x) = x P(x^2) / Q(x^2) on [-4, 4] (outside it erf is +-1 in float32): the rational approximation used
# for float32 erf by Eigen and XLA. Against math.erf: at most 4.3e-7 apart in float32 (6.5e-8 in float64),
# so GELU differs from the exact one by float32 rounding only (torch's own GELU: 1.2e-6 at |x| <= 8).
_ERF_P = np.array([-2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06,
                   -5.69250639462346e-05, -7.34990630326855e-04, -2.95459980854025e-03,
                   -1.60960333262415e-02], dtype=np.float32)
_ERF_Q = np.array([-1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03,
                   -7.37332916720468e-03, -1.42647390514189e-02], dtype=np.float32)


def _erf(u: np.ndarray, u2: np.ndarray, p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """erf(u) into p (u is clipped in place; u2, q are scratch of u's size)."""
    np.clip(u, -4.0, 4.0, out=u)
    np.multiply(u, u, out=u2)
    np.multiply(u2, _ERF_P[0], out=p)
    for c in _ERF_P[1:-1]:
        p += c
        p *= u2
    p += _ERF_P[-1]
    np.multiply(u2, _ERF_Q[0], out=q)
    for c in _ERF_Q[1:-1]:
        q += c
        q *= u2
    q += _ERF_Q[-1]
    p *= u
    p /= q
    return p


def erf(x: np.ndarray) -> np.ndarray:
    x = np.array(x, dtype=np.float32)
    return _erf(x, np.empty_like(x), np.empty_like(x), np.empty_like(x))


_BLOCK = 65536   # elements: GELU's four scratch rows stay in cache (twice as fast as whole arrays)


def gelu(h: np.ndarray) -> np.ndarray:
    """BERT's exact GELU, x (1 + erf(x / sqrt 2)) / 2, computed in place (h float32, contiguous), block
    by block."""
    flat = h.reshape(-1)
    n = min(_BLOCK, flat.size)
    u, u2, p, q = (np.empty(n, dtype=np.float32) for _ in range(4))
    for start in range(0, flat.size, _BLOCK):
        x = flat[start:start + _BLOCK]
        k = x.size
        np.multiply(x, np.float32(0.7071067811865476), out=u[:k])
        e = _erf(u[:k], u2[:k], p[:k], q[:k])
        e += 1.0
        e *= 0.5
        x *= e
    return h


def layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    """LayerNorm over the last axis, in place."""
    x -= x.mean(-1, keepdims=True)
    var = np.mean(np.square(x), -1, keepdims=True)
    var += np.float32(eps)
    x /= np.sqrt(var)
    x *= weight
    x += bias
    return x


class MiniLM:
    """encode(texts, batch_size) -> unit vectors, float32, one row a text."""

    # Bounds on what one forward pass holds, so that 64 texts of 256 tokens never need hundreds of MB:
    # tokens a pass (the 1,536-wide layer: 24 MiB at 4,096) and attention scores a step (8 MiB).
    MAX_TOKENS = 4096
    MAX_SCORES = 2 * 1024 * 1024

    def __init__(self, folder: str):
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        with open(os.path.join(folder, "config.json")) as f:
            config = json.load(f)
        with open(os.path.join(folder, "sentence_bert_config.json")) as f:
            self.max_tokens = int(json.load(f).get("max_seq_length", 256))
        if config.get("hidden_act", "gelu") != "gelu" or config.get("position_embedding_type",
                                                                      "absolute") != "absolute":
            raise ValueError("the model folder holds a BERT variant this encoder does not compute")
        self.hidden = int(config["hidden_size"])
        self.heads = int(config["num_attention_heads"])
        self.eps = float(config["layer_norm_eps"])
        self.tokenizer = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
        self.tokenizer.enable_truncation(self.max_tokens)
        self.tokenizer.no_padding()  # padded here, per pass, to that pass's longest text

        w = load_file(os.path.join(folder, "model.safetensors"))
        w = {k.removeprefix("bert."): v.astype(np.float32, copy=False) for k, v in w.items()}
        self.words = w["embeddings.word_embeddings.weight"]
        self.positions = w["embeddings.position_embeddings.weight"]
        self.types = w["embeddings.token_type_embeddings.weight"]
        self.emb_norm = (w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        self.layers = []
        for i in range(int(config["num_hidden_layers"])):
            p = f"encoder.layer.{i}."
            a = p + "attention.self."
            self.layers.append({
                # query, key and value in one product; torch's Linear keeps (out, in), hence .T
                "qkv": np.ascontiguousarray(np.concatenate(
                    [w[a + "query.weight"], w[a + "key.weight"], w[a + "value.weight"]]).T),
                "qkv_b": np.concatenate([w[a + "query.bias"], w[a + "key.bias"], w[a + "value.bias"]]),
                "out": np.ascontiguousarray(w[p + "attention.output.dense.weight"].T),
                "out_b": w[p + "attention.output.dense.bias"],
                "norm1": (w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"]),
                "up": np.ascontiguousarray(w[p + "intermediate.dense.weight"].T),
                "up_b": w[p + "intermediate.dense.bias"],
                "down": np.ascontiguousarray(w[p + "output.dense.weight"].T),
                "down_b": w[p + "output.dense.bias"],
                "norm2": (w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"]),
            })

    def encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        out = np.zeros((len(texts), self.hidden), dtype=np.float32)
        if not texts:
            return out
        enc = self.tokenizer.encode_batch(texts)
        # longest first, as sentence-transformers does: passes of like lengths pad least
        order = sorted(range(len(texts)), key=lambda i: -len(enc[i].ids))
        start = 0
        while start < len(order):
            longest = len(enc[order[start]].ids)
            n = max(1, min(batch_size, self.MAX_TOKENS // max(1, longest)))
            idx = order[start:start + n]
            out[idx] = self._pass([enc[i] for i in idx], longest)
            start += n
        return out

    def _pass(self, encodings, length: int) -> np.ndarray:
        n = len(encodings)
        ids = np.zeros((n, length), dtype=np.int64)
        types = np.zeros((n, length), dtype=np.int64)
        mask = np.zeros((n, length), dtype=np.float32)
        for row, e in enumerate(encodings):
            k = len(e.ids)
            ids[row, :k], types[row, :k], mask[row, :k] = e.ids, e.type_ids, e.attention_mask
        x = self.words[ids] + self.positions[:length] + self.types[types]
        x = layer_norm(x, *self.emb_norm, self.eps).reshape(n * length, self.hidden)
        # padding is never attended to: transformers adds the float32 minimum to its scores
        masked = (1.0 - mask)[:, None, None, :] * np.finfo(np.float32).min
        for layer in self.layers:
            x = self._layer(layer, x, n, length, masked)
        tokens = x.reshape(n, length, self.hidden)
        mean = (tokens * mask[:, :, None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        return mean / np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12)

    def _layer(self, layer: dict, x: np.ndarray, n: int, length: int, masked: np.ndarray) -> np.ndarray:
        heads, width = self.heads, self.hidden // self.heads
        qkv = x @ layer["qkv"]
        qkv += layer["qkv_b"]
        # (3, n, heads, length, width), contiguous: numpy hands stacked products to BLAS only then
        q, k, v = np.ascontiguousarray(qkv.reshape(n, length, 3, heads, width).transpose(2, 0, 3, 1, 4))
        q *= np.float32(1.0 / np.sqrt(width))
        k = np.ascontiguousarray(k.transpose(0, 1, 3, 2))
        context = np.empty((n, heads, length, width), dtype=np.float32)
        step = max(1, self.MAX_SCORES // (heads * length * length))
        for s in range(0, n, step):
            scores = q[s:s + step] @ k[s:s + step]
            scores += masked[s:s + step]
            scores -= scores.max(-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(-1, keepdims=True)
            context[s:s + step] = scores @ v[s:s + step]
        context = context.transpose(0, 2, 1, 3).reshape(n * length, self.hidden)
        y = context @ layer["out"]
        y += layer["out_b"]
        y += x
        x = layer_norm(y, *layer["norm1"], self.eps)
        h = x @ layer["up"]
        h += layer["up_b"]
        y = gelu(h) @ layer["down"]
        y += layer["down_b"]
        y += x
        return layer_norm(y, *layer["norm2"], self.eps)
