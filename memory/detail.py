"""What the memory screen shows about memories: the latest ones, and one memory in full (its original
turns, the timelines through it, the answers that used it). Reads only; every query is bounded, so it
stays quick on a year of memory.

A memory is a segment; a turn that is in no segment yet (just said) is a memory of kind "turn".
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from .recall import Memory
from .segments import turn_line
from .store import Store, Turn
from .timelines import LinkStore, Timeline, render_chain, segment_infos, timeline_around

# The detail view shows at most this many answers that used a memory (the latest).
MAX_USES = 20
MAX_TIMELINES = 5
# A search lists the best memories that fit this many tokens (ranked as the answers rank them).
SEARCH_BUDGET = 4000
SEARCH_K = 40


@dataclass
class Use:
    """An answer that had the memory in its prompt: the user's message and the answer to it."""

    user_turn_id: int
    session_id: int
    at: str
    question: str
    answer: str


@dataclass
class MemoryDetail:
    kind: str                       # "segment" or "turn"
    id: int
    session_id: int
    session_title: str
    topic: str
    source: str
    started_at: str
    turns: list[Turn] = field(default_factory=list)         # as said, the corrected ones included
    corrected_ids: set[int] = field(default_factory=set)     # turns a correction stands for
    timelines: list[str] = field(default_factory=list)      # rendered chains through the memory
    before: str = ""                                        # the memory just before it in its session
    after: str = ""                                         # and the one just after
    uses: list[Use] = field(default_factory=list)

    @property
    def corrected(self) -> bool:
        return bool(self.corrected_ids)

    @property
    def text(self) -> str:
        """The memory as recall reads it now (a correction in place of what it corrected)."""
        return "\n".join(turn_line(t) for t in self.turns if t.id not in self.corrected_ids)


def _turn_rows(store: Store, ids: list[int]) -> tuple[list[Turn], set[int]]:
    """Turns by id in conversation order with the turns they corrected, and the ids of those."""
    if not ids:
        return [], set()
    marks = ",".join("?" * len(ids))
    cols = "id, session_id, role, text, created_at, source, status, speaker"
    rows = store.db.execute(
        f"SELECT {cols}, corrected_by FROM turns WHERE id IN ({marks}) OR corrected_by IN ({marks}) ORDER BY id",
        ids + ids).fetchall()
    return [Turn(*r[:8]) for r in rows], {r[0] for r in rows if r[8] is not None}


UNSEGMENTED_LOOKBACK = 500    # how many of the latest turns are looked at for ones no memory holds yet


def recent(store: Store, limit: int = 50) -> list[Memory]:
    """The latest memories, newest first (what the screen lists before a search): the memories made so far
    and, among the latest turns, each one that no memory holds yet (said moments ago: the chat cuts them
    into memories at its next message, tidying at the latest), as a memory of one turn."""
    out = _recent_segments(store, limit) + _unsegmented(store, limit)
    out.sort(key=lambda m: (m.started_at, m.kind == "turn", m.id), reverse=True)
    return out[:limit]


def _unsegmented(store: Store, limit: int) -> list[Memory]:
    top = store.db.execute("SELECT MAX(id) FROM turns").fetchone()[0]
    if top is None:
        return []
    ids = [r[0] for r in store.db.execute(
        "SELECT t.id FROM turns t WHERE t.id > ? AND t.role IN ('user', 'assistant') AND t.text != '' "
        "AND t.status != 'streaming' AND t.corrected_by IS NULL "
        "AND NOT EXISTS (SELECT 1 FROM segment_turns st WHERE st.turn_id = t.id) ORDER BY t.id DESC LIMIT ?",
        [top - UNSEGMENTED_LOOKBACK, limit])]
    return [Memory(kind="turn", id=t.id, text=turn_line(t), score=0.0, started_at=t.created_at,
                   ended_at=t.created_at, session_id=t.session_id, turn_ids=[t.id], topic="", source=t.source)
            for t in store.turns_by_ids(ids)]


def _recent_segments(store: Store, limit: int) -> list[Memory]:
    rows = store.db.execute(
        "SELECT s.id, s.session_id, s.started_at, s.ended_at, s.topic, s.source, group_concat(st.turn_id) "
        "FROM (SELECT * FROM segments ORDER BY started_at DESC, id DESC LIMIT ?) s "
        "JOIN segment_turns st ON st.segment_id = s.id GROUP BY s.id ORDER BY s.started_at DESC, s.id DESC",
        [limit]).fetchall()
    ids = sorted({int(t) for r in rows for t in r[6].split(",")})
    turns = {t.id: t for t in store.turns_by_ids(ids)}
    out = []
    for sid, session_id, started, ended, topic, source, members in rows:
        tids = [int(t) for t in members.split(",")]
        text = "\n".join(turn_line(turns[t]) for t in sorted(tids) if t in turns)
        out.append(Memory(kind="segment", id=sid, text=text, score=0.0, started_at=started, ended_at=ended,
                          session_id=session_id, turn_ids=tids, topic=topic or "", source=source))
    return out


