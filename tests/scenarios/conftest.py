"""Scenarios: the flows a new user's first hour is made of, through the real default model
(Qwen2.5-Coder-1.5B), the real embedder, whisper and SQLite file. Slow by design; run by CI."""
import pytest


@pytest.fixture(scope="session")
def default_model():
    """The app's default chat model, loaded once per run, greedy so that a scenario repeats."""
    from assistant.llm import LlamaCppModel
    from assistant.models import DEFAULT_MODEL, resolve_model

    return LlamaCppModel(resolve_model(DEFAULT_MODEL), name=DEFAULT_MODEL, n_ctx=4096, gpu_layers=0,
                         temperature=0.0)


def pytest_collection_modifyitems(items):
    for item in items:
        if "scenarios" in str(item.fspath):
            item.add_marker(pytest.mark.real)
            item.add_marker(pytest.mark.scenario)
