"""Recursive summaries: session summaries, the running memory M_t, day/week/month roll-ups, staleness.
All of them are facts kept with who said them (memory.facts; tests/test_facts.py covers the facts)."""
from __future__ import annotations

from memory import summaries as sm
from memory.consolidate import Consolidator, Settings
from memory.summaries import SummaryStore
from tests.fakes import FakeEmbedder
from tests.test_consolidation_fakes import SchemaLLM, add_session, day, story


def _consolidate(store, llm=None, **settings):
    llm = llm or SchemaLLM()
    c = Consolidator(store, FakeEmbedder(), llm, Settings(**settings))
    return c, c.run(), llm


def test_each_session_gets_a_summary_and_the_running_memory_folds_them(store):
    ids = story(store)
    c, rep, llm = _consolidate(store, fold_batch=2)
    ss = SummaryStore(store)
    for sid in ids.values():
        s = ss.current("session", str(sid))
        assert s is not None and s.text.startswith("Caroline: ") and s.method == "facts"
    running = ss.history("running", sm.RUNNING_KEY)
    assert [r.status for r in running] == ["superseded", "current"]     # M_1 (2 sessions), M_2 (+1)
    m1, m2 = running
    assert "nurse" in m1.text and "teacher" not in m1.text
    assert m2.text.startswith(m1.text) and "teacher" in m2.text           # M_2 = f(M_1, new)
    assert m1.text.splitlines()[0] == "[8 May 2023] Caroline: I started a new job as a nurse at the city hospital."
    assert ss.running().id == m2.id
    assert ss.unfolded() == []
    assert sm.SummaryStore(store).folded_inputs(m2.id) == {ss.current("session", str(s)).id for s in ids.values()}
    # summaries, folds and roll-ups are not written by the model: only the links asked it
    assert all(p[-1]["content"].startswith("How does a newer memory") for p in llm.prompts)


def test_a_new_session_folds_into_the_running_memory_without_redoing_the_old(store):
    story(store)
    c, _, llm = _consolidate(store)
    first = SummaryStore(store).running()
    calls = llm.calls
    add_session(store, day(2, 7), [("Caroline", "Rex learned to fetch the ball in the park."),
                                   ("Melanie", "Clever beagle!")])
    rep = c.run()
    assert rep.units["link"] == 1 and rep.units["running"] == 1
    now = SummaryStore(store).running()
    assert now.id != first.id and first.text in now.text and "fetch" in now.text
    assert SummaryStore(store).get(first.id).status == "superseded"
    assert llm.calls - calls == rep.llm_calls


def _four_sessions(store):
    a = add_session(store, day(8, hour=9), [("Caroline", "Morning run by the river, ten kilometres."),
                                            ("Melanie", "Great pace!")])
    b = add_session(store, day(8, hour=20), [("Caroline", "Evening: cooked lasagna for the family."),
                                             ("Melanie", "Yum, lasagna.")])
    add_session(store, day(10), [("Caroline", "Started reading a novel about sailing."),
                                 ("Melanie", "Sailing novels are fun.")])
    add_session(store, day(2, 6), [("Caroline", "Booked flights to Lisbon for July."),
                                   ("Melanie", "Lisbon in July!")])
    return a, b


def test_periods_whose_facts_fit_keep_them_all(store):
    _four_sessions(store)
    c, rep, llm = _consolidate(store)
    ss = SummaryStore(store)
    d8 = ss.current("day", "2023-05-08")
    assert d8.method == "join"
    first, second = (ss.current("session", str(i)).text for i in sorted(ss.sessions_of([d8.id])))
    assert d8.text == first + "\n" + second                                      # in time order, undated
    assert ss.current("day", "2023-05-10").method == "copy"
    w19 = ss.current("week", "2023-W19")                                          # 8-14 May: both days
    assert w19.method == "join" and "[10 May 2023] Caroline: Started reading a novel about sailing." in w19.text
    assert "[8 May 2023] Caroline: Evening: cooked lasagna for the family." in w19.text
    may, june = ss.current("month", "2023-05"), ss.current("month", "2023-06")
    assert "lasagna" in may.text and "Lisbon" not in may.text and "Lisbon" in june.text
    assert llm.prompts == [] or all("How does a newer memory" in p[-1]["content"] for p in llm.prompts)


def test_a_period_whose_facts_do_not_fit_keeps_the_most_telling_of_each_day(store, monkeypatch):
    monkeypatch.setitem(sm.ROLLUP_WORDS, "week", 30)
    _four_sessions(store)
    add_session(store, day(9), [("Caroline", "Great!"), ("Melanie", "Hi"),
                                ("Caroline", "My dentist appointment is on Friday 12 May at 9.")])
    _consolidate(store)
    ss = SummaryStore(store)
    w19 = ss.current("week", "2023-W19")
    assert w19.method == "select" and len(w19.text.split()) <= 30
    kept = w19.text.splitlines()
    days = {d.key: d.text.splitlines() for d in ss.list("day")}
    assert all(any(line.endswith(f) for f in days["2023-05-08"] + days["2023-05-09"] + days["2023-05-10"])
               for line in kept)                                       # facts as they were, dated
    assert "[9 May 2023] Caroline: My dentist appointment is on Friday 12 May at 9." in kept   # dates count
    assert any(line.startswith("[10 May 2023]") for line in kept)      # each day keeps its best fact first
    assert any(line.startswith("[8 May 2023]") for line in kept)
    assert "Great!" not in w19.text and "Hi" not in days["2023-05-09"]


