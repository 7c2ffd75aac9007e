"""What the user changes in their memory on purpose: corrections and pinned facts.

A correction is the user's own text for a memory (a segment). It is stored as a turn of its own (role
'user', in the memory's session), and the memory's turns point to it (`turns.corrected_by`): they stay as
they were said (`Store.transcript` shows them, marked), while every other reader of turns (recall,
segmentation, summaries, the prompt) gets the correction instead. Consolidation only ever reads turns
that way, so it cannot bring the old text back.

A pinned fact is always in the chat's prompt (assistant/prompts.py, within `pinned_budget_tokens`): a
sentence the user asked to keep (`remember`) or a memory pinned as it reads (`pin`). Pins are stored as
lines "Speaker: words" (who said it is kept); a pin made from a memory goes when the memory is forgotten.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from .clock import utcnow
from .errors import NotFoundError
from .facts import for_user, split_line, trim_requests
from .segments import SegmentStore, turn_line
from .store import Store, title_from

USER = "User"


@dataclass
class Correction:
    segment_id: int
    turn_id: int                       # the turn holding the user's text
    corrected_turn_ids: list[int] = field(default_factory=list)


@dataclass
class Pin:
    id: int
    text: str                          # lines "Speaker: words"
    created_at: str
    turn_ids: list[int] = field(default_factory=list)   # the memory it was pinned from (none: remembered)

    @property
    def lines(self) -> list[str]:
        return [line for line in self.text.splitlines() if line.strip()]

    def for_user(self) -> str:
        """As the user and the model read it: the user's own words in the second person, without the
        request that came with a fact ("..., so please keep that in mind": the pin is kept in mind)."""
        return " ".join(for_user(_without_requests(line)) for line in self.lines)


def _without_requests(line: str) -> str:
    date, speaker, words = split_line(line)
    if speaker != USER:
        return line
    return (f"[{date}] " if date else "") + f"{speaker}: {trim_requests(words) or words}"


def clean_text(text: str) -> str:
    """The user's text, without a "User: " the user may have kept from the memory as it was shown."""
    lines = [re.sub(r"^\s*User:\s*", "", line).strip() for line in (text or "").splitlines()]
    return "\n".join(line for line in lines if line)


def correct(store: Store, segment_id: int, text: str, *, embedder=None) -> Correction:
    """Store `text` as the user's correction of memory `segment_id` and index it at once (vector and
    full text, for the memory and for the turn), so that the next recall finds the correction and never
    the old words. Summaries that saw the memory's session are hidden until consolidation rebuilds them
    from the correction. Raises NotFoundError, or ValueError for an empty text."""
    from .bank import SegmentBank
    from .index import IndexRow
    from .recall import TurnIndex
    from .segmenter import keyword_topic

    body = clean_text(text)
    if not body:
        raise ValueError("A correction needs some text: write what the memory should say.")
    segs = SegmentStore(store)
    seg = segs.get([segment_id]).get(segment_id)
    if seg is None:
        raise NotFoundError(f"There is no memory {segment_id}; find memories with `assistant memory search`.")
    members = store.turns_by_ids(seg.turn_ids)
    if not members:
        raise NotFoundError(f"Memory {segment_id} has no turns left to correct.")
    embedder = embedder or _default_embedder()
    bank = SegmentBank(store, embedder)
    topic = keyword_topic([body], bank.idf)
    when = max(t.created_at for t in members)
    vec_turn, = embedder.embed([body])
    old_ids = [t.id for t in members]
    with store.write():
        new_id = store.db.execute(
            "INSERT INTO turns (session_id, role, speaker, text, created_at, source, status) "
            "VALUES (?, 'user', NULL, ?, ?, ?, 'complete')", [seg.session_id, body, when, seg.source]).lastrowid
        marks = ",".join("?" * len(old_ids))
        store.db.execute(f"UPDATE turns SET corrected_by = ? WHERE id IN ({marks})", [new_id, *old_ids])
        TurnIndex(store, embedder).hybrid.remove(old_ids)
        new_turn = store.turn(new_id)
        TurnIndex(store, embedder).hybrid.add([IndexRow(new_id, vec_turn, turn_line(new_turn), when, seg.source,
                                                        seg.session_id)], commit=False)
        # the memory keeps its id (a screen showing it, links to it): its members become the correction
        store.db.execute("DELETE FROM segment_turns WHERE segment_id = ?", [segment_id])
        store.db.execute("INSERT INTO segment_turns (segment_id, turn_id, position) VALUES (?, ?, 0)",
                         [segment_id, new_id])
        key = bank.key_for(seg.started_at, topic, [new_turn])
        store.db.execute("UPDATE segments SET last_turn_id = MAX(last_turn_id, ?), topic = ?, key = ? WHERE id = ?",
                         [new_id, topic, key, segment_id])
        bank.index.add(bank._rows([segment_id]), commit=False)
        # the session stays segmented as it is (its other memories keep their ids too)
        store.db.execute("UPDATE segmentation_log SET last_turn_id = MAX(last_turn_id, ?) WHERE session_id = ?",
                         [new_id, seg.session_id])
        _hide_derived(store, [seg.session_id], old_ids)
        # a title made from a corrected turn would keep showing the old words in the sessions list
        titles = sorted({title_from(t.text) for t in members if t.role == "user"})
        if titles:
            store.db.execute(f"UPDATE sessions SET title = ? WHERE id = ? AND title IN ({','.join('?' * len(titles))})",
                             [title_from(body), seg.session_id, *titles])
        store.db.execute(f"UPDATE pins SET text = ? WHERE id IN (SELECT pin_id FROM pin_turns WHERE turn_id IN "
                         f"({marks}))", [f"{USER}: {body}", *old_ids])
        store.db.execute(f"INSERT OR IGNORE INTO pin_turns (pin_id, turn_id) SELECT DISTINCT pin_id, ? FROM pin_turns "
                         f"WHERE turn_id IN ({marks})", [new_id, *old_ids])
    _after_change(store)
    return Correction(segment_id, new_id, old_ids)


