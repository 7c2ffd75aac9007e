""""What did I miss?": what was heard in a time window, as a list of timed lines built from the
transcripts, with the speakers who named themselves and the clips each line came from.

The lines are built here, not by the model: each is the time the words were heard (HH:MM, local), the
speaker where they said their name, and what was said. The model only shortens a long stretch of talk
to one sentence, and its sentence is used only when it keeps the names and numbers of what was said and
reads as a sentence about it; otherwise the words themselves are shown. So every line has its time and
no instruction given to the model can reach the answer.

Entry points:
- `answer_missed(store, llm, text, ...)` -> MissedAnswer: window, clips cited and the answer text.
- `prepare(assistant, session_id, text)` -> PreparedTurn | None, for Assistant.prepare: None when
  `text` is not such a question; else the user's turn is stored and Assistant.generate streams the lines.
- `route(assistant, session_id, text, ...)` -> RoutedAnswer | None: prepare and generate in one call.
"""
from __future__ import annotations

import re
import threading
import time
import weakref
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Callable, Iterator

from audio.questions import classify, detect_window, extract_topic
from audio.recall import AudioMoment, AudioRecall, stretches
from audio.windows import Window
from memory.clock import parse, to_iso
from memory.protocols import Embedder, LanguageModel, approx_tokens
from memory.recall import Memory
from memory.store import Store

from .text import plural

# A stretch of talk longer than this (in words) is shortened by the model; shorter ones are quoted whole.
SHORTEN_OVER_WORDS = 30
SHORT_WORDS = 25
MAX_LINES = 12
MAX_SHORTENED = 8            # model calls for one answer at most; later stretches are quoted
QUOTE_WORDS = 60             # a quoted stretch is cut after this many words
SHORTEN = (f"Shorten the speech below to one plain sentence of at most {SHORT_WORDS} words. Keep every "
           "name, day, time, number and place in it. Write only that sentence.")
# Words that show a shortened sentence speaks of the task rather than of what was said.
_META = re.compile(r"\b(?:sentence|transcript|speech below|shorten\w*|summar\w+|the user|words?\b.*\bat most|"
                   r"here is|here's|instruction|assistant)\b", re.I)


@dataclass
class CitedClip:
    """A clip the answer drew on; enough for a UI to list it and play it."""

    clip_id: int
    turn_id: int | None
    started_at: str       # UTC ISO
    ended_at: str
    time: str             # HH:MM, local
    path: str
    text: str
    score: float = 1.0

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class MissedAnswer:
    window: Window
    topic: str | None
    text: str
    clips: list[CitedClip] = field(default_factory=list)
    moments: list[AudioMoment] = field(default_factory=list)   # one per line, in time order
    heard_in_window: int = 0                                   # audio turns in the window (before selection)
    tz: tzinfo | None = None
    retrieval_seconds: float = 0.0                             # window + retrieval, before the model
    llm_seconds: float = 0.0
    shortened: int = 0                                         # lines the model shortened
    never_heard: bool = False                                  # no clip at all: listening was never on

    def to_dict(self) -> dict:
        return {"window": self.window.to_dict(), "topic": self.topic, "text": self.text,
                "clips": [c.to_dict() for c in self.clips],
                "heard_in_window": self.heard_in_window, "shortened": self.shortened,
                "retrieval_seconds": round(self.retrieval_seconds, 4),
                "llm_seconds": round(self.llm_seconds, 4)}

    def memories(self) -> list[Memory]:
        """The cited clips as recall memories (kind 'audio', id = clip id) for a UI's memory panel."""
        return [Memory(kind="audio", id=c.clip_id, text=c.text, score=c.score, started_at=c.started_at,
                       ended_at=c.ended_at, session_id=0, turn_ids=[c.turn_id] if c.turn_id else [],
                       topic=c.time, source="audio") for c in self.clips]

    # -- the answer, line by line ---------------------------------------------------------------------
    def lines(self, llm: LanguageModel | Callable[[], LanguageModel] | None = None,
              cancel: threading.Event | None = None) -> Iterator[str]:
        """The answer's lines (each ending in a newline): an opening line, then one per stretch of talk.
        `llm` (a model, or a function that returns one when first needed) shortens long stretches;
        without it they are quoted. Also sets `text`."""
        if not self.moments:
            self.text = _nothing_heard(self.window, self.topic, self.heard_in_window, self.tz)
            if self.never_heard:
                self.text += (" Nothing has been heard at all yet: listening is off until you turn it on "
                              "(ctrl+l in the chat, or `assistant listen`).")
            yield self.text
            return
        out = [self.opening()]
        yield out[0] + "\n"
        model, calls = None, 0
        for m in self.moments:
            if cancel is not None and cancel.is_set():
                break
            said = None
            if llm is not None and len(m.text.split()) > SHORTEN_OVER_WORDS and calls < MAX_SHORTENED:
                calls += 1
                try:
                    model = model or (llm() if callable(llm) and not hasattr(llm, "complete") else llm)
                except Exception:   # the model did not load: the words are shown as heard
                    llm = None
                else:
                    t0 = time.perf_counter()
                    said = shorten(model, m.text)
                    self.llm_seconds += time.perf_counter() - t0
                    self.shortened += said is not None
            line = "- " + self.line_head(m) + (said or quote(m.text))
            out.append(line)
            yield line + "\n"
        self.text = "\n".join(out)

    def opening(self) -> str:
        when = _when(self.window, self.tz)
        when = when[0].upper() + when[1:]
        if self.topic:
            return f"{when}, I heard {plural(len(self.moments), 'thing')} about {self.topic}:"
        if self.heard_in_window > sum(len(m.turn_ids) for m in self.moments):
            return f"{when}, I heard {plural(self.heard_in_window, 'clip')} of talk; the main things:"
        return f"{when}, I heard {plural(len(self.moments), 'thing')}:"

    def line_head(self, m: AudioMoment) -> str:
        return hhmm(m.started_at, self.tz) + (f" {m.speaker}" if m.speaker else "") + ": "


