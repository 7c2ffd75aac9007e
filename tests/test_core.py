import threading

import pytest

from assistant.config import Config
from assistant.core import Assistant
from memory.recall import TurnRecall
from tests.fakes import FakeEmbedder, FakeLLM


def make(store, llm=None, **cfg):
    config = Config(**cfg)
    llm = llm or FakeLLM()
    a = Assistant(store, None, config, model=llm)
    a.recall = TurnRecall(store, FakeEmbedder(), count_tokens=a.count_tokens)
    return a, llm


def test_user_message_is_on_disk_before_the_model_sees_it(store):
    class Checking(FakeLLM):
        def stream(self, messages, max_tokens=512, cancel=None):
            rows = store.db.execute("SELECT text FROM turns WHERE role='user'").fetchall()
            assert rows and messages[-1]["content"].endswith("\n\n" + rows[-1][0])
            yield from super().stream(messages, max_tokens, cancel)

    a, _ = make(store, Checking(["ok"]))
    ans = a.answer(None, "remember the blue door")
    assert ans.text == "ok" and not ans.interrupted
    roles = [(t.role, t.text, t.status) for t in store.turns(ans.session_id)]
    assert roles == [("user", "remember the blue door", "complete"), ("assistant", "ok", "complete")]


def test_fact_from_an_earlier_session_is_recalled_into_the_prompt(store):
    a, llm = make(store, FakeLLM(["Noted.", "Maya."]))
    first = a.answer(None, "My sister's name is Maya and she lives in Lisbon.")
    second = a.answer(None, "What is my sister's name?")
    assert second.session_id != first.session_id
    asked = llm.prompts[-1][-1]["content"]    # attached to the message it was recalled for
    assert "My sister's name is Maya" in asked.split("</memories>")[0]
    assert asked.endswith("What is my sister's name?")
    assert "Maya" not in llm.prompts[-1][0]["content"]
    assert any(m.session_id == first.session_id for m in second.memories)


def test_recent_turns_of_the_session_come_after_memories(store):
    a, llm = make(store, FakeLLM(["one", "two", "three"]))
    s = a.answer(None, "first message").session_id
    a.answer(s, "second message")
    msgs = llm.prompts[-1]
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user"]
    assert msgs[1]["content"].endswith("\n\nfirst message") and msgs[-1]["content"].endswith("\n\nsecond message")


def test_huge_message_stored_whole_trimmed_for_prompt_with_notice(store):
    a, llm = make(store, FakeLLM(["fine"], n_ctx=1024), n_ctx=1024, max_answer_tokens=128)
    huge = "word " * 5000
    ans = a.answer(None, huge)
    assert store.turn(ans.user_turn_id).text == huge
    assert len(llm.prompts[-1][-1]["content"]) < len(huge)
    assert ans.notices and "stored" in ans.notices[0]


def test_cancel_keeps_partial_answer_marked_interrupted(store):
    llm = FakeLLM(["a b c d e f g h i j k l m n o p"], delay=0.05)
    a, _ = make(store, llm)
    cancel = threading.Event()
    got = []

    def on_token(piece):
        got.append(piece)
        if len(got) == 3:
            cancel.set()

    ans = a.answer(None, "tell me", on_token=on_token, cancel=cancel)
    assert ans.interrupted and ans.text == "a b c"
    row = store.turn(ans.turn_id)
    assert row.status == "interrupted" and row.text == "a b c"


def test_crash_mid_answer_keeps_both_messages(store):
    class Dying(FakeLLM):
        def stream(self, messages, max_tokens=512, cancel=None):
            yield "partial "
            raise KeyboardInterrupt

    a, _ = make(store, Dying())
    with pytest.raises(KeyboardInterrupt):
        a.answer(None, "hello?")
    turns = store.turns(store.sessions()[0].id)
    assert [(t.role, t.text, t.status) for t in turns] == [
        ("user", "hello?", "complete"), ("assistant", "partial", "interrupted")]
    assert store.integrity_ok()


def test_unknown_session_is_a_clear_error(store):
    from assistant.errors import AssistantError

    a, _ = make(store)
    with pytest.raises(AssistantError, match="no session 999"):
        a.answer(999, "hi")


def test_routes_take_a_message_before_the_chat_and_the_core_imports_none(store):
    import ast
    from pathlib import Path

    import assistant.core as core
    from assistant.core import PreparedTurn

    seen = []

    def shouting(a, session_id, text):
        seen.append(text)
        if not text.isupper():
            return None
        sid = a.new_session()
        turn = a.store.add_turn(sid, "user", text)
        return PreparedTurn(sid, turn, [], [], [], 0.0, produce=lambda model, cancel: iter(["NO SHOUTING"]))

    llm = FakeLLM(["a calm reply"])
    a = Assistant(store, TurnRecall(store, FakeEmbedder()), Config(), model=llm, routes=[shouting])
    assert a.answer(None, "HELLO").text == "NO SHOUTING"
    assert a.answer(None, "hello").text == "a calm reply"
    assert seen == ["HELLO", "hello"] and len(llm.prompts) == 1
    imported = {n.module or "" for n in ast.walk(ast.parse(Path(core.__file__).read_text()))
                if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(ast.parse(Path(core.__file__).read_text()))
                 if isinstance(n, ast.Import) for a in n.names}
    assert not any(m.endswith(("missed", "routes")) for m in imported)
