"""`assistant sessions` (the list), `sessions show|rename|delete ID`."""
from __future__ import annotations

import click

from .common import cli


@cli.group("sessions", invoke_without_command=True)
@click.option("--limit", default=20, show_default=True, help="How many sessions to list.")
@click.pass_context
def sessions(ctx, limit: int):
    """List past sessions, most recent first; show, rename or delete one."""
    if ctx.invoked_subcommand is not None:
        return
    from memory.clock import parse

    from ..wiring import open_store

    store = open_store(ctx.obj.db)
    rows = store.sessions(limit=limit)
    store.close()
    if not rows:
        click.echo("No sessions yet. Start one with `assistant` or `assistant ask \"...\"`.")
        return
    width = max(2, len(str(max(s.id for s in rows))))
    click.echo(f"{'ID':>{width}}  {'last active':<16}  {'turns':>5}  {'source':<6}  title")
    for s in rows:
        when = parse(s.last_at).astimezone().strftime("%Y-%m-%d %H:%M")
        title = " ".join((s.title or "(untitled)").split())
        title = title if len(title) <= 60 else title[:59] + "…"
        click.echo(f"{s.id:>{width}}  {when:<16}  {s.turn_count:>5}  {s.source:<6}  {title}")


def _session(store, session_id: int):
    from ..errors import AssistantError

    s = store.session(session_id)
    if s is None:
        raise AssistantError(f"There is no session {session_id}; list sessions with `assistant sessions`.")
    return s


@sessions.command("show")
@click.argument("session_id", type=int, metavar="ID")
@click.pass_obj
def show(obj, session_id: int):
    """Print session ID's transcript: every turn with its time and who said it (turns you corrected are
    marked, with your correction after them)."""
    from memory.clock import parse
    from memory.segments import speaker_of

    from ..wiring import open_store

    store = open_store(obj.db)
    try:
        s = _session(store, session_id)
        turns = store.transcript(session_id)
    finally:
        store.close()
    corrections = {t.corrected_by for t in turns if t.corrected_by}
    click.echo(f"Session {s.id}: {' '.join((s.title or '(untitled)').split())}")
    if not turns:
        click.echo("(no turns)")
    for t in turns:
        when = parse(t.created_at).astimezone().strftime("%Y-%m-%d %H:%M")
        notes = []
        if t.corrected_by:
            notes.append("corrected")
        if t.id in corrections:
            notes.append("your correction")
        if t.status in ("interrupted", "error"):
            notes.append("cut off" if t.status == "interrupted" else "failed")
        note = f" ({', '.join(notes)})" if notes else ""
        click.echo(f"[{when}] {speaker_of(t)}{note}: {t.text}")


@sessions.command("rename")
@click.argument("session_id", type=int, metavar="ID")
@click.argument("title")
@click.pass_obj
def rename(obj, session_id: int, title: str):
    """Give session ID the title TITLE."""
    from ..wiring import open_store

    if not title.strip():
        raise click.UsageError('TITLE is empty; pass the new title in quotes, e.g. assistant sessions rename 3 "Trip".')
    store = open_store(obj.db)
    try:
        _session(store, session_id)
        store.rename_session(session_id, title)
    finally:
        store.close()
    click.echo(f"Session {session_id} is now called: {' '.join(title.split())}")


@sessions.command("delete")
@click.argument("session_id", type=int, metavar="ID")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def delete(obj, session_id: int, yes: bool):
    """Forget session ID for good (as `assistant forget --session ID`): its turns, memories, clips, and
    the summaries that saw it (rebuilt without it)."""
    from memory.forget import plan_forget

    from .forget import confirm_and_forget
    from ..wiring import open_store

    store = open_store(obj.db)
    try:
        plan = plan_forget(store, session_id=session_id)
        confirm_and_forget(store, plan, yes)
    finally:
        store.close()
