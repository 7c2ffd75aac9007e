"""Time to first token for a ~1,000-token prompt on a populated memory, and recall's share of it.

The memory is filled from a LoCoMo-format file, repeated with shifted dates until it holds at least
--units recall units (built once, cached under .bench-cache/). Each run asks a different ~1,000-token
question; the model's KV cache is cleared between runs so no prompt prefix is reused.

    python tests/bench/first_token.py --data ../shared/data/locomo/locomo_dev.json --units 10000 --runs 5
"""
from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
CACHE = ROOT / ".bench-cache"


def locomo_turns(path: Path):
    for conv in json.loads(path.read_text()):
        c = conv["conversation"]
        keys = sorted((k for k in c if re.fullmatch(r"session_\d+", k)), key=lambda k: int(k.split("_")[1]))
        for k in keys:
            yield [(t["speaker"], t["text"], "user" if t["speaker"] == c["speaker_a"] else "assistant")
                   for t in c[k]]


class MemoEmbedder:
    """An embedder that remembers every text it embedded: the repeated conversations cost their
    vectors once (their segment keys, which carry dates, still differ)."""

    def __init__(self, inner):
        self.inner, self.name, self.dim = inner, inner.name, inner.dim
        self.memo: dict = {}

    def embed(self, texts):
        import numpy as np

        missing = list(dict.fromkeys(t for t in texts if t not in self.memo))
        if missing:
            for t, v in zip(missing, self.inner.embed(missing)):
                self.memo[t] = v
        return np.stack([self.memo[t] for t in texts]) if texts else self.inner.embed([])


def populate(store, data: Path, units: int, count_units, embedder=None) -> None:
    """Repeat the conversations with shifted dates (continuing after the copies already in `store`) until
    `count_units()` reaches `units`."""
    sessions = list(locomo_turns(data))
    start = datetime(2020, 1, 1, tzinfo=timezone.utc)
    rep = store.db.execute("SELECT COUNT(*) FROM sessions WHERE title LIKE 'bench %'").fetchone()[0] // len(sessions)
    if count_units() < units and store.count("turns"):
        build_index(store, embedder)      # finish a copy an interrupted build left half indexed
    while count_units() < units:
        with store.db.conn:
            for i, turns in enumerate(sessions):
                when = start + timedelta(days=rep * 400 + i * 2)
                sid = store.db.execute("INSERT INTO sessions (title, started_at, source) VALUES (?, ?, 'import')",
                                       [f"bench {rep}-{i}", when.isoformat()]).lastrowid
                for j, (speaker, text, role) in enumerate(turns):
                    store.db.execute(
                        "INSERT INTO turns (session_id, role, speaker, text, created_at, source) "
                        "VALUES (?, ?, ?, ?, ?, 'import')",
                        [sid, role, speaker, text, (when + timedelta(minutes=j)).isoformat()])
        rep += 1
        build_index(store, embedder)
        print(f"  populated: {count_units()} units", flush=True)


def build_index(store, embedder=None) -> None:
    from assistant.wiring import build_memory_index

    build_memory_index(store, embedder)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/locomo/locomo_dev.json")
    ap.add_argument("--model", default="qwen-1.5b")
    ap.add_argument("--units", type=int, default=10000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--prompt-tokens", type=int, default=1000)
    ap.add_argument("--json", dest="json_out")
    ap.add_argument("--build-only", action="store_true", help="Populate the cached memory and stop.")
    args = ap.parse_args()

    from assistant import config
    from assistant.wiring import Options, build, count_recall_units

    CACHE.mkdir(exist_ok=True)
    db = CACHE / f"first_token_{args.units}.db"
    cfg = config.load()
    assistant = build(Options(db=db, model=args.model, config=cfg))
    t0 = time.perf_counter()
    populate(assistant.store, args.data, args.units, lambda: count_recall_units(assistant.store))
    print(f"memory: {count_recall_units(assistant.store)} segments, "
          f"{assistant.store.count('turns')} turns (built in {time.perf_counter() - t0:.0f} s this run)")
    if args.build_only:
        return
    model = assistant.wait_for_model()
    # As in the app once it is up: both models loaded. (A question asked in the first seconds after launch
    # also waits for the embedder to finish loading: that is startup, reported apart.)
    t_wait = time.perf_counter()
    assistant.recall.embedder.wait()
    startup_wait = time.perf_counter() - t_wait
    print(f"embedder ready {startup_wait:.2f} s after the chat model", flush=True)
    texts = [t for s in locomo_turns(args.data) for _, t, _ in s]
    rng = random.Random(0)
    rows = []
    for run in range(args.runs):
        words: list[str] = []
        while model.count_tokens(" ".join(words)) < args.prompt_tokens - 20:
            words += rng.choice(texts).split()
        message = " ".join(words) + "\n\nGiven all that, what did Caroline say about her plans?"
        model.llm.reset()  # no KV-cache reuse between runs
        t0 = time.perf_counter()
        ttft = []
        cancel = threading.Event()

        def on_token(_piece, t0=t0):
            if not ttft:
                ttft.append(time.perf_counter() - t0)
                cancel.set()  # only the first token matters here

        answer = assistant.answer(None, message, on_token=on_token, cancel=cancel)
        prompt_tokens = model.count_tokens(message)
        rows.append({"ttft_s": ttft[0], "recall_s": answer.recall_seconds,
                     "recall_share": answer.recall_seconds / ttft[0], "message_tokens": prompt_tokens,
                     "memories": len(answer.memories)})
        print(f"run {run + 1}: ttft {ttft[0]:.2f} s, recall {answer.recall_seconds * 1000:.1f} ms "
              f"({100 * rows[-1]['recall_share']:.2f}%), {len(answer.memories)} memories", flush=True)
    result = {"model": args.model, "units": count_recall_units(assistant.store), "runs": rows,
              "embedder_wait_after_model_s": startup_wait,
              "median_ttft_s": statistics.median(r["ttft_s"] for r in rows),
              "median_recall_s": statistics.median(r["recall_s"] for r in rows),
              "median_recall_share": statistics.median(r["recall_share"] for r in rows)}
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=2))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
