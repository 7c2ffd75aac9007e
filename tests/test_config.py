import os
import stat
import subprocess
import sys
import tomllib

import pytest
from click.testing import CliRunner

from assistant import config as cfg_mod, paths
from assistant.cli import cli
from assistant.errors import ConfigError

CORES = os.cpu_count() or 1


def config_cli(*args, input=None):
    return CliRunner().invoke(cli, ["config", *args], input=input)


def test_defaults_work_without_a_file():
    c = cfg_mod.load()
    assert c.model == "qwen-1.5b" and c.gpu_layers == "auto" and c.n_ctx >= 2048
    assert c.resolved_threads() >= 1
    c.validate()   # every default passes its own rule


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
    with pytest.raises(ConfigError, match="unknown key 'colour'"):
        cfg_mod.load()
    c = cfg_mod.Config()
    with pytest.raises(ConfigError, match="no config key 'colour'"):
        c.set("colour", "red")


def test_db_resolution_order(monkeypatch, tmp_path):
    assert paths.resolve_db() == paths.default_db()
    monkeypatch.setenv("ASSISTANT_DB", str(tmp_path / "env.db"))
    assert paths.resolve_db() == tmp_path / "env.db"
    assert paths.resolve_db(str(tmp_path / "cli.db")) == tmp_path / "cli.db"


# -- every key, good and bad values ------------------------------------------------------------------
def _gguf(tmp_path):
    f = tmp_path / "mine.gguf"
    f.write_bytes(b"GGUF")
    return f


GOOD = [  # (key, what the user types, the value kept)
    ("model", "qwen-0.5b", "qwen-0.5b"),
    ("model", "smollm2", "smollm2"),
    ("model", _gguf, None),
    ("n_ctx", "2048", 2048), ("n_ctx", "8192", 8192),
    ("threads", "0", 0), ("threads", "1", 1), ("threads", str(CORES), CORES),
    ("gpu_layers", "auto", "auto"), ("gpu_layers", "0", 0), ("gpu_layers", "33", 33),
    ("max_answer_tokens", "1", 1), ("max_answer_tokens", "2047", 2047),
    ("recall_budget_tokens", "0", 0), ("recall_budget_tokens", "2048", 2048),
    ("recent_turns", "0", 0), ("recent_turns", "200", 200),
    ("pinned_budget_tokens", "0", 0), ("pinned_budget_tokens", "1024", 1024),
    ("flash_attn", "auto", "auto"), ("flash_attn", "true", True), ("flash_attn", "off", False),
    ("cpu_repack", "auto", "auto"), ("cpu_repack", "on", True), ("cpu_repack", "false", False),
    ("system_prompt", "Answer in French.", "Answer in French."), ("system_prompt", "", ""),
    ("system_prompt", "--be-brief", "--be-brief"),
    ("timeline_refine", "yes", True), ("timeline_refine", "false", False),
    ("consolidate_idle_minutes", "2.5", 2.5), ("consolidate_idle_minutes", "10", 10.0),
    ("consolidate_at", "23:59", "23:59"), ("consolidate_at", "4:15", "04:15"), ("consolidate_at", "", ""),
    ("consolidate_segment_mode", "llm", "llm"), ("consolidate_segment_mode", "fast", "fast"),
    ("listen", "true", True), ("listen", "0", False),
    ("whisper_model", "base", "base"), ("whisper_model", "tiny.en", "tiny.en"),
    ("audio_device", "3", "3"), ("audio_device", "USB Mic", "USB Mic"), ("audio_device", "", ""),
    ("engine", "local", "local"),
    ("base_url", "http://127.0.0.1:8080", "http://127.0.0.1:8080/v1"),
    ("base_url", "https://gpu-box:8000/v1/", "https://gpu-box:8000/v1"), ("base_url", "", ""),
    ("server_model", "qwen2.5:7b", "qwen2.5:7b"), ("server_model", "", ""),
    ("api_key_env", "ASSISTANT_API_KEY", "ASSISTANT_API_KEY"), ("api_key_env", "", ""),
    ("server_parallel", "8", 8), ("server_timeout", "30", 30.0),
]

