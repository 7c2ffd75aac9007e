""""What did I miss" over a day of listening: window resolution + retrieval + prompt, before the model.

The memory holds --turns audio transcript turns (with clip rows) spread over 8 hours (09:00-17:00 UTC),
indexed with the real MiniLM embedder, plus the user's chat turns around an absence (14:30-16:40);
questions are asked at 17:00. It is built once and cached under .bench-cache/ (build time reported
separately). Each question is timed --runs times (median); the query embedding (only where a topic is
named) is included in the total and also shown on its own.

MiniLM (numpy) runs with --embedder-threads BLAS threads (default 1): on a busy 2-core host, MiniLM (then on
torch) took 0.3-1.6 s on one short query with 2 threads and 40 ms with 1.

    python tests/bench/audio_missed.py --turns 4000 --runs 5
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
CACHE = ROOT / ".bench-cache"
UTC = timezone.utc
START = datetime(2025, 3, 4, 9, 0, tzinfo=UTC)
NOW = START + timedelta(hours=8)

PEOPLE = ["Anna", "Ben", "Chloe", "David", "Maria", "Tom", "the manager", "someone", "the intern"]
TOPICS = ["the budget for next quarter", "the server migration", "lunch in the big room", "the new printer",
          "flights to Berlin", "the client demo on Friday", "the hiring plan", "the office move",
          "the quarterly report", "the broken coffee machine", "the security audit", "the team offsite"]
VERBS = ["said that", "asked about", "is worried about", "wants to postpone", "finished", "will present",
         "has questions about", "mentioned", "needs help with", "sent an update on"]
TAILS = ["before Thursday.", "again.", "this afternoon.", "after the call.", "next week.", "by email.", "."]


def sentence(rng: random.Random) -> str:
    return f"{rng.choice(PEOPLE).capitalize()} {rng.choice(VERBS)} {rng.choice(TOPICS)} {rng.choice(TAILS)}".replace(" .", ".")


def build(path: Path, turns: int, embedder) -> float:
    from audio.clips import SPEAKER
    from memory.clock import to_iso
    from memory.recall import TurnIndex
    from memory.store import Store

    t0 = time.perf_counter()
    store = Store(path)
    rng = random.Random(7)
    sid = store.new_session("Listening", source="audio", started_at=to_iso(START))
    step = (NOW - START) / turns
    with store.db.conn:
        for i in range(turns):
            at = START + step * i + timedelta(seconds=rng.uniform(0, 2))
            tid = store.db.execute(
                "INSERT INTO turns (session_id, role, speaker, text, created_at, source) VALUES (?, 'user', ?, ?, ?, 'audio')",
                [sid, SPEAKER, sentence(rng), to_iso(at)]).lastrowid
            store.db.execute(
                "INSERT INTO audio_clips (session_id, turn_id, path, started_at, ended_at) VALUES (?, ?, ?, ?, ?)",
                [sid, tid, f"/clips/{tid}.flac", to_iso(at), to_iso(at + timedelta(seconds=3))])
    chat = store.new_session("chat", started_at=to_iso(START))
    # The user chats now and then, and is away from 14:30 to 16:40.
    for h, m in ((9, 5), (10, 30), (11, 50), (13, 15), (14, 30), (16, 40), (16, 48), (16, 56)):
        at = START.replace(hour=h, minute=m)
        store.add_turn(chat, "user", "Draft a reply to the client about the demo", created_at=to_iso(at))
        store.add_turn(chat, "assistant", "Here is a draft.", created_at=to_iso(at + timedelta(seconds=30)))
    TurnIndex(store, embedder, batch=256).index_pending()
    store.close()
    return time.perf_counter() - t0


class TimedEmbedder:
    def __init__(self, inner):
        self.inner, self.name, self.dim, self.seconds = inner, inner.name, inner.dim, 0.0

    def embed(self, texts):
        t0 = time.perf_counter()
        try:
            return self.inner.embed(texts)
        finally:
            self.seconds += time.perf_counter() - t0


QUESTIONS = [
    "What did I miss in the last hour?",
    "What did I miss while I was away?",
    "What was said between 9 and 5?",
    "What did I miss about the server migration since 9am?",
    "Did anyone mention the budget in the last 3 hours?",
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--turns", type=int, default=4000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--embedder-threads", type=int, default=1)
    args = ap.parse_args()
    from threadpoolctl import threadpool_limits

    from assistant import missed
    from memory.embedder import SentenceTransformerEmbedder
    from memory.store import Store

    embedder = SentenceTransformerEmbedder(background=False)
    threadpool_limits(args.embedder_threads, user_api="blas")
    CACHE.mkdir(exist_ok=True)
    path = CACHE / f"audio_missed_{args.turns}.db"
    if not path.exists():
        tmp = path.with_suffix(".building")
        for f in tmp.parent.glob(tmp.name + "*"):
            f.unlink()
        secs = build(tmp, args.turns, embedder)
        for suffix in ("", "-wal", "-shm"):
            p = Path(str(tmp) + suffix)
            if p.exists():
                p.rename(Path(str(path) + suffix))
        print(f"built {args.turns} audio turns over 8 h (embedded with MiniLM) in {secs:.1f} s -> {path}")
    store = Store(path)
    print(f"memory: {store.count('turns')} turns ({args.turns} audio), {store.count('audio_clips')} clips")
    embedder.embed(["warm up"])
    timed = TimedEmbedder(embedder)
    print(f"embedder threads {args.embedder_threads}; median of {args.runs} runs; total = window + retrieval + prompt")
    for q in QUESTIONS:
        times, emb, r = [], [], None
        for _ in range(args.runs):
            timed.seconds = 0.0
            t0 = time.perf_counter()
            r = missed.gather(store, q, now=NOW, embedder=timed, tz=UTC)
            times.append(time.perf_counter() - t0)
            emb.append(timed.seconds)
        print(f"{statistics.median(times) * 1000:7.1f} ms total ({statistics.median(emb) * 1000:5.1f} ms query "
              f"embedding)  {q!r}: window {r.window.label()} ({r.window.kind}), "
              f"{r.heard_in_window} heard, {len(r.clips)} cited"
              + (f", topic {r.topic!r} (cited clips containing '{r.topic.split()[-1]}': "
                 f"{sum(r.topic.split()[-1] in c.text for c in r.clips)}/{len(r.clips)})" if r.topic else "")
              + f"  runs ms: {[round(x * 1000, 1) for x in times]}")
    store.close()


if __name__ == "__main__":
    main()
