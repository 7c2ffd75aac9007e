"""A model behind an OpenAI-compatible server (llama.cpp's llama-server, vLLM, Ollama, LM Studio), used for
everything the in-process model does: the chat (streamed, cancellable), structured answers, the one-token
label choice, and consolidation's independent prompts, sent side by side so that the server batches them.

Only the standard library speaks HTTP here, and nothing connects until a call is made on a model built from a
config whose engine is "openai". Embeddings, speech and the memory stay in this process. The API key is read
from the environment variable the config names, at each request; it is never written anywhere.
"""
from __future__ import annotations

import http.client
import json
import os
import re
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from typing import Callable, Iterator, Sequence
from urllib.parse import urlsplit

from . import guard, structured
from .errors import GenerationError, ServerError
from .llm import GenerationStats, Prioritized

# How a JSON schema is asked for, best first; a server that refuses one is asked the next way from then on.
JSON_SCHEMA, JSON_OBJECT, PROMPTED = "json_schema", "json_object", "prompted"
# The beginning of a one-key JSON answer ('{"relation": "'): the label choice's JSON path builds its schema.
_KEY_PREFIX = re.compile(r'\s*\{\s*"([^"]+)"\s*:\s*"\s*')
TOP_LOGPROBS = 20          # the most OpenAI's API (and vLLM's default limit) allows
# Whether the server continues a reply it is given the start of (the label choice needs it).
PROBE_QUESTION = "Count from 1 to 10, separated by commas."
PROBE_START = "1, 2, 3, 4, 5, 6,"
# Where a server counts tokens, beside its /v1 API, and the key of the text: llama-server and vLLM, then
# llama-cpp-python's server.
TOKENIZERS = [("/tokenize", "content"), ("/tokenize", "prompt"), ("/extras/tokenize/count", "input")]
COUNTS_KEPT = 4096         # texts whose server count is remembered (recall counts the same segments again)
# Texts shorter than this are estimated: a request each would cost the chat a round trip per recalled segment
# (a far server's latency many times over), and on short texts the estimate's error is a few tokens.
SERVER_COUNT_FROM = 1000   # characters


class _Refused(ServerError):
    """The server answered the request with an error status (not a key or a model problem)."""

    def __init__(self, text: str, status: int, detail: str):
        super().__init__(text)
        self.status = status
        self.detail = detail

    def about_format(self) -> bool:
        low = self.detail.lower()
        return any(w in low for w in ("response_format", "json_schema", "schema", "grammar", "format"))


class _Cancelled(Exception):
    """The caller set its cancel event while the request was under way."""


def _one_line(text: str, limit: int = 200) -> str:
    line = " ".join(text.split()).rstrip(" .:")
    return line[:limit].rstrip(" .:") + ("…" if len(line) > limit else "")


def _error_detail(raw: bytes) -> str:
    """The message of an OpenAI-style error body ({"error": {"message": ...}}), or its text."""
    text = raw.decode("utf-8", "replace")
    try:
        data = json.loads(text)
        err = data.get("error", data) if isinstance(data, dict) else data
        msg = err.get("message") or err.get("detail") if isinstance(err, dict) else err
        text = msg if isinstance(msg, str) else json.dumps(msg)
    except (ValueError, AttributeError):
        pass
    return _one_line(text)


