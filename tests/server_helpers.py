"""Servers the remote-engine tests start on loopback: llama-cpp-python's own OpenAI-compatible server over
SmolLM2, and tiny socket servers that misbehave (never answer, answer junk, or script OpenAI replies)."""
from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Iterator

__test__ = False   # helpers, not tests

MODEL_ALIAS = "smollm2"
API_KEY = "test-key-123"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def llama_cpp_server(model_path, *, api_key: str | None = API_KEY, n_ctx: int = 2048) -> Iterator[str]:
    """llama-cpp-python's server (python -m llama_cpp.server) on a free loopback port; yields its base URL."""
    port = free_port()
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(model_path), "--model_alias", MODEL_ALIAS,
           "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(n_ctx), "--n_threads", "2",
           "--n_threads_batch", "2", "--seed", "0"]
    if api_key:
        cmd += ["--api_key", api_key]
    log = tempfile.TemporaryFile()     # a file, not a pipe: llama.cpp logs a lot, and a full pipe stops it
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ))
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"the server stopped: {log.read().decode(errors='replace')[-2000:]}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/v1/models", headers={"Authorization": f"Bearer {api_key}"} if api_key else {})
                if conn.getresponse().status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not start within 120 s")
            time.sleep(0.3)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@contextmanager
def raw_server(reply: bytes | None) -> Iterator[int]:
    """A socket server on loopback that reads a request and sends `reply` (None: sends nothing, keeps the
    connection open until the test ends); yields its port."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    stop = threading.Event()
    held = []

    def serve():
        srv.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            held.append(conn)
            try:
                conn.settimeout(2)
                conn.recv(65536)
                if reply is not None:
                    conn.sendall(reply)
                    conn.close()
            except OSError:
                pass

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        yield srv.getsockname()[1]
    finally:
        stop.set()
        t.join(2)
        for c in held:
            c.close()
        srv.close()


@contextmanager
def scripted_server(answer: Callable[[dict], dict], models=("m",), owned_by="llamacpp",
                    delay: float = 0.0, tokens: Callable[[dict], dict] | None = None) -> Iterator[tuple[str, dict]]:
    """An OpenAI-style server whose chat completions are `answer(request body)` (a reply, or (status, body))
    and, with `tokens`, whose /tokenize answers `tokens(body)` (llama-server's way); yields (base URL, counters:
    'requests', 'in_flight', 'most_in_flight', 'bodies', 'not_found')."""
    seen = {"requests": 0, "in_flight": 0, "most_in_flight": 0, "bodies": [], "not_found": 0}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _send(self, data: dict, status: int = 200) -> None:
            raw = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def do_GET(self):
            self._send({"object": "list", "data": [{"id": m, "object": "model", "owned_by": owned_by} for m in models]})

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if self.path == "/tokenize" and tokens is not None:
                return self._send(tokens(body))
            if not self.path.endswith("/chat/completions"):     # a tokenizer, for one: not offered here
                seen["not_found"] += 1
                return self._send({"error": {"message": "Not Found"}}, 404)
            with lock:
                seen["requests"] += 1
                seen["in_flight"] += 1
                seen["most_in_flight"] = max(seen["most_in_flight"], seen["in_flight"])
                seen["bodies"].append(body)
            try:
                time.sleep(delay)
                out = answer(body)
                self._send(*(out[::-1] if isinstance(out, tuple) else (out,)))
            finally:
                with lock:
                    seen["in_flight"] -= 1

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}/v1", seen
    finally:
        srv.shutdown()
        srv.server_close()


def completion(text: str, top: list[tuple[str, float]] | None = None) -> dict:
    """A chat completion carrying `text` (and, with `top`, the first token's top logprobs)."""
    choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
    if top is not None:
        choice["logprobs"] = {"content": [{"token": top[0][0], "logprob": top[0][1],
                                           "top_logprobs": [{"token": t, "logprob": p} for t, p in top]}]}
    return {"object": "chat.completion", "choices": [choice], "usage": {"prompt_tokens": 10, "completion_tokens": 1}}
