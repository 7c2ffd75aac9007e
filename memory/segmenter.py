"""Segmenters: partition a stretch of conversation (a list of exchanges) into contiguous topical segments.

- `LLMSegmenter` (SeCom): the exchanges are numbered in the prompt and the model answers, under a JSON
  schema, with segments {start, end, topic}. The answer is checked here too (in order, contiguous, not
  overlapping, covering every exchange); invalid output is retried once with the problem stated, then
  the embedding segmenter takes over (a *fallback*, recorded).
- `FastSegmenter`: TextTiling on sentence-embedding similarities (block comparison, depth scores), with
  a minimum and maximum segment size. No language model; the topic line is made of keywords.
- `IncrementalSegmenter` (in bank.py, which owns the index): a new exchange joins the open segment when it
  is similar enough to it, else starts the next one.
"""
from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from .protocols import Embedder, LanguageModel
from .segments import Exchange

_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'’-]*")


@dataclass
class Span:
    """Exchanges start..end (0-based, inclusive) form one segment."""

    start: int
    end: int
    topic: str = ""


@dataclass
class Segmentation:
    spans: list[Span]
    method: str                    # "llm" or "fast"
    fallback: bool = False         # the LLM's output was unusable and the fast segmenter decided
    llm_calls: int = 0
    errors: list[str] = field(default_factory=list)


def check_spans(spans: Sequence[Span], n: int) -> list[str]:
    """Every way `spans` fails to be an in-order, contiguous, non-overlapping cover of 0..n-1."""
    problems = []
    if not spans:
        return ["no segments"]
    expect = 0
    for i, s in enumerate(spans):
        if s.start != expect:
            problems.append(f"segment {i + 1} starts at exchange {s.start + 1}, expected {expect + 1}"
                            + (" (overlap)" if s.start < expect else " (gap)"))
        if s.end < s.start:
            problems.append(f"segment {i + 1} ends ({s.end + 1}) before it starts ({s.start + 1})")
        expect = max(expect, s.end + 1)
    if expect != n:
        problems.append(f"the segments cover exchanges 1..{expect}, not 1..{n}")
    return problems


# -- keywords (the fast mode's topic line) -------------------------------------------------------
STOPWORDS = frozenset("""a about above after again against all also am an and any are aren't as at be because
been before being below between both but by can can't cannot could couldn't did didn't do does doesn't doing
don't down during each few for from further had hadn't has hasn't have haven't having he he'd he'll he's her
here here's hers herself him himself his how how's i i'd i'll i'm i've if in into is isn't it it's its itself
let's me more most mustn't my myself no nor not of off on once only or other ought our ours ourselves out over
own same shan't she she'd she'll she's should shouldn't so some such than that that's the their theirs them
themselves then there there's these they they'd they'll they're they've this those through to too under until
up very was wasn't we we'd we'll we're we've were weren't what what's when when's where where's which while who
who's whom why why's will with won't would wouldn't you you'd you'll you're you've your yours yourself
yourselves just really so yeah yes oh ok okay wow hey hi hello thanks thank great good awesome cool lol haha
totally definitely sure well like also know think got get gonna wanna um uh hmm""".split())


def words(text: str) -> list[str]:
    return [w.lower().replace("’", "'") for w in _WORD.findall(text)]


_LABEL_WORDS = frozenset({"user", "assistant"})


def keyword_topic(texts: Sequence[str], idf: Callable[[str], float] | None = None, n: int = 4,
                  exclude: set[str] | frozenset = frozenset()) -> str:
    """The `n` most distinctive content words of a segment (tf x idf), in order of first appearance; the
    chat's speaker labels ("User:", "Assistant:") are no topic."""
    counts: Counter = Counter()
    first: dict[str, int] = {}
    for text in texts:
        for w in words(text):
            if w in STOPWORDS or w in exclude or w in _LABEL_WORDS or len(w) < 3 or w.isdigit():
                continue
            counts[w] += 1
            first.setdefault(w, len(first))
    if not counts:
        return ""
    score = {w: (1 + math.log(c)) * (idf(w) if idf else 1.0) for w, c in counts.items()}
    best = sorted(score, key=lambda w: (-score[w], first[w]))[:n]
    return ", ".join(sorted(best, key=first.get))


