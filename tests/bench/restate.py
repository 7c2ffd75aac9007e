#!/usr/bin/env python3
"""Prompt-lookup decoding (LlamaCppModel.restate) against plain greedy decoding (complete) on the
consolidation's summaries of summaries, side by side, interleaved.

    python tests/bench/restate.py [--db PATH] [--model qwen-1.5b] [--prompts 4] [--json OUT]

The prompts ask the model to fold session summaries into one memory and to write a week's journal entry
from them, with the session summaries of a consolidated database (by default the one
tests/bench/consolidation_cost.py leaves for conv-26): a workload that repeats its prompt's words. Each
prompt is decoded both ways from a cold context (the prompt is evaluated each time), and the report gives
seconds, generated tokens, passes, accepted draft tokens and whether the two texts are the same.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


FOLD = """Current memory of the conversations so far:
(nothing yet)

New conversation summaries:
{new}

Write the updated memory in at most {words} words: keep the durable facts about the people (names, events
with their dates, plans, preferences, relationships), replace facts that changed by their new version (say
what it was before when that matters), drop small talk. Plain text, no preamble."""
WEEK = """Summaries for the week:
{new}

Write a journal entry for the week in at most {words} words: what happened and what was discussed, with
dates where they matter. Plain text, no preamble."""


def messages(template: str, items, words: int) -> list[dict]:
    body = "\n".join(f"- [{when}] {text}" for when, text in items)
    return [{"role": "system", "content": "You keep a concise, factual memory of a person's conversations."},
            {"role": "user", "content": template.format(new=body, words=words)}]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", default=str(ROOT / ".bench-cache/consolidation_cost/conv-26-fast-qwen-1.5b.db"))
    ap.add_argument("--model", default="qwen-1.5b")
    ap.add_argument("--prompts", type=int, default=4)
    ap.add_argument("--gpu-layers", default="0")
    ap.add_argument("--json", dest="out")
    args = ap.parse_args()

    from assistant.llm import LlamaCppModel
    from assistant.models import resolve_model
    from memory import summaries as sm
    from memory.clock import human_date
    from memory.store import Store

    store = Store(Path(args.db))
    sessions = sm.SummaryStore(store).list("session")
    if len(sessions) < 4:
        sys.exit(f"{args.db} has {len(sessions)} session summaries; run tests/bench/consolidation_cost.py first.")
    prompts = []
    for i in range(0, len(sessions), 6):     # folds of six summaries and journal weeks of three
        chunk = sessions[i:i + 6]
        prompts.append(("fold", messages(FOLD, [(human_date(s.period_start), s.text) for s in chunk], 160)))
        prompts.append(("week", messages(WEEK, [(human_date(s.period_start), s.text) for s in chunk[:3]], 90)))
    prompts = prompts[: args.prompts]
    model = LlamaCppModel(resolve_model(args.model), name=args.model, n_ctx=4096, temperature=0.0,
                          gpu_layers=args.gpu_layers if args.gpu_layers == "auto" else int(args.gpu_layers))
    rows = []
    for kind, msgs in prompts:
        max_tokens = 328
        row = {"kind": kind}
        for way in ("complete", "restate"):
            model.llm.reset()
            t0 = time.perf_counter()
            text = getattr(model, way)(msgs, max_tokens=max_tokens)
            dt = time.perf_counter() - t0
            stats = model.last_lookup if way == "restate" else None
            row[way] = {"seconds": dt, "tokens": model.last_stats.completion_tokens,
                        "passes": stats.passes if stats else model.last_stats.completion_tokens,
                        "accepted": stats.accepted if stats else 0, "text": text}
        row["same_text"] = row["complete"]["text"].strip() == row["restate"]["text"].strip()
        rows.append(row)
        print(f"{kind:5} complete {row['complete']['seconds']:5.1f}s {row['complete']['tokens']:4} tok | restate "
              f"{row['restate']['seconds']:5.1f}s {row['restate']['tokens']:4} tok, {row['restate']['passes']} passes, "
              f"{row['restate']['accepted']} drafted tokens kept | same text: {row['same_text']}", flush=True)
    ratio = statistics.median(r["complete"]["seconds"] / r["restate"]["seconds"] for r in rows)
    print(f"median speed-up {ratio:.2f}x over {len(rows)} prompts; same text in "
          f"{sum(r['same_text'] for r in rows)} of {len(rows)}")
    if args.out:
        Path(args.out).write_text(json.dumps({"model": args.model, "db": args.db, "rows": rows,
                                              "median_speedup": ratio, "cpus": os.cpu_count(),
                                              "loadavg": os.getloadavg()}, indent=1))


if __name__ == "__main__":
    main()
