"""Crash consistency: run a real command in a subprocess, kill it with SIGKILL at a seeded random moment,
then check the database (integrity, acknowledged turns, no derived row doubled or orphaned), run the
command again and compare the end state with an uninterrupted run's.

`python -m tests.crash.run` runs every operation at many kill points (README, development);
tests/test_crash.py runs a few of them in the suite.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[2]

# A derived row that is doubled or points at nothing: each query lists the offending rows.
ORPHANS = {
    "turn in two segments": "SELECT turn_id FROM segment_turns GROUP BY turn_id HAVING COUNT(*) > 1",
    "segment without turns": "SELECT id FROM segments s WHERE NOT EXISTS "
                             "(SELECT 1 FROM segment_turns st WHERE st.segment_id = s.id)",
    "segment member missing": "SELECT turn_id FROM segment_turns WHERE turn_id NOT IN (SELECT id FROM turns)",
    "member of a missing segment": "SELECT segment_id FROM segment_turns "
                                   "WHERE segment_id NOT IN (SELECT id FROM segments)",
    "turn text indexed without its turn": "SELECT rowid FROM fts_turn WHERE rowid NOT IN (SELECT id FROM turns)",
    "turn vector without its turn": "SELECT id FROM codes_turn WHERE id NOT IN (SELECT id FROM turns)",
    "turn in sqlite-vec without its turn": "SELECT id FROM vectors_turn WHERE id NOT IN (SELECT id FROM turns)",
    "turn indexed on one side only": "SELECT id FROM codes_turn WHERE id NOT IN (SELECT rowid FROM fts_turn) "
                                     "UNION SELECT rowid FROM fts_turn WHERE rowid NOT IN (SELECT id FROM codes_turn) "
                                     "UNION SELECT id FROM codes_turn WHERE id NOT IN (SELECT id FROM codes_turn_vectors)",
    "segment key without its segment": "SELECT rowid FROM fts_segment WHERE rowid NOT IN (SELECT id FROM segments) "
                                       "UNION SELECT id FROM codes_segment WHERE id NOT IN (SELECT id FROM segments)",
    "segment indexed on one side only": "SELECT id FROM codes_segment WHERE id NOT IN (SELECT rowid FROM fts_segment) "
                                        "UNION SELECT rowid FROM fts_segment WHERE rowid NOT IN "
                                        "(SELECT id FROM codes_segment)",
    "link to a missing segment": "SELECT id FROM links WHERE earlier_id NOT IN (SELECT id FROM segments) "
                                 "OR later_id NOT IN (SELECT id FROM segments)",
    "link decision of a missing segment": "SELECT segment_id FROM link_log "
                                          "WHERE segment_id NOT IN (SELECT id FROM segments)",
    "summary coverage of a missing summary": "SELECT summary_id FROM summary_sessions "
                                             "WHERE summary_id NOT IN (SELECT id FROM summaries)",
    "two current summaries of one key": "SELECT kind, key FROM summaries WHERE status = 'current' "
                                        "GROUP BY kind, key HAVING COUNT(*) > 1",
    "clip of a missing turn": "SELECT id FROM audio_clips WHERE turn_id IS NOT NULL "
                              "AND turn_id NOT IN (SELECT id FROM turns)",
    "turn imported twice": "SELECT session_id, external_id FROM turns WHERE external_id IS NOT NULL "
                           "GROUP BY session_id, external_id HAVING COUNT(*) > 1",
    "session imported twice": "SELECT external_id FROM sessions WHERE external_id IS NOT NULL "
                              "GROUP BY external_id HAVING COUNT(*) > 1",
    "turn count of a session off": "SELECT id FROM sessions s WHERE turn_count != "
                                   "(SELECT COUNT(*) FROM turns t WHERE t.session_id = s.id)",
}
# After the next run has finished the work, these must hold too.
FINISHED = {
    "answer left streaming": "SELECT id FROM turns WHERE status = 'streaming'",
    "finished turn not indexed": "SELECT id FROM turns WHERE status != 'streaming' AND role != 'system' "
                                 "AND id NOT IN (SELECT id FROM codes_turn)",
}


def open_db(path: Path):
    from sqlite_utils.utils import sqlite3
    import sqlite_vec

    conn = sqlite3.connect(str(path))
    conn.enable_load_extension(True)
    sqlite_vec.load(conn)
    return conn


def check(db: Path, finished: bool = False) -> list[str]:
    """What is wrong with the database at `db` (empty: nothing)."""
    if not db.exists():
        return []
    conn = open_db(db)
    try:
        problems = []
        ok = conn.execute("PRAGMA integrity_check").fetchone()[0]
        if ok != "ok":
            problems.append(f"integrity_check: {ok}")
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "turns" not in tables:
            return problems
        for name, sql in {**ORPHANS, **(FINISHED if finished else {})}.items():
            rows = conn.execute(sql).fetchall()
            if rows:
                problems.append(f"{name}: {len(rows)}")
        for (path,) in conn.execute("SELECT path FROM audio_clips").fetchall():
            if not Path(path).exists():
                problems.append(f"clip file missing: {path}")
        return problems
    finally:
        conn.close()


def orphan_files(db: Path) -> int:
    """Clip files beside the database that no clip row names (a kill between writing and committing)."""
    clips = db.with_name(db.stem + "-clips")
    if not clips.exists() or not db.exists():
        return 0
    conn = open_db(db)
    try:
        named = {r[0] for r in conn.execute("SELECT path FROM audio_clips")}
    finally:
        conn.close()
    return sum(1 for p in clips.rglob("*") if p.is_file() and str(p) not in named)


def state(db: Path) -> dict:
    """The end state, by content (ids may differ between runs): sessions, turns, what is indexed,
    the segments as groups of turns, links, current summaries and clips."""
    conn = open_db(db)
    try:
        skey = {sid: f"{src}:{ext or title}" for sid, src, ext, title in
                conn.execute("SELECT id, source, external_id, title FROM sessions")}
        tkey = {tid: (skey[sid], created, role, text[:60]) for tid, sid, created, role, text in
                conn.execute("SELECT id, session_id, created_at, role, text FROM turns")}
        turns = sorted(tkey.values())
        indexed = sorted(tkey[i] for (i,) in conn.execute("SELECT id FROM codes_turn") if i in tkey)
        members: dict[int, list] = {}
        for seg, tid in conn.execute("SELECT segment_id, turn_id FROM segment_turns ORDER BY segment_id, position"):
            members.setdefault(seg, []).append(tkey.get(tid))
        status = dict(conn.execute("SELECT id, status FROM segments"))
        segments = sorted((status.get(s), tuple(m)) for s, m in members.items())
        first = {s: m[0] for s, m in members.items()}
        links = sorted((first.get(a), first.get(b)) for a, b in conn.execute("SELECT earlier_id, later_id FROM links"))
        summaries = sorted(k for (k,) in conn.execute("SELECT kind FROM summaries WHERE status = 'current'"))
        clips = sorted((s, t[:60] if t else "") for s, t in conn.execute(
            "SELECT c.started_at, t.text FROM audio_clips c LEFT JOIN turns t ON t.id = c.turn_id"))
        return {"sessions": sorted(skey.values()), "turns": turns, "indexed": indexed, "segments": segments,
                "links": links, "summaries": summaries, "clips": clips}
    finally:
        conn.close()


def landed(db: Path) -> dict:
    """Where a kill landed: how much of the work was in the database."""
    if not db.exists():
        return {"database": 0}
    conn = open_db(db)
    try:
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'turns'").fetchone():
            return {"database": 1, "schema": 0}
        q = {"turns": "SELECT COUNT(*) FROM turns", "streaming": "SELECT COUNT(*) FROM turns WHERE status = 'streaming'",
             "indexed": "SELECT COUNT(*) FROM codes_turn", "segments": "SELECT COUNT(*) FROM segments",
             "links": "SELECT COUNT(*) FROM link_log", "summaries": "SELECT COUNT(*) FROM summaries",
             "clips": "SELECT COUNT(*) FROM audio_clips"}
        return {k: conn.execute(v).fetchone()[0] for k, v in q.items()}
    except Exception as e:   # noqa: BLE001 - a database too damaged to count is reported as such
        return {"error": str(e)}
    finally:
        conn.close()


def differences(a: dict, b: dict) -> list[str]:
    return [f"{k}: {len(a.get(k, []))} vs {len(b.get(k, []))}" if len(a.get(k, [])) != len(b.get(k, []))
            else f"{k}: same count, different content" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


@dataclass
class Operation:
    """A command to kill. `prepare(work)` lays out the database and inputs in the folder `work` and
    returns the argv after `assistant --db DB`; `acknowledged(stdout, stderr)` is what the user was told
    is stored (user turn texts, or the number of sessions an import reported); `compare` says whether
    the end state is compared with an uninterrupted run's (an answer cut off stays cut off)."""

    name: str
    prepare: Callable[[Path], list[str]]
    acknowledged: Callable[[str, str], list[str]] = lambda out, err: []
    finish: Callable[[list[str]], list[str]] | None = None   # the next run (a CLI command); default: the same
    compare: bool = True
    driver: list[str] | None = None      # a script to run instead of the CLI (the chat through its pilot)
    after_kill: Callable[[Path, str, str], list[str]] | None = None   # more checks right after the kill


