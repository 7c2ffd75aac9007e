"""Time windows in questions about what was heard: "in the last 20 minutes", "since 3pm",
"between 2 and 4", "this morning", and "while I was away" (from the user's last activity before the latest
stretch without any, to now).

Clock times are read in the time zone of `now` (pass an aware local datetime); windows are aware
datetimes, and `Window.iso()` gives the UTC strings stored in the database.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Sequence

from memory.clock import to_iso


@dataclass
class Window:
    start: datetime
    end: datetime
    kind: str            # "explicit", "away" (gap in the user's activity) or "default"
    phrase: str = ""     # the words of the question that gave the window
    yesterday: bool = False   # "this afternoon" asked before it began today: the one just gone, yesterday's

    def iso(self) -> tuple[str, str]:
        return to_iso(self.start), to_iso(self.end)

    @property
    def duration(self) -> timedelta:
        return self.end - self.start

    def label(self, tz=None) -> str:
        """"14:10–15:30" in `tz` (default: the time zone the window was made in)."""
        tz = tz or self.start.tzinfo
        a, b = self.start.astimezone(tz), self.end.astimezone(tz)
        if a.date() == b.date():
            return ("yesterday " if self.yesterday else "") + f"{a.strftime('%H:%M')}–{b.strftime('%H:%M')}"
        return f"{a.strftime('%d %b %H:%M')}–{b.strftime('%d %b %H:%M')}"

    def reason(self) -> str:
        """Why this window, in words: the question's own words, the time the user was away, or the default."""
        if self.kind == "away":
            return "while you were away"
        if self.kind == "default":
            return f"no time named, so {self.phrase.removeprefix('in ')}"
        if self.yesterday:
            return f'"{self.phrase}": not begun yet today, so yesterday\'s'
        return f'"{self.phrase}"' if self.phrase else "as asked"

    def to_dict(self) -> dict:
        return {"start": to_iso(self.start), "end": to_iso(self.end), "kind": self.kind, "phrase": self.phrase}


# -- vocabulary ---------------------------------------------------------------------------------------
_NUMBERS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
            "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20,
            "thirty": 30, "forty": 40, "forty-five": 45, "fifty": 50, "sixty": 60, "ninety": 90,
            "couple": 2, "a couple": 2, "a couple of": 2, "couple of": 2, "few": 3, "a few": 3}
