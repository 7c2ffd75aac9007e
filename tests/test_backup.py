"""`assistant export backup` and `assistant import backup` through the real CLI on real SQLite files: a
round trip gives back every table that holds memory, the search indexes, the clips' audio and the settings;
a newer format, a database that holds memory and a damaged file are refused with one sentence, and
restore nothing."""
from __future__ import annotations

import json
import shutil
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner

from assistant import paths
from assistant.backup import WORK_QUEUES, memory_tables
from assistant.cli import cli
from memory import edits
from memory.index import HybridIndex
from memory.store import Store
from tests import memory_sample
from tests.fakes import FakeEmbedder
from tests.test_journal import utc  # noqa: F401  (fixture)


def run(db, *args, code: int = 0):
    r = CliRunner().invoke(cli, ["--db", str(db), *args])
    assert r.exit_code == code, r.output
    assert "Traceback" not in r.output
    return r.output


@pytest.fixture
def original(tmp_path, utc):  # noqa: F811
    db = tmp_path / "a" / "assistant.db"
    db.parent.mkdir()
    store = Store(db)
    ids = memory_sample.build(store, paths.clips_dir(db))
    with store.db.conn:     # an answer that used a memory (the memory screen shows which)
        user_turn = store.db.execute("SELECT id FROM turns WHERE text LIKE 'I will meet%'").fetchone()[0]
        mid = store.db.execute("INSERT INTO turn_memories (user_turn_id, position, kind, unit_id, text) "
                               "VALUES (?, 0, 'segment', 1, 'User: I drive my old car to work every day.')",
                               [user_turn]).lastrowid
        store.db.execute("INSERT INTO turn_memory_sources (memory_id, turn_id) VALUES (?, ?)", [mid, user_turn])
    # a correction, a fact remembered on purpose and a pinned memory
    edits.correct(store, ids["changed"][0], "I sold my old car last week.", embedder=FakeEmbedder())
    edits.remember(store, "My dentist is Dr. Brooks.")
    edits.pin(store, ids["changed"][1])
    store.close()
    run(db, "config", "set", "recent_turns", "7")
    return db, ids


def dump(db) -> dict:
    """Every table that holds memory, the text of both search indexes and their vectors."""
    store = Store(db)
    conn = store.db.conn
    out = {t: conn.execute(f"SELECT * FROM [{t}] ORDER BY rowid").fetchall() for t in memory_tables(conn)}
    out["meta"] = [r for r in out["meta"] if not r[0].startswith("codes_gen:")]
    for name in ("turn", "segment"):
        out[f"fts_{name}"] = conn.execute(f"SELECT rowid, * FROM fts_{name} ORDER BY rowid").fetchall()
        out[f"vectors_{name}"] = conn.execute(f"SELECT id, embedding, created_at, source, session_id FROM "
                                              f"vectors_{name} ORDER BY id").fetchall()
        out[f"codes_{name}"] = conn.execute(f"SELECT c.id, c.code, c.created_at, c.source, c.session_id, v.vector "
                                            f"FROM codes_{name} c JOIN codes_{name}_vectors v USING (id) "
                                            "ORDER BY id").fetchall()
    store.close()
    return out


