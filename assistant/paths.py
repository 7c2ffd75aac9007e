"""Where things live: the config file, the data directory, the database and its audio clips."""
from __future__ import annotations

import os
from pathlib import Path

import platformdirs

from . import APP_NAME
from .errors import DatabasePathError


def config_dir() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME))


def config_file() -> Path:
    return config_dir() / "config.toml"


def data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME))


def models_dir() -> Path:
    return data_dir() / "models"


def default_db() -> Path:
    return data_dir() / "assistant.db"


def clips_dir(db: Path) -> Path:
    """Where the audio clips of database `db` are kept: a folder beside it, named after it
    (assistant.db -> assistant-clips/), so that two databases in one folder never share clips."""
    return db.with_name(db.stem + "-clips")


def resolve_db(cli_value: str | None = None) -> Path:
    """--db wins, then ASSISTANT_DB, then the data directory. A path the user gives must name a file in
    a folder that exists: a mistyped folder is an error, never a new, empty memory somewhere else."""
    value = cli_value or os.environ.get("ASSISTANT_DB")
    if not value:
        return default_db()
    path = Path(value).expanduser()
    start = f"Cannot open the database at {path}"
    if path.is_dir():
        raise DatabasePathError(f"{start}: it is a folder; name a file in it, e.g. --db {path / 'assistant.db'}.")
    if value.endswith(("/", os.sep)):      # meant as a folder, which Path() would quietly make a file name
        raise DatabasePathError(f"{start}: the folder {path} does not exist; check the path, or create it "
                                f"(mkdir -p {path}) and name a file in it, e.g. --db {path / 'assistant.db'}.")
    folder = path.parent
    if not folder.exists():
        raise DatabasePathError(f"{start}: the folder {folder} does not exist; check the path, or create the "
                                f"folder (mkdir -p {folder}) to start a new memory there.")
    if not folder.is_dir():
        raise DatabasePathError(f"{start}: {folder} is not a folder; check the path.")
    return path
