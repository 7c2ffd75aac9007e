"""Recursive summaries (Wang et al., "Recursively summarizing enables long-term dialogue memory"), made of
facts that keep who said what (memory.facts).

- Session summaries: the facts the session's people stated (never the assistant's words), one a line.
- The running memory M_t = f(M_{t-1}, new session summaries): always in the prompt; dated facts within a
  word budget; each fold is a new row, the previous one is kept as superseded history.
- Day, week and month summaries build on each other (sessions -> day -> ISO week -> month) for the journal:
  a day lists its sessions' facts; a week or month its inputs' dated facts, the most telling of them when
  they do not fit.

A rebuilt summary supersedes the old row, which stays. Forgetting a turn marks every summary that saw its
session stale and blanks its text (a trigger, see migration m021); consolidation rebuilds what is missing.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Iterable, Sequence

from .clock import human_date, parse, utcnow
from .store import Store

KINDS = ("session", "running", "day", "week", "month")
RUNNING_KEY = "main"


@dataclass
class Summary:
    id: int
    kind: str
    key: str
    text: str
    period_start: str
    period_end: str
    last_turn_id: int | None
    inputs: str
    status: str
    method: str
    created_at: str


_COLS = "id, kind, key, text, period_start, period_end, last_turn_id, inputs, status, method, created_at"


# -- periods ---------------------------------------------------------------------------------------
def day_key(ts: str) -> str:
    return parse(ts).date().isoformat()


def week_key(day: str) -> str:
    y, w, _ = date.fromisoformat(day).isocalendar()
    return f"{y}-W{w:02d}"


def month_key(day: str) -> str:
    return day[:7]


def period_bounds(kind: str, key: str) -> tuple[str, str]:
    """[start, end) of a day / week / month key as ISO dates."""
    if kind == "day":
        d = date.fromisoformat(key)
        return d.isoformat(), (d + timedelta(days=1)).isoformat()
    if kind == "week":
        y, w = key.split("-W")
        d = date.fromisocalendar(int(y), int(w), 1)
        return d.isoformat(), (d + timedelta(days=7)).isoformat()
    if kind == "month":
        y, m = map(int, key.split("-"))
        nxt = date(y + (m == 12), m % 12 + 1, 1)
        return date(y, m, 1).isoformat(), nxt.isoformat()
    raise ValueError(kind)


def period_title(kind: str, key: str) -> str:
    start, end = period_bounds(kind, key)
    d0, d1 = date.fromisoformat(start), date.fromisoformat(end) - timedelta(days=1)
    if kind == "day":
        return f"{d0.strftime('%A')} {d0.day} {d0.strftime('%B %Y')}"
    if kind == "week":
        return f"Week {key.split('-W')[1].lstrip('0')} of {key[:4]} ({d0.day} {d0.strftime('%b')} – {d1.day} {d1.strftime('%b')})"
    return d0.strftime("%B %Y")


# -- the table ---------------------------------------------------------------------------------------
class SummaryStore:
    """Reads and writes summaries. Writers do not commit: the caller holds the transaction."""

    def __init__(self, store: Store):
        self.store = store
        self.db = store.db

    def _rows(self, where: str, params: Iterable = ()) -> list[Summary]:
        return [Summary(*r) for r in self.db.execute(f"SELECT {_COLS} FROM summaries WHERE {where}",
                                                     list(params)).fetchall()]

    def get(self, summary_id: int) -> Summary | None:
        rows = self._rows("id = ?", [summary_id])
        return rows[0] if rows else None

    def current(self, kind: str, key: str) -> Summary | None:
        rows = self._rows("kind = ? AND key = ? AND status = 'current'", [kind, str(key)])
        return rows[0] if rows else None

    def running(self) -> Summary | None:
        """The latest running memory M_t (None before the first fold or while it is being rebuilt)."""
        return self.current("running", RUNNING_KEY)

    def list(self, kind: str, status: str = "current", since: str | None = None, until: str | None = None,
             ) -> list[Summary]:
        where, params = "kind = ? AND status = ?", [kind, status]
        if since:
            where += " AND period_end > ?"
            params.append(since)
        if until:
            where += " AND period_start < ?"
            params.append(until)
        return self._rows(where + " ORDER BY period_start, id", params)

    def history(self, kind: str, key: str) -> list[Summary]:
        """Every version of one summary, oldest first (stale ones have lost their text)."""
        return self._rows("kind = ? AND key = ? ORDER BY id", [kind, str(key)])

    def add(self, kind: str, key: str, text: str, period_start: str, period_end: str, *,
            sessions: Iterable[int], inputs: Sequence[int] = (), last_turn_id: int | None = None,
            fingerprint: str = "", method: str = "llm", llm_calls: int = 0,
            turn_ids: Sequence[int] = ()) -> int | None:
        """Insert the new current version; the previous current one (if any) becomes superseded.

        Nothing is written (None) when something it was made from was forgotten or corrected meanwhile: an
        input summary gone stale, or one of `turn_ids` (the turns its lines came from) deleted or corrected.
        It was computed outside this transaction, so it could hold words that are gone; the next
        consolidation makes it again."""
        if kind not in KINDS:
            raise ValueError(f"unknown summary kind {kind!r}")
        if not self._still_there(inputs, turn_ids):
            return None
        self.db.execute("UPDATE summaries SET status = 'superseded' WHERE kind = ? AND key = ? AND status = 'current'",
                        [kind, str(key)])
        sid = self.db.execute(
            "INSERT INTO summaries (kind, key, text, period_start, period_end, last_turn_id, inputs, status,"
            " method, llm_calls, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'current', ?, ?, ?)",
            [kind, str(key), text, period_start, period_end, last_turn_id, fingerprint, method, llm_calls,
             utcnow()]).lastrowid
        self.db.conn.executemany("INSERT OR IGNORE INTO summary_inputs (summary_id, input_id) VALUES (?, ?)",
                                 [(sid, i) for i in inputs])
        self.db.conn.executemany("INSERT OR IGNORE INTO summary_sessions (summary_id, session_id) VALUES (?, ?)",
                                 [(sid, s) for s in sorted(set(sessions))])
        return sid

    def _still_there(self, inputs: Sequence[int], turn_ids: Sequence[int]) -> bool:
        for ids, sql in ((sorted(set(inputs)), "SELECT COUNT(*) FROM summaries WHERE status != 'stale' AND id IN"),
                         (sorted(set(turn_ids)), "SELECT COUNT(*) FROM turns WHERE corrected_by IS NULL AND id IN")):
            for start in range(0, len(ids), 500):
                part = ids[start:start + 500]
                if self.db.execute(f"{sql} ({','.join('?' * len(part))})", part).fetchone()[0] != len(part):
                    return False
        return True

    def sessions_of(self, summary_ids: Sequence[int]) -> set[int]:
        if not summary_ids:
            return set()
        marks = ",".join("?" * len(summary_ids))
        return {r[0] for r in self.db.execute(
            f"SELECT session_id FROM summary_sessions WHERE summary_id IN ({marks})", list(summary_ids))}

    def counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for kind, status, n in self.db.execute("SELECT kind, status, COUNT(*) FROM summaries GROUP BY 1, 2"):
            out.setdefault(kind, {})[status] = n
        return out

    # -- what needs work ---------------------------------------------------------------------------
    def sessions_needing_summary(self) -> list[int]:
        """Segmented sessions whose current summary is missing or older than their segmentation."""
        return [r[0] for r in self.db.execute("""
            SELECT g.session_id FROM segmentation_log g JOIN sessions s ON s.id = g.session_id
            LEFT JOIN summaries m ON m.kind = 'session' AND m.key = CAST(g.session_id AS TEXT)
                                  AND m.status = 'current'
            WHERE m.id IS NULL OR m.last_turn_id < g.last_turn_id
            ORDER BY s.started_at, s.id""").fetchall()]

    def running_base(self) -> Summary | None:
        """The running version to fold into: the current one, or after forgetting the latest one that
        is not stale (neither saw what went nor was retired by `prune_running`)."""
        rows = self._rows("kind = 'running' AND key = ? AND status != 'stale' ORDER BY id DESC LIMIT 1",
                          [RUNNING_KEY])
        return rows[0] if rows else None

    def folded_inputs(self, running_id: int | None) -> set[int]:
        """Every session summary folded into `running_id` or one of the versions it was built on."""
        if running_id is None:
            return set()
        # CROSS JOIN keeps the chain the outer loop: left to itself, SQLite walked every running version
        # (by the kind index) at each step of the chain, which is quadratic in the number of folds (217 s
        # at 10,000 folds, five years of sessions; linear: 0.1 s).
        rows = self.db.execute("""
            WITH RECURSIVE chain(id) AS (
                SELECT ?
                UNION SELECT i.input_id FROM chain c CROSS JOIN summary_inputs i ON i.summary_id = c.id
                      CROSS JOIN summaries s ON s.id = i.input_id WHERE s.kind = 'running')
            SELECT i.input_id FROM chain c CROSS JOIN summary_inputs i ON i.summary_id = c.id
            CROSS JOIN summaries s ON s.id = i.input_id WHERE s.kind = 'session'""", [running_id]).fetchall()
        return {r[0] for r in rows}

    def prune_running(self) -> int:
        """Drop the list of sessions of superseded running versions that are no longer a checkpoint, and
        retire those versions (stale, text blanked); returns how many. Each version lists every session it
        covers, so keeping every list grew with the square of the sessions (5e8 rows after 100,000 sessions
        folded ten at a time). A superseded version is only a base to fold again from after a forget (see
        `running_base`), so a few are kept, like a binary counter: for each power of two, the last two
        versions whose ordinal it divides. After forgetting what version u folded, the fold starts again
        from a kept version before u, at most about as far before u as the current one is after it."""
        ids = [r[0] for r in self.db.execute("SELECT id FROM summaries WHERE kind = 'running' AND key = ? "
                                             "ORDER BY id", [RUNNING_KEY])]
        keep, step = set(), 1
        while step <= len(ids):
            last = len(ids) // step * step
            keep.update(ids[p - 1] for p in (last, last - step) if p >= 1)
            step *= 2
        drop = [r[0] for r in self.db.execute("SELECT id FROM summaries WHERE kind = 'running' AND key = ? "
                                              "AND status = 'superseded'", [RUNNING_KEY]) if r[0] not in keep]
        for start in range(0, len(drop), 500):
            part = drop[start:start + 500]
            marks = ",".join("?" * len(part))
            self.db.execute(f"DELETE FROM summary_sessions WHERE summary_id IN ({marks})", part)
            self.db.execute(f"UPDATE summaries SET status = 'stale', text = '' WHERE id IN ({marks})", part)
        return len(drop)

    def unfolded(self) -> list[Summary]:
        """Current session summaries the running memory has not folded yet, in time order."""
        base = self.running_base()
        done = self.folded_inputs(base.id if base else None)
        return [s for s in self.list("session") if s.id not in done]


# -- the texts ---------------------------------------------------------------------------------------
# Every summary is a list of facts, one a line, each in the words of the person who said it (memory.facts):
# a session's are its facts; the running memory, weeks and months keep dated lines ("[8 May 2023] ...")
# of their inputs; a day is its sessions' facts. Nothing here is written by the model, so no summary can
# give one person's fact to another, take the assistant's words for the user's, or invent a time of day.
ROLLUP_WORDS = {"day": None, "week": 90, "month": 120}    # None: a day keeps every fact of its sessions
CHILD = {"day": "session", "week": "day", "month": "week"}


def lines(text: str) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def dated(when: str, line: str) -> str:
    """A line with its date in front (kept as it is when it has one)."""
    return line if line.startswith("[") else f"[{when}] {line}"


def session_text(turns, max_words: int) -> tuple[str, list[int]]:
    """A session's summary (its facts, one a line, within `max_words`) and the turns they came from."""
    from .facts import candidates, keep

    facts = candidates(turns)
    texts = [f.line for f in facts]
    kept = [facts[i] for i in keep(texts, [0] * len(texts), max_words)]
    return "\n".join(f.line for f in kept), [f.turn_id for f in kept]


