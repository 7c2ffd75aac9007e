"""Backup and restore: the whole memory in one ZIP file of a documented, versioned format
(docs/backup-format.md), and back into an empty database.

What goes in: every table of the database that holds memory (sessions, turns, clips' rows and transcripts,
segments, links, summaries, the memories each answer used, consolidation's records of what is done, and any
table a later schema adds), the two search indexes (their text and their vectors, so that nothing has to be
embedded again), the settings file, and with --with-audio the clips' audio files. What stays out: what
belongs to one database file only (the migrations table, the vector indexes' bit-code mirrors and their
generation counters), which the restoring database makes for itself.
"""
from __future__ import annotations

import base64
import hashlib
import io
import json
import queue
import threading
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from memory.clock import utcnow
from memory.migrations import MIGRATIONS
from memory.store import Store
from memory.vectors import VectorIndex

from . import __version__
from .errors import AssistantError

FORMAT = "assistant-backup"
VERSION = 1
INDEXES = ("turn", "segment")          # memory.index's two hybrid indexes: fts_<name> and vectors_<name>
_PRIVATE_META = "codes_gen:"           # meta keys of one file's vector mirrors
_BATCH = 5000


class BackupError(AssistantError):
    """A backup cannot be written or restored; the message says why and what to do."""


@dataclass
class Report:
    tables: dict[str, int] = field(default_factory=dict)
    vectors: int = 0
    audio_files: int = 0
    clips_without_audio: int = 0
    settings: str = ""          # what happened to the settings file (restore)

    @property
    def rows(self) -> int:
        return sum(self.tables.values())


# -- which tables -----------------------------------------------------------------------------------
# Bookkeeping the database's own triggers fill as rows arrive (restoring them would collide with that).
WORK_QUEUES = {"turns_to_index"}

def memory_tables(conn) -> list[str]:
    """The tables that hold memory, parents before children: every plain table except SQLite's own, the
    migrations record, work queues, the virtual index tables and their shadow tables, and the vector code
    mirrors."""
    rows = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'").fetchall()
    virtual = [n for n, sql in rows if (sql or "").upper().startswith("CREATE VIRTUAL TABLE")]
    names = sorted(n for n, _ in rows
                   if not n.startswith(("sqlite_", "_migrations", "codes_")) and n not in WORK_QUEUES
                   and not any(n == v or n.startswith(v + "_") for v in virtual))
    return _parents_first(conn, names)


def _parents_first(conn, names: list[str]) -> list[str]:
    parents = {n: {r[2] for r in conn.execute(f"PRAGMA foreign_key_list([{n}])")} & set(names) - {n}
               for n in names}
    out: list[str] = []
    while len(out) < len(names):
        ready = [n for n in names if n not in out and parents[n] <= set(out)]
        out += ready or [n for n in names if n not in out]     # a cycle: keep the rest in name order
    return out


def _has_table(conn, name: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", [name]).fetchone() is not None


def _columns(conn, table: str) -> list[str]:
    return [r[1] for r in conn.execute(f"PRAGMA table_info([{table}])")]


_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False).encode


def _cell(v):
    return {"$base64": base64.b64encode(v).decode()} if isinstance(v, (bytes, memoryview)) else v


def _uncell(v):
    return base64.b64decode(v["$base64"]) if isinstance(v, dict) and "$base64" in v else v


