"""Several independent prompts decoded together on one llama.cpp context (one sequence each).

On a CPU, generating a token is bound by reading the weights from memory, not by arithmetic: a pass that
carries one token for each of 4 sequences costs little more than a pass for one. Consolidation has many
independent prompts (a summary per session, a roll-up per week, a label per pair), so it decodes them side
by side (LightMem's lesson: batch and reuse the KV cache). Prompts that share a beginning (the labelling
guide, a newer memory compared with two earlier ones) evaluate it once and copy it between sequences,
which costs no arithmetic in a unified KV cache.

Greedy only: the answers are each prompt's greedy answer, up to floating-point differences between batch
shapes. This context is separate from the chat context (same weights, its own KV cache), so consolidation
never disturbs the chat's cached prompt.
"""
from __future__ import annotations

import ctypes
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import numpy as np


@dataclass
class ParallelStats:
    passes: int = 0            # llama_decode calls
    prompt_tokens: int = 0     # evaluated, prefixes shared with another prompt not counted
    shared_tokens: int = 0     # prompt tokens copied from another sequence instead of evaluated
    completion_tokens: int = 0


class ParallelDecoder:
    """A context of `n_ctx` tokens shared by up to `n_seq` sequences, on `llm`'s weights."""

    def __init__(self, llm, n_seq: int = 16, n_ctx: int = 8192):
        import llama_cpp
        from llama_cpp import _internals as internals

        self.llm = llm
        self.n_seq = n_seq
        params = llama_cpp.llama_context_default_params()
        for name, _ in params._fields_:      # the chat context's settings (threads, flash attention, ...)
            setattr(params, name, getattr(llm.context_params, name))
        params.n_ctx = n_ctx
        params.n_seq_max = n_seq
        params.kv_unified = True                 # every sequence may use the whole context
        # Flash attention skips the cells of other sequences: without it a prompt's prefill attends over
        # every cell in use, and 8 resident session prompts took 1.5x as long to evaluate (CPU, 2 cores).
        params.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED
        self.n_batch = params.n_batch
        self.ctx = internals.LlamaContext(model=llm._model, params=params, verbose=False)
        self.n_ctx = self.ctx.n_ctx()
        self.n_vocab = llm.n_vocab()
        self._vocab = llm._model.vocab
        self._batch = llama_cpp.llama_batch_init(self.n_batch, 0, n_seq)
        self._mem = llama_cpp.llama_get_memory(self.ctx.ctx)
        self._held: list[int] = []           # tokens of sequence 0 kept between calls (a shared prefix)
        self._checkpoint: Callable[[], None] | None = None
        self.stats = ParallelStats()

    def close(self) -> None:
        import llama_cpp

        if self._batch is not None:
            llama_cpp.llama_batch_free(self._batch)
            self._batch = None
        if self.ctx is not None:
            self.ctx.close()
            self.ctx = None

    # -- low level ---------------------------------------------------------------------------------
    def _decode(self, items: list[tuple[int, int, int, bool]]) -> dict[tuple[int, int], np.ndarray]:
        """Evaluate (token, position, sequence, want_logits) items; the logits of the wanted ones by
        (sequence, position). Split into batches of n_batch; the checkpoint is called before each."""
        import llama_cpp

        out: dict[tuple[int, int], np.ndarray] = {}
        b = self._batch
        for start in range(0, len(items), self.n_batch):
            if self._checkpoint is not None:
                self._checkpoint()
            chunk = items[start:start + self.n_batch]
            for i, (tok, pos, seq, want) in enumerate(chunk):
                b.token[i] = tok
                b.pos[i] = pos
                b.n_seq_id[i] = 1
                b.seq_id[i][0] = seq
                b.logits[i] = want
            b.n_tokens = len(chunk)
            rc = llama_cpp.llama_decode(self.ctx.ctx, b)
            if rc != 0:
                raise RuntimeError(f"llama_decode returned {rc} (context of {self.n_ctx} tokens full?)")
            self.stats.passes += 1
            for i, (tok, pos, seq, want) in enumerate(chunk):
                if want:
                    ptr = llama_cpp.llama_get_logits_ith(self.ctx.ctx, i)
                    out[(seq, pos)] = np.ctypeslib.as_array(
                        ctypes.cast(ptr, ctypes.POINTER(ctypes.c_float)), shape=(self.n_vocab,)).copy()
        return out

    def _prefill(self, prompts: list[list[int]]) -> list[np.ndarray]:
        """Sequence i+1 holds prompts[i]; the logits after each prompt. A prompt copies the longest
        beginning it shares with sequence 0's held tokens or with an earlier prompt; one that shares with
        a prompt of the same wave waits for the next wave."""
        import llama_cpp

        _common = llama_cpp.Llama.longest_token_prefix
        if len(prompts) + 1 > self.n_seq:
            raise ValueError(f"{len(prompts)} prompts need {len(prompts) + 1} sequences; this context has {self.n_seq}")
        # keep the part of sequence 0 that the prompts share with it; drop every other sequence
        keep = max([_common(self._held, p[:-1]) for p in prompts] + [0])
        llama_cpp.llama_memory_seq_rm(self._mem, 0, keep, -1)
        for s in range(1, self.n_seq):
            llama_cpp.llama_memory_seq_rm(self._mem, s, -1, -1)
        self._held = self._held[:keep]
        held = {0: self._held}
        logits: list[np.ndarray | None] = [None] * len(prompts)
        pending = list(range(len(prompts)))
        while pending:
            wave: list[tuple[int, int, int]] = []      # (prompt index, source sequence, shared length)
            later = []
            in_wave: set[int] = set()
            for i in pending:
                p = prompts[i]
                src, n = 0, _common(held[0], p[:-1])
                for j, toks in held.items():
                    c = _common(toks, p[:-1])
                    if c > n:
                        src, n = j, c
                # a longer beginning shared with a prompt of this wave: wait for it
                if any(_common(prompts[j - 1], p[:-1]) > n + 8 for j in in_wave):
                    later.append(i)
                    continue
                wave.append((i, src, n))
                in_wave.add(i + 1)
            items = []
            for i, src, n in wave:
                seq = i + 1
                if n:
                    llama_cpp.llama_memory_seq_cp(self._mem, src, seq, 0, n)
                self.stats.shared_tokens += n
                rest = prompts[i][n:]
                self.stats.prompt_tokens += len(rest)
                items += [(t, n + k, seq, k == len(rest) - 1) for k, t in enumerate(rest)]
            got = self._decode(items)
            for i, src, n in wave:
                logits[i] = got[(i + 1, len(prompts[i]) - 1)]
                held[i + 1] = prompts[i]
            pending = later
        # the longest beginning all prompts share stays in sequence 0 for the next call
        shared = prompts[0]
        for p in prompts[1:]:
            shared = shared[:_common(shared, p)]
        shared = shared[:max(0, min(len(p) for p in prompts) - 1)]
        if len(shared) > len(self._held):
            src = next(i + 1 for i, p in enumerate(prompts) if p[:len(shared)] == shared)
            llama_cpp.llama_memory_seq_rm(self._mem, 0, -1, -1)
            llama_cpp.llama_memory_seq_cp(self._mem, src, 0, 0, len(shared))
            self._held = list(shared)
        return logits   # type: ignore[return-value]

    # -- what callers use --------------------------------------------------------------------------
    def last_logits(self, prompts: Sequence[Sequence[int]],
                    checkpoint: Callable[[], None] | None = None) -> list[np.ndarray]:
        """The next-token logits after each prompt, in batches of at most n_seq - 1 prompts.
        `checkpoint` is called before every pass and may raise to abandon the call."""
        prompts = [list(p) for p in prompts]
        step = self.n_seq - 1
        with self._call(checkpoint):
            return [x for s in range(0, len(prompts), step) for x in self._prefill(prompts[s:s + step])]

    def generate(self, prompts: Sequence[Sequence[int]], max_tokens: int,
                 checkpoint: Callable[[], None] | None = None) -> list[list[int]]:
        """Each prompt's greedy continuation (to an end-of-generation token or `max_tokens`), decoded
        together: one pass carries the next token of every unfinished sequence of a group that fits the
        context. `checkpoint` is called before every pass and may raise to abandon the call."""
        prompts = [list(p) for p in prompts]
        with self._call(checkpoint):
            return [o for group in self._groups(prompts, max_tokens) for o in self._generate(group, max_tokens)]

    def _groups(self, prompts: list[list[int]], max_tokens: int) -> list[list[list[int]]]:
        """`prompts` in order, grouped so that each group's prompts and answers fit the context."""
        groups: list[list[list[int]]] = []
        used = 0
        for p in prompts:
            need = len(p) + max_tokens
            if need > self.n_ctx:
                raise ValueError(f"A prompt of {len(p)} tokens and its answer do not fit the parallel "
                                 f"context of {self.n_ctx} tokens.")
            if not groups or used + need > self.n_ctx or len(groups[-1]) >= self.n_seq - 1:
                groups.append([])
                used = 0
            groups[-1].append(p)
            used += need
        return groups

    @contextmanager
    def _call(self, checkpoint: Callable[[], None] | None) -> Iterator[None]:
        """One call: its checkpoint is in force, and an abandoned call leaves an empty cache (its
        contents are unknown) for the next."""
        import llama_cpp

        self._checkpoint = checkpoint
        try:
            yield
        except BaseException:
            llama_cpp.llama_memory_clear(self._mem, True)
            self._held = []
            raise
        finally:
            self._checkpoint = None

    def _generate(self, prompts: list[list[int]], max_tokens: int) -> list[list[int]]:
        import llama_cpp

        first = self._prefill(prompts)
        nxt = [int(np.argmax(x)) for x in first]
        outs: list[list[int]] = [[] for _ in prompts]
        pos = [len(p) for p in prompts]
        live = list(range(len(prompts)))
        while live:
            still = []
            for i in live:
                if llama_cpp.llama_vocab_is_eog(self._vocab, nxt[i]):
                    continue
                outs[i].append(nxt[i])
                if len(outs[i]) < max_tokens:
                    still.append(i)
            live = still
            if not live:
                break
            got = self._decode([(nxt[i], pos[i], i + 1, True) for i in live])
            for i in live:
                nxt[i] = int(np.argmax(got[(i + 1, pos[i])]))
                pos[i] += 1
        self.stats.completion_tokens += sum(len(o) for o in outs)
        return outs
