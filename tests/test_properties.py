"""Properties that hold for every input, checked with hypothesis on generated ones: the segmenter puts
every turn in exactly one segment (also when the chat's live segmentation and the final one take turns),
named days and time windows are well-formed windows inside what they may cover, and the importers
either import a file exactly (and a second time add nothing) or refuse it with one sentence.

The suite runs a few dozen examples per property; `python -m tests.fuzz` runs thousands (profile
"fuzz") and counts them (docs/reliability.md)."""
from __future__ import annotations

import atexit
import json
import os
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audio.windows import away_window, parse_window
from memory.bank import IncrementalSegmenter, SegmentBank, segment_pending
from memory.errors import ImportFormatError
from memory.importers import PARSERS, write
from memory.store import Store
from memory.when import talk_window
from tests.fakes import FakeEmbedder

settings.register_profile("default", max_examples=25, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("fuzz", max_examples=2000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

TRIED: dict[str, int] = {}


def tried(name: str) -> None:
    TRIED[name] = TRIED.get(name, 0) + 1


@atexit.register
def _report() -> None:   # the fuzz runner reads how many inputs each property was given
    out = os.environ.get("FUZZ_COUNTS")
    if out and TRIED:
        Path(out).write_text(json.dumps(TRIED, indent=1))


EMBEDDER = FakeEmbedder()
WORDS = ["garden", "tomatoes", "cello", "lesson", "Lisbon", "move", "budget", "kitchen", "dentist", "June",
         "bread", "starter", "car", "brakes", "run", "ten", "kilometres", "the", "and", "I", "we"]
sentence = st.lists(st.sampled_from(WORDS), min_size=1, max_size=12).map(" ".join)
turn = st.tuples(st.sampled_from(["user", "assistant", "user", "system"]), sentence,
                 st.sampled_from(["complete", "complete", "interrupted", "streaming"]))


def fresh_store() -> tuple[Store, tempfile.TemporaryDirectory]:
    d = tempfile.TemporaryDirectory()
    return Store(Path(d.name) / "p.db"), d


def segment_counts(store: Store) -> dict[int, int]:
    """turn id -> how many segments hold it, for every turn segmentation is meant to cover."""
    return dict(store.db.execute(
        "SELECT t.id, COUNT(st.turn_id) FROM turns t LEFT JOIN segment_turns st ON st.turn_id = t.id "
        "WHERE t.status != 'streaming' AND t.role != 'system' GROUP BY t.id").fetchall())


# -- the segmenter ---------------------------------------------------------------------------------------
@given(sessions=st.lists(st.lists(turn, min_size=1, max_size=14), min_size=1, max_size=4),
       window=st.integers(1, 3), max_size=st.integers(1, 5))
def test_final_segmentation_puts_every_turn_in_exactly_one_contiguous_segment(sessions, window, max_size):
    tried("segmenter: final")
    store, d = fresh_store()
    try:
        for s in sessions:
            sid = store.new_session("s")
            for role, text, status in s:
                store.add_turn(sid, role, text, status=status)
        segment_pending(store, EMBEDDER, mode="fast")
        counts = segment_counts(store)
        assert all(n == 1 for n in counts.values()), counts
        for seg_id, in store.db.execute("SELECT id FROM segments").fetchall():
            members = [r[0] for r in store.db.execute(
                "SELECT turn_id FROM segment_turns WHERE segment_id = ? ORDER BY position", [seg_id])]
            session_turns = [r[0] for r in store.db.execute(
                "SELECT id FROM turns WHERE session_id = (SELECT session_id FROM segments WHERE id = ?) "
                "AND status != 'streaming' AND role != 'system' ORDER BY id", [seg_id])]
            i = session_turns.index(members[0])
            assert session_turns[i:i + len(members)] == members      # contiguous, in order
    finally:
        store.db.conn.close()
        d.cleanup()


@given(steps=st.lists(st.one_of(st.tuples(st.just("say"), sentence, sentence),
                                st.tuples(st.just("live")), st.tuples(st.just("final"))), min_size=1, max_size=20))
def test_live_and_final_segmentation_taking_turns_never_put_a_turn_in_two_segments(steps):
    tried("segmenter: live and final")
    store, d = fresh_store()
    try:
        sid = store.new_session("chat")
        live = IncrementalSegmenter(SegmentBank(store, EMBEDDER))
        for step in steps:
            if step[0] == "say":
                store.add_turn(sid, "user", step[1])
                store.add_turn(sid, "assistant", step[2])
            elif step[0] == "live":
                live.update(sid)
            else:
                segment_pending(store, EMBEDDER, mode="fast")
            assert all(n <= 1 for n in segment_counts(store).values())
        segment_pending(store, EMBEDDER, mode="fast")
        counts = segment_counts(store)
        assert all(n == 1 for n in counts.values()), counts
    finally:
        store.db.conn.close()
        d.cleanup()


# -- named days and time windows -----------------------------------------------------------------------
MONTH_NAMES = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
               "October", "November", "December", "Oct", "sept"]
phrase = st.one_of(
    st.builds(lambda n, u: f"{n} {u} ago", st.sampled_from(["1", "2", "3", "a", "two", "a few", "10"]),
              st.sampled_from(["days", "weeks", "months", "day", "week", "month"])),
    st.builds(lambda r, u: f"{r} {u}", st.sampled_from(["last", "this", "past"]),
              st.sampled_from(["week", "weekend", "month", "year", "monday", "friday", "sunday"])),
    st.builds(lambda d, m, y: f"on {d} {m} {y}", st.integers(1, 31), st.sampled_from(MONTH_NAMES),
              st.sampled_from(["", "2021", "2023", "2024", "2026"])),
    st.builds(lambda s, d, m: f"the {s} before {d} {m}", st.sampled_from(["week", "weekend", "day", "month",
                                                                          "tuesday"]),
              st.integers(1, 31), st.sampled_from(MONTH_NAMES)),
    st.builds(lambda p, m, y: f"in {p}{m} {y}", st.sampled_from(["", "early ", "mid ", "late ", "the end of "]),
              st.sampled_from(MONTH_NAMES), st.sampled_from(["", "2022", "2025"])),
    st.sampled_from(["today", "yesterday", "the day before yesterday", "on Tuesday", "in 2023"]),
    st.text(max_size=40),
)
zones = st.sampled_from([timezone.utc, timezone(timedelta(hours=-8)), timezone(timedelta(hours=5, minutes=30)),
                         timezone(timedelta(hours=14)), timezone(timedelta(hours=-12))])
moments = st.builds(lambda dt, tz: dt.replace(tzinfo=tz),
                    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2037, 12, 31)), zones)


