"""Small helpers for the text the user reads: counts with the right plural, values as they would type them."""
from __future__ import annotations

# Nouns whose plural is not the singular + "s".
_IRREGULAR = {"memory": "memories", "summary": "summaries", "entry": "entries", "match": "matches",
              "person": "people"}


def plural(n: int | float, word: str, many: str | None = None) -> str:
    """'1 turn', '2 turns', '0 turns'. `word` is a noun (write "thing heard" as
    f"{plural(n, 'thing')} heard"); `many` names a plural the table below does not know."""
    form = word if n == 1 else (many or _IRREGULAR.get(word) or word + "s")
    return f"{n:g} {form}" if isinstance(n, float) else f"{n:,} {form}"


def counts(pairs: dict) -> str:
    """{'fast': 15, 'llm': 1} -> 'fast 15, llm 1': a mapping as a person writes it ('' when empty)."""
    return ", ".join(f"{k} {v}" for k, v in pairs.items())
