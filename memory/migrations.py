"""Numbered schema migrations, recorded in the `_migrations` table (simonw/llm style).

Each function runs once, in order, inside one transaction. Never edit a released migration: add a new one.
"""
from typing import Callable

MIGRATIONS: list[tuple[str, Callable]] = []


def migration(fn: Callable) -> Callable:
    MIGRATIONS.append((fn.__name__, fn))
    return fn


def migrate(db, embedding_dim: int = 384) -> list[str]:
    """Apply pending migrations; return the names applied.

    Python's sqlite3 opens no transaction for DDL, so each migration runs inside an explicit
    BEGIN IMMEDIATE: a kill mid-migration leaves nothing behind, and a second process opening the
    same fresh file waits for the write lock, then re-reads what is done instead of redoing it.
    """
    conn = db.conn
    if _all_done(conn):  # the usual open: no write lock taken
        return []
    unknown = _unknown(conn)
    if unknown:
        raise NewerSchemaError(unknown)
    applied = []
    for name, fn in MIGRATIONS:
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("CREATE TABLE IF NOT EXISTS _migrations "
                         "(name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
            if conn.execute("SELECT 1 FROM _migrations WHERE name = ?", [name]).fetchone():
                conn.execute("COMMIT")
                continue
            fn(db, embedding_dim)
            conn.execute("INSERT INTO _migrations (name, applied_at) VALUES (?, datetime('now'))",
                         [name])
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        applied.append(name)
    return applied


class NewerSchemaError(Exception):
    """The database holds changes this version does not know (a newer version wrote it)."""

    def __init__(self, names: list[str]):
        super().__init__(", ".join(names))
        self.names = names


def _done(conn) -> set[str]:
    if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = '_migrations'").fetchone():
        return set()
    return {row[0] for row in conn.execute("SELECT name FROM _migrations")}


def _unknown(conn) -> list[str]:
    known = {name for name, _ in MIGRATIONS}
    return sorted(_done(conn) - known)


def _all_done(conn) -> bool:
    done = _done(conn)
    if not all(name in done for name, _ in MIGRATIONS):
        return False
    if done - {name for name, _ in MIGRATIONS}:
        raise NewerSchemaError(_unknown(conn))
    return True


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


@migration
def m010_audio_clips(db, dim):
    # One row per stored audio clip (a FLAC file in the data directory) and the transcript turn made
    # from it. `segments` keeps Whisper's timestamps as JSON, in seconds from `started_at`. A turn
    # forgotten elsewhere leaves turn_id NULL, so the file can still be found and removed.
    db.execute("""
        CREATE TABLE audio_clips (
            id INTEGER PRIMARY KEY,
            session_id INTEGER REFERENCES sessions(id) ON DELETE SET NULL,
            turn_id INTEGER REFERENCES turns(id) ON DELETE SET NULL,
            path TEXT NOT NULL,
            started_at TEXT NOT NULL,
            ended_at TEXT NOT NULL,
            sample_rate INTEGER NOT NULL DEFAULT 16000,
            language TEXT,
            segments TEXT NOT NULL DEFAULT '[]'
        )""")
    db.execute("CREATE INDEX audio_clips_started ON audio_clips(started_at)")
    db.execute("CREATE INDEX audio_clips_turn ON audio_clips(turn_id)")


@migration
def m004_segments(db, dim):
    # Segment-level memory (SeCom): a topically coherent, contiguous stretch of one session.
    # The text the model reads is rebuilt from the member turns; `key` is the (compressed)
    # retrieval key. status 'open': built incrementally in a live session, replaced when the
    # session is segmented for good ('final').
    db.execute("""
        CREATE TABLE segments (
            id INTEGER PRIMARY KEY,
            session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            first_turn_id INTEGER NOT NULL,
            last_turn_id INTEGER NOT NULL,
            started_at TEXT NOT NULL,
            ended_at TEXT NOT NULL,
            topic TEXT NOT NULL DEFAULT '',
            key TEXT NOT NULL DEFAULT '',
            source TEXT NOT NULL DEFAULT 'chat' CHECK (source IN ('chat', 'audio', 'import')),
            method TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'final' CHECK (status IN ('open', 'final')),
            created_at TEXT NOT NULL
        )""")
    db.execute("CREATE INDEX segments_session ON segments(session_id, first_turn_id)")
    db.execute("CREATE INDEX segments_started ON segments(started_at)")
    db.execute("""
        CREATE TABLE segment_turns (
            segment_id INTEGER NOT NULL REFERENCES segments(id) ON DELETE CASCADE,
            turn_id INTEGER NOT NULL REFERENCES turns(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            PRIMARY KEY (segment_id, position)
        )""")
    # A turn belongs to at most one segment.
    db.execute("CREATE UNIQUE INDEX segment_turns_turn ON segment_turns(turn_id)")


@migration
def m005_segment_vectors(db, dim):
    # Dense side of hybrid recall over segment keys.
    db.execute(vector_table_sql("segment", dim))


@migration
def m006_segment_fts(db, dim):
    # Lexical side of hybrid recall over segment keys.
    db.execute(fts_table_sql("segment"))


@migration
def m007_segmentation_log(db, dim):
    # One row per session segmented for good: how, whether the LLM fell back, what it cost.
    # A session with turns newer than `last_turn_id` is pending again.
    db.execute("""
        CREATE TABLE segmentation_log (
            session_id INTEGER PRIMARY KEY REFERENCES sessions(id) ON DELETE CASCADE,
            last_turn_id INTEGER NOT NULL,
            method TEXT NOT NULL,
            fallback INTEGER NOT NULL DEFAULT 0,
            llm_calls INTEGER NOT NULL DEFAULT 0,
            segments INTEGER NOT NULL DEFAULT 0,
            seconds REAL NOT NULL DEFAULT 0,
            done_at TEXT NOT NULL
        )""")


@migration
def m020_links(db, dim):
    # Timelines (THEANINE): a later memory (segment) is linked to an earlier related one by a labelled
    # relation, read "earlier -(label)-> later". Both ends' dates are kept on the link. Deleting either
    # segment deletes the link. `link_log` marks a segment whose links to earlier memories are decided
    # (zero links is a decision too), so consolidation never labels it twice.
    db.execute("""
        CREATE TABLE links (
            id INTEGER PRIMARY KEY,
            earlier_id INTEGER NOT NULL REFERENCES segments(id) ON DELETE CASCADE,
            later_id INTEGER NOT NULL REFERENCES segments(id) ON DELETE CASCADE,
            label TEXT NOT NULL CHECK (label IN ('Changed', 'Cause', 'Reason', 'HinderedBy', 'React',
                                                 'Want', 'SameTopic')),
            earlier_at TEXT NOT NULL,
            later_at TEXT NOT NULL,
            similarity REAL,
            method TEXT NOT NULL DEFAULT 'llm',
            created_at TEXT NOT NULL,
            UNIQUE (earlier_id, later_id),
            CHECK (earlier_id != later_id)
        )""")
    db.execute("CREATE INDEX links_later ON links(later_id)")
    db.execute("""
        CREATE TABLE link_log (
            segment_id INTEGER PRIMARY KEY REFERENCES segments(id) ON DELETE CASCADE,
            candidates INTEGER NOT NULL DEFAULT 0,
            links INTEGER NOT NULL DEFAULT 0,
            method TEXT NOT NULL,
            done_at TEXT NOT NULL
        )""")
    # When a segment goes (re-segmentation, forgetting), the later segments that were linked to it are
    # decided again against what replaced it.
    db.execute("""
        CREATE TRIGGER links_relink BEFORE DELETE ON segments BEGIN
            DELETE FROM link_log WHERE segment_id IN (SELECT later_id FROM links WHERE earlier_id = OLD.id);
        END""")


@migration
def m021_summaries(db, dim):
    # Recursive summaries: one per session, the running memory M_t (kind 'running', key 'main'), and
    # day / week / month roll-ups for the journal. A rebuilt summary supersedes the old row, which stays.
    # `summary_sessions` lists every session a summary covers (directly or through its inputs), so that
    # forgetting a turn marks every summary that saw it stale (and blanks its text) at once.
    db.execute("""
        CREATE TABLE summaries (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL CHECK (kind IN ('session', 'running', 'day', 'week', 'month')),
            key TEXT NOT NULL,
            text TEXT NOT NULL,
            period_start TEXT NOT NULL,
            period_end TEXT NOT NULL,
            last_turn_id INTEGER,
            inputs TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL DEFAULT 'current' CHECK (status IN ('current', 'superseded', 'stale')),
            method TEXT NOT NULL DEFAULT 'llm',
            llm_calls INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL
        )""")
    db.execute("CREATE UNIQUE INDEX summaries_current ON summaries(kind, key) WHERE status = 'current'")
    db.execute("CREATE INDEX summaries_kind ON summaries(kind, period_start)")
    db.execute("""
        CREATE TABLE summary_inputs (
            summary_id INTEGER NOT NULL REFERENCES summaries(id) ON DELETE CASCADE,
            input_id INTEGER NOT NULL,
            PRIMARY KEY (summary_id, input_id)
        )""")
    db.execute("""
        CREATE TABLE summary_sessions (
            summary_id INTEGER NOT NULL REFERENCES summaries(id) ON DELETE CASCADE,
            session_id INTEGER NOT NULL,
            PRIMARY KEY (summary_id, session_id)
        )""")
    db.execute("CREATE INDEX summary_sessions_session ON summary_sessions(session_id)")
    for table, col in (("turns", "OLD.session_id"), ("sessions", "OLD.id")):
        db.execute(f"""
            CREATE TRIGGER summaries_stale_{table} AFTER DELETE ON {table} BEGIN
                UPDATE summaries SET status = 'stale', text = ''
                WHERE status != 'stale'
                  AND id IN (SELECT summary_id FROM summary_sessions WHERE session_id = {col});
            END""")


@migration
def m022_consolidation_runs(db, dim):
    # One row per consolidation run: what started it, how far it got, what it cost.
    db.execute("""
        CREATE TABLE consolidation_runs (
            id INTEGER PRIMARY KEY,
            trigger TEXT NOT NULL,
            started_at TEXT NOT NULL,
            ended_at TEXT,
            status TEXT NOT NULL DEFAULT 'running',
            units INTEGER NOT NULL DEFAULT 0,
            llm_calls INTEGER NOT NULL DEFAULT 0,
            prompt_tokens INTEGER NOT NULL DEFAULT 0,
            completion_tokens INTEGER NOT NULL DEFAULT 0,
            seconds REAL NOT NULL DEFAULT 0,
            detail TEXT NOT NULL DEFAULT '{}'
        )""")


@migration
def m011_vector_codes(db, dim):
    # Quantized mirror of the dense indexes, read by VectorIndex: one sign bit per dimension
    # (`code`, dim/8 bytes) with the filter columns, loaded into memory for a Hamming-distance
    # coarse search; float32 vectors by id for exact re-ranking of the shortlist; tombstones of
    # removed ids. `gen` is the change generation (meta key 'codes_gen:<name>') of the write that
    # made the row, so another process's index can catch up incrementally.
    import numpy as np

    for name in ("turn", "segment"):
        db.execute(f"""
            CREATE TABLE codes_{name} (
                id INTEGER PRIMARY KEY,
                gen INTEGER NOT NULL,
                created_at TEXT,
                source TEXT,
                session_id INTEGER,
                code BLOB NOT NULL
            )""")
        db.execute(f"CREATE INDEX codes_{name}_gen ON codes_{name}(gen)")
        db.execute(f"CREATE TABLE codes_{name}_vectors (id INTEGER PRIMARY KEY, vector BLOB NOT NULL)")
        db.execute(f"CREATE TABLE codes_{name}_gone (id INTEGER NOT NULL, gen INTEGER NOT NULL)")
        db.execute(f"CREATE INDEX codes_{name}_gone_gen ON codes_{name}_gone(gen)")
        # Vectors indexed before this migration get their codes now (generation 1).
        if not db.execute("SELECT 1 FROM sqlite_master WHERE name = ?", [f"vectors_{name}"]).fetchone():
            continue
        cur = db.execute(f"SELECT id, embedding, created_at, source, session_id FROM vectors_{name}")
        while rows := cur.fetchmany(4096):
            vecs = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), -1)
            width = -(-vecs.shape[1] // 64) * 8
            bits = np.packbits(vecs > 0, axis=1)
            codes = np.zeros((len(rows), width), np.uint8)
            codes[:, :bits.shape[1]] = bits
            db.conn.executemany(
                f"INSERT INTO codes_{name} (id, gen, created_at, source, session_id, code) "
                "VALUES (?, 1, ?, ?, ?, ?)",
                [(r[0], r[2], r[3], r[4], codes[i].tobytes()) for i, r in enumerate(rows)])
            db.conn.executemany(f"INSERT INTO codes_{name}_vectors (id, vector) VALUES (?, ?)",
                                [(r[0], r[1]) for r in rows])
        db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, '1')", [f"codes_gen:{name}"])