@given(before=st.text(max_size=20), said=phrase, after=st.text(max_size=20), now=moments)
def test_named_days_are_whole_days_that_end_by_tomorrow(before, said, after, now):
    tried("named days")
    text = f"{before} What did we say {said}? {after}"
    w = talk_window(text, now)
    if w is None:
        return
    assert w.start < w.end
    assert w.start.tzinfo is not None and w.start.utcoffset() == now.utcoffset()
    assert (w.start.hour, w.start.minute, w.start.second) == (0, 0, 0)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    assert w.end <= midnight + timedelta(days=1)
    assert w.phrase and w.phrase.lower() in text.lower()
    a, b = w.iso()
    assert a < b


clock = st.builds(lambda h, m, ap: f"{h}{':%02d' % m if m else ''}{ap}", st.integers(0, 23), st.sampled_from([0, 15, 30, 45]),
                  st.sampled_from(["", "am", "pm", " pm", " o'clock"]))
window_phrase = st.one_of(
    st.builds(lambda n, u: f"in the last {n} {u}", st.sampled_from(["", "2", "a few", "half an", "90", "ten"]),
              st.sampled_from(["minutes", "hours", "hour", "mins", "h", "seconds"])),
    st.builds(lambda a, b: f"between {a} and {b}", clock, clock),
    st.builds(lambda a: f"since {a}", clock),
    st.builds(lambda n, u: f"{n} {u} ago", st.sampled_from(["5", "an", "two", "30"]), st.sampled_from(["minutes", "hours"])),
    st.sampled_from(["this morning", "this afternoon", "this evening", "since yesterday", "today", "yesterday",
                     "since this morning", "from noon to midnight"]),
    st.text(max_size=40),
)


@given(said=window_phrase, now=moments)
def test_time_windows_end_by_now_and_never_start_after_they_end(said, now):
    tried("time windows")
    text = f"What did I miss {said}?"
    w = parse_window(text, now)
    if w is None:
        return
    assert w.start <= w.end <= now     # empty only when asked at the very moment it names ("since 0" at 0:00)
    assert w.phrase and w.phrase.lower() in text.lower()


@given(gaps=st.lists(st.integers(0, 6 * 3600), max_size=12), now=moments, min_gap=st.integers(60, 3600))
def test_away_runs_from_the_last_activity_before_the_latest_gap_to_now(gaps, now, min_gap):
    tried("away windows")
    acts, t = [], now
    for g in gaps:
        t -= timedelta(seconds=g)
        acts.append(t)
    w = away_window(acts, now, min_gap=timedelta(seconds=min_gap))
    assert w.end == now and w.start < now
    if w.kind == "away":
        assert w.start in acts
        later = [a for a in acts if w.start < a < now]
        marks = sorted(later) + [now]
        assert marks[0] - w.start >= timedelta(seconds=min_gap)
        assert all(b - a < timedelta(seconds=min_gap) for a, b in zip(marks, marks[1:]))


