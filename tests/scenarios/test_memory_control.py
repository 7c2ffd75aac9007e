"""Your memory in your hands, with the real default model (greedy), the real embedder and SQLite file:
a memory corrected through `assistant memory correct` is what the next answer uses, and still after a
consolidation; a fact pinned with `assistant remember` is in the prompt and answered."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from click.testing import CliRunner

from assistant.config import Config
from assistant.models import DEFAULT_MODEL
from assistant.wiring import Options, build
from memory.consolidate import Consolidator
from memory.summaries import SummaryStore

DAY = datetime(2025, 3, 3, 18, 30, tzinfo=timezone.utc)


def cli(db, *args):
    from assistant.cli import cli as main

    r = CliRunner().invoke(main, ["--db", str(db), *args], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return r.output


def ask(assistant, question: str) -> tuple[str, str]:
    """(the answer, the prompt's system message) for a question in a new session."""
    prep = assistant.prepare(None, question)
    return assistant.generate(prep).text, prep.messages[0]["content"]


def told(tmp_path, monkeypatch, default_model, real_embedder, title, said, reply, answer_tokens):
    """An assistant on a new memory (the CLI's embedder is the real one too) holding one past chat of two
    turns; returns (the assistant, the database's path, the chat's session id)."""
    from assistant.cli import common as cli_common

    monkeypatch.setattr(cli_common, "embedder", lambda: real_embedder)
    db = tmp_path / "assistant.db"
    assistant = build(Options(db=db, model=DEFAULT_MODEL, config=Config(max_answer_tokens=answer_tokens)),
                      embedder=real_embedder, model=default_model)
    sid = assistant.store.new_session(title=title, started_at=DAY.isoformat())
    assistant.store.add_turn(sid, "user", said, created_at=DAY.isoformat())
    assistant.store.add_turn(sid, "assistant", reply, created_at=(DAY + timedelta(minutes=1)).isoformat())
    return assistant, db, sid


def test_a_correction_is_used_by_the_next_answer_and_kept_by_consolidation(tmp_path, monkeypatch, default_model,
                                                                            real_embedder):
    assistant, db, sid = told(tmp_path, monkeypatch, default_model, real_embedder, "Dentist",
                              "My dentist is Dr. Hill on Baker Street.",
                              "Noted: your dentist is Dr. Hill on Baker Street.", 32)
    store = assistant.store
    Consolidator(store, real_embedder, default_model).run()
    assert "Hill" in SummaryStore(store).running().text
    (seg,) = [r[0] for r in store.db.execute("SELECT id FROM segments WHERE session_id = ?", [sid])]

    out = cli(db, "memory", "correct", str(seg), "My dentist is Dr. Brooks on Baker Street.")
    assert f"Memory {seg} now says" in out
    answer, system = ask(assistant, "Who is my dentist?")
    print("after the correction:", answer)
    assert "Brooks" in answer and "Hill" not in answer and "Hill" not in system

    Consolidator(store, real_embedder, default_model).run()
    running = SummaryStore(store).running().text
    assert "Brooks" in running and "Hill" not in running
    answer, system = ask(assistant, "What is my dentist's name?")
    print("after consolidating:", answer)
    assert "Brooks" in answer and "Hill" not in answer and "Brooks" in system
    assistant.close()


def test_a_pinned_fact_reaches_the_prompt_and_is_answered(tmp_path, default_model, real_embedder):
    db = tmp_path / "assistant.db"
    assert "Pinned fact 1" in cli(db, "remember", "My gym locker code is 4512")
    assistant = build(Options(db=db, model=DEFAULT_MODEL, config=Config(max_answer_tokens=32)),
                      embedder=real_embedder, model=default_model)
    answer, system = ask(assistant, "What is my gym locker code?")
    print(answer)
    assert "Facts the user asked you to keep in mind:\n- Your gym locker code is 4512" in system
    assert "4512" in answer
    assistant.close()


def test_a_forgotten_fact_stays_forgotten_in_the_answers_built_on_it(tmp_path, monkeypatch, default_model,
                                                                     real_embedder):
    """A fact told in one chat and recalled in another ("your lesson is on Thursday", which names no cello)
    is forgotten with `assistant forget cello`: the answer that recalled it goes with it, so neither the next
    prompt, nor a consolidation, nor the next answer has Thursday again."""
    from memory.recall import TurnIndex

    assistant, db, _ = told(tmp_path, monkeypatch, default_model, real_embedder, "Music",
                            "My cello lesson with Marta is on Thursday evening.",
                            "Enjoy your cello lesson with Marta!", 24)
    store = assistant.store
    TurnIndex(store, real_embedder).index_pending()
    answer, system = ask(assistant, "On which day is my lesson with Marta?")
    print("before forgetting:", answer)
    assert "Thursday" in answer        # the answer repeats the fact without the word "cello"
    TurnIndex(store, real_embedder).index_pending()

    out = cli(db, "forget", "cello", "--yes")
    print(out)
    # "Enjoy your cello lesson", the answer that recalled it, and the question it answered
    assert "(2 of them answers built on it, 1 question about it)" in out
    Consolidator(store, real_embedder, default_model).run()
    for table, col in (("turns", "text"), ("segments", "key"), ("fts_turn", "text"), ("summaries", "text"),
                       ("turn_memories", "text")):
        assert not store.db.execute(f"SELECT 1 FROM {table} WHERE {col} LIKE '%thursday%'").fetchall(), table
    prep = assistant.prepare(None, "On which day is my lesson with Marta?")
    assert "Thursday" not in "\n".join(m["content"] for m in prep.messages)
    answer = assistant.generate(prep).text
    print("after forgetting:", answer)
    assert "Thursday" not in answer
    assert [t.text for t in store.turns(prep.session_id)][0] == "On which day is my lesson with Marta?"
    assistant.close()