# -- writing ----------------------------------------------------------------------------------------
class _Writer:
    """The ZIP's members, written by a thread of their own: compressing and writing to the disk overlap with
    reading the database (at a million segments writing the 4.9 GB took a third of a backup, the reads and
    JSON most of the rest). Checksums are taken here, as the data is made."""

    def __init__(self, z: zipfile.ZipFile):
        self.z = z
        self.queue: queue.Queue = queue.Queue(maxsize=16)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True, name="backup-writer")
        self.thread.start()

    def _run(self) -> None:
        f = None
        while (item := self.queue.get()) is not None:
            kind, value = item
            if self.error is not None:
                continue                          # drain: the main thread raises it at its next put
            try:
                if kind == "open":
                    f = self.z.open(value, "w", force_zip64=True)
                elif kind == "data":
                    f.write(value)
                elif kind == "close":
                    f, _ = None, f.close()
                else:
                    self.z.writestr(*value)
            except BaseException as e:            # noqa: BLE001 (handed to the main thread)
                self.error = e
        if f is not None:                         # stopped in a member: close it so the ZIP can close
            try:
                f.close()
            except Exception:                     # noqa: BLE001
                pass

    def _put(self, item) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put(item)

    def __enter__(self) -> "_Writer":
        return self

    def __exit__(self, kind, *_) -> None:
        """Wait for every member to be written (after an error, for the member under way to close, so that
        the ZIP can); raises what went wrong in the writer, unless something else already is."""
        if self.thread.is_alive():
            self.queue.put(None)
            self.thread.join()
        if kind is None and self.error is not None:
            raise self.error

    def member(self, name, chunks: Iterator[bytes]) -> str:
        """A member (a name, or a ZipInfo) of the chunks' bytes; their sha256."""
        h = hashlib.sha256()
        self._put(("open", name))
        for c in chunks:
            h.update(c)
            self._put(("data", c))
        self._put(("close", None))
        return h.hexdigest()

    def writestr(self, name: str, text: str) -> None:
        self._put(("str", (name, text)))

    def lines(self, name: str, rows: Iterator[list]) -> dict:
        """A JSON Lines member; its row count and sha256."""
        n = 0

        def chunks():
            nonlocal n
            buf = []
            for row in rows:
                try:
                    buf.append(_ENCODE(row))
                except TypeError:        # a BLOB: as base64 (rare; _cell on every value costs a second)
                    buf.append(_ENCODE([_cell(v) for v in row]))
                n += 1
                if len(buf) >= _BATCH:
                    yield ("\n".join(buf) + "\n").encode()
                    buf = []
            if buf:
                yield ("\n".join(buf) + "\n").encode()

        sha = self.member(name, chunks())
        return {"file": name, "rows": n, "sha256": sha}

    def sql_lines(self, name: str, conn, columns: list[str], source: str, key: str) -> dict:
        """A JSON Lines member of `columns` from `source` (a table, or a FROM clause with its joins), in the
        order of its integer `key`; its row count and sha256. SQLite writes each chunk of lines itself: the
        same member written a row at a time by Python took most of a backup of a large memory. A REAL is
        written with 17 significant digits (SQLite's own JSON keeps 15, which loses the last bits); a chunk
        holding bytes, which SQLite's JSON cannot hold, is written by Python."""
        values = ", ".join(f"CASE typeof({c}) WHEN 'real' THEN json(printf('%!.17g', {c})) "
                           f"WHEN 'blob' THEN NULL ELSE {c} END" for c in columns)
        blobs = " + ".join(f"(typeof({c}) = 'blob')" for c in columns)
        sql = (f"SELECT string_agg(line, char(10) ORDER BY k), count(*), max(k), sum(b), min(k) FROM "
               f"(SELECT {key} AS k, json_array({values}) AS line, {blobs} AS b FROM {source} "
               f"WHERE {key} > ? ORDER BY {key} LIMIT {_BATCH})")
        plain = f"SELECT {', '.join(columns)} FROM {source} WHERE {key} >= ? AND {key} <= ? ORDER BY {key}"
        n = 0

        def chunks():
            nonlocal n
            after = -(1 << 63)
            while True:
                text, count, last, with_bytes, first = conn.execute(sql, [after]).fetchone()
                if not count:
                    return
                if with_bytes:     # a BLOB: as base64, by Python (rare: no table of the schema has one)
                    text = "\n".join(_ENCODE([_cell(v) for v in row]) for row in conn.execute(plain, [first, last]))
                yield (text + "\n").encode()
                n, after = n + count, last

        sha = self.member(name, chunks())
        return {"file": name, "rows": n, "sha256": sha}

    def raw(self, name: str, chunks: Iterator[bytes], compress: bool = False) -> str:
        info = zipfile.ZipInfo(name, date_time=(2000, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
        return self.member(info, chunks)


def private_file(path: Path, mode: str = "wb"):
    """A file only this user may read (0600), as the database is: a backup is the whole memory."""
    import os

    old = os.umask(0o077)
    try:
        return open(path, mode)
    finally:
        os.umask(old)


def _query(conn, sql: str, params=()) -> Iterator[tuple]:
    cur = conn.execute(sql, list(params))
    while rows := cur.fetchmany(_BATCH):
        yield from rows


def write_backup(store: Store, path: Path, *, with_audio: bool = False, settings_file: Path | None = None,
                 progress: Callable[[str], None] | None = None) -> Report:
    """Write the memory of `store` to `path` (through a temporary file beside it: a failure leaves no half
    backup). The reads are one snapshot: a chat writing meanwhile is either all in or not at all."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.partial")
    conn = store.db.conn
    report = Report()
    tell = progress or (lambda _: None)
    try:
        conn.execute("BEGIN")          # one read snapshot for every table (WAL: writers go on)
        with private_file(tmp) as out, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z, \
                _Writer(z) as w:
            manifest = {"format": FORMAT, "version": VERSION, "created_at": utcnow(), "app_version": __version__,
                        "schema": [r[0] for r in conn.execute("SELECT name FROM _migrations ORDER BY rowid")],
                        "embedding_dim": store.embedding_dim, "tables": [], "indexes": [], "audio": [],
                        "settings": None}
            for table in memory_tables(conn):
                tell(f"table {table}")
                cols = _columns(conn, table)
                source = (f"(SELECT rowid AS rowid, * FROM meta WHERE key NOT LIKE '{_PRIVATE_META}%')"
                          if table == "meta" else f"[{table}]")
                entry = {"name": table, "columns": cols, **w.sql_lines(
                    f"tables/{table}.jsonl", conn, [f"[{c}]" for c in cols], source, "rowid")}
                manifest["tables"].append(entry)
                report.tables[table] = entry["rows"]
            for name in INDEXES:
                tell(f"index {name}")
                fts = w.sql_lines(f"index/fts_{name}.jsonl", conn,
                                  ["rowid", "text", "created_at", "source", "session_id"], f"fts_{name}", "rowid")
                # The vectors, then their ids and filters read again in the same snapshot and order: holding
                # the ids of millions of vectors until the second file can be written took gigabytes.
                data_sha = w.raw(f"index/vectors_{name}.f32", _vector_bytes(conn, name))
                meta = _vector_rows(w, conn, name)
                manifest["indexes"].append({"name": name, "fts": fts, "vectors": {
                    **meta, "data": f"index/vectors_{name}.f32", "data_sha256": data_sha, "dtype": "float32<"}})
                report.vectors += meta["rows"]
            if with_audio:
                for clip_id, clip_path in _query(conn, "SELECT id, path FROM audio_clips ORDER BY id"):
                    p = Path(clip_path)
                    if not p.is_file():
                        report.clips_without_audio += 1
                        continue
                    name = f"audio/{clip_id}{p.suffix or '.flac'}"
                    sha = w.raw(name, _file_chunks(p))
                    manifest["audio"].append({"clip_id": clip_id, "file": name, "name": p.name,
                                              "folder": p.parent.name, "sha256": sha})
                    report.audio_files += 1
            if settings_file is not None and settings_file.is_file():
                text = settings_file.read_bytes()
                manifest["settings"] = {"file": "settings/config.toml",
                                        "sha256": w.raw("settings/config.toml", iter([text]), compress=True)}
            w.writestr("manifest.json", json.dumps(manifest, indent=1, ensure_ascii=False))
        conn.execute("COMMIT")
        tmp.replace(path)
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        tmp.unlink(missing_ok=True)
        raise
    return report


def _vector_bytes(conn, name: str) -> Iterator[bytes]:
    """The vectors of index `name` by id, a block of up to _BATCH at a time. Read from the plain-table mirror
    that memory.vectors keeps in the same transactions as the sqlite-vec table (5x faster to read: 0.4 s
    against 2.6 s for 100,000 vectors), else from the sqlite-vec table."""
    sql = (f"SELECT v.vector FROM codes_{name} c JOIN codes_{name}_vectors v USING (id) ORDER BY c.id"
           if _has_table(conn, f"codes_{name}_vectors") else f"SELECT embedding FROM vectors_{name} ORDER BY id")
    cur = conn.execute(sql)
    while rows := cur.fetchmany(_BATCH):
        yield b"".join(r[0] for r in rows)


def _vector_rows(w: _Writer, conn, name: str) -> dict:
    """The list of the vectors' ids and filter columns, in the order of _vector_bytes."""
    if _has_table(conn, f"codes_{name}_vectors"):
        return w.sql_lines(f"index/vectors_{name}.jsonl", conn, ["c.id", "c.created_at", "c.source", "c.session_id"],
                           f"codes_{name} c JOIN codes_{name}_vectors v USING (id)", "c.id")
    return w.lines(f"index/vectors_{name}.jsonl", (list(r) for r in _query(
        conn, f"SELECT id, created_at, source, session_id FROM vectors_{name} ORDER BY id")))


def _file_chunks(p: Path) -> Iterator[bytes]:
    with open(p, "rb") as f:
        while chunk := f.read(1 << 20):
            yield chunk


# -- reading ----------------------------------------------------------------------------------------
def _corrupt(path: Path, why: str) -> BackupError:
    return BackupError(f"The backup {path} is damaged ({why}); nothing was restored. Use another copy of it.")


def read_manifest(path: Path, z: zipfile.ZipFile) -> dict:
    try:
        manifest = json.loads(z.read("manifest.json"))
    except KeyError:
        raise BackupError(f"{path} is not a backup of the assistant (it has no manifest.json); choose a file "
                          "that `assistant export backup` wrote.") from None
    except (ValueError, zipfile.BadZipFile, OSError) as e:
        raise _corrupt(path, f"its manifest cannot be read: {e}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{path} is not a backup of the assistant; choose a file that `assistant export "
                          "backup` wrote.")
    version = manifest.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise BackupError(f"The backup {path} has format version {version}, newer than this version of the "
                          f"assistant reads ({VERSION}); update the assistant, then restore it.")
    unknown = sorted(set(manifest.get("schema") or []) - {n for n, _ in MIGRATIONS})
    if unknown:
        raise BackupError(f"The backup {path} was written by a newer version of the assistant (its database "
                          f"has changes this version does not know: {', '.join(unknown)}); update the "
                          "assistant, then restore it.")
    return manifest


class _Reader:
    def __init__(self, path: Path, z: zipfile.ZipFile):
        self.path, self.z = path, z

    def _open(self, name: str):
        try:
            return self.z.open(name)
        except KeyError:
            raise _corrupt(self.path, f"{name} is missing") from None

    def chunks(self, entry: dict) -> Iterator[list[bytes]]:
        """The member's lines, up to _BATCH at a time; its checksum and row count are checked at its end."""
        h = hashlib.sha256()
        n, batch = 0, []
        try:
            with self._open(entry["file"]) as f:
                for line in io.BufferedReader(f, 1 << 20):
                    h.update(line)
                    batch.append(line)
                    if len(batch) >= _BATCH:
                        n += len(batch)
                        yield batch
                        batch = []
        except (zipfile.BadZipFile, EOFError, OSError) as e:
            raise _corrupt(self.path, f"{entry['file']}: {e}") from None
        if batch:
            n += len(batch)
            yield batch
        if h.hexdigest() != entry.get("sha256") or n != entry.get("rows"):
            raise _corrupt(self.path, f"{entry['file']} does not match its checksum")

    def parse(self, entry: dict, line: bytes) -> list:
        try:
            return json.loads(line)
        except ValueError as e:
            raise _corrupt(self.path, f"{entry['file']}: {e}") from None

    def json_chunks(self, conn, entry: dict, width: int) -> Iterator[tuple[str | None, list[bytes]]]:
        """The member's lines a chunk at a time, each with the chunk as one JSON array for SQLite to read
        (json_each), or None where Python must read it: a chunk holding bytes ({"$base64": ...}), a REAL
        (SQLite's own reading of a decimal is not always the nearest double: 1e-300 came back 1 bit off), or
        a row that is not a list of `width` values (Python names what is wrong)."""
        check = ("SELECT json_valid(?1) AND NOT EXISTS (SELECT 1 FROM json_each(?1) WHERE "
                 "json_type(value) != 'array' OR json_array_length(value) != ?2) AND NOT EXISTS "
                 "(SELECT 1 FROM json_each(?1) r, json_each(r.value) v WHERE v.type = 'real')")
        for batch in self.chunks(entry):
            data = b"[" + b",".join(line.rstrip(b"\n") for line in batch) + b"]"
            text = None
            if b'{"$base64"' not in data:
                text = data.decode("utf-8", "replace")
                if not conn.execute(check, [text, width]).fetchone()[0]:
                    text = None
            yield text, batch

    def parsed(self, entry: dict, batch: list[bytes], width: int, what: str) -> list[list]:
        rows = [self.parse(entry, line) for line in batch]
        for row in rows:
            if not isinstance(row, list) or len(row) != width:
                raise _corrupt(self.path, f"a row of {what} has {len(row) if isinstance(row, list) else 1} "
                                          f"values for {width}")
        return rows

    def insert(self, conn, table: str, cols: list[str], entry: dict, fix=lambda v: v) -> None:
        """The member's rows into `table`, SQLite reading each chunk itself where it can: parsing and binding
        a row at a time in Python was most of a large memory's restore."""
        names = ", ".join(c if c == "rowid" else f"[{c}]" for c in cols)
        by_sql = (f"INSERT INTO {table} ({names}) SELECT {', '.join(f'value->>{i}' for i in range(len(cols)))} "
                  "FROM json_each(?)")
        by_row = f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * len(cols))})"
        for text, batch in self.json_chunks(conn, entry, len(cols)):
            if text is not None:
                conn.execute(by_sql, [text])
            else:
                rows = self.parsed(entry, batch, len(cols), table)
                conn.executemany(by_row, [[fix(v) for v in row] for row in rows])

    def vectors(self, entry: dict, dim: int) -> Iterator[np.ndarray]:
        """The vectors file of `entry` in blocks of up to _BATCH vectors; its checksum is checked at its end."""
        h = hashlib.sha256()
        size = 4 * dim
        rest = b""
        try:
            with self._open(entry["data"]) as f:
                while chunk := f.read(size * _BATCH):
                    h.update(chunk)
                    chunk = rest + chunk
                    whole = len(chunk) - len(chunk) % size
                    rest = chunk[whole:]
                    if whole:
                        yield np.frombuffer(chunk[:whole], dtype="<f4").reshape(-1, dim)
        except (zipfile.BadZipFile, EOFError, OSError) as e:
            raise _corrupt(self.path, f"{entry['data']}: {e}") from None
        if rest or h.hexdigest() != entry.get("data_sha256"):
            raise _corrupt(self.path, f"{entry['data']} does not match its checksum")

    def data(self, name: str, sha: str) -> bytes:
        try:
            with self._open(name) as f:
                data = f.read()
        except (zipfile.BadZipFile, EOFError, OSError) as e:
            raise _corrupt(self.path, f"{name}: {e}") from None
        if hashlib.sha256(data).hexdigest() != sha:
            raise _corrupt(self.path, f"{name} does not match its checksum")
        return data


