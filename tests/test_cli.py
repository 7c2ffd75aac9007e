import os
import sqlite3
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from assistant.cli import cli
from memory.store import Store


def run(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "assistant.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_help_lists_every_command_with_one_line():
    out = CliRunner().invoke(cli, ["--help"]).output
    for command in ("ask", "sessions", "models", "config", "tui"):
        assert f"  {command} " in out


def test_models_lists_default_as_active():
    out = CliRunner().invoke(cli, ["models"]).output
    assert "* qwen-1.5b" in out and "smollm2" in out


def test_unwritable_database_is_one_sentence(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    r = CliRunner().invoke(cli, ["--db", str(blocker / "x.db"), "sessions"])
    assert r.exit_code == 1
    assert r.output.startswith("Error: Cannot open the database at") and "Traceback" not in r.output


def test_missing_model_file_is_one_sentence(tmp_path):
    r = run("--db", str(tmp_path / "a.db"), "--model", str(tmp_path / "none.gguf"), "ask", "hi")
    assert r.returncode == 1
    assert "No model file at" in r.stderr and "Traceback" not in r.stderr
    # the message was not lost: nothing was stored because the model was checked first
    assert Store(tmp_path / "a.db").count("turns") == 0


def test_corrupt_model_file_is_one_sentence(tmp_path):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 64)
    r = run("--db", str(tmp_path / "a.db"), "--model", str(bad), "ask", "hi")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert str(bad) in r.stderr


@pytest.mark.real
def test_ask_twice_uses_memory_across_sessions(tmp_path):
    db = str(tmp_path / "mem.db")
    r1 = run("--db", db, "--model", "smollm2", "ask", "My sister's name is Maya.")
    assert r1.returncode == 0, r1.stderr
    assert r1.stdout.strip()
    r2 = run("--db", db, "--model", "smollm2", "ask", "What is my sister's name?", "--show-memories")
    assert r2.returncode == 0, r2.stderr
    assert "My sister's name is Maya." in r2.stderr  # recalled into the prompt of the new session
    sessions = Store(db).sessions()
    assert len(sessions) == 2


@pytest.mark.real
@pytest.mark.parametrize("sig", ["TERM", "KILL"])
def test_kill_during_an_answer_keeps_message_and_partial_answer(tmp_path, sig):
    import signal

    db = tmp_path / "kill.db"
    p = subprocess.Popen([sys.executable, "-m", "assistant.cli", "--db", str(db), "--model", "smollm2",
                          "ask", "Write a very long story about a dragon and a knight, in many chapters."],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    partial = None
    while time.time() < deadline and p.poll() is None:
        time.sleep(0.2)
        if not db.exists():
            continue
        try:
            c = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
            partial = c.execute("SELECT text FROM turns WHERE role='assistant' AND status='streaming' "
                                "AND length(text) > 0").fetchone()
            c.close()
        except sqlite3.Error:
            continue
        if partial:
            break
    assert partial, "the answer never started streaming to disk"
    p.send_signal(getattr(signal, f"SIG{sig}"))
    p.wait(timeout=30)
    store = Store(db)  # a normal next start
    assert store.integrity_ok()
    turns = store.turns(store.sessions()[0].id)
    assert turns[0].role == "user" and turns[0].text.startswith("Write a very long story")
    assert turns[1].role == "assistant" and turns[1].status == "interrupted" and turns[1].text
    r = run("--db", str(db), "--model", "smollm2", "sessions")
    assert r.returncode == 0 and "Write a very long story" in r.stdout
