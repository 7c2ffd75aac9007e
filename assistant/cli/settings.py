"""`assistant config ...`: show and change settings."""
from __future__ import annotations

import click

from .. import config as config_mod, paths
from .common import Ctx, agreed, cli


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
    if key == "model":
        from ..models import MODELS

        spec = MODELS.get(value)
        if spec is not None and not spec.installed():
            click.echo(f"Note: the model '{value}' is not installed yet, and the chat will not start on it until "
                       f"it is; install it with: {spec.install_hint} (or `assistant config unset model`).", err=True)


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
    if not yes and not agreed(f"Remove {path} and go back to the default for every setting?", "Nothing was reset."):
        return
    config_mod.reset(path)
    click.echo(f"Removed {path}; every setting is at its default.")
