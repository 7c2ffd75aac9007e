"""The commands the crash harness kills, with their inputs: `ask` (SmolLM2), `import jsonl`,
`consolidate`, `listen --file` (espeak-ng speech), the chat through the Textual pilot, `forget` (a phrase,
on an indexed and segmented memory) and `import backup` (a restore into a new database)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from .harness import ROOT, Operation, cli, env_for, open_db

TOPICS = [
    ("garden", "I want to plant tomatoes and basil in the back garden", "Tomatoes like sun; plant basil beside them"),
    ("cello", "I started cello lessons with a teacher called Ana", "Practise twenty minutes a day at first"),
    ("move", "We are moving to Lisbon in September for my new job", "Start with the lease and the school"),
    ("car", "The car needs new brakes before the trip to the coast", "Book the garage this week"),
    ("bread", "My sourdough starter smells like nail polish", "Feed it twice a day and keep it warm"),
    ("dentist", "Remind me that the dentist moved my visit to June", "Noted: the dentist visit is in June"),
    ("budget", "The kitchen budget is eight thousand euros at most", "Keep a tenth aside for surprises"),
    ("running", "I ran ten kilometres in fifty eight minutes today", "That is a good pace for a first ten"),
]
QUESTION = "What did I say about the garden and the tomatoes?"
SPEECH = ["The plumber will come on Thursday at four.", "Maria said the budget meeting moved to Friday.",
          "Please buy milk, eggs and coffee on the way home.", "The train to Porto leaves at nine fifteen."]


def write_jsonl(path: Path, sessions: int, turns: int) -> list[str]:
    """A JSONL import of `sessions` sessions of `turns` turns; returns the user texts."""
    users, lines = [], []
    for s in range(sessions):
        name, ask, reply = TOPICS[s % len(TOPICS)]
        for t in range(turns):
            role = "user" if t % 2 == 0 else "assistant"
            text = f"{ask} (note {s}.{t})" if role == "user" else f"{reply} (reply {s}.{t})"
            if role == "user":
                users.append(text)
            lines.append(json.dumps({"session": f"{name}-{s}", "role": role, "text": text,
                                     "time": f"2026-0{1 + s % 9}-{10 + s % 18:02d}T09:{t:02d}:00Z"}))
    path.write_text("\n".join(lines) + "\n")
    return users


def make_speech(path: Path) -> Path:
    from tests.test_audio_speech import silence, speak, write_wav

    parts = []
    for i, text in enumerate(SPEECH):
        parts += [speak(text, path.parent), silence(1.5)]
    return write_wav(path, np.concatenate(parts))


def _cached(base: Path, name: str, build) -> Path:
    """A prepared input, built once per run of the harness and copied into each kill's folder."""
    path = base / "cache" / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        build(path)
    return path


def _copy_db(src: Path, work: Path) -> None:
    for f in src.parent.glob(src.name + "*"):
        shutil.copy2(f, work / f.name.replace(src.name, "a.db"))


