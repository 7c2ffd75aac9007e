"""The coded vector index: exact filters, deletions, agreement with exact search, other connections."""
import numpy as np
import pytest

from memory.store import Store
from memory.vectors import VectorIndex, _MIRRORS, _Mirror, encode, smallest


def clustered(n, seed=0, dim=384, centers=40):
    """Unit vectors around a few dozen centres, so that nearest neighbours mean something."""
    rng = np.random.default_rng(seed)
    base = np.random.default_rng(1234).standard_normal((centers, dim)).astype(np.float32)
    x = base[rng.integers(0, centers, n)] + 1.1 * rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def stamp(i):
    return f"2026-01-{1 + i % 28:02d}T{i % 24:02d}:00:00.000+00:00"


def rows(X, start=1):
    return [(start + i, X[i], stamp(i), ("chat", "audio", "import")[i % 3], i % 17)
            for i in range(len(X))]


def brute(X, q, k, keep):
    """Exact cosine top-k over the rows (index i, id i+1) for which keep(i) holds."""
    sims = X @ q / np.linalg.norm(q)
    order = [i for i in np.argsort(-sims) if keep(i)]
    return [int(i) + 1 for i in order[:k]]


@pytest.fixture
def filled(store):
    X = clustered(3000)
    vi = VectorIndex(store, "turn")
    vi.add(rows(X))
    return vi, X


def test_encode_and_smallest():
    v = np.array([[1.0, -1.0] * 192], np.float32)
    assert encode(v).shape == (1, 48)
    assert encode(np.ones((2, 10), np.float32)).shape == (2, 8)
    d = np.array([5, 1, 3, 1, 9, 0, 3], np.uint16)
    assert sorted(smallest(d, 3).tolist()) == [1, 3, 5]
    assert len(smallest(d, 4)) == 4


def test_agreement_with_exact_search(filled):
    vi, X = filled
    queries = clustered(60, seed=7)
    agree = []
    for q in queries:
        got = [i for i, _ in vi.search(q, 10)]
        agree.append(len(set(got) & set(brute(X, q, 10, lambda i: True))) / 10)
    assert np.mean(agree) >= 0.95


def test_scores_are_cosines_best_first(filled):
    vi, X = filled
    q = X[42]
    hits = vi.search(q, 5)
    assert hits[0][0] == 43 and hits[0][1] == pytest.approx(1.0, abs=1e-5)
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
    ref = dict(vi.search_sqlite_vec(q, 5))
    for id_, s in hits:
        if id_ in ref:
            assert s == pytest.approx(ref[id_], abs=1e-5)


@pytest.mark.parametrize("filters, keep", [
    (dict(since="2026-01-10", until="2026-01-20"), lambda i: "2026-01-10" <= stamp(i) < "2026-01-20"),
    (dict(since="2026-01-27T05"), lambda i: stamp(i) >= "2026-01-27T05"),
    (dict(until="2026-01-03"), lambda i: stamp(i) < "2026-01-03"),
    (dict(sources=["audio"]), lambda i: i % 3 == 1),
    (dict(session_ids=[3, 5]), lambda i: i % 17 in (3, 5)),
    (dict(since="2026-01-05", sources=["chat", "import"], session_ids=[1, 2, 3, 4]),
     lambda i: stamp(i) >= "2026-01-05" and i % 3 != 1 and i % 17 in (1, 2, 3, 4)),
    (dict(sources=["nowhere"]), lambda i: False),
    (dict(since="2027"), lambda i: False),
])
def test_filters_are_exact(filled, filters, keep):
    vi, X = filled
    allowed = {i + 1 for i in range(len(X)) if keep(i)}
    for q in clustered(10, seed=3):
        got = vi.search(q, 20, **filters)
        assert {i for i, _ in got} <= allowed
        assert len(got) == min(20, len(allowed))
        exact = brute(X, q, 20, keep)
        assert len(set(i for i, _ in got) & set(exact)) >= 0.9 * len(exact)


def test_small_filtered_sets_are_searched_exactly(filled):
    vi, X = filled
    keep = lambda i: i % 17 == 4 and i % 3 == 0  # noqa: E731
    for q in clustered(5, seed=11):
        got = [i for i, _ in vi.search(q, 10, session_ids=[4], sources=["chat"])]
        assert got == brute(X, q, 10, keep)


def test_deleted_units_disappear_immediately(filled, store):
    vi, X = filled
    q = X[100]
    first = vi.search(q, 5)
    assert first[0][0] == 101
    with store.db.conn:
        vi.remove([101, first[1][0]])
    again = [i for i, _ in vi.search(q, 50)]
    assert 101 not in again and first[1][0] not in again
    # Even before the caller commits, a removed unit is not returned.
    store.db.conn.execute("BEGIN")
    vi.remove([first[2][0]])
    assert first[2][0] not in [i for i, _ in vi.search(q, 50)]
    store.db.conn.rollback()
    assert first[2][0] in [i for i, _ in vi.search(q, 50)]


