"""The "what did I miss" answer: timed lines built from the transcripts, speakers who named themselves,
long talk shortened by the model only when its sentence keeps the names and numbers, and no prompt
wording in the answer (fake model, clips stored without Whisper)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from assistant import missed
from assistant.config import Config
from assistant.routes import default_routes
from assistant.core import Assistant
from audio.clips import ClipStore
from audio.transcribe import SAMPLE_RATE, Segment, Transcript
from memory.recall import TurnRecall
from memory.store import Store
from tests.fakes import FakeEmbedder, FakeLLM

UTC = timezone.utc
NOW = datetime(2025, 3, 4, 14, 0, tzinfo=UTC)
LONG = ("Hello everyone, this is Maria from accounting. The budget review moved from Wednesday to Thursday "
        "at 3 pm in room 12, so please send me your spending numbers before Wednesday evening, and bring "
        "the printed report with you.")
# What the model was told: none of it may reach an answer.
PROMPT_WORDS = ["Shorten", "speech below", "at most", "Keep every", "Write only", "transcript", "the user",
                "What the user was doing", "listed under", "Question:", "Time window"]


def heard(store, clips_dir, items, session=None, now=NOW):
    """Clips as if heard: (minutes before `now`, seconds long, text)."""
    cs = ClipStore(store, clips_dir)
    sid = session or store.new_session("Recording", source="audio", started_at=(now - timedelta(hours=5)).isoformat(),
                                       external_id=f"file:{len(items)}:{items[0][2][:10]}")
    return [cs.add(sid, np.zeros(int(s * SAMPLE_RATE), np.float32), now - timedelta(minutes=m),
                   Transcript([Segment(0, s, text)], "en", s)) for m, s, text in items]


def chat(store, *minutes):
    sid = store.new_session("chat", started_at=(NOW - timedelta(minutes=max(minutes))).isoformat())
    for m in minutes:
        store.add_turn(sid, "user", f"a message {m} minutes ago", created_at=(NOW - timedelta(minutes=m)).isoformat())


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "a.db")
    yield s
    s.close()


def ask(store, text, llm=None):
    return missed.answer_missed(store, llm, text, now=NOW, embedder=FakeEmbedder(), tz=UTC)


def no_prompt_words(text):
    return not any(w.lower() in text.lower() for w in PROMPT_WORDS)


def test_lines_have_times_and_the_speakers_who_named_themselves(store, tmp_path):
    heard(store, tmp_path, [(40, 3, "The printer on the second floor is broken."),
                            (10, 4, "Hi, it's Tom. Your package is at the front desk.")])
    r = ask(store, "What did I miss in the last hour?", FakeLLM(["unused"]))
    assert r.text.splitlines() == [
        "Between 13:00 and 14:00, I heard 2 things:",
        "- 13:20: The printer on the second floor is broken.",
        "- 13:50 Tom: Hi, it's Tom. Your package is at the front desk."]


def test_a_long_stretch_is_shortened_when_the_sentence_keeps_names_and_numbers(store, tmp_path):
    heard(store, tmp_path, [(30, 20, LONG)])
    short = "Maria says the budget review moved to Thursday at 3 pm in room 12; send numbers by Wednesday."
    llm = FakeLLM([short])
    r = ask(store, "catch me up", llm)
    assert r.text.splitlines()[1] == f"- 13:30 Maria: {short}"
    assert r.shortened == 1 and llm.prompts[0][1]["content"] == LONG


@pytest.mark.parametrize("reply", [
    "The budget review moved to Thursday.",                          # drops Maria, 3 and 12
    "Maria moved the review from Wednesday to Thursday at 3 pm in room 12 for Sam.",   # a name not said
    "Maria moved the review from Wednesday to Thursday at 3 pm in room 12, for 4 people.",  # a number
    "Here is the sentence: Maria moved the review to Thursday at 3 pm in room 12, Wednesday.",
    "",
])
def test_otherwise_the_words_themselves_are_quoted(store, tmp_path, reply):
    heard(store, tmp_path, [(30, 20, LONG)])
    r = ask(store, "catch me up", FakeLLM([reply]))
    line = r.text.splitlines()[1]
    assert line.startswith("- 13:30 Maria: Hello everyone, this is Maria") and "3 pm in room 12" in line
    assert r.shortened == 0 and no_prompt_words(r.text)


def test_clips_that_follow_one_another_are_one_line_until_someone_introduces_themselves(store, tmp_path):
    sid = store.new_session("Listening", source="audio", started_at=(NOW - timedelta(hours=1)).isoformat())
    heard(store, tmp_path, [(30, 3, "So, the launch is on Friday"),        # a pause ended the sentence
                            (29.9, 3, "Marketing has the slides."),
                            (29.8, 3, "I'm Priya, and I will send the invite."),
                            (5, 3, "Coffee machine is fixed.")], session=sid)
    r = ask(store, "what did I miss in the last hour?")
    assert r.text.splitlines()[1:] == [
        "- 13:30: So, the launch is on Friday. Marketing has the slides.",
        "- 13:30 Priya: I'm Priya, and I will send the invite.",
        "- 13:55: Coffee machine is fixed."]
    assert r.text.splitlines()[0] == "Between 13:00 and 14:00, I heard 3 things:"
    assert len(r.clips) == 4


def test_while_away_runs_from_the_last_activity_to_now(store, tmp_path):
    heard(store, tmp_path, [(40, 3, "The printer is broken."), (10, 3, "Lunch is at noon.")])
    chat(store, 120, 31, 30)
    r = ask(store, "Anything happen while I was at lunch?")
    assert (r.window.start, r.window.end, r.window.kind) == (NOW - timedelta(minutes=30), NOW, "away")
    assert r.text.splitlines() == ["Since you left at 13:30, I heard 1 thing:", "- 13:50: Lunch is at noon."]
    assert "a message" not in r.text     # the user's own chat is not what they missed


def test_starting_to_listen_live_counts_as_being_there(store, tmp_path):
    heard(store, tmp_path, [(40, 3, "The printer is broken."), (10, 3, "Lunch is at noon.")])
    chat(store, 120)
    store.new_session("Listening", source="audio", started_at=(NOW - timedelta(minutes=45)).isoformat())
    r = ask(store, "what did I miss while I was out?")
    assert r.window.start == NOW - timedelta(minutes=45) and len(r.clips) == 2


def test_with_no_activity_the_last_hours_are_named(store, tmp_path):
    heard(store, tmp_path, [(10, 3, "Lunch is at noon.")])
    r = ask(store, "What did I miss?")
    assert r.text.splitlines()[0] == "In the last 12 hours (02:00 to 14:00), I heard 1 thing:"


def test_topic(store, tmp_path):
    heard(store, tmp_path, [(40, 3, "The printer on the second floor is broken."), (10, 3, "Lunch is at noon.")])
    r = ask(store, "did anyone mention the printer today?")
    assert r.topic == "the printer"
    assert r.text.splitlines() == ["Between 00:00 and 14:00, I heard 1 thing about the printer:",
                                   "- 13:20: The printer on the second floor is broken."]


def test_nothing_heard(store, tmp_path):
    heard(store, tmp_path, [(300, 3, "Long ago.")])
    llm = FakeLLM(["unused"])
    r = ask(store, "what did I miss in the last 5 minutes?", llm)
    assert r.text == "Nothing was heard between 13:55 and 14:00." and llm.prompts == []


def test_the_answer_streams_through_the_assistant_without_waiting_for_the_model(store, tmp_path):
    """The chat screen's path: Assistant.prepare routes the question, Assistant.generate streams the
    lines; a model that is still loading is not waited for when nothing needs shortening."""
    (clip,) = heard(store, tmp_path, [(10, 3, "Lunch is at noon.")], now=datetime.now(UTC))
    # the model never loads
    a = Assistant(store, TurnRecall(store, FakeEmbedder()), Config(), model=None, routes=default_routes())
    prep = a.prepare(None, "I'm back. What did I miss?")
    pieces = []
    answer = a.generate(prep, on_token=pieces.append)
    first, line = answer.text.splitlines()
    assert first.startswith("In the last 12 hours (") and first.endswith("), I heard 1 thing:")
    assert line == f"- {missed.hhmm(clip.started_at)}: Lunch is at noon."
    assert "".join(pieces).strip() == answer.text == store.turn(answer.turn_id).text
    assert no_prompt_words(answer.text) and prep.missed.topic is None


def test_an_incognito_chat_is_told_what_was_missed_and_stores_neither_turn(store, tmp_path):
    (clip,) = heard(store, tmp_path, [(10, 3, "Lunch is at noon.")], now=datetime.now(UTC))
    turns, sessions = store.count("turns"), store.count("sessions")
    llm = FakeLLM(["unused"])
    a = Assistant(store, TurnRecall(store, FakeEmbedder()), Config(), model=llm, routes=default_routes(),
                  incognito=True)
    sid = a.new_session()
    answer = a.answer(sid, "what did I miss?")
    assert f"- {missed.hhmm(clip.started_at)}: Lunch is at noon." in answer.text and llm.prompts == []
    assert (store.count("turns"), store.count("sessions")) == (turns, sessions)
    assert [t.role for t in a.turns(sid)] == ["user", "assistant"] and answer.turn_id < 0


def test_a_question_that_may_be_about_chat_goes_to_chat_when_nothing_was_heard(store, tmp_path):
    a = Assistant(store, TurnRecall(store, FakeEmbedder()), Config(), model=FakeLLM(["unused"]),
                  routes=default_routes())
    assert missed.prepare(a, None, "what happened at lunch?", now=NOW, tz=UTC) is None
    assert store.count("turns") == 0
    heard(store, tmp_path, [(90, 3, "The soup was cold.")])
    prep = missed.prepare(a, None, "what happened at lunch?", now=NOW, tz=UTC)
    assert prep is not None and "The soup was cold." in "".join(prep.produce(lambda: None, None))
    # A question about the user's absence is answered even when nothing was heard.
    assert missed.prepare(a, None, "what did I miss in the last 5 minutes?", now=NOW, tz=UTC) is not None


async def test_the_chat_screen_shows_the_lines_and_never_the_prompt(tmp_path):
    """The Textual app, as a user sees it: they chatted, went out, came back and asked. The model (a
    fake here) answers with its instructions' words; the screen shows the timed lines instead."""
    from assistant.listening import AudioServices
    from tests.test_ui import SIZE, answered, make_assistant, send
    from ui.app import AssistantApp

    leaky = "I was busy in a chat with you, listed under 'What the user was doing'. Here is the sentence."
    a = make_assistant(tmp_path / "data" / "ui.db", FakeLLM([leaky]))
    now = datetime.now(UTC)
    sid = a.store.new_session("chat", started_at=(now - timedelta(minutes=40)).isoformat())
    a.store.add_turn(sid, "user", "I'm going out for lunch.", created_at=(now - timedelta(minutes=30)).isoformat())
    (clip,) = heard(a.store, tmp_path / "clips", [(10, 20, LONG)], now=now)
    app = AssistantApp(assistant=a, audio=AudioServices(a, clips_dir=tmp_path / "clips"))
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "I'm back. What did I miss?")
        msg = await answered(pilot)
        shown = msg.shown_text
        assert shown.splitlines()[0] == f"Since you left at {missed.hhmm((now - timedelta(minutes=30)).isoformat())}, " \
                                        "I heard 1 thing:"
        assert f"- {missed.hhmm(clip.started_at)} Maria: Hello everyone, this is Maria" in shown
        assert no_prompt_words(shown) and "busy" not in shown and "going out" not in shown
        assert msg.clip_list is not None and msg.clip_list.clip_ids == [clip.id]
    a.close()


def test_a_model_that_fails_to_load_costs_the_shortening_not_the_answer(store, tmp_path):
    heard(store, tmp_path, [(30, 20, LONG)])

    def broken():
        raise RuntimeError("the model file is damaged")

    r = missed.gather(store, "catch me up", now=NOW, embedder=FakeEmbedder(), tz=UTC)
    lines = list(r.lines(broken))
    assert lines[1].startswith("- 13:30 Maria: Hello everyone, this is Maria") and r.shortened == 0


def test_at_most_a_few_model_calls_for_one_answer(store, tmp_path):
    heard(store, tmp_path, [(50 - 3 * i, 20, f"Item {i}. " + LONG) for i in range(10)])
    llm = FakeLLM(["Not a faithful sentence."])
    r = ask(store, "what did I miss in the last hour?", llm)
    assert len(r.moments) == 10 and len(llm.prompts) == missed.MAX_SHORTENED