def held_rows(store: Store) -> dict[str, int]:
    """Rows in the tables that hold memory (meta aside: a new database has its own)."""
    conn = store.db.conn
    counts = {t: conn.execute(f"SELECT COUNT(*) FROM [{t}]").fetchone()[0] for t in memory_tables(conn)
              if t != "meta"}
    return {t: n for t, n in counts.items() if n}


def restore_backup(store: Store, path: Path, *, clips_dir: Path, settings_file: Path | None = None,
                   progress: Callable[[str], None] | None = None) -> Report:
    """Restore the backup at `path` into the empty database `store`, in one transaction: a damaged file,
    a newer format or a database that already holds memory restores nothing."""
    path = Path(path)
    tell = progress or (lambda _: None)
    try:
        z = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise BackupError(f"{path} is not a backup of the assistant (not a ZIP file, or a damaged one); choose "
                          "a file that `assistant export backup` wrote.") from None
    except OSError as e:
        raise BackupError(f"Cannot read {path} ({e.strerror or e}); check the path.") from None
    with z:
        manifest = read_manifest(path, z)
        held = held_rows(store)
        if held:
            turns = held.get("turns", 0)
            what = f"{turns:,} turn{'s' if turns != 1 else ''}" if turns else "memories"
            raise BackupError(f"The database at {store.path} already holds {what}; a backup is restored only into "
                              "an empty database: choose a new file with --db PATH.")
        if manifest.get("embedding_dim") != store.embedding_dim:
            raise BackupError(f"The backup {path} holds {manifest.get('embedding_dim')}-dimensional vectors and "
                              f"this database {store.embedding_dim}-dimensional ones; it cannot be restored here.")
        return _restore(store, path, z, manifest, clips_dir, settings_file, tell)


