"""Recall through the real embedder, the real SQLite file and the real (small) model."""
import numpy as np
import pytest

from assistant.config import Config
from assistant.core import Assistant
from memory.clock import human_date
from memory.recall import TurnRecall

pytestmark = pytest.mark.real


def test_fact_told_in_one_session_is_recalled_in_a_new_one(store, real_embedder, smollm2):
    a = Assistant(store, None, Config(n_ctx=2048, max_answer_tokens=48), model=smollm2)
    a.recall = TurnRecall(store, real_embedder, count_tokens=a.count_tokens)
    first = a.answer(None, "My sister's name is Maya.")
    a.answer(first.session_id, "I bought a red bicycle yesterday.")
    other = a.new_session()
    a.answer(other, "What's the weather like on Mars?")

    prep = a.prepare(None, "What is my sister's name?")
    memories = prep.messages[-1]["content"].split("</memories>")[0]
    assert "My sister's name is Maya." in memories
    top = prep.memories[0]
    assert top.session_id == first.session_id and "Maya" in top.text
    # each memory is dated for the model to reason about time
    assert f"[{human_date(top.started_at)}]" in memories
    answer = a.generate(prep)
    assert answer.text and not answer.interrupted
    assert answer.stats.completion_tokens > 0


def test_embedder_reuses_a_recent_text_and_matches_a_fresh_encoding(real_embedder):
    text = "My sister's name is Maya and she lives in Lisbon."
    first = real_embedder.embed([text])
    again = real_embedder.embed([text])           # answered from the recent-texts memory
    fresh = real_embedder.embed([text, "another sentence"])[0]   # a batch always encodes
    assert text in real_embedder._recent
    assert np.allclose(first[0], again[0]) and np.allclose(first[0], fresh, atol=1e-5)
    again[0][:] = 0                                # callers may not corrupt the remembered vector
    assert np.allclose(real_embedder.embed([text])[0], first[0], atol=1e-5)