def test_a_backup_restored_into_an_empty_database_is_the_same_memory(original, tmp_path):
    db, ids = original
    backup = tmp_path / "memory.backup.zip"
    out = run(db, "export", "backup", str(backup), "--with-audio")
    assert "Backed up 4 sessions, 12 turns" in out and "1 audio file" in out
    before = dump(db)
    assert before["turns"] and before["segments"] and before["links"] and before["summaries"]
    assert before["audio_clips"] and before["turn_memories"] and before["segmentation_log"]
    assert len(before["pins"]) == 2 and before["pin_turns"]
    assert [r for r in before["turns"] if r[-1] is not None]          # turns the user corrected
    config = paths.config_file().read_text()
    paths.config_file().unlink()                  # a new machine: no settings yet

    new = tmp_path / "b" / "restored.db"
    new.parent.mkdir()
    out = run(new, "import", "backup", str(backup))
    assert "Restored 4 sessions, 12 turns" in out and "Settings restored" in out
    after = dump(new)
    clip_paths = [r[3] for r in after["audio_clips"]]
    assert all(p.startswith(str(paths.clips_dir(new))) for p in clip_paths)
    after["audio_clips"] = [r[:3] + r[4:] for r in after["audio_clips"]]
    before["audio_clips"] = [r[:3] + r[4:] for r in before["audio_clips"]]
    assert set(after) == set(before)
    for table in before:
        assert after[table] == before[table], table
    # the clip's sound came back byte for byte, and the settings
    assert open(clip_paths[0], "rb").read() == ids["heard"]["path"].read_bytes()
    assert paths.config_file().read_text() == config
    # recall finds the same memories in the restored database, by words and by vectors
    for d in (db, new):
        s = Store(d)
        q = FakeEmbedder().embed(["cycle to work"])[0]
        found = HybridIndex(s, "segment").search("cycle to work", np.asarray(q), k=5)
        s.close()
        if d == db:
            expected = [h.id for h in found]
        else:
            assert [h.id for h in found] == expected and expected
    # the journal reads the same
    assert run(new, "export", "journal") == run(db, "export", "journal")
    # nothing restored waits to be embedded again (its vectors came along)
    from memory.recall import TurnIndex

    s = Store(new)
    assert TurnIndex(s, FakeEmbedder()).pending() == []
    assert s.count("turns_to_index") <= 3            # at most the corrected turns, never to be embedded
    s.close()


def test_a_database_that_holds_memory_is_refused(original, tmp_path):
    db, _ = original
    backup = tmp_path / "m.zip"
    run(db, "export", "backup", str(backup))
    before = dump(db)
    out = run(db, "import", "backup", str(backup), code=1)
    assert "already holds 12 turns" in out and "--db PATH" in out
    assert dump(db) == before


def _rewrite(src, dst, change):
    with zipfile.ZipFile(src) as a, zipfile.ZipFile(dst, "w") as b:
        for info in a.infolist():
            data = change(info.filename, a.read(info.filename))
            if data is not None:
                b.writestr(info.filename, data)


