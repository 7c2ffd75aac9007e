"""Peak resident memory of the app answering one question with a given model (default: the default model).

`assistant ask` loads the same components as the chat UI (llama.cpp model, embedder, SQLite), so its
peak RSS is the app's. Each run is a fresh process on a throwaway database.

    python tests/bench/peak_memory.py [--model qwen-1.5b] [--runs 3]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def one(model: str) -> int:
    """Peak RSS in MiB of one `assistant ask` process."""
    with tempfile.TemporaryDirectory() as d:
        code = ("import resource, subprocess, sys; p = subprocess.run(sys.argv[1:], capture_output=True); "
                "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, p.returncode)")
        r = subprocess.run([sys.executable, "-c", code, sys.executable, "-m", "assistant.cli", "--db",
                            f"{d}/m.db", "--model", model, "ask", "What can you do for me?", "--max-tokens", "32"],
                           capture_output=True, text=True, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    kib, rc = r.stdout.split()
    if rc != "0":
        sys.exit(f"assistant ask failed with exit code {rc}")
    return int(kib) // 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="qwen-1.5b")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    peaks = [one(args.model) for _ in range(args.runs)]
    print(json.dumps({"model": args.model, "peak_rss_mib": peaks, "max_peak_rss_mib": max(peaks)}))


if __name__ == "__main__":
    main()
