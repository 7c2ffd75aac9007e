"""`assistant forget`, `remember`, `memory correct|pin|unpin|pins` and `sessions show|rename|delete`, through
the real command line (a subprocess on a real SQLite file) and click's runner."""
import subprocess
import sys

from click.testing import CliRunner

from assistant.cli import cli
from memory.store import Store
from tests.test_consolidation_fakes import add_segment, add_session, day


def run(db, *args, stdin=None):
    return subprocess.run([sys.executable, "-m", "assistant.cli", "--db", str(db), *args], input=stdin,
                          capture_output=True, text=True, timeout=300)


def invoke(db, *args, stdin=None):
    return CliRunner().invoke(cli, ["--db", str(db), *args], input=stdin)


def memory_db(tmp_path):
    db = tmp_path / "m.db"
    s = Store(db)
    a = add_session(s, day(1), [("User", "Daniel is moving to Lisbon."), ("Assistant", "Lovely city.")],
                    title="Daniel is moving to Lisbon.")
    b = add_session(s, day(2), [("User", "I planted basil."), ("Assistant", "Basil likes sun.")])
    seg = add_segment(s, b)
    s.close()
    return db, a, b, seg


def count(db, table):
    s = Store(db)
    try:
        return s.count(table)
    finally:
        s.close()


def test_forget_asks_shows_counts_and_no_changes_nothing(tmp_path):
    db, a, b, seg = memory_db(tmp_path)
    r = run(db, "forget", "daniel", stdin="n\n")
    assert r.returncode == 0, r.stderr
    assert ("This forgets 2 turns (1 of them an answer built on it), 0 memories, 0 summaries and 0 clips "
            "(1 whole session).") in r.stdout
    assert "  you: “Daniel is moving to Lisbon.”\n  assistant: “Lovely city.”\n" in r.stdout   # which turns go
    assert "Forget it? [y/N]" in r.stdout and "Nothing was forgotten." in r.stdout
    assert count(db, "turns") == 4
    r = run(db, "forget", "daniel", stdin="y\n")
    assert r.returncode == 0 and "Forgot 2 turns (1 of them an answer built on it)," in r.stdout
    assert count(db, "turns") == 2
    r = run(db, "forget", "--memory", str(seg), "--yes")
    assert r.returncode == 0 and "Forgot 2 turns, 1 memory" in r.stdout and "[y/N]" not in r.stdout
    assert count(db, "segments") == 0 and count(db, "sessions") == 0


def test_forget_without_an_answer_forgets_nothing(tmp_path):
    db, *_ = memory_db(tmp_path)
    r = invoke(db, "forget", "basil", stdin="")
    assert r.exit_code == 1 and "Nothing was forgotten" in r.output
    assert count(db, "turns") == 4


def test_forget_refuses_bad_choices_in_one_sentence(tmp_path):
    db, *_ = memory_db(tmp_path)
    for args, words in ((["forget"], "Say what to forget"), (["forget", "x", "--session", "1"], "one way"),
                        (["forget", "--since", "soon"], "YYYY-MM-DD"),
                        (["forget", "--since", "3 days ago"], "'yesterday' or 'last Tuesday'"),
                        (["forget", "--session", "99", "--yes"], "There is no session 99"),
                        (["forget", "--since", "2023-05-03", "--until", "2023-05-01"], "must be before")):
        r = invoke(db, *args)
        assert r.exit_code != 0 and words in r.output and "Traceback" not in r.output, args
    assert count(db, "turns") == 4


def test_forget_a_time_range_by_local_days(tmp_path):
    db, a, b, seg = memory_db(tmp_path)
    r = invoke(db, "forget", "--since", "2023-05-02", "--until", "2023-05-03", "--yes")
    assert r.exit_code == 0, r.output
    assert "Forgot 2 turns, 1 memory, 0 summaries and 0 clips (1 whole session)." in r.output
    assert count(db, "sessions") == 1


def test_remember_pins_and_unpin(tmp_path):
    db, a, b, seg = memory_db(tmp_path)
    r = invoke(db, "remember", "My dentist is Dr Brooks")
    assert r.exit_code == 0 and r.output.strip() == "Pinned fact 1: My dentist is Dr Brooks"
    r = invoke(db, "memory", "pin", str(seg))
    assert r.exit_code == 0 and "Pinned fact 2: You planted basil." in r.output
    out = invoke(db, "memory", "pins").output
    assert "Your dentist is Dr Brooks" in out and "You planted basil.  (from a memory)" in out
    assert invoke(db, "memory", "unpin", "1").exit_code == 0
    r = invoke(db, "memory", "unpin", "1")
    assert r.exit_code == 1 and "There is no pinned fact 1" in r.output
    assert invoke(db, "remember", "  ").exit_code != 0


def test_correct_then_show_the_transcript(tmp_path):
    db, a, b, seg = memory_db(tmp_path)
    r = run(db, "memory", "correct", str(seg), "I planted basil and mint.")
    assert r.returncode == 0, r.stderr
    assert f"Memory {seg} now says: I planted basil and mint. (2 original turns kept, marked corrected)." in r.stdout
    out = invoke(db, "sessions", "show", str(b)).output
    lines = [line.split("] ", 1)[1] for line in out.splitlines()[1:]]
    assert lines == ["User (corrected): I planted basil.", "Assistant (corrected): Basil likes sun.",
                     "User (your correction): I planted basil and mint."]
    r = invoke(db, "memory", "correct", "77", "x")
    assert r.exit_code == 1 and "There is no memory 77" in r.output


def test_sessions_rename_and_delete(tmp_path):
    db, a, b, seg = memory_db(tmp_path)
    assert invoke(db, "sessions", "rename", str(b), "Garden").output.strip() == f"Session {b} is now called: Garden"
    assert "Garden" in invoke(db, "sessions").output
    r = invoke(db, "sessions", "delete", str(a), stdin="n\n")
    assert "This forgets 2 turns, 0 memories, 0 summaries and 0 clips (1 whole session)." in r.output
    assert count(db, "sessions") == 2
    r = invoke(db, "sessions", "delete", str(a), "--yes")
    assert r.exit_code == 0 and "Forgot 2 turns" in r.output and count(db, "sessions") == 1
    r = invoke(db, "sessions", "show", str(a))
    assert r.exit_code == 1 and f"There is no session {a}" in r.output


def test_incognito_ask_stores_nothing_and_says_so(tmp_path):
    """The real CLI with the real small model: an incognito answer reads the memory and writes nothing."""
    import pytest

    from tests.conftest import _smollm2_path

    if _smollm2_path() is None:
        pytest.skip("SmolLM2 is not installed")
    db, *_ = memory_db(tmp_path)
    before = {t: count(db, t) for t in ("sessions", "turns", "segments", "turn_memories")}
    r = run(db, "--model", "smollm2", "--incognito", "ask", "Where is Daniel moving?", "--max-tokens", "8")
    assert r.returncode == 0, r.stderr
    assert "Incognito: nothing of this chat is stored" in r.stderr and "(incognito, nothing stored" in r.stderr
    assert {t: count(db, t) for t in before} == before


def test_since_and_until_take_a_day_as_people_name_it():
    from datetime import datetime, time, timedelta

    from assistant.cli.forget import to_utc
    from memory.clock import to_iso

    yesterday = datetime.combine(datetime.now().astimezone().date() - timedelta(days=1), time()).astimezone()
    assert to_utc("yesterday", "--since") == to_iso(yesterday)
    assert to_utc("Yesterday", "--until") == to_iso(yesterday)
    assert to_utc("2025-03-01", "--since") == to_iso(datetime(2025, 3, 1).astimezone())
