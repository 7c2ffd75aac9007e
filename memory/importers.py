"""Importing past conversations: LoCoMo files, ChatGPT data exports and a documented JSONL format.

Every importer first parses and validates the whole input into `ImportedSession`s (a malformed input
raises ImportFormatError naming the position: line, record or conversation index), then `write` stores
them in one transaction. Sessions and turns keep their original dates and speakers, and carry an
external id, so importing the same file again adds nothing (and a grown file adds only what is new).
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Iterable

from .clock import to_iso
from .errors import ImportFormatError
from .store import Store, title_from

ROLES = ("user", "assistant", "system")
MAX_TURN_CHARS = 200_000   # one turn longer than this is a file of another kind, or pasted by mistake


@dataclass
class ImportedTurn:
    role: str
    text: str
    created_at: str
    external_id: str
    speaker: str | None = None


@dataclass
class ImportedSession:
    external_id: str
    title: str | None
    started_at: str
    turns: list[ImportedTurn] = field(default_factory=list)
    source: str = "import"


@dataclass
class ImportReport:
    sessions_new: int = 0
    sessions_seen: int = 0
    turns_new: int = 0
    turns_skipped: int = 0
    session_ids: list[int] = field(default_factory=list)


def _read_text(path: str | Path, what: str, expected: str) -> str:
    """The file's text; one sentence (not the decoder's words) when it cannot be read or is not UTF-8 text."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ImportFormatError(f"{path} is not UTF-8 text, so it cannot be {what}; give {expected}.") from None
    except OSError as e:
        raise ImportFormatError(f"Cannot read {path} ({e.strerror or e}); check the path and that it is "
                                f"{expected}.") from None


def _load_json(path: Path, what: str, text: str | None = None):
    text = _read_text(path, what, f"a UTF-8 {what} file") if text is None else text
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ImportFormatError(f"{path} is not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}; "
                                f"fix the file or export it again. Nothing was imported.")


def _fail(path, where: str, problem: str):
    raise ImportFormatError(f"{path}, {where}: {problem}. Nothing was imported.")


# -- LoCoMo ---------------------------------------------------------------------------------------
_LOCOMO_DATE = re.compile(r"(\d{1,2}):(\d{2})\s*([ap]m)\s+on\s+(\d{1,2})\s+([A-Za-z]+),?\s+(\d{4})", re.I)


def parse_locomo_date(text: str) -> datetime:
    """'1:56 pm on 8 May, 2023' -> datetime (UTC, the dataset has no zone)."""
    m = _LOCOMO_DATE.search(text or "")
    if not m:
        raise ValueError(f"unrecognised date {json.dumps(text)}")
    hour, minute, ampm, day, month, year = m.groups()
    d = datetime.strptime(f"{day} {month[:3].title()} {year}", "%d %b %Y")
    h = int(hour) % 12 + (12 if ampm.lower() == "pm" else 0)
    return d.replace(hour=h, minute=int(minute), tzinfo=timezone.utc)


def turn_text(text: str, caption: str | None) -> str:
    return f"{text} [image: {caption}]" if caption else text