@dataclass
class Kill:
    operation: str
    at: float                 # seconds after the start
    of: float                 # seconds an uninterrupted run takes
    exited: bool              # the command ended by itself before the kill
    problems: list[str] = field(default_factory=list)
    after_finish: list[str] = field(default_factory=list)
    same_end_state: bool | None = None
    orphan_files: int = 0
    missing_acknowledged: list[str] = field(default_factory=list)
    landed: dict = field(default_factory=dict)   # what the database held right after the kill


def env_for(home: Path) -> dict:
    env = dict(os.environ)
    for k in ("ASSISTANT_DB",):
        env.pop(k, None)
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), XDG_DATA_HOME=str(home / ".local/share"),
               XDG_CACHE_HOME=str(home / ".cache"), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               PYTHONPATH=str(ROOT), TOKENIZERS_PARALLELISM="false")
    return env


def command(op: Operation, db: Path, args: list[str]) -> list[str]:
    if op.driver is not None:
        return [sys.executable, *op.driver, str(db), *args]
    return cli(db, args)


def cli(db: Path, args: list[str]) -> list[str]:
    return [sys.executable, "-m", "assistant.cli", "--db", str(db), *args]


def finish_command(op: Operation, db: Path, args: list[str]) -> list[str]:
    return cli(db, op.finish(args)) if op.finish else command(op, db, args)


