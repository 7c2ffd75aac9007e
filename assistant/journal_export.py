"""The journal written out: Markdown, one self-contained HTML page (inline CSS, no scripts, nothing fetched)
and JSON, all from `journal.journal_days`."""
from __future__ import annotations

import json
from html import escape

from memory.clock import human_date, utcnow

from .journal import JournalDay, journal_days, waiting_sessions
from .text import plural

FORMATS = ("md", "html", "json")
JSON_VERSION = 1
HEADINGS = {"did": "What you did", "decided": "What you decided", "planned": "What you planned",
            "said": "What you said"}
EMPTY = "Nothing yet: the journal is written by `assistant consolidate`."


def sections(day: JournalDay) -> list[tuple[str, list[str]]]:
    """A day's parts in reading order, each (heading, lines), empty parts left out."""
    out = [(HEADINGS[k], [x.text for x in day.yours(k)]) for k in HEADINGS]
    out.append(("What others said", [x.text for x in day.others]))
    out.append(("What was heard", [f"{x.time} {x.text}" for x in day.heard]))
    out.append(("How things changed", [change_text(c) for c in day.changes]))
    return [(h, xs) for h, xs in out if xs]


def change_text(c) -> str:
    return f"{c.words.capitalize()} since {human_date(c.earlier_at)}: “{c.earlier}” → “{c.later}”"


def session_text(s) -> str:
    kind = "" if s.source == "chat" else f"{s.source}, "
    return f"{s.time} {s.title} ({kind}{plural(s.turns, 'turn')})"


def _note(waiting: int) -> str:
    if not waiting:
        return ""
    verb = "is" if waiting == 1 else "are"
    return (f"{plural(waiting, 'conversation')} {verb} not in the journal yet: `assistant consolidate` "
            "writes them.")


def render_markdown(days: list[JournalDay], waiting: int = 0) -> str:
    out = ["# Journal", ""]
    if _note(waiting):
        out += [_note(waiting), ""]
    if not days:
        return "\n".join(out + [EMPTY]) + "\n"
    for d in days:
        out += [f"## {d.title}", ""]
        if d.people:
            out += [f"People: {', '.join(d.people)}.", ""]
        if d.sessions:
            out += ["Conversations: " + "; ".join(session_text(s) for s in d.sessions) + ".", ""]
        for heading, xs in sections(d):
            out += [f"### {heading}", ""] + [f"- {x}" for x in xs] + [""]
    return "\n".join(out).rstrip() + "\n"


def render_json(days: list[JournalDay], waiting: int = 0, since: str | None = None,
                until: str | None = None) -> str:
    return json.dumps({"format": "assistant-journal", "version": JSON_VERSION, "generated_at": utcnow(),
                       "since": since, "until": until, "waiting_sessions": waiting,
                       "days": [d.as_dict() for d in days]}, ensure_ascii=False, indent=1) + "\n"


