"""Forgetting, totally and at once: a memory, a session, a time range, or everything said about something.

`plan_forget` finds what would go and counts it (for the confirmation the user reads); `forget` deletes it in
one transaction: the source turns (with the turns a correction replaced), the memories (segments) made from
them with their vectors, full-text rows and timeline links, the clips heard (rows and audio files), the
memories attached to later messages, pinned facts drawn from them, and the whole sessions asked for (or left
empty). Every summary that saw one of the sessions (session, running memory, day, week, month: the journal)
is hidden and blanked until consolidation rebuilds it without them (migration m021's triggers); a session that
keeps other turns is segmented again. The store overwrites deleted rows with zeros (`secure_delete`), the
full-text indexes drop a row's words at once (FTS5 secure-delete) and a WAL checkpoint (TRUNCATE) empties the
log, so the words leave the files, not only the queries.

A phrase ("Daniel") matches every turn whose text holds it (case-insensitive) or that the full-text index
finds for it (the same words in another form, "cats" for "cat"); the rest of a session stays.

The assistant's answers built on what goes go with it: the answer to a forgotten message ("Enjoy your lesson
on Thursday" after "My cello lesson is on Thursday", which names no cello), and the answer to a later message
that had a forgotten turn among its recalled memories (it may repeat the fact in other words), and a later answer
in the same conversation that repeats the forgotten message's own words ("Your dog's name is Biscuit.": the
model read it in its window). A question whose answer goes that asks about what goes ("What's my dog's
name?" after "My dog is called Biscuit": a word of the forgotten message, and a question) goes with it: left
alone it was grouped with the next exchange and recalled as its question ("What's my dog's name? ... Ana").
Other messages stay, statements always.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from .errors import NotFoundError
from .segmenter import STOPWORDS, words as words_of
from .store import Store, title_from
from .vectors import time_sql

CHUNK = 500
PREVIEW_TURNS = 3       # a confirmation shows the opening words of this many of the turns that go
PREVIEW_WIDTH = 60      # characters of each


@dataclass
class ForgetPlan:
    """What forgetting would delete. Counts are what the user is told; the ids are what goes."""

    turn_ids: list[int] = field(default_factory=list)
    segment_ids: list[int] = field(default_factory=list)
    summary_ids: list[int] = field(default_factory=list)     # current summaries hidden until rebuilt
    clip_ids: list[int] = field(default_factory=list)
    session_ids: list[int] = field(default_factory=list)     # whole sessions deleted
    pin_ids: list[int] = field(default_factory=list)
    touched_sessions: list[int] = field(default_factory=list)  # sessions that lose turns and stay
    phrase: str | None = None
    forgotten: bool = False                                   # set by `forget`
    # the first turns that go, as (role, text), for a confirmation that shows which ones (`preview`)
    samples: list[tuple[str, str]] = field(default_factory=list)
    # the assistant's answers among turn_ids: for a phrase every one that goes, else those that go only as
    # answers built on what was chosen (a session's own answers are the session)
    answers: int = 0
    questions: int = 0          # the questions among turn_ids that go with their answers (about what goes)

    @property
    def turns(self) -> int:
        return len(self.turn_ids)

    @property
    def segments(self) -> int:
        return len(self.segment_ids)

    @property
    def summaries(self) -> int:
        return len(self.summary_ids)

    @property
    def clips(self) -> int:
        return len(self.clip_ids)

    @property
    def sessions(self) -> int:
        return len(self.session_ids)

    @property
    def pins(self) -> int:
        return len(self.pin_ids)

    @property
    def empty(self) -> bool:
        return not (self.turn_ids or self.segment_ids or self.clip_ids or self.session_ids or self.pin_ids)

    def describe(self) -> str:
        """One sentence: "This forgets 12 turns, 3 memories, 2 summaries and 1 clip." (after `forget`:
        "Forgot ...")."""
        if self.empty:
            return "Nothing matches, so there is nothing to forget."
        parts = [_n(self.turns, "turn"), _n(self.segments, "memory", "memories"), _n(self.summaries, "summary",
                                                                                     "summaries"),
                 _n(self.clips, "clip")]
        if self.pins:
            parts.append(_n(self.pins, "pinned fact"))
        built = []
        if self.answers:
            built.append(f"{self.answers} of them {'an answer' if self.answers == 1 else 'answers'} built on it")
        if self.questions:
            built.append(f"{_n(self.questions, 'question')} about it")
        if built:
            parts[0] += f" ({', '.join(built)})"
        text = ", ".join(parts[:-1]) + " and " + parts[-1]
        if self.sessions:
            text += f" ({_n(self.sessions, 'whole session')})"
        return ("Forgot " if self.forgotten else "This forgets ") + text + "."

    def preview(self, width: int = PREVIEW_WIDTH) -> list[str]:
        """The turns that go, one short line each (the opening `width` characters of the first
        PREVIEW_TURNS), then "… and N more" for the rest: what a confirmation lists."""
        lines = [f"{'you' if role == 'user' else role}: “{_opening(text, width)}”" for role, text in self.samples]
        if self.turns > len(lines):
            lines.append(f"… and {self.turns - len(lines)} more")
        return lines if self.samples else []

    def covers(self, memory) -> bool:
        """Whether a recalled memory (memory.recall.Memory: kind, id, session_id, turn_ids) holds something
        this plan forgets: one of its turns, the memory itself, its clip or its whole session."""
        ids = {"segment": self.segment_ids, "turn": self.turn_ids, "audio": self.clip_ids}.get(
            getattr(memory, "kind", ""), ())
        if getattr(memory, "id", None) in ids:
            return True
        if set(getattr(memory, "turn_ids", ()) or ()) & set(self.turn_ids):
            return True
        return bool(getattr(memory, "session_id", None)) and memory.session_id in self.session_ids


def _opening(text: str, width: int) -> str:
    """The first `width` characters of `text`, cut at a word's end where one is near."""
    text = " ".join(text.split())
    if len(text) <= width:
        return text
    cut = text[:width]
    if text[width] != " " and " " in cut[width * 2 // 3:]:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:") + "…"


def _n(n: int, word: str, many: str | None = None) -> str:
    return f"{n} {word if n == 1 else (many or word + 's')}"


# -- what would go ---------------------------------------------------------------------------------------
def plan_forget(store: Store, *, segment_id: int | None = None, session_id: int | None = None,
                since: str | None = None, until: str | None = None, phrase: str | None = None) -> ForgetPlan:
    """What forgetting would delete; exactly one way of choosing: a memory (`segment_id`), a session, a
    time range [`since`, `until`) of ISO times (either end may be open), or a `phrase`. Raises
    NotFoundError for a memory or session that does not exist, ValueError for no choice or an empty phrase."""
    chosen = [x is not None for x in (segment_id, session_id, phrase)] + [since is not None or until is not None]
    if sum(chosen) != 1:
        raise ValueError("Say what to forget: one memory, one session, a time range or a phrase.")
    db = store.db
    whole: list[int] = []
    pin_ids: list[int] = []
    if segment_id is not None:
        rows = db.execute("SELECT turn_id FROM segment_turns WHERE segment_id = ?", [segment_id]).fetchall()
        if not rows and not db.execute("SELECT 1 FROM segments WHERE id = ?", [segment_id]).fetchone():
            raise NotFoundError(f"There is no memory {segment_id}; find memories with `assistant memory search`.")
        turn_ids = [r[0] for r in rows]
    elif session_id is not None:
        if not db.execute("SELECT 1 FROM sessions WHERE id = ?", [session_id]).fetchone():
            raise NotFoundError(f"There is no session {session_id}; list sessions with `assistant sessions`.")
        whole = [session_id]
        turn_ids = [r[0] for r in db.execute("SELECT id FROM turns WHERE session_id = ?", [session_id])]
    elif phrase is not None:
        phrase = " ".join(phrase.split())
        if not phrase:
            raise ValueError("Say what to forget: the phrase is empty.")
        turn_ids = matching_turns(store, phrase)
        pin_ids = [i for i, text in db.execute("SELECT id, text FROM pins") if _mentions(text, phrase)]
    else:
        where, params = time_sql(since, until)
        turn_ids = [r[0] for r in db.execute(f"SELECT id FROM turns WHERE {' AND '.join(where)}", params)]
    turn_ids, answers, questions = _with_what_goes_along(store, turn_ids)
    sessions = _sessions_of(store, turn_ids) | set(whole)
    # sessions left with no turn at all go too (a time range that holds a whole conversation)
    left = _remaining(store, sessions, turn_ids)
    whole = sorted(set(whole) | {s for s in sessions if not left.get(s)})
    segment_ids = _segments_of(store, turn_ids, whole)
    clip_ids = _clips_of(store, turn_ids, whole)
    summary_ids = _summaries_of(store, sessions)
    pin_ids = sorted(set(pin_ids) | _pins_of(store, turn_ids))
    return ForgetPlan(sorted(turn_ids), segment_ids, summary_ids, clip_ids, whole, pin_ids,
                      sorted(sessions - set(whole)), phrase, samples=_samples(store, turn_ids),
                      answers=_answers_among(store, turn_ids) if phrase is not None else len(answers),
                      questions=len(questions))


def _samples(store: Store, turn_ids: list[int]) -> list[tuple[str, str]]:
    """(role, text) of the first PREVIEW_TURNS turns that go, in the order they were said (a turn a
    correction replaced is left out: its correction stands for it)."""
    out: list[tuple[str, str]] = []
    for part in _chunks(sorted(turn_ids)):
        for role, text in store.db.execute(
                f"SELECT role, text FROM turns WHERE id IN ({_marks(part)}) AND corrected_by IS NULL ORDER BY id "
                f"LIMIT {PREVIEW_TURNS - len(out)}", part):
            out.append((role, text))
        if len(out) >= PREVIEW_TURNS:
            break
    return out


_LEADING = re.compile(r"^(?:(?:the|a|an|my|our|your|his|her|their|this|that)\s+)+", re.I)


def _core(phrase: str) -> tuple[str, list[str]]:
    """The phrase without a leading article or possessive ("the gym locker" -> "gym locker"), lower-case,
    and its words that carry meaning (all of them when every word is a stopword)."""
    low = _LEADING.sub("", " ".join(phrase.lower().split())) or phrase.lower()
    words = re.findall(r"\w+", low)
    return low, [w for w in words if w not in STOPWORDS] or words


def _mentions(text: str, phrase: str) -> bool:
    low, words = _core(phrase)
    have = set(re.findall(r"\w+", text.lower()))
    return low in text.lower() or bool(words) and all(w in have for w in words)


def matching_turns(store: Store, phrase: str) -> list[int]:
    """Every turn whose text holds `phrase` (case-insensitive, without a leading "the" or "my"), or that the
    full-text index matches for all of its meaningful words (in any order and form: "the gym locker" finds
    "my locker code at the gym"); a turn matched only through its speaker's name is left out."""
    db = store.db
    low, words = _core(phrase)
    ids = {r[0] for r in db.execute("SELECT id FROM turns WHERE instr(lower(text), ?) > 0", [low])}
    if words:
        match = " ".join('"' + w.replace('"', '""') + '"' for w in words)
        try:
            found = [r[0] for r in db.execute("SELECT rowid FROM fts_turn WHERE fts_turn MATCH ?", [match])]
        except Exception:        # an index that cannot parse it: the substring match stands
            found = []
        extra = [i for i in found if i not in ids]
        for part in _chunks(extra):
            for tid, speaker in db.execute(
                    f"SELECT id, lower(COALESCE(speaker, '')) FROM turns WHERE id IN ({_marks(part)})", part):
                if not all(w in speaker for w in words):
                    ids.add(tid)
    return sorted(ids)


def _chunks(xs: Sequence, n: int = CHUNK) -> Iterable[list]:
    xs = list(xs)
    for i in range(0, len(xs), n):
        yield xs[i:i + n]


def _marks(xs: Sequence) -> str:
    return ",".join("?" * len(xs))


def _with_what_goes_along(store: Store, turn_ids: list[int]) -> tuple[list[int], list[int], list[int]]:
    """The turns with their corrections, the answers built on them and the questions about them: (all of
    them, the answers, the questions)."""
    turn_ids = _with_corrections(store, turn_ids)
    answers = _answers_built_on(store, turn_ids)
    questions = _questions_about(store, sorted(set(turn_ids) | set(answers)))
    return sorted(set(turn_ids) | set(answers) | set(questions)), answers, questions


def _with_corrections(store: Store, turn_ids: list[int]) -> list[int]:
    """The turns and, for a correction among them, the turns it corrected (and so on down the chain)."""
    out, todo = set(turn_ids), list(turn_ids)
    while todo:
        nxt = []
        for part in _chunks(todo):
            nxt += [r[0] for r in store.db.execute(
                f"SELECT id FROM turns WHERE corrected_by IN ({_marks(part)})", part) if r[0] not in out]
        out.update(nxt)
        todo = nxt
    return sorted(out)


def _answers_built_on(store: Store, turn_ids: list[int]) -> list[int]:
    """The assistant's answers, not among `turn_ids`, to a message among them or to a message that had one of
    them among its recalled memories (one step: an answer built on such an answer stays)."""
    db, gone = store.db, set(turn_ids)
    asked = {t for part in _chunks(turn_ids) for t, in db.execute(
        f"SELECT id FROM turns WHERE id IN ({_marks(part)}) AND role = 'user'", part)}
    for part in _chunks(turn_ids):
        asked.update(r[0] for r in db.execute(
            "SELECT DISTINCT m.user_turn_id FROM turn_memory_sources s JOIN turn_memories m ON m.id = s.memory_id "
            f"WHERE s.turn_id IN ({_marks(part)})", part))
    out: set[int] = set()
    for part in _chunks(sorted(asked)):
        # the turn right after the message in its session, when it is the assistant's
        out.update(r[0] for r in db.execute(
            "SELECT n.id FROM turns t JOIN turns n ON n.id = (SELECT MIN(x.id) FROM turns x "
            "WHERE x.session_id = t.session_id AND x.id > t.id) "
            f"WHERE t.id IN ({_marks(part)}) AND n.role = 'assistant'", part))
    out.update(_echoes(store, sorted(asked & gone)))
    return sorted(out - gone)


_QUESTION = re.compile(r"(\?\s*$)|^\s*(who|whom|whose|what|what's|whats|when|where|which|why|how|is|are|am|was|were|"
                       r"do|does|did|can|could|will|would|should|have|has|tell me|remind me)\b", re.I)


def _questions_about(store: Store, gone: list[int]) -> list[int]:
    """The messages that the assistant's answers among `gone` replied to and that are questions about what
    goes: they hold a meaningful word of a forgotten message of the user's. A statement is never among them
    (it may hold a fact of its own)."""
    db, gone_set = store.db, set(gone)
    told: set[str] = set()
    for part in _chunks(gone):
        for text, in db.execute(f"SELECT text FROM turns WHERE id IN ({_marks(part)}) AND role = 'user'", part):
            told |= _telling(text, shortest=3)
    out: set[int] = set()
    for part in _chunks(gone):
        for tid, role, text in db.execute(
                "SELECT q.id, q.role, q.text FROM turns a JOIN turns q ON q.id = (SELECT MAX(x.id) FROM turns x "
                f"WHERE x.session_id = a.session_id AND x.id < a.id) WHERE a.id IN ({_marks(part)}) "
                "AND a.role = 'assistant'", part):
            if role == "user" and tid not in gone_set and _QUESTION.search(text) and _telling(text, shortest=3) & told:
                out.add(tid)
    return sorted(out)


def _answers_among(store: Store, turn_ids: list[int]) -> int:
    """How many of the turns are the assistant's: the answers that go, whether they hold the phrase themselves
    or were built on what does (the count the sentence gives, beside the answers the preview lists)."""
    return sum(store.db.execute(f"SELECT COUNT(*) FROM turns WHERE id IN ({_marks(part)}) AND role = 'assistant'",
                                part).fetchone()[0] for part in _chunks(turn_ids))


def _echoes(store: Store, told: list[int]) -> set[int]:
    """Later answers in the same session that repeat a forgotten message's own words: the model had that
    message in its window, so "Your dog's name is Biscuit." (to "What's my dog's name?") came from "My dog is
    called Biscuit". A word counts when it carries meaning and the question it answers does not hold it."""
    by_session: dict[int, list[tuple[int, set[str]]]] = {}
    for part in _chunks(told):
        for tid, sid, text in store.db.execute(
                f"SELECT id, session_id, text FROM turns WHERE id IN ({_marks(part)})", part):
            by_session.setdefault(sid, []).append((tid, _telling(text)))
    out: set[int] = set()
    for sid, said in by_session.items():
        first = min(tid for tid, _ in said)
        question: set[str] = set()
        for tid, role, text in store.db.execute(
                "SELECT id, role, text FROM turns WHERE session_id = ? AND id > ? ORDER BY id", [sid, first]):
            words = _telling(text)
            if role == "user":
                question = words
            elif any(before < tid and (w - question) & words for before, w in said):
                out.add(tid)
    return out


def _telling(text: str, shortest: int = 4) -> set[str]:
    """The words of `text` that carry meaning (no stopwords, at least `shortest` characters), lower-case. A
    question about what goes is read with 3 ("dog")."""
    words = (w.removesuffix("'s").removesuffix("’s") for w in words_of(text))     # "dog's" is "dog"
    return {w for w in words if len(w) >= shortest and w not in STOPWORDS}


def _sessions_of(store: Store, turn_ids: list[int]) -> set[int]:
    out: set[int] = set()
    for part in _chunks(turn_ids):
        out.update(r[0] for r in store.db.execute(
            f"SELECT DISTINCT session_id FROM turns WHERE id IN ({_marks(part)})", part))
    return out


def _remaining(store: Store, sessions: set[int], turn_ids: list[int]) -> dict[int, int]:
    """session -> how many of its turns stay."""
    gone: dict[int, int] = {}
    for part in _chunks(turn_ids):
        for sid, n in store.db.execute(
                f"SELECT session_id, COUNT(*) FROM turns WHERE id IN ({_marks(part)}) GROUP BY session_id", part):
            gone[sid] = gone.get(sid, 0) + n
    out = {}
    for part in _chunks(sorted(sessions)):
        for sid, n in store.db.execute(
                f"SELECT id, turn_count FROM sessions WHERE id IN ({_marks(part)})", part):
            out[sid] = n - gone.get(sid, 0)
    return out


def _segments_of(store: Store, turn_ids: list[int], sessions: list[int]) -> list[int]:
    out: set[int] = set()
    for part in _chunks(turn_ids):
        out.update(r[0] for r in store.db.execute(
            f"SELECT DISTINCT segment_id FROM segment_turns WHERE turn_id IN ({_marks(part)})", part))
    for part in _chunks(sessions):
        out.update(r[0] for r in store.db.execute(
            f"SELECT id FROM segments WHERE session_id IN ({_marks(part)})", part))
    return sorted(out)


def _clips_of(store: Store, turn_ids: list[int], sessions: list[int]) -> list[int]:
    out: set[int] = set()
    for part in _chunks(turn_ids):
        out.update(r[0] for r in store.db.execute(
            f"SELECT id FROM audio_clips WHERE turn_id IN ({_marks(part)})", part))
    for part in _chunks(sessions):
        out.update(r[0] for r in store.db.execute(
            f"SELECT id FROM audio_clips WHERE session_id IN ({_marks(part)})", part))
    return sorted(out)


def _first_times(store: Store, turn_ids: list[int]) -> dict[int, str]:
    """Per session, the time of the earliest of `turn_ids`."""
    out: dict[int, str] = {}
    for part in _chunks(turn_ids):
        for sid, at in store.db.execute(f"SELECT session_id, MIN(created_at) FROM turns WHERE id IN ({_marks(part)}) "
                                        "GROUP BY session_id", part):
            out[sid] = min(at, out.get(sid, at))
    return out


def _start_at_first_kept_turn(store: Store, kept: list[int], first_gone: dict[int, str]) -> None:
    """A session that lost its first turns starts at the first turn it keeps: the sessions list and the
    journal would otherwise still show when the forgotten words were said."""
    for sid in kept:
        gone = first_gone.get(sid)
        row = store.db.execute("SELECT MIN(created_at) FROM turns WHERE session_id = ?", [sid]).fetchone()
        if gone is not None and row[0] is not None and gone < row[0]:
            store.db.execute("UPDATE sessions SET started_at = ? WHERE id = ? AND started_at < ?", [row[0], sid, row[0]])


def _summaries_of(store: Store, sessions: Iterable[int]) -> list[int]:
    out: set[int] = set()
    for part in _chunks(sorted(sessions)):
        out.update(r[0] for r in store.db.execute(
            "SELECT s.id FROM summaries s JOIN summary_sessions x ON x.summary_id = s.id "
            f"WHERE s.status = 'current' AND x.session_id IN ({_marks(part)})", part))
    return sorted(out)


def _pins_of(store: Store, turn_ids: list[int]) -> set[int]:
    out: set[int] = set()
    for part in _chunks(turn_ids):
        out.update(r[0] for r in store.db.execute(
            f"SELECT DISTINCT pin_id FROM pin_turns WHERE turn_id IN ({_marks(part)})", part))
    return out


# -- forgetting ------------------------------------------------------------------------------------------
def forget(store: Store, plan: ForgetPlan) -> ForgetPlan:
    """Delete everything `plan` names, in one transaction, then the clips' audio files, then empty the
    write-ahead log into the database file (TRUNCATE) so that no copy of the forgotten pages stays there.
    Returns the plan, marked done (its sentence then reads "Forgot ...") and holding the ids of what went."""
    from .index import HybridIndex

    db = store.db
    db.execute("PRAGMA secure_delete=ON")
    paths: list[str] = []
    with store.write():
        # what the plan named, and what was derived from it since (a consolidation in between)
        turn_ids, _, _ = _with_what_goes_along(store, plan.turn_ids)
        segment_ids = sorted(set(plan.segment_ids) | set(_segments_of(store, turn_ids, plan.session_ids)))
        clip_ids = sorted(set(plan.clip_ids) | set(_clips_of(store, turn_ids, plan.session_ids)))
        sessions = _sessions_of(store, turn_ids) | set(plan.session_ids)
        titles = _titles_from(store, turn_ids, sessions, plan.phrase)
        first_gone = _first_times(store, turn_ids)
        HybridIndex(store, "segment").remove(segment_ids)
        for part in _chunks(segment_ids):
            db.execute(f"DELETE FROM segments WHERE id IN ({_marks(part)})", part)
        for part in _chunks(clip_ids):
            paths += [r[0] for r in db.execute(f"SELECT path FROM audio_clips WHERE id IN ({_marks(part)})", part)]
            db.execute(f"DELETE FROM audio_clips WHERE id IN ({_marks(part)})", part)
        HybridIndex(store, "turn").remove(turn_ids)
        for part in _chunks(plan.pin_ids):
            db.execute(f"DELETE FROM pins WHERE id IN ({_marks(part)})", part)
        # Corrected turns first (their correction's deletion would cascade to them anyway). The triggers
        # blank and hide every summary that saw the session, drop memories attached from these turns, and
        # pinned facts drawn from them.
        for part in _chunks(turn_ids):
            db.execute(f"DELETE FROM turns WHERE id IN ({_marks(part)}) AND corrected_by IS NOT NULL", part)
            db.execute(f"DELETE FROM turns WHERE id IN ({_marks(part)})", part)
        for part in _chunks(plan.session_ids):
            db.execute(f"DELETE FROM sessions WHERE id IN ({_marks(part)})", part)
        kept = sorted(sessions - set(plan.session_ids))
        for part in _chunks(kept):
            # what is left of a session is segmented (and summarized) again by the next consolidation
            db.execute(f"DELETE FROM segmentation_log WHERE session_id IN ({_marks(part)})", part)
        for sid, title in titles.items():
            db.execute("UPDATE sessions SET title = ? WHERE id = ?", [title, sid])
        _start_at_first_kept_turn(store, kept, first_gone)
    for p in paths:
        Path(p).unlink(missing_ok=True)
    checkpoint(store)
    for hook in list(store.on_forget):
        try:
            hook()
        except OSError:
            pass        # a cache beside the database could not be cleared; the memory itself is done
    # what went, for those who show it (a chat view drops these turns and memories)
    plan.turn_ids, plan.segment_ids, plan.clip_ids = turn_ids, segment_ids, clip_ids
    plan.forgotten = True
    return plan


def _titles_from(store: Store, turn_ids: list[int], sessions: set[int], phrase: str | None) -> dict[int, str | None]:
    """New titles for sessions that stay but whose title came from a forgotten turn or holds the phrase:
    the opening words of their first turn left, or none when none is left (the next message names it, as
    it names a new conversation)."""
    db = store.db
    gone = set(turn_ids)
    said: dict[int, set[str]] = {}
    for part in _chunks(turn_ids):
        for sid, text in db.execute(f"SELECT session_id, text FROM turns WHERE id IN ({_marks(part)})", part):
            said.setdefault(sid, set()).add(title_from(text))
    low = phrase.lower() if phrase else None
    out = {}
    for part in _chunks(sorted(sessions)):
        for sid, title in db.execute(f"SELECT id, title FROM sessions WHERE id IN ({_marks(part)})", part):
            if not title or not ((low and low in title.lower()) or title in said.get(sid, ())):
                continue
            first = next((text for tid, text in db.execute(
                "SELECT id, text FROM turns WHERE session_id = ? AND role = 'user' AND corrected_by IS NULL "
                "ORDER BY id", [sid]) if tid not in gone and not (low and low in text.lower())), None)
            out[sid] = title_from(first) if first else None
    return out


def checkpoint(store: Store) -> bool:
    """Copy the write-ahead log into the database file and truncate it to nothing; False when another
    connection's open read kept some of it (the next checkpoint finishes)."""
    row = store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    return bool(row) and row[0] == 0
