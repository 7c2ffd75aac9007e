"""Hybrid index (dense + BM25, fused): exact filters on both sides, deletions, the lexical budget."""
import numpy as np
import pytest

from memory.index import HybridIndex, IndexRow, fuse, query_words
from memory.store import Store

WORDS = ("garden tomato basil recipe pasta hiking trail mountain guitar chord concert piano "
         "budget invoice taxes doctor allergy medicine puppy walk park").split()


def bank(n=400, seed=0):
    """Units with texts of topic words, vectors near their topic, time in id order except a few
    back-dated ones (as imported conversations are)."""
    rng = np.random.default_rng(seed)
    centers = np.random.default_rng(77).standard_normal((len(WORDS), 384)).astype(np.float32)
    rows = []
    for i in range(n):
        t = int(rng.integers(0, len(WORDS)))
        words = [WORDS[t]] * 2 + list(rng.choice(WORDS, 4))
        v = centers[t] + rng.standard_normal(384).astype(np.float32)
        day = 1 + (i * 27) // n if i % 50 else 1 + i % 5          # every 50th is back-dated
        rows.append(IndexRow(i + 1, v / np.linalg.norm(v), " ".join(words),
                             f"2026-03-{day:02d}T10:00:00.000+00:00", ("chat", "audio")[i % 2], i // 10))
    return rows


@pytest.fixture
def hybrid(store):
    h = HybridIndex(store, "turn")
    rows = bank()
    h.add(rows)
    return h, rows


def test_query_words_drop_stop_words():
    assert query_words("What did we say about the Garden and the garden?") == ["say", "about", "garden"]


def test_hybrid_finds_by_either_side(hybrid):
    h, rows = hybrid
    r = rows[123]
    hits = h.search(r.text, r.vector, 5)
    assert hits[0].id == 124 and hits[0].dense is not None and hits[0].bm25 is not None
    assert [x.score for x in hits] == sorted((x.score for x in hits), reverse=True)
    dense_only = h.search("zzz", r.vector, 5)
    assert dense_only[0].id == 124 and dense_only[0].bm25 is None
    lexical = h.search("tomato", None, 5, mode="bm25")
    assert lexical and all("tomato" in rows[x.id - 1].text for x in lexical)


@pytest.mark.parametrize("filters", [
    dict(since="2026-03-10", until="2026-03-15"),
    dict(since="2026-03-02"),
    dict(until="2026-03-04"),
    dict(since="2026-03-01", until="2026-03-06", sources=["audio"]),
    dict(session_ids=[3, 4, 30]),
])
def test_filters_are_exact_on_both_sides(hybrid, filters):
    h, rows = hybrid

    def ok(r):
        return ((not filters.get("since") or r.created_at >= filters["since"])
                and (not filters.get("until") or r.created_at < filters["until"])
                and (not filters.get("sources") or r.source in filters["sources"])
                and (not filters.get("session_ids") or r.session_id in filters["session_ids"]))

    allowed = {r.id for r in rows if ok(r)}
    for word in ("tomato", "guitar", "park"):
        lex = h.bm25(word, 1000, **filters)
        expected = {r.id for r in rows if ok(r) and word in r.text.split()}
        assert {i for i, _ in lex} == expected  # every match in the window, back-dated ones too
    for r in rows[::37]:
        hits = h.search(r.text, r.vector, 10, **filters)
        assert {x.id for x in hits} <= allowed
        assert len(hits) == min(10, len(allowed))


def test_deleted_units_are_never_recalled(hybrid, store):
    h, rows = hybrid
    r = rows[200]
    assert h.search(r.text, r.vector, 3)[0].id == 201
    h.remove([201])
    for mode in ("hybrid", "dense", "bm25"):
        assert 201 not in [x.id for x in h.search(r.text, r.vector, 400, mode=mode)]
    assert store.db.execute("SELECT COUNT(*) FROM fts_turn WHERE rowid = 201").fetchone()[0] == 0
    # A removal inside the caller's transaction is invisible to recall at once, and rolls back.
    store.db.conn.execute("BEGIN")
    h.remove([202])
    assert 202 not in [x.id for x in h.search(rows[201].text, rows[201].vector, 400)]
    store.db.conn.rollback()
    assert h.search(rows[201].text, rows[201].vector, 3)[0].id == 202


def test_lexical_budget_keeps_the_rarest_words(store):
    h = HybridIndex(store, "turn", lexical_budget=40)
    rng = np.random.default_rng(1)
    rows = []
    for i in range(300):
        text = "common filler " + ("rareword" if i % 100 == 0 else "") + (" midword" if i % 10 == 0 else "")
        v = rng.standard_normal(384).astype(np.float32)
        rows.append(IndexRow(i + 1, v, text, f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}", "chat", 1))
    h.add(rows)
    assert h.informative(["common", "rareword", "midword"]) == ["rareword", "midword"]
    assert h.informative(["common", "filler"]) == ["common"]
    assert h.informative(["nothing", "common"]) == ["nothing", "common"]  # one word that occurs stays
    top = [i for i, _ in h.bm25("common rareword midword", 5)]
    assert set(top[:3]) == {1, 101, 201}
    # Without a budget the same query ranks the same units first.
    full = HybridIndex(store, "turn", lexical_budget=0, max_df=0)
    assert [i for i, _ in full.bm25("common rareword midword", 3)] == top[:3]


def test_another_connection_sees_new_units(hybrid, store):
    h, rows = hybrid
    other = Store(store.path)
    try:
        h2 = HybridIndex(other, "turn")
        v = np.ones(384, np.float32) / np.sqrt(384)
        h.search("x", v, 1)
        h2.add([IndexRow(9999, v, "zeppelin voyage", "2026-04-01T00:00:00.000+00:00", "chat", 99)])
        hits = h.search("zeppelin voyage", v, 3, since="2026-03-31")
        assert hits[0].id == 9999 and hits[0].dense is not None and hits[0].bm25 is not None
    finally:
        other.db.conn.close()


def test_fuse_is_reciprocal_rank_fusion():
    hits = fuse([(1, 0.9), (2, 0.8)], [(2, 5.0), (3, 4.0)], 3)
    assert [h.id for h in hits] == [2, 1, 3]
    assert hits[0].score == pytest.approx(1 / 61 + 1 / 60)


def test_filtered_bm25_falls_back_when_the_top_rows_fail_the_filter(store):
    h = HybridIndex(store, "turn")
    rng = np.random.default_rng(3)
    rows = []
    for i in range(300):
        audio = i % 5 < 2                      # 40% pass, but they rank below every chat row
        text = "apple filler filler filler filler" if audio else "apple apple apple"
        v = rng.standard_normal(384).astype(np.float32)
        rows.append(IndexRow(i + 1, v, text, f"2026-01-01T00:00:{i % 60:02d}", "audio" if audio else "chat", 1))
    h.add(rows)
    got = h.bm25("apple", 5, sources=["audio"])
    assert len(got) == 5 and all(rows[i - 1].source == "audio" for i, _ in got)
    assert [i for i, _ in h.bm25("apple", 5)] != [i for i, _ in got]


def common_bank(h, n=300):
    """Units whose every text holds "common" and "filler"; one in a hundred also "rareword"."""
    rng = np.random.default_rng(3)
    rows = []
    for i in range(n):
        v = rng.standard_normal(384).astype(np.float32)
        text = "common filler" + (" rareword" if i % 100 == 0 else "")
        rows.append(IndexRow(i + 1, v / np.linalg.norm(v), text, f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}",
                             "chat", 1))
    h.add(rows)
    return rows


def test_a_query_of_corpus_stop_words_only_is_left_to_the_dense_side(store, monkeypatch):
    # As on a large memory: a word in most units, past the posting floor, tells them apart too little
    # to rank every unit by it (at a million units that was 0.3 s a query).
    monkeypatch.setattr("memory.index.MIN_POSTINGS", 50)
    h = HybridIndex(store, "turn")
    rows = common_bank(h)
    assert h.informative(["common", "filler"]) == []
    assert h.informative(["common"]) == []                   # one word alone too
    assert h.bm25("common filler", 10) == [] and h.bm25("the common", 10) == []
    q = rows[42].vector
    hits = h.search("common filler", q, 5)
    assert [x.id for x in hits] == [x.id for x in h.search("", q, 5, mode="dense")]
    assert hits[0].id == 43 and hits[0].dense is not None and hits[0].bm25 is None


def test_rare_words_still_rank_among_corpus_stop_words(store, monkeypatch):
    monkeypatch.setattr("memory.index.MIN_POSTINGS", 50)
    h = HybridIndex(store, "turn")
    common_bank(h)
    assert h.informative(["common", "rareword", "filler"]) == ["rareword"]
    assert sorted(i for i, _ in h.bm25("common rareword filler", 10)) == [1, 101, 201]
    hits = h.search("common rareword", np.ones(384, np.float32) / np.sqrt(384), 10)
    assert {x.id for x in hits if x.bm25 is not None} == {1, 101, 201}
    # Under the posting floor (a small memory) a common word still counts.
    monkeypatch.setattr("memory.index.MIN_POSTINGS", 20_000)
    assert len(h.bm25("common filler", 10)) == 10


def test_the_lexical_side_does_not_wait_for_the_vector_mirror(hybrid):
    # At a million units the mirror takes seconds to load after a start: a query with no time or source
    # filter needs nothing from it, so its full-text list is served meanwhile.
    import threading

    h, rows = hybrid
    m = h.vectors.mirror()
    held, release = threading.Event(), threading.Event()

    def loading():
        with m.lock:
            held.set()
            release.wait(30)

    threading.Thread(target=loading, daemon=True).start()
    held.wait(5)
    out = []
    worker = threading.Thread(target=lambda: out.append(h.bm25(rows[10].text, 5)), daemon=True)
    worker.start()
    worker.join(10)
    release.set()
    assert out and out[0][0][0] in {r.id for r in rows if set(r.text.split()) & set(rows[10].text.split())}
    assert h.size() == (len(rows), len(rows))
