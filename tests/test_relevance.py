"""Recall only what earns its place: greetings and thanks attach no memories, and a memory far from the
message (found only through one shared word) is not attached."""
from assistant.prompts import NO_MEMORIES
from memory.relevance import calls_for_memory, closeness
from memory.recall import TurnRecall
from tests.fakes import FakeEmbedder
from tests.test_layout import make


def seeded(store):
    a, llm = make(store)
    for fact in ("Hello! My sister Maya says hello from Lisbon, where she teaches piano.",
                 "My dog Biscuit ate my dinner on Tuesday, thanks to an open kitchen door."):
        a.answer(None, fact)
    llm.prompts.clear()
    return a, llm


def test_greetings_and_thanks_attach_nothing(store):
    a, llm = seeded(store)
    sid = a.new_session()
    for text in ("Hello again!", "thanks, that's great", "ok", "Good morning!", "How are you?"):
        ans = a.answer(sid, text)
        assert ans.memories == [], text
        assert llm.prompts[-1][-1]["content"].startswith(f"<memories>\n{NO_MEMORIES}\n</memories>")
    assert calls_for_memory("Thanks! Where does Maya teach?")


def test_a_memory_far_from_the_message_is_not_attached(store):
    a, llm = seeded(store)
    question = "Any ideas for a quick vegetarian dinner with friends tonight?"
    found = a.recall.search(question, 700)
    assert any("Biscuit" in m.text for m in found)          # recall finds it (the word "dinner")...
    ans = a.answer(None, question)
    assert not any("Biscuit" in m.text for m in ans.memories)   # ...but it does not earn its place
    close = a.answer(None, "What did my dog Biscuit eat on Tuesday?")
    assert any("Biscuit" in m.text for m in close.memories)


def test_closeness_is_the_best_of_a_memorys_texts(store):
    emb = FakeEmbedder()
    recall = TurnRecall(store, emb)
    sid = store.new_session()
    a = store.add_turn(sid, "user", "piano lessons in Lisbon")
    b = store.add_turn(sid, "user", "the weather is grey")
    recall.index.index_pending()
    (m,) = [x for x in recall.search("piano lessons in Lisbon", 100) if x.id == a]
    q = emb.embed(["piano lessons in Lisbon"])[0]
    m.turn_ids = [b, a]                                     # the closest member counts
    assert closeness(q, [m], None, recall.index.vectors)[0] > 0.99


def test_a_follow_up_on_what_the_window_shows_adds_nothing(store):
    a, llm = make(store, recall_budget_tokens=30)        # room for one memory a message
    facts = ("My sister Maya lives in Lisbon.", "My sister Maya lives in Lisbon with two cats.",
             "Maya moved to Lisbon for a piano job in Lisbon.")
    for fact in facts:
        a.answer(None, fact)
    sid = a.new_session()
    first = a.answer(sid, "Where does my sister Maya live?")
    (shown,) = first.memories
    follow_up = "Where does my sister Maya live again?"
    (other,) = [m for m in a.recall.search(follow_up, 10 ** 6) if m.text.startswith("User: My sister")
                and m.id != shown.id]
    q = a.recall.embedder.embed([follow_up])[0]
    assert closeness(q, [other], None, a.recall.index.vectors)[0] >= 0.3   # it would earn a place...
    assert a.answer(sid, follow_up).memories == []                          # ...but the subject is on screen
    again = a.answer(sid, "Did Maya move to Lisbon for a piano job?")       # a new question still recalls
    assert any("piano job" in m.text for m in again.memories)
