"""The application core: config, models, the Assistant that answers a turn, and the CLI."""

APP_NAME = "local-assistant"
__version__ = "0.1.0"
