"""Running in the background and from the desktop: the systemd user unit for `assistant daemon` and a desktop
entry that opens the chat in a terminal, both pointing at this installation's own executable.

Only files the app writes itself are touched: each carries a mark, install refuses to replace a file without
it, and remove deletes only marked files. Where `systemctl --user` is missing or has no session (containers),
the unit is still written and the caller is told how to enable it.
"""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from .errors import AssistantError

UNIT_NAME = "local-assistant.service"
DESKTOP_NAME = "assistant.desktop"
MARK = "# Written by `assistant service install`; `assistant service remove` removes it."


def _xdg(var: str, default: str) -> Path:
    value = os.environ.get(var)
    return Path(value) if value and os.path.isabs(value) else Path.home() / default


def unit_path() -> Path:
    return _xdg("XDG_CONFIG_HOME", ".config") / "systemd" / "user" / UNIT_NAME


def desktop_path() -> Path:
    return _xdg("XDG_DATA_HOME", ".local/share") / "applications" / DESKTOP_NAME


def command() -> list[str]:
    """How to start this installation: its own `assistant` script beside the interpreter (the virtual
    environment's bin/), else this interpreter running the package."""
    script = Path(sys.executable).parent / "assistant"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "assistant.cli"]


def unit_text(cmd: list[str], db: Path | None, network: bool, key_env: str = "") -> str:
    exec_start = shlex.join(cmd + (["--db", str(db)] if db is not None else []) + ["daemon"])
    families = "AF_UNIX AF_INET AF_INET6" if network else "AF_UNIX"
    lines = [
        MARK,
        "# Memory consolidation while you are away: after idle time and every night, with no chat open.",
        "# Logs: journalctl --user -u local-assistant -f",
        "",
        "[Unit]",
        "Description=Local assistant: memory consolidation while you are away",
        "",
        "[Service]",
        "Type=simple",
        f"ExecStart={exec_start}",
        "# SIGTERM stops it between two units of work; everything finished stays finished.",
        "KillSignal=SIGTERM",
        "TimeoutStopSec=120",
        "Restart=on-failure",
        "RestartSec=60",
        "# Background work: leave the CPU and the disk to what you are doing.",
        "Nice=15",
        "CPUSchedulingPolicy=batch",
        "IOSchedulingClass=idle",
        "Environment=HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false",
        "# The network only for a configured model server." if network else "# Nothing here needs the network.",
        f"RestrictAddressFamilies={families}",
    ]
    if key_env:
        lines.append(f"PassEnvironment={key_env}")
    lines += ["NoNewPrivileges=yes", "", "[Install]", "WantedBy=default.target", ""]
    return "\n".join(lines)


def _desktop_exec(cmd: list[str]) -> str:
    """Exec= quoting of the desktop entry spec: arguments with special characters in double quotes."""
    def quote(arg: str) -> str:
        if all(c.isalnum() or c in "/._-+=:," for c in arg):
            return arg
        return '"' + "".join("\\" + c if c in '"`$\\' else c for c in arg) + '"'
    return " ".join(quote(a) for a in cmd)


def desktop_text(cmd: list[str]) -> str:
    # Terminal=true: the desktop opens the chat in the user's own terminal emulator.
    return "\n".join([
        "[Desktop Entry]",
        MARK,
        "Type=Application",
        "Name=Assistant",
        "Comment=A local assistant that remembers your conversations",
        f"Exec={_desktop_exec(cmd)}",
        "Terminal=true",
        "Categories=Utility;",
        "Keywords=assistant;chat;memory;",
        "",
    ])


def ours(path: Path) -> bool:
    """Whether the file at `path` was written by this app."""
    try:
        return MARK in path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False


def _systemctl(*args: str) -> tuple[bool, str]:
    """Run `systemctl --user ARGS`: (it worked, what it said); False when there is none or no user session."""
    exe = shutil.which("systemctl")
    if exe is None:
        return False, "systemctl is not installed"
    try:
        r = subprocess.run([exe, "--user", *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, str(e)
    said = (r.stdout + r.stderr).strip().splitlines()
    return r.returncode == 0, said[0] if said else ""


def _write(path: Path, text: str, what: str) -> None:
    if path.exists() and not ours(path):
        raise AssistantError(f"{path} exists and was not written by the assistant, so it is left as it is; "
                             f"move it away to install the {what}.")
    made = [p for p in reversed(path.parents) if not p.exists()]
    path.parent.mkdir(parents=True, exist_ok=True)
    for p in made:   # folders made here: only the user's, like the rest of the app's
        os.chmod(p, 0o700)
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(text, encoding="utf-8")
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def install(db: Path | None, network: bool, key_env: str = "") -> list[str]:
    """Write the unit and the desktop entry for this installation, and enable and start the unit where
    systemd's user session is there."""
    out: list[str] = []
    cmd = command()
    unit, desktop = unit_path(), desktop_path()
    _write(unit, unit_text(cmd, db, network, key_env), "background service")
    _write(desktop, desktop_text(cmd), "desktop entry")
    out.append(f"Wrote {unit} (runs: {shlex.join(cmd)} daemon).")
    out.append(f"Wrote {desktop} (opens the chat in your terminal).")
    ok, said = _systemctl("daemon-reload")
    if ok:
        ok, said = _systemctl("enable", "--now", UNIT_NAME)
    if ok:
        out.append(f"Enabled and started {UNIT_NAME}; logs: journalctl --user -u local-assistant -f")
    else:
        out.append(f"Could not enable it here ({said}); where systemd runs your session, enable it with: "
                         f"systemctl --user daemon-reload && systemctl --user enable --now {UNIT_NAME}")
    if key_env:
        out.append(f"The service reads the API key from {key_env} in systemd's environment: run "
                         f"`systemctl --user import-environment {key_env}` in a shell where it is set.")
    return out


def remove() -> list[str]:
    """Stop and disable the unit, and delete the unit and the desktop entry: only files this app wrote."""
    out: list[str] = []
    unit, desktop = unit_path(), desktop_path()
    if unit.exists() and ours(unit):
        _systemctl("disable", "--now", UNIT_NAME)
    for path in (unit, desktop):
        if not path.exists():
            out.append(f"{path} was not there.")
        elif not ours(path):
            out.append(f"{path} was not written by the assistant; left as it is.")
        else:
            path.unlink()
            out.append(f"Removed {path}.")
    if not unit.exists():
        _systemctl("daemon-reload")
    return out


def state() -> dict:
    """What is installed, for `assistant doctor`: each file (None when absent), whether it is the app's, the
    command the unit runs and whether it still exists, and systemd's view of the unit where it can tell."""
    unit, desktop = unit_path(), desktop_path()
    info = {"unit": unit if unit.exists() else None, "unit_ours": ours(unit),
            "desktop": desktop if desktop.exists() else None, "desktop_ours": ours(desktop),
            "exec": None, "exec_exists": None, "network": None, "enabled": None, "active": None}
    if info["unit"] is not None:
        for line in unit.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("ExecStart="):
                args = shlex.split(line[len("ExecStart="):])
                info["exec"] = args[0] if args else ""
                info["exec_exists"] = bool(args) and Path(args[0]).is_file()
            if line.startswith("RestrictAddressFamilies="):
                info["network"] = "AF_INET" in line
        for what in ("enabled", "active"):     # one word ("enabled", "inactive"), else systemd cannot tell
            _, said = _systemctl(f"is-{what}", UNIT_NAME)
            info[what] = said if said and " " not in said else None
    return info
