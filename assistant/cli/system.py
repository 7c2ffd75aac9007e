"""`assistant doctor` (what this machine is doing, and what to fix) and `assistant service install|remove`
(the background daemon as a systemd user unit, and a desktop entry for the chat)."""
from __future__ import annotations

import click

from .common import Ctx, cli


@cli.command()
@click.option("--offline", is_flag=True, help="Do not ask a configured model server anything.")
@click.pass_obj
def doctor(obj: Ctx, offline: bool):
    """Check the engine, GPU, model, database, sound, background service and settings; each problem comes
    with what to do. Exits with 1 when it finds one."""
    from ..doctor import examine

    findings = examine(obj.db, obj.model_arg, connect=not offline)
    width = max(len(f.area) for f in findings)
    problems = [f for f in findings if f.problem]
    for f in findings:
        click.echo(f"{f.area:<{width}}  {f.text}")
        if f.problem:
            click.echo(f"{'':<{width}}  PROBLEM: {f.problem}")
    click.echo("")
    if problems:
        click.echo(f"{len(problems)} problem{'s' if len(problems) != 1 else ''} found; each says what to do.")
        raise SystemExit(1)
    click.echo("No problems found.")


@cli.group()
def service():
    """Run consolidation in the background (a systemd user service) and add the chat to the desktop."""


@service.command("install")
@click.pass_obj
def service_install(obj: Ctx):
    """Write and enable the systemd user unit for `assistant daemon`, and a desktop entry that opens the
    chat in your terminal, both for this installation."""
    from .. import service as svc

    cfg = obj.config
    for line in svc.install(obj.db if obj.db_arg else None, network=cfg.engine == "openai",
                            key_env=cfg.api_key_env if cfg.engine == "openai" else ""):
        click.echo(line)


@service.command("remove")
def service_remove():
    """Stop and remove what `service install` wrote (nothing else)."""
    from .. import service as svc

    for line in svc.remove():
        click.echo(line)
