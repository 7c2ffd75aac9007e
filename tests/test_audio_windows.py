"""Time windows of "what did I miss" questions."""
from datetime import datetime, timedelta, timezone

import pytest

from audio.windows import Window, away_window, parse_window

TZ = timezone(timedelta(hours=1))              # clock times are read in now's time zone
NOW = datetime(2025, 3, 4, 15, 30, tzinfo=TZ)  # a Tuesday, 15:30 local


def at(h, m=0, day=0):
    return NOW.replace(hour=h, minute=m, second=0, microsecond=0) + timedelta(days=day)


@pytest.mark.parametrize("text, start, end", [
    ("what did I miss in the last 20 minutes?", NOW - timedelta(minutes=20), NOW),
    ("What did I miss in the last hour", NOW - timedelta(hours=1), NOW),
    ("anything said over the past 2 hours?", NOW - timedelta(hours=2), NOW),
    ("what was said in the last half hour", NOW - timedelta(minutes=30), NOW),
    ("what did I miss in the last couple of hours", NOW - timedelta(hours=2), NOW),
    ("what did I miss in the last 90 min", NOW - timedelta(minutes=90), NOW),
    ("what was said 10 minutes ago", NOW - timedelta(minutes=10), NOW),
    ("what did I miss since 3pm?", at(15), NOW),
    ("what did I miss since 3", at(15), NOW),             # the latest 3 o'clock that has passed
    ("what did I miss since 4", at(4), NOW),              # 16:00 has not come yet: 04:00
    ("since 9:15 am", at(9, 15), NOW),
    ("since 14:05", at(14, 5), NOW),
    ("since noon", at(12), NOW),
    ("what was said between 2 and 4", at(14), NOW),       # 14:00-16:00, cut at now
    ("between 2 and 3", at(14), at(15)),
    ("between 2 and 3pm", at(14), at(15)),
    ("between 9am and 11", at(9), at(11)),
    ("between 11 and 1", at(11), at(13)),
    ("between 14:00 and 14:45", at(14), at(14, 45)),
    ("from 10 to 11:30", at(10), at(11, 30)),
    ("between 8pm and 10pm", at(20, day=-1), at(22, day=-1)),  # tonight's has not happened: yesterday's
    ("anything this morning?", at(6), at(12)),
    ("what did I miss today", at(0), NOW),
    ("what happened yesterday", at(0, day=-1), at(0)),
])
def test_explicit_windows(text, start, end):
    w = parse_window(text, NOW)
    assert w is not None, text
    assert (w.start, w.end) == (start, end), (text, w.label())
    assert w.kind == "explicit"


def test_a_part_of_the_day_asked_for_before_it_began_today_is_the_one_just_gone():
    one_am = NOW.replace(hour=1, minute=26)
    w = parse_window("anything I missed this morning?", one_am)
    assert (w.start, w.end) == (at(6, day=-1), at(12, day=-1)) and w.kind == "explicit"
    w = parse_window("what was said this evening", one_am)
    assert (w.start, w.end) == (at(18, day=-1), at(0)), w.label()
    assert parse_window("anything this afternoon?", NOW).start == at(12)      # begun today: today's
    # the answer says which day: "between 12:00 and 18:00" read as a window still to come
    ten = NOW.replace(hour=10, minute=23)
    w = parse_window("did I miss anything this afternoon?", ten)
    assert (w.start, w.end) == (at(12, day=-1), at(18, day=-1))
    assert w.label(NOW.tzinfo) == "yesterday 12:00–18:00"
    assert w.reason() == '"this afternoon": not begun yet today, so yesterday\'s'
    assert not parse_window("anything this afternoon?", NOW).yesterday


def test_the_window_says_why_in_words():
    assert parse_window("anything I missed this morning?", NOW).reason() == '"this morning"'
    assert away_window([], NOW).reason() == "no time named, so the last 12 hours"
    assert away_window([NOW - timedelta(hours=2)], NOW).reason() == "while you were away"


def test_no_window():
    assert parse_window("what is the capital of France?", NOW) is None
    assert parse_window("what did I miss?", NOW) is None


def test_window_iso_is_utc():
    w = parse_window("in the last 20 minutes", NOW)
    assert w.iso() == ("2025-03-04T14:10:00.000+00:00", "2025-03-04T14:30:00.000+00:00")
    assert w.label() == "15:10–15:30"


def test_away_runs_from_the_last_activity_before_the_latest_gap_to_now():
    activity = [at(9), at(9, 2), at(13, 10), at(13, 12), at(15, 25)]
    w = away_window(activity, NOW)
    assert (w.start, w.end, w.kind) == (at(13, 12), NOW, "away")
    # Chatting for a few minutes since coming back does not hide the gap.
    w = away_window(activity + [at(15, 28)], NOW)
    assert (w.start, w.end) == (at(13, 12), NOW)


def test_away_until_now_when_the_question_ends_the_gap():
    w = away_window([at(9), at(14)], NOW)
    assert (w.start, w.end) == (at(14), NOW)


def test_away_with_no_gap_is_the_last_hours_and_says_so():
    for activity in ([], [at(15, 25), at(15, 27)]):
        w = away_window(activity, NOW, fallback=timedelta(hours=12))
        assert (w.start, w.end, w.kind, w.phrase) == (NOW - timedelta(hours=12), NOW, "default",
                                                      "in the last 12 hours")


def test_window_dict():
    w = Window(at(14), at(15), "explicit", "between 2 and 3")
    assert w.to_dict()["start"] == "2025-03-04T13:00:00.000+00:00"
