"""Prompt text: the system prompt and how recalled memories are rendered into it."""
from __future__ import annotations

from datetime import datetime, timezone

from memory.clock import human_date
from memory.recall import Memory

SYSTEM = (
    "You are a helpful personal assistant running privately on the user's own computer. "
    "You remember earlier conversations with the user: relevant memories from them are listed below "
    "with their dates. Use them when they help answer, treat them as things the user told you, and "
    "do not mention memories that are not relevant. Answer concisely."
)


def render_memories(memories: list[Memory]) -> str:
    if not memories:
        return ""
    lines = ["Memories from earlier conversations (oldest first):"]
    for m in sorted(memories, key=lambda m: m.started_at):
        head = f"[{human_date(m.started_at)}]" + (f" {m.topic}" if m.topic else "")
        lines.append(f"{head}\n{m.text}")
    return "\n\n".join(lines)


def system_message(memories: list[Memory], extra: str = "", now: datetime | None = None) -> dict:
    now = now or datetime.now(timezone.utc)
    parts = [SYSTEM, f"Today is {now.strftime('%A, %d %B %Y')}."]
    if extra:
        parts.append(extra)
    block = render_memories(memories)
    if block:
        parts.append(block)
    return {"role": "system", "content": "\n\n".join(parts)}
