"""Where things live: the config file, the data directory and the database."""
from __future__ import annotations

import os
from pathlib import Path

import platformdirs

from . import APP_NAME


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


def resolve_db(cli_value: str | None = None) -> Path:
    """--db wins, then ASSISTANT_DB, then the data directory."""
    value = cli_value or os.environ.get("ASSISTANT_DB")
    return Path(value).expanduser() if value else default_db()
