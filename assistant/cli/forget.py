"""`assistant forget`, `assistant remember` and `assistant memory correct|pin|unpin|pins`: the user's hands
on their memory (memory/forget.py, memory/edits.py)."""
from __future__ import annotations

import click

from .common import agreed, cli, memory_group as memory, parse_time


def to_utc(value: str | None, what: str) -> str | None:
    """A --since/--until value (a local day YYYY-MM-DD, an ISO date and time, or a day as people name it:
    "yesterday", "last Tuesday", "3 March", "last week", whose first day counts) as the UTC ISO time stored."""
    from memory.clock import to_iso

    return None if value is None else to_iso(parse_time(value, what))


def confirm_and_forget(store, plan, yes: bool) -> None:
    """Show the plan's sentence; forget after "yes" (or --yes). Anything else changes nothing."""
    from memory.forget import forget

    click.echo(plan.describe())
    if plan.empty:
        return
    for line in plan.preview():     # which turns: a phrase may match a turn that holds other things too
        click.echo(f"  {line}")
    if not yes and not agreed("It cannot be undone. Forget it?", "Nothing was forgotten."):
        return
    forget(store, plan)
    click.echo(plan.describe())


@cli.command("forget")
@click.argument("phrase", required=False)
@click.option("--memory", "segment_id", type=int, metavar="ID", help="Forget one memory (ids as `memory search` shows).")
@click.option("--session", "session_id", type=int, metavar="ID", help="Forget a whole session.")
@click.option("--since", metavar="DATE", help="Forget everything from this day (local) or ISO time on.")
@click.option("--until", metavar="DATE", help="Forget everything before this day (local) or ISO time.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def forget_cmd(obj, phrase, segment_id, session_id, since, until, yes):
    """Forget for good: every turn that holds PHRASE, one memory, a session or a time range.

    Shows how many turns, memories, summaries and clips would go and asks first. What goes is deleted
    everywhere (indexes, timelines, clips and their audio files, summaries and the journal, which are
    rebuilt without it) and overwritten in the database file."""
    from memory.forget import plan_forget

    from ..wiring import open_store

    chosen = [phrase is not None, segment_id is not None, session_id is not None, bool(since or until)]
    if sum(chosen) != 1:
        raise click.UsageError("Say what to forget, one way: PHRASE, --memory ID, --session ID, or "
                               "--since/--until DATE.")
    if phrase is not None and not phrase.strip():
        raise click.UsageError('PHRASE is empty; pass words in quotes, e.g. assistant forget "Daniel".')
    lo, hi = to_utc(since, "--since"), to_utc(until, "--until")
    if lo and hi and lo >= hi:
        raise click.UsageError(f"--since ({since}) must be before --until ({until}).")
    store = open_store(obj.db)
    try:
        plan = plan_forget(store, segment_id=segment_id, session_id=session_id, since=lo, until=hi, phrase=phrase)
        confirm_and_forget(store, plan, yes)
    finally:
        store.close()


@cli.command("remember")
@click.argument("text")
@click.pass_obj
def remember_cmd(obj, text):
    """Pin a fact (TEXT) so that it is in every prompt.

    For example: assistant remember "My dentist is Dr Brooks on Baker Street"; list pins with
    `assistant memory pins`."""
    from memory.edits import remember

    from ..wiring import open_store

    if not text.strip():
        raise click.UsageError('TEXT is empty; pass the fact in quotes, e.g. assistant remember "I am vegetarian".')
    store = open_store(obj.db)
    try:
        pin_id = remember(store, text)
    finally:
        store.close()
    click.echo(f"Pinned fact {pin_id}: {' '.join(text.split())}")


@memory.command("correct")
@click.argument("memory_id", type=int, metavar="ID")
@click.argument("text")
@click.pass_obj
def correct_cmd(obj, memory_id, text):
    """Replace what memory ID says with TEXT, your own words. The original turns are kept and marked
    corrected; recall, the prompt and the journal use TEXT from now on, and consolidation keeps it."""
    from memory.edits import correct

    from . import common
    from ..wiring import open_store

    if not text.strip():
        raise click.UsageError('TEXT is empty; pass what the memory should say, in quotes.')
    store = open_store(obj.db)
    try:
        c = correct(store, memory_id, text, embedder=common.embedder())
    except ValueError as e:
        raise click.UsageError(str(e))
    finally:
        store.close()
    click.echo(f"Memory {c.segment_id} now says: {' '.join(text.split())} "
               f"({len(c.corrected_turn_ids)} original turn{'s' if len(c.corrected_turn_ids) != 1 else ''} "
               "kept, marked corrected).")


@memory.command("pin")
@click.argument("memory_id", type=int, metavar="ID")
@click.pass_obj
def pin_cmd(obj, memory_id):
    """Pin memory ID: what it says is then in every prompt."""
    from memory.edits import pin, pins

    from ..wiring import open_store

    store = open_store(obj.db)
    try:
        pin_id = pin(store, memory_id)
        shown = next(p.for_user() for p in pins(store) if p.id == pin_id)
    finally:
        store.close()
    click.echo(f"Pinned fact {pin_id}: {shown}")


@memory.command("unpin")
@click.argument("pin_id", type=int, metavar="ID")
@click.pass_obj
def unpin_cmd(obj, pin_id):
    """Take pinned fact ID off the list (the memory it came from stays)."""
    from memory.edits import unpin

    from ..wiring import open_store

    store = open_store(obj.db)
    try:
        unpin(store, pin_id)
    finally:
        store.close()
    click.echo(f"Unpinned fact {pin_id}.")


@memory.command("pins")
@click.pass_obj
def pins_cmd(obj):
    """List the pinned facts, oldest first, as the prompt shows them."""
    from memory.edits import pins

    from ..wiring import open_store

    store = open_store(obj.db)
    try:
        rows = pins(store)
    finally:
        store.close()
    if not rows:
        click.echo('No pinned facts. Pin one with `assistant remember "..."` or `assistant memory pin ID`.')
        return
    width = len(str(rows[-1].id))
    for p in rows:
        origin = "" if not p.turn_ids else "  (from a memory)"
        click.echo(f"{p.id:>{width}}  {p.created_at[:10]}  {p.for_user()}{origin}")
