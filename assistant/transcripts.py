"""The raw conversations written out as they were: who said what, and when (Markdown or JSON Lines)."""
from __future__ import annotations

import json
from typing import Iterator

from memory.facts import HEARD, ROOM
from memory.store import Store
from memory.vectors import time_sql

from .journal import _bounds, _in_range, local

FORMATS = ("md", "jsonl")
_COLS = ("s.id, s.title, s.source, s.started_at, t.id, t.role, t.speaker, t.text, t.created_at, t.source, "
         "t.status, t.corrected_by")


def _rows(store: Store, since: str | None, until: str | None) -> Iterator[tuple]:
    """Turns of [since, until) (ISO local days), session by session, in order."""
    lo, hi = _bounds(since, until)
    where, params = time_sql(lo, hi, ends="t.created_at")
    cur = store.db.execute(f"SELECT {_COLS} FROM turns t JOIN sessions s ON s.id = t.session_id "
                           f"WHERE {' AND '.join(where) or '1'} ORDER BY s.started_at, s.id, t.id", params)
    while rows := cur.fetchmany(2000):
        for r in rows:
            if since or until:
                if not _in_range(local(r[8]).date().isoformat(), since, until):
                    continue
            yield r


def who(role: str, speaker: str | None, source: str = "chat") -> str:
    """The name a turn is shown under: its speaker's, else You, Assistant, or Heard in the room (room
    audio with no name is not the user's words)."""
    if source == "audio" and role != "assistant" and (speaker or "").strip() in ("", ROOM):
        return HEARD
    if speaker and speaker.strip() and speaker.strip().lower() not in ("user", "assistant"):
        return speaker.strip()
    if role == "assistant":
        return "Assistant"
    if role == "system":
        return "System"
    return HEARD if source == "audio" and not speaker else "You"


def markdown(store: Store, since: str | None = None, until: str | None = None) -> Iterator[str]:
    """Markdown, piece by piece: a heading a session, then each turn with its time and who said it."""
    yield "# Conversations\n"
    last = None
    any_ = False
    for sid, title, ssource, started, tid, role, speaker, text, at, source, status, fixed in _rows(store, since, until):
        any_ = True
        if sid != last:
            last = sid
            t0 = local(started)
            kind = "" if ssource == "chat" else f" · {ssource}"
            yield f"\n## {title or 'Untitled'}\n\n_{t0.strftime('%A %-d %B %Y, %H:%M')}{kind} · session {sid}_\n"
        t = local(at)
        cut = ("" if status == "complete" else f" _({status})_") + (f" _(corrected by turn {fixed})_" if fixed else "")
        body = text.strip().replace("\n", "  \n")
        yield f"\n**{who(role, speaker, source)}** ({t.strftime('%H:%M')}, turn {tid}){cut}: {body}\n"
    if not any_:
        yield "\nNo conversations in this period.\n"


def jsonl(store: Store, since: str | None = None, until: str | None = None) -> Iterator[str]:
    """JSON Lines, one turn a line, with its session."""
    for sid, title, ssource, started, tid, role, speaker, text, at, source, status, fixed in _rows(store, since, until):
        yield json.dumps({"session_id": sid, "session_title": title, "session_source": ssource,
                          "session_started_at": started, "turn_id": tid, "role": role, "speaker": speaker,
                          "who": who(role, speaker, source), "text": text, "created_at": at, "source": source,
                          "status": status, "corrected_by": fixed}, ensure_ascii=False) + "\n"
