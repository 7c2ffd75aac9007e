"""Faithful memory: summaries keep who said what. The user's facts stay the user's, other people's stay
theirs, the assistant's words are never a fact, a summary is never the transcript, and a short chat is not
given parts of the day it did not span. Fast: a scripted model that writes the wrong summaries a small
model wrote (tests/scenarios/test_facts.py runs the real one)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from assistant.journal_export import render as render_journal_as
from memory import facts as F
from memory.clock import to_iso
from memory.consolidate import Consolidator, Settings
from memory.store import Turn
from memory.summaries import SummaryStore, lines
from tests.fakes import FakeEmbedder
from tests.test_consolidation_fakes import SchemaLLM, add_segment


class ConfusedLLM(SchemaLLM):
    """Labels links like SchemaLLM; every plain-text answer (what a summary, a fold or a roll-up would be)
    is what the 1.5B model wrote: the user's allergy given to the sister, the assistant's words as facts,
    the transcript pasted back, parts of the day the chat never spanned."""

    def _plain(self, text: str) -> str:
        return ("In the morning, your sister Anna was allergic to penicillin. In the afternoon, Assistant: I am "
                "allergic to penicillin. In the evening, you plan to eat at The Olive Grove. " + text)


def chat(store, when: datetime, turns: list[tuple[str, str]], minutes: float = 1.0, segments: int = 1) -> int:
    """A chat session (role, text), a turn every `minutes`; `segments` final segments over its turns."""
    sid = store.new_session(title="chat", started_at=to_iso(when))
    ids = [store.add_turn(sid, role, text, created_at=to_iso(when + timedelta(minutes=i * minutes)))
           for i, (role, text) in enumerate(turns)]
    size = -(-len(ids) // segments)
    for k in range(0, len(ids), size):
        add_segment(store, sid, ids[k:k + size])
    with store.db.conn:
        store.db.execute("INSERT INTO segmentation_log (session_id, last_turn_id, segments, method, done_at)"
                         " VALUES (?, ?, ?, 'test', ?)", [sid, ids[-1], segments, to_iso(when)])
    return sid


MONDAY = datetime(2025, 3, 3, 9, 0, tzinfo=timezone.utc)
FIRST = [("user", "Hi! My sister Anna has a dentist appointment on Friday, and I'm allergic to penicillin."),
         ("assistant", "Noted. I am allergic to penicillin too, as it happens."),
         ("user", "Can you suggest a few restaurants for dinner tonight?"),
         ("assistant", "Certainly! 1. The Olive Grove - pasta. 2. The Bistro - Italian. 3. The Grub."),
         ("user", "Thanks. My dog Biscuit is a golden retriever."),
         ("assistant", "Golden retrievers are lovely. I suggest you take Biscuit to the river park.")]


def consolidated(store, sessions) -> tuple[SummaryStore, str, ConfusedLLM]:
    for when, turns, kw in sessions:
        chat(store, when, turns, **kw)
    llm = ConfusedLLM()
    rep = Consolidator(store, FakeEmbedder(), llm, Settings(min_similarity=0.05)).run()
    assert rep.status == "done", rep.error
    return SummaryStore(store), render_journal_as(store, "md"), llm


def every_text(ss: SummaryStore) -> list[str]:
    return [s.text for kind in ("session", "running", "day", "week", "month") for s in ss.list(kind)]


def test_the_users_facts_stay_the_users_and_others_stay_with_their_people(store):
    ss, journal, _ = consolidated(store, [(MONDAY, FIRST, {})])
    session = ss.list("session")[0].text
    assert lines(session) == ["User: My sister Anna has a dentist appointment on Friday.",
                              "User: I'm allergic to penicillin.", "User: My dog Biscuit is a golden retriever."]
    print(journal)
    assert "- Your sister Anna has a dentist appointment on Friday." in journal
    assert "- You're allergic to penicillin." in journal
    assert "- Your dog Biscuit is a golden retriever." in journal
    for text in every_text(ss) + [journal]:
        assert "sister Anna was allergic" not in text and "Anna is allergic" not in text


def test_the_assistants_turns_are_never_a_source_of_facts(store):
    ss, journal, _ = consolidated(store, [(MONDAY, FIRST, {})])
    for text in every_text(ss) + [journal]:
        assert "Assistant" not in text and "I am allergic" not in text
        assert "Olive Grove" not in text and "river park" not in text     # its suggestions are not plans
    # every stored fact is words its source turn said, and that turn is the user's
    s = ss.list("session")[0]
    sources = store.turns_by_ids([int(i) for i in s.inputs.split(",")])
    assert all(t.role == "user" for t in sources)
    for line in lines(s.text):
        said = F.split_line(line)[2].rstrip(".").lower()
        assert any(said in t.text.lower() for t in sources), line


def test_a_fact_no_one_said_is_never_stored(store):
    """What the model would add (the restaurant plan, the times of day) has no source turn: it is not in
    any summary, however the model words it."""
    ss, journal, llm = consolidated(store, [(MONDAY, FIRST, {})])
    said = [t.text.lower() for t in store.turns(1) if t.role == "user"]
    for text in every_text(ss):
        for line in lines(text):
            assert any(F.split_line(line)[2].rstrip(".").lower() in t for t in said), line
    assert not any("Summarize" in p[-1]["content"] or "memory of the conversations" in p[-1]["content"]
                   for p in llm.prompts)


def test_a_summary_is_never_the_transcript(store):
    ss, journal, _ = consolidated(store, [(MONDAY, FIRST, {})])
    transcript = "\n".join(t.text for t in store.turns(1))
    for text in every_text(ss):
        assert text != transcript and len(text) < len(transcript) / 2
        assert "suggest a few restaurants" not in text           # a question is not a fact
        assert "?" not in text and "Thanks" not in text and "Hi!" not in text


def test_a_six_minute_chat_gets_no_parts_of_the_day(store):
    """The fast segmenter may cut a short chat into three parts; they are not morning, afternoon and
    evening. The user's own "this evening" is kept, as said."""
    turns = FIRST + [("user", "I'm cooking risotto this evening.")]
    ss, journal, _ = consolidated(store, [(MONDAY, turns, {"minutes": 1, "segments": 3})])
    for text in every_text(ss) + [journal]:
        low = text.lower()
        assert "morning" not in low and "afternoon" not in low
        assert low.count("evening") == low.count("risotto this evening")       # only where the user said it
    assert "- You're cooking risotto this evening." in journal