@migration
def m023_turn_fts_speaker(db, dim):
    # Turns are matched by BM25 as "Speaker: text" (questions name people: "What did Caroline ...");
    # rows indexed before this migration get their speaker now. Vectors stay on the text alone.
    if not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'fts_turn'").fetchone():
        return
    db.execute("""
        UPDATE fts_turn SET text = (
            SELECT COALESCE(NULLIF(t.speaker, ''), CASE t.role WHEN 'user' THEN 'User' ELSE 'Assistant' END)
                   || ': ' || t.text
            FROM turns t WHERE t.id = fts_turn.rowid)
        WHERE rowid IN (SELECT id FROM turns)""")


@migration
def m040_turn_reindex_on_change(db, dim):
    # A turn whose text changes after it was indexed (an answer completed after another process indexed
    # its partial text; an edit) leaves the turn index, so that the next `index_pending` embeds and
    # indexes the new text; the vector mirrors of every process learn of it through a tombstone of a new
    # generation. A session whose segments hold the turn is segmented again by the next consolidation.
    db.execute("""
        CREATE TRIGGER turns_reindex AFTER UPDATE OF text ON turns
        WHEN OLD.text IS NOT NEW.text AND EXISTS (SELECT 1 FROM codes_turn WHERE id = NEW.id) BEGIN
            DELETE FROM fts_turn WHERE rowid = NEW.id;
            DELETE FROM vectors_turn WHERE id = NEW.id;
            DELETE FROM codes_turn WHERE id = NEW.id;
            DELETE FROM codes_turn_vectors WHERE id = NEW.id;
            INSERT INTO meta (key, value) VALUES ('codes_gen:turn', '1')
                ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1;
            INSERT INTO codes_turn_gone (id, gen)
                SELECT NEW.id, CAST(value AS INTEGER) FROM meta WHERE key = 'codes_gen:turn';
        END""")
    db.execute("""
        CREATE TRIGGER turns_resegment AFTER UPDATE OF text ON turns
        WHEN OLD.text IS NOT NEW.text AND EXISTS (SELECT 1 FROM segment_turns WHERE turn_id = NEW.id) BEGIN
            DELETE FROM segmentation_log WHERE session_id = NEW.session_id;
        END""")