def _when(window: Window, tz) -> str:
    """How the answer names its window: "since you left at 13:30", "between 13:00 and 14:00"."""
    start = window.start.astimezone(tz)
    day = "" if start.date() == window.end.astimezone(tz).date() else start.strftime(" on %d %b")
    if window.kind == "away":
        return f"since you left at {start:%H:%M}{day}"
    a, b = window.label(tz).split("–")
    if window.kind == "default":
        return f"{window.phrase} ({a} to {b})"
    return f"between {a} and {b}"


def local_now() -> datetime:
    return datetime.now().astimezone()


def hhmm(ts: str, tz: tzinfo | None = None) -> str:
    return parse(ts).astimezone(tz).strftime("%H:%M")


# -- what was said, shortened or quoted ----------------------------------------------------------------
_NUMBER_WORDS = {w: str(i) for i, w in enumerate("zero one two three four five six seven eight nine ten eleven "
                                                 "twelve".split())}


def _keys(text: str) -> set[str]:
    """The words a shortened sentence must keep: numbers and names (capitalized words inside a sentence)."""
    keys = {_NUMBER_WORDS.get(w.lower(), w) for w in re.findall(r"\d+|\b(?:" + "|".join(_NUMBER_WORDS) + r")\b",
                                                                    text, re.I)}
    for sentence in re.split(r"(?<=[.!?])\s+", text):
        words = re.findall(r"[A-Za-z][\w'-]*", sentence)
        keys |= {w.removesuffix("'s") for w in words[1:] if w[0].isupper() and w != "I" and not w.startswith("I'")}
    return keys


def _has_keys(sentence: str, keys: set[str]) -> bool:
    words = {_NUMBER_WORDS.get(w.lower(), w.lower()) for w in re.findall(r"[\w']+", sentence)}
    words |= {w.removesuffix("'s") for w in words}
    return all(k.lower() in words for k in keys)


# Shortened sentences per model: asking again about the same stretch costs no model call.
_SHORTENED: "weakref.WeakKeyDictionary[object, dict[str, str | None]]" = weakref.WeakKeyDictionary()


def shorten(llm: LanguageModel, text: str, max_tokens: int = 64) -> str | None:
    """`text` as one sentence by the model, or None when its sentence drops or adds a name or number,
    reads as talk about the task, or is not shorter."""
    try:
        known = _SHORTENED.setdefault(llm, {})
    except TypeError:     # a model that cannot be weakly referenced is not cached
        known = {}
    if text not in known:
        if len(known) > 500:
            known.clear()
        known[text] = _shorten(llm, text, max_tokens)
    return known[text]


