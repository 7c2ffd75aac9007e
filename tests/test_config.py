import pytest

from assistant import config as cfg_mod, paths
from assistant.errors import ConfigError


def test_defaults_work_without_a_file():
    c = cfg_mod.load()
    assert c.model == "qwen-1.5b" and c.gpu_layers == "auto" and c.n_ctx >= 2048
    assert c.resolved_threads() >= 1


def test_set_save_and_load_round_trip():
    c = cfg_mod.load()
    c.set("n_ctx", "8192")
    c.set("gpu_layers", "10")
    cfg_mod.save(c)
    again = cfg_mod.load()
    assert again.n_ctx == 8192 and again.gpu_layers == 10
    assert paths.config_file().exists()


def test_invalid_toml_is_one_clear_sentence():
    paths.config_file().parent.mkdir(parents=True, exist_ok=True)
    paths.config_file().write_text("model = = 3")
    with pytest.raises(ConfigError) as e:
        cfg_mod.load()
    assert "not valid TOML" in str(e.value) and str(paths.config_file()) in str(e.value)


def test_wrong_type_and_unknown_key():
    paths.config_file().parent.mkdir(parents=True, exist_ok=True)
    paths.config_file().write_text('n_ctx = "big"\n')
    with pytest.raises(ConfigError, match="n_ctx"):
        cfg_mod.load()
    paths.config_file().write_text('colour = "red"\n')
    with pytest.raises(ConfigError, match="unknown keys"):
        cfg_mod.load()
    c = cfg_mod.Config()
    with pytest.raises(ConfigError, match="Unknown config key"):
        c.set("colour", "red")


def test_db_resolution_order(monkeypatch, tmp_path):
    assert paths.resolve_db() == paths.default_db()
    monkeypatch.setenv("ASSISTANT_DB", str(tmp_path / "env.db"))
    assert paths.resolve_db() == tmp_path / "env.db"
    assert paths.resolve_db(str(tmp_path / "cli.db")) == tmp_path / "cli.db"