@migration
def m041_session_counts(db, dim):
    # The session list (the chat's sidebar, `assistant sessions`) reads each session's turn count and
    # last activity from the session row, kept by triggers, instead of grouping every turn.
    db.execute("ALTER TABLE sessions ADD COLUMN turn_count INTEGER NOT NULL DEFAULT 0")
    db.execute("ALTER TABLE sessions ADD COLUMN last_at TEXT")
    db.execute("""
        UPDATE sessions SET
            turn_count = (SELECT COUNT(*) FROM turns t WHERE t.session_id = sessions.id),
            last_at = COALESCE((SELECT MAX(created_at) FROM turns t WHERE t.session_id = sessions.id),
                               started_at)""")
    db.execute("CREATE INDEX sessions_last ON sessions(last_at, id)")
    db.execute("""
        CREATE TRIGGER sessions_last_new AFTER INSERT ON sessions WHEN NEW.last_at IS NULL BEGIN
            UPDATE sessions SET last_at = NEW.started_at WHERE id = NEW.id;
        END""")
    db.execute("""
        CREATE TRIGGER sessions_count_add AFTER INSERT ON turns BEGIN
            UPDATE sessions SET turn_count = turn_count + 1,
                                last_at = MAX(COALESCE(last_at, started_at), NEW.created_at)
            WHERE id = NEW.session_id;
        END""")
    # The latest time is looked up again only when the latest turn goes (forgetting is rare).
    db.execute("""
        CREATE TRIGGER sessions_count_remove AFTER DELETE ON turns BEGIN
            UPDATE sessions SET turn_count = turn_count - 1,
                last_at = CASE WHEN OLD.created_at < last_at THEN last_at ELSE COALESCE(
                    (SELECT MAX(created_at) FROM turns t WHERE t.session_id = OLD.session_id), started_at) END
            WHERE id = OLD.session_id;
        END""")
    db.execute("""
        CREATE TRIGGER sessions_count_move AFTER UPDATE OF created_at, session_id ON turns BEGIN
            UPDATE sessions SET
                turn_count = (SELECT COUNT(*) FROM turns t WHERE t.session_id = sessions.id),
                last_at = COALESCE((SELECT MAX(created_at) FROM turns t WHERE t.session_id = sessions.id),
                                   started_at)
            WHERE id IN (OLD.session_id, NEW.session_id);
        END""")


