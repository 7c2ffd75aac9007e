""""What did I miss": three recordings heard at different times (real Whisper on espeak-ng speech),
questions with explicit and implicit windows. The recordings are short, so the answer quotes them with
their times and the (fake) model is not called."""
from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone

import pytest

from assistant import missed
from assistant.config import Config
from assistant.routes import default_routes
from assistant.core import Assistant
from audio.ingest import AudioIngestor
from audio.transcribe import Transcriber
from memory.recall import TurnIndex, TurnRecall
from memory.store import Store
from tests.fakes import FakeEmbedder, FakeLLM
from tests.test_audio_speech import needs_espeak, speak_file

pytestmark = [pytest.mark.real, needs_espeak]
UTC = timezone.utc
NOW = datetime(2025, 3, 4, 16, 0, tzinfo=UTC)
RECORDINGS = [  # (minutes before NOW, what was said, a key word)
    (180, "The quarterly budget meeting moved to Thursday afternoon.", "budget"),
    (45, "Hello team, the server migration is finished.", "migration"),
    (10, "Lunch is at noon in the big room.", "lunch"),
]


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("missed")
    store = Store(tmp / "db" / "a.db")
    embedder = FakeEmbedder()
    ingestor = AudioIngestor(store, Transcriber("tiny.en"), tmp / "clips",
                             index=TurnIndex(store, embedder).index_pending)
    clips = {}
    for minutes, text, key in RECORDINGS:
        wav = speak_file(text, tmp / f"{key}.wav")
        result = ingestor.ingest_file(wav, NOW - timedelta(minutes=minutes))
        assert len(result.clips) == 1 and key in result.clips[0].text.lower(), result.text
        clips[key] = result.clips[0]
    # The user chatted at 13:30 and 14:00, then stepped away.
    chat = store.new_session("chat", started_at=(NOW - timedelta(hours=3)).isoformat())
    for minutes, text in ((150, "Remind me what the dentist said"), (120, "Draft an email to Anna")):
        store.add_turn(chat, "user", text, created_at=(NOW - timedelta(minutes=minutes)).isoformat())
        store.add_turn(chat, "assistant", "Sure.", created_at=(NOW - timedelta(minutes=minutes - 1)).isoformat())
    yield store, embedder, clips, tmp
    store.close()


def keys(result):
    return [next(k for _, _, k in RECORDINGS if k in c.text.lower()) for c in result.clips]


def test_last_hour(scenario):
    store, embedder, clips, _ = scenario
    llm = FakeLLM(["unused"])
    r = missed.answer_missed(store, llm, "What did I miss in the last hour?", now=NOW, embedder=embedder, tz=UTC)
    assert (r.window.start, r.window.end, r.window.kind) == (NOW - timedelta(hours=1), NOW, "explicit")
    assert keys(r) == ["migration", "lunch"]
    assert [c.clip_id for c in r.clips] == [clips["migration"].id, clips["lunch"].id]
    assert [c.time for c in r.clips] == ["15:15", "15:50"]
    assert all(os.path.exists(c.path) and c.path.endswith(".flac") for c in r.clips)
    assert r.heard_in_window == 2
    lines = r.text.splitlines()
    assert lines[0] == "Between 15:00 and 16:00, I heard 2 things:"
    assert lines[1] == f"- 15:15: {clips['migration'].text}" and lines[2] == f"- 15:50: {clips['lunch'].text}"
    assert llm.prompts == []     # short clips are quoted, not shortened
    data = json.loads(json.dumps(r.to_dict()))
    assert data["window"]["start"] == "2025-03-04T15:00:00.000+00:00"
    assert {"clip_id", "started_at", "ended_at", "path", "text", "time"} <= set(data["clips"][0])


def test_while_i_was_away(scenario):
    store, embedder, _, _ = scenario
    r = missed.answer_missed(store, FakeLLM(["ok"]), "what did I miss while I was away?", now=NOW,
                             embedder=embedder, tz=UTC)
    # From the last chat activity before the gap (the assistant's reply at 14:01) to now.
    assert (r.window.start, r.window.end, r.window.kind) == (NOW - timedelta(minutes=119), NOW, "away")
    assert keys(r) == ["migration", "lunch"]
    assert r.text.startswith("Since you left at 14:01, I heard 2 things:")


def test_the_users_own_chat_is_not_what_they_missed(scenario):
    store, embedder, _, _ = scenario
    r = missed.answer_missed(store, FakeLLM(["ok"]), "what was said in the last 4 hours?", now=NOW,
                             embedder=embedder, tz=UTC)
    assert keys(r) == ["budget", "migration", "lunch"]
    assert "dentist" not in r.text and "Anna" not in r.text and "busy" not in r.text
    assert [line[:7] for line in r.text.splitlines()[1:]] == ["- 13:00", "- 15:15", "- 15:50"]


