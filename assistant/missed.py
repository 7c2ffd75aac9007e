""""What did I miss?": answers a question about what was heard in a time window, from the audio
transcripts of that window, with times (HH:MM) and the clips it drew on.

Two entry points:
- `answer_missed(store, llm, text, ...)` -> MissedAnswer: window, clips cited, the user's own chat in
  that window, and the answer text (structured, for a UI that lists clips and plays one).
- `route(assistant, session_id, text, ...)` -> RoutedAnswer | None: for Assistant.answer; when `text`
  is such a question it stores the turn pair like any chat turn and returns the answer, else None.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Callable

from audio.recall import AudioMoment, AudioRecall
from audio.windows import Window, detect_window, extract_topic
from memory.clock import parse, to_iso
from memory.protocols import Embedder, LanguageModel, approx_tokens
from memory.recall import Memory
from memory.store import Store, Turn

SYSTEM = (
    "You tell the user what was said near them while they were not listening. You are given transcripts "
    "of what their computer's microphone heard, each line starting with the time it was heard (HH:MM). "
    "Answer with a short summary of the main points as bullet points, each starting with its time in "
    "the form HH:MM. Use only the transcripts; never invent names, numbers or events. The transcripts come "
    "from speech recognition and may contain mistakes."
)
BUSY = (
    "While this was said, the user was busy in a chat with you (their messages are listed under 'What "
    "the user was doing'). Begin with one sentence that contrasts what they were doing with what they "
    "missed, then list what they missed."
)
TOPIC = ("The user asks about: {topic}. Report only what relates to it; if none of the transcripts "
         "mention it, say so in one sentence.")


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
    moments: list[AudioMoment] = field(default_factory=list)
    busy: list[Turn] = field(default_factory=list)   # the user's own chat turns inside the window
    heard_in_window: int = 0                         # audio turns in the window (before selection)
    messages: list[dict] = field(default_factory=list)
    retrieval_seconds: float = 0.0                   # window + retrieval, before the model
    llm_seconds: float = 0.0

    def to_dict(self) -> dict:
        return {"window": self.window.to_dict(), "topic": self.topic, "text": self.text,
                "clips": [c.to_dict() for c in self.clips],
                "busy": [{"turn_id": t.id, "created_at": t.created_at, "text": t.text} for t in self.busy],
                "heard_in_window": self.heard_in_window,
                "retrieval_seconds": round(self.retrieval_seconds, 4),
                "llm_seconds": round(self.llm_seconds, 4)}

    def memories(self) -> list[Memory]:
        """The cited clips as recall memories (kind 'audio', id = clip id) for a UI's memory panel."""
        return [Memory(kind="audio", id=c.clip_id, text=c.text, score=c.score, started_at=c.started_at,
                       ended_at=c.ended_at, session_id=0, turn_ids=[c.turn_id] if c.turn_id else [],
                       topic=c.time, source="audio") for c in self.clips]


def local_now() -> datetime:
    return datetime.now().astimezone()


def hhmm(ts: str, tz: tzinfo | None = None) -> str:
    return parse(ts).astimezone(tz).strftime("%H:%M")


# -- the user's activity ------------------------------------------------------------------------------
def chat_activity(store: Store, until: datetime, *, exclude_turn_ids=(), lookback: timedelta = timedelta(days=2),
                  ) -> list[datetime]:
    """Times of the user's chat turns (source 'chat', user and assistant) before `until`: when they
    were in the app."""
    rows = store.db.execute(
        "SELECT id, created_at FROM turns WHERE source = 'chat' AND role IN ('user', 'assistant') "
        "AND created_at >= ? AND created_at < ? ORDER BY created_at",
        [to_iso(until - lookback), to_iso(until)]).fetchall()
    skip = set(exclude_turn_ids)
    return [parse(ts) for id_, ts in rows if id_ not in skip]


def busy_turns(store: Store, window: Window, exclude_turn_ids=()) -> list[Turn]:
    since, until = window.iso()
    turns = store._turns("source = 'chat' AND role = 'user' AND created_at >= ? AND created_at < ? "
                         "ORDER BY created_at, id", [since, until])
    skip = set(exclude_turn_ids)
    return [t for t in turns if t.id not in skip]


def resolve(store: Store, text: str, now: datetime | None = None, *, exclude_turn_ids=(),
            min_gap: timedelta = timedelta(minutes=10)) -> Window | None:
    """The window of a "what did I miss" question (None when `text` is not one). `now` is aware;
    its time zone is the one clock times in the question are read in (default: the system's)."""
    now = now or local_now()
    return detect_window(text, now, chat_activity(store, now, exclude_turn_ids=exclude_turn_ids),
                         min_gap=min_gap)


# -- the answer -------------------------------------------------------------------------------------
def build_messages(text: str, window: Window, moments: list[AudioMoment], busy: list[Turn],
                   topic: str | None, tz: tzinfo | None = None, heard: int | None = None) -> list[dict]:
    system = SYSTEM
    if topic:
        system += " " + TOPIC.format(topic=topic)
    if busy:
        system += " " + BUSY
    start = window.start.astimezone(tz)
    lines = [f"Time window: {window.label(tz)} on {start.strftime('%A %d %B %Y')}."]
    if heard is not None and heard > len(moments):
        lines.append(f"(A selection of {len(moments)} of the {heard} things heard in that window.)")
    lines.append("\nTranscripts:")
    lines += [f"[{hhmm(m.started_at, tz)}] {m.text}" for m in moments]
    if busy:
        lines.append("\nWhat the user was doing (their chat messages):")
        lines += [f"[{hhmm(t.created_at, tz)}] {t.text}" for t in busy[-12:]]
    lines.append(f"\nQuestion: {text}")
    return [{"role": "system", "content": system}, {"role": "user", "content": "\n".join(lines)}]