@migration
def m050_summaries_of_facts(db, dim):
    # Summaries are now the facts people stated, kept with who said them (memory.facts), instead of text
    # the model wrote (which gave the user's facts to others and the assistant's words to the user).
    # Every summary made before is set aside so that the next consolidation rebuilds them all; the old
    # running memory is blanked, so that the new one does not start from it.
    db.execute("UPDATE summaries SET status = 'superseded' WHERE status = 'current' AND kind != 'running'")
    db.execute("UPDATE summaries SET status = 'stale', text = '' WHERE kind = 'running'")


@migration
def m060_turn_memories(db, dim):
    # The memories shown to the model with a user's message, as the model read them, in order. A session's
    # later prompts show them again at the same place (the prompt only grows, so llama.cpp reuses what it
    # has evaluated), and a memory already shown is not shown twice. `turn_memory_sources` lists the turns
    # each one was drawn from: forgetting any of them removes the memory here too.
    db.execute("""
        CREATE TABLE turn_memories (
            id INTEGER PRIMARY KEY,
            user_turn_id INTEGER NOT NULL REFERENCES turns(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            kind TEXT NOT NULL,
            unit_id INTEGER,
            text TEXT NOT NULL,
            UNIQUE (user_turn_id, position)
        )""")
    db.execute("""
        CREATE TABLE turn_memory_sources (
            memory_id INTEGER NOT NULL REFERENCES turn_memories(id) ON DELETE CASCADE,
            turn_id INTEGER NOT NULL,
            PRIMARY KEY (memory_id, turn_id)
        )""")
    db.execute("CREATE INDEX turn_memory_sources_turn ON turn_memory_sources(turn_id)")
    db.execute("""
        CREATE TRIGGER turn_memories_forget BEFORE DELETE ON turns BEGIN
            DELETE FROM turn_memories WHERE id IN (SELECT memory_id FROM turn_memory_sources WHERE turn_id = OLD.id);
        END""")


