"""The SQLite file: connection, permissions, migrations and the raw conversation (sessions and turns).

The raw turns are the source of truth; everything else in the database is derived from them.
"""
from __future__ import annotations

import os
import stat
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils
import sqlite_vec
from sqlite_utils.utils import sqlite3

from .clock import utcnow
from .errors import StoreError
from .folders import private_dirs
from .migrations import NewerSchemaError, migrate

try:
    import fcntl
except ImportError:   # not POSIX: no other process is told; a start repairs every answer
    fcntl = None

SOURCES = ("chat", "audio", "import")


@dataclass
class Turn:
    id: int
    session_id: int
    role: str
    text: str
    created_at: str
    source: str = "chat"
    status: str = "complete"
    speaker: str | None = None
    corrected_by: int | None = None     # the turn holding the user's correction of this one


@dataclass
class Session:
    id: int
    title: str | None
    started_at: str
    source: str
    turn_count: int = 0
    last_at: str | None = None


class TransactionConnection(sqlite3.Connection):
    """A connection whose `with conn:` block is one transaction from its first statement.

    Python's sqlite3 opens a transaction only at the first INSERT/UPDATE/DELETE it sees itself, and
    sqlite-utils' `Database.execute` commits a write at once when no transaction is open: a block whose
    first write went through `db.execute` was committed statement by statement (a crash or a full disk
    half way left half of it). Here the block begins with BEGIN IMMEDIATE (the write lock, waited for up
    to the busy timeout), and a block inside an open transaction joins it as before."""

    def __enter__(self):
        if not self.in_transaction:
            self.execute("BEGIN IMMEDIATE")
        return super().__enter__()


class LiveAnswers:
    """The answers this Store is streaming, shown to other processes by a shared lock on
    '<db>.answers.lock' (the OS drops it when the process dies, however it dies). An app's start marks
    'streaming' answers interrupted only when it can take that lock exclusively: when no process is
    streaming, every answer still marked so was cut off."""

    def __init__(self, db_path: Path):
        self.path = Path(str(db_path) + ".answers.lock")
        self.ids: set[int] = set()
        self.fd: int | None = None
        self._lock = threading.Lock()

    def hold(self) -> None:
        """Before a streaming answer is written (waits only while another start repairs, a moment)."""
        with self._lock:
            if self.fd is None and fcntl is not None:
                old = os.umask(0o077)
                try:
                    fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
                finally:
                    os.umask(old)
                fcntl.flock(fd, fcntl.LOCK_SH)
                self.fd = fd

    def started(self, turn_id: int) -> None:
        with self._lock:
            self.ids.add(turn_id)

    def ended(self, turn_id: int | None = None, *, all_: bool = False) -> None:
        with self._lock:
            self.ids.discard(turn_id)
            if all_:
                self.ids.clear()
            if not self.ids and self.fd is not None:
                os.close(self.fd)      # releases the lock
                self.fd = None

    @contextmanager
    def none_streaming(self):
        """Yields True while it holds the lock exclusively (no process streams an answer)."""
        if fcntl is None:
            yield True
            return
        old = os.umask(0o077)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        finally:
            os.umask(old)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                yield False
                return
            yield True
        finally:
            os.close(fd)


def title_from(text: str) -> str:
    """A session's title from its first message: its opening words."""
    words = text.strip().split()
    return " ".join(words[:8])[:60] or "New conversation"


def _another_programs(conn) -> bool:
    """Whether an existing file holds tables but none of the assistant's own bookkeeping: someone else's
    database, which the assistant must neither migrate nor switch to WAL. An empty file is a new one."""
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    return bool(names) and "_migrations" not in names


