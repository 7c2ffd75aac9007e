"""Folders the app makes for itself: private (0700) when it creates them, untouched when they exist.

A folder that was already there belongs to someone else (the user's home, /tmp, a project folder), so
its mode is never changed, not even when what the app then does in it fails.
"""
from __future__ import annotations

import os
from pathlib import Path


def private_dirs(path: str | os.PathLike) -> list[Path]:
    """Create `path` and its missing parents, each with mode 0700; returns the folders created."""
    missing, p = [], Path(path)
    while not p.exists() and not p.is_symlink() and p.parent != p:
        missing.append(p)
        p = p.parent
    created = []
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:   # made by another process meanwhile: not ours to change
            continue
        os.chmod(folder, 0o700)   # mkdir's mode is narrowed by the umask, never widened
        created.append(folder)
    return created
