"""What every command module shares: the top-level `cli` group, its context, errors as one sentence, progress
bars and the loaders of the models. Each module of this package adds its commands to `cli`."""
from __future__ import annotations

from contextlib import contextmanager
from datetime import date, datetime, time
from pathlib import Path

import click

from .. import __version__, config as config_mod, paths
from ..errors import USER_ERRORS


class Ctx:
    def __init__(self, db: str | None, model: str | None, incognito: bool = False):
        self.db_arg = db
        self.model_arg = model
        self.incognito = incognito
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
        from ..wiring import Options

        return Options(db=self.db, model=self.model, config=self.config, incognito=self.incognito)


# -- dates: every --since, --until, --started-at and --now takes the same forms ---------------------------
DATE_FORMS = ("a day as YYYY-MM-DD (for example 2025-03-01), an ISO date and time (2025-03-01T14:00, local unless "
              "it has an offset), or a day such as 'yesterday' or 'last Tuesday'")


def named_day(value: str, now: datetime | None = None) -> date | None:
    """The first day of a span named exactly and wholly by `value` ("yesterday", "last Tuesday", "3 March",
    "last week"), or None. "3 days ago" is a fuzzy span for recall, too loose for an option."""
    from memory.when import named_days

    named = named_days(value, now or datetime.now().astimezone())
    if named is None or named[3].lower() != " ".join(value.lower().split()) or "ago" in value.lower():
        return None
    return named[0]


def parse_time(value: str, what: str) -> datetime:
    """An option's time (see DATE_FORMS), aware: a day means its local midnight, a time without a zone is
    local. One sentence (a UsageError) for anything else."""
    try:
        dt = datetime.fromisoformat(value.strip())
    except ValueError:
        day = named_day(value)
        if day is None:
            raise click.UsageError(f"{what} must be {DATE_FORMS}, not '{value}'.") from None
        dt = datetime.combine(day, time())
    return dt if dt.tzinfo else dt.astimezone()


def parse_day(value: str, what: str) -> str:
    """An option's day (see DATE_FORMS) as the ISO date of a local day; a time stands for its local day."""
    try:
        return date.fromisoformat(value.strip()).isoformat()
    except ValueError:
        return parse_time(value, what).astimezone().date().isoformat()


def agreed(question: str, nothing: str) -> bool:
    """Ask `question` (default no). "No" prints `nothing` ("Nothing was forgotten.") and is no failure; no
    answer at all (no terminal, end of input) says so on stderr and exits 1."""
    try:
        ok = click.confirm(question, default=False)
    except click.Abort:
        click.echo(f"\n{nothing.rstrip('.')} (no answer; pass --yes to go ahead without asking).", err=True)
        raise SystemExit(1)
    if not ok:
        click.echo(nothing)
    return ok


@contextmanager
def model_progress():
    """A progress bar on stderr for the one-time join/verification of a packaged model."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    console = stderr_console()
    # Only on a terminal: elsewhere (a pipe, a log) a bar shows nothing but an empty line when it ends.
    bar = Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                   TimeRemainingColumn(), console=console, transient=True, disable=not console.is_interactive)
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
        if task is not None:   # a bar never shown ends nothing (rich would print an empty line)
            bar.stop()


def stderr_console():
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

    group_class = type   # subgroups (memory, export, import, ...) list their commands the same way

    def format_commands(self, ctx, formatter):
        # Whole first sentences, wrapped, rather than click's cut-off "..." summaries.
        rows = [(name, cmd.get_short_help_str(limit=200)) for name, cmd in
                ((n, self.get_command(ctx, n)) for n in self.list_commands(ctx)) if cmd and not cmd.hidden]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def resolve_command(self, ctx, args):
        # `assistant show 3` for `assistant sessions show 3`: name the command where it lives
        name = args[0] if args else ""
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            homes = [g for g in self.list_commands(ctx) if isinstance(sub := self.get_command(ctx, g), click.Group)
                     and sub.get_command(ctx, name) is not None]
            if homes:
                meant = " or ".join(f"`{ctx.command_path} {g} {name}`" for g in homes)
                ctx.fail(f"No such command '{name}'. Did you mean {meant}?")
        return super().resolve_command(ctx, args)

    def invoke(self, ctx):
        from sqlite_utils.utils import sqlite3

        try:
            return super().invoke(ctx)
        except click.NoSuchOption as e:
            # `assistant import backup --db NEW.db FILE`: the option exists, only before the command
            app = e.ctx.find_root().command if e.ctx is not None else None
            option = next((p for p in app.params if e.option_name in p.opts and not p.is_eager), None) \
                if app is not None and e.ctx.parent else None
            if option is not None and "goes before the command" not in e.message:   # said once, innermost
                value = "" if option.is_flag else f" {option.metavar.split('|')[0]}"    # NAME|PATH: NAME
                sub = e.ctx.command_path.split(" ", 1)[1]
                e.message = (f"{e.message.rstrip('.')}: {e.option_name} goes before the command, right after "
                             f"`assistant`: assistant {e.option_name}{value} {sub} ...")
                e.possibilities = []      # not "Did you mean '--help'?"
            raise
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
@click.option("--incognito", is_flag=True,
              help="Chat without storing anything: no turns, no index, no clips. Memory is still read.")
@click.pass_context
def cli(ctx, db, model, incognito):
    """A local-first personal assistant that remembers your conversations.

    Run with no command to open the chat in your terminal.
    """
    if db is not None and not db.strip():   # `--db ""` (a variable that was not set) must not mean the default
        raise click.UsageError("--db is empty; give the path of a database file, or leave --db out to use the "
                               "default one.")
    ctx.obj = Ctx(db, model, incognito)
    if ctx.invoked_subcommand is None:
        ctx.invoke(cli.get_command(ctx, "tui"))




@cli.group("memory")
def memory_group():
    """Search and maintain the memory of past conversations."""


@cli.group("export")
def export_group():
    """Write what the assistant remembers to files."""


@contextmanager
def bar(description: str):
    """A rich progress bar on stderr; yields update(done, total)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn, TimeRemainingColumn

    console = stderr_console()
    progress = Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=True,
                        disable=not console.is_interactive)   # as model_progress: a terminal's only
    task = None

    def update(done: int, total: int) -> None:
        nonlocal task
        if task is None:
            progress.start()
            task = progress.add_task(description, total=total)
        progress.update(task, completed=done, total=total)

    try:
        yield update
    finally:
        if task is not None:   # a bar never shown ends nothing (rich would print an empty line)
            progress.stop()


def embedder():
    """MiniLM, as recall and indexing use it."""
    from memory.embedder import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder()


def load_llm(obj: Ctx, progress=None):
    """The chat model of this run: the configured model server, or (--model or the config) joined and checked
    once, with a progress bar, and loaded here."""
    from ..engines import open_model

    if progress is None:
        with model_progress() as progress:
            return open_model(obj.model, obj.config, progress=progress)
    return open_model(obj.model, obj.config, progress=progress)
