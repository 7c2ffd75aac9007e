"""Times from the database (ISO-8601 UTC) shown in local time."""
from __future__ import annotations

from datetime import datetime


def local_time(ts: str | None, fmt: str = "%d %b %Y %H:%M") -> str:
    """An ISO-8601 UTC timestamp from the database, in local time."""
    if not ts:
        return ""
    try:
        return datetime.fromisoformat(ts).astimezone().strftime(fmt)
    except ValueError:
        return ts[:16].replace("T", " ")
