"""Decoding on llama-cpp-python's Llama below its sampling layer: prefill with prefix reuse, and greedy
decoding with prompt-lookup drafts (speculative decoding without a draft model).

Journal entries, the running memory and answers from recalled memories repeat names and phrases of their
prompt. After each token we look for the latest earlier place where the last few tokens occurred (in the
prompt or in the answer so far) and propose the tokens that followed there; the model checks the proposal in
the same forward pass as the next token and keeps the longest agreeing run. On a 2-core CPU a pass over 7
tokens costs about 1.4x a pass over one; a fold of session summaries takes 35-45% as many passes as tokens
and a call is 1.3x faster, prompt included (tests/bench/restate.py). The text is the greedy answer up to
floating-point differences between batch sizes, which can tip a near tie (2 of 6 folds parted late).

Works through the same internals the Llama object's own `eval` uses and keeps its bookkeeping (`n_tokens`,
`input_ids`) true, so the next call still reuses the common prompt prefix.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

DRAFT_TOKENS = 6      # proposed per pass (best of 0, 2, 4, 6 on a 160-token running-memory fold)
NGRAM = (3, 2)        # match the last 3 tokens, else the last 2


def draft(history: Sequence[int], n: int = DRAFT_TOKENS, ngrams: Sequence[int] = NGRAM) -> list[int]:
    """Up to `n` tokens that followed the latest earlier occurrence of the history's last n-gram."""
    size = len(history)
    for g in ngrams:
        if size <= g:
            continue
        tail = list(history[size - g:])
        first = tail[0]
        for start in range(size - g - 1, -1, -1):
            if history[start] == first and list(history[start:start + g]) == tail:
                follow = list(history[start + g:start + g + n])
                if follow:
                    return follow
    return []


class LookupStats:
    def __init__(self):
        self.passes = 0
        self.drafted = 0
        self.accepted = 0


def prefill(llm, prompt: Sequence[int]) -> np.ndarray:
    """Evaluate `prompt` (token ids), reusing the longest prefix the context already holds, and return the
    logits of its last token. At least one token is evaluated, for its logits."""
    prompt = list(prompt)
    held = llm.input_ids[: llm.n_tokens]
    common = 0
    limit = min(len(held), len(prompt) - 1)
    while common < limit and held[common] == prompt[common]:
        common += 1
    llm.n_tokens = common
    llm.eval(prompt[common:])     # logits of the last token only
    return np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),)).copy()


def generate(llm, prompt: Sequence[int], max_tokens: int, stats: LookupStats | None = None,
             checkpoint=None) -> list[int]:
    """Greedy continuation of `prompt` (token ids), stopping at an end-of-generation token or `max_tokens`.
    `checkpoint`, called before every pass, may raise to abandon the call.

    A draft that is wholly rejected pauses drafting for a while (1, 2, 4 ... 16 tokens): abstractive text
    (a dialogue summarized) rarely repeats its prompt, and a rejected draft costs a wider pass for nothing."""
    import llama_cpp

    stats = stats if stats is not None else LookupStats()
    prompt = list(prompt)
    n_vocab = llm.n_vocab()
    vocab = llm._model.vocab
    n_ctx = llm.n_ctx()
    nxt = int(np.argmax(prefill(llm, prompt)))

    out: list[int] = []
    pause, backoff = 0, 1
    while True:
        if llama_cpp.llama_vocab_is_eog(vocab, nxt) or len(out) >= max_tokens:
            break
        out.append(nxt)
        proposal = []
        if pause > 0:
            pause -= 1
        else:
            proposal = draft(prompt + out, min(DRAFT_TOKENS, max_tokens - len(out)))
        batch = [nxt] + proposal
        if checkpoint is not None:
            checkpoint()
        n_past = llm.n_tokens
        if n_past + len(batch) > n_ctx:
            break
        llm._ctx.kv_cache_seq_rm(-1, n_past, -1)
        llm._batch.set_batch(batch=batch, n_past=n_past, logits_all=True)
        llm._ctx.decode(llm._batch)
        llm.input_ids[n_past: n_past + len(batch)] = batch
        rows = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(len(batch) * n_vocab,))
        preds = rows.reshape(len(batch), n_vocab).argmax(axis=1)
        stats.passes += 1
        stats.drafted += len(proposal)
        keep = 0
        while keep < len(proposal) and proposal[keep] == int(preds[keep]) \
                and not llama_cpp.llama_vocab_is_eog(vocab, proposal[keep]) and len(out) < max_tokens:
            out.append(proposal[keep])
            keep += 1
        stats.accepted += keep
        if proposal and keep == 0:
            pause, backoff = backoff, min(16, backoff * 2)
        elif keep:
            backoff = 1
        llm.n_tokens = n_past + 1 + keep     # the rejected tail of the draft is dropped from the context
        nxt = int(preds[keep])
    return out
