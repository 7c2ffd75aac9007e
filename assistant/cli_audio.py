"""`assistant listen` and other audio commands."""
import click


def register(cli: click.Group) -> None:
    """Add this module's commands to the top-level group."""