BAD = [  # (key, what the user types, words of the sentence saying what is allowed)
    ("model", "gpt-4", "a name from `assistant models`"),
    ("model", "/no/such/model.gguf", "existing .gguf file"),
    ("n_ctx", "-5", "from 512 to 131072"), ("n_ctx", "100", "from 512"), ("n_ctx", "big", "number of tokens"),
    ("n_ctx", "4096.5", "number of tokens"), ("n_ctx", "999999999", "to 131072"),
    ("threads", "999", f"from 1 to {CORES}"), ("threads", str(CORES + 1), f"from 1 to {CORES}"),
    ("threads", "-1", "0 (all cores)"),
    ("gpu_layers", "lots", '"auto"'), ("gpu_layers", "-2", "0 or more"),
    ("max_answer_tokens", "0", "from 1 to 2047"), ("max_answer_tokens", "2048", "under half of n_ctx"),
    ("recall_budget_tokens", "-1", "from 0 to 2048"), ("recall_budget_tokens", "5000", "at most half"),
    ("recent_turns", "-3", "from 0 to 200"), ("recent_turns", "1000", "from 0 to 200"),
    ("pinned_budget_tokens", "-1", "from 0 to 1024"), ("pinned_budget_tokens", "1025", "a quarter of n_ctx"),
    ("flash_attn", "maybe", '"auto"'), ("cpu_repack", "sometimes", "AVX-512"),
    ("timeline_refine", "sometimes", "true or false"),
    ("consolidate_idle_minutes", "0", "above 0"), ("consolidate_idle_minutes", "-5", "above 0"),
    ("consolidate_idle_minutes", "nan", "above 0"), ("consolidate_idle_minutes", "inf", "above 0"),
    ("consolidate_at", "25:99", "HH:MM"), ("consolidate_at", "3pm", "HH:MM"), ("consolidate_at", "12:60", "HH:MM"),
    ("consolidate_segment_mode", "slow", '"fast" or "llm"'),
    ("listen", "maybe", "true or false"),
    ("whisper_model", "large", '"tiny.en", "base"'),
    ("engine", "openai", "before base_url is set"), ("engine", "vllm", '"local"'),
    ("base_url", "localhost:8080", "http:// or https://"), ("base_url", "http://:80/v1", "http:// or https://"),
    ("api_key_env", "sk-proj-abc123", "never the key itself"),
    ("server_parallel", "0", "from 1 to 64"), ("server_timeout", "0", "above 0"),
]


def test_the_tables_cover_every_key():
    keys = set(cfg_mod.Config.keys())
    assert {k for k, *_ in GOOD} == keys
    assert {k for k, *_ in BAD} == keys - {"system_prompt", "audio_device", "server_model"}   # any text is allowed


@pytest.mark.parametrize("key,raw,kept", GOOD)
def test_a_good_value_is_kept_and_read_back(tmp_path, key, raw, kept):
    if callable(raw):
        path = raw(tmp_path)
        raw, kept = str(path), str(path.resolve())
    r = config_cli("set", key, raw)
    assert r.exit_code == 0, r.output
    assert cfg_mod.load().__getattribute__(key) == kept
    # echoed as TOML, never as a Python repr (True, 'x')
    assert r.output.startswith(f"{key} = {cfg_mod.toml_value(kept)}  (saved to ")


@pytest.mark.parametrize("key,raw,allowed", BAD)
def test_a_bad_value_is_refused_with_one_sentence(key, raw, allowed):
    r = config_cli("set", key, raw)
    assert r.exit_code == 1
    message = r.output.strip()
    assert message.startswith(f"Error: {key} cannot be {raw}") and allowed in message
    assert message.count("\n") == 0 and "Traceback" not in message and "No such option" not in message
    assert not paths.config_file().exists()   # nothing was written


