"""Migrations are atomic: a kill in the middle of one leaves a database that opens and finishes
migrating, and processes that open one fresh file at the same moment all succeed."""
import subprocess
import sys
import textwrap
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from memory.migrations import MIGRATIONS
from memory.store import Store

ROOT = Path(__file__).resolve().parent.parent

KILL_MID_MIGRATION = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, {root!r})
    from memory import migrations

    name, real = migrations.MIGRATIONS[{index}]

    def dies_half_way(db, dim):
        real(db, dim)          # its tables exist now, unrecorded...
        os.kill(os.getpid(), signal.SIGKILL)   # ...when the process is killed

    migrations.MIGRATIONS[{index}] = (name, dies_half_way)
    from memory.store import Store
    Store({db!r})
""")


def test_a_kill_in_the_middle_of_a_migration_leaves_a_database_that_opens(tmp_path):
    db = tmp_path / "killed.db"
    for index in (0, len(MIGRATIONS) // 2, len(MIGRATIONS) - 1):
        script = KILL_MID_MIGRATION.format(root=str(ROOT), index=index, db=str(db))
        r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
        assert r.returncode == -9, r.stderr
        s = Store(db)   # rolled back, then migrated to the end
        assert s.count("_migrations") == len(MIGRATIONS)
        assert s.integrity_ok()
        s.close()
        db.unlink()
        for extra in db.parent.glob(db.name + "-*"):
            extra.unlink()


def _open(path: str) -> int:
    s = Store(path)
    n = s.count("_migrations")
    s.close()
    return n


def test_processes_opening_one_fresh_database_at_once_all_succeed(tmp_path):
    with ProcessPoolExecutor(max_workers=4) as pool:
        for attempt in range(40):
            path = str(tmp_path / f"fresh{attempt}.db")
            counts = list(pool.map(_open, [path] * 4))
            assert counts == [len(MIGRATIONS)] * 4