def test_a_new_session_rebuilds_its_day_week_and_month_and_old_versions_stay(store):
    a, b = _four_sessions(store)
    c, rep, llm = _consolidate(store)
    ss = SummaryStore(store)
    may = ss.current("month", "2023-05")
    assert ss.sessions_of([may.id]) == {a, b, ss.sessions_of([ss.current("day", "2023-05-10").id]).pop()}
    add_session(store, day(10, hour=18), [("Caroline", "Finished the sailing novel already."),
                                          ("Melanie", "Fast reader!")])
    rep = c.run()
    assert (rep.units["day"], rep.units["week"], rep.units["month"]) == (1, 1, 1)
    assert ss.current("day", "2023-05-10").method == "join"
    assert "Finished the sailing novel" in ss.current("month", "2023-05").text
    assert [s.status for s in ss.history("week", "2023-W19")] == ["superseded", "current"]
    assert c.pending() == {k: 0 for k in c.pending()}


def test_forgetting_a_turn_marks_its_summaries_stale_and_consolidation_rebuilds_them(store):
    ids = story(store)
    c, _, _ = _consolidate(store)
    ss = SummaryStore(store)
    old_session = ss.current("session", str(ids["s2"]))
    old_running = ss.running()
    beagle = store.db.execute("SELECT id FROM turns WHERE text LIKE '%beagle%' AND role = 'user'").fetchone()[0]
    with store.db.conn:   # what forgetting does to the source turn
        store.db.execute("DELETE FROM turns WHERE id = ?", [beagle])
    stale = ss.get(old_session.id)
    assert stale.status == "stale" and stale.text == ""
    assert ss.get(old_running.id).status == "stale" and ss.running() is None
    assert ss.current("day", "2023-05-20") is None
    untouched = ss.current("session", str(ids["s1"]))
    assert untouched is not None and untouched.status == "current"
    rep = c.run()
    assert rep.status == "done"
    rebuilt = ss.current("session", str(ids["s2"]))
    assert rebuilt is not None and rebuilt.id != old_session.id and "small beagle" not in rebuilt.text
    assert ss.running() is not None and "small beagle" not in ss.running().text
    assert all("small beagle" not in (s.text or "") for s in ss._rows("1"))


def test_period_keys_and_titles():
    assert sm.week_key("2023-05-08") == "2023-W19"
    assert sm.period_bounds("week", "2023-W19") == ("2023-05-08", "2023-05-15")
    assert sm.period_bounds("month", "2023-12") == ("2023-12-01", "2024-01-01")
    assert sm.period_title("day", "2023-05-08") == "Monday 8 May 2023"


def test_the_running_memory_keeps_its_words_with_each_session_keeping_its_most_telling_facts(store):
    ids = []
    for n in range(6):
        when = f"2024-03-{n + 1:02d}T10:00:00+00:00"
        sid = store.new_session(title="t", started_at=when)
        text = (f"User: I met Anna on day {n + 1}.\nUser: It was a long and quiet walk along the grey river.\n"
                f"User: I really think that it was a good walk.")
        ids.append(sm.SummaryStore(store).add("session", str(sid), text, when, when, sessions=[sid]))
    plan = sm.plan_fold(sm.SummaryStore(store), batch=10)
    text = sm.fold(plan, words=60)
    kept = text.splitlines()
    assert len(text.split()) <= 60
    assert [line for line in kept if "I met Anna" in line] == [f"[{d} Mar 2024] User: I met Anna on day {d}."
                                                              for d in range(1, 7)]   # dated, named: all
    assert kept == sorted(kept, key=sm._day_of)                                      # in time order
    # a fact said again is kept once, with its latest date
    plan2 = sm.FoldPlan(sm.Summary(0, "running", "main", "[1 Mar 2024] User: I am a nurse.", "", "", None, "",
                                   "current", "facts", ""), [sm.SummaryStore(store).get(ids[-1])])
    plan2.new[0].text = "User: I am a nurse."
    assert sm.fold(plan2, words=60) == "[6 Mar 2024] User: I am a nurse."


