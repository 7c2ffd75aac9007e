"""The `assistant` command. With no subcommand it opens the chat in the terminal UI."""
from __future__ import annotations

import os
import signal
import sys
from contextlib import contextmanager
from pathlib import Path

import click

from . import __version__, config as config_mod, paths
from .errors import USER_ERRORS


class Ctx:
    def __init__(self, db: str | None, model: str | None):
        self.db_arg = db
        self.model_arg = model
        self._config = None

    @property
    def config(self) -> config_mod.Config:
        if self._config is None:
            self._config = config_mod.load()
        return self._config

    @property
    def db(self) -> Path:
        return paths.resolve_db(self.db_arg)

    @property
    def model(self) -> str:
        return self.model_arg or self.config.model

    def options(self):
        from .wiring import Options

        return Options(db=self.db, model=self.model, config=self.config)


@contextmanager
def model_progress():
    """A progress bar on stderr for the one-time join/verification of a packaged model."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    bar = Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                   TimeRemainingColumn(), console=_stderr_console(), transient=True)
    task = None

    def update(done: int, total: int) -> None:
        nonlocal task
        if task is None:
            bar.start()
            task = bar.add_task("Preparing the model (once)", total=total)
        bar.update(task, completed=done)

    try:
        yield update
    finally:
        bar.stop()


def _stderr_console():
    from rich.console import Console

    return Console(stderr=True)


def database_error_text(e: BaseException, obj=None) -> str:
    """One sentence for an error SQLite raised while the command wrote: what happened, what to do."""
    try:
        where = f"the database at {obj.db}" if obj is not None else "the database"
    except Exception:   # noqa: BLE001 - the path itself may be what is wrong
        where = "the database"
    text = str(e)
    if "full" in text:
        return (f"Could not write {where}: the disk is full. Free some space and run the command again; "
                "what was not written is not half written.")
    if "locked" in text or "busy" in text:
        return f"Could not write {where}: another program kept it locked; try again in a moment."
    if "readonly" in text or "read-only" in text:
        return f"Could not write {where}: it is read-only; check its permissions."
    return f"Could not use {where} ({text}); check the disk and the file, then try again."


class AppGroup(click.Group):
    """Turns the app's errors into one sentence on stderr instead of a traceback."""

    def format_commands(self, ctx, formatter):
        # Whole first sentences, wrapped, rather than click's cut-off "..." summaries.
        rows = [(name, cmd.get_short_help_str(limit=200)) for name, cmd in
                ((n, self.get_command(ctx, n)) for n in self.list_commands(ctx)) if cmd and not cmd.hidden]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def invoke(self, ctx):
        from sqlite_utils.utils import sqlite3

        try:
            return super().invoke(ctx)
        except USER_ERRORS as e:
            click.echo(f"Error: {e}", err=True)
            ctx.exit(1)
        except sqlite3.DatabaseError as e:   # a full disk, a disk error, a lock held too long
            click.echo(f"Error: {database_error_text(e, ctx.obj)}", err=True)
            ctx.exit(1)


@click.group(cls=AppGroup, invoke_without_command=True,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="assistant")
@click.option("--db", "db", metavar="PATH", envvar="ASSISTANT_DB",
              help="Database file to use (env ASSISTANT_DB). Its folder must exist; a new file name there "
                   "starts a new, empty memory. Default: assistant.db in the data directory.")
@click.option("--model", "model", metavar="NAME|PATH",
              help="Chat model for this run: a name from `assistant models` or a .gguf path.")
@click.pass_context
def cli(ctx, db, model):
    """A local-first personal assistant that remembers your conversations.

    Run with no command to open the chat in your terminal.
    """
    ctx.obj = Ctx(db, model)
    if ctx.invoked_subcommand is None:
        ctx.invoke(tui)


@cli.command()
@click.pass_obj
def tui(obj: Ctx):
    """Open the chat in the terminal UI (the default)."""
    from ui.app import run_app

    run_app(obj.options())


@cli.command()
@click.argument("text")
@click.option("--session", "session_id", type=int, metavar="ID",
              help="Continue this session instead of starting a new one.")
@click.option("--show-memories", is_flag=True, help="Print the memories recall used, on stderr.")
@click.option("--max-tokens", type=click.IntRange(1), metavar="N", help="Longest answer, in tokens.")
@click.option("--stats", "stats_json", is_flag=True,
              help="Print timing figures and prompt tokens (evaluated, reused from the cache) as JSON on stderr.")
