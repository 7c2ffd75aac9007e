"""Speed of the app's model backend (`assistant.llm.LlamaCppModel`) vs llama-cpp-python driven directly.

Both run in this process on the same GGUF with the same settings (n_ctx, threads, GPU layers, flash
attention, seed, temperature 0.6 with llama-cpp-python's default top-k/top-p/min-p), and the same chat
messages through the GGUF's chat template, streamed. Runs are interleaved and the order alternates
(app first on even runs, direct first on odd ones); the median of each side is reported with the ratio
app/direct. Before every measured call the model's context is emptied (`Llama.reset()`), so every
prompt is evaluated in full (no prefix reuse), and llama.cpp's perf counters are reset.

Per run and side:
- generation: a short prompt, exactly --gen-tokens tokens generated (checked through llama.cpp's perf
  counters: `n_eval + 1`); tokens/s = (generated - 1) / (last piece - first piece), wall clock, as the
  app's own GenerationStats counts it; also llama.cpp's own decode rate (n_eval / t_eval).
- first token: a ~--prompt-tokens prompt; time from the call to the first streamed piece, and prompt
  tokens/s = prompt tokens / that time (also llama.cpp's own n_p_eval / t_p_eval).

The GPU setting goes through the app's own `resolve_gpu_layers` (default "auto": every layer when
`llama_supports_gpu_offload()` is true); the direct side gets the resolved number. For CPU figures hide
the GPU (`CUDA_VISIBLE_DEVICES=`): with it visible, llama.cpp sends large prompt batches to it even with
no layers offloaded.

With `--server URL` (an OpenAI-compatible llama-server started on the same GGUF) a third side sends the
same messages with the same sampling through the server's streaming chat endpoint, with llama.cpp's
`cache_prompt: false` so that it too evaluates every prompt in full; its tokens/s are counted on the client
as for the other sides (the server's own `timings` are kept beside them).

    python tests/bench/gpu/speed.py --model M.gguf --label gpu --runs 10 --flash-attn off,on --json out.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

SYSTEM = "You are a helpful assistant running on the user's own machine."
WORDS = ("memory river lantern quiet garden window morning letter market bridge orange signal paper "
         "winter station forest engine pocket silver harbor meadow candle stone travel music evening "
         "friend kitchen mountain yellow summer island rabbit planet thunder coffee village").split()


def filler(rng: random.Random, n_words: int) -> str:
    out = []
    for i in range(n_words):
        out.append(rng.choice(WORDS))
        if i % 12 == 11:
            out[-1] += "."
    return " ".join(out)


def messages_short(i: int) -> list[dict]:
    return [{"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"Request {i}: write a long story about a {WORDS[i % len(WORDS)]} "
                                        "and keep going until you are stopped."}]


def messages_long(i: int, n_words: int) -> list[dict]:
    rng = random.Random(1000 + i)
    return [{"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"Note {i}. {filler(rng, n_words)}\n\nSummarise the note above."}]


def perf(llm):
    import llama_cpp

    d = llama_cpp.llama_perf_context(llm.ctx)
    return {"n_p_eval": d.n_p_eval, "t_p_eval_ms": d.t_p_eval_ms, "n_eval": d.n_eval, "t_eval_ms": d.t_eval_ms}


def prepare(llm) -> None:
    import llama_cpp

    llm.reset()
    llama_cpp.llama_perf_context_reset(llm.ctx)


def stream_app(model, messages, max_tokens, sampling):
    return model.stream(messages, max_tokens=max_tokens, **sampling)


def stream_direct(llm, messages, max_tokens, sampling):
    for chunk in llm.create_chat_completion(messages=messages, max_tokens=max_tokens, stream=True, **sampling):
        piece = chunk["choices"][0]["delta"].get("content")
        if piece:
            yield piece


def stream_server(url: str, messages, max_tokens, sampling, out: dict):
    """Stream a chat completion from an OpenAI-compatible llama-server; its last chunk's `timings` go to out."""
    import http.client
    from urllib.parse import urlparse

    u = urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=600)
    body = {"messages": messages, "max_tokens": max_tokens, "stream": True, "cache_prompt": False,
            "top_p": 0.95, "top_k": 40, "min_p": 0.05, "repeat_penalty": 1.0, "seed": 0, **sampling}
    conn.request("POST", "/v1/chat/completions", json.dumps(body), {"Content-Type": "application/json"})
    resp = conn.getresponse()
    if resp.status != 200:
        raise RuntimeError(f"server answered {resp.status}: {resp.read()[:300]!r}")
    for raw in resp:
        line = raw.decode().strip()
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        chunk = json.loads(line[6:])
        if chunk.get("timings"):
            out["timings"] = chunk["timings"]
        for choice in chunk.get("choices") or []:
            piece = (choice.get("delta") or {}).get("content")
            if piece:
                yield piece
    conn.close()


