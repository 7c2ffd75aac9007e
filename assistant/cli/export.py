"""`assistant export journal`, `assistant export transcripts`."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import click

from .common import export_group as export, parse_day


def days_option(name: str, help_: str):
    return click.option(name, metavar="DAY", help=help_ + " A day as YYYY-MM-DD, or 'yesterday', 'last Tuesday', "
                                                  "'3 March', 'last week' (its first day).")


def checked_days(since: str | None, until: str | None) -> tuple[str | None, str | None]:
    since = parse_day(since, "--since") if since is not None else None
    until = parse_day(until, "--until") if until is not None else None
    if since and until and since >= until:
        raise click.UsageError(f"--since ({since}) must be before --until ({until}); --until is the first day "
                               "left out.")
    return since, until


def check_output(output: str | None, force: bool, db: Path) -> Path | None:
    """--output as a path, refused before anything is read when its folder is missing, when it is the database,
    or when it exists and --force was not given (as `export backup`: an earlier export is never replaced by
    mistake)."""
    if not output:
        return None
    path = Path(output).expanduser()
    if not path.parent.is_dir():
        raise click.UsageError(f"The folder {path.parent} does not exist; create it or choose another file.")
    if path.resolve() == Path(db).resolve():
        raise click.UsageError(f"{path} is the database itself; choose another file name for the export.")
    if path.exists() and not force:
        raise click.UsageError(f"{path} already exists; choose another file, or add --force to replace it.")
    return path


def write_out(pieces: Iterable[str], path: Path | None) -> None:
    """To standard output, or to FILE through a temporary file beside it (a failed export leaves any
    earlier FILE as it was)."""
    if path is None:
        for p in pieces:
            click.echo(p, nl=False)
        return
    from ..backup import private_file

    tmp = path.with_name(f".{path.name}.partial")
    try:
        with private_file(tmp, "w") as f:    # what you said, readable only by you (as the database)
            for p in pieces:
                f.write(p)
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise click.ClickException(f"Could not write {path} ({e.strerror or e}); check the folder and the disk.")
    click.echo(f"Wrote {path}", err=True)


output_option = click.option("--output", "-o", "--out", "output", type=click.Path(dir_okay=False),
                             metavar="FILE", help="Write to FILE instead of standard output.")
force_option = click.option("--force", is_flag=True, help="Replace FILE if it exists.")
# FILE may also follow the command, as `export backup FILE` takes it
file_argument = click.argument("file", required=False, type=click.Path(dir_okay=False), metavar="[FILE]")


def chosen_output(output: str | None, file: str | None) -> str | None:
    if output and file and output != file:
        raise click.UsageError(f"Two files were given ({file} and -o {output}); give one.")
    return output or file


EXTENSIONS = {"markdown": "md", "htm": "html"}     # other names of a format's extension


def chosen_format(fmt: str | None, path: str | None, formats: tuple[str, ...]) -> str:
    """--format, else FILE's extension when it is one of `formats` ("journal.html"), else the first."""
    if fmt:
        return fmt
    ext = Path(path).suffix.lower().lstrip(".") if path else ""
    ext = EXTENSIONS.get(ext, ext)
    return ext if ext in formats else formats[0]


@export.command("journal", short_help="The journal, day by day: md, html or json.")
@file_argument
@click.option("--format", "fmt", type=click.Choice(["md", "html", "json"]),
              help="md: Markdown; html: one self-contained page that reads offline; json: the data. "
                   "[default: FILE's extension, else md]")
@days_option("--since", "Only from this day on (local date).")
@days_option("--until", "Only before this day (local date; that day is left out).")
@output_option
@force_option
@click.pass_obj
def journal(obj, file: str | None, fmt: str | None, since: str | None, until: str | None, output: str | None,
            force: bool):
    """Write the journal: day by day, what you did, decided, planned and said, who was involved, what was
    heard in the room (with times) and how things changed.

    Made from what `assistant consolidate` has summarized; your own words, never the assistant's.
    """
    from ..journal_export import render
    from ..wiring import open_store

    output = chosen_output(output, file)
    fmt = chosen_format(fmt, output, ("md", "html", "json"))
    since, until = checked_days(since, until)
    path = check_output(output, force, obj.db)
    store = open_store(obj.db)
    try:
        text = render(store, fmt, since, until)
    finally:
        store.close()
    write_out([text], path)


@export.command("transcripts", short_help="The conversations as they were: md or jsonl.")
@file_argument
@click.option("--format", "fmt", type=click.Choice(["md", "jsonl"]),
              help="md: Markdown, a section a conversation; jsonl: JSON Lines, one turn a line. "
                   "[default: FILE's extension, else md]")
@days_option("--since", "Only turns from this day on (local date).")
@days_option("--until", "Only turns before this day (local date; that day is left out).")
@output_option
@force_option
@click.pass_obj
def transcripts(obj, file: str | None, fmt: str | None, since: str | None, until: str | None, output: str | None,
                force: bool):
    """Write the conversations as they were: who said what, and when."""
    from .. import transcripts as tr
    from ..wiring import open_store

    output = chosen_output(output, file)
    fmt = chosen_format(fmt, output, ("md", "jsonl"))
    since, until = checked_days(since, until)
    path = check_output(output, force, obj.db)
    store = open_store(obj.db)
    try:
        write_out((tr.markdown if fmt == "md" else tr.jsonl)(store, since, until), path)
    finally:
        store.close()
