"""Prefix reuse through the real llama.cpp (SmolLM2): a second turn evaluates only what is new, the stats
say so (checked against llama.cpp's own counters), background work runs beside the chat's cache and gives
way to an answer, and a prompt evaluated ahead of time is not evaluated again."""
import threading

import llama_cpp
import pytest

from assistant.config import Config
from assistant.core import Assistant
from memory.protocols import Preempted
from memory.recall import TurnRecall
from tests.fakes import FakeEmbedder

pytestmark = pytest.mark.real


def evaluated_by_llama(model) -> int:
    """Prompt tokens llama.cpp evaluated in batches since the last reset (its own count)."""
    ctx = model.llm._ctx.ctx
    llama_cpp.llama_synchronize(ctx)
    return llama_cpp.llama_perf_context(ctx).n_p_eval


def reset_counters(model) -> None:
    ctx = model.llm._ctx.ctx
    llama_cpp.llama_synchronize(ctx)
    llama_cpp.llama_perf_context_reset(ctx)


@pytest.fixture
def assistant(store, smollm2):
    smollm2.llm.reset()
    a = Assistant(store, None, Config(n_ctx=2048, max_answer_tokens=24), model=smollm2)
    a.recall = TurnRecall(store, FakeEmbedder(), count_tokens=a.count_tokens)
    earlier = store.new_session()
    store.add_turn(earlier, "user", "My sister Maya lives in Lisbon and teaches piano.")
    store.add_turn(earlier, "assistant", "Noted.")
    return a


def test_a_second_turn_reuses_the_first_turns_prompt_and_the_stats_are_right(assistant, smollm2):
    sid = assistant.new_session()
    reset_counters(smollm2)
    first = assistant.answer(sid, "Where does my sister Maya live?")
    st1 = first.stats
    assert st1.prompt_tokens == len(smollm2.tokens(smollm2_prompt(assistant, sid, first)))
    assert st1.evaluated_tokens == evaluated_by_llama(smollm2)

    reset_counters(smollm2)
    second = assistant.answer(sid, "What does she teach?")
    st2 = second.stats
    assert st2.reused_tokens >= st1.prompt_tokens        # the whole first prompt (and most of its answer)
    assert 0 < st2.evaluated_tokens < st2.prompt_tokens - st1.prompt_tokens + 8
    assert st2.evaluated_tokens == evaluated_by_llama(smollm2)
    assert st2.prompt_tokens == st2.reused_tokens + st2.evaluated_tokens


def smollm2_prompt(assistant, sid, answer):
    """The messages the first turn was answered from, rebuilt from what the session stored."""
    turns = assistant.store.turns(sid)
    from memory.attached import AttachedStore
    from assistant import layout, prompts

    attached = AttachedStore(assistant.store).for_turns([answer.user_turn_id])
    system = prompts.chat_system_message(assistant.config.system_prompt, running=assistant._running())
    content = layout.content(turns[0], attached)
    return [system, {"role": "user", "content": content}]


def test_background_work_keeps_the_chats_cache(assistant, smollm2):
    sid = assistant.new_session()
    first = assistant.answer(sid, "Where does my sister Maya live?")
    smollm2.background().complete([{"role": "user", "content": "Summarize: the sky is blue today."}],
                                   max_tokens=8)
    smollm2.background().choose([{"role": "user", "content": "Is the sky blue? Answer yes or no."}],
                                ["yes", "no"])
    second = assistant.answer(sid, "What does she teach?")
    assert second.stats.reused_tokens >= first.stats.prompt_tokens


def test_background_work_gives_way_to_an_answer(assistant, smollm2):
    long_text = " ".join(["The quick brown fox jumps over the lazy dog."] * 140)    # ~1,500 tokens
    outcome = {}

    def background():
        try:
            smollm2.background().complete([{"role": "user", "content": long_text + "\nSummarize."}],
                                          max_tokens=200)
            outcome["done"] = True
        except Preempted:
            outcome["preempted"] = True

    t = threading.Thread(target=background)
    t.start()
    while not smollm2._gate._busy and t.is_alive():    # the background call holds the model
        threading.Event().wait(0.01)
    answer = assistant.answer(None, "Say hi.")
    t.join()
    assert outcome == {"preempted": True}
    assert answer.text and not answer.interrupted


def test_a_prompt_warmed_ahead_is_not_evaluated_again(assistant, smollm2):
    msgs = [{"role": "system", "content": "You are brief."}, {"role": "user", "content": "Name a colour."}]
    smollm2.llm.reset()
    warmed = smollm2.warm(msgs)
    assert warmed.evaluated_tokens == warmed.prompt_tokens
    list(smollm2.stream(msgs, max_tokens=4))
    assert smollm2.last_stats.evaluated_tokens == 0
