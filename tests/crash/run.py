"""Run the crash harness: every operation killed at seeded random moments.

    python -m tests.crash.run                      # 72 kill points (over an hour on 2 busy cores)
    python -m tests.crash.run --only import --kills 5 --seed 3

Prints a table (operation, kill points, failures, end-state equality) and keeps every kill's details
in crash-results/kills.json (the folder is ignored by git)."""
from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from .harness import ROOT, kill_once, kill_points, reference, save, summarize
from .operations import operations

# Kill points per operation in the full run (72 in all).
SHARE = {"import": 16, "ask": 10, "consolidate": 10, "listen": 10, "chat": 6, "forget": 10, "restore": 10}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, help="kill points per operation (default: the full run's share)")
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--only", action="append", choices=sorted(SHARE), help="run only this operation (repeatable)")
    ap.add_argument("--out", type=Path, default=ROOT / "crash-results")
    args = ap.parse_args(argv)
    out = args.out
    if out.exists():
        shutil.rmtree(out)
    home = out / "home"
    home.mkdir(parents=True)
    ops = operations(out, home)
    kills = []
    for name in args.only or list(SHARE):
        op = ops[name]
        t0 = time.monotonic()
        ref, seconds = reference(op, out / f"{name}-reference", home)
        n = args.kills or SHARE[name]
        print(f"{name}: an uninterrupted run takes {seconds:.1f} s; killing it at {n} moments", flush=True)
        for i, at in enumerate(kill_points(args.seed + len(kills), n, seconds)):
            k = kill_once(op, out / f"{name}-{i}", home, at, seconds, ref)
            kills.append(k)
            bad = k.problems + k.after_finish + [f"missing: {t}" for t in k.missing_acknowledged]
            print(f"  kill at {k.at:6.1f} s{' (it had finished)' if k.exited else ''}: "
                  f"{'; '.join(bad) if bad else 'ok'}", flush=True)
            save(kills, out / "kills.json")
        print(f"  ({time.monotonic() - t0:.0f} s)", flush=True)
    table = summarize(kills)
    print("\n| operation | kill points | killed while running | failures | end state as uninterrupted |")
    print("| --- | --- | --- | --- | --- |")
    for name, row in table.items():
        same = (f"{row['same end state']}/{row['compared']}" if row["compared"] else "not compared")
        print(f"| {name} | {row['kill points']} | {row['killed while running']} | {row['failures']} | {same} |")
    return 1 if any(r["failures"] for r in table.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