def detail(store: Store, kind: str, unit_id: int) -> MemoryDetail | None:
    """One memory in full; None when it is gone (forgotten meanwhile)."""
    if kind == "segment":
        row = store.db.execute("SELECT session_id, topic, source, started_at FROM segments WHERE id = ?",
                               [unit_id]).fetchone()
        if row is None:
            return None
        session_id, topic, source, started = row
        ids = [r[0] for r in store.db.execute(
            "SELECT turn_id FROM segment_turns WHERE segment_id = ? ORDER BY position", [unit_id])]
    else:
        row = store.db.execute("SELECT session_id, source, created_at FROM turns WHERE id = ?", [unit_id]).fetchone()
        if row is None:
            return None
        session_id, source, started = row
        topic, ids = "", [unit_id]
    turns, corrected = _turn_rows(store, ids)
    session = store.db.execute("SELECT title FROM sessions WHERE id = ?", [session_id]).fetchone()
    d = MemoryDetail(kind, unit_id, session_id, (session[0] if session else "") or "", topic or "", source,
                     started, turns, corrected)
    if kind == "segment":
        _timeline(store, d)
    d.uses = uses(store, [t.id for t in turns])
    return d


def _timeline(store: Store, d: MemoryDetail) -> None:
    """The chains of linked memories through `d`, and its neighbours in its own session."""
    chains = timeline_around(store, d.id)[:MAX_TIMELINES]
    chains = [c for c in chains if len(c.members) > 1]
    if chains:
        infos = segment_infos(store, sorted({m for c in chains for m in c.members}))
        changed = LinkStore(store).changed_by(list(infos))
        d.timelines = [render_chain(c, infos, changed) for c in chains]
    for side, op, order in (("before", "<", "DESC"), ("after", ">", "ASC")):
        row = store.db.execute(
            f"SELECT id FROM segments WHERE session_id = ? AND started_at {op} ? ORDER BY started_at {order} LIMIT 1",
            [d.session_id, d.started_at]).fetchone()
        if row:
            infos = segment_infos(store, [row[0]])
            if row[0] in infos:
                setattr(d, side, render_chain(Timeline(row[0], [row[0]], []), infos))


def uses(store: Store, turn_ids: list[int], limit: int = MAX_USES) -> list[Use]:
    """The latest answers whose prompt held a memory drawn from these turns (memory.attached)."""
    if not turn_ids:
        return []
    marks = ",".join("?" * len(turn_ids))
    rows = store.db.execute(
        f"SELECT DISTINCT m.user_turn_id FROM turn_memory_sources s JOIN turn_memories m ON m.id = s.memory_id "
        f"WHERE s.turn_id IN ({marks}) ORDER BY m.user_turn_id DESC LIMIT ?", [*turn_ids, limit]).fetchall()
    out = []
    for (uid,) in rows:
        q = store.db.execute("SELECT session_id, created_at, text FROM turns WHERE id = ?", [uid]).fetchone()
        if q is None:
            continue
        a = store.db.execute("SELECT text FROM turns WHERE session_id = ? AND id > ? AND role = 'assistant' "
                             "ORDER BY id LIMIT 1", [q[0], uid]).fetchone()
        out.append(Use(uid, q[0], q[1], q[2], a[0] if a else ""))
    return out


def reading_recall(store: Store, recall):
    """Recall as the answers do it (same embedder, parameters and mode), over `store` (a reader
    connection), that never writes: no indexing of new turns, no live segmentation."""
    from .bank import SegmentRecall

    return SegmentRecall(store, recall.embedder, recall.count_tokens, params=recall.params, mode=recall.mode,
                         incremental=False)


def search(recall, query: str, *, now: datetime | None = None, budget_tokens: int = SEARCH_BUDGET,
           k: int = SEARCH_K):
    """(memories best first, the days the query names or None): the answers' hybrid ranking and packing
    (`SegmentRecall.rank` and `pack`) with a larger budget, reading only (see `reading_recall`)."""
    from .when import talk_window

    now = now or datetime.now().astimezone()
    memories = recall.pack(recall.rank(query, k, now=now), budget_tokens)
    window = talk_window(query, now) if recall.params.time_weight > 0 else None
    # turns said moments ago are in no memory yet, so ranking cannot find them: the ones that say the words
    # follow the memories that say them, before those found by meaning alone ("dog" finds "My dog is called
    # Biscuit" before the chat's next message makes it a memory)
    fresh = [m for m in _unsegmented(recall.store, k) if says(m.text, query)]
    taken = {t for m in fresh for t in m.turn_ids}
    saying, meaning = [], []
    for m in memories:
        if not taken & set(m.turn_ids):
            (saying if says(m.text, query) else meaning).append(m)
    return saying + fresh + meaning, window


def says(text: str, query: str) -> bool:
    """Whether `text` holds one of the query's words, stopwords aside (a plain word match, as a person
    reads it: "dog" in "my dog", "dogs" or "dog's", not in "hotdog"; short words count: dog, Sam, gym):
    search ranks by meaning too, so its best results may hold none of the words asked for."""
    from .segmenter import STOPWORDS

    asked = [w for w in (w.strip(".,;:!?\"'“”‘’()").lower().replace("’", "'") for w in query.split())
             if w and w not in STOPWORDS]
    if not asked:
        return False
    low = text.lower().replace("’", "'")
    return any(re.search(r"(?<![\w'])" + re.escape(w) + r"(?:s|es|'s)?(?![\w'])" if len(w) <= 3 else
                         r"(?<![\w'])" + re.escape(w), low) for w in asked)
