"""Concurrency: the chat, a consolidation and listening write one database at once, each through its own
connection as the app wires them (the chat's connection is the app's, the other two are workers'), with
the real SQLite file and the fake embedder and speech model. Every write is counted; at the end every
write is there, none failed ("database is locked" or another error), and the derived rows hold.

    python -m tests.stress --minutes 5      # the figure in docs/reliability.md
"""
from __future__ import annotations

import argparse
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np


def run(db: Path, seconds: float) -> dict:
    from audio.ingest import AudioIngestor
    from audio.transcribe import Segment, Transcript
    from audio.vad import SAMPLE_RATE, Utterance
    from memory.bank import IncrementalSegmenter, SegmentBank, segment_pending
    from memory.recall import TurnIndex
    from memory.store import Store
    from tests.crash.harness import check
    from tests.fakes import FakeEmbedder

    Store(db).close()
    stop = time.monotonic() + seconds
    errors: list[str] = []
    written = {"user turns": 0, "answers": 0, "clips": 0, "consolidations": 0}

    def guarded(name, fn):
        def body():
            try:
                fn()
            except BaseException as e:   # noqa: BLE001 - counted and reported
                errors.append(f"{name}: {type(e).__name__}: {e}")
        return threading.Thread(target=body, name=name)

    def chat():
        store, emb = Store(db), FakeEmbedder()
        live = IncrementalSegmenter(SegmentBank(store, emb))
        index = TurnIndex(store, emb)
        sid = store.new_session("chat")
        i = 0
        while time.monotonic() < stop:
            store.add_turn(sid, "user", f"question {i} about the garden and the tomatoes")
            written["user turns"] += 1
            answer = store.add_turn(sid, "assistant", "", status="streaming")
            for k in range(3):
                store.update_turn(answer, f"answer {i} part {k}")
            store.update_turn(answer, f"answer {i}: water the tomatoes in the morning", status="complete")
            written["answers"] += 1
            index.index_pending()
            live.update(sid)
            i += 1
            if i % 20 == 0:
                sid = store.new_session("chat")
        store.close()

    def consolidation():
        store, emb = Store(db, worker=True), FakeEmbedder()
        while time.monotonic() < stop:
            TurnIndex(store, emb).index_pending()
            segment_pending(store, emb, mode="fast")
            written["consolidations"] += 1
            time.sleep(0.05)
        store.close()

    class Heard:
        language = "en"

        def __init__(self):
            self.n = 0

        def transcribe(self, audio, **kw):
            self.n += 1
            d = len(audio) / SAMPLE_RATE
            return Transcript([Segment(0.0, d, f"someone said the plumber comes at {self.n}")], "en", d)

    def listening():
        store = Store(db, worker=True)
        index = TurnIndex(store, FakeEmbedder()).index_pending
        ing = AudioIngestor(store, Heard(), db.parent / "clips", index=index)
        sid = ing.start_session(datetime.now(timezone.utc))
        t0 = datetime.now(timezone.utc)
        audio = (np.sin(np.arange(SAMPLE_RATE) / 8.0) * 0.2).astype(np.float32)
        k = 0
        while time.monotonic() < stop:
            clips = ing.add_utterances(sid, [(Utterance(0, len(audio), audio), t0 + timedelta(seconds=k))])
            written["clips"] += sum(c is not None for c in clips)
            k += 1
        store.close()

    threads = [guarded("chat", chat), guarded("consolidation", consolidation), guarded("listening", listening)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    s = Store(db, worker=True)
    stored = {"user turns": s.db.execute("SELECT COUNT(*) FROM turns WHERE role = 'user' AND source = 'chat'").fetchone()[0],
              "answers": s.db.execute("SELECT COUNT(*) FROM turns WHERE role = 'assistant' AND status = 'complete'").fetchone()[0],
              "clips": s.count("audio_clips")}
    s.db.conn.close()
    lost = {k: written[k] - stored[k] for k in stored if written[k] != stored[k]}
    return {"seconds": seconds, "written": written, "stored": stored, "lost": lost, "errors": errors,
            "problems": check(db)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--db", type=Path)
    args = ap.parse_args(argv)
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        r = run(args.db or Path(d) / "stress.db", args.minutes * 60)
    print(r)
    return 1 if r["lost"] or r["errors"] or r["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