def operations(base: Path, home: Path) -> dict[str, Operation]:
    """Every operation, with its inputs cached under `base`."""

    def imported(out: str, err: str) -> list[str]:
        return IMPORT_USERS if "Imported" in err else []

    def all_or_nothing(db: Path, out: str, err: str) -> list[str]:
        if not db.exists():
            return []
        conn = open_db(db)
        try:
            n = conn.execute("SELECT COUNT(*) FROM turns").fetchone()[0] if conn.execute(
                "SELECT 1 FROM sqlite_master WHERE name = 'turns'").fetchone() else 0
        finally:
            conn.close()
        return [] if n in (0, IMPORT_TURNS) else [f"import half done: {n} of {IMPORT_TURNS} turns"]

    def prepare_import(work: Path) -> list[str]:
        src = _cached(base, "import.jsonl", lambda p: write_jsonl(p, 16, 6))
        shutil.copy(src, work / "import.jsonl")
        return ["import", "jsonl", str(work / "import.jsonl"), "--segmenter", "fast"]

    IMPORT_USERS = [t for t in write_jsonl(base / "users.jsonl", 16, 6)]
    IMPORT_TURNS = 16 * 6

    def imported_memory(path: Path, sessions: int, turns: int, segmenter: str) -> None:
        jsonl = path.with_suffix(".jsonl")
        write_jsonl(jsonl, sessions, turns)
        subprocess.run(cli(path, ["import", "jsonl", str(jsonl), "--segmenter", segmenter]), cwd=ROOT,
                       env=env_for(home), check=True, capture_output=True)
        conn = open_db(path)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()

    def small_memory(path: Path) -> None:
        imported_memory(path, 6, 4, "none")

    def prepare_consolidate(work: Path) -> list[str]:
        _copy_db(_cached(base, "memory.db", small_memory), work)
        return ["--model", "smollm2", "consolidate"]

    def prepare_ask(work: Path) -> list[str]:
        _copy_db(_cached(base, "memory.db", small_memory), work)
        return ["--model", "smollm2", "ask", "--max-tokens", "24", QUESTION]

    def asked(out: str, err: str) -> list[str]:
        return [QUESTION] if out.strip() else []     # the first word printed: the question is stored

    def prepare_listen(work: Path) -> list[str]:
        wav = _cached(base, "speech.wav", make_speech)
        shutil.copy(wav, work / "speech.wav")
        return ["listen", "--file", str(work / "speech.wav"), "--started-at", "2026-03-02T10:00:00+00:00"]

    def heard(out: str, err: str) -> list[str]:
        return [line.split("] ", 1)[1] for line in out.splitlines() if line.startswith("[") and "] " in line]

    def prepare_chat(work: Path) -> list[str]:
        _copy_db(_cached(base, "memory.db", small_memory), work)
        return [QUESTION]

    def sent(out: str, err: str) -> list[str]:
        return [QUESTION] if "STORED" in out else []

    # Big enough that forgetting and restoring take a while: the kills must land inside the work, not only
    # while Python starts.
    BIG = (400, 6)

    def segmented_memory(path: Path) -> None:
        imported_memory(path, *BIG, "fast")

    def prepare_forget(work: Path) -> list[str]:
        _copy_db(_cached(base, "segmented.db", segmented_memory), work)
        return ["forget", "--yes", "note"]      # every user turn ("... (note 3.2)"): a long transaction

    def forgot_all_or_nothing(db: Path, out: str, err: str) -> list[str]:
        conn = open_db(db)
        try:
            n = conn.execute("SELECT COUNT(*) FROM turns WHERE text LIKE '%(note %'").fetchone()[0]
        finally:
            conn.close()
        told = "Forgot" in out + err
        if told and n:
            return [f"said forgotten, but {n} turns with the phrase are still there"]
        return [] if n in (0, FORGET_TURNS) else [f"forget half done: {n} of {FORGET_TURNS} turns left"]

    FORGET_TURNS = sum("(note " in t for t in write_jsonl(base / "forget-users.jsonl", *BIG))

    def backup_of_memory(path: Path) -> None:
        db = _cached(base, "segmented.db", segmented_memory)
        subprocess.run(cli(db, ["export", "backup", str(path)]), cwd=ROOT, env=env_for(home), check=True,
                       capture_output=True)

    def prepare_restore(work: Path) -> list[str]:
        src = _cached(base, "memory-backup.zip", backup_of_memory)
        shutil.copy(src, work / "backup.zip")
        return [str(work / "backup.zip")]

    RESTORE_USERS = write_jsonl(base / "restore-users.jsonl", *BIG)

    def restored(out: str, err: str) -> list[str]:
        return RESTORE_USERS if "Restored" in err + out else []

    search = lambda args: ["memory", "search", "garden"]   # noqa: E731  (the next start: repairs, indexes)
    return {
        "import": Operation("import", prepare_import, imported, after_kill=all_or_nothing),
        "consolidate": Operation("consolidate", prepare_consolidate),
        "ask": Operation("ask", prepare_ask, asked, finish=search, compare=False),
        "listen": Operation("listen", prepare_listen, heard),
        "chat": Operation("chat", prepare_chat, sent, finish=search, compare=False,
                          driver=["-m", "tests.crash.chat_driver"]),
        "forget": Operation("forget", prepare_forget, after_kill=forgot_all_or_nothing),
        "restore": Operation("restore", prepare_restore, restored, driver=["-m", "tests.crash.restore_driver"]),
    }


if __name__ == "__main__":   # build the inputs only (python -m tests.crash.operations DIR)
    operations(Path(sys.argv[1]), Path(sys.argv[1]) / "home")