@migration
def m070_memory_control(db, dim):
    # Corrections: the user's text for a memory is stored as a turn of its own (role 'user'), and the
    # turns it corrects point to it (`corrected_by`): they stay as they were said, but every reader of
    # turns (recall, segmentation, summaries, the prompt) sees the correction instead. Forgetting the
    # correction forgets what it corrected (the cascade), so an old text can never come back.
    db.execute("ALTER TABLE turns ADD COLUMN corrected_by INTEGER REFERENCES turns(id) ON DELETE CASCADE")
    db.execute("CREATE INDEX turns_corrected ON turns(corrected_by) WHERE corrected_by IS NOT NULL")
    # Pinned facts: always in the prompt. A pin made from a memory lists the turns it came from, and
    # goes when any of them is forgotten.
    db.execute("""
        CREATE TABLE pins (
            id INTEGER PRIMARY KEY,
            text TEXT NOT NULL,
            created_at TEXT NOT NULL
        )""")
    db.execute("""
        CREATE TABLE pin_turns (
            pin_id INTEGER NOT NULL REFERENCES pins(id) ON DELETE CASCADE,
            turn_id INTEGER NOT NULL REFERENCES turns(id) ON DELETE CASCADE,
            PRIMARY KEY (pin_id, turn_id)
        )""")
    db.execute("CREATE INDEX pin_turns_turn ON pin_turns(turn_id)")
    db.execute("""
        CREATE TRIGGER pins_forget BEFORE DELETE ON turns BEGIN
            DELETE FROM pins WHERE id IN (SELECT pin_id FROM pin_turns WHERE turn_id = OLD.id);
        END""")
    # A row deleted from a full-text index leaves its words in the index's b-tree until segments merge;
    # secure-delete takes them out at once, and 'optimize' merges away what earlier deletions left.
    for name in ("turn", "segment"):
        if db.execute("SELECT 1 FROM sqlite_master WHERE name = ?", [f"fts_{name}"]).fetchone():
            db.execute(f"INSERT INTO fts_{name} (fts_{name}, rank) VALUES ('secure-delete', 1)")
            db.execute(f"INSERT INTO fts_{name} (fts_{name}) VALUES ('optimize')")


