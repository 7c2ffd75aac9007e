"""Denoising by compression: the retrieval key of a segment is a compressed copy of its text.

SeCom compresses with LLMLingua-2 (a trained token classifier), which cannot be downloaded here. These
compressors follow the same idea with what is local: score every word by how much information it carries
and keep the most informative share, in the original order (Selective Context / LLMLingua-1 drop tokens of
low self-information).

- `IdfCompressor` (cheap, the candidate default): self-information of a word approximated by its inverse
  document frequency over the turns in the database, -log P(word occurs in a turn); fillers, stopwords and
  words every turn repeats (greetings, the speakers' names) go first.
- `LogprobCompressor` (costly, optional): self-information -log p(token | preceding text) from a causal
  language model run by llama.cpp (`logits_all=True`), word score = sum over its tokens.

Only the key is compressed; what the model reads is the original segment text.
"""
from __future__ import annotations

import math
import re
from collections import Counter
from typing import Iterable, Protocol, Sequence

from .segmenter import STOPWORDS, words

_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9'’.-]*[A-Za-z0-9]|[A-Za-z0-9]")


class Compressor(Protocol):
    name: str

    def compress(self, text: str) -> str: ...


class NoCompressor:
    """The identity: the key is the whole segment text."""

    name = "none"

    def compress(self, text: str) -> str:
        return text


class IdfCompressor:
    """Keep the `rate` most informative words (corpus IDF as self-information), in order.

    Stopwords and fillers score zero; numbers and capitalised words (names, places) get `entity_bonus`,
    since questions ask about them."""

    name = "idf"

    def __init__(self, rate: float = 0.5, entity_bonus: float = 1.0, min_words: int = 8):
        self.rate = rate
        self.entity_bonus = entity_bonus
        self.min_words = min_words
        self.df: Counter = Counter()
        self.docs = 0

    # -- statistics --------------------------------------------------------------------------------
    def fit(self, texts: Iterable[str]) -> "IdfCompressor":
        for t in texts:
            self.docs += 1
            self.df.update(set(words(t)))
        return self

    @classmethod
    def from_store(cls, store, sample: int = 5000, **kw) -> "IdfCompressor":
        """Fit on the `sample` most recent turns (speaker included, so names said in every turn weigh
        little). A sample keeps the first fit cheap on a large memory: it runs in the hot path."""
        rows = store.db.execute("SELECT COALESCE(speaker, role), text FROM turns WHERE role != 'system' "
                                "ORDER BY id DESC LIMIT ?", [sample])
        return cls(**kw).fit(f"{s}: {t}" for s, t in rows)

    def idf(self, word: str) -> float:
        """ln((N + 1) / (df + 1)) + 1 (>= 1); words never seen get the largest value."""
        return math.log((self.docs + 1) / (self.df.get(word.lower(), 0) + 1)) + 1.0

    # -- compression -------------------------------------------------------------------------------
    def score(self, token: str, sentence_start: bool) -> float:
        w = token.lower().replace("’", "'")
        if w in STOPWORDS or len(w) < 2 and not w.isdigit():
            return 0.0
        s = self.idf(w)
        if any(c.isdigit() for c in w) or (token[:1].isupper() and not sentence_start):
            s += self.entity_bonus
        return s

    def compress(self, text: str) -> str:
        tokens: list[tuple[str, bool]] = []
        for line in text.split("\n"):
            start = True
            for m in _TOKEN.finditer(line):
                tokens.append((m.group(0), start))
                start = m.group(0).endswith(".")
        if not tokens:
            return ""
        scores = [self.score(t, s) for t, s in tokens]
        keep_n = max(min(self.min_words, len(tokens)), int(round(len(tokens) * self.rate)))
        ranked = sorted(range(len(tokens)), key=lambda i: -scores[i])
        keep = {i for i in ranked[:keep_n] if scores[i] > 0}
        out, seen = [], set()
        for i, (t, _) in enumerate(tokens):
            if i in keep:
                out.append(t)
                seen.add(t.lower())
        return " ".join(out)


class LogprobCompressor:
    """Selective Context with a llama.cpp model: drop the words the model finds most predictable.

    `llama` is a `llama_cpp.Llama` created with `logits_all=True`. Costs one forward pass over the text
    (prompt speed: about 230 tokens/s for the 0.5B model on two CPU cores)."""

    name = "logprob"

    def __init__(self, llama, rate: float = 0.5, max_tokens: int = 1024):
        self.llama = llama
        self.rate = rate
        self.max_tokens = max_tokens
        self.calls = 0

    def token_surprisal(self, text: str) -> list[tuple[str, float]]:
        import numpy as np

        llm = self.llama
        toks = llm.tokenize(text.encode("utf-8", "replace"), add_bos=True)[: self.max_tokens]
        llm.reset()
        llm.eval(toks)
        self.calls += 1
        logits = np.asarray(llm.scores[: len(toks)], dtype=np.float64)
        out = []
        for i in range(1, len(toks)):
            row = logits[i - 1]
            lse = row.max() + math.log(np.exp(row - row.max()).sum())
            piece = llm.detokenize([toks[i]]).decode("utf-8", "replace")
            out.append((piece, lse - row[toks[i]]))
        return out

    def compress(self, text: str) -> str:
        pieces = self.token_surprisal(text)
        # group sub-word pieces into words (a piece starting with a space or newline opens a word)
        groups: list[list] = []
        for piece, s in pieces:
            if not groups or piece[:1] in (" ", "\n") or not piece.strip():
                groups.append([piece, s])
            else:
                groups[-1][0] += piece
                groups[-1][1] += s
        items = [(w.strip(), s) for w, s in groups if w.strip()]
        items = [(w, 0.0 if w.lower().strip(".,!?") in STOPWORDS else s) for w, s in items]
        keep_n = max(1, int(round(len(items) * self.rate)))
        ranked = sorted(range(len(items)), key=lambda i: -items[i][1])
        keep = set(ranked[:keep_n])
        return " ".join(w for i, (w, _) in enumerate(items) if i in keep)


def build_key(text: str, *, date: str = "", topic: str = "", compressor: Compressor | None = None) -> str:
    """The retrieval key of a segment: its date, its topic line, and its (compressed) text."""
    body = compressor.compress(text) if compressor else text
    head = " ".join(x for x in (date, topic) if x)
    return f"{head}. {body}" if head else body


def compression_ratio(pairs: Sequence[tuple[str, str]]) -> float:
    """Words kept / words in, over (original, key) pairs."""
    a = sum(len(o.split()) for o, _ in pairs)
    return sum(len(k.split()) for _, k in pairs) / a if a else 1.0
