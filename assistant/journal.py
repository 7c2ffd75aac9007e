"""The journal, day by day: what the user did, said, decided and planned, who was involved, what was heard
in the room (with times) and how things changed (timelines).

Built from the session summaries (memory.summaries), which are facts people stated, in their own words,
each tied to the turn it came from (a session summary's `inputs` lists the source turn of each line): the
assistant's words are never a fact, and nothing here is written by a model. A stale summary (its turns
were forgotten) has no text and shows nothing. The user's facts are grouped by cue words in what they
said (a plan, a decision, something done); the words themselves are the user's, in the second person.

`journal_days` returns plain data for every view (the terminal screen, Markdown, HTML, JSON).
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta

from memory.clock import parse
from memory.facts import HEARD, ROOM, USER, candidates, for_user, split_line, taken_back_by_later
from memory.store import Store
from memory.summaries import SummaryStore, lines
from memory.vectors import time_sql

KINDS = ("did", "decided", "planned", "said")     # the user's own lines, in this order on a day
# How a link reads between an earlier memory and a later one (memory.timelines' labels).
LINK_WORDS = {"Changed": "changed", "Cause": "led to", "Reason": "explains", "HinderedBy": "was hindered by",
              "React": "reaction", "Want": "wish"}

_DECIDED = re.compile(r"\b(decided|decide|chose|chosen|settled on|made up (my|our) mind|going with|"
                      r"(will|'ll) go with|opted|agreed to)\b", re.I)
_PLANNED = re.compile(r"\b(will|'ll|going to|gonna|plan|plans|planning|planned|want to|hope to|intend|"
                      r"tomorrow|tonight|next (week|month|year|monday|tuesday|wednesday|thursday|friday|"
                      r"saturday|sunday)|this (evening|weekend|afternoon)|appointment|booked|scheduled)\b", re.I)
_PAST = (r"(?!(?:need|feed|exceed|proceed|succeed|bleed|speed|breed|shred)\b)\w+ed|went|bought|made|met|saw|got|"
         r"took|ran|began|started|finished|moved|sold|found|gave|did|wrote|read|came|left|built|won|lost|paid|"
         r"spent|sent|told|been|done|seen|gotten|taken|begun|given|written|come|flew|drove|ate|swam|sang")
_DID = re.compile(r"\b(?:I|we)(?:'ve|\s+have|\s+had)?\s+(?:just\s+|finally\s+|already\s+)?(?:" + _PAST + r")\b", re.I)


@dataclass
class JournalLine:
    """One thing somebody said that day, as the user reads it."""

    text: str                 # the user's own words in the second person; others' after their name
    speaker: str              # "User", a person's name, or "Heard in the room"
    kind: str                 # did, decided, planned, said (the user's); said (others'); heard
    at: str                   # when it was said (ISO, UTC)
    time: str                 # the same as HH:MM, local time
    turn_id: int | None
    session_id: int
    clip_id: int | None = None   # for what was heard: the audio clip to play


@dataclass
class JournalChange:
    """A timeline link that ends on this day: an earlier memory and the later one it relates to."""

    label: str                # memory.timelines' label (Changed, Cause, ...)
    words: str                # how the label reads ("changed")
    earlier_id: int
    earlier_at: str
    earlier: str              # the earlier memory's first statement, as the user reads it
    later_id: int
    later_at: str
    later: str


@dataclass
class JournalSession:
    id: int
    title: str
    source: str               # chat, audio, import
    time: str                 # HH:MM local, when it started
    turns: int


@dataclass
class JournalDay:
    day: str                  # ISO date, local
    title: str                # "Monday 3 March 2025"
    lines: list[JournalLine] = field(default_factory=list)
    people: list[str] = field(default_factory=list)
    changes: list[JournalChange] = field(default_factory=list)
    sessions: list[JournalSession] = field(default_factory=list)

    def yours(self, kind: str) -> list[JournalLine]:
        return [x for x in self.lines if x.speaker == USER and x.kind == kind]

    @property
    def others(self) -> list[JournalLine]:
        return [x for x in self.lines if x.speaker not in (USER, HEARD)]

    @property
    def heard(self) -> list[JournalLine]:
        return [x for x in self.lines if x.kind == "heard"]

    def as_dict(self) -> dict:
        return asdict(self)


def kind_of(words: str) -> str:
    """What a line of the user says they did: decided, planned, did, or (otherwise) said."""
    if _DECIDED.search(words):
        return "decided"
    if _PLANNED.search(words):
        return "planned"
    if _DID.search(words):
        return "did"
    return "said"


def local(ts: str) -> datetime:
    return parse(ts).astimezone()


def day_title(day: str) -> str:
    d = date.fromisoformat(day)
    return f"{d.strftime('%A')} {d.day} {d.strftime('%B %Y')}"


_PEOPLE = re.compile(r"\b(?:with|and|met|meet|meeting|called|told|asked|saw|visited|invited|"
                     r"(?:[Mm]y|[Oo]ur|[Yy]our)\s+(?:\w+\s+)?(?:sister|brother|friend|mother|mom|mum|father|dad|son|"
                     r"daughter|wife|husband|partner|boss|colleague|cousin|aunt|uncle|neighbour|neighbor|teacher|"
                     r"doctor|dentist|grandmother|grandfather|kids?))\s+([A-Z][a-z]+)\b")
# Pets have names too: "a golden retriever called Rex", "my dog is called Rex", "our cat Miso".
_PETS = re.compile(r"\b(?:dog|cat|puppy|kitten|pet|horse|pony|rabbit|bunny|hamster|guinea pig|parrot|bird|"
                   r"goldfish|fish|tortoise|turtle|retriever|labrador|poodle|terrier|spaniel|collie|beagle|"
                   r"shepherd|dachshund|pug|husky)(?:'s\s+name)?\s+(?:is\s+)?(?:(?:called|named)\s+)?"
                   r"((?-i:[A-Z][a-z]+))\b",
                   re.I)
_NOT_NAMES = {"I", "The", "A", "My", "Our", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday",
              "Sunday", "January", "February", "March", "April", "May", "June", "July", "August", "September",
              "October", "November", "December", ROOM}


def _people(day: JournalDay) -> list[str]:
    """Who was involved: the day's named speakers, whoever named themselves in the room ("Hi, this is
    Maria"), then the people that what was said names ("my sister Anna", "with Tom"), pets aside. The
    room itself (what listening heard) is no person."""
    from audio.speakers import self_named

    out: dict[str, None] = {}
    for x in day.lines:
        if x.speaker not in (USER, HEARD, ROOM):
            out.setdefault(x.speaker)
    for x in day.lines:
        name = self_named(x.text) if x.speaker in (HEARD, ROOM) else None
        if name:
            out.setdefault(name)
    pets = {name for x in day.lines for name in _PETS.findall(x.text)}
    for x in day.lines:
        words = split_line(x.text)[2] if x.speaker not in (USER, HEARD, ROOM) else x.text
        for name in _PEOPLE.findall(words):
            if name not in _NOT_NAMES and name not in pets:
                out.setdefault(name)
    return list(out)


def _chunks(xs: list, n: int = 900):
    for i in range(0, len(xs), n):
        yield xs[i:i + n]


def _bounds(since: str | None, until: str | None) -> tuple[str | None, str | None]:
    """UTC bounds a day longer each way than the local days asked for (summaries are filtered by UTC)."""
    lo = (date.fromisoformat(since) - timedelta(days=1)).isoformat() if since else None
    hi = (date.fromisoformat(until) + timedelta(days=1)).isoformat() if until else None
    return lo, hi


def _in_range(day: str, since: str | None, until: str | None) -> bool:
    return (since is None or day >= since) and (until is None or day < until)


def journal_days(store: Store, since: str | None = None, until: str | None = None) -> list[JournalDay]:
    """The journal's days with something in them, oldest first. `since` (included) and `until` (excluded)
    are ISO dates of local days."""
    lo, hi = _bounds(since, until)
    db = store.db
    summaries = SummaryStore(store).list("session", since=lo, until=hi)
    raw: list[tuple[str, int | None, int, str]] = []      # (line, source turn, session, session start)
    for s in summaries:
        ids = [int(i) for i in s.inputs.split(",") if i.strip().isdigit()] if s.method == "facts" else []
        text = lines(s.text)
        for i, line in enumerate(text):
            raw.append((line, ids[i] if len(ids) == len(text) else None, int(s.key), s.period_start))
    turn_ids = [t for _, t, _, _ in raw if t is not None]
    when: dict[int, str] = {}
    clips: dict[int, int] = {}
    for chunk in _chunks(turn_ids):
        marks = ",".join("?" * len(chunk))
        when.update(db.execute(f"SELECT id, created_at FROM turns WHERE id IN ({marks})", chunk).fetchall())
        clips.update(db.execute(f"SELECT turn_id, id FROM audio_clips WHERE turn_id IN ({marks})",
                                chunk).fetchall())
    days: dict[str, JournalDay] = {}

    def day_of(key: str) -> JournalDay:
        if key not in days:
            days[key] = JournalDay(key, day_title(key))
        return days[key]

    for line, tid, sid, started in raw:
        at = when.get(tid, started) if tid is not None else started
        t = local(at)
        key = t.date().isoformat()
        if not _in_range(key, since, until):
            continue
        _, speaker, words = split_line(line)
        speaker = speaker or USER
        kind = "heard" if speaker == HEARD else kind_of(words) if speaker == USER else "said"
        text = words if speaker == HEARD else for_user(line)
        day_of(key).lines.append(JournalLine(text, speaker, kind, at, t.strftime("%H:%M"), tid, sid,
                                             clips.get(tid) if tid is not None else None))
    _add_sessions(store, day_of, since, until, lo, hi)
    _add_changes(store, day_of, since, until, lo, hi)
    out = [days[k] for k in sorted(days)]
    for d in out:
        d.lines.sort(key=lambda x: (x.at, x.turn_id or 0))
        seen: set[tuple[str, str]] = set()      # a fact said again the same day is shown once, first time
        d.lines = [x for x in d.lines if (x.speaker, x.text) not in seen and not seen.add((x.speaker, x.text))]
        gone = taken_back_by_later([(x.speaker, x.text) for x in d.lines])   # a later correction took it back
        d.lines = [x for i, x in enumerate(d.lines) if i not in gone]
        d.people = _people(d)
    return out


def _add_sessions(store: Store, day_of, since, until, lo, hi) -> None:
    where, params = time_sql(lo, hi, ends="last_at", starts="started_at")
    where = " AND ".join(["turn_count > 0", *where])
    for sid, title, started, source, n in store.db.execute(
            f"SELECT id, title, started_at, source, turn_count FROM sessions WHERE {where} ORDER BY started_at, id",
            params).fetchall():
        t = local(started)
        key = t.date().isoformat()
        if _in_range(key, since, until):
            day_of(key).sessions.append(JournalSession(sid, title or "Untitled", source, t.strftime("%H:%M"), n))


def _statements(store: Store, turn_ids: list[int]) -> list[str]:
    """What people (not the assistant) stated in a memory, as the user reads it."""
    return [for_user(f.line) for f in candidates(store.turns_by_ids(turn_ids))]


_CONTENT = re.compile(r"[a-z]{4,}")


def _closest(earlier: list[str], later: list[str]) -> tuple[str, str]:
    """The statement of each memory that the other one speaks of most (the most words in common): what
    the link is about, rather than whatever each memory said first."""
    def words(x: str) -> set[str]:
        return set(_CONTENT.findall(x.lower())) - {"your", "you're", "you've", "with", "that", "have", "this"}
    best = max(((len(words(e) & words(l)), -i - j, e, l) for i, e in enumerate(earlier)
                for j, l in enumerate(later)), default=None)
    return (best[2], best[3]) if best else ("", "")


def _add_changes(store: Store, day_of, since, until, lo, hi) -> None:
    from memory.segments import SegmentStore

    where, params = time_sql(lo, hi, ends="later_at")
    where = " AND ".join(["label != 'SameTopic'", *where])
    rows = store.db.execute(f"SELECT label, earlier_id, earlier_at, later_id, later_at FROM links WHERE {where} "
                            "ORDER BY later_at, id", params).fetchall()
    rows = [r for r in rows if _in_range(local(r[4]).date().isoformat(), since, until)]
    if not rows:
        return
    segs = SegmentStore(store).get(list({r[1] for r in rows} | {r[3] for r in rows}))
    said = {i: _statements(store, list(s.turn_ids)) for i, s in segs.items()}
    for label, e_id, e_at, l_id, l_at in rows:
        earlier, later = _closest(said.get(e_id, []), said.get(l_id, []))
        if earlier and later and earlier != later:
            day_of(local(l_at).date().isoformat()).changes.append(
                JournalChange(label, LINK_WORDS.get(label, label.lower()), e_id, e_at, earlier, l_id, l_at, later))


def waiting_sessions(store: Store) -> int:
    """Sessions with turns that no current session summary covers yet (consolidation writes them)."""
    return store.db.execute("""
        SELECT COUNT(*) FROM sessions s WHERE s.turn_count > 0 AND NOT EXISTS (
            SELECT 1 FROM summaries m WHERE m.kind = 'session' AND m.key = CAST(s.id AS TEXT)
                                       AND m.status = 'current')""").fetchone()[0]