def parse_locomo(path: str | Path) -> list[ImportedSession]:
    """LoCoMo (snap-research/LoCoMo): a list of {sample_id, conversation: {speaker_a, speaker_b,
    session_N_date_time, session_N: [{speaker, dia_id, text, blip_caption?}]}, ...}."""
    data = _load_json(path, "LoCoMo JSON")
    if not isinstance(data, list):
        _fail(path, "top level", "expected a list of conversation records")
    out = []
    for r, rec in enumerate(data):
        where = f"record {r}"
        if not isinstance(rec, dict) or not isinstance(rec.get("conversation"), dict):
            _fail(path, where, "expected an object with a 'conversation' object")
        sample = str(rec.get("sample_id", r))
        where = f"record {r} ({sample})"
        conv = rec["conversation"]
        speaker_a = conv.get("speaker_a")
        keys = sorted((k for k in conv if re.fullmatch(r"session_\d+", k)), key=lambda k: int(k.split("_")[1]))
        if not keys:
            _fail(path, where, "no session_N lists")
        for key in keys:
            turns = conv[key]
            if not isinstance(turns, list):
                _fail(path, f"{where}, {key}", "expected a list of turns")
            try:
                start = parse_locomo_date(conv.get(f"{key}_date_time", ""))
            except ValueError as e:
                _fail(path, f"{where}, {key}_date_time", str(e))
            n = key.split("_")[1]
            s = ImportedSession(f"locomo:{sample}:{key}",
                                f"{conv.get('speaker_a', '?')} & {conv.get('speaker_b', '?')}, session {n}",
                                to_iso(start))
            for i, t in enumerate(turns):
                tw = f"{where}, {key}, turn {i}"
                if not isinstance(t, dict):
                    _fail(path, tw, "expected an object")
                for f in ("speaker", "dia_id", "text"):
                    if not isinstance(t.get(f), str):
                        _fail(path, tw, f"missing or non-text '{f}'")
                role = "user" if t["speaker"] == speaker_a else "assistant"
                s.turns.append(ImportedTurn(role, turn_text(t["text"], t.get("blip_caption")),
                                            to_iso(start + timedelta(seconds=i)), t["dia_id"], t["speaker"]))
            out.append(s)
    return out


# -- ChatGPT data export ---------------------------------------------------------------------------
def _epoch(x) -> datetime | None:
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return datetime.fromtimestamp(float(x), tz=timezone.utc)
    return None


def _parts_text(content: dict) -> str:
    parts = content.get("parts")
    if isinstance(parts, list):
        pieces = []
        for p in parts:
            if isinstance(p, str):
                pieces.append(p)
            elif isinstance(p, dict):   # an uploaded image or file
                pieces.append("[image]" if "image" in str(p.get("content_type", "")) else "[attachment]")
        return "\n".join(x for x in pieces if x).strip()
    if isinstance(content.get("text"), str):
        return content["text"].strip()
    return ""


def _from_zip(path: str | Path) -> str | None:
    """The text of conversations.json when `path` is the ZIP of a ChatGPT data export (None when it is not
    a ZIP): at its top level, else the shallowest one in a folder."""
    import zipfile

    if not zipfile.is_zipfile(path):
        return None
    try:
        with zipfile.ZipFile(path) as z:
            names = sorted((n for n in z.namelist() if n.rsplit("/", 1)[-1] == "conversations.json"),
                           key=lambda n: (n.count("/"), n))
            if not names:
                raise ImportFormatError(
                    f"{path} is a ZIP without conversations.json; choose the ZIP that ChatGPT's data export "
                    "sent (or the conversations.json inside it). Nothing was imported.")
            data = z.read(names[0])
    except (zipfile.BadZipFile, OSError, RuntimeError, EOFError) as e:
        raise ImportFormatError(f"Cannot read the ZIP {path} ({e}); download the export again. "
                                "Nothing was imported.")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ImportFormatError(f"conversations.json in {path} is not UTF-8 text; download the export again. "
                                "Nothing was imported.")