@click.pass_obj
def ask(obj: Ctx, text: str, session_id: int | None, show_memories: bool, max_tokens: int | None,
        stats_json: bool):
    """Answer TEXT once on stdout, using the same memory as the chat."""
    import threading

    from .wiring import build

    if not text.strip():
        raise click.UsageError("TEXT is empty; pass the question in quotes, e.g. assistant ask \"Hello\".")
    if max_tokens:
        obj.config.max_answer_tokens = max_tokens
    with model_progress() as progress:
        assistant = build(obj.options(), progress=progress)
    # The beginning every prompt shares: loaded from beside the database (or evaluated and saved there for
    # the next time) while the embedder is still loading.
    prefix = assistant.warm()
    cancel = threading.Event()
    # A kill (SIGTERM) unwinds like Ctrl+C so the partial answer is finalised on disk.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))

    def emit(piece: str) -> None:
        sys.stdout.write(piece)
        sys.stdout.flush()

    try:
        answer = assistant.answer(session_id, text, on_token=emit, cancel=cancel)
    except KeyboardInterrupt:
        sys.stdout.write("\n")
        click.echo("Interrupted; your message and the partial answer are saved.", err=True)
        assistant.close()
        sys.exit(130)
    sys.stdout.write("\n")
    for n in answer.notices:
        click.echo(f"Note: {n}", err=True)
    if show_memories:
        for m in answer.memories:
            click.echo(f"[memory {m.kind} {m.id} score={m.score:.3f} {m.started_at[:10]}] {m.opening}", err=True)
    if stats_json:
        import json

        st = answer.stats
        click.echo(json.dumps({"session": answer.session_id, "prompt_tokens": st.prompt_tokens,
                               "prompt_tokens_reused": st.reused_tokens,
                               "prompt_tokens_evaluated": st.evaluated_tokens,
                               "prefix_tokens": prefix.prompt_tokens if prefix else 0,
                               "prefix_tokens_evaluated": prefix.evaluated_tokens if prefix else 0,
                               "completion_tokens": st.completion_tokens,
                               "time_to_first_token": st.time_to_first_token,
                               "generation_seconds": st.generation_seconds,
                               "tokens_per_second": st.tokens_per_second,
                               "recall_seconds": answer.recall_seconds}), err=True)
    else:
        click.echo(f"(session {answer.session_id}, {answer.stats.tokens_per_second:.1f} tok/s)", err=True)
    assistant.close()


@cli.command()
@click.option("--limit", default=20, show_default=True, help="How many sessions to list.")
@click.pass_obj
def sessions(obj: Ctx, limit: int):
    """List past sessions, most recent first."""
    from memory.clock import parse

    from .wiring import open_store

    store = open_store(obj.db)
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


@cli.command("models")
@click.pass_obj
def models_cmd(obj: Ctx):
    """List the chat models available and show which is active."""
    from . import models

    active = obj.model
    for spec, installed, joined in models.available():
        mark = "*" if spec.name == active else " "
        state = "ready" if joined else ("installed" if installed else "not installed")
        click.echo(f"{mark} {spec.name:<10} {state:<13} {spec.description}")
        if not installed:
            click.echo(f"    install: {spec.install_hint}")
    if active not in models.MODELS:
        click.echo(f"* {active} (file)")
    click.echo("\nChoose with --model NAME|PATH, or `assistant config set model NAME`.")


@cli.group()
def config():
    """Show or change settings (a TOML file in your config directory)."""


@config.command("show")
@click.pass_obj
def config_show(obj: Ctx):
    """Print every setting with its current value, as TOML."""
    click.echo(f"# {paths.config_file()}")
    click.echo(obj.config.to_toml(), nl=False)


@config.command("path")
def config_path():
    """Print where the config file lives."""
    click.echo(paths.config_file())


# Unknown options are values here: `config set n_ctx -5` must reach the check, not click's option parser.
@config.command("set", context_settings={"ignore_unknown_options": True})
@click.argument("key")
@click.argument("value")
def config_set(key: str, value: str):
    """Set KEY to VALUE and save (`assistant config show` lists the keys; README explains each)."""
    line = config_mod.set_value(key, value)
    click.echo(f"{line}  (saved to {paths.config_file()})")


@config.command("unset")
@click.argument("key")
def config_unset(key: str):
    """Put KEY back to its default (takes it out of the config file)."""
    default = config_mod.toml_value(getattr(config_mod.DEFAULTS, key, None)) if key in config_mod.RULES else ""
    if config_mod.unset_value(key):
        click.echo(f"{key} is back to its default, {default}.")
    else:
        click.echo(f"{key} was not set; it is at its default, {default}.")


@config.command("reset")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def config_reset(yes: bool):
    """Put every setting back to its default (removes the config file; nothing else)."""
    path = paths.config_file()
    if not path.exists():
        click.echo("Every setting is already at its default.")
        return
    if not yes:
        click.confirm(f"Remove {path} and go back to the default for every setting?", abort=True)
    config_mod.reset(path)
    click.echo(f"Removed {path}; every setting is at its default.")


from . import cli_audio, cli_memory  # noqa: E402  (they add their commands to `cli`)

cli_memory.register(cli)
from . import cli_consolidate  # noqa: E402

cli_consolidate.register(cli)
cli_audio.register(cli)


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    cli(prog_name="assistant")


if __name__ == "__main__":
    main()
