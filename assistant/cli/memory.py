"""`assistant memory ...` and `assistant import ...` commands."""
from __future__ import annotations

import click

from . import common
from .common import bar, cli, memory_group as memory
from ..text import counts, plural

SEGMENTERS = click.Choice(["llm", "fast", "none"])


def _segment(obj, store, embedder, mode: str, limit: int | None = None) -> None:
    """Index every turn, then segment the pending sessions (one transaction each, resumable)."""
    from memory.bank import segment_pending
    from memory.recall import TurnIndex

    pending_turns = len(TurnIndex(store, embedder).pending())
    if pending_turns:
        with bar("Indexing turns") as update:
            TurnIndex(store, embedder).index_pending(progress=lambda n: update(n, pending_turns))
    model = common.load_llm(obj) if mode == "llm" else None
    with bar(f"Segmenting ({mode})") as update:
        report = segment_pending(store, embedder, mode=mode, model=model, limit=limit, progress=update)
    fb = f", {report.fallbacks} fell back to the fast segmenter" if mode == "llm" else ""
    click.echo(f"Segmented {plural(report.sessions, 'session')} into {plural(report.segments, 'segment')} "
               f"in {report.seconds:.0f} s{fb}.", err=True)


@memory.command("search")
@click.argument("query")
@click.option("--budget", default=700, show_default=True, help="Token budget of the recalled context.")
@click.option("--since", metavar="DATE", help="Only memories from this day (local) or ISO time on; a day may be "
              "'yesterday', 'last Tuesday', ...")
@click.option("--until", metavar="DATE", help="Only memories before this day (local) or ISO time.")
@click.option("--source", "sources", multiple=True, type=click.Choice(["chat", "audio", "import"]),
              help="Only memories from this source (repeatable).")
@click.option("--session", "session_ids", multiple=True, type=int, metavar="ID",
              help="Only memories of this session (repeatable).")
@click.option("--full", is_flag=True, help="Print each memory's whole text, not its opening words.")
@click.pass_obj
def search(obj, query, budget, since, until, sources, session_ids, full):
    """Show what recall finds for QUERY: date, topic, opening words, score and ids (best first)."""
    from datetime import datetime

    from memory.bank import SegmentRecall
    from memory.clock import human_date
    from memory.detail import says
    from memory.when import talk_window

    from ..wiring import open_store

    if not query.strip():
        raise click.UsageError('QUERY is empty; pass words in quotes, e.g. assistant memory search "trip".')
    from .forget import to_utc

    since, until = to_utc(since, "--since"), to_utc(until, "--until")   # as stored: UTC ISO times
    store = open_store(obj.db)
    recall = SegmentRecall(store, common.embedder())
    filters = {k: v for k, v in dict(since=since, until=until, sources=list(sources) or None,
                                     session_ids=list(session_ids) or None).items() if v}
    now = datetime.now().astimezone()
    memories = recall.search(query, budget, now=now, **filters)
    window = talk_window(query, now)
    if window is not None and recall.params.time_weight > 0:
        click.echo(window.ranking_note())
    if not memories:
        click.echo("Nothing found. Import or chat first, or widen the filters.")
    elif not any(says(m.text, query) for m in memories):
        click.echo(f'No memory says "{query}"; these are the closest in meaning.')
    for m in memories:
        ids = ",".join(map(str, m.turn_ids))
        topic = f"  {m.topic}" if m.topic else ""
        click.echo(f"{human_date(m.started_at):>11}  score {m.score:.4f}  {m.kind} {m.id} "
                   f"(session {m.session_id}, turns {ids}){topic}")
        click.echo(("    " + m.text.replace("\n", "\n    ")) if full else f"    {m.opening}")
    store.close()

@memory.command("segment")
@click.option("--segmenter", type=click.Choice(["llm", "fast"]),
              help="fast: embedding similarity (TextTiling); llm: the chat model splits sessions by topic "
                   "(SeCom; slow on a CPU). Default: the config key consolidate_segment_mode (fast), "
                   "as `assistant consolidate` uses.")
@click.option("--limit", type=int, help="Segment at most this many sessions now (the rest stay pending).")
@click.pass_obj
def segment(obj, segmenter, limit):
    """Segment sessions with new turns (resumable: stop any time and run again)."""
    from ..wiring import open_store

    store = open_store(obj.db)
    _segment(obj, store, common.embedder(), segmenter or obj.config.consolidate_segment_mode, limit)
    store.close()

@memory.command("stats")
@click.pass_obj
def stats(obj):
    """Counts of sessions, turns and segments, and how segmentation went."""
    from memory.segments import SegmentStore

    from ..wiring import open_store

    store = open_store(obj.db)
    seg = SegmentStore(store)
    st = seg.stats()
    pending = len(seg.pending_sessions())
    click.echo(f"{plural(store.count('sessions'), 'session')}, {plural(store.count('turns'), 'turn')}, "
               f"{plural(store.count('segments'), 'segment')}"
               + (f"; {plural(pending, 'session')} not tidied yet (segments stay provisional until "
                  "`assistant consolidate`)" if pending else ""))
    how = f" ({counts(st['by_method'])})" if st["by_method"] else ""
    click.echo(f"{plural(st['sessions'], 'session')} tidied{how}, {plural(st['llm_calls'], 'model call')}, "
               f"{plural(st['fallbacks'], 'fallback')} to the fast segmenter")
    store.close()

@cli.group("import")
def import_():
    """Import past conversations (re-importing the same file adds nothing new)."""

def _import(obj, kind: str, path: str, segmenter: str):
    from memory.importers import PARSERS, write

    from ..wiring import open_store

    sessions = PARSERS[kind](path)          # validates everything before writing anything
    segmenter = segmenter or obj.config.consolidate_segment_mode
    store = open_store(obj.db)
    with bar(f"Importing {kind}") as update:
        report = write(store, sessions, progress=update)
    there = (f" ({plural(report.turns_skipped, 'turn')} {'was' if report.turns_skipped == 1 else 'were'} "
             "already there)" if report.turns_skipped else "")
    click.echo(f"Imported {plural(report.turns_new, 'new turn')} in {plural(report.sessions_new, 'new session')}"
               f"{there}.", err=True)
    if segmenter != "none":
        _segment(obj, store, common.embedder(), segmenter)
    else:
        click.echo("Not segmented yet; run `assistant memory segment` (imported turns are findable once "
                   "indexed).", err=True)
    store.close()

seg_option = click.option(
    "--segmenter", type=SEGMENTERS,
    help="After importing: fast (embedding similarity), llm (the chat model; slow on a CPU) or none. "
         "Default: the config key consolidate_segment_mode (fast).")

@import_.command("locomo")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@seg_option
@click.pass_obj
def import_locomo(obj, path, segmenter):
    """Import a file in LoCoMo's format (a list of conversations with dated sessions)."""
    _import(obj, "locomo", path, segmenter)

@import_.command("chatgpt", short_help="Import a ChatGPT data export (its ZIP, or conversations.json).")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@seg_option
@click.pass_obj
def import_chatgpt(obj, path, segmenter):
    """Import a ChatGPT data export: the ZIP it sends, or the conversations.json inside."""
    _import(obj, "chatgpt", path, segmenter)

@import_.command("jsonl")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@seg_option
@click.pass_obj
def import_jsonl(obj, path, segmenter):
    """Import JSON Lines, one turn a line (format: docs/import-format.md)."""
    _import(obj, "jsonl", path, segmenter)
