"""Bad input, on purpose: each is answered with one sentence (no traceback), a non-zero exit, and
nothing changed in the memory. Model files (truncated, random, the wrong kind), import files (malformed,
truncated, huge, wrongly encoded, another format), recordings (empty, not audio, odd sample rates), a
database from a newer version or not a database at all, and a full disk. (Config files with unknown keys,
wrong types and out-of-range values: tests/test_config.py.)"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from assistant.cli import cli
from memory.store import Store

TURN = {"session": "a", "role": "user", "text": "I planted tomatoes.", "time": "2024-05-01T09:00:00Z"}


def one_sentence(result) -> str:
    """The command failed with exactly one line that starts with 'Error:' and no traceback."""
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return lines[0]


def snapshot(db: Path) -> str:
    """The database's content (every row of every table) as a digest."""
    s = Store(db, worker=True)
    h = hashlib.sha256()
    for name, sql in s.db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table' ORDER BY name"):
        if (sql or "").upper().startswith("CREATE VIRTUAL"):
            continue   # their shadow tables hold the rows
        h.update(repr((name, sorted(map(repr, s.db.execute(f"SELECT * FROM [{name}]"))))).encode())
    s.db.conn.close()
    return h.hexdigest()


@pytest.fixture
def memory(tmp_path):
    """A database with one session in it."""
    db = tmp_path / "data" / "a.db"
    db.parent.mkdir()
    s = Store(db)
    sid = s.new_session("Garden")
    s.add_turn(sid, "user", "I planted tomatoes.")
    s.close()
    return db


def invoke(db: Path, *args):
    return CliRunner().invoke(cli, ["--db", str(db), *args])


# -- model files ---------------------------------------------------------------------------------------
def _wrong_kind(path: Path) -> Path:
    """A well-formed GGUF of an embedding model's architecture and no weights."""
    def s(x: str) -> bytes:
        return struct.pack("<Q", len(x)) + x.encode()

    kv = s("general.architecture") + struct.pack("<I", 8) + s("bert")
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + kv)
    return path


def _truncated(path: Path) -> Path:
    from assistant.models import MODELS

    with open(MODELS["smollm2"].packaged_file(), "rb") as f:
        path.write_bytes(f.read(3_000_000))
    return path


GGUFS = {
    "truncated": _truncated,
    "random bytes": lambda p: p.write_bytes(os.urandom(200_000)) and p,
    "random after the magic": lambda p: p.write_bytes(b"GGUF" + os.urandom(200_000)) and p,
    "empty": lambda p: p.write_bytes(b"") or p,
    "the wrong kind": _wrong_kind,
}


@pytest.mark.parametrize("kind", GGUFS)
def test_a_bad_model_file_is_one_sentence_and_changes_nothing(memory, tmp_path, kind):
    path = tmp_path / "m.gguf"
    GGUFS[kind](path)
    before = snapshot(memory)
    line = one_sentence(invoke(memory, "--model", str(path), "ask", "What did I plant?"))
    assert str(path) in line and "--model" in line
    assert snapshot(memory) == before


# -- import files --------------------------------------------------------------------------------------
def _lines(*objs) -> str:
    return "".join(json.dumps(o) + "\n" for o in objs)


IMPORTS = {
    "malformed": ("jsonl", lambda p: p.write_text(_lines(TURN) + "{not json}\n")),
    "truncated": ("jsonl", lambda p: p.write_text(_lines(TURN)[:-20])),
    "a key missing": ("jsonl", lambda p: p.write_text(_lines({k: v for k, v in TURN.items() if k != "time"}))),
    "a wrong type": ("jsonl", lambda p: p.write_text(_lines({**TURN, "text": ["a", "list"]}))),
    "latin-1": ("jsonl", lambda p: p.write_bytes(_lines({**TURN, "text": "café"}).replace("\\u00e9", "é")
                                                  .encode("latin-1"))),
    "utf-16": ("jsonl", lambda p: p.write_bytes(_lines(TURN).encode("utf-16"))),
    "binary": ("jsonl", lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(5000))),
    "empty": ("jsonl", lambda p: p.write_text("")),
    "a chatgpt file to jsonl": ("jsonl", lambda p: p.write_text(json.dumps([{"title": "x", "mapping": {}}]))),
    "jsonl to chatgpt": ("chatgpt", lambda p: p.write_text(_lines(TURN, TURN))),
    "jsonl to locomo": ("locomo", lambda p: p.write_text(_lines(TURN))),
    "a zip to chatgpt": ("chatgpt", lambda p: p.write_bytes(b"PK\x03\x04" + os.urandom(3000))),
    "csv": ("jsonl", lambda p: p.write_text("session,role,text,time\na,user,hi,2024-05-01\n")),
}