def select_lines(items: Sequence[tuple[str, str]], max_words: int | None) -> list[str]:
    """Dated lines from (group, line) pairs in time order, at most `max_words` words (every group keeps
    its most telling facts first), each fact once: a fact said again keeps its latest date."""
    from .facts import keep, split_line, taken_back_by_later

    last: dict[str, int] = {}
    for i, (_, line) in enumerate(items):
        _, who, words = split_line(line)
        last[f"{who}|{words}"] = i
    items = [items[i] for i in sorted(last.values())]
    gone = taken_back_by_later([split_line(line)[1:] for _, line in items])    # what a later correction took back
    items = [item for i, item in enumerate(items) if i not in gone]
    if max_words is None:
        return [line for _, line in items]
    idx = keep([line for _, line in items], [g for g, _ in items], max_words)
    return [items[i][1] for i in idx]


# -- units of work (each: compute outside, then one short transaction) ---------------------------------
@dataclass
class FoldPlan:
    base: Summary | None
    new: list[Summary]


def plan_fold(summaries: SummaryStore, batch: int = 6) -> FoldPlan | None:
    pending = summaries.unfolded()
    if not pending:
        return None
    pending.sort(key=lambda s: (s.period_start, s.id))
    return FoldPlan(summaries.running_base(), pending[:batch])


