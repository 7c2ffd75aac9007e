"""`assistant export transcripts`: the conversations as they were, who said what and when, through the
real CLI on a real SQLite file."""
from __future__ import annotations

import json

from tests.test_journal import run, sample, utc  # noqa: F401  (fixtures)


def test_markdown_transcripts_say_who_said_what_and_when(sample):  # noqa: F811
    db, _ = sample
    md = run(db, "export", "transcripts")
    assert md.startswith("# Conversations\n")
    assert "_Monday 3 March 2025, 09:00 · session 1_" in md
    assert "**You** (09:00, turn 1): My sister Anna has a dentist appointment on Friday" in md
    assert "**Assistant** (09:01, turn 2): Noted. I am allergic to penicillin too" in md
    assert "**Heard in the room** (14:05, turn 9): The budget meeting moved to Thursday afternoon." in md
    assert "**Caroline** (20:00, turn 11): My son Leo turned 7 yesterday." in md
    assert md.index("## Listening") < md.index("## Evening call")


def test_jsonl_transcripts_are_one_turn_a_line_and_respect_the_days(sample, tmp_path):  # noqa: F811
    db, _ = sample
    out = tmp_path / "t.jsonl"
    run(db, "export", "transcripts", "--format", "jsonl", "--output", str(out))
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 11
    assert rows[0]["who"] == "You" and rows[1]["who"] == "Assistant" and rows[1]["role"] == "assistant"
    heard = [r for r in rows if r["source"] == "audio"]
    assert heard[0]["who"] == "Heard in the room" and heard[0]["created_at"].startswith("2025-03-03T14:05")
    wed = run(db, "export", "transcripts", "--format", "jsonl", "--since", "2025-03-05")
    assert [json.loads(x)["text"] for x in wed.splitlines()][0] == "I decided to sell my car and cycle to work."
    none = run(db, "export", "transcripts", "--since", "2026-01-01")
    assert "No conversations in this period." in none