def _hide_derived(store: Store, session_ids: list[int], turn_ids: list[int]) -> None:
    """Summaries that saw these sessions are hidden (stale, text blanked) until consolidation rebuilds them;
    memories attached to later messages that were drawn from these turns go. Caller holds the transaction."""
    for start in range(0, len(session_ids), 500):
        part = session_ids[start:start + 500]
        store.db.execute(
            "UPDATE summaries SET status = 'stale', text = '' WHERE status != 'stale' AND id IN "
            f"(SELECT summary_id FROM summary_sessions WHERE session_id IN ({','.join('?' * len(part))}))", part)
    for start in range(0, len(turn_ids), 500):
        part = turn_ids[start:start + 500]
        store.db.execute(
            "DELETE FROM turn_memories WHERE id IN (SELECT memory_id FROM turn_memory_sources WHERE turn_id IN "
            f"({','.join('?' * len(part))}))", part)


def _after_change(store: Store) -> None:
    for hook in list(getattr(store, "on_forget", [])):
        try:
            hook()
        except OSError:
            pass       # a cache beside the database; nothing of the memory itself


def _default_embedder():
    from .embedder import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(background=False)


# -- pinned facts ------------------------------------------------------------------------------------
def remember(store: Store, text: str) -> int:
    """Pin a fact the user states on purpose ("my dentist is Dr. Brooks"); returns the pin's id (the same
    id when that fact is already pinned). Raises ValueError for an empty text."""
    body = " ".join(clean_text(text).split())
    if not body:
        raise ValueError("There is nothing to remember: write the fact after the command.")
    line = f"{USER}: {body}"
    with store.write():
        row = store.db.execute("SELECT id FROM pins WHERE text = ?", [line]).fetchone()
        if row:
            return row[0]
        return store.db.execute("INSERT INTO pins (text, created_at) VALUES (?, ?)", [line, utcnow()]).lastrowid


def pin(store: Store, segment_id: int) -> int:
    """Pin a memory as it reads now: what its people said (the assistant's words are never pinned as facts,
    unless they are all the memory holds). Returns the pin's id."""
    seg = SegmentStore(store).get([segment_id]).get(segment_id)
    if seg is None:
        raise NotFoundError(f"There is no memory {segment_id}; find memories with `assistant memory search`.")
    members = store.turns_by_ids(seg.turn_ids)
    said = [t for t in members if t.role != "assistant"] or members
    if not said:
        raise NotFoundError(f"Memory {segment_id} has no turns left to pin.")
    text = "\n".join(" ".join(turn_line(t).split()) for t in said)
    with store.write():
        row = store.db.execute("SELECT id FROM pins WHERE text = ?", [text]).fetchone()
        pid = row[0] if row else store.db.execute(
            "INSERT INTO pins (text, created_at) VALUES (?, ?)", [text, utcnow()]).lastrowid
        store.db.conn.executemany("INSERT OR IGNORE INTO pin_turns (pin_id, turn_id) VALUES (?, ?)",
                                  [(pid, t.id) for t in members])
    return pid


def unpin(store: Store, pin_id: int) -> None:
    """Take a fact off the pinned list (the memory it came from stays). Raises NotFoundError."""
    with store.write():
        if not store.db.execute("DELETE FROM pins WHERE id = ?", [pin_id]).rowcount:
            raise NotFoundError(f"There is no pinned fact {pin_id}; list them with `assistant memory pins`.")


def pins(store: Store) -> list[Pin]:
    """Every pinned fact, oldest first."""
    rows = store.db.execute(
        "SELECT p.id, p.text, p.created_at, group_concat(t.turn_id) FROM pins p "
        "LEFT JOIN pin_turns t ON t.pin_id = p.id GROUP BY p.id ORDER BY p.id").fetchall()
    return [Pin(i, text, at, sorted(int(x) for x in ids.split(",")) if ids else []) for i, text, at, ids in rows]


def pinned_lines(store: Store, budget_tokens: int, count=None) -> list[str]:
    """The pinned facts for the prompt, as the user reads them, oldest first, within `budget_tokens`: when
    they do not all fit, the newest pins are kept."""
    from .protocols import approx_tokens

    count = count or approx_tokens
    out, used = [], 0
    for p in reversed(pins(store)):
        line = p.for_user()
        cost = count(line) + 2
        if used + cost > budget_tokens:
            continue
        out.append(line)
        used += cost
    return out[::-1]
