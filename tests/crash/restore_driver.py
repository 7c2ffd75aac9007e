"""`assistant import backup ZIP` into DB, unless DB already holds the restored memory: a restore goes only
into an empty database, so the run after a kill either finds it done (the kill came after the commit) or
restores into what the kill left (nothing, since the restore is one transaction).

    python -m tests.crash.restore_driver DB ZIP"""
from __future__ import annotations

import sqlite3
import sys
from pathlib import Path


def holds_turns(db: Path) -> bool:
    if not db.exists():
        return False
    conn = sqlite3.connect(db)
    try:
        return bool(conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'turns'").fetchone()
                    and conn.execute("SELECT 1 FROM turns LIMIT 1").fetchone())
    finally:
        conn.close()


def main(db: str, backup: str) -> None:
    if holds_turns(Path(db)):
        print("already restored", file=sys.stderr)
        return
    from assistant.cli import main as cli

    sys.argv = ["assistant", "--db", db, "import", "backup", backup]
    cli()


if __name__ == "__main__":
    main(*sys.argv[1:3])