BAD_IN_FILE = [  # (key, the value as TOML reads it from a hand-edited file)
    ("model", "gpt-4"), ("n_ctx", -5), ("n_ctx", "big"), ("n_ctx", 4096.5), ("threads", 999),
    ("gpu_layers", "lots"), ("gpu_layers", True), ("max_answer_tokens", 0), ("recall_budget_tokens", 5000),
    ("recent_turns", -3), ("pinned_budget_tokens", -1), ("flash_attn", "maybe"), ("cpu_repack", "maybe"), ("system_prompt", 3), ("timeline_refine", "sometimes"),
    ("consolidate_idle_minutes", 0), ("consolidate_at", "25:99"), ("consolidate_segment_mode", "slow"),
    ("listen", "yes"), ("whisper_model", "large"), ("audio_device", 1.5),
    ("engine", "openai"), ("base_url", "ftp://gpu-box"), ("server_model", 3), ("api_key_env", "sk-1"),
    ("server_parallel", 0), ("server_timeout", -1),
]


def test_the_file_table_covers_every_key():
    assert {k for k, _ in BAD_IN_FILE} == set(cfg_mod.Config.keys())


@pytest.mark.parametrize("key,value", BAD_IN_FILE)
def test_a_bad_value_in_the_file_is_named_when_it_is_read(key, value):
    """A hand-edited file gets the same check: the key, its value and what is allowed, in one sentence."""
    cfg_mod.write_values({key: value})
    with pytest.raises(ConfigError) as e:
        cfg_mod.load()
    msg = str(e.value)
    assert msg.startswith(f"In {paths.config_file()}, {key} = {cfg_mod.toml_value(value)} is not allowed: use ")
    assert f"assistant config unset {key}" in msg and "\n" not in msg


def test_a_negative_number_is_a_value_not_an_option():
    """`config set n_ctx -5` reaches the check (it said "No such option '-5'")."""
    r = config_cli("set", "n_ctx", "-5")
    assert r.exit_code == 1 and "n_ctx cannot be -5" in r.output and "No such option" not in r.output
    r = config_cli("set", "gpu_layers", "-1")
    assert "gpu_layers cannot be -1" in r.output


def test_changing_n_ctx_keeps_the_answer_length_valid():
    assert config_cli("set", "n_ctx", "1000").exit_code == 1   # max_answer_tokens 512 would not fit
    r = config_cli("set", "n_ctx", "1000")
    assert "while max_answer_tokens is 512" in r.output and "change max_answer_tokens first" in r.output
    assert config_cli("set", "max_answer_tokens", "256").exit_code == 0
    assert config_cli("set", "recall_budget_tokens", "400").exit_code == 0
    assert config_cli("set", "n_ctx", "1000").exit_code == 0
    assert cfg_mod.load().n_ctx == 1000


def test_threads_past_the_machines_cores_is_refused_when_the_file_is_read():
    cfg_mod.write_values({"threads": CORES * 50})
    with pytest.raises(ConfigError, match=f"threads = {CORES * 50} is not allowed"):
        cfg_mod.load()