_UNITS = {"s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1, "m": 60, "min": 60, "mins": 60,
          "minute": 60, "minutes": 60, "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600}
_NUM = r"(?:\d+(?:\.\d+)?|a couple of|couple of|a couple|a few|few|forty-five|" + \
       "|".join(sorted((k for k in _NUMBERS if " " not in k and k != "forty-five"), key=len, reverse=True)) + r")"
_UNIT = r"(?:seconds?|secs?|minutes?|mins?|hours?|hrs?|h|m|s)"
_TIME = (r"(?:(?P<{p}h>\d{{1,2}})(?:[:.](?P<{p}m>\d{{2}}))?\s*(?P<{p}ap>a\.?m\.?|p\.?m\.?|o'?clock)?"
         r"|(?P<{p}word>noon|midday|midnight))")

_RELATIVE = re.compile(
    r"\b(?:in|during|over|for|within)?\s*(?:the\s+)?(?:last|past|previous)\s+"
    r"(?:(?P<half>half\s+(?:an\s+)?hour)|(?:(?P<n>" + _NUM + r")\s*)?(?P<unit>" + _UNIT + r"))\b", re.I)
_AGO = re.compile(r"\b(?:since|from|after)?\s*(?P<n>" + _NUM + r")\s*(?P<unit>" + _UNIT + r")\s+ago\b", re.I)
_BETWEEN = re.compile(r"\b(?:between|from)\s+" + _TIME.format(p="a") + r"\s*(?:and|to|until|till|-|–)\s*"
                      + _TIME.format(p="b") + r"(?![\w:])", re.I)
_SINCE = re.compile(r"\b(?:since|after|from)\s+" + _TIME.format(p="a") + r"(?![\w:])", re.I)
_PERIOD = re.compile(r"\b(?P<since>since\s+)?(?:(?P<this>this|today's)\s+(?P<part>morning|afternoon|evening)"
                     r"|(?P<today>today)|(?P<yesterday>yesterday))\b", re.I)
_PARTS = {"morning": (6, 12), "afternoon": (12, 18), "evening": (18, 24)}

# -- parsing ----------------------------------------------------------------------------------------
def _number(s: str | None) -> float:
    if not s:
        return 1.0
    s = s.lower().strip()
    return float(s) if re.match(r"^\d", s) else float(_NUMBERS.get(s, 1))


def _unit(s: str) -> int:
    return _UNITS.get(s.lower(), 60)


def _clock_candidates(m: re.Match, p: str, day: datetime, meridiem: str | None = None) -> list[datetime]:
    """Clock times on `day` that the words may mean ("3" = 03:00 or 15:00; "3pm" = 15:00)."""
    word = m.group(f"{p}word")
    if word:
        hour = 0 if word.lower() == "midnight" else 12
        return [day.replace(hour=hour, minute=0, second=0, microsecond=0)]
    h, mins = int(m.group(f"{p}h")), int(m.group(f"{p}m") or 0)
    ap = meridiem or (m.group(f"{p}ap") or "").lower().replace(".", "")
    if h > 23 or mins > 59:
        return []
    if ap in ("am", "pm"):
        if h > 12 or h == 0:
            return []
        h = h % 12 + (12 if ap == "pm" else 0)
        hours = [h]
    elif h > 12 or (m.group(f"{p}h").startswith("0") and len(m.group(f"{p}h")) == 2):
        hours = [h]              # 24-hour clock ("15:30", "09:00")
    else:
        hours = [h % 12, h % 12 + 12]
    base = day.replace(minute=mins, second=0, microsecond=0)
    return [base.replace(hour=x) for x in hours]


def _days(now: datetime, offsets) -> list[datetime]:
    return [now + timedelta(days=d) for d in offsets]


def _latest_start(m: re.Match, p: str, now: datetime, meridiem: str | None = None) -> datetime | None:
    cands = [t for day in _days(now, (0, -1)) for t in _clock_candidates(m, p, day, meridiem) if t <= now]
    return max(cands) if cands else None


def _has_meridiem(m: re.Match, p: str) -> str | None:
    ap = (m.group(f"{p}ap") or "").lower().replace(".", "")
    return ap if ap in ("am", "pm") else None


def parse_window(text: str, now: datetime) -> Window | None:
    """The explicit time window a question names, or None. `now` must be aware (local time zone)."""
    m = _BETWEEN.search(text)
    if m:
        start = None
        # "between 2 and 4pm": the end's am/pm applies to the start when it has none of its own.
        end_ap = _has_meridiem(m, "b")
        if end_ap and not _has_meridiem(m, "a") and not m.group("aword"):
            start = _latest_start(m, "a", now, meridiem=end_ap)
            if start is not None and _end_after(m, start) is None:
                start = None
        start = start or _latest_start(m, "a", now)
        end = _end_after(m, start) if start is not None else None
        if end is not None:
            return Window(start, min(end, now), "explicit", m.group(0).strip())
    m = _RELATIVE.search(text)
    if m:
        seconds = 1800.0 if m.group("half") else _number(m.group("n")) * _unit(m.group("unit"))
        return Window(now - timedelta(seconds=seconds), now, "explicit", m.group(0).strip())
    m = _AGO.search(text)
    if m:
        seconds = _number(m.group("n")) * _unit(m.group("unit"))
        return Window(now - timedelta(seconds=seconds), now, "explicit", m.group(0).strip())
    m = _SINCE.search(text)
    if m:
        start = _latest_start(m, "a", now)
        if start is not None:
            return Window(start, now, "explicit", m.group(0).strip())
    m = _PERIOD.search(text)
    if m:
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        shifted = False
        if m.group("yesterday"):
            start, end = midnight - timedelta(days=1), midnight
            if m.group("since"):
                end = now
        elif m.group("today"):
            start, end = midnight, now
        else:
            a, b = _PARTS[m.group("part").lower()]
            start, end = midnight + timedelta(hours=a), midnight + timedelta(hours=b)
            shifted = start >= now and not m.group("since")
            if shifted:
                # "this morning" asked at 1 a.m., before any morning today: the one just gone, yesterday's
                start, end = start - timedelta(days=1), end - timedelta(days=1)
            if m.group("since"):
                end = now
        if start < now:
            return Window(start, min(end, now), "explicit", m.group(0).strip(),
                          yesterday=shifted)
    return None


def _end_after(m: re.Match, start: datetime) -> datetime | None:
    """The first clock time the end words may mean that comes after `start` (within a day)."""
    cands = [t for day in _days(start, (0, 1)) for t in _clock_candidates(m, "b", day)
             if start < t <= start + timedelta(hours=24)]
    return min(cands) if cands else None


def explicit_spans(text: str) -> list[tuple[int, int]]:
    """Where `text` names a time ("in the last hour", "since 3pm", "this morning"), as (start, end) spans."""
    return [m.span() for rx in (_BETWEEN, _RELATIVE, _AGO, _SINCE, _PERIOD) for m in rx.finditer(text)
            if m.group(0).strip()]


def away_window(activity: Sequence[datetime], now: datetime, *, min_gap: timedelta = timedelta(minutes=10),
                fallback: timedelta = timedelta(hours=12)) -> Window:
    """From the user's last activity before the latest stretch of at least `min_gap` without any (their
    chat turns and the like), to `now`: what happened since they left, including the minutes since they
    came back. With no such stretch, the last `fallback` hours (kind "default")."""
    acts = sorted(t for t in activity if t < now)
    marks = acts + [now]
    for i in range(len(marks) - 1, 0, -1):
        if marks[i] - marks[i - 1] >= min_gap:
            return Window(marks[i - 1], now, "away", "since you left")
    hours = round(fallback.total_seconds() / 3600)
    return Window(now - fallback, now, "default", f"in the last {hours} hours")