def _use_wal(conn, patience: float = 30.0) -> None:
    """Switch to WAL. The switch takes an exclusive lock and SQLite answers 'database is locked' at once,
    without waiting for busy_timeout, when another process is opening the same fresh file: so wait here."""
    deadline = time.monotonic() + patience
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class Store:
    """One SQLite database file (WAL, mode 0600; folders it has to create are 0700) with sqlite-vec loaded.

    Two ways to open it. The app's (the default; the chat, `ask`, commands a person runs) migrates and
    repairs: answers left 'streaming' by a crash are marked interrupted. A worker's (`worker=True`:
    background consolidation, the daemon's checks, listening's own connection) repairs nothing, because
    the answer another process is streaming right now looks exactly like one a crash cut off."""

    def __init__(self, path: str | os.PathLike, embedding_dim: int = 384, *, worker: bool = False):
        self.path = Path(path).expanduser()
        self.embedding_dim = embedding_dim
        self.worker = worker
        self.notices: list[str] = []   # what opening it repaired, for the user (see assistant.privacy)
        self._reader: Store | None = None
        self._reader_lock = threading.Lock()
        self.live = LiveAnswers(self.path)
        self.closing = False              # set by close(): background readers stop early
        self._background = 0              # background readers using this connection now
        self._background_done = threading.Condition()
        # Called after something was forgotten (memory.forget), e.g. to drop caches kept beside the database.
        self.on_forget: list = []
        try:
            private_dirs(self.path.parent)   # only what it creates is made private
            fresh = not self.path.exists()
            old_umask = os.umask(0o077)
            try:
                conn = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30,
                                       factory=TransactionConnection)
            finally:
                os.umask(old_umask)
            if fresh:
                os.chmod(self.path, stat.S_IRUSR | stat.S_IWUSR)
            elif _another_programs(conn):
                conn.close()
                raise StoreError(
                    f"The file at {self.path} is another program's SQLite database, not the assistant's; it "
                    "was left as it is. Choose another file with --db PATH or ASSISTANT_DB.")
            conn.enable_load_extension(True)
            sqlite_vec.load(conn)
            conn.enable_load_extension(False)
            self.db = sqlite_utils.Database(conn)
            _use_wal(conn)
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self.db.execute("PRAGMA busy_timeout=30000")
            # Deleted rows are overwritten with zeros, so that what is forgotten leaves the file's bytes
            # (memory.forget), not only the queries.
            self.db.execute("PRAGMA secure_delete=ON")
            migrate(self.db, embedding_dim)
            if not worker:
                self._recover_streaming()
        except NewerSchemaError as e:
            self._close_quietly()
            raise StoreError(
                f"The database at {self.path} was written by a newer version of the assistant (it has "
                f"changes this version does not know: {e}); update the assistant, or choose another "
                "database with --db PATH or ASSISTANT_DB.") from None
        except (sqlite3.OperationalError, sqlite3.DatabaseError, OSError) as e:
            self._close_quietly()
            raise StoreError(
                f"Cannot open the database at {self.path} ({e}); check that it is the assistant's database "
                "and that you may write there, or choose another with --db PATH or ASSISTANT_DB."
            ) from e

    # -- lifecycle -------------------------------------------------------------------------------
    def _close_quietly(self) -> None:
        db = getattr(self, "db", None)
        if db is not None:
            db.conn.close()

    def _recover_streaming(self) -> None:
        """Answers cut off by a crash or kill are kept and marked interrupted (not while another process
        streams one: then the next start does it)."""
        with self.live.none_streaming() as alone:
            if alone:
                with self.db.conn:
                    self.db.execute("UPDATE turns SET status='interrupted' WHERE status='streaming'")

    def reader(self) -> "Store":
        """A second connection, for threads that only read (the UI, playing a clip) while another thread
        writes through this one: it sees committed rows only, never a transaction half done."""
        with self._reader_lock:
            if self._reader is None:
                self._reader = Store(self.path, self.embedding_dim, worker=True)
            return self._reader

    @contextmanager
    def background(self):
        """Marks work of another thread on this connection (loading an index): close() waits for it to
        end instead of closing the connection under it (a statement of a closed connection can crash the
        process), and the work should stop between steps once `closing` is set. Yields False (and nothing
        should be done) when the store is already closing."""
        with self._background_done:
            if self.closing:
                yield False
                return
            self._background += 1
        try:
            yield True
        finally:
            with self._background_done:
                self._background -= 1
                self._background_done.notify_all()

    def close(self) -> None:
        with self._background_done:
            self.closing = True
            self._background_done.wait_for(lambda: self._background == 0, timeout=60)
        self.live.ended(all_=True)
        if self._reader is not None:
            self._reader.db.conn.close()
            self._reader = None
        try:
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            self.db.conn.close()

    @contextmanager
    def write(self):
        """One transaction that holds the write lock from its first statement (BEGIN IMMEDIATE), so
        that what it reads inside is still true when it writes; inside a transaction already open on
        this connection, it joins that one."""
        conn = self.db.conn
        if conn.in_transaction:
            yield
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            if conn.in_transaction:
                conn.rollback()
            raise
        conn.commit()

    def integrity_ok(self) -> bool:
        return self.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    def tables(self) -> list[str]:
        return [r[0] for r in self.db.execute(
            "SELECT name FROM sqlite_master WHERE type IN ('table') ORDER BY name").fetchall()]

    # -- sessions --------------------------------------------------------------------------------
    def new_session(self, title: str | None = None, source: str = "chat",
                    started_at: str | None = None, external_id: str | None = None) -> int:
        with self.db.conn:
            cur = self.db.execute(
                "INSERT INTO sessions (title, started_at, source, external_id) VALUES (?, ?, ?, ?)",
                [title, started_at or utcnow(), source, external_id])
        return cur.lastrowid

    def session(self, session_id: int) -> Session | None:
        rows = self.sessions(where="s.id = ?", params=[session_id])
        return rows[0] if rows else None

    def session_by_external_id(self, external_id: str) -> int | None:
        row = self.db.execute("SELECT id FROM sessions WHERE external_id = ?", [external_id]).fetchone()
        return row[0] if row else None

    def sessions(self, limit: int | None = None, where: str = "1", params=()) -> list[Session]:
        """Sessions, most recently active first."""
        # turn_count and last_at are kept on the row by triggers (migration m041): no scan of the turns
        sql = f"""
            SELECT s.id, s.title, s.started_at, s.source, s.turn_count, s.last_at
            FROM sessions s WHERE {where} ORDER BY s.last_at DESC, s.id DESC"""
        if limit:
            sql += f" LIMIT {int(limit)}"
        return [Session(*row) for row in self.db.execute(sql, list(params)).fetchall()]

    def rename_session(self, session_id: int, title: str) -> bool:
        """Give a session a title of the user's; False when there is no such session."""
        title = " ".join(title.split())
        if not title:
            raise ValueError("a title needs at least one word")
        with self.db.conn:
            return self.db.execute("UPDATE sessions SET title = ? WHERE id = ?", [title, session_id]).rowcount > 0

    def set_title(self, session_id: int, title: str) -> None:
        with self.db.conn:
            self.db.execute("UPDATE sessions SET title = ? WHERE id = ?", [title, session_id])

    # -- turns -----------------------------------------------------------------------------------
    def add_turn(self, session_id: int, role: str, text: str, *, source: str = "chat",
                 status: str = "complete", created_at: str | None = None,
                 speaker: str | None = None, external_id: str | None = None) -> int:
        """Insert and commit one turn; returns its id. Committed before this returns."""
        if status == "streaming":
            self.live.hold()
        try:
            with self.db.conn:
                cur = self.db.execute(
                    "INSERT INTO turns (session_id, role, speaker, text, created_at, source, status,"
                    " external_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [session_id, role, speaker, text, created_at or utcnow(), source, status, external_id])
        except BaseException:
            if status == "streaming":
                self.live.ended()
            raise
        if status == "streaming":
            self.live.started(cur.lastrowid)
        return cur.lastrowid

    def update_turn(self, turn_id: int, text: str, status: str | None = None) -> None:
        with self.db.conn:
            if status:
                self.db.execute("UPDATE turns SET text = ?, status = ? WHERE id = ?",
                                [text, status, turn_id])
            else:
                self.db.execute("UPDATE turns SET text = ? WHERE id = ?", [text, turn_id])
        if status and status != "streaming":
            self.live.ended(turn_id)

    def turn(self, turn_id: int, *, corrected: bool = False) -> Turn | None:
        rows = self._turns("id = ?", [turn_id], corrected=corrected)
        return rows[0] if rows else None

    def transcript(self, session_id: int) -> list[Turn]:
        """A session's turns as they were said, in order: with the turns the user corrected (marked by
        `corrected_by`) and the corrections."""
        return self._turns("session_id = ?", [session_id], "ORDER BY id", corrected=True)

    def turns(self, session_id: int, limit: int | None = None) -> list[Turn]:
        """A session's turns in order; with limit, only the last `limit`."""
        if limit:
            rows = self._turns("session_id = ?", [session_id, limit], "ORDER BY id DESC LIMIT ?")
            return rows[::-1]
        return self._turns("session_id = ?", [session_id], "ORDER BY id")

    def turns_by_ids(self, ids: list[int]) -> list[Turn]:
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        return self._turns(f"id IN ({marks})", list(ids), "ORDER BY created_at, id")

    def _turns(self, where: str, params, order: str = "", corrected: bool = False) -> list[Turn]:
        """Turns matching `where`, then `order` (e.g. "ORDER BY id LIMIT 5"). A turn the user corrected is
        left out (its correction, a turn of its own, stands for it) unless `corrected`."""
        if not corrected:
            where = f"corrected_by IS NULL AND ({where})"
        sql = ("SELECT id, session_id, role, text, created_at, source, status, speaker, corrected_by FROM turns "
               f"WHERE {where} {order}")
        return [Turn(*row) for row in self.db.execute(sql, params).fetchall()]

    def count(self, table: str) -> int:
        return self.db.execute(f"SELECT COUNT(*) FROM [{table}]").fetchone()[0]

    # -- meta ------------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self.db.conn:
            self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", [key, value])