# -- the fast (embedding) segmenter ---------------------------------------------------------------
class FastSegmenter:
    """TextTiling (Hearst 1997) on MiniLM similarities between adjacent blocks of exchanges.

    A gap is a boundary when its depth score exceeds mean - `cutoff` x std of all depth scores (and is
    positive); segments shorter than `min_size` exchanges are merged into the more similar neighbour, those
    longer than `max_size` are split at their least similar gap."""

    method = "fast"

    def __init__(self, embedder: Embedder, *, window: int = 2, cutoff: float = 0.5, min_size: int = 1,
                 max_size: int = 6, idf: Callable[[str], float] | None = None,
                 exclude_words: Callable[[Sequence[Exchange]], set[str]] | None = None):
        self.embedder = embedder
        self.window = window
        self.cutoff = cutoff
        self.min_size = min_size
        self.max_size = max_size
        self.idf = idf
        self.exclude_words = exclude_words

    def boundaries(self, vecs: np.ndarray) -> list[int]:
        """Indices i (1..n-1) where a new segment starts, from unit vectors."""
        n = len(vecs)
        if n < 2:
            return []
        gaps = np.zeros(n - 1)
        for g in range(1, n):
            left = vecs[max(0, g - self.window):g].mean(0)
            right = vecs[g:g + self.window].mean(0)
            gaps[g - 1] = float(left @ right / (np.linalg.norm(left) * np.linalg.norm(right) + 1e-9))
        depth = np.zeros_like(gaps)
        for i, s in enumerate(gaps):
            lpeak = s
            for j in range(i - 1, -1, -1):
                if gaps[j] < lpeak:
                    break
                lpeak = gaps[j]
            rpeak = s
            for j in range(i + 1, len(gaps)):
                if gaps[j] < rpeak:
                    break
                rpeak = gaps[j]
            depth[i] = (lpeak - s) + (rpeak - s)
        cut = depth.mean() - self.cutoff * depth.std() if len(depth) > 1 else 0.0
        starts = [i + 1 for i, d in enumerate(depth) if d > max(cut, 1e-6)]
        return self._sized(starts, n, gaps)

    def _sized(self, starts: list[int], n: int, gaps: np.ndarray) -> list[int]:
        bounds = [0] + sorted(set(starts)) + [n]
        # merge segments below min_size into the neighbour across the more similar gap
        changed = True
        while changed and self.min_size > 1 and len(bounds) > 2:
            changed = False
            for k in range(len(bounds) - 1):
                if bounds[k + 1] - bounds[k] < self.min_size:
                    left_gap = gaps[bounds[k] - 1] if k > 0 else -np.inf
                    right_gap = gaps[bounds[k + 1] - 1] if k + 1 < len(bounds) - 1 else -np.inf
                    if left_gap == right_gap == -np.inf:
                        break
                    bounds.pop(k if left_gap >= right_gap else k + 1)
                    changed = True
                    break
        # split segments above max_size at their least similar inner gap
        out = [0]
        for a, b in zip(bounds, bounds[1:]):
            pieces = [(a, b)]
            while any(y - x > self.max_size for x, y in pieces):
                x, y = next(p for p in pieces if p[1] - p[0] > self.max_size)
                lo, hi = x + max(1, self.min_size), y - max(1, self.min_size)
                cands = range(lo, hi + 1) if lo <= hi else range(x + 1, y)
                cut = min(cands, key=lambda g: gaps[g - 1])
                i = pieces.index((x, y))
                pieces[i:i + 1] = [(x, cut), (cut, y)]
            out.extend(y for _, y in pieces)
        return out[1:-1]

    def segment(self, units: Sequence[Exchange], vecs: np.ndarray | None = None) -> Segmentation:
        if not units:
            return Segmentation([], self.method)
        if vecs is None:
            vecs = self.embedder.embed([u.text for u in units])
        starts = [0] + self.boundaries(np.asarray(vecs)) + [len(units)]
        exclude = self.exclude_words(units) if self.exclude_words else set()
        spans = [Span(a, b - 1, keyword_topic([u.text for u in units[a:b]], self.idf, exclude=exclude))
                 for a, b in zip(starts, starts[1:])]
        return Segmentation(spans, self.method)


# -- the LLM segmenter (SeCom) ---------------------------------------------------------------------
SYSTEM = ("You split conversations into topically coherent segments. A segment is a run of consecutive "
          "exchanges about one topic. Answer with JSON only.")

