"""Prompt text: the system prompt and how the running memory, recalled memories and their timelines are
rendered.

In the chat (assistant/layout.py) the system message holds what stays the same for a whole day: the
instructions, the date, pinned facts and the running memory; the memories recalled for a message come
with that message, between <memories> tags, and stay there. `system_message` renders the older one-shot
form (memories listed in the system message), which the benchmarks compare against.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Sequence

from memory.attached import Attached
from memory.clock import human_date
from memory.facts import for_user
from memory.recall import Memory
from memory.summaries import lines
from memory.timelines import TimelineContext, clip_words

from . import guard

_INSTRUCTIONS = (
    "You are a helpful personal assistant running privately on the user's own computer. "
    "You remember earlier conversations with the user: {where}. Use them when they help answer, and do "
    "not mention memories that are not relevant. In them, \"User:\" lines are what the user said and "
    "\"Assistant (you):\" lines are replies you gave then, which may be wrong: never take them as facts about "
    "the user. "
    "A memory marked as history was true then but was changed later: never present it as the current "
    "state. If the user asks about their own life and neither the memories nor this conversation say it, "
    "say that you do not remember it: never make up names, dates, numbers or codes, and never write out a "
    "conversation. Answer concisely."
)
SYSTEM = _INSTRUCTIONS.format(
    where="memories from them that may be relevant come with the user's messages, between <memories> "
          "and </memories>, with their dates")
SYSTEM_LISTED = _INSTRUCTIONS.format(where="relevant memories from them are listed below with their dates")


RUNNING_HEADER = ("What the user and others said in earlier conversations, dated and told back to the user "
                  "(\"you\" and \"your\" here are the user; other people's words follow their name):")


def render_running(text: str | None) -> str:
    """The running memory as the user would read it (memory.facts.for_user): the model then answers in the
    right voice ("You're allergic to penicillin"); given the stored "User: I'm allergic ..." it answered
    "I'm allergic to penicillin" as if of itself."""
    if not text:
        return ""
    return RUNNING_HEADER + "\n" + "\n".join(for_user(line) for line in lines(text))


# How the assistant's own earlier lines are labelled in what the model reads of past conversations: the
# user's stay "User:" and other people's their name. Shown as "Assistant:", the default model took its own
# earlier (made-up) words for what the user had said.
OWN_LABEL = "Assistant (you):"
_OWN_LINE = re.compile(r"^Assistant:", re.M)                  # a turn's first line (further lines are indented)
_TURN = re.compile(r"\n(?=\S)")                                 # where a turn begins
_OWN_ANYWHERE = re.compile(r"(^[ \t]*|/ |: |\] )Assistant:", re.M)   # in timelines' one-line summaries too


def own_words(text: str, anywhere: bool = False) -> str:
    """`text` (recalled turns as "Speaker: text" lines) with the assistant's lines labelled as its own earlier
    replies. Only lines that begin a turn: a turn's further lines are indented (memory.segments.memory_line),
    so a line inside an answer that had copied "Assistant: ..." is not taken for a turn. `anywhere`: also
    indented lines and turns joined by " / " after a date or topic (the timelines and history notes, which
    join whole turns' lines)."""
    if anywhere:
        return _OWN_ANYWHERE.sub(lambda m: m.group(1) + OWN_LABEL, text)
    out = []
    for turn in _TURN.split(text):
        if _OWN_LINE.match(turn):
            # what an answer stored before answers were guarded holds of a copied memory block or an invented
            # dialogue is left out, as the answer would be cut now (assistant/guard.py); nothing left, no line
            body = turn[len("Assistant:"):].lstrip(" ").replace("\n  ", "\n")
            end = guard.cut(body)[1]
            body = (body if end is None else body[:end]).rstrip()
            if not body:
                continue
            turn = OWN_LABEL + " " + body.replace("\n", "\n  ")
        out.append(turn)
    return "\n".join(out)


def _history_note(m: Memory, ctx: TimelineContext | None, present: set[int]) -> str:
    if ctx is None or m.kind != "segment" or not ctx.is_history(m.id):
        return ""
    link = ctx.changed[m.id]
    note = f" (history: changed on {human_date(link.later_at)}"
    if link.later_id not in present:
        later = ctx.infos.get(link.later_id)
        if later is not None:
            note += "; later: " + own_words(clip_words(" / ".join(later.text.splitlines()), 30), anywhere=True)
    return note + ")"


def _memory_text(m: Memory, timelines: TimelineContext | None, present: set[int]) -> str:
    head = f"[{human_date(m.started_at)}]" + (f" {m.topic}" if m.topic else "")
    return f"{head}{_history_note(m, timelines, present)}\n{own_words(m.text)}"


def render_memories(memories: list[Memory], timelines: TimelineContext | None = None) -> str:
    if not memories:
        return ""
    present = {m.id for m in memories if m.kind == "segment"}
    lines = ["Memories from earlier conversations (oldest first):"]
    lines += [_memory_text(m, timelines, present) for m in sorted(memories, key=lambda m: m.started_at)]
    return "\n\n".join(lines)


def render_timelines(timelines: TimelineContext | None, refined: str = "") -> str:
    if refined:
        return "How these memories developed (notes for this question):\n" + refined
    if timelines is None or not timelines.timelines:
        return ""
    return ("How these memories developed (oldest first; \"-(Changed)->\" means the later one replaced the "
            "earlier one):\n" + own_words(timelines.render(), anywhere=True))


def _today(now: datetime | None) -> str:
    now = now or datetime.now(timezone.utc)
    return f"Today is {now.strftime('%A, %d %B %Y')}."


def system_message(memories: list[Memory], extra: str = "", now: datetime | None = None, *,
                   timelines: TimelineContext | None = None, running: str | None = None,
                   refined: str = "") -> dict:
    """The one-shot system message: instructions, date, the running memory, then the memories recalled
    for one question and how they connect (the benchmarks' form; the chat attaches memories to messages)."""
    parts = [SYSTEM_LISTED, _today(now)]
    if extra:
        parts.append(extra)
    for block in (render_running(running), render_memories(memories, timelines),
                  render_timelines(timelines, refined)):
        if block:
            parts.append(block)
    return {"role": "system", "content": "\n\n".join(parts)}


def render_pinned(facts: Sequence[str]) -> str:
    if not facts:
        return ""
    return "Facts the user asked you to keep in mind:\n" + "\n".join(f"- {f}" for f in facts)


def chat_system_message(extra: str = "", now: datetime | None = None, *, running: str | None = None,
                        pinned: Sequence[str] = ()) -> dict:
    """The chat's system message: only what stays the same all day (instructions, the date, pinned facts,
    the running memory), so that every prompt of every session begins with the same tokens."""
    parts = [SYSTEM, _today(now), extra, render_pinned(pinned), render_running(running)]
    return {"role": "system", "content": "\n\n".join(p for p in parts if p)}


def attachments(memories: list[Memory], timelines: TimelineContext | None = None,
                refined: str = "") -> list[Attached]:
    """The memories recalled for one message as they are attached to it: each memory (oldest first, with
    its history note), then how they connect. Each carries the turns it was drawn from."""
    present = {m.id for m in memories if m.kind == "segment"}
    infos = timelines.infos if timelines is not None else {}
    out = []
    for m in sorted(memories, key=lambda m: m.started_at):
        sources = list(m.turn_ids)
        if timelines is not None and m.kind == "segment" and timelines.is_history(m.id):
            later = infos.get(timelines.changed[m.id].later_id)
            sources += later.turn_ids if later is not None and later.id not in present else []
        out.append(Attached(m.kind, m.id, _memory_text(m, timelines, present), sources))
    chains = render_timelines(timelines, refined)
    if chains and out:
        members = {i for t in (timelines.timelines if timelines is not None else []) for i in t.members}
        sources = [t for m in memories for t in m.turn_ids] + [t for i in members if i in infos
                                                               for t in infos[i].turn_ids]
        out.append(Attached("timelines", None, chains, sources))
    return out


# Said when a message brings no memories: without it the default model, told that memories come with
# messages, made some up ("My sister's name is Sarah", a fake <memories> block); with it, it said it did
# not remember, and still answered follow-ups from memories attached earlier in the conversation.
NO_MEMORIES = guard.NO_MEMORIES


def with_memories(text: str, attached: Sequence[Attached]) -> str:
    """A user's message as the model reads it, with the memories attached to it."""
    body = "\n\n".join(a.text for a in attached) if attached else NO_MEMORIES
    return "<memories>\n" + body + "\n</memories>\n\n" + text
