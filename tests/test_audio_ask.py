"""End to end: a recording ingested with `assistant listen --file` is what `assistant ask "what did I
miss ..."` is answered from (real Whisper, real embedder, real SQLite, real SmolLM2)."""
import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest

from memory.store import Store
from tests.test_audio_speech import needs_espeak, speak_file

pytestmark = [pytest.mark.real, needs_espeak]


def cli(*args):
    return subprocess.run([sys.executable, "-m", "assistant.cli", *args], capture_output=True, text=True,
                          timeout=600)


def test_listen_file_then_ask_what_did_i_miss(tmp_path):
    db = str(tmp_path / "a.db")
    wav = speak_file("The plumber will come on Friday to fix the kitchen sink.", tmp_path / "rec.wav")
    heard = (datetime.now(timezone.utc) - timedelta(minutes=25)).isoformat(timespec="seconds")
    r = cli("--db", db, "listen", "--file", str(wav), "--started-at", heard)
    assert r.returncode == 0, r.stderr
    r = cli("--db", db, "--model", "smollm2", "ask", "What did I miss in the last hour?", "--show-memories",
            "--max-tokens", "48")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip()
    # the clip was retrieved and cited with its time, and the transcript went into the prompt
    assert "memory audio" in r.stderr and "plumber" in r.stderr.lower()
    store = Store(db)
    clip = store.db.execute("SELECT path, started_at FROM audio_clips").fetchone()
    assert clip and clip[1].startswith(heard[:16])
    asked = store.db.execute("SELECT text FROM turns WHERE source='chat' AND role='user'").fetchone()
    assert asked[0] == "What did I miss in the last hour?"
