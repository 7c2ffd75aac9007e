#!/usr/bin/env python3
"""The model in this process against the same GGUF behind an OpenAI-compatible server, side by side in one run.

    python tests/bench/server_engine.py --server http://127.0.0.1:8080/v1 --model MODEL.gguf \
        [--runs 5] [--gen-tokens 128] [--prompt-words 700] [--convs 7] [--sessions 0] [--json OUT]

1. `assistant ask` both ways: the product's own Assistant (what `assistant ask` builds: store, recall,
   prompt, stream, store) over a fresh database per call, once with `LlamaCppModel` loaded here and once
   with `OpenAIModel` on the server, greedy on both, interleaved (the order alternates), median of --runs:
   - generation: a short message asking for a long story, --gen-tokens at most; tokens/s as the app counts
     it (generated tokens - 1 over first to last piece, on the client for the server).
   - prompt: a message of about --prompt-words words and a 4-token answer; prompt tokens/s = prompt tokens
     evaluated / time to the first piece (the server's own `timings` are kept where it sends them; where it
     does not, its prompt tokens count the whole prompt, cached part included).
2. Consolidation of the LoCoMo dev conversations (--convs of them, default all 7; --sessions N keeps each
   one's first N sessions): each is imported, indexed and segmented once (embeddings, the same for both
   sides, cached in .bench-cache/server_engine/ and reported apart), then its model steps (link labels and
   the rest) run from a fresh copy: in this process one conversation after another, and through the server
   all conversations at once, each sending up to --parallel prompts at a time, so that the server's slots
   batch them. Reported: turns per minute of the model steps, model calls, labels, fallbacks (token counts of
   the server side are approximate: conversations running at once share the engine's last figures).
With --bandwidth GB/s (the card's memory bandwidth), decode tokens/s is set against its ceiling: the model
file's bytes read once per generated token.

Start the server on the same GGUF with room for the parallel prompts, e.g. llama.cpp's
`llama-server -m MODEL.gguf -ngl 99 -c 32768 -np 8 --port 8080` (8 slots of 4096 tokens). Needs only the
project's own dependencies (no package registry). Use --runs 1 --convs 1 --sessions 2 for a short check.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

MODEL_STEPS = ("summary", "link", "running", "day", "week", "month")
WORDS = ("memory river lantern quiet garden window morning letter market bridge orange signal paper winter "
         "station forest engine pocket silver harbor meadow candle stone travel music evening friend kitchen "
         "mountain yellow summer island rabbit planet thunder coffee village").split()


def filler(seed: int, n_words: int) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(WORDS) + ("." if i % 12 == 11 else "") for i in range(n_words))


class LockedEmbedder:
    """One embedder shared by threads, one call at a time."""

    def __init__(self, inner):
        self.inner, self.name, self.dim = inner, inner.name, inner.dim
        self._lock = threading.Lock()

    def embed(self, texts):
        with self._lock:
            return self.inner.embed(texts)


# -- 1. assistant ask -------------------------------------------------------------------------------------
def ask_once(model, embedder, config, text: str, max_tokens: int) -> dict:
    """One `assistant ask` on a fresh database: the product's path, figures as the app records them."""
    from assistant.wiring import Options, build

    with tempfile.TemporaryDirectory() as tmp:
        config.max_answer_tokens = max_tokens
        a = build(Options(db=Path(tmp) / "ask.db", model="bench", config=config), embedder=embedder, model=model)
        try:
            ans = a.answer(None, text)
        finally:
            a.store.close()
    st = ans.stats
    timings = dict(getattr(model, "last_timings", {}) or {})
    evaluated = int(timings.get("prompt_n") or st.evaluated_tokens)
    return {"completion_tokens": st.completion_tokens, "prompt_tokens": st.prompt_tokens,
            "prompt_evaluated": evaluated, "ttft": st.time_to_first_token,
            "gen_tok_s": st.tokens_per_second,
            "prompt_tok_s": evaluated / st.time_to_first_token if st.time_to_first_token else 0.0,
            "server_timings": timings, "chars": len(ans.text)}


def bench_ask(sides: dict, embedder, config, args) -> dict:
    rows: dict[str, list[dict]] = {name: [] for name in sides}
    order = list(sides)
    for name in order:       # warm-up: load, connect, the system prompt cached on both sides
        ask_once(sides[name], embedder, config, "Say hello.", 4)
    for i in range(args.runs):
        for name in (order if i % 2 == 0 else order[::-1]):
            gen = ask_once(sides[name], embedder, config,
                           f"Request {i}: write a long story about a {WORDS[i % len(WORDS)]} and never stop.",
                           args.gen_tokens)
            prompt = ask_once(sides[name], embedder, config,
                              f"Note {i}. {filler(1000 + i, args.prompt_words)}\n\nIn one word, what is the note about?",
                              4)
            rows[name].append({"generation": gen, "prompt": prompt})
            print(f"  run {i + 1}/{args.runs} {name:<10} gen {gen['gen_tok_s']:7.1f} tok/s "
                  f"({gen['completion_tokens']} tokens)  prompt {prompt['prompt_tok_s']:8.1f} tok/s "
                  f"({prompt['prompt_evaluated']} tokens, first piece {prompt['ttft']:.2f} s)", flush=True)
    out = {}
    for name, rs in rows.items():
        out[name] = {"gen_tok_s": statistics.median(r["generation"]["gen_tok_s"] for r in rs),
                     "gen_tokens": statistics.median(r["generation"]["completion_tokens"] for r in rs),
                     "prompt_tok_s": statistics.median(r["prompt"]["prompt_tok_s"] for r in rs),
                     "prompt_tokens": statistics.median(r["prompt"]["prompt_evaluated"] for r in rs),
                     "ttft_s": statistics.median(r["prompt"]["ttft"] for r in rs), "runs": rs}
    if "server" in out and "in-process" in out:
        out["ratio_server_to_in_process"] = {
            k: (out["server"][k] / out["in-process"][k] if out["in-process"][k] else None)
            for k in ("gen_tok_s", "prompt_tok_s")}
    return out