def parse_chatgpt(path: str | Path) -> list[ImportedSession]:
    """A ChatGPT data export (its ZIP, or the conversations.json inside): a list of {id, title, create_time, mapping:
    {node: {message, parent, children}}, current_node}. The thread that ends at `current_node` is kept
    (edited-away branches are not); system, tool and hidden messages are skipped."""
    data = _load_json(path, "ChatGPT conversations.json", _from_zip(path))
    if not isinstance(data, list):
        _fail(path, "top level", "expected a list of conversations")
    out = []
    for c, conv in enumerate(data):
        where = f"conversation {c}"
        if not isinstance(conv, dict) or not isinstance(conv.get("mapping"), dict):
            _fail(path, where, "expected an object with a 'mapping' object")
        cid = conv.get("conversation_id") or conv.get("id")
        if not isinstance(cid, str):
            _fail(path, where, "missing 'id'")
        where = f"conversation {c} ({cid})"
        created = _epoch(conv.get("create_time"))
        if created is None:
            _fail(path, where, "missing or non-numeric 'create_time'")
        mapping = conv["mapping"]
        node = conv.get("current_node")
        if node is None:   # no pointer: follow first children from the root
            roots = [k for k, v in mapping.items() if isinstance(v, dict) and not v.get("parent")]
            node = roots[0] if roots else None
            while node and mapping.get(node, {}).get("children"):
                node = mapping[node]["children"][-1]
        chain, seen = [], set()
        while node:
            if node in seen or node not in mapping or not isinstance(mapping[node], dict):
                _fail(path, f"{where}, node {node}", "broken parent chain in 'mapping'")
            seen.add(node)
            chain.append(node)
            node = mapping[node].get("parent")
        s = ImportedSession(f"chatgpt:{cid}", conv.get("title") or None, to_iso(created))
        last = created
        for nid in reversed(chain):
            msg = mapping[nid].get("message")
            if not msg:
                continue
            if not isinstance(msg, dict):
                _fail(path, f"{where}, node {nid}", "'message' is not an object")
            role = (msg.get("author") or {}).get("role")
            meta = msg.get("metadata") or {}
            if role not in ("user", "assistant") or meta.get("is_visually_hidden_from_conversation"):
                continue
            content = msg.get("content")
            if not isinstance(content, dict):
                _fail(path, f"{where}, node {nid}", "missing 'content'")
            text = _parts_text(content)
            if not text:
                continue
            when = _epoch(msg.get("create_time")) or last
            last = max(last, when)
            s.turns.append(ImportedTurn(role, text, to_iso(when), nid,
                                        "User" if role == "user" else "ChatGPT"))
        if s.turns:
            out.append(s)
    return out


