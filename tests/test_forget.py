"""Forgetting (memory/forget.py), corrections and pinned facts (memory/edits.py) on a real SQLite file, with
the fake embedder and a schema-following fake model for consolidation."""
import pytest

from memory import edits
from memory.bank import SegmentRecall
from memory.consolidate import Consolidator
from memory.errors import NotFoundError
from memory.forget import forget, matching_turns, plan_forget
from memory.segments import SegmentStore
from memory.summaries import SummaryStore
from tests.fakes import FakeEmbedder
from tests.test_consolidation_fakes import SchemaLLM, add_segment, add_session, day


def consolidate(store, embedder=None):
    return Consolidator(store, embedder or FakeEmbedder(), SchemaLLM()).run()


def grows(store):
    """Two sessions about different things, each one segment; returns (session ids, segment ids)."""
    a = add_session(store, day(1), [("User", "My friend Daniel is moving to Lisbon next month."),
                                    ("Assistant", "Lisbon is lovely; will you visit Daniel there?")],
                    title="My friend Daniel is moving to Lisbon next")
    b = add_session(store, day(2), [("User", "I planted tomatoes and basil in the garden."),
                                    ("Assistant", "Tomatoes and basil grow well together."),
                                    ("User", "Daniel gave me the basil seeds.")])
    return (a, b), (add_segment(store, a), add_segment(store, b))


def test_plan_counts_a_memory_and_describes_it(store):
    (a, b), (sa, sb) = grows(store)
    plan = plan_forget(store, segment_id=sa)
    assert (plan.turns, plan.segments, plan.clips, plan.sessions) == (2, 1, 0, 1)
    assert plan.describe() == "This forgets 2 turns, 1 memory, 0 summaries and 0 clips (1 whole session)."
    assert store.count("turns") == 5      # planning deletes nothing


def test_plan_by_phrase_takes_matching_turns_only(store):
    (a, b), (sa, sb) = grows(store)
    plan = plan_forget(store, phrase="daniel")
    texts = {t.text for t in store.turns_by_ids(plan.turn_ids)}
    assert texts == {"My friend Daniel is moving to Lisbon next month.", "Lisbon is lovely; will you visit Daniel there?",
                     "Daniel gave me the basil seeds."}
    assert plan.sessions == 1 and plan.session_ids == [a]      # session a is left empty; b keeps 2 turns
    assert plan.segments == 2
    assert plan.describe().startswith("This forgets 3 turns (1 of them an answer built on it), 2 memories")


def test_phrase_matches_other_word_forms_but_not_a_speaker_name(store):
    sid = add_session(store, day(3), [("User", "We adopted two cats."), ("Daniel", "Nice weather today.")])
    from memory.recall import TurnIndex
    TurnIndex(store, FakeEmbedder()).index_pending()
    ids = matching_turns(store, "cat")
    assert [t.text for t in store.turns_by_ids(ids)] == ["We adopted two cats."]
    assert matching_turns(store, "daniel") == []
    assert sid


def test_forget_by_phrase_removes_it_everywhere_and_keeps_the_rest(store):
    (a, b), (sa, sb) = grows(store)
    emb = FakeEmbedder()
    consolidate(store, emb)
    assert "Daniel" in SummaryStore(store).running().text
    plan = forget(store, plan_forget(store, phrase="Daniel"))
    assert plan.describe().startswith("Forgot 3 turns")
    assert store.session(a) is None
    left = store.turns(b)
    assert [t.text for t in left] == ["I planted tomatoes and basil in the garden.", "Tomatoes and basil grow well together."]
    # every summary that saw it is hidden (blank) until rebuilt, then rebuilt without it
    assert all("Daniel" not in r[0] for r in store.db.execute("SELECT text FROM summaries"))
    assert SummaryStore(store).running() is None
    consolidate(store, emb)
    running = SummaryStore(store).running().text
    assert "tomatoes" in running and "Daniel" not in running
    for table, col in (("turns", "text"), ("segments", "key"), ("segments", "topic"), ("fts_turn", "text"),
                       ("fts_segment", "text"), ("summaries", "text"), ("turn_memories", "text")):
        assert not store.db.execute(f"SELECT 1 FROM {table} WHERE {col} LIKE '%daniel%'").fetchall(), table
    hits = SegmentRecall(store, emb).search("Daniel Lisbon", 500)
    assert all("Daniel" not in m.text for m in hits)


