"""Recursive summaries: session summaries, the running memory M_t, day/week/month roll-ups, staleness."""
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
        assert s is not None and s.text and s.method == "llm"
    running = ss.history("running", sm.RUNNING_KEY)
    assert [r.status for r in running] == ["superseded", "current"]     # M_1 (2 sessions), M_2 (+1)
    m1, m2 = running
    assert "nurse" in m1.text and "teacher" not in m1.text
    assert m2.text.startswith(m1.text) and "teacher" in m2.text           # M_2 = f(M_1, new)
    fold_prompt = next(p for p in llm.prompts if "Current memory" in p[-1]["content"]
                       and m1.text in p[-1]["content"])
    assert "teacher" in fold_prompt[-1]["content"]
    assert ss.running().id == m2.id
    assert ss.unfolded() == []
    assert sm.SummaryStore(store).folded_inputs(m2.id) == {ss.current("session", str(s)).id for s in ids.values()}


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


def test_periods_whose_inputs_fit_are_joined_without_the_model(store):
    _four_sessions(store)
    c, rep, llm = _consolidate(store)
    ss = SummaryStore(store)
    d8 = ss.current("day", "2023-05-08")
    assert d8.method == "join"
    first, second = (ss.current("session", str(i)).text for i in ss.sessions_of([d8.id]))
    assert d8.text.startswith("[") and first in d8.text and second in d8.text
    assert d8.text.index("Morning run") < d8.text.index("lasagna")                  # in date order
    assert ss.current("week", "2023-W19").method == "join"
    assert not any("journal entry" in p[-1]["content"] for p in llm.prompts)


def test_day_week_month_roll_up(store, monkeypatch):
    single = lambda plan: (plan.children[0].text, "copy") if len(plan.children) == 1 else None  # noqa: E731
    monkeypatch.setattr(sm, "rollup_without_model", single)      # never join: the model writes them
    a, b = _four_sessions(store)
    c, rep, llm = _consolidate(store)
    ss = SummaryStore(store)
    d8 = ss.current("day", "2023-05-08")
    assert d8.method == "llm" and "Morning run" in d8.text and "lasagna" in d8.text   # two sessions: one call
    assert ss.current("day", "2023-05-10").method == "copy"                         # one session: its text
    w19 = ss.current("week", "2023-W19")                                            # 8-14 May: both days
    assert w19.method == "llm" and "lasagna" in w19.text and "sailing" in w19.text
    assert ss.current("week", "2023-W22").method == "copy"                          # 29 May - 4 June
    may, june = ss.current("month", "2023-05"), ss.current("month", "2023-06")
    assert "lasagna" in may.text and "Lisbon" not in may.text
    assert "Lisbon" in june.text
    assert ss.sessions_of([may.id]) == {a, b, ss.sessions_of([ss.current("day", "2023-05-10").id]).pop()}
    # a new session on 10 May rebuilds that day, its week and its month; old versions stay
    add_session(store, day(10, hour=18), [("Caroline", "Finished the sailing novel already."),
                                          ("Melanie", "Fast reader!")])
    rep = c.run()
    assert (rep.units["day"], rep.units["week"], rep.units["month"]) == (1, 1, 1)
    assert ss.current("day", "2023-05-10").method == "llm"
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
    assert sm.clean("Updated memory: **Caroline** is  a nurse.", 10) == "Caroline is a nurse."


def test_folds_and_rollups_go_through_restate_when_the_model_has_it(store):
    """Summaries of summaries use the model's restate() (prompt-lookup decoding); session summaries, which
    are abstractive, stay on complete(). Both are counted in the run's calls."""
    class RestatingLLM(SchemaLLM):
        def __init__(self):
            super().__init__()
            self.restated = []

        def restate(self, messages, max_tokens=512):
            self.restated.append(messages[-1]["content"])
            return self.complete(messages, max_tokens=max_tokens)

    story(store)
    llm = RestatingLLM()
    c, rep, _ = _consolidate(store, llm, fold_batch=2)
    assert rep.status == "done"
    assert any(t.startswith("Current memory") for t in llm.restated)
    assert not any("Summarize what this conversation" in t for t in llm.restated)
    assert rep.llm_calls == len(llm.prompts)     # restate() delegates to complete() here: counted once


def test_lead_keeps_whole_opening_sentences_within_the_words():
    text = "Anna moved to Lisbon in May. She started a job at a bakery. Her brother visited in June!"
    assert sm.lead(text, 13) == "Anna moved to Lisbon in May. She started a job at a bakery."
    assert sm.lead(text, 12) == "Anna moved to Lisbon in May."
    assert sm.lead(text, 100) == text
    assert sm.lead(text, 3) == "Anna moved to …"     # the first sentence, clipped, rather than nothing


def test_each_new_summary_gets_an_equal_share_of_the_fold(store):
    from tests.fakes import FakeLLM

    long = " ".join(f"Sentence {i} about session {{n}} has more words in it." for i in range(12))
    ids = []
    for n in range(10):
        sid = store.new_session(title="t", started_at=f"2024-03-{n + 1:02d}T10:00:00+00:00")
        ids.append(sm.SummaryStore(store).add("session", str(sid), long.format(n=n), f"2024-03-{n + 1:02d}T10:00:00+00:00",
                                              f"2024-03-{n + 1:02d}T11:00:00+00:00", sessions=[sid]))
    llm = FakeLLM(["The memory."])
    plan = sm.plan_fold(sm.SummaryStore(store), batch=10)
    assert len(plan.new) == 10
    sm.fold(llm, plan, words=160)
    prompt = llm.prompts[-1][-1]["content"]
    lines = [line for line in prompt.splitlines() if line.startswith("- [")]
    assert len(lines) == 10
    # 160 x 1.25 / 10 = 20 words each: the first two sentences (10 words each), never the whole summary
    assert all(len(line.split("] ", 1)[1].split()) == 20 for line in lines)
    assert "session 9" in lines[-1] and "Sentence 2" not in prompt