def test_a_newer_format_or_a_damaged_file_restores_nothing(original, tmp_path):
    db, _ = original
    backup = tmp_path / "m.zip"
    run(db, "export", "backup", str(backup))
    new = tmp_path / "new.db"

    def newer(name, data):
        if name == "manifest.json":
            m = json.loads(data)
            m["version"] = 2
            return json.dumps(m)
        return data
    _rewrite(backup, tmp_path / "newer.zip", newer)
    out = run(new, "import", "backup", str(tmp_path / "newer.zip"), code=1)
    assert "format version 2, newer than this version of the assistant reads (1); update the assistant" in out

    def newer_schema(name, data):
        if name == "manifest.json":
            m = json.loads(data)
            m["schema"].append("m999_something_new")
            return json.dumps(m)
        return data
    _rewrite(backup, tmp_path / "schema.zip", newer_schema)
    out = run(new, "import", "backup", str(tmp_path / "schema.zip"), code=1)
    assert "written by a newer version of the assistant" in out and "m999_something_new" in out

    # one word changed in the last table restored: everything before it was written, then rolled back
    def tampered(name, data):
        return data.replace(b"penicillin", b"penicillim") if name == "tables/sessions.jsonl" or \
            name == "tables/turns.jsonl" else data
    _rewrite(backup, tmp_path / "tampered.zip", tampered)
    out = run(new, "import", "backup", str(tmp_path / "tampered.zip"), code=1)
    assert "is damaged (tables/turns.jsonl does not match its checksum); nothing was restored" in out
    assert [p.name for p in new.parent.iterdir() if p.name.startswith("new.db")] == []   # no empty database left

    # the vectors, read block by block: one number changed, one vector short, one vector too many
    def vectors(change):
        return lambda name, data: change(data) if name == "index/vectors_turn.f32" else data
    for label, change, why in [
            ("flipped", lambda d: d[:5] + bytes([d[5] ^ 1]) + d[6:], "does not match its checksum"),
            ("short", lambda d: d[:-4 * 384], "does not match its checksum"),
            ("long", lambda d: d + d[:4 * 384], "holds more vectors than index/vectors_turn.jsonl lists"),
            ("torn", lambda d: d[:-2], "does not match its checksum")]:
        _rewrite(backup, tmp_path / f"{label}.zip", vectors(change))
        out = run(new, "import", "backup", str(tmp_path / f"{label}.zip"), code=1)
        assert f"is damaged (index/vectors_turn.f32 {why}); nothing was restored" in out, (label, out)

    cut = tmp_path / "cut.zip"
    cut.write_bytes(backup.read_bytes()[: backup.stat().st_size // 2])
    out = run(new, "import", "backup", str(cut), code=1)
    assert "not a backup of the assistant" in out

    missing = tmp_path / "nomanifest.zip"
    _rewrite(backup, missing, lambda name, data: None if name == "manifest.json" else data)
    out = run(new, "import", "backup", str(missing), code=1)
    assert "has no manifest.json" in out

    store = Store(new)
    assert store.count("turns") == 0 and store.count("sessions") == 0 and store.count("fts_turn") == 0
    store.close()
    # and the good file still restores into it
    assert "Restored 4 sessions" in run(new, "import", "backup", str(backup))


def test_a_backup_without_audio_keeps_the_transcripts_and_says_the_sound_is_not_there(original, tmp_path):
    db, ids = original
    backup = tmp_path / "m.zip"
    run(db, "export", "backup", str(backup))
    with zipfile.ZipFile(backup) as z:
        assert not [n for n in z.namelist() if n.startswith("audio/")]
    shutil.rmtree(paths.clips_dir(db))               # the machine is gone
    new = tmp_path / "new.db"
    out = run(new, "import", "backup", str(backup))
    assert "1 clip came without audio" in out and "Your settings file" not in out
    transcripts = run(new, "export", "transcripts")
    assert memory_sample.HEARD in transcripts


def test_settings_already_there_are_never_changed(original, tmp_path):
    db, _ = original
    backup = tmp_path / "m.zip"
    run(db, "export", "backup", str(backup))
    paths.config_file().write_text("recent_turns = 3\n")
    out = run(tmp_path / "new.db", "import", "backup", str(backup))
    assert "was kept as it is" in out
    assert paths.config_file().read_text() == "recent_turns = 3\n"


def test_every_table_of_the_schema_is_in_a_backup_or_made_by_the_restoring_database(tmp_path):
    """A table a later schema adds is carried without a change here; what is left out is only what each
    database file makes for itself (indexes' shadow tables, the vector codes, the migrations record)."""
    store = Store(tmp_path / "x.db")
    tables = set(store.tables())
    carried = set(memory_tables(store.db.conn))
    store.close()
    assert {"sessions", "turns", "audio_clips", "segments", "segment_turns", "links", "link_log", "summaries",
            "summary_inputs", "summary_sessions", "segmentation_log", "turn_memories", "turn_memory_sources",
            "consolidation_runs", "meta", "pins", "pin_turns"} <= carried
    for t in tables - carried:
        assert t.startswith(("fts_", "vectors_", "codes_", "_migrations", "sqlite_")) or t in WORK_QUEUES, t


def test_a_backup_is_private_and_an_earlier_one_is_never_replaced_by_mistake(original, tmp_path):
    db, _ = original
    backup = tmp_path / "m.zip"
    run(db, "export", "backup", str(backup))
    assert backup.stat().st_mode & 0o777 == 0o600
    first = backup.read_bytes()
    empty = tmp_path / "empty.db"
    out = run(empty, "export", "backup", str(backup), code=2)
    assert "already exists; choose another name, or add --force" in out
    assert backup.read_bytes() == first
    run(empty, "export", "backup", str(backup), "--force")
    assert backup.read_bytes() != first


def test_what_was_forgotten_is_in_no_export_and_no_backup(tmp_path, utc):  # noqa: F811
    """A word said once, then forgotten through the CLI: no member of a backup made afterwards holds it
    (tables, superseded summaries, the full-text index), nor the journal in any format or the transcripts."""
    from datetime import timedelta

    from memory.consolidate import Consolidator, Settings
    from tests.test_facts import ConfusedLLM, chat

    db = tmp_path / "f.db"
    store = Store(db)
    memory_sample.build(store, paths.clips_dir(db))
    chat(store, memory_sample.WEDNESDAY + timedelta(hours=2),
         [("user", "My neighbour Quillonby borrowed my ladder."), ("assistant", "Quillonby should return it.")])
    assert Consolidator(store, FakeEmbedder(), ConfusedLLM(), Settings(min_similarity=0.05)).run().status == "done"
    store.close()
    assert "Quillonby" in run(db, "export", "journal")
    run(db, "forget", "Quillonby", "--yes")
    backup = tmp_path / "after.zip"
    run(db, "export", "backup", str(backup))
    with zipfile.ZipFile(backup) as z:
        assert "tables/summaries.jsonl" in z.namelist()
        for name in z.namelist():
            assert b"quillonby" not in z.read(name).lower(), name
    for args in (("journal",), ("journal", "--format", "html"), ("journal", "--format", "json"),
                 ("transcripts",), ("transcripts", "--format", "jsonl")):
        assert "quillonby" not in run(db, "export", *args).lower(), args


def test_values_come_back_exactly_across_chunks_with_bytes_and_full_precision_reals(tmp_path):
    """SQLite writes the JSON lines in chunks: every row of a table longer than a chunk comes back once, in
    order; a REAL keeps all its bits (SQLite's own JSON keeps 15 digits); a value that is bytes, which JSON
    cannot hold, comes back as bytes; text with quotes, control characters and non-ASCII comes back as it was."""
    from assistant.backup import _BATCH, restore_backup, write_backup

    store = Store(tmp_path / "a.db")
    n = 2 * _BATCH + 7
    reals = [1 / 3, 2.0, 1e-300, 123456789.12345679, -0.1, 5e-324]
    with store.db.conn:
        sid = store.db.execute("INSERT INTO sessions (title, started_at, source) VALUES "
                               "('t', '2026-01-01T00:00:00+00:00', 'chat')").lastrowid
        store.db.conn.executemany(
            "INSERT INTO turns (session_id, role, speaker, text, created_at, source, status) "
            "VALUES (?, 'user', 'User', ?, '2026-01-01T00:00:00+00:00', 'chat', 'complete')",
            [(sid, f'turn {i} "quoted"\n\ttab \x01 é 日本') for i in range(n)])
        store.db.conn.executemany(
            "INSERT INTO consolidation_runs (trigger, started_at, status, seconds) "
            "VALUES ('t', '2026-01-01T00:00:00+00:00', 'done', ?)", [(r,) for r in reals])
        store.db.execute("INSERT INTO meta (key, value) VALUES ('raw', ?)", [b"\x00\xffbytes"])
    backup = tmp_path / "b.zip"
    write_backup(store, backup)
    before = {t: store.db.execute(f"SELECT * FROM [{t}] ORDER BY rowid").fetchall()
              for t in ("sessions", "turns", "consolidation_runs")}
    before["meta"] = store.db.execute("SELECT * FROM meta WHERE key = 'raw'").fetchall()
    store.close()
    new = Store(tmp_path / "b.db")
    restore_backup(new, backup, clips_dir=tmp_path / "clips")
    for t, rows in before.items():
        got = new.db.execute(f"SELECT * FROM [{t}] ORDER BY rowid" if t != "meta" else
                             "SELECT * FROM meta WHERE key = 'raw'").fetchall()
        assert got == rows, t
    assert len(before["turns"]) == n
    assert [type(v) for (v,) in new.db.execute("SELECT seconds FROM consolidation_runs ORDER BY id")] == [float] * 6
    assert new.db.execute("SELECT value FROM meta WHERE key = 'raw'").fetchone()[0] == b"\x00\xffbytes"
    new.close()