def test_forget_session_cascades_and_renamed_title_is_kept_elsewhere(store):
    (a, b), _ = grows(store)
    store.rename_session(b, "Garden")
    forget(store, plan_forget(store, session_id=a))
    assert store.session(a) is None and store.count("segments") == 1
    assert store.session(b).title == "Garden"


def test_forget_a_time_range(store):
    (a, b), _ = grows(store)
    plan = plan_forget(store, since=day(2, hour=0), until=day(3, hour=0))
    assert plan.session_ids == [b] and plan.turns == 3
    forget(store, plan)
    assert store.session(b) is None and store.session(a) is not None


def test_title_from_a_forgotten_turn_is_replaced(store):
    sid = store.new_session(title="Daniel owes me ten euros")
    store.add_turn(sid, "user", "Daniel owes me ten euros")
    store.add_turn(sid, "user", "Also buy milk")
    forget(store, plan_forget(store, phrase="daniel"))
    assert store.session(sid).title == "Also buy milk"


def test_a_session_that_loses_its_first_turns_starts_at_the_first_one_it_keeps(store):
    sid = store.new_session(title="Dog", started_at="2026-12-05T09:49:00+00:00")
    store.add_turn(sid, "user", "My dog is called Biscuit.", created_at="2026-12-05T09:49:00+00:00")
    store.add_turn(sid, "user", "I start a new job on Monday.", created_at="2026-12-05T10:30:00+00:00")
    other = store.new_session(title="Tea", started_at="2026-12-05T08:00:00+00:00")
    store.add_turn(other, "user", "I like tea.", created_at="2026-12-05T08:01:00+00:00")
    store.add_turn(other, "user", "Biscuit likes tea too.", created_at="2026-12-05T08:05:00+00:00")
    forget(store, plan_forget(store, phrase="Biscuit"))
    assert store.session(sid).started_at == "2026-12-05T10:30:00+00:00"
    assert store.session(other).started_at == "2026-12-05T08:00:00+00:00"   # its first turn stays


def test_a_session_left_without_a_message_of_the_users_is_named_again_by_the_next_one(store):
    """It was titled "New conversation", the same words as the list's own entry for starting one."""
    from assistant.config import Config
    from assistant.core import Assistant
    from tests.fakes import FakeLLM

    sid = store.new_session(title="Daniel owes me ten euros")
    store.add_turn(sid, "user", "Daniel owes me ten euros")
    store.add_turn(sid, "assistant", "Noted.")
    plan = plan_forget(store, phrase="daniel")
    plan.session_ids.remove(sid)              # as /forget keeps the conversation going on (empty)
    plan.touched_sessions.append(sid)
    forget(store, plan)
    assert store.session(sid).title is None
    a = Assistant(store, None, Config(), model=FakeLLM(replies=["Sure."]))
    from memory.bank import SegmentRecall
    a.recall = SegmentRecall(store, FakeEmbedder(), count_tokens=a.count_tokens)
    a.answer(sid, "Remind me to water the plants")
    assert store.session(sid).title == "Remind me to water the plants"


def test_forget_removes_clip_rows_and_files(store, tmp_path):
    sid = store.new_session(source="audio")
    tid = store.add_turn(sid, "user", "zorblax heard in the room", source="audio", speaker="Room")
    f = tmp_path / "clip.flac"
    f.write_bytes(b"fLaC zorblax")
    store.db.execute("INSERT INTO audio_clips (session_id, turn_id, path, started_at, ended_at) VALUES (?, ?, ?, ?, ?)",
                     [sid, tid, str(f), day(1), day(1)])
    store.db.conn.commit()
    plan = plan_forget(store, phrase="zorblax")
    assert plan.clips == 1
    forget(store, plan)
    assert not f.exists() and store.count("audio_clips") == 0


def test_bad_choices_say_so(store):
    with pytest.raises(ValueError):
        plan_forget(store)
    with pytest.raises(ValueError):
        plan_forget(store, phrase="  ")
    with pytest.raises(NotFoundError):
        plan_forget(store, segment_id=99)
    with pytest.raises(NotFoundError):
        plan_forget(store, session_id=99)
    assert plan_forget(store, phrase="nothing here").describe() == "Nothing matches, so there is nothing to forget."


def test_forget_calls_the_hooks(store):
    grows(store)
    called = []
    store.on_forget.append(lambda: called.append(1))
    forget(store, plan_forget(store, phrase="Daniel"))
    assert called == [1]


# -- corrections ---------------------------------------------------------------------------------------------
def dentist(store):
    sid = add_session(store, day(1), [("User", "My dentist is Dr. Hill on Baker Street."),
                                      ("Assistant", "Noted: Dr. Hill on Baker Street.")])
    return sid, add_segment(store, sid)


