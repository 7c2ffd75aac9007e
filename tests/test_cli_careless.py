"""Careless values a new user types: each is refused (or handled) with one sentence that says what is wrong
and what to do, a non-zero exit, nothing changed and no traceback; and no answer starts with an empty line."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from click.testing import CliRunner

from assistant.cli import cli
from memory.store import Store


def invoke(*args, **kw):
    return CliRunner().invoke(cli, [str(a) for a in args], **kw)


def refused(r, *words: str) -> str:
    """A non-zero exit, no traceback, and one 'Error: ' sentence (containing `words`) as the last line."""
    assert r.exit_code != 0, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    assert "Traceback" not in r.output
    assert not r.output.startswith("\n"), repr(r.output)
    errors = [line for line in r.output.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and errors[0].startswith("Error: "), r.output
    for w in words:
        assert w in errors[0], errors[0]
    return errors[0]


def digest(*paths: Path) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(p.read_bytes() if p.exists() else b"-")
    return h.hexdigest()


@pytest.fixture
def db(tmp_path):
    """A database with one session in it."""
    path = tmp_path / "a.db"
    s = Store(path)
    sid = s.new_session("Garden")
    s.add_turn(sid, "user", "I planted tomatoes.")
    s.close()
    return path


# -- 1. an empty question ------------------------------------------------------------------------------
@pytest.mark.parametrize("question", ["", "   "])
def test_missed_refuses_an_empty_question_as_ask_does(db, question):
    before = digest(db)
    r = invoke("--db", db, "missed", question, "--no-model")
    refused(r, "QUESTION is empty", "What did I miss?")
    assert r.exit_code == 2 and "Nothing was heard" not in r.output
    assert digest(db) == before


# -- 2. no empty line first ----------------------------------------------------------------------------
def test_an_unknown_model_is_one_sentence_without_an_empty_line_first(db):
    r = invoke("--db", db, "--model", "nosuchmodel", "ask", "hi")
    refused(r, "No model file at nosuchmodel")
    assert r.stderr.startswith("Error: "), repr(r.stderr)
    r = invoke("--db", db, "--model", "nosuchmodel", "missed")
    assert r.exit_code == 1 and r.stderr.startswith("Error: "), repr(r.stderr)


def test_a_model_bar_leaves_no_empty_line_where_no_terminal_shows_it(db, monkeypatch):
    from assistant.errors import ModelError

    def build(opts, progress=None, **kw):     # what preparing a packaged model reports on its way
        progress(1, 2)
        progress(2, 2)
        raise ModelError("The model could not be loaded; see `assistant doctor`.")

    monkeypatch.setattr("assistant.wiring.build", build)
    for cmd in (["missed"], ["ask", "hi"]):
        r = invoke("--db", db, *cmd)
        assert r.exit_code == 1 and r.stderr == "Error: The model could not be loaded; see `assistant doctor`.\n", \
            repr(r.stderr)


# -- 3. no decoder's words -----------------------------------------------------------------------------
def test_importing_a_file_that_is_not_text_says_so_not_the_decoder(db, tmp_path):
    wav = tmp_path / "x.wav"
    wav.write_bytes(b"RIFF\x24\x08\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x80\xbb\x00\x00\x00\xac"
                    + bytes(range(256)) * 8)
    before = digest(db)
    line = refused(invoke("--db", db, "import", "jsonl", wav, "--segmenter", "none"),
                   str(wav), "is not UTF-8 text", "JSON Lines")
    assert "codec" not in line and "byte" not in line and "position" not in line
    assert digest(db) == before


def test_listening_to_a_file_that_is_not_audio_names_the_formats_that_work(db, tmp_path):
    txt = tmp_path / "notaudio.txt"
    txt.write_text("These are words, not sound.\n")
    before = digest(db)
    line = refused(invoke("--db", db, "listen", "--file", txt, "--no-index"),
                   str(txt), "is not an audio file", "WAV, FLAC, MP3 or OGG")
    assert "Errno" not in line and "Invalid data" not in line
    assert digest(db) == before


# -- 6. the daemon's own lines, not its scheduler's ----------------------------------------------------
def test_the_daemon_prints_its_own_lines_not_the_schedulers_bookkeeping(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    proc = subprocess.Popen([sys.executable, "-m", "assistant.cli", "--db", str(tmp_path / "d.db"), "daemon",
                             "--check-seconds", "1"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        first = proc.stdout.readline()
        time.sleep(3)                         # the scheduler starts and checks for idle time a few times
    finally:
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=60)
    assert first.startswith("Consolidating ") and first.rstrip().endswith("Stop with Ctrl+C."), first
    assert proc.returncode == 0, rest
    for noise in ("Adding job", "Added job", "Running job", "executed successfully", "<locals>", "Scheduler"):
        assert noise not in rest, rest


# -- 7. an existing file is replaced only with --force -------------------------------------------------
@pytest.mark.parametrize("what", ["journal", "transcripts"])
def test_an_export_never_replaces_an_existing_file_without_force(db, tmp_path, what):
    out = tmp_path / "notes.md"
    out.write_text("my own notes\n")
    line = refused(invoke("--db", db, "export", what, "-o", out), str(out), "already exists", "--force")
    assert out.read_text() == "my own notes\n" and not list(tmp_path.glob(".*.partial"))
    r = invoke("--db", db, "export", what, "-o", out, "--force")
    assert r.exit_code == 0, r.output
    assert out.read_text() != "my own notes\n" and out.stat().st_mode & 0o777 == 0o600
    line = refused(invoke("--db", db, "export", what, "-o", db, "--force"), "the database itself")
    store = Store(db)
    assert line and store.count("turns") == 1
    store.close()


@pytest.mark.parametrize("what,name,opening", [("journal", "j.md", "# "), ("journal", "j.html", "<!DOCTYPE html>"),
                                               ("journal", "j.json", "{"), ("transcripts", "t.jsonl", "{"),
                                               ("transcripts", "t.md", "# "), ("journal", "j.htm", "<!DOCTYPE html>"),
                                               ("transcripts", "t.htm", "# ")])
def test_an_export_takes_its_file_after_the_command_and_its_format_from_the_name(db, tmp_path, what, name,
                                                                                 opening):
    """As `export backup FILE` does; `export journal journal.md` was refused as an unexpected argument, and
    `-o journal.html` wrote Markdown."""
    out = tmp_path / name
    r = invoke("--db", db, "export", what, out)
    assert r.exit_code == 0, r.output
    assert out.read_text().lstrip().startswith(opening)
    other = tmp_path / ("other" + out.suffix)
    assert invoke("--db", db, "export", what, "-o", other).exit_code == 0
    assert other.read_text().lstrip().startswith(opening)
    refused(invoke("--db", db, "export", what, out, "-o", other, "--force"), "give one")


def test_the_readme_says_force_for_every_export_to_a_file():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    sentence = next(s for s in readme.replace("\n", " ").split(". ") if "--force" in s)
    assert "no export, backup, journal or transcripts, replaces an existing file unless you add `--force`" \
        in sentence, sentence


# -- 8. an empty --db ----------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["", " "])
def test_an_empty_db_is_refused_not_taken_for_the_default(value):
    from assistant import paths

    for args in (["sessions"], ["remember", "I like tea."], []):
        line = refused(invoke("--db", value, *args), "--db is empty", "leave --db out")
        assert line.count(". ") == 0
    assert not paths.default_db().exists()


# -- 9. every date option takes the same forms ---------------------------------------------------------
def _yesterday() -> str:
    from datetime import datetime, timedelta

    return (datetime.now().astimezone().date() - timedelta(days=1)).isoformat()


@pytest.mark.parametrize("what", ["journal", "transcripts"])
def test_exports_take_a_day_as_people_name_it_as_forget_does(db, what):
    by_name = invoke("--db", db, "export", what, "--since", "yesterday")
    by_date = invoke("--db", db, "export", what, "--since", _yesterday())
    assert by_name.exit_code == 0, by_name.output
    assert by_name.output == by_date.output
    r = invoke("--db", db, "export", what, "--since", "last week", "--until", "today")
    assert r.exit_code == 0, r.output
    r = invoke("--db", db, "export", what, "--until", "Last Tuesday")
    assert r.exit_code == 0, r.output


def test_listen_takes_a_day_for_started_at(db, tmp_path):
    """The day is taken: what is left to say is about the file, not the date."""
    txt = tmp_path / "notaudio.txt"
    txt.write_text("not sound\n")
    refused(invoke("--db", db, "listen", "--file", txt, "--started-at", "yesterday", "--no-index"),
            "is not an audio file")


def test_missed_takes_a_day_for_now(db):
    r = invoke("--db", db, "missed", "--no-model", "--now", "yesterday")
    assert r.exit_code == 0, r.output
    assert "Nothing was heard" in r.output
    # no clip at all: the answer says that listening was never on, and how to turn it on
    assert "Nothing has been heard at all yet: listening is off until you turn it on" in r.output


def test_memory_search_takes_a_day(db, monkeypatch):
    from assistant.cli import common
    from tests.fakes import FakeEmbedder

    monkeypatch.setattr(common, "embedder", lambda: FakeEmbedder())
    r = invoke("--db", db, "memory", "search", "tomatoes", "--since", "yesterday")   # said today
    assert r.exit_code == 0 and "I planted tomatoes." in r.output, r.output
    r = invoke("--db", db, "memory", "search", "tomatoes", "--until", "yesterday")
    assert r.exit_code == 0 and "Nothing found" in r.output, r.output


@pytest.mark.parametrize("args", [
    ["export", "journal", "--since", "soonish"],
    ["export", "transcripts", "--until", "3 days ago"],
    ["forget", "--since", "the other day"],
    ["memory", "search", "tomatoes", "--since", "whenever"],
    ["missed", "--no-model", "--now", "later"],
    ["listen", "--file", "rec.wav", "--started-at", "at noon"],
])
def test_every_date_option_refuses_garbage_with_the_same_sentence(db, tmp_path, args):
    args = [str(tmp_path / a) if a == "rec.wav" else a for a in args]
    before = digest(db)
    option = next(a for a in args if a.startswith("--") and a not in ("--no-model", "--file"))
    line = refused(invoke("--db", db, *args), f"{option} must be a day as YYYY-MM-DD",
                   "an ISO date and time", "'yesterday'", f"not '{args[args.index(option) + 1]}'")
    assert "Invalid value" not in line
    assert digest(db) == before


# -- 10. the microphone before "Speak now" -------------------------------------------------------------
class _NoDevices:
    """sounddevice on a computer with no sound card."""

    class PortAudioError(Exception):
        pass

    def query_devices(self, device=None, kind=None):
        raise self.PortAudioError("Error querying device -1")

    def InputStream(self, *a, **kw):
        raise self.PortAudioError("Error querying device -1")

    def __getattr__(self, name):
        raise self.PortAudioError("no sound card")


def test_voice_says_there_is_no_microphone_before_asking_to_speak(db, monkeypatch):
    import audio.capture
    from audio.transcribe import Transcriber

    loaded = []
    monkeypatch.setattr(audio.capture, "import_sounddevice", lambda: _NoDevices())
    monkeypatch.setattr(Transcriber, "load", lambda self: loaded.append(1))
    r = invoke("--db", db, "voice", "--no-answer")
    refused(r, "No microphone")
    assert "Speak now" not in r.output and not loaded


# -- a command typed without its group -------------------------------------------------------------------
@pytest.mark.parametrize("args, meant", [
    (["show", "1"], "`assistant config show` or `assistant sessions show`"),
    (["search", "dog"], "`assistant memory search`"),
    (["memory", "sessions"], None),
])
def test_a_command_typed_without_its_group_names_where_it_is(db, args, meant):
    before = digest(db)
    r = invoke("--db", db, *args, prog_name="assistant")
    line = refused(r, "No such command")
    assert r.exit_code == 2 and digest(db) == before
    assert (f"Did you mean {meant}?" in line) if meant else "Did you mean" not in line


@pytest.mark.parametrize("args, hint", [
    (["import", "backup", "--db", "new.db", "b.zip"], "assistant --db PATH import backup ..."),
    (["ask", "--model", "qwen", "hi"], "assistant --model NAME ask ..."),
    (["memory", "search", "--incognito", "dog"], "assistant --incognito memory search ..."),
])
def test_an_option_of_the_app_given_after_the_command_says_where_it_goes(args, hint):
    r = invoke(*args)
    assert r.exit_code == 2 and "Traceback" not in r.output
    errors = [line for line in r.output.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and errors[0].endswith(hint) and "goes before the command" in errors[0]
    assert "Did you mean" not in r.output and errors[0].count("goes before") == 1