# -- importers --------------------------------------------------------------------------------------------
text = st.text(st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=80).filter(lambda s: s.strip())
line = st.fixed_dictionaries({
    "session": st.one_of(st.sampled_from(["a", "b", "c"]), st.integers(0, 3)),
    "role": st.sampled_from(["user", "assistant", "system"]),
    "text": text,
    "time": st.one_of(st.integers(0, 2_000_000_000),
                      st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2037, 1, 1))
                      .map(lambda d: d.isoformat() + "Z")),
}, optional={"speaker": st.sampled_from(["Sam", "Ana", "Léa"]), "title": text})


@given(lines=st.lists(line, min_size=1, max_size=25))
@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
def test_a_valid_jsonl_file_is_imported_exactly_and_a_second_time_adds_nothing(lines):
    tried("importer: valid jsonl")
    store, d = fresh_store()
    try:
        path = Path(d.name) / "in.jsonl"
        path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
        first = write(store, PARSERS["jsonl"](path))
        assert first.turns_new == len(lines)
        assert first.sessions_new == len({str(x["session"]) for x in lines})
        stored = sorted(r[0] for r in store.db.execute("SELECT text FROM turns"))
        assert stored == sorted(x["text"] for x in lines)
        again = write(store, PARSERS["jsonl"](path))
        assert again.turns_new == 0 and again.sessions_new == 0 and store.count("turns") == len(lines)
    finally:
        store.db.conn.close()
        d.cleanup()


def mutate(data: bytes, edits) -> bytes:
    b = bytearray(data)
    for kind, pos, value in edits:
        if not b:
            b = bytearray(value)
            continue
        i = pos % len(b)
        if kind == "flip":
            b[i] ^= value[0] or 1
        elif kind == "cut":
            del b[i:]
        elif kind == "insert":
            b[i:i] = value
        else:
            del b[i:i + len(value)]
    return bytes(b)


SEED = "".join(json.dumps({"session": s, "role": r, "text": t, "time": f"2024-05-0{i % 9 + 1}T09:00:00Z"}) + "\n"
               for i, (s, r, t) in enumerate([("a", "user", "I planted tomatoes"), ("a", "assistant", "Nice"),
                                              (7, "user", "Book the dentist"), ("b", "system", "note")])).encode()
CHATGPT = json.dumps([{"title": "T", "create_time": 1700000000, "current_node": "2", "mapping": {
    "1": {"id": "1", "parent": None, "children": ["2"], "message": {"author": {"role": "user"}, "create_time": 1700000000,
          "content": {"content_type": "text", "parts": ["Hello"]}}},
    "2": {"id": "2", "parent": "1", "children": [], "message": {"author": {"role": "assistant"}, "create_time": 1700000005,
          "content": {"content_type": "text", "parts": ["Hi"]}}}}}]).encode()
LOCOMO = json.dumps([{"sample_id": "x", "conversation": {"speaker_a": "A", "speaker_b": "B",
                     "session_1_date_time": "1:56 pm on 8 May, 2023",
                     "session_1": [{"speaker": "A", "dia_id": "D1:1", "text": "Hi B"},
                                   {"speaker": "B", "dia_id": "D1:2", "text": "Hello A"}]}}]).encode()
edit = st.tuples(st.sampled_from(["flip", "cut", "insert", "delete"]), st.integers(0, 10_000),
                 st.binary(min_size=1, max_size=8))


@given(kind_seed=st.sampled_from([("jsonl", SEED), ("chatgpt", CHATGPT), ("locomo", LOCOMO)]),
       edits=st.lists(edit, min_size=1, max_size=6))
def test_a_damaged_file_is_imported_or_refused_with_one_sentence_never_a_crash(kind_seed, edits):
    kind, seed = kind_seed
    tried(f"importer fuzz: {kind}")
    data = mutate(seed, edits)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "in"
        path.write_bytes(data)
        try:
            sessions = PARSERS[kind](path)
        except ImportFormatError as e:
            message = str(e)
            assert message and "\n" not in message.strip() and "Traceback" not in message
            return
        assert sessions and all(s.turns for s in sessions)


def test_days_still_to_come_name_no_window():
    now = datetime(2000, 1, 1, tzinfo=timezone.utc)
    assert talk_window("What did we say in January 2001?", now) is None
    assert talk_window("What did we say on 3 March 2000?", now) is None
    assert talk_window("What did we say on 31 December 1999?", now) is not None