def _shorten(llm: LanguageModel, text: str, max_tokens: int) -> str | None:
    messages = [{"role": "system", "content": SHORTEN}, {"role": "user", "content": text}]
    try:
        out = llm.complete(messages, max_tokens=max_tokens)
    except Exception:   # a model error costs the shortening, never the answer
        return None
    out = " ".join((out or "").split()).strip().strip('"“”')
    out = re.sub(r"^(?:-\s*|\*\s*|\d+[.)]\s*)", "", out)
    n = len(out.split())
    if not out or n > SHORT_WORDS + 10 or n >= len(text.split()) or _META.search(out) or "\n" in out:
        return None
    if not _has_keys(out, _keys(text)) or not _has_keys(text, _keys(out)):   # dropped or invented
        return None
    return out if out[-1] in ".!?" else out + "."


def quote(text: str, limit: int = QUOTE_WORDS) -> str:
    """What was said, as heard: whole, or its first sentences up to `limit` words and an ellipsis."""
    words = " ".join(text.split()).split(" ")
    if len(words) <= limit:
        return " ".join(words)
    cut = " ".join(words[:limit])
    end = max(cut.rfind(". "), cut.rfind("? "), cut.rfind("! "))
    return (cut[:end + 1] if end > len(cut) // 2 else cut) + " …"


# -- the user's activity ------------------------------------------------------------------------------
def activity(store: Store, until: datetime, *, exclude_turn_ids=(), lookback: timedelta = timedelta(days=2),
             ) -> list[datetime]:
    """When the user was at the computer before `until`: their chat turns and the answers to them, and
    the moments they started listening live (recordings ingested from files do not count)."""
    span = [to_iso(until - lookback), to_iso(until)]
    rows = store.db.execute(
        "SELECT id, created_at FROM turns WHERE source = 'chat' AND role IN ('user', 'assistant') "
        "AND created_at >= ? AND created_at < ?", span).fetchall()
    skip = set(exclude_turn_ids)
    times = [parse(ts) for id_, ts in rows if id_ not in skip]
    live = store.db.execute("SELECT started_at FROM sessions WHERE source = 'audio' AND external_id IS NULL "
                            "AND started_at >= ? AND started_at < ?", span).fetchall()
    return sorted(times + [parse(ts) for (ts,) in live])


def resolve(store: Store, text: str, now: datetime | None = None, *, exclude_turn_ids=(),
            min_gap: timedelta = timedelta(minutes=10)) -> Window | None:
    """The window of a "what did I miss" question, or None when `text` is not one. A question that may
    be about something the user told ("what happened at lunch?") is one only when something was heard
    in its window. `now` is aware; its time zone is the one clock times in the question are read in."""
    kind = classify(text)
    if kind is None:
        return None
    now = now or local_now()
    window = detect_window(text, now, activity(store, now, exclude_turn_ids=exclude_turn_ids), min_gap=min_gap)
    if kind == "maybe" and (window is None or AudioRecall(store).count(window) == 0):
        return None
    return window


def _nothing_heard(window: Window, topic: str | None, heard: int, tz) -> str:
    when = f"between {window.label(tz).replace('–', ' and ')}"
    if topic and heard:
        others = plural(heard, "other clip") + (" was" if heard == 1 else " were")
        return f"Nothing about {topic} was heard {when} ({others})."
    return f"Nothing was heard {when}."


def gather(store: Store, text: str, *, window: Window | None = None, now: datetime | None = None,
           embedder: Embedder | None = None, exclude_turn_ids=(), budget_tokens: int = 1200,
           count_tokens=approx_tokens, tz: tzinfo | None = None, index_pending=None) -> MissedAnswer:
    """Everything but the answer's text: window, topic, the stretches of talk and their clips."""
    t0 = time.perf_counter()
    now = now or local_now()
    window = window or resolve(store, text, now, exclude_turn_ids=exclude_turn_ids)
    if window is None:  # asked directly (CLI) in words not recognised: the time since the user left
        window = detect_window("what did I miss", now, activity(store, now, exclude_turn_ids=exclude_turn_ids))
    topic = extract_topic(text)
    recall = AudioRecall(store, embedder, count_tokens=count_tokens, index_pending=index_pending)
    heard = recall.count(window)
    moments = stretches(recall.moments(window, topic, budget_tokens=budget_tokens)) if heard else []
    if len(moments) > MAX_LINES:   # evenly over the window
        moments = [moments[round(i * (len(moments) - 1) / (MAX_LINES - 1))] for i in range(MAX_LINES)]
    clips = [CitedClip(c.id, c.turn_id, c.started_at, c.ended_at, hhmm(c.started_at, tz), c.path, c.text, m.score)
             for m in moments for c in m.clips]
    result = MissedAnswer(window, topic, "", clips, moments, heard, tz)
    result.never_heard = not heard and store.db.execute("SELECT 1 FROM audio_clips LIMIT 1").fetchone() is None
    result.retrieval_seconds = time.perf_counter() - t0
    return result


def answer_missed(store: Store, llm: LanguageModel | None, text: str, *, now: datetime | None = None,
                  window: Window | None = None, embedder: Embedder | None = None, exclude_turn_ids=(),
                  budget_tokens: int = 1200, tz: tzinfo | None = None) -> MissedAnswer:
    """Answer "what did I miss ..." in one call. With llm=None long stretches are quoted, not shortened."""
    count = getattr(llm, "count_tokens", None) or approx_tokens
    result = gather(store, text, window=window, now=now, embedder=embedder, exclude_turn_ids=exclude_turn_ids,
                    budget_tokens=budget_tokens, count_tokens=count, tz=tz)
    for _ in result.lines(llm):
        pass
    return result


# -- inside the Assistant -------------------------------------------------------------------------------
@dataclass
class RoutedAnswer:
    answer: object            # assistant.core.Answer
    missed: MissedAnswer


def prepare(assistant, session_id: int | None, text: str, *, now: datetime | None = None,
            tz: tzinfo | None = None):
    """The "what did I miss" counterpart of Assistant.prepare: None when `text` is not such a question
    (nothing is stored); else the user's turn is stored and a PreparedTurn is returned whose `produce`
    writes the answer's lines for Assistant.generate.

    The PreparedTurn's `memories` are the cited clips (kind 'audio', id = clip id, topic = HH:MM), its
    first notice names the window, and its attribute `missed` holds the whole MissedAnswer."""
    from .core import PreparedTurn, _title_from
    from .errors import AssistantError

    store = assistant.store
    now = now or local_now()
    window = resolve(store, text, now)
    if window is None:
        return None
    scratch = getattr(assistant, "scratch", None)     # an incognito chat: the turns stay in this process
    if scratch is not None:
        if session_id is None or not scratch.has(session_id):
            session_id = scratch.new_session()
        user_turn_id = scratch.add_turn(session_id, "user", text)
    else:
        if session_id is None:
            session_id = store.new_session(title=_title_from(text))
        elif store.session(session_id) is None:
            raise AssistantError(f"There is no session {session_id}; list sessions with `assistant sessions`.")
        user_turn_id = store.add_turn(session_id, "user", text)
    recall = getattr(assistant, "recall", None)
    index = getattr(recall, "turn_index", None) or getattr(recall, "index", None)
    result = gather(store, text, window=window, now=now, embedder=getattr(recall, "embedder", None),
                    exclude_turn_ids={user_turn_id},
                    budget_tokens=max(600, assistant.config.recall_budget_tokens * 2),
                    count_tokens=assistant.count_tokens, tz=tz,
                    index_pending=getattr(index, "index_pending", None))
    notice = (f"Audio heard {window.label(tz)}: {plural(result.heard_in_window, 'clip')}"
              + (f", {len(result.clips)} used" if result.clips else "")
              + (f"; topic: {result.topic}" if result.topic else "") + ".")
    prep = PreparedTurn(session_id, user_turn_id, [], result.memories(), [notice], result.retrieval_seconds,
                        produce=result.lines, stored=scratch is None)
    prep.missed = result
    return prep


def route(assistant, session_id: int | None, text: str, *, now: datetime | None = None,
          on_token: Callable[[str], None] | None = None, cancel: threading.Event | None = None,
          tz: tzinfo | None = None) -> RoutedAnswer | None:
    """The "what did I miss" counterpart of Assistant.answer: None when `text` is not such a question;
    else the answer (both turns stored like any chat turn pair)."""
    prep = prepare(assistant, session_id, text, now=now, tz=tz)
    if prep is None:
        return None
    answer = assistant.generate(prep, on_token=on_token, cancel=cancel)
    return RoutedAnswer(answer, prep.missed)