def _restore(store, path, z, manifest, clips_dir, settings_file, tell) -> Report:
    r = _Reader(path, z)
    report = Report()
    conn = store.db.conn
    known = set(memory_tables(conn))
    written: list[Path] = []
    conn.execute("PRAGMA foreign_keys=OFF")      # children go in before their parents (see below)
    undo = _bulk_mode(conn)
    try:
        conn.execute("BEGIN IMMEDIATE")
        # Children first: the triggers that keep a session's turn count run on a session not there yet
        # and change nothing, and the session row then comes with its own count as it was backed up.
        for entry in reversed(manifest.get("tables") or []):
            table = entry.get("name")
            if table not in known:
                raise _corrupt(path, f"it names a table this version does not have: {table}")
            cols = entry.get("columns") or []
            if set(cols) - set(_columns(conn, table)):
                raise _corrupt(path, f"the table {table} has columns this version does not have")
            tell(f"table {table}")
            r.insert(conn, f"[{table}]", cols, entry, _uncell)
            report.tables[table] = entry["rows"]
        for ix in manifest.get("indexes") or []:
            name = ix.get("name")
            if name not in INDEXES:
                raise _corrupt(path, f"it names an index this version does not have: {name}")
            tell(f"index {name}")
            r.insert(conn, f"fts_{name}", ["rowid", "text", "created_at", "source", "session_id"], ix["fts"])
            v = ix["vectors"]
            report.vectors += _restore_vectors(r, conn, VectorIndex(store, name), v, store.embedding_dim)
        # The triggers queued every restored turn for embedding; those whose vectors came along are done.
        if "turns_to_index" in WORK_QUEUES and _has_table(conn, "turns_to_index"):
            conn.execute("DELETE FROM turns_to_index WHERE turn_id IN (SELECT id FROM vectors_turn_rowids)"
                         if not _has_table(conn, "codes_turn") else
                         "DELETE FROM turns_to_index WHERE turn_id IN (SELECT id FROM codes_turn)")
        bad = conn.execute("PRAGMA foreign_key_check").fetchone()
        if bad:
            raise _corrupt(path, f"a row of {bad[0]} refers to a row of {bad[2]} that is not in it")
        tell("audio")
        _restore_audio(conn, r, manifest, clips_dir, written, report)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        for p in written:
            p.unlink(missing_ok=True)
        raise
    finally:
        conn.execute("PRAGMA foreign_keys=ON")
        undo()
    report.settings = _restore_settings(r, manifest, settings_file)
    return report


