"""`assistant export backup FILE` and `assistant import backup FILE`."""
from __future__ import annotations

import shutil
from pathlib import Path

import click

from .common import export_group as export
from .memory import import_
from ..text import plural


@export.command("backup", short_help="Back up the whole memory to FILE (restore: assistant import backup FILE).")
@click.argument("file", type=click.Path(dir_okay=False), metavar="FILE")
@click.option("--with-audio", is_flag=True, help="Also put the audio of the clips heard in the room in it "
              "(their transcripts are always in it).")
@click.option("--force", is_flag=True, help="Replace FILE if it exists.")
@click.pass_obj
def backup(obj, file: str, with_audio: bool, force: bool):
    """Back up the whole memory to FILE: conversations, clips' transcripts, memories, timelines,
    summaries, the search indexes and your settings (format: docs/backup-format.md).

    `assistant import backup FILE` restores it into an empty database.
    """
    from .. import paths
    from ..backup import write_backup
    from ..wiring import open_store

    path = Path(file).expanduser()
    if not path.parent.is_dir():
        raise click.UsageError(f"The folder {path.parent} does not exist; create it or choose another FILE.")
    if path.resolve() == obj.db.resolve():
        raise click.UsageError("FILE is the database itself; choose another file name for the backup.")
    if path.exists() and not force:   # an earlier backup is never replaced by mistake
        raise click.UsageError(f"{path} already exists; choose another name, or add --force to replace it.")
    store = open_store(obj.db)
    try:
        report = write_backup(store, path, with_audio=with_audio, settings_file=paths.config_file())
    except OSError as e:
        raise click.ClickException(f"Could not write {path} ({e.strerror or e}); check the folder and the disk. "
                                   "No backup was left half written.")
    finally:
        store.close()
    audio = f", {plural(report.audio_files, 'audio file')}" if with_audio else ""
    missing = (f" ({plural(report.clips_without_audio, 'clip')} had no audio file left to copy)"
               if report.clips_without_audio else "")
    click.echo(f"Backed up {plural(report.tables.get('sessions', 0), 'session')}, "
               f"{plural(report.tables.get('turns', 0), 'turn')}, {plural(report.tables.get('segments', 0), 'memory', 'memories')}"
               f"{audio}{missing} to {path}.", err=True)


@import_.command("backup", short_help="Restore a backup into an empty database.")
@click.argument("file", type=click.Path(dir_okay=False), metavar="FILE")
@click.pass_obj
def restore(obj, file: str):
    """Restore a backup made by `assistant export backup` into an empty database (a new one: --db PATH).

    Settings in the backup are used only when this machine has no settings file yet.
    """
    from .. import paths
    from ..backup import BackupError, restore_backup
    from ..wiring import open_store

    path = Path(file).expanduser()
    if not path.is_file():
        raise click.UsageError(f"There is no file {path}; check the path.")
    db = Path(obj.db)
    # what this command creates, removed again if nothing is restored ("nothing at all", not an empty file)
    ours = [f for f in (db, *(db.with_name(db.name + x) for x in ("-wal", "-shm", ".answers.lock")),
                        paths.clips_dir(db)) if not f.exists()]
    store = open_store(db)
    try:
        report = restore_backup(store, path, clips_dir=paths.clips_dir(db), settings_file=paths.config_file())
    except BaseException as e:
        store.close()
        for f in ours:
            if f.is_dir():
                shutil.rmtree(f, ignore_errors=True)
            else:
                f.unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise BackupError(f"Could not restore {path} ({e.strerror or e}); check the disk. "
                              "Nothing was restored.") from None
        raise
    store.close()
    click.echo(f"Restored {plural(report.tables.get('sessions', 0), 'session')}, "
               f"{plural(report.tables.get('turns', 0), 'turn')}, "
               f"{plural(report.tables.get('segments', 0), 'memory', 'memories')} into {obj.db}.", err=True)
    if report.audio_files:
        click.echo(f"Audio: {plural(report.audio_files, 'clip')} in {paths.clips_dir(obj.db)}.", err=True)
    if report.clips_without_audio:
        click.echo(f"{plural(report.clips_without_audio, 'clip')} came without audio (the backup was made without "
                   "--with-audio): their transcripts are here, their sound is not.", err=True)
    if report.settings == "restored":
        click.echo(f"Settings restored to {paths.config_file()}.", err=True)
    elif report.settings == "kept":
        click.echo(f"Your settings file {paths.config_file()} was kept as it is; the backup's settings differ "
                   "(they are in the backup as settings/config.toml).", err=True)
