"""The journal day by day (assistant.journal) and `assistant export journal` in Markdown, JSON and HTML,
through the real CLI on a real SQLite file consolidated for real (the model is scripted and wrong on
purpose: nothing it writes may reach the journal)."""
from __future__ import annotations

import json
import time

import pytest
from click.testing import CliRunner

from assistant.cli import cli
from assistant.journal import journal_days
from memory.store import Store
from tests import memory_sample


@pytest.fixture
def utc(monkeypatch):
    """Local time is UTC here, so that times and days are the ones written below."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def sample(tmp_path, utc):
    db = tmp_path / "data" / "sample.db"
    store = Store(db)
    ids = memory_sample.build(store, tmp_path / "clips")
    store.close()
    return db, ids


def run(db, *args) -> str:
    r = CliRunner().invoke(cli, ["--db", str(db), *args])
    assert r.exit_code == 0, r.output
    return r.output


def test_a_day_says_what_you_did_decided_planned_and_said_who_was_there_and_what_was_heard(sample):
    db, ids = sample
    store = Store(db)
    days = {d.day: d for d in journal_days(store)}
    store.close()
    assert list(days) == ["2025-03-03", "2025-03-05"]
    mon, wed = days["2025-03-03"], days["2025-03-05"]
    assert mon.title == "Monday 3 March 2025"
    assert [x.text for x in mon.yours("did")] == ["You bought a new cello bow yesterday.",
                                                  "You told Caroline about the new job."]
    assert [x.text for x in mon.yours("planned")] == ["Your sister Anna has a dentist appointment on Friday."]
    assert [x.text for x in mon.yours("said")] == ["You're allergic to penicillin.",
                                                   "You drive your old car to work every day."]
    assert [x.text for x in mon.others] == ["Caroline: My son Leo turned 7 yesterday."]
    assert [(x.time, x.text, x.clip_id) for x in mon.heard] == \
        [("14:05", memory_sample.HEARD, ids["heard"]["clip"])]
    assert mon.people == ["Caroline", "Anna", "Leo"]
    assert [x.text for x in wed.yours("decided")] == ["You decided to sell your car and cycle to work."]
    assert [x.text for x in wed.yours("planned")] == ["You will meet your friend Maya for lunch tomorrow."]
    assert wed.people == ["Maya"]
    [change] = wed.changes
    assert (change.label, change.earlier, change.later) == \
        ("Changed", "You drive your old car to work every day.", "You decided to sell your car and cycle to work.")
    assert [s.source for s in mon.sessions] == ["chat", "audio", "import"]


def test_the_assistants_words_and_questions_never_reach_the_journal(sample):
    db, _ = sample
    for fmt in ("md", "html", "json"):
        out = run(db, "export", "journal", "--format", fmt)
        for said_by_the_assistant in ("I am allergic", "river park", "train", "Cycling", "Olive Grove",
                                      "Driving is convenient", "as it happens"):
            assert said_by_the_assistant not in out, (fmt, said_by_the_assistant)


def test_markdown_journal_reads_by_day(sample):
    db, _ = sample
    md = run(db, "export", "journal")
    assert md.index("## Monday 3 March 2025") < md.index("## Wednesday 5 March 2025")
    monday = md.split("## Wednesday")[0]
    assert "### What you did\n\n- You bought a new cello bow yesterday.\n" in monday
    assert "### What was heard\n\n- 14:05 The budget meeting moved to Thursday afternoon.\n" in monday
    assert "People: Caroline, Anna, Leo." in monday
    assert ("- Changed since 3 Mar 2025: “You drive your old car to work every day.” → “You decided to sell your "
            "car and cycle to work.”") in md
    assert "User:" not in md and "Heard in the room:" not in md


def test_since_and_until_choose_the_days(sample, tmp_path):
    db, _ = sample
    out = tmp_path / "wed.json"
    run(db, "export", "journal", "--format", "json", "--since", "2025-03-04", "--until", "2025-03-06",
        "--output", str(out))
    data = json.loads(out.read_text())
    assert data["format"] == "assistant-journal" and data["version"] == 1
    assert [d["day"] for d in data["days"]] == ["2025-03-05"]
    assert data["days"][0]["lines"][0]["text"] == "You decided to sell your car and cycle to work."
    only_monday = run(db, "export", "journal", "--until", "2025-03-04")
    assert "Monday 3 March" in only_monday and "Wednesday" not in only_monday


def test_a_bad_date_is_one_sentence(sample):
    db, _ = sample
    r = CliRunner().invoke(cli, ["--db", str(db), "export", "journal", "--since", "soonish"])
    assert r.exit_code == 2 and "--since must be a day as YYYY-MM-DD" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(cli, ["--db", str(db), "export", "journal", "--since", "2025-03-05",
                                 "--until", "2025-03-01"])
    assert r.exit_code == 2 and "must be before --until" in r.output


def test_forgotten_turns_leave_the_journal(sample):
    """A summary whose turns were forgotten is stale: nothing of it is shown, not even from other lines."""
    db, _ = sample
    store = Store(db)
    with store.db.conn:
        store.db.execute("DELETE FROM turns WHERE text LIKE 'I bought a new cello bow%'")
    store.close()
    md = run(db, "export", "journal")
    assert "cello" not in md and "allergic to penicillin" not in md      # the same session's summary is stale
    assert "1 conversation is not in the journal yet" in md
    assert "You decided to sell your car" in md


def test_an_empty_memory_says_how_the_journal_is_written(tmp_path, utc):
    out = run(tmp_path / "empty.db", "export", "journal", "--format", "html")
    assert "Nothing yet: the journal is written by assistant consolidate." in out


def test_exports_are_private_files(sample, tmp_path):
    db, _ = sample
    for args in (("journal", "--format", "html"), ("transcripts", "--format", "jsonl")):
        out = tmp_path / f"{args[0]}.out"
        run(db, "export", *args, "--output", str(out))
        assert out.stat().st_mode & 0o777 == 0o600, args


def test_a_fact_said_twice_in_a_day_is_shown_once(tmp_path, utc):
    from datetime import timedelta

    from memory.consolidate import Consolidator, Settings
    from tests.fakes import FakeEmbedder
    from tests.test_facts import ConfusedLLM, chat

    store = Store(tmp_path / "twice.db")
    for hours in (0, 3):
        chat(store, memory_sample.WEDNESDAY + timedelta(hours=hours), memory_sample.SECOND)
    assert Consolidator(store, FakeEmbedder(), ConfusedLLM(), Settings(min_similarity=0.05)).run().status == "done"
    [day] = journal_days(store)
    store.close()
    assert [x.text for x in day.yours("decided")] == ["You decided to sell your car and cycle to work."]
    assert len(day.sessions) == 2


@pytest.mark.parametrize("words, kind", [
    ("I decided to sell my car.", "decided"), ("We chose the blue tiles.", "decided"),
    ("I'm flying to Lisbon next week.", "planned"), ("I will call the plumber.", "planned"),
    ("I have a dentist appointment on Friday.", "planned"),
    ("I bought a new cello bow.", "did"), ("I've started learning the cello.", "did"),
    ("We finally finished the kitchen.", "did"), ("I walked to work.", "did"),
    ("I have a dog called Biscuit.", "said"), ("I need a new phone.", "said"),
    ("I'm allergic to penicillin.", "said"), ("My sister Anna works as a pilot.", "said"),
])
def test_the_users_lines_are_grouped_by_what_they_say(words, kind):
    from assistant.journal import kind_of

    assert kind_of(words) == kind


def test_what_was_heard_in_the_room_is_heard_with_its_time_and_the_room_is_no_person(tmp_path, utc):
    """Listening stores what it heard under the speaker "Room": the journal lists it under what was heard,
    with the time it was heard; the people are those named (Maria named herself), never the room, and a
    dog is no person."""
    from datetime import timedelta

    from audio.clips import SPEAKER
    from memory.clock import to_iso
    from memory.consolidate import Consolidator, Settings
    from tests.fakes import FakeEmbedder
    from tests.test_consolidation_fakes import add_segment
    from tests.test_facts import ConfusedLLM, chat

    store = Store(tmp_path / "room.db")
    monday = memory_sample.MONDAY
    chat(store, monday, [("user", "I have a golden retriever called Rex."), ("assistant", "Lovely!"),
                         ("user", "I had lunch with Priya today.")])
    at = monday + timedelta(hours=5, minutes=12)
    sid = store.new_session(title="Listening", source="audio", started_at=to_iso(at))
    said = "Hi, this is Maria from the design team. I'm meeting Tom at the station tomorrow."
    tid = store.add_turn(sid, "user", said, source="audio", speaker=SPEAKER, created_at=to_iso(at))
    add_segment(store, sid, [tid])
    with store.db.conn:
        store.db.execute("INSERT INTO segmentation_log (session_id, last_turn_id, segments, method, done_at)"
                         " VALUES (?, ?, 1, 'test', ?)", [sid, tid, to_iso(at)])
    assert Consolidator(store, FakeEmbedder(), ConfusedLLM(), Settings(min_similarity=0.05)).run().status == "done"
    [day] = journal_days(store)
    store.close()
    assert day.others == []
    assert [(x.time, x.text) for x in day.heard] == [("14:12", "Hi, this is Maria from the design team."),
                                                     ("14:12", "I'm meeting Tom at the station tomorrow.")]
    assert day.people == ["Maria", "Priya", "Tom"]
    md = run(tmp_path / "room.db", "export", "journal")
    assert "People: Maria, Priya, Tom." in md and "Room" not in md
    assert "### What was heard\n\n- 14:12 Hi, this is Maria from the design team.\n" in md