def test_named_speakers_keep_their_names_and_the_user_is_you(store):
    sid = store.new_session(title="import", source="import", started_at=to_iso(MONDAY))
    ids = [store.add_turn(sid, role, text, source="import", speaker=who, created_at=to_iso(MONDAY))
           for role, who, text in [("user", "Caroline", "I started a new job as a nurse."),
                                   ("assistant", "Melanie", "My son Leo turned 7 yesterday."),
                                   ("assistant", None, "I am a language model.")]]
    turns = store.turns_by_ids(ids)
    assert [F.speaker_of(t) for t in turns] == ["Caroline", "Melanie", None]
    assert [f.line for f in F.candidates(turns)] == ["Caroline: I started a new job as a nurse.",
                                                     "Melanie: My son Leo turned 7 yesterday."]
    assert F.for_user("[3 Mar 2025] Melanie: My son Leo turned 7 yesterday.") == \
        "[3 Mar 2025] Melanie: My son Leo turned 7 yesterday."
    heard = Turn(9, 1, "user", "The budget meeting moved to Thursday.", "t", "audio")
    assert F.candidates([heard])[0].line == "Heard in the room: The budget meeting moved to Thursday."


@pytest.mark.parametrize("said, shown", [
    ("I'm allergic to penicillin.", "You're allergic to penicillin."),
    ("I am a teacher and I was in the US last year.", "You are a teacher and you were in the US last year."),
    ("My brother Sam works as a pilot.", "Your brother Sam works as a pilot."),
    ("We adopted a cat; our cat is called Miso.", "You adopted a cat; your cat is called Miso."),
    ("I told you about my sister.", "You told the assistant about your sister."),
    ("Your idea was good, I booked the table myself.", "The assistant's idea was good, you booked the table yourself."),
])
def test_the_users_words_are_shown_in_the_second_person(said, shown):
    assert F.for_user(f"User: {said}") == shown


def test_a_clause_with_a_subject_of_its_own_is_a_fact_of_its_own():
    assert F.clauses("I'm allergic to penicillin, but my brother Tom is allergic to peanuts.") == [
        "I'm allergic to penicillin.", "My brother Tom is allergic to peanuts."]
    assert F.clauses("It rained; we stayed home.") == ["It rained.", "We stayed home."]
    # "and" with no comma, after a clause with its own verb
    assert F.clauses("My sister Anna is a pilot and I work as a nurse at the children's hospital.") == [
        "My sister Anna is a pilot.", "I work as a nurse at the children's hospital."]
    for whole in ("My sister Anna and I went to Paris.", "I visited London and Paris last year.",
                  "Tom and I went to Paris.",
                  "I like tea, and coffee too.", "My sister Anna called, and she has a dentist appointment."):
        assert F.clauses(whole) == [whole]


