"""UTC timestamps as ISO-8601 strings, the only time format stored in the database."""
from datetime import datetime, timezone


def utcnow() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def to_iso(dt: datetime) -> str:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc).isoformat(timespec="milliseconds")


def parse(ts: str) -> datetime:
    dt = datetime.fromisoformat(ts)
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def human_date(ts: str) -> str:
    """'8 May 2023' — the form dates take inside prompts."""
    d = parse(ts)
    return f"{d.day} {d.strftime('%b %Y')}"