INSTRUCTIONS = """Below are {n} numbered exchanges of a conversation{when}.
Split them into segments of consecutive exchanges, one topic each. Rules:
- every exchange from 1 to {n} belongs to exactly one segment;
- segments are in order and contiguous: the first starts at 1, each next one starts right after the previous one ends, the last ends at {n};
- start a new segment only where the topic really changes;
- "topic" is a short line (at most 8 words) naming what the segment is about, with names and things mentioned.
Answer as {{"segments": [{{"start": 1, "end": 3, "topic": "..."}}, ...]}}.

{body}"""


def segments_schema(n: int) -> dict:
    # an enum, not minimum/maximum: llama.cpp's schema-to-grammar conversion enforces enums
    idx = {"type": "integer", "enum": list(range(1, n + 1))}
    return {
        "type": "object",
        "properties": {"segments": {
            "type": "array", "minItems": 1, "maxItems": n,
            "items": {"type": "object",
                      "properties": {"start": idx, "end": idx, "topic": {"type": "string"}},
                      "required": ["start", "end", "topic"]}}},
        "required": ["segments"],
    }


def _clip(text: str, max_words: int) -> str:
    ws = text.split()
    return text if len(ws) <= max_words else " ".join(ws[:max_words]) + " …"


class LLMSegmenter:
    """SeCom's segmentation by a language model, with validation, one retry and an embedding fallback.

    Long stretches are cut into chunks of at most `chunk` exchanges, each segmented by its own call."""

    method = "llm"

    def __init__(self, model: LanguageModel, fallback: FastSegmenter, *, retries: int = 1,
                 chunk: int = 30, max_words_per_turn: int = 60):
        self.model = model
        self.fallback = fallback
        self.retries = retries
        self.chunk = chunk
        self.max_words_per_turn = max_words_per_turn

    def prompt(self, units: Sequence[Exchange], when: str = "") -> list[dict]:
        lines = []
        for i, u in enumerate(units, 1):
            body = "\n".join(f"  {_clip(line, self.max_words_per_turn)}" for line in u.text.split("\n"))
            lines.append(f"[{i}]\n{body}")
        text = INSTRUCTIONS.format(n=len(units), when=f" ({when})" if when else "", body="\n".join(lines))
        return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}]

    def _ask(self, units: Sequence[Exchange], when: str, seg: Segmentation) -> list[Span] | None:
        n = len(units)
        messages = self.prompt(units, when)
        schema = segments_schema(n)
        for attempt in range(1 + self.retries):
            seg.llm_calls += 1
            try:
                raw = self.model.complete(messages, schema=schema, max_tokens=48 + 28 * n)
                spans = parse_spans(raw, n)
                problems = check_spans(spans, n)
            except Exception as e:  # the backend raises on cut-off or schema-invalid output
                problems = [f"unusable output: {e}"]
                raw = None
            if not problems:
                return spans
            seg.errors.append("; ".join(problems))
            if raw is not None and attempt < self.retries:
                messages = messages + [
                    {"role": "assistant", "content": raw},
                    {"role": "user", "content": "That is not a valid partition: " + "; ".join(problems[:3])
                     + f". Answer again: contiguous segments covering exchanges 1 to {n}, in order."}]
        return None

    def segment(self, units: Sequence[Exchange], vecs: np.ndarray | None = None, when: str = "",
                ) -> Segmentation:
        seg = Segmentation([], self.method)
        if not units:
            return seg
        if len(units) == 1:
            seg.spans = [Span(0, 0, self.fallback.segment(units).spans[0].topic)]
            return seg
        for a in range(0, len(units), self.chunk):
            part = units[a:a + self.chunk]
            spans = self._ask(part, when, seg) if len(part) > 1 else None
            if spans is None:
                if len(part) > 1:
                    seg.fallback = True
                fb = self.fallback.segment(part, None if vecs is None else vecs[a:a + self.chunk])
                spans = fb.spans
            seg.spans.extend(Span(s.start + a, s.end + a, s.topic.strip()[:120]) for s in spans)
        if seg.fallback:
            seg.method = "llm+fallback"
        return seg


def parse_spans(raw: str, n: int) -> list[Span]:
    """Spans (0-based) from the model's JSON answer; raises ValueError when it is not that shape."""
    data = json.loads(raw)
    items = data.get("segments") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise ValueError("no 'segments' list")
    spans = []
    for it in items:
        if not isinstance(it, dict) or not isinstance(it.get("start"), int) or not isinstance(it.get("end"), int):
            raise ValueError(f"malformed segment {it!r}")
        spans.append(Span(it["start"] - 1, it["end"] - 1, str(it.get("topic") or "")))
    return spans