def test_candidates_are_statements_and_a_pronoun_keeps_its_name():
    t = Turn(1, 1, "user", "Hello! My sister Anna called. She has a dentist appointment on Friday. Can you "
                           "remind me? Please suggest a gift. Sounds good. Congratulations on the new job! "
                           "I love hiking, you know.", "t")
    assert [f.said for f in F.candidates([t])] == [
        "My sister Anna called. She has a dentist appointment on Friday.", "I love hiking."]


@pytest.mark.parametrize("request_", ["Sure, and please suggest three restaurant names for my birthday.",
                                      "Okay so recommend a book for my flight.",
                                      "I'd like you to please list some gift ideas for my mother."])
def test_a_request_after_a_lead_word_or_with_please_is_not_a_fact(request_):
    assert not F.is_statement(request_)
    assert F.is_statement("So I moved to Lisbon in May.")


def test_calling_someone_by_name_is_not_a_fact():
    turns = [Turn(1, 1, "user", "Hey Melanie, I adopted a dog named Rex. Totally agree, Mel.", "t", "import",
                  speaker="Caroline"),
             Turn(2, 1, "assistant", "That's great, Caroline! I ran a race last Saturday, Caro.", "t", "import",
                  speaker="Melanie")]
    assert [f.line for f in F.candidates(turns)] == ["Caroline: I adopted a dog named Rex.",
                                                     "Melanie: I ran a race last Saturday."]


def test_keep_fits_the_words_and_prefers_dated_named_facts():
    lines_ = ["User: That was a really fun thing.", "User: My dentist appointment is on 12 May.",
              "User: I like tea.", "User: You are so kind!"]
    kept = F.keep(lines_, [0] * 4, 14)
    assert [lines_[i] for i in kept] == ["User: My dentist appointment is on 12 May.", "User: I like tea."]
    assert F.keep(lines_, [0] * 4, 100) == [0, 1, 2, 3]


def test_summaries_made_before_are_set_aside_and_rebuilt(tmp_path):
    """Summaries the model wrote before (m050): consolidation rebuilds them all from the facts, and the
    old running memory is not the base of the new one."""
    from memory.store import Store

    store = Store(tmp_path / "old.db")
    chat(store, MONDAY, FIRST)
    ss = SummaryStore(store)
    with store.db.conn:
        ss.add("session", "1", "Your sister Anna is allergic to penicillin.", to_iso(MONDAY), to_iso(MONDAY),
               sessions=[1], last_turn_id=10**6)
        ss.add("running", "main", "Assistant: I am allergic to penicillin.", to_iso(MONDAY), to_iso(MONDAY),
               sessions=[1])
        store.db.execute("DELETE FROM _migrations WHERE name = 'm050_summaries_of_facts'")
    store.close()
    store = Store(tmp_path / "old.db")          # the migration runs again, as on an upgrade
    ss = SummaryStore(store)
    assert ss.current("session", "1") is None and ss.running() is None and ss.running_base() is None
    Consolidator(store, FakeEmbedder(), ConfusedLLM(), Settings(min_similarity=0.05)).run()
    assert "Anna is allergic" not in ss.current("session", "1").text
    assert "Assistant" not in ss.running().text and "allergic to penicillin" in ss.running().text
    store.close()


@pytest.mark.parametrize("said, fact", [
    ("I'm allergic to penicillin, so please keep that in mind.", "I'm allergic to penicillin."),
    ("I'm allergic to penicillin, please remember that.", "I'm allergic to penicillin."),
    ("I'm vegetarian - please keep that in mind", "I'm vegetarian."),
    ("My sister Anna lives in Porto, can you please suggest a hotel there?", "My sister Anna lives in Porto."),
    ("Please remember that my dentist is Dr. Brooks.", "My dentist is Dr. Brooks."),
    ("Can you please remember that my dentist is Dr. Brooks?", "My dentist is Dr. Brooks."),
])
def test_a_request_that_comes_with_a_fact_is_cut_off_and_the_fact_stays(said, fact):
    t = Turn(1, 1, "user", said, "t")
    assert [f.said for f in F.candidates([t])] == [fact]


@pytest.mark.parametrize("request_", ["Please write a function that reverses a string.",
                                      "Please write a function that reverses a string",
                                      "Can you please keep that in mind?",
                                      "Sure, and please suggest three restaurant names for my birthday."])
def test_a_sentence_that_is_only_a_request_stays_out(request_):
    assert F.candidates([Turn(1, 1, "user", request_, "t")]) == []