def fold(plan: FoldPlan, words: int = 200) -> str:
    """M_t = f(M_{t-1}, new session summaries): the memory's dated facts and the new ones, in time order,
    within `words` words; when they do not fit, each day keeps its most telling facts first and the oldest
    days give up facts first."""
    old = lines(plan.base.text) if plan.base else []
    new = [dated(human_date(s.period_start), line) for s in plan.new for line in lines(s.text)]
    items = sorted(((_day_of(line), line) for line in old + new), key=lambda item: item[0])
    return "\n".join(select_lines(items, words))


def _day_of(line: str) -> str:
    """The ISO day of a line's "[8 May 2023]" ("" when it has none)."""
    from datetime import datetime

    from .facts import split_line

    try:
        return datetime.strptime(split_line(line)[0], "%d %b %Y").date().isoformat()
    except ValueError:
        return ""


def write_fold(store: Store, plan: FoldPlan, text: str, method: str = "llm", llm_calls: int = 1) -> int:
    sm = SummaryStore(store)
    sessions = sm.sessions_of([s.id for s in plan.new] + ([plan.base.id] if plan.base else []))
    start = min([s.period_start for s in plan.new] + ([plan.base.period_start] if plan.base else []))
    end = max([s.period_end for s in plan.new] + ([plan.base.period_end] if plan.base else []))
    inputs = [s.id for s in plan.new] + ([plan.base.id] if plan.base else [])
    sid = sm.add("running", RUNNING_KEY, text, start, end, sessions=sessions, inputs=inputs,
                 fingerprint=json.dumps({"base": plan.base.id if plan.base else None,
                                         "new": [s.id for s in plan.new]}),
                 method=method, llm_calls=llm_calls)
    if sid is not None:
        sm.prune_running()
    return sid


