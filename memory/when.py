"""Days named in a question ("on 24 October 2023", "in July 2022", "the weekend before 4 Oct", "last
Tuesday", "three weeks ago") as a window of dates for recall.

A memory is dated when it was said, and people talk about an event on the day or in the days after it,
so the window `talk_window` returns runs from the start of the named days to a few days after them; a
phrase anchored on a date ("the week before 16 November 2023") also covers that anchor day, the day the
event was most likely told. Windows are whole days in the time zone of `now`; `DateWindow.iso()` gives
the UTC strings stored in the database.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from .clock import to_iso

MONTHS = {m: i + 1 for i, m in enumerate(
    "january february march april may june july august september october november december".split())}
MONTHS.update({m[:3]: i for m, i in list(MONTHS.items())})
MONTHS["sept"] = 9
WEEKDAYS = {d: i for i, d in enumerate("monday tuesday wednesday thursday friday saturday sunday".split())}
NUMBERS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
           "eight": 8, "nine": 9, "ten": 10, "a couple of": 2, "a few": 3, "few": 3}

_MONTH = r"(?P<{p}mon>" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")\.?"
_DAY = r"(?P<{p}day>\d{{1,2}})(?:st|nd|rd|th)?"
_YEAR = r"(?P<{p}year>(?:19|20)\d\d)"
# "24 October 2023", "24th October, 2023", "14September, 2022", "October 24, 2023", "2023-10-24", "24 Oct"
_DATE = (r"(?:" + _DAY + r"\s*(?:of\s+)?" + _MONTH + r"(?:,?\s*" + _YEAR + r")?"
         r"|" + _MONTH.replace("{p}mon", "{p}mon2") + r"\s+" + _DAY.replace("{p}day", "{p}day2")
         + r"(?:,?\s*" + _YEAR.replace("{p}year", "{p}year2") + r")?"
         r"|(?P<{p}iy>(?:19|20)\d\d)-(?P<{p}im>\d\d)-(?P<{p}id>\d\d))")
_MONTH_YEAR = r"(?:(?P<part>beginning|start|early|mid(?:dle)?|end|late)\s+(?:of\s+)?)?" + \
              _MONTH.format(p="m") + r"(?:,?\s*" + _YEAR.format(p="m") + r")?"
_SPAN = r"(?P<span>day|week|weekend|month|(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday))"

ANCHORED = re.compile(r"\b(?:the\s+)?" + _SPAN + r"\s+(?P<dir>before|after|prior to|following)\s+"
                      + _DATE.format(p="a"), re.I)
DAY = re.compile(r"\b" + _DATE.format(p="d") + r"\b", re.I)
MONTH = re.compile(r"\b" + _MONTH_YEAR + r"\b", re.I)
YEAR = re.compile(r"\b(?:in|during|of|since|by)\s+" + _YEAR.format(p="y") + r"\b", re.I)
AGO = re.compile(r"\b(?P<n>\d+|" + "|".join(sorted(NUMBERS, key=len, reverse=True)) +
                 r")\s+(?P<unit>days?|weeks?|months?)\s+ago\b", re.I)
LAST = re.compile(r"\b(?P<rel>last|this|past)\s+(?P<unit>week(?:end)?|month|year|monday|tuesday|wednesday|"
                  r"thursday|friday|saturday|sunday)\b", re.I)
ON_WEEKDAY = re.compile(r"\bon\s+(?P<wd>monday|tuesday|wednesday|thursday|friday|saturday|sunday)\b", re.I)
SIMPLE = re.compile(r"\b(?P<w>today|yesterday|the day before yesterday)\b", re.I)


@dataclass
class DateWindow:
    """Whole days [start, end) named by `phrase`, local to the time zone of the `now` it was read with."""

    start: datetime
    end: datetime
    phrase: str

    def iso(self) -> tuple[str, str]:
        return to_iso(self.start), to_iso(self.end)

    def days(self) -> int:
        return (self.end - self.start).days

    def ranking_note(self) -> str:
        """The line shown with a search whose query names days: what those words were read as."""
        return f"\"{self.phrase}\": memories dated {self.label()} rank higher."

    def label(self) -> str:
        """'8–19 Nov 2023' (the last day shown is the last day inside)."""
        a, b = self.start.date(), (self.end - timedelta(days=1)).date()
        if a.year != b.year:
            return f"{a.day} {a.strftime('%b %Y')}–{b.day} {b.strftime('%b %Y')}"
        if a.month != b.month:
            return f"{a.day} {a.strftime('%b')}–{b.day} {b.strftime('%b %Y')}"
        return f"{a.day}–{b.day} {b.strftime('%b %Y')}" if a != b else f"{a.day} {a.strftime('%b %Y')}"


def _midnight(d: date, now: datetime) -> datetime:
    return datetime.combine(d, time(0), tzinfo=now.tzinfo)


def _past(month: int, day: int, today: date) -> date | None:
    """The latest date with this month and day that is not after today (a year-less date means that)."""
    for year in (today.year, today.year - 1):
        try:
            d = date(year, month, day)
        except ValueError:
            return None
        if d <= today:
            return d
    return None


def _date(m: re.Match, p: str, today: date) -> date | None:
    g = {k[len(p):]: v for k, v in m.groupdict().items() if k.startswith(p) and v}
    try:
        if "iy" in g:
            return date(int(g["iy"]), int(g["im"]), int(g["id"]))
        mon = MONTHS[(g.get("mon") or g.get("mon2")).lower().rstrip(".")]
        day = int(g.get("day") or g.get("day2"))
        year = g.get("year") or g.get("year2")
        return date(int(year), mon, day) if year else _past(mon, day, today)
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def _weekday_before(d: date, wd: int) -> date:
    """The latest such weekday strictly before d."""
    return d - timedelta(days=(d.weekday() - wd - 1) % 7 + 1)


def _span(span: str, direction: str, anchor: date) -> tuple[date, date]:
    """Days [a, b] of "the <span> before/after <anchor>"."""
    before = direction.lower() in ("before", "prior to")
    s = span.lower()
    if s == "day":
        d = anchor - timedelta(days=1) if before else anchor + timedelta(days=1)
        return d, d
    if s == "week":
        return (anchor - timedelta(days=7), anchor - timedelta(days=1)) if before else \
               (anchor + timedelta(days=1), anchor + timedelta(days=7))
    if s == "month":
        return (anchor - timedelta(days=31), anchor - timedelta(days=1)) if before else \
               (anchor + timedelta(days=1), anchor + timedelta(days=31))
    if s == "weekend":
        sat = _weekday_before(anchor, 5) if before else anchor + timedelta(days=(5 - anchor.weekday()) % 7 or 7)
        return sat, sat + timedelta(days=1)
    wd = WEEKDAYS[s]
    d = _weekday_before(anchor, wd) if before else anchor + timedelta(days=(wd - anchor.weekday()) % 7 or 7)
    return d, d


def _month_days(m: re.Match, today: date) -> tuple[date, date] | None:
    mon = MONTHS[m.group("mmon").lower().rstrip(".")]
    year = int(m.group("myear")) if m.group("myear") else (today.year if mon <= today.month else today.year - 1)
    first = date(year, mon, 1)
    last = (date(year + (mon == 12), mon % 12 + 1, 1) - timedelta(days=1))
    part = (m.group("part") or "").lower()
    if part in ("beginning", "start", "early"):
        return first, first + timedelta(days=10)
    if part in ("mid", "middle"):
        return first + timedelta(days=9), first + timedelta(days=20)
    if part in ("end", "late"):
        return last - timedelta(days=10), last
    return first, last


def named_days(text: str, now: datetime) -> tuple[date, date, date | None, str] | None:
    """The first span of days the text names: (first day, last day, anchor day or None, phrase)."""
    today = now.date()
    m = ANCHORED.search(text)
    if m and (anchor := _date(m, "a", today)):
        a, b = _span(m.group("span"), m.group("dir"), anchor)
        return a, b, anchor, m.group(0)
    m = DAY.search(text)
    if m and (d := _date(m, "d", today)):
        return d, d, None, m.group(0)
    m = MONTH.search(text)
    if m and (m.group("myear") or m.group("part") or re.search(r"\b(?:in|during)\s+" + re.escape(m.group(0)),
                                                               text, re.I)):
        # a bare month word ("may") is too often not a date; "in May" or "May 2023" is
        a, b = _month_days(m, today)
        return a, b, None, m.group(0)
    m = YEAR.search(text)
    if m:
        y = int(m.group("yyear"))
        return date(y, 1, 1), date(y, 12, 31), None, m.group(0)
    m = SIMPLE.search(text)
    if m:
        back = {"today": 0, "yesterday": 1, "the day before yesterday": 2}[m.group("w").lower()]
        d = today - timedelta(days=back)
        return d, d, None, m.group(0)
    m = AGO.search(text)
    if m:
        n = m.group("n").lower()
        n = int(n) if n.isdigit() else NUMBERS[n]
        unit = m.group("unit").lower().rstrip("s")
        days = {"day": 1, "week": 7, "month": 30}[unit] * n
        slack = {"day": 1, "week": 3, "month": 10}[unit]
        d = today - timedelta(days=days)
        return d - timedelta(days=slack), min(today, d + timedelta(days=slack)), None, m.group(0)
    m = LAST.search(text)
    if m:
        rel, unit = m.group("rel").lower(), m.group("unit").lower()
        if unit in WEEKDAYS:
            d = _weekday_before(today, WEEKDAYS[unit]) if rel != "this" else \
                today - timedelta(days=(today.weekday() - WEEKDAYS[unit]) % 7)
            return d, d, None, m.group(0)
        monday = today - timedelta(days=today.weekday())
        if unit == "week":
            a = monday if rel == "this" else monday - timedelta(days=7)
            return a, min(today, a + timedelta(days=6)), None, m.group(0)
        if unit == "weekend":
            sat = _weekday_before(today + timedelta(days=1), 5)
            if rel == "last" and today.weekday() >= 5:
                sat -= timedelta(days=7)
            return sat, sat + timedelta(days=1), None, m.group(0)
        if unit == "month":
            first = today.replace(day=1)
            if rel == "this":
                return first, today, None, m.group(0)
            prev = (first - timedelta(days=1)).replace(day=1)
            return prev, first - timedelta(days=1), None, m.group(0)
        y = today.year - (rel != "this")
        return date(y, 1, 1), min(today, date(y, 12, 31)), None, m.group(0)
    m = ON_WEEKDAY.search(text)
    if m:
        d = today - timedelta(days=(today.weekday() - WEEKDAYS[m.group("wd").lower()]) % 7)
        return d, d, None, m.group(0)
    return None


def talk_window(text: str, now: datetime, after_days: int = 3) -> DateWindow | None:
    """Where memories about the days a question names are dated: from the first named day to
    `after_days` days after the last (or after the anchor day of "the week before <day>"), or None when
    the question names no time."""
    found = named_days(text, now)
    if found is None:
        return None
    a, b, anchor, phrase = found
    if anchor is not None:
        a, b = min(a, anchor), max(b, anchor)
    after = after_days if (b - a).days < 28 else 7
    end = min(_midnight(b, now) + timedelta(days=1 + after), _midnight(now.date(), now) + timedelta(days=1))
    start = _midnight(a, now) - timedelta(days=1)
    if start >= end:   # days still to come ("in January 2031"): nothing can have been said in them yet
        return None
    return DateWindow(start, end, phrase.strip())
