"""The language-model backend: llama.cpp through llama-cpp-python, behind a small protocol.

One model object serves the chat (streaming, cancellable) and the memory layer (`complete`, optionally
constrained by a JSON schema through a llama.cpp grammar).

The chat owns the main llama.cpp context: only `stream` and `warm` evaluate there, so its cache keeps the
conversation's prompt and the next turn evaluates only what is new (llama.cpp reuses the longest common
prefix of tokens). Everything else (`complete`, `choose`, `restate`, the side-by-side calls) runs on a
side context over the same weights. One call runs at a time, the chat first: background work (through
`background()`) and ahead-of-time evaluation (`warm`) check between chunks of a few dozen tokens whether
an answer is waiting, and give way at once (background work raises `Preempted`).
"""
from __future__ import annotations

import ctypes
import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Protocol, Sequence

from memory.protocols import Preempted

from . import decoding, guard, parallel, structured
from .errors import GenerationError, ModelError


@dataclass
class GenerationStats:
    prompt_tokens: int = 0             # tokens of the whole prompt
    reused_tokens: int = 0             # of those, already in the context's cache: not evaluated again
    completion_tokens: int = 0
    time_to_first_token: float = 0.0   # seconds from the call to the first token
    generation_seconds: float = 0.0    # first token to last

    @property
    def evaluated_tokens(self) -> int:
        """Prompt tokens the model evaluated for this call."""
        return self.prompt_tokens - self.reused_tokens

    @property
    def tokens_per_second(self) -> float:
        if self.completion_tokens <= 1 or self.generation_seconds <= 0:
            return 0.0
        return (self.completion_tokens - 1) / self.generation_seconds


# Who gets the model next: an answer first, then evaluation ahead of the Enter key, then background work.
BACKGROUND, WARM, CHAT = 0, 1, 2
# Tokens evaluated between two checks for a waiting answer: about 0.7 s for the 1.5B model on 2 cores, where
# chunks of 64 evaluate at 89 tokens/s against 97 for 512 and 77 for 32. An answer's own prompt goes in larger
# chunks (93 tokens/s), checked only for Esc.
YIELD_CHUNK = 64
CHAT_CHUNK = 128


def chunk_sizes(gpu_layers: int, n_batch: int) -> tuple[int, int]:
    """(an answer's chunk, a chunk that gives way) in tokens. With layers on a GPU a whole batch evaluates in
    milliseconds, so the chunks are the batch: 128-token chunks made an H200's time to first token 97 ms
    against 41 ms for llama-server, which evaluates the prompt in one pass."""
    if gpu_layers:
        return n_batch, n_batch
    return CHAT_CHUNK, YIELD_CHUNK


class _GiveWay(Exception):
    """Raised inside a call at a checkpoint: someone with a higher claim waits, or the caller cancelled."""


class _Gate:
    """One call on the model at a time; a waiting call of higher priority goes first, and running calls
    of lower priority can ask `wanted()` at their checkpoints."""

    def __init__(self):
        self._cond = threading.Condition()
        self._busy = False
        self._waiting = [0, 0, 0]

    @contextmanager
    def hold(self, priority: int) -> Iterator[None]:
        with self._cond:
            self._waiting[priority] += 1
            try:
                while self._busy or any(self._waiting[p] for p in range(priority + 1, CHAT + 1)):
                    self._cond.wait()
            finally:
                self._waiting[priority] -= 1
            self._busy = True
        try:
            yield
        finally:
            with self._cond:
                self._busy = False
                self._cond.notify_all()

    def wanted(self, priority: int) -> bool:
        """Whether a call that should go before one of `priority` is waiting (warming also gives way to a
        newer warming)."""
        lowest = priority if priority == WARM else priority + 1
        return any(self._waiting[p] for p in range(lowest, CHAT + 1))


class ChatModel(Protocol):
    """What the Assistant needs from a model. `stream` yields text pieces until done or cancelled."""

    name: str
    n_ctx: int
    gpu_layers: int
    last_stats: GenerationStats

    def stream(self, messages: list[dict], max_tokens: int,
               cancel: threading.Event | None = None) -> Iterator[str]: ...

    def complete(self, messages: list[dict], schema: dict | None = None, max_tokens: int = 512) -> str: ...

    def count_tokens(self, text: str) -> int: ...


