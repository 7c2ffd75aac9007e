"""Export and restore on a synthetic year: 100,000 turns in 5,000 sessions (about 14 a day), 25,000
segments of 4 turns, both search indexes with random unit vectors, a session summary of facts for every
session (memory.summaries.session_text, as consolidation writes them), 2,500 timeline links and 1,000 heard
clips' rows. Then: `export backup` (library call), restore into a new database, and the journal of the
whole year as HTML, Markdown and JSON, and the transcripts as Markdown.

    nice .venv/bin/python tests/bench/export.py            # builds .bench-cache/export-year.db once
    nice .venv/bin/python tests/bench/export.py --runs 3   # medians of 3

Random text and vectors: sizes and speeds are what is measured, not quality.
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.bench.load import WORDS  # noqa: E402

TURNS, PER_SESSION, PER_SEGMENT, DAYS = 100_000, 20, 4, 365


def build(path: Path, dim: int = 384) -> None:
    from memory.clock import to_iso
    from memory.index import HybridIndex, IndexRow
    from memory.store import Store, Turn
    from memory.summaries import SummaryStore, session_text
    from datetime import datetime, timedelta, timezone

    rng = random.Random(7)
    nrng = np.random.default_rng(7)
    store = Store(path)
    sm = SummaryStore(store)
    t0 = time.perf_counter()
    sessions = TURNS // PER_SESSION
    start = datetime(2025, 1, 1, 8, tzinfo=timezone.utc)
    seg_ids: list[tuple[int, str]] = []
    for first in range(0, sessions, 250):
        turn_rows, seg_rows = [], []
        with store.db.conn:
            for s in range(first, min(sessions, first + 250)):
                when = start + timedelta(minutes=s * DAYS * 24 * 60 // sessions)
                audio = s % 5 == 0 and s % 25 == 0
                source = "audio" if audio else "chat"
                sid = store.db.execute("INSERT INTO sessions (title, started_at, source) VALUES (?, ?, ?)",
                                       [f"Talk {s}", to_iso(when), source]).lastrowid
                turns = []
                for i in range(PER_SESSION):
                    role = "user" if audio or i % 2 == 0 else "assistant"
                    text = ("I " if role == "user" else "") + " ".join(rng.choice(WORDS) for _ in range(12)) + "."
                    at = to_iso(when + timedelta(minutes=i))
                    tid = store.db.execute(
                        "INSERT INTO turns (session_id, role, text, created_at, source) VALUES (?, ?, ?, ?, ?)",
                        [sid, role, text, at, source]).lastrowid
                    turns.append(Turn(tid, sid, role, text, at, source))
                    turn_rows.append((tid, f"{'User' if role == 'user' else 'Assistant'}: {text}", at, sid, source))
                    if audio and i < 10:
                        store.db.execute("INSERT INTO audio_clips (session_id, turn_id, path, started_at, ended_at)"
                                         " VALUES (?, ?, ?, ?, ?)", [sid, tid, f"/nowhere/{tid}.flac", at, at])
                for g in range(0, PER_SESSION, PER_SEGMENT):
                    part = turns[g:g + PER_SEGMENT]
                    key = " ".join(t.text for t in part)
                    seg = store.db.execute(
                        "INSERT INTO segments (session_id, first_turn_id, last_turn_id, started_at, ended_at, topic,"
                        " key, source, method, created_at) VALUES (?, ?, ?, ?, ?, '', ?, ?, 'fast', ?)",
                        [sid, part[0].id, part[-1].id, part[0].created_at, part[-1].created_at, key, source,
                         part[-1].created_at]).lastrowid
                    store.db.conn.executemany("INSERT INTO segment_turns (segment_id, turn_id, position) VALUES (?, ?, ?)",
                                              [(seg, t.id, k) for k, t in enumerate(part)])
                    seg_rows.append((seg, key, part[0].created_at, sid, source))
                    seg_ids.append((seg, part[0].created_at))
                store.db.execute("INSERT INTO segmentation_log (session_id, last_turn_id, method, segments, done_at)"
                                 " VALUES (?, ?, 'fast', ?, ?)", [sid, turns[-1].id, PER_SESSION // PER_SEGMENT,
                                                                 turns[-1].created_at])
                text, sources = session_text(turns, 100)
                sm.add("session", str(sid), text, turns[0].created_at, turns[-1].created_at, sessions=[sid],
                       last_turn_id=turns[-1].id, method="facts", fingerprint=",".join(map(str, sources)))
            for name, rows in (("turn", turn_rows), ("segment", seg_rows)):
                vecs = nrng.standard_normal((len(rows), dim)).astype(np.float32)
                vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
                HybridIndex(store, name).add([IndexRow(r[0], v, r[1], r[2], r[4], r[3]) for r, v in zip(rows, vecs)],
                                             commit=False)
        print(f"  {min(sessions, first + 250) * PER_SESSION:,} turns in {time.perf_counter() - t0:.0f} s", flush=True)
    with store.db.conn:
        for k in range(2500):
            a, b = sorted(rng.sample(range(len(seg_ids)), 2))
            store.db.execute("INSERT OR IGNORE INTO links (earlier_id, later_id, label, earlier_at, later_at, "
                             "similarity, method, created_at) VALUES (?, ?, ?, ?, ?, 0.5, 'bench', ?)",
                             [seg_ids[a][0], seg_ids[b][0], rng.choice(["Changed", "SameTopic", "Cause"]),
                              seg_ids[a][1], seg_ids[b][1], seg_ids[b][1]])
    store.close()


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    from assistant import journal_export, transcripts
    from assistant.backup import restore_backup, write_backup
    from memory.store import Store

    path = ROOT / ".bench-cache" / "export-year.db"
    if not path.exists():
        path.parent.mkdir(exist_ok=True)
        tmp = path.with_suffix(".building")
        for f in tmp.parent.glob(tmp.name + "*"):
            f.unlink()
        t = time.perf_counter()
        build(tmp, )
        Path(tmp).rename(path)
        print(f"built in {time.perf_counter() - t:.0f} s")
    store = Store(path)
    print(f"{store.count('turns'):,} turns, {store.count('sessions'):,} sessions, {store.count('segments'):,} "
          f"segments, {store.count('summaries'):,} summaries, {store.count('links'):,} links, "
          f"{store.count('audio_clips'):,} clips; database {path.stat().st_size / 2**20:.0f} MB")
    work = Path(tempfile.mkdtemp(prefix="export-bench-"))
    results: dict[str, list[float]] = {k: [] for k in ("backup export", "restore", "journal html", "journal md",
                                                       "journal json", "transcripts md")}
    try:
        for run in range(args.runs):
            backup = work / "year.zip"
            results["backup export"].append(timed(lambda: write_backup(store, backup)))
            size = backup.stat().st_size
            target = work / f"restored-{run}.db"
            fresh = Store(target)

            def restore():
                restore_backup(fresh, backup, clips_dir=work / "clips")
            results["restore"].append(timed(restore))
            assert fresh.count("turns") == store.count("turns") and fresh.count("vectors_turn") == store.count("vectors_turn")
            fresh.close()
            for f in work.glob(f"restored-{run}.db*"):
                f.unlink()
            pages = {}
            for fmt in ("html", "md", "json"):
                results[f"journal {fmt}"].append(timed(lambda: pages.__setitem__(fmt, journal_export.render(store, fmt))))
            results["transcripts md"].append(timed(lambda: sum(len(p) for p in transcripts.markdown(store))))
            print(f"run {run + 1}: " + ", ".join(f"{k} {v[-1]:.1f} s" for k, v in results.items())
                  + f"; backup {size / 2**20:.0f} MB, HTML {len(pages['html']) / 2**20:.1f} MB", flush=True)
        print("\nmedians of", args.runs)
        for k, v in results.items():
            print(f"  {k}: {statistics.median(v):.1f} s   (runs: {', '.join(f'{x:.1f}' for x in v)})")
    finally:
        store.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
