"""`assistant export backup` and `assistant import backup` on a large memory, timed as a person runs them,
for one or more source trees side by side (the current code and an older checkout, for a comparison on the
same machine in one run). Each command runs in its own process with a temporary HOME, under
/usr/bin/time for its peak memory; the restored database is checked to hold the same number of rows.

    .venv/bin/python tests/bench/backup_speed.py --db .bench-cache/load-1000000.db \
        --tree now=. --tree before=/tmp/old-tree [--runs 1] [--work /tmp/backup-bench]

The database is opened read-only by the backup (a read transaction); --work holds the backups and the
restored files (about 2.5x the database's size at once), removed after each run.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def timed(cmd: list[str], cwd: Path, env: dict) -> tuple[float, float, str]:
    """(seconds, max RSS in MB, output) of one command."""
    t = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-f", "RSS %M", *cmd], cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t
    if p.returncode:
        sys.exit(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    rss = float(re.findall(r"RSS (\d+)", p.stderr)[-1]) / 1024
    return seconds, rss, p.stdout.strip().splitlines()[-1] if p.stdout.strip() else ""


def counts(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    out = {t: conn.execute(f"SELECT count(*) FROM [{t}]").fetchone()[0]
           for t in ("sessions", "turns", "segments", "segment_turns", "links", "summaries")}
    conn.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", type=Path, required=True)
    ap.add_argument("--tree", action="append", required=True, metavar="NAME=PATH",
                    help="a source tree whose .venv or this one's runs the command (repeat for a comparison)")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--work", type=Path, default=None)
    args = ap.parse_args()
    python = str(ROOT / ".venv" / "bin" / "python")
    trees = [(name, Path(path).resolve()) for name, path in (t.split("=", 1) for t in args.tree)]
    want = counts(args.db)
    size = args.db.stat().st_size / 1e9
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores, load "
          f"{os.getloadavg()[0]:.1f}; {args.db} ({size:.1f} GB): {want}")
    rows: dict[str, dict[str, list]] = {name: {"backup": [], "restore": []} for name, _ in trees}
    for run in range(args.runs):
        for name, tree in (trees if run % 2 == 0 else trees[::-1]):
            work = Path(tempfile.mkdtemp(dir=args.work, prefix="backup-bench-"))
            home = work / "home"
            home.mkdir()
            env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
                   "XDG_DATA_HOME": str(home / ".local/share"), "PYTHONPATH": str(tree)}
            try:
                zip_path = work / "memory.zip"
                b = timed([python, "-m", "assistant.cli", "--db", str(args.db.resolve()), "export", "backup",
                           str(zip_path)], tree, env)
                r = timed([python, "-m", "assistant.cli", "--db", str(work / "restored.db"), "import", "backup",
                           str(zip_path)], tree, env)
                got = counts(work / "restored.db")
                if got != want:
                    sys.exit(f"{name}: the restored database holds {got}, not {want}")
                zip_gb = zip_path.stat().st_size / 1e9
                rows[name]["backup"].append((b[0], b[1], zip_gb))
                rows[name]["restore"].append((r[0], r[1]))
                print(f"  run {run + 1} {name:<8} backup {b[0]:6.1f} s ({b[1]:,.0f} MB, {zip_gb:.2f} GB)  "
                      f"restore {r[0]:6.1f} s ({r[1]:,.0f} MB)", flush=True)
            finally:
                shutil.rmtree(work, ignore_errors=True)
    print("\n| code | backup s | backup max RSS | ZIP | restore s | restore max RSS |\n| --- | --- | --- | --- | --- | --- |")
    for name, _ in trees:
        b, r = rows[name]["backup"], rows[name]["restore"]
        print(f"| {name} | {statistics.median(x[0] for x in b):.1f} | {max(x[1] for x in b):,.0f} MB | "
              f"{b[0][2]:.2f} GB | {statistics.median(x[0] for x in r):.1f} | {max(x[1] for x in r):,.0f} MB |")


if __name__ == "__main__":
    main()
