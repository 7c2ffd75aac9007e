"""Numbered schema migrations, recorded in the `_migrations` table (simonw/llm style).

Each function runs once, in order, inside one transaction. Never edit a released migration: add a new one.
"""
from typing import Callable

MIGRATIONS: list[tuple[str, Callable]] = []


def migration(fn: Callable) -> Callable:
    MIGRATIONS.append((fn.__name__, fn))
    return fn


def migrate(db, embedding_dim: int = 384) -> list[str]:
    """Apply pending migrations; return the names applied."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
    )
    done = {row[0] for row in db.execute("SELECT name FROM _migrations").fetchall()}
    applied = []
    for name, fn in MIGRATIONS:
        if name in done:
            continue
        with db.conn:
            fn(db, embedding_dim)
            db.execute(
                "INSERT INTO _migrations (name, applied_at) VALUES (?, datetime('now'))", [name]
            )
        applied.append(name)
    return applied


@migration
def m001_sessions_and_turns(db, dim):
    db.execute("""
        CREATE TABLE sessions (
            id INTEGER PRIMARY KEY,
            title TEXT,
            started_at TEXT NOT NULL,
            source TEXT NOT NULL DEFAULT 'chat' CHECK (source IN ('chat', 'audio', 'import')),
            external_id TEXT UNIQUE
        )""")
    db.execute("""
        CREATE TABLE turns (
            id INTEGER PRIMARY KEY,
            session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            role TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'system')),
            speaker TEXT,
            text TEXT NOT NULL,
            created_at TEXT NOT NULL,
            source TEXT NOT NULL DEFAULT 'chat' CHECK (source IN ('chat', 'audio', 'import')),
            status TEXT NOT NULL DEFAULT 'complete'
                CHECK (status IN ('complete', 'streaming', 'interrupted', 'error')),
            external_id TEXT
        )""")
    db.execute("CREATE INDEX turns_session ON turns(session_id, id)")
    db.execute("CREATE INDEX turns_created ON turns(created_at)")
    db.execute("CREATE UNIQUE INDEX turns_external ON turns(session_id, external_id)")
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")


def vector_table_sql(name: str, dim: int) -> str:
    """A sqlite-vec table whose metadata columns let KNN queries filter by time, source and session."""
    return (f"CREATE VIRTUAL TABLE vectors_{name} USING vec0(id INTEGER PRIMARY KEY, "
            f"embedding float[{dim}] distance_metric=cosine, created_at TEXT, source TEXT, "
            f"session_id INTEGER)")


def fts_table_sql(name: str) -> str:
    """An FTS5 (BM25) table over the retrieval text of one kind of unit, rowid = the unit's id."""
    return (f"CREATE VIRTUAL TABLE fts_{name} USING fts5(text, created_at UNINDEXED, source UNINDEXED, "
            f"session_id UNINDEXED, tokenize='porter unicode61')")


@migration
def m002_turn_vectors(db, dim):
    # Dense index over single turns: the first recall unit, and later the provisional entries
    # that keep not-yet-segmented turns findable.
    db.execute(vector_table_sql("turn", dim))


@migration
def m003_turn_fts(db, dim):
    # Lexical half of hybrid recall over turns.
    db.execute(fts_table_sql("turn"))