def test_finding_what_the_running_memory_folded_grows_with_the_folds_not_their_square(store):
    # Five years of sessions are ten thousand folds; each consolidation asks what is folded already.
    # Counted in SQLite steps: four times the folds must cost about four times the work.
    S = SummaryStore(store)

    def chain(folds: int) -> int:
        with store.db.conn:
            store.db.execute("DELETE FROM summaries")
            store.db.execute("DELETE FROM summary_inputs")
            base = None
            for i in range(folds):
                when = f"2024-01-01T{i // 60 % 24:02d}:{i % 60:02d}:00+00:00"
                sid = S.add("session", str(i), f"User: fact {i}", when, when, sessions=[i])
                base = S.add("running", sm.RUNNING_KEY, f"fact {i}", when, when, sessions=[i],
                             inputs=[sid] + ([base] if base else []))
        steps = [0]

        def tick():
            steps[0] += 1
        store.db.conn.set_progress_handler(tick, 100)
        try:
            assert len(S.folded_inputs(base)) == folds
        finally:
            store.db.conn.set_progress_handler(None, 100)
        return steps[0]

    small, large = chain(100), chain(400)
    assert large < 6 * small


def sql_steps(store, fn) -> int:
    """SQLite virtual-machine steps (in hundreds) that fn() runs: work counted without a clock."""
    steps = [0]

    def tick():
        steps[0] += 1
    store.db.conn.set_progress_handler(tick, 100)
    try:
        fn()
    finally:
        store.db.conn.set_progress_handler(None, 100)
    return steps[0]


def test_planning_the_months_reads_each_day_once(store):
    # Each week used to query the days it touches, which read every earlier day: quadratic in the days.
    from datetime import date, timedelta

    S = SummaryStore(store)

    def history(days: int) -> int:
        with store.db.conn:
            store.db.execute("DELETE FROM summaries")
            weeks = {}
            for i in range(days):
                d = (date(2020, 1, 1) + timedelta(days=i)).isoformat()
                start, end = sm.period_bounds("day", d)
                weeks.setdefault(sm.week_key(d), []).append(S.add("day", d, f"fact {i}", start, end, sessions=[i]))
            for wk, ids in weeks.items():
                start, end = sm.period_bounds("week", wk)
                S.add("week", wk, "facts", start, end, sessions=[], inputs=ids)
        plans = []
        steps = sql_steps(store, lambda: plans.extend(sm.plan_rollups(S, "month")))
        assert {p.key for p in plans} == {sm.month_key((date(2020, 1, 1) + timedelta(days=i)).isoformat())
                                         for i in range(days)}
        return steps

    assert history(1200) < 6 * history(300)


def fold_sessions(store, n: int) -> list[int]:
    """n one-turn sessions, each summarized and folded on its own (one running version each)."""
    S = SummaryStore(store)
    sessions = []
    for i in range(n):
        when = f"2024-01-{1 + i // 24 % 28:02d}T{i % 24:02d}:00:00+00:00"
        sid = store.new_session()
        store.add_turn(sid, "user", f"I planted tree number {i}.", created_at=when)
        with store.db.conn:
            S.add("session", str(sid), f"User: I planted tree number {i}.", when, when, sessions=[sid])
            plan = sm.plan_fold(S, batch=1)
            sm.write_fold(store, plan, sm.fold(plan), "facts", 0)
        sessions.append(sid)
    return sessions


def test_the_running_memory_keeps_a_few_versions_lists_of_sessions_not_every_one(store):
    # Each running version covers every session before it: kept for every version, the lists grow with the
    # square of the sessions (300 folds: 45,150 rows). Kept are the current version and, for each power of
    # two, the last two versions whose ordinal it divides.
    n = 300
    fold_sessions(store, n)
    S = SummaryStore(store)
    versions = S.history("running", sm.RUNNING_KEY)
    assert len(versions) == n and versions[-1].status == "current"
    kept = [v for v in versions if v.status != "stale"]
    assert len(kept) <= 2 * 9 + 1                                  # 2 per power of two up to 256, and the last
    rows = store.db.execute("SELECT COUNT(*) FROM summary_sessions x JOIN summaries s ON s.id = x.summary_id "
                            "WHERE s.kind = 'running'").fetchone()[0]
    assert rows == sum(i for i, v in enumerate(versions, 1) if v.status != "stale") < 5000
    assert all(v.text == "" for v in versions if v.status == "stale")
    # the current version still covers everything, and what it folded is still known
    assert len(S.sessions_of([versions[-1].id])) == n
    assert len(S.folded_inputs(versions[-1].id)) == n and S.unfolded() == []


def test_forgetting_what_a_fold_took_in_folds_again_from_a_kept_version_before_it(store):
    from memory.forget import forget, plan_forget

    n = 300
    sessions = fold_sessions(store, n)
    S = SummaryStore(store)
    u = 250                                                        # the 250th fold took in this session
    forget(store, plan_forget(store, session_id=sessions[u - 1]))
    assert S.running() is None
    base = S.running_base()
    covered = S.sessions_of([base.id])
    assert sessions[u - 1] not in covered                         # never a version that saw what went
    folds_before = len(covered)
    assert folds_before < u and u - folds_before <= 2 * (n - u + 1)   # not far before it
    # consolidation folds again from there: the running memory covers everything but what went
    while (plan := sm.plan_fold(S, batch=50)) is not None:
        with store.db.conn:
            sm.write_fold(store, plan, sm.fold(plan), "facts", 0)
    again = S.running()
    assert len(S.sessions_of([again.id])) == n - 1 and "tree number 249." not in again.text