def _bulk_mode(conn) -> Callable[[], None]:
    """Settings for writing a whole memory into a new database; returns what puts them back. A rollback
    journal instead of the write-ahead log: a new database's pages are then written once, where the log
    wrote them twice (the log, then the checkpoint) and grew past the database's size as pages left the
    cache and came back; and a cache of 256 MB instead of 2 MB for the indexes' B-trees. The journal stays
    as it is where another connection holds the database (SQLite refuses the change)."""
    from sqlite_utils.utils import sqlite3      # the module the store's connection comes from

    cache = conn.execute("PRAGMA cache_size").fetchone()[0]
    conn.execute("PRAGMA cache_size=-262144")
    try:
        mode = conn.execute("PRAGMA journal_mode=DELETE").fetchone()[0]
    except sqlite3.OperationalError:
        mode = "wal"

    def undo() -> None:
        conn.execute(f"PRAGMA cache_size={int(cache)}")
        if mode == "delete":
            conn.execute("PRAGMA journal_mode=WAL")
    return undo


def _restore_vectors(r: _Reader, conn, index: VectorIndex, v: dict, dim: int) -> int:
    """The vectors of one index, block by block beside their ids (a large memory's vectors are gigabytes);
    the number restored."""
    blocks = r.vectors(v, dim)
    held = np.empty((0, dim), np.float32)
    n = 0
    for text, batch in r.json_chunks(conn, v, 4):
        while len(held) < len(batch):
            more = next(blocks, None)
            if more is None:
                raise _corrupt(r.path, f"{v['data']} holds fewer vectors than {v['file']} lists")
            held = np.concatenate([held, more]) if len(held) else more
        block, held = held[:len(batch)], held[len(batch):]
        if text is not None:
            index.write_new(text, block)
        else:
            index.write([(m[0], vec, m[1], m[2], m[3]) for m, vec in
                         zip(r.parsed(v, batch, 4, v["file"]), block)])
        n += len(batch)
    if len(held) or next(blocks, None) is not None:     # the end of `blocks` checks its sum
        raise _corrupt(r.path, f"{v['data']} holds more vectors than {v['file']} lists")
    return n