class OpenAIModel(Prioritized):
    """The ChatModel and LanguageModel protocols over HTTP. Token counts are the server's own where it
    tokenizes on request (llama-server, vLLM, llama-cpp-python's server); elsewhere (Ollama) they are estimated
    at 3 characters a token, on the high side for English, so that prompts stay inside the server's context.
    `n_ctx` is the context the config says the server gives one request."""

    gpu_layers = 0         # what this process offloads: nothing (the server's GPU is the server's)
    n_layers = 0

    def __init__(self, base_url: str, *, model: str = "", api_key_env: str = "", parallel: int = 4,
                 timeout: float = 120.0, n_ctx: int = 4096, temperature: float = 0.6):
        parts = urlsplit(base_url)
        self.base_url = base_url.rstrip("/")
        self._https = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port or (443 if self._https else 80)
        self._path = parts.path.rstrip("/")
        self.server_model = model
        self.api_key_env = api_key_env
        self.parallel = max(1, int(parallel))
        self.timeout = float(timeout)
        self.n_ctx = n_ctx
        self.temperature = temperature
        self.name = model or self._host
        self.last_stats = GenerationStats()
        self.last_background_stats = GenerationStats()
        self.last_timings: dict = {}     # the server's own figures of the last answer, where it sends them
        self._local = threading.local()
        self._ready = threading.RLock()
        self._model_id: str | None = None
        self._owner = ""                 # who the server says owns the model ("vllm", "llamacpp", ...)
        self._format = JSON_SCHEMA
        self._logprobs: bool | None = None   # whether the label choice through logprobs works here
        self._stream_usage = True            # whether a streamed answer may ask for its token counts
        # (path, body key) of the server's token count once found; False once none was; None before asking
        self._tokenizer: tuple[str, str] | bool | None = None
        self._counts: dict[str, int] = {}

    @property
    def device(self) -> str:
        """What the status bar shows instead of CPU or GPU layers: where the model runs (the host alone where
        the model's name is not known yet, since the name then is the host)."""
        return "server" if self.name == self._host else f"server {self._host}"

    @classmethod
    def from_config(cls, cfg) -> "OpenAIModel":
        return cls(cfg.base_url, model=cfg.server_model, api_key_env=cfg.api_key_env,
                   parallel=cfg.server_parallel, timeout=cfg.server_timeout, n_ctx=cfg.n_ctx)

    # -- HTTP ------------------------------------------------------------------------------------------
    def _key(self) -> str | None:
        if not self.api_key_env:
            return None
        key = os.environ.get(self.api_key_env)
        if not key:
            raise ServerError(f"The environment variable {self.api_key_env}, which should hold the model server's "
                              "API key, is not set; export it before starting the assistant (or set api_key_env "
                              'to "" if the server needs no key).')
        return key

    def _headers(self) -> dict:
        headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
        key = self._key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _timeout_error(self) -> ServerError:
        return ServerError(f"The model server at {self.base_url} did not answer within {self.timeout:g} seconds; "
                           "check that it is running and not overloaded, or raise server_timeout.")

    def _malformed(self, what: str) -> ServerError:
        return ServerError(f"The model server at {self.base_url} sent a reply that is not what was asked ({what}); "
                           "check that base_url points at an OpenAI-compatible API.")

    @contextmanager
    def _open(self, method: str, path: str, body: dict | None = None,
              cancel: threading.Event | None = None, root: bool = False) -> Iterator[http.client.HTTPResponse]:
        """One request; yields the response when its status is 200, else raises ServerError in one sentence.
        Setting `cancel` closes the connection, which ends a read under way (and the server's work). `root`:
        the path is beside the API (the servers' tokenizers), not under its /v1."""
        headers = self._headers()
        cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        conn = cls(self._host, self._port, timeout=self.timeout)
        done = threading.Event()
        if cancel is not None:
            threading.Thread(target=_close_on_cancel, args=(conn, cancel, done), daemon=True,
                             name="server-cancel").start()
        try:
            try:
                base = self._path[:-3] if root and self._path.endswith("/v1") else self._path
                conn.request(method, base + path, headers=headers,
                             body=json.dumps(body).encode("utf-8") if body is not None else None)
                resp = conn.getresponse()
            except TimeoutError:
                raise self._timeout_error() from None
            except (http.client.RemoteDisconnected, ConnectionError, OSError) as e:
                if cancel is not None and cancel.is_set():
                    raise _Cancelled() from None
                if isinstance(e, http.client.RemoteDisconnected):
                    raise ServerError(f"The model server at {self.base_url} closed the connection without "
                                      "answering; check that it is running and that base_url is right.") from None
                reason = getattr(e, "strerror", None) or str(e) or type(e).__name__
                raise ServerError(f"Cannot reach the model server at {self.base_url} ({reason}); start it, or "
                                  "set the right address with `assistant config set base_url URL`.") from None
            except http.client.HTTPException as e:
                raise self._malformed(f"not HTTP: {type(e).__name__}") from None
            if resp.status != 200:
                raise self._status_error(resp, path)
            yield resp
        finally:
            done.set()
            conn.close()

    def _status_error(self, resp: http.client.HTTPResponse, path: str) -> ServerError:
        try:
            detail = _error_detail(resp.read(8192))
        except (OSError, http.client.HTTPException):
            detail = ""
        status = resp.status
        err = self._status_sentence(status, detail, path)
        err.status = status
        return err

    def _status_sentence(self, status: int, detail: str, path: str) -> ServerError:
        url = self.base_url
        if status in (401, 403):
            if self.api_key_env:
                return ServerError(f"The model server at {url} refused the API key in {self.api_key_env} (HTTP "
                                   f"{status}); put the server's key in that environment variable.")
            return ServerError(f"The model server at {url} asks for an API key (HTTP {status}); put it in an "
                               "environment variable and name that variable with `assistant config set "
                               "api_key_env NAME`.")
        if status == 404:
            if "model" in detail.lower() and path != "/models":
                return ServerError(f"The model server at {url} has no model '{self._model_id}' ({detail}); set "
                                   "server_model to a model it serves.")
            return ServerError(f"There is no OpenAI-compatible API at {url} (HTTP 404 for {path}); check base_url "
                               "(it usually ends in /v1).")
        return _Refused(f"The model server at {url} answered HTTP {status}" + (f": {detail}." if detail else "."),
                        status, detail)

    def _read_json(self, resp: http.client.HTTPResponse) -> dict:
        try:
            raw = resp.read()
        except TimeoutError:
            raise self._timeout_error() from None
        except (OSError, http.client.HTTPException) as e:
            raise ServerError(f"The connection to the model server at {self.base_url} broke during its answer "
                              f"({type(e).__name__}); try again.") from None
        try:
            data = json.loads(raw)
        except ValueError:
            raise self._malformed(f"not JSON: {_one_line(raw.decode('utf-8', 'replace'), 60) or 'empty'}") from None
        if not isinstance(data, dict):
            raise self._malformed("not a JSON object")
        return data

    # -- the model on the server -------------------------------------------------------------------------
    def check(self) -> str:
        """The server's name for the model, asked of it once (reachable, key accepted, model served)."""
        if self._model_id is not None:
            return self._model_id
        with self._ready:
            if self._model_id is None:
                with self._open("GET", "/models") as resp:
                    data = self._read_json(resp)
                listed = data.get("data")
                if not isinstance(listed, list):
                    raise self._malformed("its /models answer has no list of models")
                models = {m["id"]: m for m in listed if isinstance(m, dict) and isinstance(m.get("id"), str)}
                want = self.server_model
                if not want:
                    if len(models) != 1:
                        raise ServerError(f"The model server at {self.base_url} serves "
                                          f"{_count(len(models), 'model')}" + (f" ({', '.join(models)})" if models else "")
                                          + "; name the one to use with `assistant config set server_model NAME`.")
                    want = next(iter(models))
                found = want if want in models else f"{want}:latest" if f"{want}:latest" in models else None
                if found is None:
                    served = ", ".join(models) or "none"
                    raise ServerError(f"The model server at {self.base_url} has no model '{want}' (it serves: "
                                      f"{served}); set server_model to one of those with `assistant config set "
                                      "server_model NAME`.")
                self._owner = str(models[found].get("owned_by") or "")
                self.name = found
                self._model_id = found
        return self._model_id

    def _post(self, body: dict, cancel: threading.Event | None = None) -> dict:
        """A whole (not streamed) chat completion: the reply's JSON, its first choice checked."""
        body = {"model": self.check(), **body}
        with self._open("POST", "/chat/completions", body, cancel) as resp:
            data = self._read_json(resp)
        _choice(data, self._malformed)
        return data

    # -- figures ------------------------------------------------------------------------------------------
    def count_tokens(self, text: str) -> int:
        n = self._server_count(text) if len(text) >= SERVER_COUNT_FROM else None
        return n if n is not None else _estimate(text)

    def _server_count(self, text: str) -> int | None:
        """The server's own count, where it has a tokenizer endpoint: with the estimate alone a long message
        was cut to fit a context it fitted
        (2,460 tokens read as 5,300)."""
        if self._tokenizer is False:
            return None
        if text in self._counts:
            return self._counts[text]
        try:
            model = self.check()
        except ServerError:
            return None             # the request itself will say what is wrong
        for path, key in [self._tokenizer] if self._tokenizer else TOKENIZERS:
            try:
                with self._open("POST", path, {"model": model, key: text}, root=True) as resp:
                    data = self._read_json(resp)
            except ServerError as e:
                if getattr(e, "status", None) in (401, 403):
                    return None
                continue            # refused, or not a tokenizer: not this server's way
            n = data.get("count") if isinstance(data.get("count"), int) else (
                len(data["tokens"]) if isinstance(data.get("tokens"), list) else None)
            if n is not None:
                self._tokenizer = (path, key)
                if len(self._counts) >= COUNTS_KEPT:
                    self._counts.clear()
                self._counts[text] = n
                return n
        if self._tokenizer is None:  # no way found; one that worked before is kept through a failure
            self._tokenizer = False
        return None

    def prompt_tokens(self, messages: list[dict]) -> int:
        return sum(self.count_tokens(m["content"]) + 6 for m in messages) + 4

    def _stats(self, messages: list[dict], data: dict, texts: Sequence[str] = ()) -> GenerationStats:
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        return GenerationStats(prompt_tokens=int(usage.get("prompt_tokens") or self.prompt_tokens(messages)),
                               completion_tokens=int(usage.get("completion_tokens")
                                                     or sum(self.count_tokens(t) for t in texts)))

    # -- the chat -------------------------------------------------------------------------------------------
    def stream(self, messages: list[dict], max_tokens: int = 512,
               cancel: threading.Event | None = None, **sampling) -> Iterator[str]:
        stats = GenerationStats()      # the prompt counted after the answer: no request before it
        self.last_timings = {}
        start = time.perf_counter()
        first = None
        # the answer stops where a copy of the memory block or an invented turn begins (assistant/guard.py;
        # four strings, as many as OpenAI's API takes)
        body = {"model": self.check(), "messages": messages, "max_tokens": max_tokens, "stream": True,
                "temperature": self.temperature, "top_p": 0.95, "stop": guard.STOP_STRINGS, **sampling}
        try:
            with ExitStack() as stack:
                resp = self._open_stream(stack, body, cancel)
                for event in self._events(resp, cancel):
                    if cancel is not None and cancel.is_set():
                        break
                    if isinstance(event.get("usage"), dict):
                        stats.prompt_tokens = int(event["usage"].get("prompt_tokens") or stats.prompt_tokens)
                        stats.completion_tokens = int(event["usage"].get("completion_tokens")
                                                      or stats.completion_tokens)
                    if isinstance(event.get("timings"), dict):
                        self.last_timings = event["timings"]
                    piece = _delta(event, self._malformed)
                    if not piece:
                        continue
                    now = time.perf_counter()
                    if first is None:
                        first = now
                        stats.time_to_first_token = now - start
                    if not isinstance(event.get("usage"), dict):
                        stats.completion_tokens += 1
                    stats.generation_seconds = now - first
                    yield piece
        except _Cancelled:
            pass
        finally:
            if not stats.prompt_tokens:     # the server sent no usage: an estimate, no request for a figure
                stats.prompt_tokens = sum(_estimate(m["content"]) + 6 for m in messages) + 4
            self.last_stats = stats

    def _open_stream(self, stack: ExitStack, body: dict, cancel) -> http.client.HTTPResponse:
        """The streamed answer's response, asking for the token counts at its end where the server takes
        stream_options (one that refuses them is asked without, from then on)."""
        if self._stream_usage:
            try:
                return stack.enter_context(self._open("POST", "/chat/completions",
                                                      {**body, "stream_options": {"include_usage": True}}, cancel))
            except _Refused as e:
                if "stream_options" not in e.detail:
                    raise
                self._stream_usage = False
        return stack.enter_context(self._open("POST", "/chat/completions", body, cancel))

    def _events(self, resp: http.client.HTTPResponse, cancel: threading.Event | None) -> Iterator[dict]:
        """The server-sent events of a streamed answer, until [DONE] (a server that answered in one piece
        gives one event)."""
        if "text/event-stream" not in (resp.getheader("Content-Type") or ""):
            data = self._read_json(resp)
            text = _choice(data, self._malformed)
            yield {"choices": [{"delta": {"content": text}}], "usage": data.get("usage")}
            return
        while True:
            try:
                line = resp.readline()
            except TimeoutError:
                raise self._timeout_error() from None
            except (OSError, http.client.HTTPException, ValueError):
                if cancel is not None and cancel.is_set():
                    return
                raise ServerError(f"The connection to the model server at {self.base_url} broke during the "
                                  "answer; what came so far is kept, try again.") from None
            if not line:
                return
            line = line.strip()
            if not line or line.startswith(b":") or line.startswith(b"event:") or line.startswith(b"id:"):
                continue
            if not line.startswith(b"data:"):
                raise self._malformed(f"a stream line that is not an event: {_one_line(line.decode('utf-8', 'replace'), 60)}")
            payload = line[5:].strip()
            if payload == b"[DONE]":
                return
            try:
                event = json.loads(payload)
            except ValueError:
                raise self._malformed("an event that is not JSON") from None
            if not isinstance(event, dict):
                raise self._malformed("an event that is not a JSON object")
            if event.get("error"):
                raise ServerError(f"The model server at {self.base_url} stopped the answer with an error: "
                                  f"{_error_detail(json.dumps(event).encode())}.")
            yield event

    # -- whole answers ------------------------------------------------------------------------------------
    def complete(self, messages: list[dict], schema: dict | None = None, max_tokens: int = 512) -> str:
        """A whole greedy answer. With `schema`, JSON asked for through response_format where the server
        takes it, else by the prompt; parsed and validated either way (else GenerationError)."""
        text, stats = self._complete(messages, schema, max_tokens)
        self._record(stats)
        return text

    def restate(self, messages: list[dict], max_tokens: int = 512) -> str:
        return self.complete(messages, max_tokens=max_tokens)

    def _complete(self, messages: list[dict], schema: dict | None, max_tokens: int) -> tuple[str, GenerationStats]:
        while True:
            fmt = self._format if schema is not None else None
            body = {"messages": _with_schema(messages, schema) if fmt == PROMPTED else messages,
                    "max_tokens": max_tokens, "temperature": 0.0}
            if fmt == JSON_SCHEMA:
                body["response_format"] = {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}}
            elif fmt == JSON_OBJECT:
                body["response_format"] = {"type": "json_object", "schema": schema}
            try:
                data = self._post(body)
                break
            except _Refused as e:
                if fmt in (None, PROMPTED) or not e.about_format():
                    raise
                if self._format == fmt:       # another thread may have stepped down already
                    self._format = JSON_OBJECT if fmt == JSON_SCHEMA else PROMPTED
        text = _choice(data, self._malformed)
        stats = self._stats(messages, data, [text])
        if schema is not None:
            if data["choices"][0].get("finish_reason") == "length":
                raise GenerationError(f"The model's structured output was cut off at max_tokens={max_tokens}; "
                                      "raise the limit or shorten the input.")
            text = _json_part(text)
            structured.parse(text, schema)
        return text, stats

    # -- the one-token label choice ---------------------------------------------------------------------
    def choose(self, messages: list[dict], options: list[str], prefix: str = "") -> str | None:
        """The option the reply most likely starts with after `prefix`: read from the logprobs of one token
        after `prefix` given as the start of the reply, where the server continues it and sends logprobs;
        else, for a prefix that opens a one-key JSON object, the constrained JSON answer. None when neither
        can tell."""
        picked, stats = self._choose(messages, options, prefix)
        self._record(stats)
        return picked

    def _continuation(self, messages: list[dict], start: str, tokens: int = 1) -> dict:
        """`tokens` tokens after `start` given as the beginning of the reply, with the first one's top
        logprobs."""
        self.check()                 # who serves the model decides how a reply is continued
        body = {"messages": messages + [{"role": "assistant", "content": start}], "max_tokens": tokens,
                "temperature": 0.0, "logprobs": True, "top_logprobs": TOP_LOGPROBS}
        if self._owner == "vllm":    # vLLM continues the last message only when asked to
            body.update(continue_final_message=True, add_generation_prompt=False)
        return self._post(body)

    def _continues(self) -> bool:
        """Whether the server continues a started reply and sends logprobs, asked once: a server that
        starts a new reply instead would answer '1' or 'Sure' where a continued one says '7'. Read from
        the reply's text, a few tokens long: a tokenizer that splits digits (Qwen's) sends the space
        before the 7 as a token of its own. llama-server sends the started reply back with its
        continuation."""
        if self._logprobs is None:
            with self._ready:
                if self._logprobs is None:
                    try:
                        data = self._continuation([{"role": "user", "content": PROBE_QUESTION}], PROBE_START,
                                                  tokens=3)
                    except _Refused:
                        self._logprobs = False
                    else:
                        text = _reply_text(data)
                        text = text[len(PROBE_START):] if text.startswith(PROBE_START) else text   # llama-server
                        self._logprobs = _has_top_logprobs(data) and text.strip().startswith("7")
        return self._logprobs

    def _choose(self, messages, options, prefix) -> tuple[str | None, GenerationStats]:
        if self._continues():
            data = self._continuation(messages, prefix)
            picked = _first_token_pick(data, options)
            if picked is not None:
                return picked, self._stats(messages, data, ["x"])
        m = _KEY_PREFIX.fullmatch(prefix)
        if m is None:
            return None, GenerationStats()
        key = m.group(1)
        schema = {"type": "object", "properties": {key: {"type": "string", "enum": list(options)}}, "required": [key]}
        text, stats = self._complete(messages, schema, 16 + max(map(len, options)))
        return json.loads(text)[key], stats

    # -- many independent prompts at once (consolidation) ---------------------------------------------------
    def _many(self, fn: Callable, items: list, checkpoint: Callable[[], None] | None):
        """fn(item) for each item, `parallel` requests at a time, so that the server batches them; the
        results and their summed figures. `checkpoint` runs before each request and may raise to stop."""
        def one(item):
            if checkpoint is not None:
                checkpoint()
            return fn(item)

        if not items:
            return [], GenerationStats()
        with ThreadPoolExecutor(max_workers=min(self.parallel, len(items)), thread_name_prefix="server") as pool:
            futures = [pool.submit(one, x) for x in items]
            try:
                done = [f.result() for f in futures]
            except BaseException:
                for f in futures:
                    f.cancel()
                raise
        total = GenerationStats(prompt_tokens=sum(s.prompt_tokens for _, s in done),
                                completion_tokens=sum(s.completion_tokens for _, s in done))
        return [r for r, _ in done], total

    def complete_many(self, conversations: list[list[dict]], max_tokens: int = 512,
                      checkpoint=None) -> list[str]:
        """Greedy answers to independent prompts, sent side by side."""
        out, stats = self._many(lambda m: self._complete(m, None, max_tokens), conversations, checkpoint)
        self._record(stats)
        return out

    def choose_many(self, conversations: list[list[dict]], options: list[str], prefix: str = "",
                    checkpoint=None) -> list[str | None]:
        """choose() for independent prompts, sent side by side."""
        out, stats = self._many(lambda m: self._choose(m, options, prefix), conversations, checkpoint)
        self._record(stats)
        return out