def timed_server(url: str, messages, max_tokens, sampling) -> dict:
    info: dict = {}
    start = time.perf_counter()
    first = last = None
    pieces = 0
    for _ in stream_server(url, messages, max_tokens, sampling, info):
        now = time.perf_counter()
        first = first or now
        last = now
        pieces += 1
    end = time.perf_counter()
    t = info.get("timings", {})
    generated = t.get("predicted_n", pieces)
    r = {"ttft_s": (first - start) if first else None, "total_s": end - start, "pieces": pieces,
         "generated": generated, "prompt_tokens": t.get("prompt_n"), "timings": t}
    if first is not None and last > first and generated > 1:
        r["tok_s"] = (generated - 1) / (last - first)
    r["decode_tok_s_llama"] = t.get("predicted_per_second")
    r["prompt_tok_s"] = t["prompt_n"] / r["ttft_s"] if r["ttft_s"] and t.get("prompt_n") else None
    r["prompt_tok_s_llama"] = t.get("prompt_per_second")
    return r


def timed(side: str, app, direct, messages, max_tokens, sampling, server: str | None = None) -> dict:
    if side == "server":
        return timed_server(server, messages, max_tokens, sampling)
    llm = app.llm if side == "app" else direct
    prepare(llm)
    start = time.perf_counter()
    first = last = None
    pieces = 0
    it = stream_app(app, messages, max_tokens, sampling) if side == "app" else \
        stream_direct(direct, messages, max_tokens, sampling)
    for _ in it:
        now = time.perf_counter()
        if first is None:
            first = now
        last = now
        pieces += 1
    end = time.perf_counter()
    p = perf(llm)
    generated = p["n_eval"] + 1 if first is not None else 0
    r = {"ttft_s": (first - start) if first else None, "total_s": end - start, "pieces": pieces,
         "generated": generated, "prompt_tokens": p["n_p_eval"], **p}
    if first is not None and last > first and generated > 1:
        r["tok_s"] = (generated - 1) / (last - first)
    r["decode_tok_s_llama"] = p["n_eval"] / p["t_eval_ms"] * 1e3 if p["t_eval_ms"] > 0 else None
    r["prompt_tok_s"] = p["n_p_eval"] / r["ttft_s"] if r["ttft_s"] else None
    r["prompt_tok_s_llama"] = p["n_p_eval"] / p["t_p_eval_ms"] * 1e3 if p["t_p_eval_ms"] > 0 else None
    if side == "app":
        s = app.last_stats
        r["app_stats"] = {"ttft_s": s.time_to_first_token, "completion_pieces": s.completion_tokens,
                          "tok_s": s.tokens_per_second}
    return r


def med(rows: list[dict], key: str):
    vals = [r[key] for r in rows if r.get(key) is not None]
    return statistics.median(vals) if vals else None