def gpu_offload_supported() -> bool:
    try:
        import llama_cpp

        return bool(llama_cpp.llama_supports_gpu_offload())
    except Exception:
        return False


def resolve_gpu_layers(setting: str | int) -> int:
    """'auto' means every layer (-1) when this llama.cpp build can offload, else none."""
    if setting == "auto":
        return -1 if gpu_offload_supported() else 0
    return int(setting)


class Prioritized:
    """What every engine shares: the priority of the calls made from a thread (`self._local.priority`), and
    each call's figures kept apart by priority."""

    _local: threading.local

    def _record(self, stats: GenerationStats) -> None:
        """The figures of the call that ends: background work keeps its own, so that it never overwrites an
        answer's."""
        if getattr(self._local, "priority", CHAT) == BACKGROUND:
            self.last_background_stats = stats
        else:
            self.last_stats = stats

    def background(self) -> "BackgroundModel":
        """This model for work that can wait (consolidation): it gives way to the chat (Preempted)."""
        return BackgroundModel(self)

    @contextmanager
    def _as_background(self) -> Iterator[None]:
        before = getattr(self._local, "priority", CHAT)
        self._local.priority = BACKGROUND
        try:
            yield
        finally:
            self._local.priority = before


def resolve_cpu_repack(setting: str | bool, gpu_layers: int, cpu_flags: set[str] | None = None) -> bool:
    """Whether llama.cpp repacks the weights that run on the CPU into its interleaved layout (its default).
    "auto": not on a CPU with AVX-512 VNNI, where the plain layout was faster in what a person waits for
    (docs/benchmarks.md, 2026-12-05: loading 0.4 s instead of 1.0 s, prompts 117-152 tokens/s instead of
    85-96, generation 24.5 tokens/s instead of 28); llama.cpp's default elsewhere and with layers on a GPU."""
    if setting != "auto":
        return bool(setting)
    if gpu_layers != 0:
        return True
    flags = cpu_flags if cpu_flags is not None else _cpu_flags()
    return "avx512_vnni" not in flags


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


_PARAMS_LOCK = threading.Lock()


@contextmanager
def _model_params(**fields):
    """llama-cpp-python's Llama() takes no argument for some model parameters (use_extra_bufts): its default
    parameters are given these fields while one model loads."""
    from llama_cpp import llama_cpp     # the module Llama() reads its defaults from

    with _PARAMS_LOCK:
        default = llama_cpp.llama_model_default_params

        def params():
            p = default()
            for k, v in fields.items():
                setattr(p, k, v)
            return p

        llama_cpp.llama_model_default_params = params
        try:
            yield
        finally:
            llama_cpp.llama_model_default_params = default