def test_correction_replaces_the_memory_in_recall_and_keeps_the_originals(store):
    emb = FakeEmbedder()
    sid, seg = dentist(store)
    c = edits.correct(store, seg, "User: My dentist is Dr. Brooks on Baker Street.", embedder=emb)
    assert [t.text for t in store.turns(sid)] == ["My dentist is Dr. Brooks on Baker Street."]
    said = store.transcript(sid)
    assert [t.corrected_by for t in said] == [c.turn_id, c.turn_id, None]
    hits = SegmentRecall(store, emb).search("dentist Baker Street", 500)
    assert hits and hits[0].id == seg and "Brooks" in hits[0].text
    assert all("Hill" not in m.text for m in hits)
    assert not store.db.execute("SELECT 1 FROM fts_turn WHERE text LIKE '%Hill%'").fetchall()
    assert "Hill" not in SegmentStore(store).get([seg])[seg].key


def test_consolidation_after_a_correction_keeps_it(store):
    emb = FakeEmbedder()
    sid, seg = dentist(store)
    consolidate(store, emb)
    assert "Hill" in SummaryStore(store).running().text
    edits.correct(store, seg, "My dentist is Dr. Brooks.", embedder=emb)
    assert SummaryStore(store).running() is None            # hidden until rebuilt
    store.add_turn(sid, "user", "I also need a new toothbrush.")
    consolidate(store, emb)
    running = SummaryStore(store).running().text
    assert "Brooks" in running and "Hill" not in running
    texts = " ".join(t.text for t in store.turns(sid))
    assert "Brooks" in texts and "Hill" not in texts
    hits = SegmentRecall(store, emb).search("who is my dentist", 500)
    assert any("Brooks" in m.text for m in hits) and all("Hill" not in m.text for m in hits)


def test_forgetting_a_corrected_memory_forgets_the_original_too(store):
    emb = FakeEmbedder()
    sid, seg = dentist(store)
    edits.correct(store, seg, "My dentist is Dr. Brooks.", embedder=emb)
    plan = plan_forget(store, segment_id=seg)
    assert plan.turns == 3
    forget(store, plan)
    assert store.count("turns") == 0


def test_correct_refuses_empty_text_and_unknown_memory(store):
    sid, seg = dentist(store)
    with pytest.raises(ValueError):
        edits.correct(store, seg, "  User:  ", embedder=FakeEmbedder())
    with pytest.raises(NotFoundError):
        edits.correct(store, 999, "x", embedder=FakeEmbedder())


# -- pins ----------------------------------------------------------------------------------------------------
def test_remember_pin_unpin(store):
    sid, seg = dentist(store)
    p1 = edits.remember(store, "My sister's birthday is 3 June.")
    assert edits.remember(store, "My sister's birthday is 3 June.") == p1
    p2 = edits.pin(store, seg)
    got = edits.pins(store)
    assert [p.id for p in got] == [p1, p2]
    assert got[0].for_user() == "Your sister's birthday is 3 June."
    assert got[1].lines == ["User: My dentist is Dr. Hill on Baker Street."] and got[1].turn_ids
    edits.unpin(store, p1)
    with pytest.raises(NotFoundError):
        edits.unpin(store, p1)
    assert [p.id for p in edits.pins(store)] == [p2]


def test_a_pinned_fact_reads_without_the_request_that_came_with_it(store):
    sid = add_session(store, day(1), [("User", "I'm allergic to penicillin, so please keep that in mind."),
                                      ("Assistant", "Noted.")])
    edits.pin(store, add_segment(store, sid))
    pinned = edits.pins(store)[0]
    assert pinned.lines == ["User: I'm allergic to penicillin, so please keep that in mind."]   # as said
    assert pinned.for_user() == "You're allergic to penicillin."
    edits.remember(store, "Please remember that my dentist is Dr. Brooks.")
    edits.remember(store, "Please write a function that reverses a string.")   # only a request: as it is
    assert edits.pinned_lines(store, 200) == ["You're allergic to penicillin.", "Your dentist is Dr. Brooks.",
                                              "Please write a function that reverses a string."]


def test_pinned_lines_keep_the_newest_within_the_budget(store):
    for i in range(5):
        edits.remember(store, f"Fact number {i} is about something long enough to count")
    lines = edits.pinned_lines(store, 40)
    assert lines and lines[-1].startswith("Fact number 4") and len(lines) < 5


