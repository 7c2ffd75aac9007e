"""What the app keeps is for the user only: at the app's start, its folders are checked to be 0700 and
its files 0600, and anything wider is narrowed again, with a notice saying what was changed.

Only what the app made is checked: its own data and config folders (the default ones) and what lies in
them, and the database it was given with that database's clips folder, once that database has opened as
the assistant's (a file that is not, given by mistake to --db, is refused and never changed). A folder the
user chose for a database (--db) keeps its mode."""
from __future__ import annotations

import os
import stat
from pathlib import Path

from . import paths

FILE, FOLDER = 0o600, 0o700


def _narrow(path: Path, want: int, changed: list[tuple[Path, int]]) -> None:
    try:
        st = path.lstat()
    except OSError:
        return
    if stat.S_ISLNK(st.st_mode) or st.st_uid != os.getuid():
        return   # a link, or someone else's: not ours to change
    mode = stat.S_IMODE(st.st_mode)
    if mode & ~want & 0o077:   # readable, writable or usable by others
        try:
            os.chmod(path, mode & ~0o077)
        except OSError:
            return
        changed.append((path, mode))


def _tree(folder: Path, changed: list) -> None:
    """A folder the app made and everything in it (folders 0700, files 0600)."""
    if not folder.is_dir() or folder.is_symlink():
        return
    _narrow(folder, FOLDER, changed)
    for root, dirs, files in os.walk(folder):
        for d in dirs:
            _narrow(Path(root) / d, FOLDER, changed)
        for f in files:
            _narrow(Path(root) / f, FILE, changed)


def _notices(changed: list[tuple[Path, int]]) -> list[str]:
    return [f"{p} could be read by others (mode {oct(mode)[2:]}); it is private again "
            f"({oct(FOLDER if p.is_dir() else FILE)[2:]})." for p, mode in changed]


def make_private() -> list[str]:
    """Narrow what others may read in the app's own data and config folders; one notice per change. Run
    before the database opens: SQLite gives the files it creates beside a database that database's mode."""
    changed: list[tuple[Path, int]] = []
    for folder in (paths.data_dir(), paths.config_dir()):
        _tree(folder, changed)
    return _notices(changed)


def make_database_private(db: Path) -> list[str]:
    """The same for a database chosen with --db outside the data folder, its -wal and -shm files and its
    clips. Run only once the database opened as the assistant's: a file that is not is never changed."""
    db = Path(db)
    data = paths.data_dir()
    if db.parent == data or data in db.parents:
        return []       # make_private did it
    changed: list[tuple[Path, int]] = []
    for f in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        _narrow(f, FILE, changed)
    _tree(paths.clips_dir(db), changed)
    return _notices(changed)