class LlamaCppModel(Prioritized):
    """A GGUF model loaded in this process; chat uses the GGUF's own chat template."""

    def __init__(self, path: Path, *, name: str | None = None, n_ctx: int = 4096, threads: int = 0,
                 gpu_layers: str | int = "auto", flash_attn: str | bool = "auto", seed: int = 0,
                 temperature: float = 0.6, cpu_repack: str | bool = "auto"):
        from llama_cpp import Llama

        self.path = Path(path)
        self.name = name or self.path.stem
        self.temperature = temperature
        threads = threads or os.cpu_count() or 2
        self.gpu_layers_setting = resolve_gpu_layers(gpu_layers)
        if flash_attn == "auto":  # measured on an H100: +6% tokens/s, -9% time to first token
            flash_attn = self.gpu_layers_setting != 0
        self.cpu_repack = resolve_cpu_repack(cpu_repack, self.gpu_layers_setting)
        try:
            with _model_params(use_extra_bufts=self.cpu_repack):
                self.llm = Llama(model_path=str(self.path), n_ctx=n_ctx, n_threads=threads,
                                 n_threads_batch=threads, n_gpu_layers=self.gpu_layers_setting,
                                 flash_attn=flash_attn, seed=seed, verbose=False)
        except (ValueError, RuntimeError, OSError) as e:
            raise ModelError(
                f"llama.cpp could not load the model {self.path} ({e}); the file may be corrupt or not a "
                "supported GGUF: reinstall it or pick another with --model.") from e
        self.n_ctx = self.llm.n_ctx()
        n_layer = int(self.llm.metadata.get(f"{self.llm.metadata.get('general.architecture', '')}.block_count", 0) or 0)
        self.gpu_layers = (n_layer if self.gpu_layers_setting < 0 else min(self.gpu_layers_setting, n_layer)) \
            if self.gpu_layers_setting else 0
        self.n_layers = n_layer
        self.last_stats = GenerationStats()
        self.last_background_stats = GenerationStats()
        self._gate = _Gate()           # one call at a time, the chat first
        self._local = threading.local()   # the priority of calls made from this thread
        self._formatter = None         # the chat template as a formatter
        self.last_lookup = None        # draft statistics of the last restate()
        self._parallel: parallel.ParallelDecoder | None = None   # for complete_many / choose_many
        self._side = None              # [context, input_ids, n_tokens] of the side context, once used
        self._checkpoint: Callable[[], None] | None = None
        # (tokens of the prompt evaluated, of how many) while an answer's prompt is read: the chat shows it
        self.reading: tuple[int, int] | None = None
        self._priority: int | None = None        # of the call holding the model
        self._chat_chunk, self._yield_chunk = chunk_sizes(self.gpu_layers, self.llm.n_batch)
        self._chunk = self._chat_chunk
        self.llm.eval = self._eval     # every evaluation goes in chunks, checked in between

    # -- one call at a time, the chat first -------------------------------------------------------
    def _eval(self, tokens) -> None:
        from llama_cpp import Llama

        tokens = list(tokens)
        reading = self._priority == CHAT and len(tokens) > 1      # an answer's prompt, not its tokens
        try:
            for i in range(0, len(tokens), self._chunk):
                if self._checkpoint is not None:
                    self._checkpoint()
                if reading:
                    self.reading = (i, len(tokens))
                Llama.eval(self.llm, tokens[i:i + self._chunk])
        finally:
            if reading:
                self.reading = None

    @contextmanager
    def _call(self, context: str, *, cancel: threading.Event | None = None,
              priority: int | None = None) -> Iterator[None]:
        """Hold the model for one call on the "chat" or the "side" context. Below chat priority the call
        gives way (raises) at its next checkpoint when an answer waits; any call stops when `cancel` is set."""
        priority = getattr(self._local, "priority", CHAT) if priority is None else priority
        with self._gate.hold(priority):
            def checkpoint() -> None:
                if priority < CHAT and self._gate.wanted(priority):
                    raise Preempted() if priority == BACKGROUND else _GiveWay()
                if cancel is not None and cancel.is_set():
                    raise _GiveWay()

            self._checkpoint = checkpoint
            self._priority = priority
            self._chunk = self._chat_chunk if priority == CHAT else self._yield_chunk
            try:
                if context == "side":
                    with self._on_side():
                        yield
                else:
                    yield
            finally:
                self._checkpoint = None
                self._priority = None
                self._chunk = self._chat_chunk

    @contextmanager
    def _on_side(self) -> Iterator[None]:
        """Swap the side context in for the chat's (same weights, its own KV cache and bookkeeping)."""
        import numpy as np
        from llama_cpp import _internals as internals

        llm = self.llm
        if self._side is None:
            ctx = internals.LlamaContext(model=llm._model, params=llm.context_params, verbose=False)
            self._side = [ctx, np.ndarray((self.n_ctx,), dtype=np.intc), 0]
        chat = (llm._ctx, llm.input_ids, llm.n_tokens, llm._requires_eval)
        llm._ctx, llm.input_ids, llm.n_tokens = self._side
        llm._requires_eval = True
        try:
            yield
        finally:
            self._side = [llm._ctx, llm.input_ids, llm.n_tokens]
            llm._ctx, llm.input_ids, llm.n_tokens, llm._requires_eval = chat

    def count_tokens(self, text: str) -> int:
        return len(self.llm.tokenize(text.encode("utf-8", "replace"), add_bos=False, special=False))

    def prompt_tokens(self, messages: list[dict]) -> int:
        """Tokens of `messages` once rendered through the chat template (a close upper estimate)."""
        return sum(self.count_tokens(m["content"]) + 6 for m in messages) + 4

    def tokens(self, messages: list[dict]) -> list[int]:
        """The prompt of `messages` as the chat template renders it, ready for the assistant's reply."""
        return self.llm.tokenize(self._chat_prompt(messages).encode("utf-8"), add_bos=False, special=True)

    def stable_tokens(self, messages: list[dict], n: int) -> list[int]:
        """The beginning of `messages`' prompt that depends only on its first `n` messages (what every
        prompt of a session starts with): cut where a first user message would begin."""
        probe = "\u2063probe\u2063"
        rendered = self._chat_prompt(messages[:n] + [{"role": "user", "content": probe}])
        head = rendered[:rendered.index(probe)]
        full = self.tokens(messages)
        if not self._chat_prompt(messages).startswith(head):
            return []
        mine = self.llm.tokenize(head.encode("utf-8"), add_bos=False, special=True)
        return full[:self._common(mine, full)]

    @staticmethod
    def _common(a, b) -> int:
        from llama_cpp import Llama

        return Llama.longest_token_prefix(a, b)

    def _reusable(self, tokens: list[int]) -> int:
        """How many of `tokens` the current context holds and llama.cpp will not evaluate again (as
        Llama.generate decides: with the whole prompt held, the last token is evaluated again for its
        logits, unless they are still the live ones)."""
        llm = self.llm
        common = self._common(llm.input_ids[:llm.n_tokens].tolist(), tokens)
        if common == len(tokens):
            return common if llm.n_tokens == len(tokens) and not llm._requires_eval else common - 1
        return common

    def cached(self, tokens: list[int]) -> int:
        """How many of `tokens` the chat's cache holds now (an answer starting with them skips those)."""
        return max(0, self._reusable(tokens))

    def stream(self, messages: list[dict], max_tokens: int = 512,
               cancel: threading.Event | None = None, avoid: Sequence[str] = (), **sampling) -> Iterator[str]:
        """The answer to `messages`, piece by piece. It stops at the end-of-turn token and at the stop
        strings of assistant/guard.py (llama.cpp's `stop`: literal strings, matched anywhere in the text,
        the partial match at the end held back). `avoid`: the answer's first token is the likeliest one that
        does not begin any of these strings (an answer asked again after it began with a copy of the
        prompt's memory block)."""
        tokens = self.tokens(messages)
        stats = GenerationStats(prompt_tokens=len(tokens))
        start = time.perf_counter()
        with self._call("chat", cancel=cancel, priority=CHAT):
            stats.reused_tokens = max(0, self._reusable(tokens))
            first = None
            params = dict(temperature=self.temperature, top_p=0.95, top_k=40, min_p=0.05, repeat_penalty=1.0)
            params.update(sampling)
            opening = ""
            try:
                if avoid:
                    token, opening = self._first_avoiding(tokens, avoid)
                    tokens = tokens + [token]
                    max_tokens -= 1
            except _GiveWay:      # Esc while the prompt was being evaluated
                self.last_stats = stats
                return
            if opening:
                first = time.perf_counter()
                stats.time_to_first_token = first - start
                stats.completion_tokens += 1
                self.last_stats = stats
                yield opening
            if max_tokens <= 0:    # (llama.cpp reads 0 as no limit)
                return
            chunks = self.llm.create_completion(prompt=tokens, max_tokens=max_tokens, stream=True,
                                                stop=self._stop_strings(), **params)
            try:
                for chunk in chunks:
                    if cancel is not None and cancel.is_set():
                        break
                    piece = chunk["choices"][0]["text"]
                    if not piece:
                        continue
                    now = time.perf_counter()
                    if first is None:
                        first = now
                        stats.time_to_first_token = now - start
                    stats.completion_tokens += 1
                    stats.generation_seconds = now - first
                    yield piece
            except _GiveWay:      # Esc while the prompt was being evaluated
                pass
            finally:
                chunks.close()
                self.last_stats = stats

    def warm(self, messages: list[dict] | None = None, tokens: list[int] | None = None,
             cancel: threading.Event | None = None) -> GenerationStats:
        """Evaluate a prompt into the chat's cache ahead of time, without answering, so that an answer
        that starts with it evaluates only the rest. Gives way as soon as an answer (or a newer warm) waits,
        or `cancel` is set, keeping what it evaluated. Returns the prompt's tokens and those it found held."""
        tokens = self.tokens(messages) if tokens is None else tokens
        stats = GenerationStats(prompt_tokens=len(tokens))
        if not tokens or len(tokens) >= self.n_ctx:
            return stats
        with self._call("chat", priority=WARM, cancel=cancel):
            llm = self.llm
            reuse = self._reusable(tokens)
            stats.reused_tokens = max(0, reuse)
            if reuse >= len(tokens):
                return stats
            llm.n_tokens = max(0, reuse)
            try:
                llm.eval(tokens[llm.n_tokens:])
            except _GiveWay:
                pass
        return stats

    def _stop_strings(self) -> list[str]:
        eos = self.llm.token_eos()
        return ([self.llm._model.token_get_text(eos)] if eos != -1 else []) + guard.STOP_STRINGS

    def _first_avoiding(self, tokens: list[int], avoid: Sequence[str]) -> tuple[int, str]:
        """The likeliest first token after `tokens` (evaluated into the chat's cache) that is neither blank,
        nor the end of the turn, nor the beginning of one of `avoid` (a bare letter such as "A" is allowed
        where it only begins one, "A" for "Assistant:": the Guard still sees what follows; one that is a
        whole entry, "I" for an answer that repeated "I started ...", is not), with its text."""
        import llama_cpp
        import numpy as np

        logits = decoding.prefill(self.llm, tokens)
        eos = self.llm.token_eos()
        special = llama_cpp.LLAMA_TOKEN_ATTR_CONTROL | llama_cpp.LLAMA_TOKEN_ATTR_UNKNOWN | llama_cpp.LLAMA_TOKEN_ATTR_UNUSED
        for token in np.argsort(-logits)[:200].tolist():
            if token == eos or self.llm._model.token_get_attr(token) & special:
                continue
            try:
                text = self.llm.detokenize([token], prev_tokens=tokens).decode("utf-8")
            except UnicodeDecodeError:
                continue
            word = text.strip()
            if not word or any(a.startswith(word) and (len(word) > 1 or not word.isalnum() or a == word)
                               for a in avoid):
                continue
            return token, text
        token = int(np.argmax(logits))
        return token, self.llm.detokenize([token], prev_tokens=tokens).decode("utf-8", errors="replace")

    # -- the stable prefix across processes (a saved llama.cpp state) ---------------------------
    def identity(self) -> str:
        """What a saved state depends on besides its tokens: the model file and the context's settings."""
        st = self.path.stat()
        p = self.llm.context_params
        return (f"{self.path.name}:{st.st_size}:{int(st.st_mtime)}:{self.n_ctx}:{self.gpu_layers}:"
                f"{p.type_k}:{p.type_v}:{int(p.flash_attn_type)}:{'repack' if self.cpu_repack else 'plain'}")

    def save_state(self, tokens: list[int], path: Path) -> bool:
        """Write the chat context's cache of `tokens` (which it must begin with) to `path`; the cache keeps
        only those tokens afterwards. False when it does not hold them."""
        import llama_cpp

        with self._call("chat", priority=CHAT):
            llm = self.llm
            if not tokens or self._common(llm.input_ids[:llm.n_tokens].tolist(), tokens) < len(tokens):
                return False
            llm._ctx.kv_cache_seq_rm(-1, len(tokens), -1)
            llm.n_tokens = len(tokens)
            llm._requires_eval = True
            arr = (llama_cpp.llama_token * len(tokens))(*tokens)
            return bool(llama_cpp.llama_state_save_file(llm._ctx.ctx, str(path).encode(), arr, len(tokens)))

    def load_state(self, tokens: list[int], path: Path) -> bool:
        """Load a state written by save_state() for exactly `tokens` into the chat context. False (and the
        context left empty) when the file does not hold those tokens or cannot be read."""
        import llama_cpp

        with self._call("chat", priority=CHAT):
            llm = self.llm
            cap = len(tokens) + 1
            out = (llama_cpp.llama_token * cap)()
            count = ctypes.c_size_t()
            ok = llama_cpp.llama_state_load_file(llm._ctx.ctx, str(path).encode(), out, cap, ctypes.byref(count))
            got = list(out[:count.value]) if ok else []
            if got != list(tokens):
                llm._ctx.kv_cache_clear()
                llm.n_tokens = 0
                llm._requires_eval = True
                return False
            llm.input_ids[:len(got)] = got
            llm.n_tokens = len(got)
            llm._requires_eval = True
            return True

    def choose(self, messages: list[dict], options: list[str], prefix: str = "") -> str | None:
        """The option the model's reply most likely starts with after `prefix` (greedy at the first token
        where the options differ): what a grammar-constrained answer would pick there, for one evaluated
        token instead of a whole JSON answer. None when the options cannot be told apart that way."""
        with self._call("side"):
            split = self._option_split(messages, options, prefix)
            if split is None:
                return None
            prompt, firsts = split
            reused = max(0, self._reusable(prompt))
            scores = decoding.prefill(self.llm, prompt)
            self._record(GenerationStats(prompt_tokens=len(prompt), reused_tokens=reused, completion_tokens=1))
            return max(zip(options, firsts), key=lambda of: scores[of[1]])[0]

    def _option_split(self, messages: list[dict], options: list[str], prefix: str):
        """(prompt tokens up to where the options part, each option's first token there) or None."""
        prompt = self._chat_prompt(messages) + prefix
        # the template writes its own special tokens
        encoded = [self.llm.tokenize((prompt + o).encode("utf-8"), add_bos=False, special=True) for o in options]
        common = 0
        while all(len(t) > common + 1 for t in encoded) and len({t[common] for t in encoded}) == 1:
            common += 1
        firsts = [t[common] for t in encoded]
        if len(set(firsts)) != len(options) or common == 0:
            return None
        return encoded[0][:common], firsts

    # -- many independent prompts at once (consolidation) ------------------------------------------
    def _decoder(self) -> parallel.ParallelDecoder:
        if self._parallel is None:
            self._parallel = parallel.ParallelDecoder(self.llm, n_seq=PARALLEL_SEQUENCES, n_ctx=PARALLEL_CTX)
        return self._parallel

    def release_parallel(self) -> None:
        """Free the contexts background work used (their KV caches) until it needs them again; the chat's
        context stays."""
        with self._gate.hold(CHAT):
            if self._parallel is not None:
                self._parallel.close()
                self._parallel = None
            if self._side is not None:
                self._side[0].close()
                self._side = None

    def _with_checkpoint(self, checkpoint):
        """The caller's checkpoint, after this call's own (an answer waiting)."""
        mine = self._checkpoint

        def both() -> None:
            if mine is not None:
                mine()
            if checkpoint is not None:
                checkpoint()
        return both

    def complete_many(self, conversations: list[list[dict]], max_tokens: int = 512,
                      checkpoint=None) -> list[str]:
        """Plain-text greedy answers to independent prompts, decoded side by side (a pass carries one
        token of each): on 2 CPU cores 4 answers cost about 1.6x the passes' time of one. `checkpoint`,
        called before every pass, may raise to abandon the call."""
        with self._call("side"):
            dec = self._decoder()
            prompts = [self.tokens(m) for m in conversations]
            outs = dec.generate(prompts, max_tokens, self._with_checkpoint(checkpoint))
            self._record(GenerationStats(prompt_tokens=sum(map(len, prompts)),
                                         completion_tokens=sum(map(len, outs))))
            return [self.llm.detokenize(o).decode("utf-8", errors="replace") for o in outs]

    def choose_many(self, conversations: list[list[dict]], options: list[str], prefix: str = "",
                    checkpoint=None) -> list[str | None]:
        """choose() for independent prompts in shared passes; prompts that begin alike evaluate their
        common beginning once."""
        with self._call("side"):
            dec = self._decoder()
            splits = [self._option_split(m, options, prefix) for m in conversations]
            asked = [i for i, sp in enumerate(splits) if sp is not None]
            logits = dec.last_logits([splits[i][0] for i in asked], self._with_checkpoint(checkpoint))
            out: list[str | None] = [None] * len(conversations)
            for i, scores in zip(asked, logits):
                out[i] = max(zip(options, splits[i][1]), key=lambda of: scores[of[1]])[0]
            self._record(GenerationStats(prompt_tokens=sum(len(splits[i][0]) for i in asked),
                                         completion_tokens=len(asked)))
            return out

    def _chat_prompt(self, messages: list[dict]) -> str:
        """`messages` rendered by the GGUF's chat template, ready for the assistant's reply."""
        if self._formatter is None:
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            model = self.llm._model
            eos, bos = self.llm.token_eos(), self.llm.token_bos()
            self._formatter = Jinja2ChatFormatter(
                template=self.llm.metadata["tokenizer.chat_template"],
                eos_token=model.token_get_text(eos) if eos != -1 else "",
                bos_token=model.token_get_text(bos) if bos != -1 else "")
        return self._formatter(messages=messages).prompt

    def complete(self, messages: list[dict], schema: dict | None = None, max_tokens: int = 512) -> str:
        """A whole answer. With `schema`, grammar-constrained JSON, parsed and validated (else GenerationError)."""
        with self._call("side"):
            kwargs = dict(messages=messages, max_tokens=max_tokens, temperature=0.0)
            if schema is not None:
                kwargs["response_format"] = {"type": "json_object", "schema": schema}
            reused = max(0, self._reusable(self.tokens(messages)))
            out = self.llm.create_chat_completion(**kwargs)
            choice = out["choices"][0]
            text = choice["message"]["content"] or ""
            usage = out.get("usage") or {}
            self._record(GenerationStats(prompt_tokens=usage.get("prompt_tokens", 0), reused_tokens=reused,
                                         completion_tokens=usage.get("completion_tokens", 0)))
        if schema is not None:
            if choice.get("finish_reason") == "length":
                raise GenerationError(
                    f"The model's structured output was cut off at max_tokens={max_tokens}; "
                    "raise the limit or shorten the input.")
            structured.parse(text, schema)
        return text

    def restate(self, messages: list[dict], max_tokens: int = 512) -> str:
        """A plain-text greedy answer that mostly restates its prompt (a summary of summaries), decoded with
        prompt-lookup drafts: 35-45% as many passes as tokens, 1.3x faster a call on 2 cores. Not for
        abstractive text (a dialogue summarized): there drafts rarely land, and the wider passes can tip a
        near tie into a different, longer answer."""
        with self._call("side"):
            start = time.perf_counter()
            prompt = self.tokens(messages)
            reused = max(0, self._reusable(prompt))
            self.last_lookup = decoding.LookupStats()
            out = decoding.generate(self.llm, prompt, max_tokens, self.last_lookup, checkpoint=self._checkpoint)
            self._record(GenerationStats(prompt_tokens=len(prompt), reused_tokens=reused,
                                         completion_tokens=len(out), generation_seconds=time.perf_counter() - start))
            return self.llm.detokenize(out).decode("utf-8", errors="replace")


class BackgroundModel:
    """A LlamaCppModel seen by work that can wait: its calls run below the chat's priority and raise
    Preempted (memory.protocols) at the next checkpoint when an answer wants the model."""

    _CALLS = ("complete", "choose", "restate", "complete_many", "choose_many")

    def __init__(self, model: LlamaCppModel):
        self._model = model

    def __getattr__(self, name):
        if name == "last_stats":
            return self._model.last_background_stats
        attr = getattr(self._model, name)
        if name not in self._CALLS:
            return attr

        def call(*args, **kwargs):
            with self._model._as_background():
                return attr(*args, **kwargs)
        return call


# The parallel context: 17 sequences (16 prompts and a held shared beginning) in 12,288 tokens of KV cache
# (about 350 MB for the 1.5B model), enough for 8-10 session summaries at once.
PARALLEL_SEQUENCES = 17
PARALLEL_CTX = 12288


def load_model(path: Path, name: str, cfg) -> LlamaCppModel:
    return LlamaCppModel(path, name=name, n_ctx=cfg.n_ctx, threads=cfg.resolved_threads(),
                         gpu_layers=cfg.gpu_layers, flash_attn=cfg.flash_attn, cpu_repack=cfg.cpu_repack)
