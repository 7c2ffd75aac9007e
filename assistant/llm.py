"""The language-model backend: llama.cpp through llama-cpp-python, behind a small protocol.

One model object serves the chat (streaming, cancellable) and the memory layer (`complete`, optionally
constrained by a JSON schema through a llama.cpp grammar).
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Protocol

from . import decoding, parallel, structured
from .errors import GenerationError, ModelError


@dataclass
class GenerationStats:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    time_to_first_token: float = 0.0   # seconds from the call to the first token
    generation_seconds: float = 0.0    # first token to last

    @property
    def tokens_per_second(self) -> float:
        if self.completion_tokens <= 1 or self.generation_seconds <= 0:
            return 0.0
        return (self.completion_tokens - 1) / self.generation_seconds


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


class LlamaCppModel:
    """A GGUF model loaded in this process; chat uses the GGUF's own chat template."""

    def __init__(self, path: Path, *, name: str | None = None, n_ctx: int = 4096, threads: int = 0,
                 gpu_layers: str | int = "auto", flash_attn: str | bool = "auto", seed: int = 0,
                 temperature: float = 0.6):
        from llama_cpp import Llama

        self.path = Path(path)
        self.name = name or self.path.stem
        self.temperature = temperature
        threads = threads or os.cpu_count() or 2
        self.gpu_layers_setting = resolve_gpu_layers(gpu_layers)
        if flash_attn == "auto":  # measured on an H100: +6% tokens/s, -9% time to first token
            flash_attn = self.gpu_layers_setting != 0
        try:
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
        self._lock = threading.Lock()  # a llama context serves one call at a time
        self._formatter = None         # the chat template as a formatter, for choose()
        self.last_lookup = None        # draft statistics of the last restate()
        self._parallel: parallel.ParallelDecoder | None = None   # for complete_many / choose_many

    def count_tokens(self, text: str) -> int:
        return len(self.llm.tokenize(text.encode("utf-8", "replace"), add_bos=False, special=False))

    def prompt_tokens(self, messages: list[dict]) -> int:
        """Tokens of `messages` once rendered through the chat template (a close upper estimate)."""
        return sum(self.count_tokens(m["content"]) + 6 for m in messages) + 4

    def stream(self, messages: list[dict], max_tokens: int = 512,
               cancel: threading.Event | None = None, **sampling) -> Iterator[str]:
        with self._lock:
            stats = GenerationStats()
            start = time.perf_counter()
            first = None
            params = dict(temperature=self.temperature)
            params.update(sampling)
            chunks = self.llm.create_chat_completion(messages=messages, max_tokens=max_tokens,
                                                     stream=True, **params)
            try:
                for chunk in chunks:
                    if cancel is not None and cancel.is_set():
                        break
                    piece = chunk["choices"][0]["delta"].get("content")
                    if not piece:
                        continue
                    now = time.perf_counter()
                    if first is None:
                        first = now
                        stats.time_to_first_token = now - start
                    stats.completion_tokens += 1
                    stats.generation_seconds = now - first
                    yield piece
            finally:
                chunks.close()
                self.last_stats = stats

    def choose(self, messages: list[dict], options: list[str], prefix: str = "") -> str | None:
        """The option the model's reply most likely starts with after `prefix` (greedy at the first token
        where the options differ): what a grammar-constrained answer would pick there, for one evaluated
        token instead of a whole JSON answer. None when the options cannot be told apart that way."""
        with self._lock:
            split = self._option_split(messages, options, prefix)
            if split is None:
                return None
            prompt, firsts = split
            scores = decoding.prefill(self.llm, prompt)
            self.last_stats = GenerationStats(prompt_tokens=len(prompt), completion_tokens=1)
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
        """Free the parallel context (its KV cache) until the next complete_many / choose_many."""
        with self._lock:
            if self._parallel is not None:
                self._parallel.close()
                self._parallel = None

    def complete_many(self, conversations: list[list[dict]], max_tokens: int = 512,
                      checkpoint=None) -> list[str]:
        """Plain-text greedy answers to independent prompts, decoded side by side (a pass carries one
        token of each): on 2 CPU cores 4 answers cost about 1.6x the passes' time of one. `checkpoint`,
        called before every pass, may raise to abandon the call."""
        with self._lock:
            dec = self._decoder()
            prompts = [self.llm.tokenize(self._chat_prompt(m).encode("utf-8"), add_bos=False, special=True)
                       for m in conversations]
            outs = dec.generate(prompts, max_tokens, checkpoint)
            self.last_stats = GenerationStats(prompt_tokens=sum(map(len, prompts)),
                                              completion_tokens=sum(map(len, outs)))
            return [self.llm.detokenize(o).decode("utf-8", errors="replace") for o in outs]

    def choose_many(self, conversations: list[list[dict]], options: list[str], prefix: str = "",
                    checkpoint=None) -> list[str | None]:
        """choose() for independent prompts in shared passes; prompts that begin alike evaluate their
        common beginning once."""
        with self._lock:
            dec = self._decoder()
            splits = [self._option_split(m, options, prefix) for m in conversations]
            asked = [i for i, sp in enumerate(splits) if sp is not None]
            logits = dec.last_logits([splits[i][0] for i in asked], checkpoint)
            out: list[str | None] = [None] * len(conversations)
            for i, scores in zip(asked, logits):
                out[i] = max(zip(options, splits[i][1]), key=lambda of: scores[of[1]])[0]
            self.last_stats = GenerationStats(prompt_tokens=sum(len(splits[i][0]) for i in asked),
                                              completion_tokens=len(asked))
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
        with self._lock:
            kwargs = dict(messages=messages, max_tokens=max_tokens, temperature=0.0)
            if schema is not None:
                kwargs["response_format"] = {"type": "json_object", "schema": schema}
            out = self.llm.create_chat_completion(**kwargs)
            choice = out["choices"][0]
            text = choice["message"]["content"] or ""
            usage = out.get("usage") or {}
            self.last_stats = GenerationStats(prompt_tokens=usage.get("prompt_tokens", 0),
                                              completion_tokens=usage.get("completion_tokens", 0))
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
        with self._lock:
            start = time.perf_counter()
            prompt = self.llm.tokenize(self._chat_prompt(messages).encode("utf-8"), add_bos=False, special=True)
            self.last_lookup = decoding.LookupStats()
            out = decoding.generate(self.llm, prompt, max_tokens, self.last_lookup)
            self.last_stats = GenerationStats(prompt_tokens=len(prompt), completion_tokens=len(out),
                                              generation_seconds=time.perf_counter() - start)
            return self.llm.detokenize(out).decode("utf-8", errors="replace")


# The parallel context: 17 sequences (16 prompts and a held shared beginning) in 12,288 tokens of KV cache
# (about 350 MB for the 1.5B model), enough for 8-10 session summaries at once.
PARALLEL_SEQUENCES = 17
PARALLEL_CTX = 12288


def load_model(path: Path, name: str, cfg) -> LlamaCppModel:
    return LlamaCppModel(path, name=name, n_ctx=cfg.n_ctx, threads=cfg.resolved_threads(),
                         gpu_layers=cfg.gpu_layers, flash_attn=cfg.flash_attn)
