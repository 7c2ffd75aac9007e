"""Days named in questions, and recall that favours the memories of those days."""
from datetime import date, datetime, timezone

import pytest

from memory.bank import RecallParams, SegmentRecall, segment_pending
from memory.when import named_days, talk_window
from tests.test_segments import add_session

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)   # a Thursday


@pytest.mark.parametrize("text, first, last, anchor", [
    ("What did Audrey eat for dinner on October 24, 2023?", date(2023, 10, 24), date(2023, 10, 24), None),
    ("What book did Tim finish on 8th December, 2023?", date(2023, 12, 8), date(2023, 12, 8), None),
    ("When did Joanna make a dessert, the Friday before 14September, 2022?", date(2022, 9, 9), date(2022, 9, 9),
     date(2022, 9, 14)),
    ("Where was Tim in the week before 16 November 2023?", date(2023, 11, 9), date(2023, 11, 15), date(2023, 11, 16)),
    ("What did they do over the weekend before 4th October, 2023?", date(2023, 9, 30), date(2023, 10, 1),
     date(2023, 10, 4)),
    ("What did they plan on the Saturday after October 28, 2023?", date(2023, 11, 4), date(2023, 11, 4),
     date(2023, 10, 28)),
    ("Where did Joanna travel to in July 2022?", date(2022, 7, 1), date(2022, 7, 31), None),
    ("Which tournament did Nate win in the beginning of November 2022?", date(2022, 11, 1), date(2022, 11, 11), None),
    ("Which country did James visit in 2021?", date(2021, 1, 1), date(2021, 12, 31), None),
    ("what did we talk about yesterday", date(2026, 11, 25), date(2026, 11, 25), None),
    ("the recipe from last Tuesday", date(2026, 11, 24), date(2026, 11, 24), None),
    ("what was I doing three weeks ago", date(2026, 11, 2), date(2026, 11, 8), None),
    ("anything from last week?", date(2026, 11, 16), date(2026, 11, 22), None),
    ("notes from 2026-03-02", date(2026, 3, 2), date(2026, 3, 2), None),
    ("What did I say on 2 December?", date(2025, 12, 2), date(2025, 12, 2), None),   # the latest one past
    ("what did I plan in March", date(2026, 3, 1), date(2026, 3, 31), None),
])
def test_named_days(text, first, last, anchor):
    a, b, anc, phrase = named_days(text, NOW)
    assert (a, b, anc) == (first, last, anchor)
    assert phrase and phrase.lower() in text.lower()


@pytest.mark.parametrize("text", [
    "May I ask you something?", "What is my sister's name?", "I have 2 dogs", "How do I cook rice?",
    "Call me at 10", "the 2022 model of my car"])
def test_questions_that_name_no_day(text):
    assert named_days(text, NOW) is None


def test_talk_window_covers_the_anchor_and_the_days_after():
    w = talk_window("Where was Tim in the week before 16 November 2023?", NOW)
    since, until = w.iso()
    # from a day before the week to three days after the anchor, the day it was most likely told
    assert since.startswith("2023-11-08") and until.startswith("2023-11-20")
    w = talk_window("Where did Joanna travel to in July 2022?", NOW)
    assert w.iso()[0].startswith("2022-06-30") and w.iso()[1].startswith("2022-08-08")
    assert w.label() == "30 Jun–7 Aug 2022"
    # nothing is dated after today
    w = talk_window("what did we talk about yesterday?", NOW)
    assert w.label() == "24–26 Nov 2026" and w.iso()[1].startswith("2026-11-27")


DAYS = {
    "2024-03-01": [("user", "I went hiking in the hills with my brother."),
                   ("assistant", "Hiking with your brother sounds like a lovely day.")],
    "2024-03-09": [("user", "I went hiking again, this time alone by the lake."),
                   ("assistant", "A hike by the lake, alone, can be very calming.")],
    "2024-03-20": [("user", "Another hike today, up the big mountain with friends."),
                   ("assistant", "Hiking the big mountain with friends must have been hard work.")],
}


@pytest.mark.real
def test_recall_prefers_the_memory_of_the_day_the_question_names(store, real_embedder):
    sessions = {day: add_session(store, turns, started=f"{day}T10:00:00+00:00") for day, turns in DAYS.items()}
    segment_pending(store, real_embedder, mode="fast")
    now = datetime(2024, 4, 1, 12, tzinfo=timezone.utc)
    on = SegmentRecall(store, real_embedder, incremental=False)
    off = SegmentRecall(store, real_embedder, incremental=False, params=RecallParams(time_weight=0))
    for day, sid in sessions.items():
        d = date.fromisoformat(day)
        question = f"Where did I go hiking on {d.day} {d.strftime('%B')}?"
        best = on.search(question, 60, now=now)[0]
        assert best.session_id == sid, (question, best)
    # without the dated list, a question whose words fit another day better gets that day first
    question = "Where did I go hiking with my brother on 20 March?"
    assert off.search(question, 60, now=now)[0].session_id == sessions["2024-03-01"]
    assert on.search(question, 60, now=now)[0].session_id == sessions["2024-03-20"]
    # a question that names no day ranks as before
    plain = "Where did I go hiking with my brother?"
    assert [m.id for m in on.search(plain, 200, now=now)] == [m.id for m in off.search(plain, 200, now=now)]