def test_a_pin_follows_its_memory(store):
    emb = FakeEmbedder()
    sid, seg = dentist(store)
    p = edits.pin(store, seg)
    edits.correct(store, seg, "My dentist is Dr. Brooks.", embedder=emb)
    assert edits.pins(store)[0].text == "User: My dentist is Dr. Brooks."
    forget(store, plan_forget(store, segment_id=seg))
    assert edits.pins(store) == [] and p


def test_a_summary_made_before_a_forget_and_written_after_it_is_not_written(store):
    """Consolidation computes outside its write transaction: what it computed from turns forgotten
    meanwhile must not bring their words back."""
    from memory import summaries as sm

    (a, b), _ = grows(store)
    emb = FakeEmbedder()
    consolidate(store, emb)
    store.add_turn(b, "user", "Daniel also brought lemons.")
    summaries = SummaryStore(store)
    turns = store.turns(b)
    text, sources = sm.session_text(turns, 200)
    assert "lemons" in text
    forget(store, plan_forget(store, phrase="lemons"))
    with store.db.conn:
        assert summaries.add("session", str(b), text, day(2), day(3), sessions=[b], method="facts",
                             turn_ids=sources) is None
    assert all("lemons" not in r[0] for r in store.db.execute("SELECT text FROM summaries"))
    # a fold planned on a running memory that forgetting hid is not written either
    consolidate(store, emb)
    plan = sm.plan_fold(summaries) or sm.FoldPlan(summaries.running_base(), summaries.list("session")[:1])
    forget(store, plan_forget(store, phrase="tomatoes"))
    with store.db.conn:
        assert sm.write_fold(store, plan, sm.fold(plan) + "\ntomatoes", "facts", 0) is None
    assert all("tomatoes" not in r[0] for r in store.db.execute("SELECT text FROM summaries"))


def test_forgetting_a_memory_takes_its_timeline_links_and_attached_copies(store):
    from memory.attached import Attached, AttachedStore

    (a, b), (sa, sb) = grows(store)
    with store.db.conn:
        store.db.execute("INSERT INTO links (earlier_id, later_id, label, earlier_at, later_at, created_at) "
                         "VALUES (?, ?, 'SameTopic', ?, ?, ?)", [sa, sb, day(1), day(2), day(2)])
    asker = store.new_session()
    q = store.add_turn(asker, "user", "what about Lisbon?")
    AttachedStore(store).add(q, [Attached("segment", sa, "Daniel is moving to Lisbon", [t.id for t in store.turns(a)])])
    forget(store, plan_forget(store, segment_id=sa))
    assert store.count("links") == 0 and store.count("turn_memories") == 0
    assert store.count("link_log") == 0           # the later memory is linked again by consolidation


def test_a_title_made_from_a_corrected_turn_follows_the_correction_and_a_chosen_one_stays(store):
    from memory.store import title_from

    emb = FakeEmbedder()
    sid, seg = dentist(store)
    other, seg2 = dentist(store)
    with store.db.conn:
        store.db.execute("UPDATE sessions SET title = ? WHERE id = ?",
                         [title_from("My dentist is Dr. Hill on Baker Street."), sid])
        store.db.execute("UPDATE sessions SET title = 'Teeth' WHERE id = ?", [other])
    edits.correct(store, seg, "My dentist is Dr. Brooks.", embedder=emb)
    edits.correct(store, seg2, "My dentist is Dr. Brooks.", embedder=emb)
    assert "Hill" not in store.session(sid).title and "Brooks" in store.session(sid).title
    assert store.session(other).title == "Teeth"


def test_a_phrase_as_people_say_it_finds_its_words_in_any_order_and_the_pinned_fact(store):
    sid = add_session(store, day(4), [("User", "What is my gym locker code again?"),
                                      ("User", "My locker code at the gym is 4312."),
                                      ("User", "The gym was busy today.")])
    from memory.recall import TurnIndex
    TurnIndex(store, FakeEmbedder()).index_pending()
    pin = edits.remember(store, "My locker code at the gym is 4312")
    plan = plan_forget(store, phrase="the gym locker")
    assert {t.text for t in store.turns_by_ids(plan.turn_ids)} == {
        "What is my gym locker code again?", "My locker code at the gym is 4312."}
    assert plan.pin_ids == [pin]
    assert sid