# -- 2. consolidation -------------------------------------------------------------------------------------
def templates(args, embedder) -> tuple[list[tuple[str, Path, int]], float]:
    """(conversation, its imported, indexed and segmented database, turns) for each conversation, built once
    and cached; and the seconds building took in this run."""
    from assistant.wiring import build_memory_index
    from memory.importers import parse_locomo, write
    from memory.store import Store

    folder = ROOT / ".bench-cache" / "server_engine"
    folder.mkdir(parents=True, exist_ok=True)
    sessions = parse_locomo(args.data)
    convs = sorted({s.external_id.split(":")[1] for s in sessions}, key=lambda c: int(c.split("-")[1]))
    convs = convs[: args.convs] if args.convs else convs
    out, spent = [], 0.0
    for conv in convs:
        path = folder / f"{conv}-{args.sessions or 'all'}-{args.segment_mode}.db"
        done = Path(str(path) + ".done")
        if not done.exists():
            for suffix in ("", "-wal", "-shm"):
                Path(str(path) + suffix).unlink(missing_ok=True)
            t0 = time.perf_counter()
            mine = [s for s in sessions if s.external_id.startswith(f"locomo:{conv}:")]
            mine.sort(key=lambda s: int(s.external_id.rsplit("_", 1)[1]))
            store = Store(path)
            write(store, mine[: args.sessions] if args.sessions else mine)
            build_memory_index(store, embedder, mode="fast")
            store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            store.close()
            done.write_text("ok")
            spent += time.perf_counter() - t0
            print(f"  built {conv} in {time.perf_counter() - t0:.0f} s", flush=True)
        conn = sqlite3.connect(path)
        turns = conn.execute("SELECT COUNT(*) FROM turns").fetchone()[0]
        conn.close()
        out.append((conv, path, turns))
    return out, spent


