#!/usr/bin/env python3
"""MiniLM in numpy (the app's embedder) against the torch path it replaced, side by side in one run.

    flock /work/notes/quiet.lock python tests/bench/embedder_speed.py [--runs 5] [--texts 1000] [--json OUT]

Three figures per path, the paths interleaved run by run, with the app's thread setting (a quarter of the
cores, one on 2 to 7) for both:
- cold: a new process from its start to its first query's vector (imports, loading the weights, the warm-up
  encode the app does in the background, then one query), as `assistant ask` pays it before recall;
- query: one short text's latency in a warm process (the recall's query), median and p95;
- bulk: --texts LoCoMo turns (../shared/data, in order; synthetic sentences if absent) through `embed` in the
  app's batches of 64, as consolidation and the index embed them: texts per second.

"torch" is the path the app used until numpy replaced it (transformers' BertModel on torch, mean pooling
under the mask, unit length); it lives here only, for this comparison, and needs the test extra
(sentence-transformers brings torch and transformers).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
QUERY = "What did Caroline say about the LGBTQ support group?"
THREADS = max(1, (os.cpu_count() or 2) // 4)


class TorchMiniLM:
    """The torch path as the app had it: BertModel from transformers, the tokenizer as today."""

    def __init__(self, folder: str):
        import torch
        from tokenizers import Tokenizer
        from transformers import BertModel
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
        torch.set_num_threads(THREADS)
        with open(os.path.join(folder, "sentence_bert_config.json")) as f:
            self.max_tokens = int(json.load(f).get("max_seq_length", 256))
        self.tokenizer = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
        self.tokenizer.enable_truncation(self.max_tokens)
        self.tokenizer.enable_padding()
        self.model = BertModel.from_pretrained(folder).eval()

    def encode(self, texts: list[str], batch_size: int):
        import numpy as np
        import torch

        out = np.zeros((len(texts), self.model.config.hidden_size), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            enc = self.tokenizer.encode_batch([texts[i] for i in idx])
            ids = torch.tensor([e.ids for e in enc])
            mask = torch.tensor([e.attention_mask for e in enc])
            types = torch.tensor([e.type_ids for e in enc])
            with torch.inference_mode():
                tokens = self.model(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state
                m = mask.unsqueeze(-1).to(tokens.dtype)
                mean = (tokens * m).sum(1) / m.sum(1).clamp(min=1e-9)
                out[idx] = torch.nn.functional.normalize(mean, p=2, dim=1).cpu().numpy()
        return out


def embedder(path: str):
    """An app embedder (batching, recent texts) on the given path, loaded and warmed up as the app does."""
    from memory.embedder import SentenceTransformerEmbedder, _packaged_model_dir

    class TorchEmbedder(SentenceTransformerEmbedder):
        def _load(self) -> None:
            try:
                self._model = TorchMiniLM(_packaged_model_dir())
                self._model.encode(["warm up"], 1)
            finally:
                self._ready.set()

    return (TorchEmbedder if path == "torch" else SentenceTransformerEmbedder)(background=False)


def texts(n: int, data: Path) -> list[str]:
    if data.exists():
        from first_token import locomo_turns

        out = [t for s in locomo_turns(data) for _, t, _ in s]
        return out[:n]
    words = "the a cello lesson in Lisbon my sister Ana teaches piano on Tuesday after work we met".split()
    return [" ".join(words[(i * 7 + j) % len(words)] for j in range(3 + i % 40)) for i in range(n)]


def cold(path: str) -> float:
    """Seconds from a new process's start to its first query's vector."""
    code = ("import sys; sys.path[:0] = [{root!r}, {bench!r}]; "
            "import embedder_speed as b; b.embedder({path!r}).embed([b.QUERY])"
            ).format(root=str(ROOT), bench=str(ROOT / "tests/bench"), path=path)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return time.perf_counter() - start                   # the interpreter's own start included


def load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--queries", type=int, default=40, help="single-query latencies per path and run")
    ap.add_argument("--texts", type=int, default=1000)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/locomo/locomo_dev.json")
    ap.add_argument("--paths", default="numpy,torch")
    ap.add_argument("--json", dest="out")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "tests/bench"))
    paths = args.paths.split(",")
    bulk_texts = texts(args.texts, args.data)
    print(f"load before {load()}; {len(bulk_texts)} texts, {THREADS} thread(s), batches of 64", flush=True)

    res = {p: {"cold_s": [], "query_ms": [], "bulk_texts_per_s": []} for p in paths}
    for run in range(args.runs):
        for p in paths if run % 2 == 0 else paths[::-1]:
            res[p]["cold_s"].append(cold(p))
    warm = {p: embedder(p) for p in paths}
    # both in one process: each path its own threads setting (torch's own, numpy's BLAS), both THREADS
    for run in range(args.runs):
        for p in paths if run % 2 == 0 else paths[::-1]:
            e = warm[p]
            for i in range(args.queries):
                q = f"{QUERY} ({run}.{i})"                 # a new text each time: the recent-texts memory misses
                t = time.perf_counter()
                e.embed([q])
                res[p]["query_ms"].append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            e.embed(bulk_texts)
            res[p]["bulk_texts_per_s"].append(len(bulk_texts) / (time.perf_counter() - t))
            print(f"run {run} {p}: cold {res[p]['cold_s'][run]:.2f} s, bulk {res[p]['bulk_texts_per_s'][-1]:.0f} "
                  f"texts/s", flush=True)
    if len(paths) == 2:
        import numpy as np

        a, b = (warm[p].embed(bulk_texts[:200]) for p in paths)
        print(f"max abs difference between the paths' vectors ({min(200, len(bulk_texts))} texts): {np.abs(a - b).max():.2e}")
    summary = {}
    for p in paths:
        q = sorted(res[p]["query_ms"])
        summary[p] = {"cold_s_median": round(statistics.median(res[p]["cold_s"]), 3),
                      "query_ms_median": round(statistics.median(q), 2),
                      "query_ms_p95": round(q[math.ceil(0.95 * len(q)) - 1], 2),
                      "bulk_texts_per_s_median": round(statistics.median(res[p]["bulk_texts_per_s"]), 1),
                      **res[p]}
        print(f"{p:6s} cold {summary[p]['cold_s_median']:.2f} s (runs {', '.join(f'{x:.2f}' for x in res[p]['cold_s'])}); "
              f"query {summary[p]['query_ms_median']:.1f} ms median, {summary[p]['query_ms_p95']:.1f} ms p95; "
              f"bulk {summary[p]['bulk_texts_per_s_median']:.0f} texts/s")
    print(f"load after {load()}")
    if args.out:
        Path(args.out).write_text(json.dumps({"threads": THREADS, "texts": len(bulk_texts), **summary}, indent=1))


if __name__ == "__main__":
    main()
