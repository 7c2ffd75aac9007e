#!/usr/bin/env python3
"""llama.cpp's repacked CPU weights against the plain layout, side by side and interleaved: the model's
load time, the prompt read after a reused beginning (what a turn that recalls memories evaluates) and
generation, through the app's own LlamaCppModel (its chunked evaluation) on the CPU.

    python tests/bench/cpu_repack.py --runs 3 --json OUT.json

Greedy; the prompt is the same text for both layouts. The CPU's flags that decide `cpu_repack = "auto"`
(assistant/llm.py) are printed with the figures.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

TEXT = ("Caroline went to the LGBTQ support group on Tuesday and said the stories there were inspiring; "
        "Melanie painted a lake at sunrise with her kids last summer and wants to try watercolours next. ")


def one(path: Path, repack: bool, threads: int, prefix: int, prompt: int, gen: int) -> dict:
    from assistant.llm import LlamaCppModel

    t0 = time.perf_counter()
    m = LlamaCppModel(path, n_ctx=4096, threads=threads, gpu_layers=0, temperature=0.0, cpu_repack=repack)
    load = time.perf_counter() - t0
    tokens = m.llm.tokenize((TEXT * 40).encode())
    assert len(tokens) >= prefix + prompt, "the text is too short for these lengths"
    m._eval(tokens[:prefix])                                     # the beginning every prompt shares
    t0 = time.perf_counter()
    m._eval(tokens[prefix:prefix + prompt])
    read = time.perf_counter() - t0
    n, t0 = 0, time.perf_counter()
    for _ in m.llm.generate(tokens[:prefix + prompt], temp=0.0):   # the whole prompt is in the cache
        n += 1
        if n == gen:
            break
    decode = time.perf_counter() - t0
    m.llm.close()
    del m
    gc.collect()      # the next load must not find this one's buffers still held
    return {"repack": repack, "load_s": round(load, 3), "prompt_tok_s": round(prompt / read, 1),
            "prompt_s": round(read, 3), "gen_tok_s": round(n / decode, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="qwen-1.5b")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--prefix", type=int, default=550, help="tokens already in the cache")
    ap.add_argument("--prompt", type=int, default=300, help="tokens read after them (a turn's memories)")
    ap.add_argument("--gen", type=int, default=64)
    ap.add_argument("--json", dest="json_out")
    args = ap.parse_args()
    from assistant.llm import _cpu_flags, resolve_cpu_repack
    from assistant.models import resolve_model

    path = resolve_model(args.model)
    flags = sorted(f for f in _cpu_flags() if f.startswith(("avx", "amx", "fma", "f16c")))
    print(f"CPU flags: {' '.join(flags)}; auto = {'repack' if resolve_cpu_repack('auto', 0) else 'plain'}; "
          f"load {os.getloadavg()[0]:.1f}", flush=True)
    rows = []
    for i in range(args.runs):
        for repack in ((True, False) if i % 2 == 0 else (False, True)):
            r = one(path, repack, args.threads, args.prefix, args.prompt, args.gen)
            rows.append(r)
            print(f"run {i} {'repack' if repack else 'plain '}: load {r['load_s']:.2f} s, prompt "
                  f"{r['prompt_tok_s']:.1f} tok/s ({r['prompt_s']:.2f} s for {args.prompt}), generation "
                  f"{r['gen_tok_s']:.1f} tok/s", flush=True)
    summary = {}
    for repack in (True, False):
        mine = [r for r in rows if r["repack"] is repack]
        summary["repack" if repack else "plain"] = {k: statistics.median(r[k] for r in mine)
                                                    for k in ("load_s", "prompt_tok_s", "prompt_s", "gen_tok_s")}
    print(json.dumps(summary, indent=1))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M"), "model": args.model,
                                                   "threads": args.threads, "cpu_flags": flags, "rows": rows,
                                                   "summary": summary}, indent=1))


if __name__ == "__main__":
    main()