@pytest.mark.parametrize("case", IMPORTS)
def test_a_bad_import_file_is_one_sentence_and_imports_nothing(memory, tmp_path, case):
    kind, write = IMPORTS[case]
    path = tmp_path / "in.json"
    write(path)
    before = snapshot(memory)
    line = one_sentence(invoke(memory, "import", kind, str(path), "--segmenter", "none"))
    assert str(path) in line
    assert snapshot(memory) == before


def test_a_huge_import_file_is_read_and_refused_whole(memory, tmp_path):
    """100 MB of good lines and one bad line at the end: the position is named, nothing imported."""
    path = tmp_path / "huge.jsonl"
    line = json.dumps({**TURN, "text": "x" * 1000}) + "\n"
    n = 100_000_000 // len(line)
    with open(path, "w") as f:
        for i in range(0, n, 10_000):
            f.write(line * min(10_000, n - i))
        f.write("{oops\n")
    before = snapshot(memory)
    out = one_sentence(invoke(memory, "import", "jsonl", str(path), "--segmenter", "none"))
    assert f"line {n + 1}" in out
    assert snapshot(memory) == before
    path.unlink()


def test_one_huge_line_is_refused(memory, tmp_path):
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps({**TURN, "text": "word " * 22_000_000}) + "\n")   # 110 MB in one turn
    before = snapshot(memory)
    out = one_sentence(invoke(memory, "import", "jsonl", str(path), "--segmenter", "none"))
    assert "line 1" in out
    assert snapshot(memory) == before
    path.unlink()


# -- recordings ----------------------------------------------------------------------------------------
def _wav_header_only(p: Path) -> Path:
    import numpy as np
    import soundfile as sf

    sf.write(str(p), np.zeros(0, np.float32), 16000)
    return p


RECORDINGS = {
    "an empty file": lambda p: p.write_bytes(b"") or p,
    "text": lambda p: p.write_text("hello, this is not a recording\n") and p,
    "random bytes": lambda p: p.write_bytes(os.urandom(50_000)) and p,
    "a wav with no samples": _wav_header_only,
}


@pytest.mark.parametrize("case", RECORDINGS)
def test_a_bad_recording_is_one_sentence_and_stores_nothing(memory, tmp_path, case):
    path = tmp_path / "rec.wav"
    RECORDINGS[case](path)
    before = snapshot(memory)
    line = one_sentence(invoke(memory, "listen", "--file", str(path), "--started-at", "2026-01-01T10:00",
                               "--no-index"))
    assert str(path) in line
    assert snapshot(memory) == before
    assert not (memory.parent / "a-clips").exists() or not any((memory.parent / "a-clips").rglob("*.flac"))


@pytest.mark.real
@pytest.mark.skipif(not shutil.which("espeak-ng") or not shutil.which("sox"), reason="needs espeak-ng and sox")
@pytest.mark.parametrize("rate", [8000, 11025, 44100, 96000])
def test_speech_at_odd_sample_rates_is_heard(memory, tmp_path, rate):
    raw, path = tmp_path / "raw.wav", tmp_path / f"rec{rate}.wav"
    subprocess.run(["espeak-ng", "-w", str(raw), "The plumber comes at four."], check=True, capture_output=True)
    subprocess.run(["sox", str(raw), "-r", str(rate), str(path)], check=True, capture_output=True)
    r = invoke(memory, "listen", "--file", str(path), "--started-at", "2026-01-01T10:00", "--no-index")
    assert r.exit_code == 0, r.output
    assert "plumber" in r.output.lower()