def fresh_copy(template: Path, dest: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(str(dest) + suffix).unlink(missing_ok=True)
    src, dst = sqlite3.connect(template), sqlite3.connect(dest)
    src.backup(dst)
    src.close()
    dst.close()


def consolidate_one(conv: str, path: Path, model, embedder, settings) -> dict:
    from memory.consolidate import Consolidator
    from memory.store import Store

    store = Store(path)
    try:
        t0 = time.perf_counter()
        rep = Consolidator(store, embedder, model, settings).run(trigger="bench", steps=MODEL_STEPS)
        return {"conv": conv, "seconds": time.perf_counter() - t0, "status": rep.status, "llm_calls": rep.llm_calls,
                "pairs": rep.pairs, "labels": dict(rep.labels), "fallbacks": dict(rep.fallbacks),
                "prompt_tokens": rep.prompt_tokens, "error": rep.error}
    finally:
        store.close()


def bench_consolidation(sides: dict, embedder, args) -> dict:
    from memory.consolidate import Settings

    convs, build_s = templates(args, embedder)
    turns = sum(t for _, _, t in convs)
    settings = Settings(segment_mode=args.segment_mode)
    out = {"conversations": [c for c, _, _ in convs], "turns": turns, "build_seconds_this_run": round(build_s, 1)}
    work = ROOT / ".bench-cache" / "server_engine" / "runs"
    work.mkdir(parents=True, exist_ok=True)
    for name, model in sides.items():
        copies = []
        for conv, template, _ in convs:
            dest = work / f"{name}-{conv}.db"
            fresh_copy(template, dest)
            copies.append((conv, dest))
        bg = model.background()
        load0 = os.getloadavg()[0]
        t0 = time.perf_counter()
        if name == "server":       # every conversation at once: the server batches what arrives together
            with ThreadPoolExecutor(max_workers=len(copies)) as pool:
                rows = list(pool.map(lambda c: consolidate_one(c[0], c[1], bg, embedder, settings), copies))
        else:                      # one after another, as one process does
            rows = [consolidate_one(conv, dest, bg, embedder, settings) for conv, dest in copies]
        wall = time.perf_counter() - t0
        labels = Counter()
        for r in rows:
            labels.update(r["labels"])
        out[name] = {"seconds": round(wall, 1), "turns_per_minute": round(turns / wall * 60, 1) if wall else None,
                     "llm_calls": sum(r["llm_calls"] for r in rows), "pairs": sum(r["pairs"] for r in rows),
                     "labels": dict(labels), "fallbacks": sum(sum(r["fallbacks"].values()) for r in rows),
                     "statuses": Counter(r["status"] for r in rows), "load_before": load0, "per_conversation": rows}
        print(f"  {name:<10} {wall:7.1f} s for {turns} turns: {out[name]['turns_per_minute']} turns/min, "
              f"{out[name]['llm_calls']} model calls, {out[name]['pairs']} pairs", flush=True)
    if "server" in out and "in-process" in out and out["in-process"]["turns_per_minute"]:
        out["ratio_server_to_in_process"] = out["server"]["turns_per_minute"] / out["in-process"]["turns_per_minute"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server", required=True, metavar="URL", help="the server's API, e.g. http://127.0.0.1:8080/v1")
    ap.add_argument("--model", required=True, help="the same GGUF the server runs (a path or a model name)")
    ap.add_argument("--server-model", default="", help="the model's name on the server (default: the one it serves)")
    ap.add_argument("--api-key-env", default="", help="the environment variable holding the server's key")
    ap.add_argument("--parallel", type=int, default=8, help="prompts each conversation sends at once")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--gen-tokens", type=int, default=128)
    ap.add_argument("--prompt-words", type=int, default=700)
    ap.add_argument("--n-ctx", type=int, default=4096)
    ap.add_argument("--threads", type=int, default=0, help="llama.cpp threads here (0 = all cores)")
    ap.add_argument("--gpu-layers", default="auto")
    ap.add_argument("--data", default=str(ROOT.parent / "shared/data/locomo/locomo_dev.json"))
    ap.add_argument("--convs", type=int, default=0, help="only the first N conversations (0 = all)")
    ap.add_argument("--sessions", type=int, default=0, help="only each conversation's first N sessions (0 = all)")
    ap.add_argument("--segment-mode", default="fast", choices=("fast", "llm"))
    ap.add_argument("--skip-ask", action="store_true")
    ap.add_argument("--skip-consolidation", action="store_true")
    ap.add_argument("--bandwidth", type=float, metavar="GB/s", help="the card's memory bandwidth, for the ceiling")
    ap.add_argument("--json", dest="json_out", type=Path)
    args = ap.parse_args()

    from assistant.config import Config
    from assistant.llm import LlamaCppModel
    from assistant.models import resolve_model
    from assistant.server_engine import OpenAIModel
    from memory.embedder import SentenceTransformerEmbedder

    path = resolve_model(args.model)
    config = Config(n_ctx=args.n_ctx)
    embedder = LockedEmbedder(SentenceTransformerEmbedder(background=False))
    local = LlamaCppModel(path, name=path.name, n_ctx=args.n_ctx, threads=args.threads,
                          gpu_layers=args.gpu_layers, temperature=0.0)
    server = OpenAIModel(args.server, model=args.server_model, api_key_env=args.api_key_env,
                         parallel=args.parallel, timeout=600, n_ctx=args.n_ctx, temperature=0.0)
    print(f"server model: {server.check()}  local: {path.name}, {local.gpu_layers} layers on the GPU", flush=True)
    sides = {"in-process": local, "server": server}
    result = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "machine": platform.node(),
              "command": " ".join([Path(sys.executable).name, *sys.argv]), "model": str(path),
              "model_bytes": path.stat().st_size, "gpu_layers_here": local.gpu_layers, "server": args.server,
              "cpu_count": os.cpu_count(), "gpu": _gpu()}
    if not args.skip_ask:
        print("assistant ask, in this process and through the server:", flush=True)
        result["ask"] = bench_ask(sides, embedder, config, args)
        if args.bandwidth:
            ceiling = args.bandwidth * 1e9 / result["model_bytes"]
            result["bandwidth_ceiling_tok_s"] = ceiling
            for name in sides:
                result["ask"][name]["share_of_ceiling"] = result["ask"][name]["gen_tok_s"] / ceiling
    if not args.skip_consolidation:
        print("consolidation of the LoCoMo conversations:", flush=True)
        result["consolidation"] = bench_consolidation(sides, embedder, args)
    summary = {k: v for k, v in result.items() if k not in ("ask", "consolidation")}
    if "ask" in result:
        summary["ask"] = {k: ({kk: vv for kk, vv in v.items() if kk != "runs"} if isinstance(v, dict) else v)
                          for k, v in result["ask"].items()}
    if "consolidation" in result:
        summary["consolidation"] = {k: ({kk: vv for kk, vv in v.items() if kk != "per_conversation"}
                                        if isinstance(v, dict) else v) for k, v in result["consolidation"].items()}
    print(json.dumps(summary, indent=2, default=str))
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2, default=str))


def _gpu() -> str:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return "none seen"
    import subprocess

    r = subprocess.run([exe, "--query-gpu=name,memory.total", "--format=csv,noheader"], capture_output=True,
                       text=True, timeout=15)
    return r.stdout.strip() or "nvidia-smi said nothing"


if __name__ == "__main__":
    main()