def test_a_consolidation_time_that_is_not_a_time_fails_at_config_set_not_later_in_daemon():
    assert config_cli("set", "consolidate_at", "25:99").exit_code == 1
    cfg_mod.write_values({"consolidate_at": "25:99"})          # a hand edit
    r = subprocess.run([sys.executable, "-m", "assistant.cli", "daemon"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 1 and "consolidate_at = \"25:99\" is not allowed" in r.stderr
    assert "--at" not in r.stderr


def test_unset_puts_a_key_back_to_its_default():
    config_cli("set", "threads", "1")
    config_cli("set", "listen", "true")
    r = config_cli("unset", "threads")
    assert r.exit_code == 0 and r.output.strip() == "threads is back to its default, 0."
    assert cfg_mod.load().threads == 0 and cfg_mod.load().listen is True
    assert "threads" not in cfg_mod.file_values()
    r = config_cli("unset", "threads")
    assert r.exit_code == 0 and "was not set" in r.output
    r = config_cli("unset", "colour")
    assert r.exit_code == 1 and "no config key 'colour'" in r.output


def test_unset_repairs_a_file_with_a_bad_value():
    cfg_mod.write_values({"threads": 999, "listen": True})
    assert config_cli("show").exit_code == 1
    assert config_cli("unset", "threads").exit_code == 0
    assert cfg_mod.load().listen is True
    cfg_mod.write_values({"threads": 999, "listen": True})
    assert config_cli("set", "threads", "1").exit_code == 0   # set repairs it too
    assert cfg_mod.load().threads == 1


def test_reset_asks_and_removes_only_the_config_file():
    config_cli("set", "threads", "1")
    folder = paths.config_file().parent
    (folder / "notes.txt").write_text("mine")
    r = config_cli("reset", input="n\n")
    assert r.exit_code == 0 and cfg_mod.load().threads == 1      # said no: nothing changed, as `forget`
    assert r.output.splitlines()[-1] == "Nothing was reset." and "Aborted" not in r.output
    r = config_cli("reset", input="")                             # no answer at all: a failure, still nothing
    assert r.exit_code == 1 and "Nothing was reset" in r.output and "Aborted" not in r.output
    assert cfg_mod.load().threads == 1
    r = config_cli("reset", input="y\n")
    assert r.exit_code == 0 and not paths.config_file().exists()
    assert (folder / "notes.txt").read_text() == "mine" and folder.is_dir()
    assert cfg_mod.load() == cfg_mod.Config()
    r = config_cli("reset", "--yes")
    assert r.exit_code == 0 and "already at its default" in r.output


def test_reset_works_on_a_file_that_is_not_toml():
    paths.config_file().parent.mkdir(parents=True, exist_ok=True)
    paths.config_file().write_text("model = = 3")
    assert config_cli("reset", "--yes").exit_code == 0
    assert cfg_mod.load() == cfg_mod.Config()


def test_show_prints_valid_toml_of_every_setting():
    config_cli("set", "system_prompt", 'Say "hi" first.\nThen answer.')
    config_cli("set", "listen", "yes")
    r = config_cli("show")
    assert r.exit_code == 0
    data = tomllib.loads(r.output)
    assert set(data) == set(cfg_mod.Config.keys())
    assert data["listen"] is True and data["system_prompt"] == 'Say "hi" first.\nThen answer.'
    assert "True" not in r.output and "'" not in r.output


def test_the_file_is_private_and_only_its_new_folder_is_made_private():
    folder = paths.config_file().parent
    parent = folder.parent
    parent.mkdir(parents=True, exist_ok=True)
    os.chmod(parent, 0o755)
    assert config_cli("set", "threads", "1").exit_code == 0
    assert stat.S_IMODE(paths.config_file().stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700      # created by the app
    assert stat.S_IMODE(parent.stat().st_mode) == 0o755      # was there: untouched


def test_an_existing_config_folder_keeps_its_mode():
    folder = paths.config_file().parent
    folder.mkdir(parents=True)
    os.chmod(folder, 0o755)
    assert config_cli("set", "threads", "1").exit_code == 0
    assert stat.S_IMODE(folder.stat().st_mode) == 0o755
    assert stat.S_IMODE(paths.config_file().stat().st_mode) == 0o600


def test_the_openai_engine_needs_its_address_first_and_keeps_it(tmp_path):
    assert config_cli("set", "base_url", "http://127.0.0.1:8080").exit_code == 0
    assert config_cli("set", "engine", "openai").exit_code == 0
    cfg = cfg_mod.load()
    assert (cfg.engine, cfg.base_url) == ("openai", "http://127.0.0.1:8080/v1")
    r = config_cli("unset", "base_url")
    assert r.exit_code == 1 and "base_url cannot be unset while engine is \"openai\": change engine first." in r.output
    assert cfg_mod.load().base_url == "http://127.0.0.1:8080/v1"


def test_choosing_a_model_that_is_not_installed_saves_it_and_says_how_to_install_it(monkeypatch):
    from assistant.models import MODELS

    monkeypatch.setattr(type(MODELS["qwen-0.5b"]), "installed", lambda self: False)
    r = config_cli("set", "model", "qwen-0.5b")
    assert r.exit_code == 0 and "model = \"qwen-0.5b\"" in r.output
    assert "the model 'qwen-0.5b' is not installed yet" in r.output and MODELS["qwen-0.5b"].install_hint in r.output
    monkeypatch.setattr(type(MODELS["qwen-0.5b"]), "installed", lambda self: True)
    assert "not installed" not in config_cli("set", "model", "qwen-0.5b").output
