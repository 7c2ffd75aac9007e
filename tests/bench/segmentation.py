#!/usr/bin/env python3
"""Topic segmentation on TIAGE: Pk and WindowDiff (lower is better) of each segmenter.

    python tests/bench/segmentation.py [--data ../shared/data/tiage/tiage_anno_test.json]
        [--llm qwen-0.5b --llm-dialogues 30] [--json OUT]

TIAGE (Xie et al., 2021): {dialogue id: [[utterance, flag], ...]}, flag "1" when the utterance starts a
new topic ("-1" on the first). Segmenters work on single utterances here (one unit per turn). Pk and
WindowDiff use k = half the mean reference segment length of each dialogue (Beeferman et al. 1999;
Pevzner & Hearst 2002), averaged over dialogues. Rows: the trivial baselines (no boundary; a boundary
before every utterance), lexical TextTiling (Hearst 1997, word-count vectors), the app's fast segmenter
(TextTiling on MiniLM similarities, with its frozen size limits, on single utterances and, as in the app, on
exchanges of two utterances) and, on the first N dialogues, the LLM
segmenter (LLM answers cached under .bench-cache/segmentation/, fallbacks counted).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402

from memory.bank import FAST_DEFAULTS  # noqa: E402
from memory.segmenter import FastSegmenter, LLMSegmenter, words  # noqa: E402
from memory.segments import Exchange, exchanges  # noqa: E402
from memory.store import Turn  # noqa: E402


def load(path: Path):
    data = json.loads(path.read_text())
    out = []
    for did, utts in data.items():
        texts = [u[0] for u in utts]
        starts = [i for i, u in enumerate(utts) if i > 0 and str(u[1]) == "1"]
        out.append((did, texts, starts))
    return out


def units_of(texts):
    return [Exchange([Turn(i, 0, "user" if i % 2 == 0 else "assistant", t, "2020-01-01T00:00:00+00:00",
                           speaker="A" if i % 2 == 0 else "B")]) for i, t in enumerate(texts)]


def labels(starts, n):
    """seg[i] = index of the segment utterance i is in."""
    seg, cur, s = [], 0, set(starts)
    for i in range(n):
        if i in s:
            cur += 1
        seg.append(cur)
    return seg


def pk_wd(ref_starts, hyp_starts, n):
    ref, hyp = labels(ref_starts, n), labels(hyp_starts, n)
    nseg = len(set(ref))
    k = max(2, int(round(n / nseg / 2)))
    if n <= k:
        return 0.0, 0.0
    rb = [0] * n
    hb = [0] * n
    for i in ref_starts:
        rb[i] = 1
    for i in hyp_starts:
        hb[i] = 1
    pk = wd = 0
    for i in range(n - k):
        pk += (ref[i] == ref[i + k]) != (hyp[i] == hyp[i + k])
        wd += sum(rb[i + 1:i + k + 1]) != sum(hb[i + 1:i + k + 1])
    return pk / (n - k), wd / (n - k)


class LexicalTextTiling:
    """Classic TextTiling: cosine of word-count vectors of adjacent blocks, depth scores, mean - std/2."""

    def __init__(self, window=2):
        self.window = window

    def boundaries(self, texts):
        bags = [Counter(w for w in words(t) if len(w) > 2) for t in texts]
        vocab = {w: i for i, w in enumerate({w for b in bags for w in b})}
        m = np.zeros((len(texts), max(1, len(vocab))))
        for i, b in enumerate(bags):
            for w, c in b.items():
                m[i, vocab[w]] = c
        seg = FastSegmenter(None, window=self.window, cutoff=0.5, min_size=1, max_size=10**6)
        norms = np.linalg.norm(m, axis=1, keepdims=True)
        return seg.boundaries(m / np.where(norms == 0, 1, norms))


class CachedLLM:
    def __init__(self, inner, path: Path):
        self.inner, self.path = inner, path
        self.cache = json.loads(path.read_text()) if path.exists() else {}
        self.calls = self.cached = 0

    def complete(self, messages, schema=None, max_tokens=512):
        key = hashlib.sha1(json.dumps([messages, schema, max_tokens]).encode()).hexdigest()
        if key in self.cache:
            self.cached += 1
            val = self.cache[key]
        else:
            self.calls += 1
            try:
                val = {"ok": self.inner.complete(messages, schema=schema, max_tokens=max_tokens)}
            except Exception as e:  # noqa: BLE001 - the segmenter sees the same failure again
                val = {"error": str(e)}
            self.cache[key] = val
            self.path.write_text(json.dumps(self.cache))
        if "error" in val:
            raise RuntimeError(val["error"])
        return val["ok"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared/data/tiage/tiage_anno_test.json"))
    ap.add_argument("--llm", metavar="MODEL", help="also run the LLM segmenter with this model")
    ap.add_argument("--llm-dialogues", type=int, default=30)
    ap.add_argument("--json", dest="out")
    args = ap.parse_args()
    dialogues = load(Path(args.data))
    from memory.embedder import SentenceTransformerEmbedder

    emb = SentenceTransformerEmbedder(background=False)
    fast = FastSegmenter(emb, **FAST_DEFAULTS)
    fast_free = FastSegmenter(emb, **{**FAST_DEFAULTS, "max_size": 10**6})
    lexical = LexicalTextTiling()
    rows: dict[str, list] = {}

    def add(name, ref, hyp, n):
        rows.setdefault(name, []).append(pk_wd(ref, hyp, n))

    t0 = time.perf_counter()
    vec_cache = {}
    for did, texts, ref in dialogues:
        n = len(texts)
        units = units_of(texts)
        vecs = emb.embed([u.text for u in units])
        vec_cache[did] = vecs
        add("no boundary", ref, [], n)
        add("every utterance a boundary", ref, list(range(1, n)), n)
        add("TextTiling (lexical)", ref, lexical.boundaries(texts), n)
        add("fast: TextTiling on MiniLM (no size limit)", ref, fast_free.boundaries(vecs), n)
        add(f"fast, app defaults on utterances (max {FAST_DEFAULTS['max_size']} utterances)", ref,
            fast.boundaries(vecs), n)
        # as in the app: units are exchanges (an utterance and its reply), at most max_size of them
        ex = exchanges([u.turns[0] for u in units])
        starts = [sum(len(e.turns) for e in ex[:i]) for i in range(len(ex))]
        xv = emb.embed([e.text for e in ex])
        add(f"fast, app defaults on exchanges (max {FAST_DEFAULTS['max_size']} exchanges)", ref,
            [starts[i] for i in fast.boundaries(xv)], n)
    fast_s = time.perf_counter() - t0

    llm_info = None
    if args.llm:
        from assistant.llm import LlamaCppModel
        from assistant.models import resolve_model

        cache = ROOT / ".bench-cache" / "segmentation"
        cache.mkdir(parents=True, exist_ok=True)
        model = CachedLLM(LlamaCppModel(resolve_model(args.llm), name=args.llm, n_ctx=4096, gpu_layers=0,
                                        temperature=0), cache / f"tiage-{args.llm}.json")
        seg = LLMSegmenter(model, fast)
        subset = dialogues[: args.llm_dialogues]
        fallbacks, t1 = 0, time.perf_counter()
        for did, texts, ref in subset:
            units = units_of(texts)
            r = seg.segment(units, vec_cache[did])
            fallbacks += int(r.fallback)
            hyp = [s.start for s in r.spans[1:]]
            add(f"LLM {args.llm} (first {len(subset)} dialogues)", ref, hyp, len(texts))
            add(f"fast (app default) on the same {len(subset)}", ref, fast.boundaries(vec_cache[did]), len(texts))
            add(f"TextTiling (lexical) on the same {len(subset)}", ref, lexical.boundaries(texts), len(texts))
        llm_info = {"model": args.llm, "dialogues": len(subset), "fallbacks": fallbacks,
                    "new_calls": model.calls, "cached_calls": model.cached, "seconds": time.perf_counter() - t1}

    table = {name: {"pk": float(np.mean([p for p, _ in v])), "windowdiff": float(np.mean([w for _, w in v])),
                    "dialogues": len(v)} for name, v in rows.items()}
    ref_sizes = [len(t) / (len(r) + 1) for _, t, r in dialogues]
    print(f"TIAGE {Path(args.data).name}: {len(dialogues)} dialogues, mean reference segment "
          f"{np.mean(ref_sizes):.1f} utterances")
    print(f"{'segmenter':52} {'Pk':>6} {'WinDiff':>8}  n")
    for name, r in table.items():
        print(f"{name:52} {r['pk']:6.3f} {r['windowdiff']:8.3f}  {r['dialogues']}")
    if llm_info:
        print(f"LLM: {llm_info}")
    if args.out:
        Path(args.out).write_text(json.dumps({"data": args.data, "results": table, "llm": llm_info,
                                              "fast_seconds": fast_s}, indent=1))


if __name__ == "__main__":
    main()