def test_many_deletions_compact_the_mirror(filled, store):
    vi, X = filled
    with store.db.conn:
        vi.remove(list(range(1, 2001)))
    for q in clustered(5, seed=5):
        got = [i for i, _ in vi.search(q, 10)]
        assert all(i > 2000 for i in got)
        assert got == brute(X, q, 10, lambda i: i >= 2000) or len(set(got) & set(
            brute(X, q, 10, lambda i: i >= 2000))) >= 9
    assert vi.mirror().dead == 0


def test_replacing_a_vector(filled, store):
    vi, X = filled
    q = clustered(1, seed=99)[0]
    vi.add([(7, q, "2026-02-01T00:00:00.000+00:00", "chat", 1)])
    assert vi.search(q, 1)[0][0] == 7
    assert [i for i, _ in vi.search(q, 3, until="2026-02")].count(7) == 0
    assert vi.search(q, 1, since="2026-02")[0][0] == 7


def test_out_of_order_times_are_merged(store):
    vi = VectorIndex(store, "turn")
    X = clustered(600, seed=2)
    vi.add(rows(X[:300]))
    vi.search(X[0], 3)  # load the mirror
    old = [(1000 + i, X[300 + i], f"2025-06-{1 + i % 28:02d}T00:00:00.000+00:00", "chat", 1)
           for i in range(300)]
    vi.add(old)
    got = vi.search(X[305], 10, until="2026")
    assert got[0][0] == 1005 and all(i >= 1000 for i, _ in got)
    m = vi.mirror()
    assert bool(np.all(m.times[1:m.n] >= m.times[:m.n - 1]))


def test_another_connection_sees_insertions_and_deletions(filled, store):
    vi, X = filled
    other = Store(store.path)
    try:
        vj = VectorIndex(other, "turn")
        q = clustered(1, seed=42)[0]
        assert vj.search(q, 1)[0][0] != 5000
        vi.search(q, 1)  # the first store's mirror is loaded before the other's write
        vj.add([(5000, q, "2026-03-01T00:00:00.000+00:00", "audio", 2)])
        assert vi.search(q, 1)[0][0] == 5000
        assert vi.search(q, 1, sources=["audio"], since="2026-03")[0][0] == 5000
        with other.db.conn:
            vj.remove([5000])
        assert 5000 not in [i for i, _ in vi.search(q, 10)]
    finally:
        other.db.conn.close()


def test_rebuilt_after_restart_gives_the_same_results(tmp_path):
    path = tmp_path / "r.db"
    s1 = Store(path)
    vi = VectorIndex(s1, "turn")
    X = clustered(2000, seed=4)
    vi.add(rows(X))
    with s1.db.conn:
        vi.remove([3, 4, 5])
    queries = clustered(10, seed=8)
    before = [vi.search(q, 10, since="2026-01-04") for q in queries]
    s1.close()
    _MIRRORS.clear()
    s2 = Store(path)
    vj = VectorIndex(s2, "turn")
    after = [vj.search(q, 10, since="2026-01-04") for q in queries]
    assert [[i for i, _ in r] for r in before] == [[i for i, _ in r] for r in after]
    s2.close()


def test_migration_backfills_codes_for_existing_vectors(tmp_path):
    from memory import migrations

    path = tmp_path / "old.db"
    names = [n for n, _ in migrations.MIGRATIONS]
    X = clustered(300, seed=6)
    s = Store(path)
    # Pretend the vectors were indexed before the code tables existed.
    with s.db.conn:
        for t in ("codes_turn", "codes_turn_vectors", "codes_turn_gone",
                  "codes_segment", "codes_segment_vectors", "codes_segment_gone"):
            s.db.execute(f"DROP TABLE {t}")
        s.db.execute("DELETE FROM meta WHERE key LIKE 'codes_gen:%'")
        s.db.execute("DELETE FROM _migrations WHERE name = 'm011_vector_codes'")
        for id_, v, t, src, sess in rows(X):
            s.db.execute("INSERT INTO vectors_turn (id, embedding, created_at, source, session_id) "
                         "VALUES (?, ?, ?, ?, ?)", [id_, v.tobytes(), t, src, sess])
    s.close()
    assert "m011_vector_codes" in names
    s = Store(path)
    vi = VectorIndex(s, "turn")
    assert s.count("codes_turn") == 300
    assert vi.search(X[10], 1)[0][0] == 11
    assert vi.missing("turns") == []
    s.close()


def test_kinds_without_code_tables_fall_back_to_sqlite_vec(store):
    from memory.migrations import vector_table_sql

    with store.db.conn:
        store.db.execute(vector_table_sql("other", 384))
    vi = VectorIndex(store, "other")
    assert not vi.coded
    X = clustered(50, seed=1)
    vi.add(rows(X))
    assert vi.search(X[3], 1)[0][0] == 4