@migration
def m080_turns_to_index(db, dim):
    # The turns the turn index still has to embed, kept by triggers, so that finding them before each recall
    # reads this short table instead of joining every turn with the index (0.5 s at 2M turns).
    # An entry leaves once its turn is indexed, gone or never to be indexed (see TurnIndex.pending).
    db.execute("CREATE TABLE turns_to_index (turn_id INTEGER PRIMARY KEY)")
    db.execute("""INSERT INTO turns_to_index (turn_id)
                  SELECT t.id FROM turns t LEFT JOIN codes_turn v ON v.id = t.id WHERE v.id IS NULL""")
    db.execute("""CREATE TRIGGER turns_to_index_new AFTER INSERT ON turns BEGIN
                      INSERT OR IGNORE INTO turns_to_index (turn_id) VALUES (NEW.id);
                  END""")
    db.execute("""CREATE TRIGGER turns_to_index_changed AFTER UPDATE OF text, status, role, corrected_by ON turns
                  BEGIN
                      INSERT OR IGNORE INTO turns_to_index (turn_id) VALUES (NEW.id);
                  END""")
    db.execute("""CREATE TRIGGER turns_to_index_gone AFTER DELETE ON turns BEGIN
                      DELETE FROM turns_to_index WHERE turn_id = OLD.id;
                  END""")


@migration
def m090_facts_again(db, dim):
    # Facts are now kept when a request comes with them ("I'm allergic to penicillin, so please keep that in
    # mind" was left out whole), corrections are kept as the fact they state, and what listening heard is
    # "Heard in the room" rather than a person called "Room". Summaries made before are set aside so that
    # the next consolidation rebuilds them with these rules; the running memory is blanked, as in m050.
    db.execute("UPDATE summaries SET status = 'superseded' WHERE status = 'current' AND kind != 'running'")
    db.execute("UPDATE summaries SET status = 'stale', text = '' WHERE kind = 'running'")
