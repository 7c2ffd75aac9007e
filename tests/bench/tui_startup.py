"""Startup time of the terminal UI: process start -> first screen mounted with the input focused.

Runs the real `assistant tui` command with the default wiring (database opened, embedder and chat
model loaded in the background), headless at 120x35. Each run is a fresh Python process; the figure is the median of the runs.

    python tests/bench/tui_startup.py                # default model from the config, 5 runs
    python tests/bench/tui_startup.py --model smollm2 --runs 7
    python tests/bench/tui_startup.py --db /tmp/copy-of-load-1000000.db

It uses a temporary database (never the user's; --db PATH opens that file instead, e.g. a copy of the
memory of tests/bench/load.py) and the usual models directory, so a packaged model that was already
joined is not joined again. Target: interactive in under 1.5 s.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TARGET_SECONDS = 1.5


def child(spawned_at: float, out: str, db: str, model: str | None) -> None:
    """One run, in its own process, through the real `assistant tui` command (run headless)."""
    entered = time.time()
    sys.path.insert(0, str(ROOT))
    from assistant import cli
    import ui.app

    imported = time.time()
    result: dict = {}

    def interactive(app) -> None:
        now = time.time()
        result.update(process_to_interactive=now - spawned_at, interpreter_start=entered - spawned_at,
                      imports=imported - entered, app_to_interactive=now - constructed[0],
                      focused=type(app.focused).__name__)

        def first_recall() -> None:
            # what a question asked right after the database opened waits for (embedder, index loads)
            try:
                app.assistant.recall.search("what did I say about the garden", 700)
                result["process_to_first_recall"] = time.time() - spawned_at
            finally:
                recalled.set()

        recalled = threading.Event()

        def check_built() -> None:
            if "interactive_to_db_open" not in result and (app._built.is_set() or time.time() - now > 20):
                result["interactive_to_db_open"] = time.time() - now
                if app.assistant is None:
                    recalled.set()
                else:
                    threading.Thread(target=first_recall, daemon=True).start()
            if recalled.is_set() or time.time() - now > 120:
                app.exit()

        app.set_interval(0.01, check_built)

    real_run_app = ui.app.run_app
    constructed = [0.0]

    def run_app(options, **_):
        constructed[0] = time.time()
        real_run_app(options, headless=True, on_interactive=interactive)

    ui.app.run_app = run_app
    sys.argv = ["assistant", "--db", db] + (["--model", model] if model else []) + ["tui"]
    try:
        cli.main()
    except SystemExit:
        pass
    Path(out).write_text(json.dumps(result))
    os._exit(0)  # the background loads are daemon threads: do not wait for them


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--model", help="model name or .gguf path (default: the configured one)")
    ap.add_argument("--db", type=Path, help="open this database instead of a new temporary one (e.g. a copy "
                    "of tests/bench/load.py's; the app may write to it)")
    ap.add_argument("--child", nargs=3, metavar=("SPAWNED_AT", "OUT", "DB"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(float(args.child[0]), args.child[1], args.child[2], args.model)
        return
    if args.db and not args.db.is_file():
        sys.exit(f"There is no file {args.db}; check the path.")

    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db.resolve() if args.db else Path(tmp) / "bench.db"
        for i in range(args.runs):
            out = Path(tmp) / f"run{i}.json"
            cmd = [sys.executable, __file__, "--child", "", str(out), str(db)]
            if args.model:
                cmd += ["--model", args.model]
            spawned = time.time()
            cmd[3] = repr(spawned)
            subprocess.run(cmd, check=True, cwd=ROOT, stdin=subprocess.DEVNULL)
            r = json.loads(out.read_text())
            runs.append(r)
            print(f"run {i + 1}: interactive after {r['process_to_interactive']:.3f} s "
                  f"(interpreter {r['interpreter_start']:.3f}, imports {r['imports']:.3f}, "
                  f"app {r['app_to_interactive']:.3f}; database open {r['interactive_to_db_open']:.3f} s "
                  f"later; focus on {r['focused']}; first recall served {r.get('process_to_first_recall', 0):.3f} s "
                  "after process start)", flush=True)

    med = {k: statistics.median(r.get(k, float("nan")) for r in runs) for k in
           ("process_to_interactive", "interpreter_start", "imports", "app_to_interactive",
            "interactive_to_db_open", "process_to_first_recall")}
    print(f"\nmedian of {len(runs)} runs: process start -> interactive {med['process_to_interactive']:.3f} s "
          f"(target < {TARGET_SECONDS} s: {'met' if med['process_to_interactive'] < TARGET_SECONDS else 'MISSED'})")
    print("  interpreter start {interpreter_start:.3f} s, imports {imports:.3f} s, options + app -> "
          "interactive {app_to_interactive:.3f} s, then database open after {interactive_to_db_open:.3f} s"
          .format(**med))
    print(f"  process start -> first recall served {med['process_to_first_recall']:.3f} s")


if __name__ == "__main__":
    main()
