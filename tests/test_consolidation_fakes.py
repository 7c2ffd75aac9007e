"""Helpers for the timeline, summary and consolidation tests: a schema-following fake model and a small
synthetic memory (sessions, final segments with indexed keys)."""
from __future__ import annotations

import json
import re

from memory.clock import to_iso
from tests.fakes import FakeEmbedder, FakeLLM

__test__ = False   # helpers, not tests

_WORDS = re.compile(r"[a-z]{4,}")


def rule_label(earlier: str, later: str) -> str:
    """Changed when the later text says 'now' or 'moved' about a shared word; SameTopic on two shared
    words; else None."""
    a, b = set(_WORDS.findall(earlier.lower())), set(_WORDS.findall(later.lower()))
    shared = a & b - {"caroline", "melanie", "user", "assistant", "memory"}
    if shared and ({"now", "moved", "instead", "anymore"} & set(later.lower().split())):
        return "Changed"
    if len(shared) >= 2:
        return "SameTopic"
    return "None"


class SchemaLLM(FakeLLM):
    """Answers the memory layer's calls from the prompt: label calls (schema {"p1": label, ...}) by
    `label(earlier text, newer text)`; plain calls (summaries, folds, roll-ups) with text made of the
    prompt's own lines."""

    def __init__(self, label=rule_label, fail_first: int = 0, **kw):
        super().__init__(**kw)
        self.label = label
        self.calls = 0
        self.schema_calls = 0
        self.fail_first = fail_first

    def complete(self, messages, schema=None, max_tokens=512) -> str:
        self.prompts.append(messages)
        self.calls += 1
        if self.fail_first > 0:
            self.fail_first -= 1
            raise ValueError("scripted failure")
        text = messages[-1]["content"]
        if schema is None:
            return self._plain(text)
        self.schema_calls += 1
        keys = list(schema.get("properties", {}))
        if keys == ["relation"]:     # one pair
            newer = re.search(r"^Newer \([^)]*\): (.*)$", text, re.M).group(1)
            earlier = re.search(r"^Earlier \([^)]*\): (.*)$", text, re.M).group(1)
            return json.dumps({"relation": self.label(earlier, newer)})
        return json.dumps(dict(zip(keys, self._labels(text, len(keys)))))

    # -- derived answers ---------------------------------------------------------------------------
    @staticmethod
    def _conversation(text: str) -> list[str]:
        block = text.split("Earlier memories:")[0].split("Tasks:")[0]
        return [l.strip() for l in block.splitlines() if ":" in l and not l.startswith(("Conversation", "Part"))]

    def _labels(self, text: str, n: int) -> list[str]:
        earlier = dict(re.findall(r"^\[([A-Z]+)\] (.*)$", text, re.M))
        parts: dict[str, str] = {}
        for m in re.finditer(r"^Part (\d+)[^\n]*:\n((?:  .*\n?)+)", text, re.M):
            parts[m.group(1)] = m.group(2)
        pairs = re.findall(r"^p\d+: memory \[([A-Z]+)\] -> Part (\d+)$", text, re.M)
        labels = [self.label(earlier.get(a, ""), parts.get(p, "")) for a, p in pairs]
        return (labels + ["None"] * n)[:n]

    def _plain(self, text: str) -> str:
        if "Current memory of the conversations so far:" in text:
            prev = text.split("Current memory of the conversations so far:\n", 1)[1].split("\n\nNew conversation", 1)[0]
            new = re.findall(r"^- \[[^\]]*\] (.*)$", text, re.M)
            parts = ([] if prev.startswith("(nothing") else [prev]) + new
            return " | ".join(parts)
        if text.startswith("Summaries for"):
            return "Entry: " + " + ".join(re.findall(r"^- \[[^\]]*\] (.*)$", text, re.M))
        lines = self._conversation(text)
        return "Plain summary: " + "; ".join(l.split(":", 1)[1].strip() for l in lines[:2])


def day(d: int, month: int = 5, hour: int = 10) -> str:
    from datetime import datetime, timezone

    return to_iso(datetime(2023, month, d, hour, 0, tzinfo=timezone.utc))


def add_session(store, when: str, lines: list[tuple[str, str]], title: str | None = None) -> int:
    """A session of (speaker, text) turns a minute apart; the first speaker is the user."""
    from datetime import timedelta

    from memory.clock import parse

    sid = store.new_session(title=title, source="import", started_at=when)
    first = lines[0][0]
    for i, (who, text) in enumerate(lines):
        store.add_turn(sid, "user" if who == first else "assistant", text, source="import",
                       speaker=who, created_at=to_iso(parse(when) + timedelta(minutes=i)))
    return sid


def add_segment(store, session_id: int, turn_ids: list[int] | None = None, topic: str = "",
                embedder=None) -> int:
    """A final segment over the given turns (default: all of the session) with its key indexed."""
    from memory.index import HybridIndex, IndexRow
    from memory.segments import SegmentStore, render

    turns = store.turns(session_id)
    if turn_ids is not None:
        turns = [t for t in turns if t.id in set(turn_ids)]
    seg = SegmentStore(store)
    key = f"{topic}. {render(turns)}"
    vec = (embedder or FakeEmbedder()).embed([key])[0]
    with store.db.conn:
        sid = seg.add(session_id, turns, topic=topic, method="test", key=key)
        HybridIndex(store, "segment").add([IndexRow(sid, vec, key, turns[0].created_at, turns[0].source,
                                                    session_id)], commit=False)
    return sid


def story(store) -> dict[str, int]:
    """Three sessions about a job and a dog: the job changes in the third."""
    s1 = add_session(store, day(8), [("Caroline", "I started a new job as a nurse at the city hospital."),
                                     ("Melanie", "Congratulations on the nurse job at the hospital!")])
    s2 = add_session(store, day(20), [("Caroline", "We adopted a puppy named Rex, a small beagle."),
                                      ("Melanie", "A beagle puppy, how lovely. Rex is a great name.")])
    s3 = add_session(store, day(20, 6), [("Caroline", "I quit the hospital job, I now work as a teacher at the school."),
                                         ("Melanie", "A teacher now instead of a nurse at the hospital, big change!")])
    return {"s1": s1, "s2": s2, "s3": s3}