_CSS = """
:root { --ink: #1f2328; --soft: #59636e; --line: #d8dee4; --paper: #fbfaf7; --card: #ffffff;
        --accent: #2f6f4f; --heard: #7a4e9c; --change: #a05a00; }
@media (prefers-color-scheme: dark) {
  :root { --ink: #e6e6e6; --soft: #a0a7b0; --line: #3a3f45; --paper: #16181b; --card: #1f2226;
          --accent: #7cc49c; --heard: #c49be0; --change: #e3a857; } }
* { box-sizing: border-box; }
body { margin: 0; background: var(--paper); color: var(--ink);
       font: 17px/1.55 Georgia, "DejaVu Serif", "Liberation Serif", serif; }
main { max-width: 46rem; margin: 0 auto; padding: 2.5rem 1.25rem 4rem; }
header h1 { font-size: 2.2rem; margin: 0 0 .25rem; letter-spacing: .01em; }
header p { color: var(--soft); margin: 0 0 2rem; font-family: system-ui, "DejaVu Sans", sans-serif; font-size: .9rem; }
article { background: var(--card); border: 1px solid var(--line); border-radius: 10px;
          padding: 1.25rem 1.5rem 1rem; margin: 0 0 1.5rem; page-break-inside: avoid; }
article h2 { font-size: 1.35rem; margin: 0 0 .5rem; color: var(--accent); }
.meta { font-family: system-ui, "DejaVu Sans", sans-serif; font-size: .85rem; color: var(--soft); margin: 0 0 .6rem; }
.people span { display: inline-block; border: 1px solid var(--line); border-radius: 999px; padding: 0 .6rem;
               margin: 0 .3rem .3rem 0; color: var(--ink); }
h3 { font: 600 .8rem/1.2 system-ui, "DejaVu Sans", sans-serif; text-transform: uppercase; letter-spacing: .08em;
     color: var(--soft); margin: 1rem 0 .35rem; }
ul { margin: 0; padding-left: 1.2rem; }
li { margin: .15rem 0; }
li time { font: .85rem system-ui, "DejaVu Sans", sans-serif; color: var(--heard); margin-right: .4rem; }
section.heard li { list-style: none; margin-left: -1.2rem; }
section.changed li { list-style: none; margin-left: -1.2rem; border-left: 3px solid var(--change);
                     padding-left: .6rem; }
.was { color: var(--soft); }
.empty { color: var(--soft); font-style: italic; }
"""


def _html_section(heading: str, day: JournalDay) -> str:
    if heading == "What was heard":
        items = [f'<li><time datetime="{escape(x.at)}">{escape(x.time)}</time>{escape(x.text)}</li>' for x in day.heard]
        cls = "heard"
    elif heading == "How things changed":
        items = [f'<li>{escape(c.words.capitalize())} since {escape(human_date(c.earlier_at))}: '
                 f'<span class="was">{escape(c.earlier)}</span> → {escape(c.later)}</li>' for c in day.changes]
        cls = "changed"
    else:
        texts = dict(sections(day))[heading]
        items = [f"<li>{escape(x)}</li>" for x in texts]
        cls = "facts"
    return f'<section class="{cls}"><h3>{escape(heading)}</h3><ul>{"".join(items)}</ul></section>'


def render_html(days: list[JournalDay], waiting: int = 0, since: str | None = None,
                until: str | None = None) -> str:
    span = ""
    if days:
        span = f"{days[0].title} – {days[-1].title}" if len(days) > 1 else days[0].title
    sub = " · ".join(x for x in (span, plural(len(days), "day"), _note(waiting).replace("`", "")) if x)
    parts = ['<!DOCTYPE html>', '<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             # nothing is fetched: no scripts, no images, no fonts, no links to load
             """<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">""",
             f"<title>Journal{(' · ' + escape(span)) if span else ''}</title><style>{_CSS}</style></head>",
             f'<body><main><header><h1>Journal</h1><p>{escape(sub)}</p></header>']
    if not days:
        parts.append(f'<p class="empty">{escape(EMPTY.replace("`", ""))}</p>')
    for d in days:
        parts.append(f'<article id="d{d.day}"><h2>{escape(d.title)}</h2>')
        if d.people:
            parts.append('<p class="meta people">' + "".join(f"<span>{escape(p)}</span>" for p in d.people) + "</p>")
        if d.sessions:
            parts.append('<p class="meta">' + escape("; ".join(session_text(s) for s in d.sessions)) + "</p>")
        parts += [_html_section(h, d) for h, _ in sections(d)]
        parts.append("</article>")
    parts.append("</main></body></html>")
    return "\n".join(parts) + "\n"


def render(store, fmt: str, since: str | None = None, until: str | None = None) -> str:
    """The journal of [since, until) (ISO local days) in `fmt`: md, html or json."""
    days = journal_days(store, since=since, until=until)
    waiting = waiting_sessions(store)
    if fmt == "md":
        return render_markdown(days, waiting)
    if fmt == "html":
        return render_html(days, waiting, since, until)
    if fmt == "json":
        return render_json(days, waiting, since, until)
    raise ValueError(f"unknown journal format {fmt!r}")