def _restore_audio(conn, r: _Reader, manifest: dict, clips_dir: Path, written: list[Path], report: Report) -> None:
    """Each clip's audio into this database's clips folder (a name already taken there gets a new one);
    the clip rows point at the new files. Clips backed up without audio keep their rows and transcripts."""
    from memory.folders import private_dirs

    for a in manifest.get("audio") or []:
        data = r.data(a["file"], a["sha256"])
        folder = clips_dir / Path(str(a.get("folder") or "restored")).name
        private_dirs(folder)
        target = folder / Path(str(a.get("name") or Path(a["file"]).name)).name
        n = 1
        while target.exists():
            target = target.with_name(f"{target.stem}-{n}{target.suffix}")
            n += 1
        _write_new(target, data)
        written.append(target)
        conn.execute("UPDATE audio_clips SET path = ? WHERE id = ?", [str(target), a["clip_id"]])
        report.audio_files += 1
    with_audio = {a["clip_id"] for a in manifest.get("audio") or []}
    report.clips_without_audio = sum(1 for (cid, p) in conn.execute("SELECT id, path FROM audio_clips")
                                     if cid not in with_audio and not Path(p).is_file())


def _restore_settings(r: _Reader, manifest: dict, settings_file: Path | None) -> str:
    """The backup's settings become this machine's only where it has none; a settings file that is there
    is never changed."""
    s = manifest.get("settings")
    if not s or settings_file is None:
        return ""
    data = r.data(s["file"], s["sha256"])
    if settings_file.exists():
        return "same" if settings_file.read_bytes() == data else "kept"
    from memory.folders import private_dirs

    private_dirs(settings_file.parent)
    _write_new(settings_file, data)
    return "restored"


def _write_new(path: Path, data: bytes) -> None:
    """A new file only this user may read (it fails rather than replace a file that is there)."""
    import os

    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