def _nothing_heard(window: Window, topic: str | None, heard: int, tz) -> str:
    when = f"between {window.label(tz).replace('–', ' and ')}"
    if topic and heard:
        return f"Nothing about {topic} was heard {when} ({heard} other things were)."
    return f"Nothing was heard {when}."


def gather(store: Store, text: str, *, window: Window | None = None, now: datetime | None = None,
           embedder: Embedder | None = None, exclude_turn_ids=(), budget_tokens: int = 1200,
           count_tokens=approx_tokens, tz: tzinfo | None = None, index_pending=None) -> MissedAnswer:
    """Everything but the model's answer: window, topic, moments and clips, the user's own chat."""
    t0 = time.perf_counter()
    now = now or local_now()
    window = window or resolve(store, text, now, exclude_turn_ids=exclude_turn_ids)
    if window is None:  # asked directly (CLI): not phrased as a question about audio
        window = detect_window("what did I miss", now, chat_activity(store, now, exclude_turn_ids=exclude_turn_ids))
    topic = extract_topic(text, window)
    recall = AudioRecall(store, embedder, count_tokens=count_tokens, index_pending=index_pending)
    heard = recall.count(window)
    moments = recall.moments(window, topic, budget_tokens=budget_tokens) if heard else []
    busy = busy_turns(store, window, exclude_turn_ids)
    clips = [CitedClip(c.id, c.turn_id, c.started_at, c.ended_at, hhmm(c.started_at, tz), c.path, c.text, m.score)
             for m in moments for c in m.clips]
    result = MissedAnswer(window, topic, "", clips, moments, busy, heard)
    result.retrieval_seconds = time.perf_counter() - t0
    if moments:
        result.messages = build_messages(text, window, moments, busy, topic, tz, heard)
    else:
        result.text = _nothing_heard(window, topic, heard, tz)
    return result


def answer_missed(store: Store, llm: LanguageModel | None, text: str, *, now: datetime | None = None,
                  window: Window | None = None, embedder: Embedder | None = None, exclude_turn_ids=(),
                  budget_tokens: int = 1200, max_tokens: int = 400, tz: tzinfo | None = None,
                  ) -> MissedAnswer:
    """Answer "what did I miss ..." in one call. With llm=None the answer text stays empty (retrieval
    only) unless nothing was heard."""
    count = getattr(llm, "count_tokens", None) or approx_tokens
    result = gather(store, text, window=window, now=now, embedder=embedder, exclude_turn_ids=exclude_turn_ids,
                    budget_tokens=budget_tokens, count_tokens=count, tz=tz)
    if result.messages and llm is not None:
        t0 = time.perf_counter()
        result.text = llm.complete(result.messages, max_tokens=max_tokens).strip()
        result.llm_seconds = time.perf_counter() - t0
    return result


# -- routing inside the Assistant ---------------------------------------------------------------------
@dataclass
class RoutedAnswer:
    answer: object            # assistant.core.Answer
    missed: MissedAnswer


def prepare(assistant, session_id: int | None, text: str, *, now: datetime | None = None,
            tz: tzinfo | None = None):
    """The "what did I miss" counterpart of Assistant.prepare: None when `text` is not such a question
    (nothing is stored); else the user's turn is stored and a PreparedTurn is returned whose prompt
    holds the window's transcripts, ready for Assistant.generate.

    The PreparedTurn's `memories` are the cited clips (kind 'audio', id = clip id, topic = HH:MM), its
    first notice names the window, and its attribute `missed` holds the whole MissedAnswer."""
    from .core import PreparedTurn, _title_from
    from .errors import AssistantError

    store = assistant.store
    now = now or local_now()
    window = resolve(store, text, now)
    if window is None:
        return None
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
    messages = result.messages or [
        {"role": "system", "content": "Tell the user, in one sentence, exactly this: " + result.text},
        {"role": "user", "content": text}]
    notice = (f"Audio heard {window.label(tz)}: {result.heard_in_window} clip(s)"
              + (f", {len(result.clips)} used" if result.clips else "")
              + (f"; topic: {result.topic}" if result.topic else "") + ".")
    prep = PreparedTurn(session_id, user_turn_id, messages, result.memories(), [notice], result.retrieval_seconds)
    prep.missed = result
    return prep


def route(assistant, session_id: int | None, text: str, *, now: datetime | None = None,
          on_token: Callable[[str], None] | None = None, cancel: threading.Event | None = None,
          tz: tzinfo | None = None) -> RoutedAnswer | None:
    """The "what did I miss" counterpart of Assistant.answer: None when `text` is not such a question;
    else the answer (both turns stored like any chat turn pair). When nothing was heard in the window
    the reply is a fixed sentence and the model is not called."""
    from .core import Answer

    prep = prepare(assistant, session_id, text, now=now, tz=tz)
    if prep is None:
        return None
    result: MissedAnswer = prep.missed
    if not result.messages:
        turn_id = assistant.store.add_turn(prep.session_id, "assistant", result.text)
        if on_token:
            on_token(result.text)
        return RoutedAnswer(Answer(prep.session_id, prep.user_turn_id, turn_id, result.text, False,
                                   prep.memories, prep.notices), result)
    t0 = time.perf_counter()
    answer = assistant.generate(prep, on_token=on_token, cancel=cancel)
    result.llm_seconds = time.perf_counter() - t0
    result.text = answer.text
    return RoutedAnswer(answer, result)
