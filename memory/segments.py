"""The segment store: topically coherent, contiguous stretches of a session, and what is not yet in one.

A segment is a list of member turns of one session. Its text is rebuilt from those turns (the turns stay
the source of truth); the row keeps the topic line, the retrieval key, the dates and how it was made.
Turns that belong to no segment yet are *provisional*: recall still finds them through the turn index.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

from .clock import utcnow
from .store import Store, Turn


@dataclass
class Segment:
    id: int
    session_id: int
    turn_ids: list[int]
    started_at: str
    ended_at: str
    topic: str = ""
    key: str = ""
    source: str = "chat"
    method: str = "fast"
    status: str = "final"


def speaker_of(t: Turn) -> str:
    return t.speaker or ("User" if t.role == "user" else "Assistant")


def turn_line(t: Turn) -> str:
    """One turn as the model reads it: 'Speaker: text'."""
    return f"{speaker_of(t)}: {t.text}"


def memory_line(t: Turn) -> str:
    """One turn as a recalled memory shows it to the model: 'Speaker: text', the text's further lines
    indented, so that no line of what one said reads as another speaker's turn (an answer that had copied
    "User: ..." lines would otherwise put words in the user's mouth)."""
    return f"{speaker_of(t)}: " + "\n  ".join(t.text.split("\n"))


def render(turns: Sequence[Turn]) -> str:
    return "\n".join(turn_line(t) for t in turns)


_COLS = "id, session_id, started_at, ended_at, topic, key, source, method, status"


