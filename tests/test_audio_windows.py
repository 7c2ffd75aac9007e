"""Time windows of "what did I miss" questions."""
from datetime import datetime, timedelta, timezone

import pytest

from audio.windows import (Window, away_window, detect_window, extract_topic, is_missed_question,
                           parse_window)

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


def test_no_window():
    assert parse_window("what is the capital of France?", NOW) is None
    assert parse_window("what did I miss?", NOW) is None


def test_window_iso_is_utc():
    w = parse_window("in the last 20 minutes", NOW)
    assert w.iso() == ("2025-03-04T14:10:00.000+00:00", "2025-03-04T14:30:00.000+00:00")
    assert w.label() == "15:10–15:30"


def test_while_i_was_away_is_the_latest_gap_in_chat_activity():
    activity = [at(9), at(9, 2), at(13, 10), at(13, 12), at(15, 25)]
    w = detect_window("what did I miss while I was away?", NOW, activity)
    assert (w.start, w.end, w.kind) == (at(13, 12), at(15, 25), "away")
    # Chatting for a few minutes since coming back does not hide the gap.
    w = detect_window("what did I miss while I was away?", NOW, activity + [at(15, 28)])
    assert (w.start, w.end) == (at(13, 12), at(15, 25))


def test_away_until_now_when_the_question_ends_the_gap():
    w = away_window([at(9), at(14)], NOW)
    assert (w.start, w.end) == (at(14), NOW)


def test_away_with_no_activity_falls_back():
    w = away_window([], NOW, fallback=timedelta(hours=12))
    assert (w.start, w.end, w.kind) == (NOW - timedelta(hours=12), NOW, "default")


def test_plain_what_did_i_miss_means_while_away():
    w = detect_window("What did I miss?", NOW, [at(10), at(11)])
    assert (w.start, w.end, w.kind) == (at(11), NOW, "away")


def test_explicit_window_wins_over_activity():
    w = detect_window("what did I miss in the last 20 minutes?", NOW, [at(10)])
    assert (w.start, w.end) == (NOW - timedelta(minutes=20), NOW)


@pytest.mark.parametrize("text, expected", [
    ("what did I miss?", True), ("What have I missed since 3pm", True), ("catch me up", True),
    ("what was said in the last hour?", True), ("did anyone mention the budget?", True),
    ("what did they say while I was out?", True), ("anything I missed?", True),
    ("what is the capital of France?", False), ("summarize our chat", False),
    ("what happened to the Roman empire?", False),
    ("Here are my notes from the trip. " * 8 + "I missed the bus twice. What should I pack next time?", False),
])
def test_is_missed_question(text, expected):
    assert is_missed_question(text) is expected


def test_weak_cue_needs_a_window():
    assert detect_window("what happened in the last hour?", NOW) is not None
    assert detect_window("what happened in 1066?", NOW) is None


@pytest.mark.parametrize("text, topic", [
    ("what did I miss about the budget in the last hour?", "the budget"),
    ("did anyone mention the server migration while I was away?", "server migration"),
    ("what did I miss in the last hour?", None),
    ("what did I miss while I was away?", None),
])
def test_topic(text, topic):
    w = detect_window(text, NOW, [at(10)])
    assert extract_topic(text, w) == topic


def test_window_dict():
    w = Window(at(14), at(15), "explicit", "between 2 and 3")
    assert w.to_dict()["start"] == "2025-03-04T13:00:00.000+00:00"
