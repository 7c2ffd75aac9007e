#!/usr/bin/env python3
"""What it costs to consolidate one LoCoMo conversation: seconds, model calls and tokens, per step.

    python tests/bench/consolidation_cost.py --data ../shared/data/locomo/locomo_dev.json --conv conv-26 \
        [--model qwen-1.5b] [--segment-mode fast|llm] [--sessions N] [--threads T] [--minutes M] [--json OUT]

The conversation is imported into a fresh database (.bench-cache/consolidation_cost/<conv>-<mode>-<model>.db)
and consolidated by the product's code (memory.consolidate.Consolidator) exactly as `assistant consolidate`
does. The run is resumable: stop it (Ctrl+C, --minutes) and run the same command again; the figures add up
over the runs recorded in the database (consolidation_runs). --fresh starts over.

Reported: wall seconds per step, model calls, prompt and generated tokens (as llama.cpp counts them), CPU
seconds of this process, the label distribution of the links, fallbacks, and the machine's load while it
ran (a busy shared machine slows every figure; compare side by side only within one run).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# llama.cpp's OpenMP threads spin while they wait; on a busy machine that costs 3-5x (see the report)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared/data/locomo/locomo_dev.json"))
    ap.add_argument("--conv", default="conv-26")
    ap.add_argument("--model", default="qwen-1.5b")
    ap.add_argument("--segment-mode", default="fast", choices=("fast", "llm"))
    ap.add_argument("--sessions", type=int, default=0, help="only the first N sessions (0 = all)")
    ap.add_argument("--threads", type=int, default=0, help="llama.cpp threads (0 = all cores)")
    ap.add_argument("--minutes", type=float, default=0, help="stop after this long (resumable)")
    ap.add_argument("--fresh", action="store_true")
    ap.add_argument("--json", dest="out")
    ap.add_argument("--gpu-layers", default="auto",
                    help="layers offloaded to a GPU: auto (all when llama.cpp was built with one), or a number")
    args = ap.parse_args()

    from assistant.llm import LlamaCppModel
    from assistant.models import resolve_model
    from memory.consolidate import Consolidator, Settings
    from memory.embedder import SentenceTransformerEmbedder
    from memory.importers import parse_locomo, write
    from memory.store import Store

    folder = ROOT / ".bench-cache" / "consolidation_cost"
    folder.mkdir(parents=True, exist_ok=True)
    tag = f"{args.conv}-{args.segment_mode}-{args.model}" + (f"-{args.sessions}s" if args.sessions else "")
    db = folder / f"{tag}.db"
    if args.fresh:
        for suffix in ("", "-wal", "-shm"):
            Path(str(db) + suffix).unlink(missing_ok=True)
    store = Store(db)
    if store.count("turns") == 0:
        sessions = [s for s in parse_locomo(args.data) if s.external_id.startswith(f"locomo:{args.conv}:")]
        sessions.sort(key=lambda s: int(s.external_id.rsplit("_", 1)[1]))
        if args.sessions:
            sessions = sessions[: args.sessions]
        write(store, sessions)
    n_turns, n_sessions = store.count("turns"), store.count("sessions")

    t_load = time.perf_counter()
    emb = SentenceTransformerEmbedder(background=False)
    model = LlamaCppModel(resolve_model(args.model), name=args.model, n_ctx=4096, threads=args.threads,
                          gpu_layers=args.gpu_layers, temperature=0.0)
    load_s = time.perf_counter() - t_load
    load0 = os.getloadavg()
    cpu0 = cpu_seconds()
    c = Consolidator(store, emb, model, Settings(segment_mode=args.segment_mode))

    def progress(p):
        if p.done:
            print(f"  {p.step:<8} {p.done:>3}/{p.total:<3} {p.label[:50]}", file=sys.stderr, flush=True)

    rep = c.run(progress=progress, trigger="bench", max_seconds=args.minutes * 60 if args.minutes else None)
    cpu = cpu_seconds() - cpu0
    load1 = os.getloadavg()

    # totals over every run recorded in this database (the benchmark may have been resumed)
    runs = [json.loads(d) for (d,) in store.db.execute(
        "SELECT detail FROM consolidation_runs WHERE trigger = 'bench' ORDER BY id")]
    total = {"seconds": sum(r["seconds"] for r in runs), "llm_calls": sum(r["llm_calls"] for r in runs),
             "prompt_tokens": sum(r["prompt_tokens"] for r in runs),
             "completion_tokens": sum(r["completion_tokens"] for r in runs),
             "step_seconds": dict(sum((Counter(r["step_seconds"]) for r in runs), Counter())),
             "fallbacks": dict(sum((Counter(r["fallbacks"]) for r in runs), Counter())), "runs": len(runs)}
    seg = store.db.execute("SELECT COUNT(*), COALESCE(SUM(fallback), 0), COALESCE(SUM(llm_calls), 0) "
                           "FROM segmentation_log").fetchone()
    sizes = [n for (n,) in store.db.execute("SELECT COUNT(*) FROM segment_turns GROUP BY segment_id")]
    out = {
        "conversation": args.conv, "sessions": n_sessions, "turns": n_turns, "model": args.model,
        "segment_mode": args.segment_mode, "threads": args.threads or os.cpu_count(),
        "machine": {"cpus": os.cpu_count(), "loadavg_start": load0, "loadavg_end": load1},
        "model_load_s": load_s, "this_run": rep.as_dict(), "this_run_cpu_s": cpu, "total": total,
        "finished": rep.status == "done" and not rep.remaining,
        "segments": {"count": len(sizes), "sessions_segmented": seg[0], "fallback_sessions": seg[1],
                     "llm_calls": seg[2], "turns_per_segment_mean": sum(sizes) / len(sizes) if sizes else 0,
                     "max": max(sizes or [0])},
        "links": dict(store.db.execute("SELECT label, COUNT(*) FROM links GROUP BY label ORDER BY 2 DESC").fetchall()),
        "pairs_labelled": store.db.execute("SELECT COALESCE(SUM(candidates), 0) FROM link_log").fetchone()[0],
        "summaries": dict(store.db.execute("SELECT kind || ':' || method, COUNT(*) FROM summaries "
                                           "WHERE status = 'current' GROUP BY 1").fetchall()),
        "running_memory_words": len((store.db.execute(
            "SELECT text FROM summaries WHERE kind = 'running' AND status = 'current'").fetchone() or [""])[0].split()),
    }
    store.close()
    print(json.dumps(out, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