def run(cmd: list[str], env: dict, cwd: Path, kill_at: float | None = None, timeout: float = 900):
    """(stdout, stderr, seconds, exited by itself)."""
    out_f, err_f = open(cwd / "stdout", "w+"), open(cwd / "stderr", "w+")
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out_f, stderr=err_f, start_new_session=True)
    exited = True
    try:
        if kill_at is None:
            p.wait(timeout)
        else:
            try:
                p.wait(kill_at)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
                exited = False
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    seconds = time.monotonic() - t0
    out_f.seek(0), err_f.seek(0)
    out, err = out_f.read(), err_f.read()
    out_f.close(), err_f.close()
    if kill_at is None and p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[2:])} failed ({p.returncode}): {err[-2000:]}")
    return out, err, seconds, exited


def user_turns(db: Path) -> set[str]:
    if not db.exists():
        return set()
    conn = open_db(db)
    try:
        return {r[0] for r in conn.execute("SELECT text FROM turns WHERE role = 'user'")}
    except Exception:
        return set()
    finally:
        conn.close()


def reference(op: Operation, work: Path, home: Path) -> tuple[dict, float]:
    """An uninterrupted run (and its next run): the end state and how long the command took."""
    work.mkdir(parents=True, exist_ok=True)
    args = op.prepare(work)
    db = work / "a.db"
    env = env_for(home)
    _, _, seconds, _ = run(command(op, db, args), env, work)
    run(finish_command(op, db, args), env, work)
    problems = check(db, finished=True)
    if problems:
        raise RuntimeError(f"{op.name}: an uninterrupted run leaves {problems}")
    return state(db), seconds


def kill_once(op: Operation, work: Path, home: Path, at: float, of: float, ref: dict) -> Kill:
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    args = op.prepare(work)
    db = work / "a.db"
    env = env_for(home)
    out, err, _, exited = run(command(op, db, args), env, work, kill_at=at)
    k = Kill(op.name, round(at, 2), round(of, 2), exited)
    k.problems = check(db)
    k.landed = landed(db)
    present = user_turns(db)
    k.missing_acknowledged = [t for t in op.acknowledged(out, err) if t not in present]
    if op.after_kill is not None:
        k.problems += op.after_kill(db, out, err)
    run(finish_command(op, db, args), env, work)
    k.after_finish = check(db, finished=True)
    k.missing_acknowledged += [t for t in op.acknowledged(out, err) if t not in user_turns(db)]
    k.orphan_files = orphan_files(db)
    if op.compare:
        got = state(db)
        k.same_end_state = got == ref
        if not k.same_end_state:
            k.after_finish.append("end state differs: " + "; ".join(differences(got, ref)))
    return k


def kill_points(seed: int, n: int, of: float) -> list[float]:
    """n moments between 2% and 100% of `of` seconds, uniform, seeded."""
    rng = random.Random(seed)
    return [round(rng.uniform(0.02, 1.0) * of, 2) for _ in range(n)]


def summarize(kills: list[Kill]) -> dict:
    by: dict[str, dict] = {}
    for k in kills:
        row = by.setdefault(k.operation, {"kill points": 0, "killed while running": 0, "failures": 0,
                                          "same end state": 0, "compared": 0, "orphan files": 0})
        row["kill points"] += 1
        row["killed while running"] += int(not k.exited)
        bad = bool(k.problems or k.after_finish or k.missing_acknowledged)
        row["failures"] += int(bad)
        row["orphan files"] += k.orphan_files
        if k.same_end_state is not None:
            row["compared"] += 1
            row["same end state"] += int(k.same_end_state)
    return by


def save(kills: list[Kill], path: Path) -> None:
    path.write_text(json.dumps([k.__dict__ for k in kills], indent=1))
