#!/usr/bin/env python3
"""How much of a bulk import the running memory M_t covers: refolds M_t from the session summaries of a
consolidated conversation and reports, for each session, whether M_t keeps its opening sentence.

    python tests/bench/running_memory.py --conv conv-26 [--model qwen-1.5b] [--batch 1]

Works on a copy of .bench-cache/locomo_recall/<data>/<conv>/timeline-llm-<model>.db (tests/bench/
locomo_timeline.py --llm <model> makes it); its session summaries are made again from the sessions' facts
(memory.facts), and its running memory dropped and folded again with the consolidation's settings
(fold_batch session summaries a fold, running_words words; no model call). A session counts as
kept when M_t holds at least a third of its summary's distinctive words: words of 4+ letters that no more
than two other session summaries use.
"""
from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from memory import summaries as sm  # noqa: E402
from memory.consolidate import Consolidator, Settings  # noqa: E402
from memory.store import Store  # noqa: E402


def words_of(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z]{4,}", text.lower())}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--conv", default="conv-26")
    ap.add_argument("--model", default="qwen-1.5b")
    ap.add_argument("--cache", default=str(ROOT / ".bench-cache" / "locomo_recall"))
    ap.add_argument("--batch", type=int, default=0,
                    help="session summaries a fold (default: the consolidation's; 1 = as in daily use)")
    args = ap.parse_args()
    found = glob.glob(f"{args.cache}/*/{args.conv}/timeline-llm-{args.model}.db")
    if not found:
        sys.exit(f"No consolidated {args.conv} in {args.cache}: run tests/bench/locomo_timeline.py --llm {args.model}.")
    settings = Settings()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "refold.db"
        shutil.copy(found[0], path)
        store = Store(path)
        with store.db.conn:
            store.db.execute("DELETE FROM summaries WHERE kind = 'running'")
        summaries = sm.SummaryStore(store)
        t0, calls = time.perf_counter(), 0
        Consolidator(store, None, None, settings).summarize_sessions(summaries.sessions_needing_summary())
        while (plan := sm.plan_fold(summaries, args.batch or settings.fold_batch)) is not None:
            with store.db.conn:
                sm.write_fold(store, plan, sm.fold(plan, settings.running_words), "facts", 0)
            calls += 1
        seconds = time.perf_counter() - t0
        running = summaries.running().text
        sessions = sorted(summaries.list("session"), key=lambda s: s.period_start)
        vocab = [words_of(s.text) for s in sessions]
        df = Counter(w for v in vocab for w in v)
        in_memory = words_of(running)
        kept = []
        for i, (s, v) in enumerate(zip(sessions, vocab)):
            own = {w for w in v if df[w] <= 3}
            share = len(own & in_memory) / max(1, len(own))
            kept.append(share >= 1 / 3)
            print(f"{i + 1:>3} {s.period_start[:10]} {'kept' if kept[-1] else '    '} {share:.2f}  {s.text[:70]}")
        store.db.conn.close()
    print(f"\nM_t ({len(running.split())} words, {calls} folds, {seconds:.0f} s): keeps {sum(kept)} of {len(kept)} sessions; "
          f"last kept: session {max([i + 1 for i, k in enumerate(kept) if k], default=0)}\n{running}")


if __name__ == "__main__":
    main()