def bench_config(path: Path, args, flash_attn: bool) -> dict:
    from llama_cpp import Llama

    from assistant.llm import LlamaCppModel

    t = time.perf_counter()
    app = LlamaCppModel(path, n_ctx=args.n_ctx, threads=args.threads, gpu_layers=args.gpu_layers,
                        flash_attn=flash_attn, seed=0)
    app_load = time.perf_counter() - t
    n_gpu = app.gpu_layers_setting
    t = time.perf_counter()
    direct = Llama(model_path=str(path), n_ctx=args.n_ctx, n_threads=args.threads, n_threads_batch=args.threads,
                   n_gpu_layers=n_gpu, flash_attn=flash_attn, seed=0, verbose=False)
    direct_load = time.perf_counter() - t
    sampling = {"temperature": 0.6}

    # the long prompt: enough words for ~prompt_tokens tokens through the chat template
    n_words = args.prompt_tokens
    for _ in range(4):
        n = app.count_tokens(messages_long(0, n_words)[1]["content"]) + app.count_tokens(SYSTEM) + 16
        n_words = max(16, int(n_words * args.prompt_tokens / n))

    sides = ("app", "direct") + (("server",) if args.server else ())
    for side in sides:  # warm-up: CUDA kernels, graphs, caches
        timed(side, app, direct, messages_short(999), 16, sampling, args.server)
        timed(side, app, direct, messages_long(999, n_words), 2, sampling, args.server)

    rows = {side: {"gen": [], "ttft": []} for side in sides}
    for i in range(args.runs):
        order = sides[i % len(sides):] + sides[:i % len(sides)]   # each side first in turn
        for side in order:
            rows[side]["gen"].append(timed(side, app, direct, messages_short(i), args.gen_tokens, sampling, args.server))
        for side in order:
            rows[side]["ttft"].append(timed(side, app, direct, messages_long(i, n_words), args.ttft_tokens, sampling,
                                            args.server))
        print(f"  run {i + 1}: " + "; ".join(
            f"{s} gen {rows[s]['gen'][-1].get('tok_s', 0):.1f} tok/s ({rows[s]['gen'][-1]['generated']} tok), "
            f"ttft {rows[s]['ttft'][-1]['ttft_s'] * 1e3:.1f} ms ({rows[s]['ttft'][-1]['prompt_tokens']} prompt tok)"
            for s in sides), flush=True)

    summary = {}
    for side in sides:
        summary[side] = {
            "gen_tok_s": med(rows[side]["gen"], "tok_s"),
            "gen_decode_tok_s_llama": med(rows[side]["gen"], "decode_tok_s_llama"),
            "gen_tokens": sorted({r["generated"] for r in rows[side]["gen"]}),
            "gen_ttft_s": med(rows[side]["gen"], "ttft_s"),
            "ttft_s": med(rows[side]["ttft"], "ttft_s"),
            "prompt_tokens": med(rows[side]["ttft"], "prompt_tokens"),
            "prompt_tok_s": med(rows[side]["ttft"], "prompt_tok_s"),
            "prompt_tok_s_llama": med(rows[side]["ttft"], "prompt_tok_s_llama"),
        }
    a, d = summary["app"], summary["direct"]
    ratios = {
        "gen_tok_s": a["gen_tok_s"] / d["gen_tok_s"],
        "ttft_speed": d["ttft_s"] / a["ttft_s"],  # >1: the app reaches its first token sooner
        "prompt_tok_s": a["prompt_tok_s"] / d["prompt_tok_s"],
    }
    if args.server:
        v = summary["server"]
        ratios["server_over_app"] = {"gen_tok_s": v["gen_tok_s"] / a["gen_tok_s"],
                                     "ttft_speed": a["ttft_s"] / v["ttft_s"],
                                     "prompt_tok_s": v["prompt_tok_s"] / a["prompt_tok_s"]}
    out = {"flash_attn": flash_attn, "gpu_layers_setting": args.gpu_layers, "n_gpu_layers": n_gpu,
           "app_gpu_layers": app.gpu_layers, "n_layers": app.n_layers, "load_s": {"app": app_load, "direct": direct_load},
           "summary": summary, "ratio_app_over_direct": ratios, "runs": rows}
    app.llm.close()
    direct.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--label", default="gpu")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--gen-tokens", type=int, default=128)
    ap.add_argument("--prompt-tokens", type=int, default=1000)
    ap.add_argument("--ttft-tokens", type=int, default=4, help="max_tokens of the first-token runs")
    ap.add_argument("--threads", type=int, default=16)
    ap.add_argument("--n-ctx", type=int, default=4096)
    ap.add_argument("--gpu-layers", default="auto")
    ap.add_argument("--flash-attn", default="off", help="comma list of off/on")
    ap.add_argument("--json", dest="json_out", type=Path)
    ap.add_argument("--server", metavar="URL", help="also time an OpenAI-compatible llama-server at URL")
    ap.add_argument("--real-weights", action="store_true", help="the GGUF holds real weights (for the record)")
    args = ap.parse_args()

    import llama_cpp

    from assistant import llm as app_llm

    env = {
        "label": args.label,
        "synthetic_weights": not args.real_weights, "server": args.server,
        "model": str(args.model), "model_bytes": args.model.stat().st_size,
        "llama_cpp_python": llama_cpp.__version__,
        "llama_supports_gpu_offload": bool(llama_cpp.llama_supports_gpu_offload()),
        "gpu_offload_supported": app_llm.gpu_offload_supported(),
        "resolve_gpu_layers_auto": app_llm.resolve_gpu_layers("auto"),
        "CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "system_info": llama_cpp.llama_print_system_info().decode(errors="replace"),
        "python": platform.python_version(), "cpu_count": os.cpu_count(),
        "runs": args.runs, "gen_tokens": args.gen_tokens, "prompt_tokens_target": args.prompt_tokens,
        "threads": args.threads, "n_ctx": args.n_ctx,
    }
    print(json.dumps({k: v for k, v in env.items() if k != "system_info"}), flush=True)
    results = {"env": env, "configs": []}
    for fa in args.flash_attn.split(","):
        flash = fa.strip() in ("on", "1", "true")
        print(f"[{args.label}] flash_attn={flash}", flush=True)
        results["configs"].append(bench_config(args.model, args, flash))
        s = results["configs"][-1]
        print(json.dumps({"flash_attn": flash, "summary": s["summary"], "ratio": s["ratio_app_over_direct"]}),
              flush=True)
        if args.json_out:
            args.json_out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