def test_get_returns_stored_vectors(filled, store):
    vi, X = filled
    got = vi.get([5, 6, 999999])
    assert set(got) == {5, 6}
    assert np.allclose(got[5], X[4])


def test_warm_loads_the_mirror_in_the_background(filled):
    vi, X = filled
    _MIRRORS.clear()
    vi.warm().join(timeout=30)
    m = vi.mirror()
    assert m.n == len(X) and m.gen >= 0


def test_loaded_mirror_keeps_every_column_aligned(tmp_path, monkeypatch):
    # The mirror is read in chunks of whole columns; a value missing in one must not shift the others:
    # it holds what the rows read one by one give (the way it catches up with later writes).
    path = tmp_path / "m.db"
    s1 = Store(path)
    X = clustered(60, seed=5)
    VectorIndex(s1, "turn").add([(i + 1, X[i], stamp(i), ("chat", "audio")[i % 2], i % 4) for i in range(60)])
    with s1.db.conn:   # rows written before their time or session were known
        s1.db.execute("UPDATE codes_turn SET created_at = NULL WHERE id % 7 = 1")
        s1.db.execute("UPDATE codes_turn SET session_id = NULL WHERE id % 3 = 1")
        s1.db.execute("UPDATE codes_turn SET source = NULL WHERE id % 5 = 1")
    _MIRRORS.clear()
    monkeypatch.setattr(VectorIndex, "LOAD_CHUNK", 7)
    m = VectorIndex(s1, "turn").mirror()
    rows = s1.db.execute("SELECT id, created_at, source, session_id, code FROM codes_turn").fetchall()
    ref = _Mirror(m.words)
    ref.sources = dict(m.sources)
    want = ref.columns(rows)
    assert m.n == 60 and m.null_times == 9
    for a in ("ids", "times", "timeless", "src", "sess"):
        assert getattr(m, a)[:60].tolist() == want[a].tolist(), a
    assert (m.codes[:, :60] == want["codes"]).all()
    hits = [i for i, _ in VectorIndex(s1, "turn").search(X[9], 5, since="2026-01-05", sources=["audio"],
                                                          session_ids=[1])]
    assert hits and all(i % 2 == 0 and (i - 1) % 4 == 1 and i % 3 != 1 and i % 5 != 1 and i % 7 != 1
                        for i in hits)
    s1.close()


def test_closing_the_store_waits_for_a_background_load_to_stop(tmp_path, monkeypatch):
    # Quitting right after a start: the index still loading in the background must not have its
    # connection closed under it (a "database is locked" error at exit, or a crash).
    import threading

    path = tmp_path / "c.db"
    s1 = Store(path)
    VectorIndex(s1, "turn").add(rows(clustered(200, seed=6)))
    s1.close()
    _MIRRORS.clear()
    s2 = Store(path)
    monkeypatch.setattr(VectorIndex, "LOAD_CHUNK", 20)
    real_chunk, calls, inside = VectorIndex._chunk, [0], threading.Event()

    def chunk(self, m, gen, after):
        calls[0] += 1
        if calls[0] == 2:           # mid-load: wait until close() has begun
            inside.set()
            for _ in range(300):
                if getattr(self.store, "closing", False):
                    break
                threading.Event().wait(0.01)
        return real_chunk(self, m, gen, after)

    monkeypatch.setattr(VectorIndex, "_chunk", chunk)
    vi = VectorIndex(s2, "turn")
    loading = vi.warm()
    assert inside.wait(10)
    s2.close()
    assert not loading.is_alive()                  # close() waited for it
    assert _MIRRORS[s2]["turn"].gen == -1          # stopped, not half loaded


def test_rows_written_new_by_sqlite_are_the_rows_write_makes(tmp_path):
    """A restore's bulk path (SQLite reads the rows' JSON and slices the vectors' bytes) leaves the same
    sqlite-vec rows, codes and mirrored vectors as the row-at-a-time path, and search finds the same."""
    import json

    X = clustered(700, seed=3)
    r = rows(X)
    a, b = Store(tmp_path / "a.db"), Store(tmp_path / "b.db")
    one, bulk = VectorIndex(a, "turn"), VectorIndex(b, "turn")
    one.add(r)
    with b.db.conn:
        bulk.write_new(json.dumps([[i, t, s, sid] for i, _, t, s, sid in r]), X)

    def held(store):
        conn = store.db.conn
        return (conn.execute("SELECT id, embedding, created_at, source, session_id FROM vectors_turn "
                             "ORDER BY id").fetchall(),
                conn.execute("SELECT id, created_at, source, session_id, code FROM codes_turn ORDER BY id").fetchall(),
                conn.execute("SELECT id, vector FROM codes_turn_vectors ORDER BY id").fetchall())

    assert held(a) == held(b) and len(held(b)[0]) == 700
    q = X[5] + 0.01
    assert [h[0] for h in one.search(q, k=10)] == [h[0] for h in bulk.search(q, k=10)]
    a.close()
    b.close()
