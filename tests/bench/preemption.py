#!/usr/bin/env python3
"""How long an answer waits for background work (consolidation) to give way, and whether the chat's cached
prompt survives it.

    python tests/bench/preemption.py --model qwen-1.5b --threads 2 --runs 5

Each run: the chat answers a first message (its prompt is now in the chat's cache); a background call
(through `model.background()`, as consolidation makes it) starts on a ~1,500-token prompt; 2 s later, while it
is still evaluating, the chat answers a follow-up. Reported: the time from the follow-up's call until the
background call raised Preempted (the wait), and the follow-up's prompt tokens evaluated and reused (the
chat's cache kept: only the new message is evaluated).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="qwen-1.5b")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json", dest="json_out")
    args = ap.parse_args()

    from assistant.llm import LlamaCppModel
    from assistant.models import resolve_model
    from memory.protocols import Preempted

    model = LlamaCppModel(resolve_model(args.model), name=args.model, threads=args.threads, gpu_layers=0,
                          temperature=0.0)
    background = model.background()
    long_text = " ".join(["The quick brown fox jumps over the lazy dog near the river bank."] * 110)
    system = {"role": "system", "content": "You are a helpful assistant. Answer in one short sentence."}
    rows = []
    for run in range(args.runs):
        chat = [system, {"role": "user", "content": f"Run {run}: name a colour."}]
        first = "".join(model.stream(chat, max_tokens=12))
        raised: list[float] = []

        def work():
            try:
                background.complete([{"role": "user", "content": long_text + f"\nRun {run}. Summarize."}],
                                    max_tokens=64)
            except Preempted:
                raised.append(time.perf_counter())

        t = threading.Thread(target=work)
        t.start()
        time.sleep(2.0)
        follow = chat + [{"role": "assistant", "content": first.strip()},
                         {"role": "user", "content": "And another one?"}]
        t0 = time.perf_counter()
        got = []
        for piece in model.stream(follow, max_tokens=8):
            if not got:
                got.append(time.perf_counter())
        t.join()
        st = model.last_stats
        row = {"run": run + 1, "wait_s": round(raised[0] - t0, 3) if raised else None,
               "ttft_s": round(got[0] - t0, 3) if got else None, "prompt_tokens": st.prompt_tokens,
               "evaluated_tokens": st.evaluated_tokens, "reused_tokens": st.reused_tokens,
               "load": "%.1f" % os.getloadavg()[0]}
        rows.append(row)
        print(json.dumps(row), flush=True)
    waits = [r["wait_s"] for r in rows if r["wait_s"] is not None]
    result = {"model": args.model, "threads": args.threads, "rows": rows,
              "wait_p50_s": statistics.median(waits) if waits else None, "wait_max_s": max(waits, default=None)}
    print(json.dumps({k: v for k, v in result.items() if k != "rows"}))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