# -- JSONL -------------------------------------------------------------------------------------------
def _iso(value, where, path) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return to_iso(datetime.fromtimestamp(float(value), tz=timezone.utc))
    if isinstance(value, str):
        try:
            return to_iso(datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            pass
    _fail(path, where, f"'time' must be an ISO 8601 date-time or Unix seconds, not {json.dumps(value)}")


def parse_jsonl(path: str | Path) -> list[ImportedSession]:
    """One JSON object per line, one turn each (see docs/import-format.md):
    {"session": ID, "role": "user"|"assistant", "text": ..., "time": ISO-8601 or Unix seconds,
     "speaker"?: name, "id"?: turn id, "title"?: session title}."""
    lines = _read_text(path, "JSON Lines", "a UTF-8 text file of JSON Lines, one turn a line "
                                           "(format: docs/import-format.md)").splitlines()
    sessions: dict[str, ImportedSession] = {}
    seen: dict[tuple[str, str], int] = {}
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"line {n}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            _fail(path, where, f"not valid JSON ({e.msg.removesuffix(' at')} at column {e.colno})")
        if not isinstance(obj, dict):
            _fail(path, where, "expected a JSON object")
        sid = obj.get("session")
        if not isinstance(sid, (str, int)) or isinstance(sid, bool) or str(sid) == "":
            _fail(path, where, "missing 'session' (a string or number naming the conversation)")
        role = obj.get("role")
        if role not in ROLES:
            _fail(path, where, f"'role' must be one of {', '.join(ROLES)}, not {json.dumps(role)}")
        text = obj.get("text")
        if not isinstance(text, str) or not text.strip():
            _fail(path, where, "missing or empty 'text'")
        if len(text) > MAX_TURN_CHARS:
            _fail(path, where, f"'text' has {len(text):,} characters, more than the {MAX_TURN_CHARS:,} one turn "
                               "may hold; split it into several turns")
        when = _iso(obj.get("time"), where, path)
        speaker = obj.get("speaker")
        if speaker is not None and not isinstance(speaker, str):
            _fail(path, where, "'speaker' must be a string")
        title = obj.get("title")
        if title is not None and not isinstance(title, str):
            _fail(path, where, "'title' must be a string")
        s = sessions.get(str(sid))
        if s is None:
            s = sessions[str(sid)] = ImportedSession(f"jsonl:{sid}", None, when)
        s.title = s.title or (title or "").strip() or None   # the first line of the session with a title
        s.started_at = min(s.started_at, when)
        tid = obj.get("id")
        if tid is None:   # stable across re-imports: content hash plus occurrence number
            h = hashlib.sha1(f"{role}\x00{when}\x00{text}".encode()).hexdigest()[:16]
            k = seen[(str(sid), h)] = seen.get((str(sid), h), -1) + 1
            tid = f"{h}-{k}"
        s.turns.append(ImportedTurn(role, text, when, str(tid), speaker))
    for s in sessions.values():
        s.turns.sort(key=lambda t: t.created_at)   # stable: same-time turns keep file order
    return list(sessions.values())


# -- writing -----------------------------------------------------------------------------------------
def _title(s: ImportedSession) -> str | None:
    """The session's own title, else the opening words of its first message (as a chat is titled)."""
    if s.title:
        return s.title
    first = next((t for t in s.turns if t.role == "user"), s.turns[0] if s.turns else None)
    return title_from(first.text) if first else None


def write(store: Store, sessions: Iterable[ImportedSession],
          progress: Callable[[int, int], None] | None = None) -> ImportReport:
    """Store validated sessions in one transaction; what is already there (same external ids) is skipped.
    A session without a title gets one from its first message."""
    sessions = list(sessions)
    report = ImportReport()
    db = store.db
    with db.conn:
        for i, s in enumerate(sessions, 1):
            row = db.execute("SELECT id FROM sessions WHERE external_id = ?", [s.external_id]).fetchone()
            if row:
                sid = row[0]
                report.sessions_seen += 1
                db.execute("UPDATE sessions SET title = ? WHERE id = ? AND title IS NULL", [_title(s), sid])
            else:
                sid = db.execute("INSERT INTO sessions (title, started_at, source, external_id) VALUES (?, ?, ?, ?)",
                                 [_title(s), s.started_at, s.source, s.external_id]).lastrowid
                report.sessions_new += 1
            report.session_ids.append(sid)
            for t in s.turns:
                cur = db.execute(
                    "INSERT OR IGNORE INTO turns (session_id, role, speaker, text, created_at, source, status,"
                    " external_id) VALUES (?, ?, ?, ?, ?, ?, 'complete', ?)",
                    [sid, t.role, t.speaker, t.text, t.created_at, s.source, t.external_id])
                if cur.rowcount:
                    report.turns_new += 1
                else:
                    report.turns_skipped += 1
            if progress:
                progress(i, len(sessions))
    return report


def _checked(parse: Callable[[str | Path], list[ImportedSession]]):
    """A parser that also refuses a file holding no turns, or a turn too long to be one."""
    def checked(path: str | Path) -> list[ImportedSession]:
        sessions = parse(path)
        if not any(s.turns for s in sessions):
            raise ImportFormatError(f"{path} holds no conversations; check that it is the right file. "
                                    "Nothing was imported.")
        for i, s in enumerate(sessions, 1):
            for j, t in enumerate(s.turns, 1):
                if len(t.text) > MAX_TURN_CHARS:
                    _fail(path, f"conversation {i}, message {j}", f"the text has {len(t.text):,} characters, "
                          f"more than the {MAX_TURN_CHARS:,} one turn may hold")
        return sessions
    checked.__doc__ = parse.__doc__
    return checked


PARSERS = {"locomo": _checked(parse_locomo), "chatgpt": _checked(parse_chatgpt), "jsonl": _checked(parse_jsonl)}


def import_file(store: Store, kind: str, path: str | Path,
                progress: Callable[[int, int], None] | None = None) -> ImportReport:
    """Parse and validate all of `path`, then write it in one transaction."""
    if kind not in PARSERS:
        raise ImportFormatError(f"Unknown import format '{kind}'; use one of {', '.join(PARSERS)}.")
    return write(store, PARSERS[kind](path), progress)
