"""The saved beginning of every prompt: one private file beside the database, keyed by the model and the exact
tokens, replaced when either changes; a state that does not match is never loaded."""
import stat

from assistant.prefix_cache import PrefixCache


class StateModel:
    """Saves and loads 'states' (the token list as text), as LlamaCppModel does with llama.cpp's."""

    def __init__(self, name="m"):
        self.name = name
        self.loaded = None

    def identity(self):
        return self.name

    def save_state(self, tokens, path):
        path.write_text(",".join(map(str, tokens)))
        return True

    def load_state(self, tokens, path):
        ok = path.read_text() == ",".join(map(str, tokens))
        self.loaded = tokens if ok else None
        return ok


def test_saved_privately_beside_the_database_and_loaded(tmp_path):
    cache = PrefixCache.beside(tmp_path / "notes.db")
    assert cache.folder == tmp_path / "notes-prompt-cache"
    model = StateModel()
    assert not cache.load(model, [1, 2, 3])                  # nothing saved yet
    assert cache.save(model, [1, 2, 3])
    assert stat.S_IMODE(cache.folder.stat().st_mode) == 0o700
    (f,) = list(cache.folder.iterdir())
    assert stat.S_IMODE(f.stat().st_mode) == 0o600
    assert cache.load(StateModel(), [1, 2, 3])


def test_a_new_beginning_or_model_replaces_the_saved_one(tmp_path):
    cache = PrefixCache(tmp_path / "c")
    cache.save(StateModel(), [1, 2, 3])
    assert not cache.load(StateModel(), [1, 2, 4])           # other tokens: another key, not loaded
    cache.save(StateModel(), [1, 2, 4])
    assert len(list(cache.folder.iterdir())) == 1 and cache.load(StateModel(), [1, 2, 4])
    assert not cache.load(StateModel("other"), [1, 2, 4])    # another model or settings
    cache.save(StateModel("other"), [1, 2, 4])
    assert len(list(cache.folder.iterdir())) == 1
    cache.clear()
    assert list(cache.folder.iterdir()) == []


def test_a_model_without_states_is_left_alone(tmp_path, fake_llm):
    cache = PrefixCache(tmp_path / "c")
    assert not cache.save(fake_llm, [1, 2]) and not cache.load(fake_llm, [1, 2])
    assert not cache.folder.exists()