def test_topic_ranks_within_the_window(scenario):
    store, embedder, clips, _ = scenario
    r = missed.answer_missed(store, FakeLLM(["ok"]), "what did I miss about the server migration today?",
                             now=NOW, embedder=embedder, tz=UTC)
    assert r.topic == "the server migration"
    assert [c.clip_id for c in r.clips] == [clips["migration"].id]


def test_nothing_heard_needs_no_model(scenario):
    store, embedder, _, _ = scenario
    llm = FakeLLM(["should not be used"])
    r = missed.answer_missed(store, llm, "what did I miss in the last 5 minutes?", now=NOW, embedder=embedder, tz=UTC)
    assert r.clips == [] and llm.prompts == []
    assert r.text == "Nothing was heard between 15:55 and 16:00."


def test_without_a_model(scenario):
    store, embedder, _, _ = scenario
    r = missed.answer_missed(store, None, "what did I miss since 3pm?", now=NOW, embedder=embedder, tz=UTC)
    assert r.window.start == NOW.replace(hour=15) and keys(r) == ["migration", "lunch"]
    assert "- 15:15: " in r.text and "- 15:50: " in r.text


def test_cli_missed_json(scenario):
    from click.testing import CliRunner

    from assistant.cli import cli

    store, *_ = scenario
    out = CliRunner().invoke(cli, ["--db", str(store.path), "missed", "what did I miss in the last hour?",
                                   "--json", "--no-model", "--now", NOW.isoformat()])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["window"]["start"] == "2025-03-04T15:00:00.000+00:00" and len(data["clips"]) == 2


@pytest.mark.parametrize("phrase", ["in the last hour", "last hour", "the last 60 minutes"])
def test_cli_missed_reads_a_time_alone_as_its_window(scenario, phrase):
    """The command's own help gives "in the last hour" as its example; alone it read as no time named."""
    from click.testing import CliRunner

    from assistant.cli import cli

    store, *_ = scenario
    out = CliRunner().invoke(cli, ["--db", str(store.path), "missed", phrase, "--json", "--no-model",
                                   "--now", NOW.isoformat()])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["window"]["start"] == "2025-03-04T15:00:00.000+00:00" and len(data["clips"]) == 2


def test_route_inside_the_assistant(scenario):
    store, embedder, clips, _ = scenario
    llm = FakeLLM(["unused"])
    assistant = Assistant(store, TurnRecall(store, embedder), Config(), model=llm, routes=default_routes())
    pieces = []
    routed = missed.route(assistant, None, "What did I miss in the last hour?", now=NOW, tz=UTC,
                          on_token=pieces.append)
    assert routed is not None
    answer = routed.answer
    assert answer.text == routed.missed.text and "".join(pieces).strip() == answer.text
    assert "- 15:15: " in answer.text and store.turn(answer.turn_id).text == answer.text
    assert [m.id for m in answer.memories] == [clips["migration"].id, clips["lunch"].id]
    assert all(m.kind == "audio" for m in answer.memories)
    turns = store.turns(answer.session_id)
    assert [(t.role, t.source) for t in turns] == [("user", "chat"), ("assistant", "chat")]
    assert missed.route(assistant, None, "What is the capital of France?", now=NOW) is None


def test_prepare_hook_for_assistant_prepare(scenario):
    """What Assistant.prepare / the TUI use: a PreparedTurn that Assistant.generate streams as usual."""
    store, embedder, clips, _ = scenario
    llm = FakeLLM(["unused"])
    assistant = Assistant(store, TurnRecall(store, embedder), Config(), model=llm, routes=default_routes())
    prep = missed.prepare(assistant, None, "what did I miss since 3pm?", now=NOW, tz=UTC)
    assert prep.missed.window.start == NOW.replace(hour=15)
    assert [m.id for m in prep.memories] == [clips["migration"].id, clips["lunch"].id]
    assert prep.notices[0] == "Audio heard 15:00–16:00: 2 clips, 2 used."
    answer = assistant.generate(prep)
    assert answer.text.startswith("Between 15:00 and 16:00, I heard 2 things:")
    assert store.turn(answer.turn_id).source == "chat"
    assert missed.prepare(assistant, None, "tell me a joke", now=NOW) is None


def test_route_when_nothing_was_heard(scenario):
    store, embedder, _, _ = scenario
    llm = FakeLLM(["unused"])
    assistant = Assistant(store, TurnRecall(store, embedder), Config(), model=llm, routes=default_routes())
    routed = missed.route(assistant, None, "what did I miss in the last 2 minutes?", now=NOW, tz=UTC)
    assert routed.answer.text == "Nothing was heard between 15:58 and 16:00." and llm.prompts == []