class SegmentStore:
    """Reads and writes segments. Writers do not commit: the caller holds the transaction."""

    def __init__(self, store: Store):
        self.store = store
        self.db = store.db

    # -- writing (inside the caller's transaction) ---------------------------------------------
    def add(self, session_id: int, turns: Sequence[Turn], *, topic: str = "", method: str = "fast",
            status: str = "final", key: str = "") -> int:
        if not turns:
            raise ValueError("a segment needs at least one turn")
        turns = sorted(turns, key=lambda t: t.id)
        src = turns[0].source
        cur = self.db.execute(
            "INSERT INTO segments (session_id, first_turn_id, last_turn_id, started_at, ended_at, topic,"
            " key, source, method, status, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [session_id, turns[0].id, turns[-1].id, min(t.created_at for t in turns),
             max(t.created_at for t in turns), topic, key, src, method, status, utcnow()])
        sid = cur.lastrowid
        self.db.conn.executemany(
            "INSERT INTO segment_turns (segment_id, turn_id, position) VALUES (?, ?, ?)",
            [(sid, t.id, i) for i, t in enumerate(turns)])
        return sid

    def extend(self, segment_id: int, turns: Sequence[Turn]) -> None:
        """Append turns to a segment (the incremental path)."""
        if not turns:
            return
        n = self.db.execute("SELECT COUNT(*) FROM segment_turns WHERE segment_id = ?",
                            [segment_id]).fetchone()[0]
        self.db.conn.executemany(
            "INSERT INTO segment_turns (segment_id, turn_id, position) VALUES (?, ?, ?)",
            [(segment_id, t.id, n + i) for i, t in enumerate(turns)])
        self.db.execute(
            "UPDATE segments SET last_turn_id = MAX(last_turn_id, ?), ended_at = MAX(ended_at, ?) "
            "WHERE id = ?", [max(t.id for t in turns), max(t.created_at for t in turns), segment_id])

    def set_key(self, segment_id: int, key: str, topic: str | None = None) -> None:
        if topic is None:
            self.db.execute("UPDATE segments SET key = ? WHERE id = ?", [key, segment_id])
        else:
            self.db.execute("UPDATE segments SET key = ?, topic = ? WHERE id = ?", [key, topic, segment_id])

    def delete(self, ids: Sequence[int]) -> None:
        if ids:
            marks = ",".join("?" * len(ids))
            self.db.execute(f"DELETE FROM segments WHERE id IN ({marks})", list(ids))

    # -- reading ---------------------------------------------------------------------------------
    def _rows(self, where: str, params: Iterable = ()) -> list[Segment]:
        rows = self.db.execute(f"SELECT {_COLS} FROM segments WHERE {where}", list(params)).fetchall()
        if not rows:
            return []
        ids = [r[0] for r in rows]
        members: dict[int, list[int]] = {i: [] for i in ids}
        for chunk in _chunks(ids, 500):
            marks = ",".join("?" * len(chunk))
            for seg, tid in self.db.execute(
                    f"SELECT segment_id, turn_id FROM segment_turns WHERE segment_id IN ({marks}) "
                    "ORDER BY segment_id, position", chunk).fetchall():
                members[seg].append(tid)
        return [Segment(r[0], r[1], members[r[0]], *r[2:]) for r in rows]

    def get(self, ids: Sequence[int]) -> dict[int, Segment]:
        out: dict[int, Segment] = {}
        for chunk in _chunks(list(ids), 500):
            marks = ",".join("?" * len(chunk))
            out.update({s.id: s for s in self._rows(f"id IN ({marks})", chunk)})
        return out

    def for_session(self, session_id: int, status: str | None = None) -> list[Segment]:
        where, params = "session_id = ?", [session_id]
        if status:
            where += " AND status = ?"
            params.append(status)
        return self._rows(where + " ORDER BY first_turn_id", params)

    def all_ids(self) -> list[int]:
        return [r[0] for r in self.db.execute("SELECT id FROM segments ORDER BY id").fetchall()]

    def segment_of(self, turn_ids: Sequence[int]) -> dict[int, int]:
        """turn id -> segment id, for the turns that are in a segment."""
        out: dict[int, int] = {}
        for chunk in _chunks(list(turn_ids), 500):
            marks = ",".join("?" * len(chunk))
            out.update(dict(self.db.execute(
                f"SELECT turn_id, segment_id FROM segment_turns WHERE turn_id IN ({marks})", chunk).fetchall()))
        return out

    # -- provisional entries ---------------------------------------------------------------------
    def unsegmented(self, turn_ids: Sequence[int]) -> list[int]:
        """Those of `turn_ids` that are in no segment yet (recall treats them as provisional units)."""
        inside = self.segment_of(turn_ids)
        return [t for t in turn_ids if t not in inside]

    def unsegmented_turns(self, session_id: int) -> list[Turn]:
        """A session's finished turns that are in no segment, in order."""
        rows = self.db.execute(
            "SELECT t.id FROM turns t LEFT JOIN segment_turns st ON st.turn_id = t.id "
            "WHERE t.session_id = ? AND st.turn_id IS NULL AND t.status != 'streaming' "
            "AND t.role != 'system' ORDER BY t.id", [session_id]).fetchall()
        return self.store.turns_by_ids([r[0] for r in rows])

    def pending_sessions(self) -> list[int]:
        """Sessions with finished turns that final segmentation has not covered yet, oldest first."""
        # One index seek a session for a turn after its log (joining and grouping every turn read the
        # whole history: 0.8 s at 2M turns, several times a consolidation); the few found are ordered after.
        rows = self.db.execute("""
            SELECT s.id, (SELECT MIN(t.created_at) FROM turns t WHERE t.session_id = s.id
                          AND t.status != 'streaming' AND t.role != 'system') AS first
            FROM sessions s LEFT JOIN segmentation_log g ON g.session_id = s.id
            WHERE EXISTS (SELECT 1 FROM turns t WHERE t.session_id = s.id AND t.id > COALESCE(g.last_turn_id, -1)
                          AND t.status != 'streaming' AND t.role != 'system')""").fetchall()
        return [r[0] for r in sorted(rows, key=lambda r: (r[1], r[0]))]

    def log(self, session_id: int, last_turn_id: int, method: str, *, fallback: bool, llm_calls: int,
            segments: int, seconds: float) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO segmentation_log (session_id, last_turn_id, method, fallback, llm_calls,"
            " segments, seconds, done_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [session_id, last_turn_id, method, int(fallback), llm_calls, segments, seconds, utcnow()])

    def stats(self) -> dict:
        row = self.db.execute(
            "SELECT COUNT(*), COALESCE(SUM(fallback), 0), COALESCE(SUM(llm_calls), 0), "
            "COALESCE(SUM(segments), 0), COALESCE(SUM(seconds), 0) FROM segmentation_log").fetchone()
        by_method = dict(self.db.execute(
            "SELECT method, COUNT(*) FROM segmentation_log GROUP BY method").fetchall())
        return {"sessions": row[0], "fallbacks": row[1], "llm_calls": row[2], "segments": row[3],
                "seconds": row[4], "by_method": by_method}


def _chunks(xs: list, n: int):
    for i in range(0, len(xs), n):
        yield xs[i:i + n]


@dataclass
class Exchange:
    """The unit segmentation works on: a user turn and the replies that follow it (or one turn)."""

    turns: list[Turn] = field(default_factory=list)

    @property
    def text(self) -> str:
        return render(self.turns)

    @property
    def turn_ids(self) -> list[int]:
        return [t.id for t in self.turns]


MAX_USER_RUN = 2  # consecutive user turns kept in one exchange (audio is all user turns)


def exchanges(turns: Sequence[Turn]) -> list[Exchange]:
    """Group turns into exchanges: each user turn opens one; replies join the open exchange. A run of
    user turns (a monologue, or a room heard while listening) is cut every MAX_USER_RUN turns and at
    each change of speaker, so it can still be segmented."""
    out: list[Exchange] = []
    for t in turns:
        cur = out[-1].turns if out else []
        opens = not cur or t.role == "user" and (
            any(x.role != "user" for x in cur) or cur[-1].speaker != t.speaker or len(cur) >= MAX_USER_RUN)
        if opens:
            out.append(Exchange([t]))
        else:
            cur.append(t)
    return out


def single_turns(turns: Sequence[Turn]) -> list[Exchange]:
    """One unit per turn (for boundary-level evaluation)."""
    return [Exchange([t]) for t in turns]
