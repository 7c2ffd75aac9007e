"""A Markdown journal from the recursive summaries: months, their weeks, their days.

Every summary is a list of facts kept with who said them (memory.facts); the journal shows each as a bullet,
the user's own in the second person ("You're allergic to penicillin."), other people's after their name.
"""
from __future__ import annotations

from memory.facts import for_user
from memory.store import Store
from memory.summaries import SummaryStore, lines, period_bounds, period_title, week_key


def bullets(text: str) -> list[str]:
    return [f"- {for_user(line)}" for line in lines(text)]


def render_journal(store: Store, since: str | None = None, until: str | None = None) -> str:
    """Month summaries, then each week of the month and its days, oldest first. Days are ISO dates."""
    sm = SummaryStore(store)
    months = sm.list("month", since=since, until=until)
    weeks = sm.list("week", since=since, until=until)
    days = [d for d in sm.list("day", since=since, until=until)
            if (since is None or d.key >= since) and (until is None or d.key < until) and d.text.strip()]
    if not days:
        return "# Journal\n\nNothing yet: the journal is written by `assistant consolidate`.\n"
    out = ["# Journal", ""]
    running = sm.running()
    if running and since is None and until is None:
        out += ["## In short", ""] + bullets(running.text) + [""]
    by_week: dict[str, list] = {}
    for d in days:
        by_week.setdefault(week_key(d.key), []).append(d)
    # a week or month that keeps all its days' facts says nothing more: the journal shows the days only
    week_text = {w.key: w.text for w in weeks if w.method == "select"}
    for m in months:
        m_start, m_end = period_bounds("month", m.key)
        m_days = [d for d in days if m_start <= d.key < m_end]
        if not m_days:
            continue
        out += [f"## {period_title('month', m.key)}", ""] + (bullets(m.text) + [""] if m.method == "select" else [])
        for wk in sorted({week_key(d.key) for d in m_days}):
            out += [f"### {period_title('week', wk)}", ""]
            w_days = [d for d in by_week.get(wk, []) if m_start <= d.key < m_end]
            if len(by_week.get(wk, [])) > 1 and wk in week_text:
                out += bullets(week_text[wk]) + [""]
            for d in w_days:
                out += [f"#### {period_title('day', d.key)}", ""] + bullets(d.text) + [""]
    return "\n".join(out).rstrip() + "\n"