def _close_on_cancel(conn: http.client.HTTPConnection, cancel: threading.Event, done: threading.Event) -> None:
    while not done.is_set():
        if cancel.wait(0.05):
            sock = conn.sock
            if sock is not None and not done.is_set():
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            return


def _estimate(text: str) -> int:
    return max(1, (len(text) + 2) // 3)


def _choice(data: dict, malformed) -> str:
    """The text of a completion's first choice (checked to be one)."""
    try:
        choice = data["choices"][0]
        content = choice["message"].get("content") if "message" in choice else choice.get("text")
    except (KeyError, IndexError, TypeError, AttributeError):
        raise malformed("no choices with a message") from None
    if content is not None and not isinstance(content, str):
        raise malformed("a message whose content is not text")
    return content or ""


def _delta(event: dict, malformed) -> str:
    choices = event.get("choices")
    if not choices:          # the last event, with only the usage
        return ""
    try:
        piece = choices[0].get("delta", {}).get("content")
    except AttributeError:
        raise malformed("an event with no delta") from None
    if piece is not None and not isinstance(piece, str):
        raise malformed("an event whose content is not text")
    return piece or ""


def _reply_text(data: dict) -> str:
    """The first choice's text, or '' when there is none."""
    try:
        return _choice(data, ValueError)
    except ValueError:
        return ""


def _has_top_logprobs(data: dict) -> bool:
    try:
        return bool(data["choices"][0]["logprobs"]["content"][0]["top_logprobs"])
    except (KeyError, IndexError, TypeError):
        return False


def _first_token_pick(data: dict, options: Sequence[str]) -> str | None:
    """The option the reply's first token most likely begins: the likeliest of the top tokens that begins an
    option (what the model itself does with the options as its only choices). None when no top token begins
    one, or the token that does begins more than one."""
    try:
        tops = sorted(data["choices"][0]["logprobs"]["content"][0]["top_logprobs"], key=lambda t: -t["logprob"])
        tokens = [t["token"] for t in tops]
    except (KeyError, IndexError, TypeError, ValueError, AttributeError):
        return None
    for token in tokens:
        if not isinstance(token, str) or not token:
            continue
        token = token.strip() if token.strip() else token      # ' 7' after '6,'
        hits = [o for o in options if o.startswith(token) or (token.startswith(o) and o)]
        if hits:
            return hits[0] if len(hits) == 1 else None
    return None


def _with_schema(messages: list[dict], schema: dict) -> list[dict]:
    """`messages` asking, at the end, for JSON that fits `schema` (for a server that takes no response_format)."""
    ask = ("\n\nAnswer with only a JSON value that fits this JSON schema, and nothing else:\n" + json.dumps(schema))
    out = [dict(m) for m in messages]
    out[-1]["content"] = out[-1]["content"] + ask
    return out


def _json_part(text: str) -> str:
    """The JSON of an answer that may have wrapped it in a code fence or words."""
    t = text.strip()
    starts = [i for i in (t.find("{"), t.find("[")) if i >= 0]
    if not starts:
        return t
    try:
        _, end = json.JSONDecoder().raw_decode(t, min(starts))
    except ValueError:
        return t[min(starts):]
    return t[min(starts):end]


def _count(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")