@dataclass
class RollupPlan:
    kind: str
    key: str
    children: list[Summary]
    fingerprint: str


def plan_rollups(summaries: SummaryStore, kind: str) -> list[RollupPlan]:
    """Periods of `kind` whose inputs changed since their current summary was built, oldest first."""
    child_kind = CHILD[kind]
    groups: dict[str, list[Summary]] = {}
    months: dict[str, set[str]] = {}      # week key -> the months of its days with conversations
    if kind == "month":
        for d in summaries.list("day"):   # once: a query per week read every earlier day (6 s at 5 years)
            months.setdefault(week_key(d.key), set()).add(month_key(d.key))
    for s in summaries.list(child_kind):
        if child_kind == "session":
            keys = [day_key(s.period_start)]
        elif child_kind == "day":
            keys = [week_key(s.key)]
        else:   # weeks go to every month they touch that has days with conversations
            keys = sorted(months.get(s.key, ())) or [month_key(s.period_start)]
        for k in keys:
            groups.setdefault(k, []).append(s)
    out = []
    for key in sorted(groups):
        children = sorted(groups[key], key=lambda s: (s.period_start, s.id))
        fp = ",".join(str(c.id) for c in children)
        cur = summaries.current(kind, key)
        if cur is None or cur.inputs != fp:
            out.append(RollupPlan(kind, key, children, fp))
    return out


def rollup(plan: RollupPlan) -> tuple[str, str]:
    """(text, method) of a period: a day lists its sessions' facts; a week or month its days' dated facts
    when they fit ("join", or "copy" from one input), else the most telling of them ("select")."""
    items = [(c.period_start, line if plan.kind == "day" else dated(human_date(c.period_start), line))
             for c in plan.children for line in lines(c.text)]
    kept = select_lines(items, ROLLUP_WORDS[plan.kind])
    if len(kept) < len(items):
        return "\n".join(kept), "select"
    return "\n".join(kept), "copy" if len(plan.children) == 1 else "join"


def write_rollup(store: Store, plan: RollupPlan, text: str, method: str, llm_calls: int) -> int:
    sm = SummaryStore(store)
    start, end = period_bounds(plan.kind, plan.key)
    return sm.add(plan.kind, plan.key, text, start, end, sessions=sm.sessions_of([c.id for c in plan.children]),
                  inputs=[c.id for c in plan.children], fingerprint=plan.fingerprint, method=method,
                  llm_calls=llm_calls)
