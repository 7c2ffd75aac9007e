"""Side-by-side decoding (`complete_many`) against one prompt at a time (`complete`), on real prompts.

    python tests/bench/parallel_decoding.py --data ../shared/data/locomo/locomo_dev.json [--conv conv-26]
        [--sessions 8] [--model qwen-1.5b] [--gpu-layers auto] [--json OUT]

The prompts ask for a short summary of each of the first N sessions of a LoCoMo conversation (the
session's turns as one part, at most 60 words a turn): a dialogue-summary workload, as consolidation's
session summaries were made before they became the facts people stated. Both sides run in one process on the
same loaded model, one after the other; the sequential side uses the chat context, as consolidation did
before. Also reported: the time of one decoding pass by the number of sequences it carries (prompts of 500
tokens resident), which is what makes side-by-side decoding pay on a CPU. Run by hand, not by pytest.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


SESSION_SYSTEM = ("You keep a concise, factual memory of a person's conversations and relate new memories to "
                  "earlier ones. You never invent details.")
SUMMARY_TASK = ("\n\nSummarize what this conversation tells about the people in two to four short sentences "
                "(at most {words} words): events with their dates, plans, preferences, changes; no small talk. "
                "Plain text.")


def session_prompts(data: str, conv: str, n: int, words: int = 60) -> list[list[dict]]:
    sample = next(s for s in json.load(open(data)) if s["sample_id"] == conv)["conversation"]
    out = []
    for i in range(1, n + 1):
        turns = sample[f"session_{i}"]
        body = "\n".join(f"  {t['speaker']}: {' '.join(t['text'].split()[:60])}" for t in turns)
        text = f"Conversation of {sample[f'session_{i}_date_time']}:\nPart 1:\n{body}"
        out.append([{"role": "system", "content": SESSION_SYSTEM},
                    {"role": "user", "content": text + SUMMARY_TASK.format(words=words)}])
    return out


def pass_times(model, widths=(1, 2, 4, 8, 16), prompt_tokens=500, passes=10) -> dict[int, float]:
    """Seconds of one pass carrying one token of each of `width` sequences."""
    dec = model._decoder()
    base = model.llm.tokenize(open(ROOT / "README.md").read().encode())[:prompt_tokens + 64]
    out = {}
    for w in widths:
        if w + 1 > dec.n_seq or w * (prompt_tokens + passes + 64) > dec.n_ctx:
            continue
        prompts = [base[:prompt_tokens + 4 * i] for i in range(w)]
        dec._prefill(prompts)
        t0 = time.perf_counter()
        for r in range(passes):
            dec._decode([(base[0], len(prompts[i]) + r, i + 1, True) for i in range(w)])
        out[w] = (time.perf_counter() - t0) / passes
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared/data/locomo/locomo_dev.json"))
    ap.add_argument("--conv", default="conv-26")
    ap.add_argument("--sessions", type=int, default=8)
    ap.add_argument("--model", default="qwen-1.5b")
    ap.add_argument("--gpu-layers", default="auto")
    ap.add_argument("--max-tokens", type=int, default=110)
    ap.add_argument("--json", dest="out")
    args = ap.parse_args()

    from assistant.llm import LlamaCppModel
    from assistant.models import resolve_model

    model = LlamaCppModel(resolve_model(args.model), name=args.model, gpu_layers=args.gpu_layers)
    convs = session_prompts(args.data, args.conv, args.sessions)

    t0 = time.perf_counter()
    single = []
    for msgs in convs:
        single.append(model.complete(msgs, max_tokens=args.max_tokens))
    t_single = time.perf_counter() - t0
    single_tokens = sum(model.count_tokens(s) for s in single)

    t0 = time.perf_counter()
    many = model.complete_many(convs, max_tokens=args.max_tokens)
    t_many = time.perf_counter() - t0
    stats = model._parallel.stats

    passes = pass_times(model)
    out = {
        "model": args.model, "gpu_layers": model.gpu_layers, "threads": os.cpu_count(), "conv": args.conv,
        "prompts": len(convs), "prompt_tokens": model.last_stats.prompt_tokens, "max_tokens": args.max_tokens,
        "one_at_a_time_s": round(t_single, 1), "side_by_side_s": round(t_many, 1),
        "speedup": round(t_single / t_many, 2),
        "answer_tokens": {"one_at_a_time": single_tokens, "side_by_side": stats.completion_tokens},
        "same_text": sum(a.strip() == b.strip() for a, b in zip(single, many)),
        "pass_ms_by_width": {w: round(s * 1000) for w, s in passes.items()},
        "tokens_per_s_by_width": {w: round(w / s, 1) for w, s in passes.items()},
        "loadavg": os.getloadavg(),
    }
    print(json.dumps(out, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
