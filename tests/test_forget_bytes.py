"""Forgetting proven at the byte level, with the real components: a real SQLite file (WAL, FTS5, sqlite-vec),
the real MiniLM embedder, a real FLAC clip and a real consolidation (facts summaries, running memory, journal).
A unique word said in chat, heard in the room and folded into the summaries is forgotten; then it (and the
vectors of its turns) is in neither the database file, its write-ahead log nor the clips folder, nor in recall, the journal or the running
memory, and a later consolidation does not bring it back."""
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from assistant.journal_export import render
from audio.clips import ClipStore
from audio.transcribe import Segment, Transcript
from memory.bank import SegmentRecall
from memory.consolidate import Consolidator
from memory.forget import forget, plan_forget
from memory.store import Store
from memory.summaries import SummaryStore
from tests.test_consolidation_fakes import SchemaLLM

WORD = "zorblax-7431"
NEEDLES = (b"zorblax", "zorblax".encode("utf-16-le"), b"ZORBLAX", b"Zorblax")


def raw_bytes(db: Path, clips: Path) -> dict[str, bytes]:
    out = {p.name: p.read_bytes() for p in (db, Path(f"{db}-wal")) if p.exists()}
    out.update({str(p): p.read_bytes() for p in clips.rglob("*") if p.is_file()})
    return out


def holding(files: dict[str, bytes]) -> list[str]:
    return [name for name, data in files.items() if any(n in data for n in NEEDLES)]


@pytest.fixture
def memory_with_the_word(tmp_path, real_embedder):
    db, clips = tmp_path / "data" / "assistant.db", tmp_path / "data" / "assistant-clips"
    store = Store(db)
    start = datetime(2025, 3, 3, 9, 0, tzinfo=timezone.utc)

    def chat(day, lines):
        t0 = start + timedelta(days=day)
        sid = store.new_session(title=None, started_at=t0.isoformat())
        for i, (role, text) in enumerate(lines):
            store.add_turn(sid, role, text, created_at=(t0 + timedelta(minutes=i)).isoformat())
        return sid

    chat(0, [("user", f"My new project is called {WORD} and I lead it."),
             ("assistant", f"Good luck with {WORD}!"),
             ("user", "I also bought a red bicycle for the commute.")])
    chat(1, [("user", "I am going to Porto in May with my sister."),
             ("assistant", "Porto in May is lovely.")])
    heard = store.new_session(source="audio", started_at=(start + timedelta(days=2)).isoformat())
    tone = (0.1 * np.sin(np.linspace(0, 2000, 16000))).astype(np.float32)
    ClipStore(store, clips).add(heard, tone, start + timedelta(days=2),
                                Transcript([Segment(0.0, 1.0, f"The {WORD} launch moved to Friday.")], "en", 1.0))
    Consolidator(store, real_embedder, SchemaLLM()).run()
    return store, db, clips


def test_a_forgotten_word_leaves_the_files_recall_the_journal_and_the_running_memory(memory_with_the_word,
                                                                                     real_embedder):
    store, db, clips = memory_with_the_word
    recall = SegmentRecall(store, real_embedder)
    assert WORD in SummaryStore(store).running().text
    assert WORD in render(store, "md") and any(WORD in m.text for m in recall.search(WORD, 600))
    assert holding(raw_bytes(db, clips))          # the test can see the word before

    plan = plan_forget(store, phrase=WORD)
    assert (plan.turns, plan.clips) == (3, 1) and plan.segments >= 2 and plan.summaries >= 3
    vectors = [v[:8].tobytes() for v in recall.turn_index.vectors.get(plan.turn_ids).values()]
    assert len(vectors) == 3 and all(any(v in data for data in raw_bytes(db, clips).values()) for v in vectors)
    forget(store, plan)

    assert holding(raw_bytes(db, clips)) == []
    assert not any(v in data for v in vectors for data in raw_bytes(db, clips).values())   # their vectors too
    assert not list(clips.rglob("*.flac"))
    assert all(WORD not in m.text for m in recall.search(WORD, 600))
    for fmt in ("md", "json", "html"):
        assert "zorblax" not in render(store, fmt).lower(), fmt
    assert SummaryStore(store).running() is None            # hidden until rebuilt
    # the rest stays, and the next consolidation rebuilds the summaries without the word
    assert any("bicycle" in t.text for s in store.sessions() for t in store.turns(s.id))
    Consolidator(store, real_embedder, SchemaLLM()).run()
    running = SummaryStore(store).running().text
    assert "bicycle" in running and "Porto" in running and "zorblax" not in running.lower()
    assert "zorblax" not in render(store, "md").lower()
    store.close()
    assert holding(raw_bytes(db, clips)) == []