def test_a_fact_said_with_please_reaches_the_journal_and_the_carried_memory(store):
    turns = [("user", "I'm allergic to penicillin, so please keep that in mind."),
             ("assistant", "Noted, I will keep that in mind."),
             ("user", "Please write a function that reverses a string."),
             ("assistant", "def rev(s): return s[::-1]")]
    ss, journal, _ = consolidated(store, [(MONDAY, turns, {})])
    assert lines(ss.list("session")[0].text) == ["User: I'm allergic to penicillin."]
    assert "User: I'm allergic to penicillin." in ss.running().text
    assert "- You're allergic to penicillin." in journal
    assert "please" not in journal.lower() and "reverses a string" not in journal


def test_a_correction_is_the_fact_it_states_and_takes_back_the_one_it_corrects():
    t = Turn(1, 1, "user", "I have a golden retriever called Max. I moved to Lisbon in May. "
                           "Actually my dog is called Rex, not Max.", "t")
    assert [f.said for f in F.candidates([t])] == ["I moved to Lisbon in May.", "My dog is called Rex, not Max."]
    assert F.for_user("User: My dog is called Rex, not Max.") == "Your dog is called Rex, not Max."
    assert F.without_correction("No, actually, my sister is called Anna.") == "My sister is called Anna."
    assert F.without_correction("Sorry, I meant my brother Tom.") == "My brother Tom."
    # a fact that only shares the replaced word is not taken back; nor is anyone else's
    assert not F.taken_back("I have a dentist appointment on Monday.", "I'm going to Paris on Friday, not Monday.")
    assert F.taken_back("I'm going to Paris on Monday.", "I'm going to Paris on Friday, not Monday.")
    assert not F.taken_back("My friend Max has a dog.", "My dog is called Rex, not Max.")
    assert not F.taken_back("I love dogs and cats.", "I have two cats, not dogs.")
    assert not F.taken_back("I have a golden retriever called Rex.", "My dog is called Rex, not Max.")
    other = [Turn(1, 1, "user", "My dog is called Max.", "t", "import", speaker="Caroline"),
             Turn(2, 1, "user", "Actually my dog is called Rex, not Max.", "t", "import", speaker="Melanie")]
    assert [f.line for f in F.candidates(other)] == ["Caroline: My dog is called Max.",
                                                     "Melanie: My dog is called Rex, not Max."]
    for kept in ("No one came to the party.", "I actually like tea a lot."):
        assert F.without_correction(kept) == kept


def test_a_correction_in_a_later_chat_takes_the_old_fact_out_of_the_carried_memory_and_the_day(store):
    ss, journal, _ = consolidated(store, [
        (MONDAY, [("user", "I have a golden retriever called Max."), ("assistant", "Lovely!"),
                  ("user", "My sister Anna has a dentist appointment on Friday.")], {}),
        (MONDAY + timedelta(hours=3), [("user", "Actually my dog is called Rex, not Max."),
                                       ("assistant", "Rex it is.")], {})])
    running = ss.running().text
    assert "called Max" not in running and "User: My dog is called Rex, not Max." in running
    assert "Anna has a dentist appointment" in running
    assert "- Your dog is called Rex, not Max." in journal
    assert "golden retriever called Max" not in journal and "Actually" not in journal


def test_summaries_made_with_the_earlier_rules_are_rebuilt(tmp_path):
    """A fact the earlier rules left out (said with "please") comes back at the next consolidation after
    the upgrade (m090), in the session's summary and in the carried memory."""
    from memory.store import Store

    store = Store(tmp_path / "old.db")
    chat(store, MONDAY, [("user", "I'm allergic to penicillin, so please keep that in mind."),
                         ("assistant", "Noted.")])
    ss = SummaryStore(store)
    with store.db.conn:      # what the earlier rules made of it: nothing
        ss.add("session", "1", "", to_iso(MONDAY), to_iso(MONDAY), sessions=[1], last_turn_id=10**6)
        ss.add("running", "main", "Room: Hi, this is Maria.", to_iso(MONDAY), to_iso(MONDAY), sessions=[1])
        store.db.execute("DELETE FROM _migrations WHERE name = 'm090_facts_again'")
    store.close()
    store = Store(tmp_path / "old.db")          # the migration runs, as on an upgrade
    ss = SummaryStore(store)
    assert ss.current("session", "1") is None and ss.running() is None
    Consolidator(store, FakeEmbedder(), ConfusedLLM(), Settings(min_similarity=0.05)).run()
    assert ss.current("session", "1").text == "User: I'm allergic to penicillin."
    assert "User: I'm allergic to penicillin." in ss.running().text and "Room" not in ss.running().text
    store.close()