def test_the_answers_built_on_a_forgotten_fact_go_with_it_and_so_do_questions_about_it(store):
    from memory.attached import Attached, AttachedStore
    told = add_session(store, day(1), [("User", "My cello lesson is on Thursday evening."),
                                       ("Assistant", "Enjoy your lesson on Thursday!"),
                                       ("User", "I also need new running shoes."),
                                       ("Assistant", "Good shoes make running easier.")])
    asked = add_session(store, day(2), [("User", "When is my lesson?"),
                                        ("Assistant", "Your lesson is on Thursday evening."),
                                        ("User", "And what do I need to buy?"),
                                        ("Assistant", "New running shoes.")])
    lesson, enjoy, shoes, _ = [t.id for t in store.turns(told)]
    when, thursday, buy, _ = [t.id for t in store.turns(asked)]
    AttachedStore(store).add(when, [Attached("segment", None, "User: My cello lesson is on Thursday evening.",
                                             [lesson, enjoy])])
    AttachedStore(store).add(buy, [Attached("turn", shoes, "User: I also need new running shoes.", [shoes])])
    plan = plan_forget(store, phrase="cello")
    assert sorted(plan.turn_ids) == sorted([lesson, enjoy, when, thursday])
    assert plan.answers == 2 and plan.questions == 1
    assert plan.describe().startswith("This forgets 4 turns (2 of them answers built on it, 1 question about it), ")
    forget(store, plan)
    left = [t.text for sid in (told, asked) for t in store.turns(sid)]
    assert left == ["I also need new running shoes.", "Good shoes make running easier.",
                    "And what do I need to buy?", "New running shoes."]
    assert not store.db.execute("SELECT 1 FROM turns WHERE text LIKE '%thursday%'").fetchall()


def test_a_statement_whose_answer_goes_stays_and_so_does_a_question_about_something_else(store):
    """Only a question that holds a word of what goes follows its answer: a statement may be a fact of its
    own, and a question about something else is the user's too."""
    sid = add_session(store, day(1), [("User", "My dog is called Biscuit."), ("Assistant", "Hello Biscuit!"),
                                      ("User", "I'm allergic to penicillin."),
                                      ("Assistant", "Biscuit will keep you company."),
                                      ("User", "Where should I go on holiday?"),
                                      ("Assistant", "Take Biscuit to the beach."),
                                      ("User", "What's my dog's name?"), ("Assistant", "Biscuit."),
                                      ("User", "what does my dog eat"), ("Assistant", "Biscuit eats kibble.")])
    plan = plan_forget(store, phrase="Biscuit")
    forget(store, plan)
    assert [t.text for t in store.turns(sid)] == ["I'm allergic to penicillin.", "Where should I go on holiday?"]
    assert plan.questions == 2


def test_a_later_answer_in_the_same_chat_that_repeats_the_forgotten_words_goes_too(store):
    sid = add_session(store, day(1), [("User", "My dog is called Biscuit and she loves the beach."),
                                      ("Assistant", "That sounds lovely."),
                                      ("User", "What's my dog's name?"),
                                      ("Assistant", "Your dog's name is Biscuit."),
                                      ("User", "What should I cook tonight?"),
                                      ("Assistant", "Try a pasta dish with your dog nearby.")])
    plan = plan_forget(store, phrase="that my dog is called Biscuit")
    assert plan.answers == 2 and plan.questions == 1 and plan.turns == 4
    forget(store, plan)
    assert [t.text for t in store.turns(sid)] == ["What should I cook tonight?",
                                                  "Try a pasta dish with your dog nearby."]


def test_an_answer_that_says_the_phrase_itself_counts_among_the_answers(store):
    add_session(store, day(1), [("User", "My dog is called Biscuit."),
                                ("Assistant", "My dog is called Biscuit."),        # the model repeated it
                                ("User", "Tell me about her."),
                                ("Assistant", "Your dog is called Biscuit and she loves the beach.")])
    plan = plan_forget(store, phrase="dog is called Biscuit")
    assert plan.turns == 3 and plan.answers == 2
    assert plan.describe().startswith("This forgets 3 turns (2 of them answers built on it), ")


def test_an_answer_given_after_the_plan_was_made_goes_too(store):
    sid = add_session(store, day(1), [("User", "Hello there."), ("Assistant", "Hi!"),
                                      ("User", "My locker code is 4512.")])
    plan = plan_forget(store, phrase="locker code")
    assert plan.turns == 1 and plan.answers == 0 and plan.sessions == 0
    store.add_turn(sid, "assistant", "Noted: 4512.", source="chat")     # answered while the user read the plan
    forget(store, plan)
    assert [t.text for t in store.turns(sid)] == ["Hello there.", "Hi!"]
