"""Prompt text: the system prompt and how the running memory, recalled memories and their timelines are
rendered into it."""
from __future__ import annotations

from datetime import datetime, timezone

from memory.clock import human_date
from memory.recall import Memory
from memory.timelines import TimelineContext, clip_words

SYSTEM = (
    "You are a helpful personal assistant running privately on the user's own computer. "
    "You remember earlier conversations with the user: relevant memories from them are listed below "
    "with their dates. Use them when they help answer, and do not mention memories that are not relevant. "
    "In them, \"User:\" lines are what the user said and \"Assistant:\" lines are what you said then: "
    "your own earlier words are never facts about the user. A memory marked as history was true then but "
    "was changed later: never present it as the current state. Answer concisely."
)


RUNNING_HEADER = "What was said in earlier conversations (facts, dated, after who said them):"


def render_running(text: str | None) -> str:
    if not text:
        return ""
    return RUNNING_HEADER + "\n" + text


def _history_note(m: Memory, ctx: TimelineContext | None, present: set[int]) -> str:
    if ctx is None or m.kind != "segment" or not ctx.is_history(m.id):
        return ""
    link = ctx.changed[m.id]
    note = f" (history: changed on {human_date(link.later_at)}"
    if link.later_id not in present:
        later = ctx.infos.get(link.later_id)
        if later is not None:
            note += "; later: " + clip_words(" / ".join(later.text.splitlines()), 30)
    return note + ")"


def render_memories(memories: list[Memory], timelines: TimelineContext | None = None) -> str:
    if not memories:
        return ""
    present = {m.id for m in memories if m.kind == "segment"}
    lines = ["Memories from earlier conversations (oldest first):"]
    for m in sorted(memories, key=lambda m: m.started_at):
        head = f"[{human_date(m.started_at)}]" + (f" {m.topic}" if m.topic else "")
        lines.append(f"{head}{_history_note(m, timelines, present)}\n{m.text}")
    return "\n\n".join(lines)


def render_timelines(timelines: TimelineContext | None, refined: str = "") -> str:
    if refined:
        return "How these memories developed (notes for this question):\n" + refined
    if timelines is None or not timelines.timelines:
        return ""
    return ("How these memories developed (oldest first; \"-(Changed)->\" means the later one replaced the "
            "earlier one):\n" + timelines.render())


def system_message(memories: list[Memory], extra: str = "", now: datetime | None = None, *,
                   timelines: TimelineContext | None = None, running: str | None = None,
                   refined: str = "") -> dict:
    """The system message: instructions, date, the running memory (a stable prefix across turns), then
    the memories recalled for this message and how they connect."""
    now = now or datetime.now(timezone.utc)
    parts = [SYSTEM, f"Today is {now.strftime('%A, %d %B %Y')}."]
    if extra:
        parts.append(extra)
    for block in (render_running(running), render_memories(memories, timelines),
                  render_timelines(timelines, refined)):
        if block:
            parts.append(block)
    return {"role": "system", "content": "\n\n".join(parts)}
