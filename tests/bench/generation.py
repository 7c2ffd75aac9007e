"""Generation speed through `assistant ask` vs llama-cpp-python driven directly, side by side.

Each run is a fresh process for both sides (same model file, threads, n_ctx, greedy decoding, same
chat messages, same max_tokens); tokens/s counts generated tokens after the first over the time from
first to last token. Runs are interleaved; the median of each side is reported with the ratio.

    python tests/bench/generation.py --model qwen-1.5b --runs 5 --tokens 128 [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROMPT = "Count from 1 to 400, separated by commas, with no other text."

DIRECT = r"""
import json, sys, time
from llama_cpp import Llama
from assistant import prompts
cfg = json.loads(sys.argv[1])
llm = Llama(model_path=cfg["path"], n_ctx=cfg["n_ctx"], n_threads=cfg["threads"], n_threads_batch=cfg["threads"],
            n_gpu_layers=cfg["gpu_layers"], seed=0, verbose=False)
messages = [prompts.system_message([]), {"role": "user", "content": cfg["prompt"]}]
start = time.perf_counter(); first = last = None; n = 0
for chunk in llm.create_chat_completion(messages=messages, max_tokens=cfg["tokens"], stream=True, temperature=0.0):
    if chunk["choices"][0]["delta"].get("content"):
        now = time.perf_counter(); first = first or now; last = now; n += 1
print(json.dumps({"completion_tokens": n, "time_to_first_token": first - start,
                  "tokens_per_second": (n - 1) / (last - first)}))
"""


def run_app(model: str, tokens: int, env) -> dict:
    with tempfile.TemporaryDirectory() as d:
        r = subprocess.run([sys.executable, "-m", "assistant.cli", "--db", f"{d}/b.db", "--model", model,
                            "ask", PROMPT, "--max-tokens", str(tokens), "--stats"],
                           capture_output=True, text=True, env=env, cwd=ROOT)
    if r.returncode:
        sys.exit(f"assistant ask failed: {r.stderr}")
    return json.loads(r.stderr.strip().splitlines()[-1])


def run_direct(cfg: dict, env) -> dict:
    r = subprocess.run([sys.executable, "-c", DIRECT, json.dumps(cfg)], capture_output=True, text=True,
                       env=env, cwd=ROOT)
    if r.returncode:
        sys.exit(f"direct run failed: {r.stderr}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="qwen-1.5b")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--json", dest="json_out")
    args = ap.parse_args()

    sys.path.insert(0, str(ROOT))
    from assistant import config, models
    from assistant.llm import resolve_gpu_layers

    cfg = config.load()
    path = models.resolve_model(args.model)
    direct_cfg = {"path": str(path), "n_ctx": cfg.n_ctx, "threads": cfg.resolved_threads(),
                  "gpu_layers": resolve_gpu_layers(cfg.gpu_layers), "prompt": PROMPT, "tokens": args.tokens}
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    app, direct = [], []
    for i in range(args.runs):
        app.append(run_app(args.model, args.tokens, env))
        direct.append(run_direct(direct_cfg, env))
        print(f"run {i + 1}: app {app[-1]['tokens_per_second']:.1f} tok/s ({app[-1]['completion_tokens']} tok), "
              f"direct {direct[-1]['tokens_per_second']:.1f} tok/s ({direct[-1]['completion_tokens']} tok)")
    a = statistics.median(r["tokens_per_second"] for r in app)
    d = statistics.median(r["tokens_per_second"] for r in direct)
    result = {"model": args.model, "runs": args.runs, "tokens": args.tokens, "threads": direct_cfg["threads"],
              "app_tok_s": a, "direct_tok_s": d, "ratio": a / d,
              "app_ttft_s": statistics.median(r["time_to_first_token"] for r in app),
              "direct_ttft_s": statistics.median(r["time_to_first_token"] for r in direct)}
    print(json.dumps(result, indent=2))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
