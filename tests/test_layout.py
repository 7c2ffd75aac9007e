"""The chat prompt's layout: it only grows at its end from turn to turn (so llama.cpp reuses the prefix it
evaluated), memories stay attached to the message they were recalled for and are never shown twice, and a
full window drops old turns in one large step."""
from assistant.config import Config
from assistant.core import Assistant
from assistant.layout import window_start
from assistant.prompts import NO_MEMORIES
from memory.attached import AttachedStore
from memory.recall import TurnRecall
from tests.fakes import FakeEmbedder, FakeLLM

FACTS = ["My sister Maya lives in Lisbon and teaches piano.",
         "My dog Biscuit is afraid of the vacuum cleaner.",
         "I am training for the Berlin marathon in September.",
         "My favourite dish is my grandmother's mushroom risotto."]
QUESTIONS = ["Where does my sister Maya live?", "What does Maya teach?", "hello again",
             "Is my dog Biscuit afraid of anything?", "Which marathon am I training for?",
             "What is my favourite dish?", "And where does Maya live, again?", "thanks"]


def make(store, llm=None, **cfg):
    a = Assistant(store, None, Config(**cfg), model=llm or FakeLLM(["Noted."]))
    a.recall = TurnRecall(store, FakeEmbedder(), count_tokens=a.count_tokens)
    return a, a.model


def seeded(store, **cfg):
    a, llm = make(store, **cfg)
    for fact in FACTS:
        a.answer(None, fact)
    llm.prompts.clear()
    return a, llm


def is_prefix(before: list[dict], after: list[dict]) -> bool:
    return after[:len(before)] == before


def test_each_prompt_begins_with_the_whole_previous_prompt(store):
    a, llm = seeded(store)
    sid = a.new_session()
    for q in QUESTIONS:
        a.answer(sid, q)
    prompts = llm.prompts
    assert len(prompts) == len(QUESTIONS)
    for before, after in zip(prompts, prompts[1:]):
        assert is_prefix(before, after)
        assert len(after) == len(before) + 2        # the answer, then the new message
    # the system message holds no memory: it is the same for every session
    assert all("Maya" not in p[0]["content"] for p in prompts)


def test_memories_are_attached_to_their_message_once_and_never_repeated(store):
    a, llm = seeded(store)
    sid = a.new_session()
    first = a.answer(sid, "Where does my sister Maya live?")
    assert any("Lisbon" in m.text for m in first.memories)
    second = a.answer(sid, "Tell me again: where does my sister Maya live, in which city?")
    assert not any("Lisbon" in m.text for m in second.memories)      # already in the window
    prompt = "\n".join(m["content"] for m in llm.prompts[-1])
    assert prompt.count("lives in Lisbon") == 1
    user_messages = [m["content"] for m in llm.prompts[-1] if m["role"] == "user"]
    assert "lives in Lisbon" in user_messages[0].split("</memories>")[0]
    assert "Lisbon" not in user_messages[1] and NO_MEMORIES in user_messages[1]
    stored = AttachedStore(store).for_turns([first.user_turn_id])[first.user_turn_id]
    assert any("Lisbon" in x.text for x in stored)


def test_another_process_lays_out_the_same_prompt(store):
    a, llm = seeded(store)
    sid = a.new_session()
    for q in QUESTIONS[:4]:
        a.answer(sid, q)
    other, other_llm = make(store)           # as `assistant ask --session` would, from the database alone
    a.answer(sid, "What else do you remember?")
    other.answer(sid, "What else do you remember?")
    mine, theirs = llm.prompts[-1], other_llm.prompts[-1]
    assert is_prefix(mine, theirs) and len(theirs) == len(mine) + 2


def test_forgetting_a_source_turn_removes_the_attached_memory(store):
    a, _ = seeded(store)
    ans = a.answer(a.new_session(), "Where does my sister Maya live?")
    source = next(m for m in ans.memories if "Lisbon" in m.text).turn_ids[0]
    attached = AttachedStore(store)
    assert attached.for_turns([ans.user_turn_id])
    with store.db.conn:
        store.db.execute("DELETE FROM turns WHERE id = ?", [source])
    assert all("Lisbon" not in x.text for x in attached.for_turns([ans.user_turn_id]).get(ans.user_turn_id, []))


def test_a_full_window_drops_old_turns_in_one_large_step(store):
    long_answer = " ".join(f"word{i}" for i in range(120))      # about 190 fake tokens an answer
    a, llm = make(store, FakeLLM([long_answer], n_ctx=2048), n_ctx=2048, max_answer_tokens=128,
                  recall_budget_tokens=40)
    sid = a.new_session()
    for i in range(16):
        a.answer(sid, f"message number {i} about nothing in particular")
    prompts = llm.prompts
    breaks = [i for i, (b, c) in enumerate(zip(prompts, prompts[1:]), 1) if not is_prefix(b, c)]
    assert 2 <= len(breaks) <= 4                     # most turns reuse the prefix
    for i in breaks:                                  # each drop halves the window (at least)
        assert len(prompts[i]) - 1 <= (len(prompts[i - 1]) + 1) // 2 + 1
        assert prompts[i][1]["role"] == "user"
    for p in prompts:                                 # and every prompt fits the context
        assert sum(a.count_tokens(m["content"]) + 8 for m in p) <= 2048 - 128


def test_window_start_replays_the_same_decisions():
    turns = [("user", 100), ("assistant", 300)] * 10
    limit = 1000
    starts = [window_start(turns[:n], limit, keep=2) for n in range(1, len(turns) + 1)]
    assert starts == sorted(starts)                   # the window only moves forward
    moves = [s for s, t in zip(starts, starts[1:]) if t != s]
    assert len(moves) <= 4
    for n in range(1, len(turns) + 1):
        s = starts[n - 1]
        assert turns[s][0] == "user"
        last_user = max(i for i in range(n) if turns[i][0] == "user")
        assert sum(c for _, c in turns[s:last_user + 1]) <= limit
    # a drop goes down to half the limit, however many turns that leaves
    assert window_start([("user", 10), ("assistant", 400), ("user", 10), ("assistant", 400), ("user", 300)],
                        1000, keep=3) == 4
    # and a window of more than 2 x keep earlier turns drops down to keep turns, even with room to spare
    chat = [("user", 5), ("assistant", 5)] * 6
    assert [window_start(chat[:n], 1000, keep=2) for n in range(1, 13, 2)] == [0, 0, 0, 4, 4, 8]


def test_a_message_left_unanswered_is_not_asked_again_with_the_next_one(store):
    from memory.forget import forget, plan_forget
    a, llm = make(store, FakeLLM(["What a lovely name.", "Your dog's name is Biscuit.", "Noted."]))
    sid = a.new_session()
    a.answer(sid, "My dog is called Biscuit.")
    a.answer(sid, "What's her name?")
    forget(store, plan_forget(store, phrase="my dog is called Biscuit"))
    assert [t.text for t in store.turns(sid)] == ["What's her name?"]      # the question stays, unanswered
    a.answer(sid, "I'm allergic to penicillin.")
    sent = [m for m in llm.prompts[-1] if m["role"] != "system"]
    assert len(sent) == 1 and sent[0]["content"].endswith("I'm allergic to penicillin.")
    assert "dog" not in sent[0]["content"]