# -- the database itself --------------------------------------------------------------------------------
def test_a_database_from_a_newer_version_is_refused_and_left_alone(memory):
    s = Store(memory)
    with s.db.conn:
        s.db.execute("INSERT INTO _migrations (name, applied_at) VALUES ('m999_from_the_future', datetime('now'))")
    s.close()
    before = memory.read_bytes()
    line = one_sentence(invoke(memory, "sessions"))
    assert "newer version" in line and "m999_from_the_future" in line
    assert memory.read_bytes() == before


@pytest.mark.parametrize("content", [b"not a database at all\n" * 100, os.urandom(8192)])
def test_a_file_that_is_not_a_database_is_refused_and_left_alone(tmp_path, content):
    db = tmp_path / "notes.db"
    db.write_bytes(content)
    line = one_sentence(invoke(db, "sessions"))
    assert str(db) in line
    assert db.read_bytes() == content


# -- a full disk -----------------------------------------------------------------------------------------
@pytest.fixture
def small_disk(tmp_path):
    """A 4 MB tmpfs (needs root; skipped where it cannot be mounted)."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], capture_output=True)
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def fill(folder: Path, leave: int) -> Path:
    """Fill the disk holding `folder`, leaving about `leave` bytes."""
    filler = folder / "filler"
    free = shutil.disk_usage(folder).free
    with open(filler, "wb") as f:
        f.write(b"\0" * max(0, free - leave))
    return filler


def full_disk_memory(disk: Path) -> Path:
    db = disk / "a.db"
    s = Store(db)
    sid = s.new_session("Garden")
    s.add_turn(sid, "user", "I planted tomatoes.")
    s.close()
    return db


def test_a_full_disk_during_an_import(small_disk, tmp_path):
    db = full_disk_memory(small_disk)
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps({**TURN, "session": f"s{i}", "text": f"note {i} " + "x" * 400}) + "\n"
                            for i in range(2000)))
    before = snapshot(db)
    filler = fill(small_disk, 300_000)
    line = one_sentence(invoke(db, "import", "jsonl", str(path), "--segmenter", "none"))
    assert "full" in line
    filler.unlink()
    assert snapshot(db) == before
    assert Store(db).integrity_ok()


def test_a_full_disk_during_a_backup(small_disk, tmp_path):
    """The ZIP is written by a thread of its own: the disk filling under it is still one sentence, and no
    half-written backup is left."""
    db = tmp_path / "a.db"
    s = Store(db)
    sid = s.new_session("Notes")
    for i in range(2000):      # random hex: the ZIP (text and its full-text index, deflated) outgrows the disk
        s.add_turn(sid, "user", f"note {i} " + os.urandom(2000).hex())
    s.close()
    before = snapshot(db)
    line = one_sentence(invoke(db, "export", "backup", str(small_disk / "memory.zip")))
    assert "No backup was left half written" in line and ("space" in line or "full" in line)
    assert list(small_disk.iterdir()) == []
    assert snapshot(db) == before


def test_a_full_disk_when_a_message_is_stored(small_disk):
    db = full_disk_memory(small_disk)
    before = snapshot(db)
    filler = fill(small_disk, 0)
    line = one_sentence(invoke(db, "--model", "smollm2", "ask", "What did I plant? " * 2000))
    assert "full" in line or "space" in line
    filler.unlink()
    assert snapshot(db) == before


def test_a_full_disk_during_a_consolidation(small_disk, tmp_path):
    db = full_disk_memory(small_disk)
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps({**TURN, "session": f"s{i % 20}", "text": f"note {i} about the garden "
                                        + "and tomatoes " * 20, "time": f"2024-05-01T09:{i % 60:02d}:00Z",
                                        "id": str(i)}) + "\n" for i in range(400)))
    assert invoke(db, "import", "jsonl", str(path), "--segmenter", "none").exit_code == 0
    before = snapshot(db)
    filler = fill(small_disk, 50_000)
    line = one_sentence(invoke(db, "--model", "smollm2", "consolidate"))
    assert "full" in line or "space" in line
    filler.unlink()
    s = Store(db)
    assert s.integrity_ok()
    s.close()
