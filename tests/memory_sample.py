"""A small memory with every kind of thing in it, consolidated for real (the scripted model of
tests/test_facts.py): two days of chats, a conversation heard in the room with its clip, an imported chat
with named people, and a timeline link where a plan changed."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import numpy as np

from memory.clock import to_iso
from memory.consolidate import Consolidator, Settings
from tests.fakes import FakeEmbedder
from tests.test_consolidation_fakes import add_segment
from tests.test_facts import ConfusedLLM, chat

MONDAY = datetime(2025, 3, 3, 9, 0, tzinfo=timezone.utc)
WEDNESDAY = MONDAY + timedelta(days=2)
FIRST = [("user", "My sister Anna has a dentist appointment on Friday, and I'm allergic to penicillin."),
         ("assistant", "Noted. I am allergic to penicillin too, as it happens."),
         ("user", "I drive my old car to work every day."),
         ("assistant", "Driving is convenient. I suggest you try the river park on weekends."),
         ("user", "I bought a new cello bow yesterday.")]
SECOND = [("user", "I decided to sell my car and cycle to work."),
          ("assistant", "Cycling is healthy! You could also take the train."),
          ("user", "I will meet my friend Maya for lunch tomorrow.")]
HEARD_AT = MONDAY.replace(hour=14, minute=5)
HEARD = "The budget meeting moved to Thursday afternoon."


def heard(store, clips_dir, when: datetime = HEARD_AT) -> dict:
    """A session of room audio: one clip (a real FLAC file) and its transcript turn."""
    from audio.clips import SPEAKER, write_flac   # the speaker listening gives what it heard

    sid = store.new_session(title="Listening", source="audio", started_at=to_iso(when))
    tid = store.add_turn(sid, "user", HEARD, source="audio", speaker=SPEAKER, created_at=to_iso(when))
    path = clips_dir / "2025-03-03" / "140500-000-abcdef.flac"
    write_flac(path, (0.1 * np.sin(np.linspace(0, 800, 16000))).astype(np.float32))
    with store.db.conn:
        clip = store.db.execute(
            "INSERT INTO audio_clips (session_id, turn_id, path, started_at, ended_at, sample_rate, language, "
            "segments) VALUES (?, ?, ?, ?, ?, 16000, 'en', ?)",
            [sid, tid, str(path), to_iso(when), to_iso(when + timedelta(seconds=1)),
             json.dumps([{"start": 0.0, "end": 1.0, "text": HEARD}])]).lastrowid
    add_segment(store, sid, [tid])
    with store.db.conn:
        store.db.execute("INSERT INTO segmentation_log (session_id, last_turn_id, segments, method, done_at)"
                         " VALUES (?, ?, 1, 'test', ?)", [sid, tid, to_iso(when)])
    return {"session": sid, "turn": tid, "clip": clip, "path": path}


def imported(store) -> int:
    when = MONDAY.replace(hour=20)
    sid = store.new_session(title="Evening call", source="import", started_at=to_iso(when),
                            external_id="sample:1")
    ids = [store.add_turn(sid, role, text, source="import", speaker=who, created_at=to_iso(when))
           for role, who, text in [("user", "User", "I told Caroline about the new job."),
                                   ("assistant", "Caroline", "My son Leo turned 7 yesterday.")]]
    add_segment(store, sid, ids)
    with store.db.conn:
        store.db.execute("INSERT INTO segmentation_log (session_id, last_turn_id, segments, method, done_at)"
                         " VALUES (?, ?, 1, 'test', ?)", [sid, ids[-1], to_iso(when)])
    return sid


def build(store, clips_dir) -> dict:
    """The sample, consolidated; returns the ids a test needs."""
    s1 = chat(store, MONDAY, FIRST, segments=2)
    s2 = chat(store, WEDNESDAY, SECOND)
    clip = heard(store, clips_dir)
    s3 = imported(store)
    rep = Consolidator(store, FakeEmbedder(), ConfusedLLM(), Settings(min_similarity=0.05)).run()
    assert rep.status == "done", rep.error
    # the plan changed: the car of Monday's second segment, the bike of Wednesday
    seg_car = store.db.execute("SELECT segment_id FROM segment_turns st JOIN turns t ON t.id = st.turn_id "
                               "WHERE t.text LIKE 'I drive%'").fetchone()[0]
    seg_bike = store.db.execute("SELECT segment_id FROM segment_turns st JOIN turns t ON t.id = st.turn_id "
                                "WHERE t.text LIKE 'I decided%'").fetchone()[0]
    with store.db.conn:
        store.db.execute("DELETE FROM links WHERE earlier_id = ? AND later_id = ?", [seg_car, seg_bike])
        store.db.execute("INSERT INTO links (earlier_id, later_id, label, earlier_at, later_at, similarity, method,"
                         " created_at) VALUES (?, ?, 'Changed', ?, ?, 0.8, 'test', ?)",
                         [seg_car, seg_bike, to_iso(MONDAY), to_iso(WEDNESDAY), to_iso(WEDNESDAY)])
    return {"chats": [s1, s2], "heard": clip, "imported": s3, "changed": (seg_car, seg_bike)}
