"""Typed configuration from a TOML file in the user's config directory; every key has a default.

Each key has a rule (its type and what values are allowed), checked both by `config set` and when the
file is read, so a bad value is refused with one sentence before it can slow down or break anything
later. The file holds only the keys the user set (`config unset` takes one out again); it is written
0600, and its folder, when the app has to create it, 0700.
"""
from __future__ import annotations

import dataclasses
import math
import os
import re
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Callable

import tomli_w

from memory.folders import private_dirs

from .errors import ConfigError
from .paths import config_file

MAX_CTX = 131072          # llama.cpp allocates the whole window at load; more than this is a typo
MAX_RECENT_TURNS = 200


@dataclass
class Config:
    model: str = "qwen-1.5b"          # a model name from `assistant models`, or a path to a .gguf
    n_ctx: int = 4096                 # context window in tokens
    threads: int = 0                  # 0 = all cores
    gpu_layers: str | int = "auto"    # "auto": every layer when llama.cpp can offload, else 0
    max_answer_tokens: int = 512
    recall_budget_tokens: int = 300   # room for recalled memories in each prompt (docs/benchmarks.md: the answers)
    recent_turns: int = 12            # turns of the current session always kept in the prompt
    pinned_budget_tokens: int = 200   # room for pinned facts (`assistant remember`) in every prompt
    flash_attn: str | bool = "auto"   # "auto": on when layers are offloaded to a GPU
    cpu_repack: str | bool = "auto"   # llama.cpp's repacked CPU weights; "auto": see llm.resolve_cpu_repack
    system_prompt: str = ""           # extra instructions appended to the built-in system prompt
    timeline_refine: bool = False     # one more model call per answer refines recalled timelines (THEANINE)
    consolidate_idle_minutes: float = 10.0   # tidy memory after this long without a message
    consolidate_at: str = "03:30"     # and every night at this local time ("" = never)
    consolidate_segment_mode: str = "fast"   # "fast" (embeddings) or "llm" (the model segments)
    listen: bool = False              # start listening to the room when the chat opens (opt-in)
    whisper_model: str = "tiny.en"    # speech model: "tiny.en" or "base" (multilingual)
    audio_device: str = ""            # input device name or index; "" = the system's default
    engine: str = "local"             # "local": llama.cpp in this process; "openai": a model server
    base_url: str = ""                # the server's OpenAI API, e.g. http://127.0.0.1:8080/v1
    server_model: str = ""            # the model's name on the server ("" = the one it serves)
    api_key_env: str = ""             # the NAME of an environment variable holding the key (never the key)
    server_parallel: int = 4          # independent prompts sent at once (the server batches them)
    server_timeout: float = 120.0     # seconds to wait for the server's next bytes

    def resolved_threads(self) -> int:
        return self.threads if self.threads > 0 else (os.cpu_count() or 2)

    def to_toml(self) -> str:
        """Every setting as TOML; a value that differs from its default says what the default is."""
        lines = []
        for key in self.keys():
            value, default = getattr(self, key), getattr(DEFAULTS, key)
            note = f"  # default: {toml_value(default)}" if value != default else ""
            lines.append(f"{key} = {toml_value(value)}{note}")
        return "\n".join(lines) + "\n"

    @classmethod
    def keys(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def set(self, key: str, raw: str) -> None:
        """Set a key from its command-line text, converting to the key's type and checking it."""
        rule = _rule(key)
        try:
            value = rule.parse(raw.strip())
        except ValueError:
            raise ConfigError(f"{key} cannot be {raw}: use {rule.allowed(self)}.") from None
        old = getattr(self, key)
        setattr(self, key, value)
        if not rule.ok(value, self):
            setattr(self, key, old)
            raise ConfigError(rule.not_yet(value, self) or f"{key} cannot be {raw}: use {rule.allowed(self)}.")
        for other in self.keys():   # a key another key is measured against (n_ctx) must keep it valid
            r = RULES[other]
            if other != key and not r.ok(getattr(self, other), self):
                bad = getattr(self, other)
                setattr(self, key, old)
                raise ConfigError(f"{key} cannot be {raw} while {other} is {toml_value(bad)}: {other} would "
                                  f"then have to be {r.allowed_with(self, key, value)}, so change {other} first.")

    def validate(self, where: str = "", written: dict | None = None) -> None:
        """Raise ConfigError, naming the key, its value (as `written`, where given) and what is allowed,
        for the first bad value."""
        for key in self.keys():
            rule, value = RULES[key], getattr(self, key)
            if not rule.ok(value, self):
                shown = toml_value((written or {}).get(key, value))
                raise ConfigError(f"{where}{key} = {shown} is not allowed: use {rule.allowed(self)}{_fix_hint(key)}.")


def toml_value(value) -> str:
    """A value as it is written in the TOML file: 2, true, "qwen-1.5b" (never a Python repr)."""
    return tomli_w.dumps({"v": value})[len("v = "):].strip()


def _fix_hint(key: str) -> str:
    return f"; change it with `assistant config set {key} VALUE` or `assistant config unset {key}`"


# -- the rules ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Rule:
    parse: Callable[[str], object]                 # command-line text -> value (ValueError if it is not one)
    ok: Callable[[object, Config], bool]           # is the (typed) value allowed, given the other settings
    allowed: Callable[[Config], str]               # what is allowed, to follow "use"
    from_toml: Callable[[object], object]          # a value read from the file -> typed value (ValueError)
    # why a value that is allowed is not allowed yet, given the other settings (None: the usual sentence)
    not_yet: Callable[[object, Config], str | None] = lambda v, c: None

    def allowed_with(self, cfg: Config, key: str, value) -> str:
        return self.allowed(dataclasses.replace(cfg, **{key: value}))


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _toml_int(v):
    if not _is_int(v):
        raise ValueError(v)
    return v


def _toml_float(v):
    if _is_int(v) or isinstance(v, float):
        return float(v)
    raise ValueError(v)


def _toml_type(t):
    def conv(v):
        if not isinstance(v, t):
            raise ValueError(v)
        return v
    return conv


def _parse_bool(raw: str) -> bool:
    low = raw.lower()
    if low in ("true", "yes", "on", "1"):
        return True
    if low in ("false", "no", "off", "0"):
        return False
    raise ValueError(raw)


def _parse_float(raw: str) -> float:
    value = float(raw)
    if not math.isfinite(value):
        raise ValueError(raw)
    return value


def _int_range(lo: Callable[[Config], int], hi: Callable[[Config], int], what: str, why: str = "") -> Rule:
    return Rule(parse=int, ok=lambda v, c: _is_int(v) and lo(c) <= v <= hi(c), from_toml=_toml_int,
                allowed=lambda c: f"{what} from {lo(c)} to {hi(c)}" + (f" ({why})" if why else ""))


def _choice(*names: str) -> Rule:
    listed = " or ".join(f'"{n}"' for n in names)
    return Rule(parse=str, ok=lambda v, c: v in names, allowed=lambda c: listed, from_toml=_toml_type(str))


def _flag(what: str) -> Rule:
    return Rule(parse=_parse_bool, ok=lambda v, c: isinstance(v, bool), allowed=lambda c: f"true or false ({what})",
                from_toml=_toml_type(bool))


def _cores() -> int:
    return os.cpu_count() or 1


# model ---------------------------------------------------------------------------------------------
def _model_names() -> list[str]:
    from .models import MODELS

    return list(MODELS)


def _parse_model(raw: str) -> str:
    if raw in _model_names():
        return raw
    path = Path(raw).expanduser()
    return str(path.resolve()) if path.suffix == ".gguf" and path.is_file() else raw


def _model_ok(v, c) -> bool:
    return isinstance(v, str) and (v in _model_names() or (v.endswith(".gguf") and Path(v).expanduser().is_file()))


# speech model --------------------------------------------------------------------------------------
def _whisper_names() -> list[str]:
    from audio.whisper_models import WHISPER_MODELS

    return list(WHISPER_MODELS)


def _parse_whisper(raw: str) -> str:
    path = Path(raw).expanduser()
    return str(path.resolve()) if raw not in _whisper_names() and (path / "model.bin").is_file() else raw


def _whisper_ok(v, c) -> bool:
    return isinstance(v, str) and (v in _whisper_names() or (Path(v).expanduser() / "model.bin").is_file())


# a time of day -------------------------------------------------------------------------------------
_HHMM = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")


def _parse_hhmm(raw: str) -> str:
    m = _HHMM.fullmatch(raw)
    return f"{int(m.group(1)):02d}:{m.group(2)}" if m else raw


def _parse_device(raw: str) -> str:
    return raw


def _toml_device(v):
    if _is_int(v):          # `audio_device = 3` in the file means the device with index 3
        return str(v)
    return _toml_type(str)(v)


# the model server ---------------------------------------------------------------------------------
def _parse_url(raw: str) -> str:
    """A server's address with its API path: a bare http://host:port gets the usual /v1."""
    from urllib.parse import urlsplit

    if not raw:
        return raw
    parts = urlsplit(raw)
    if parts.path in ("", "/"):
        return raw.rstrip("/") + "/v1"
    return raw.rstrip("/")


def _url_ok(v, c) -> bool:
    from urllib.parse import urlsplit

    if not isinstance(v, str):
        return False
    if v == "":
        return c.engine != "openai"
    try:
        parts = urlsplit(v)
        parts.port   # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


RULES: dict[str, Rule] = {
    "model": Rule(parse=_parse_model, ok=_model_ok, from_toml=_toml_type(str),
                  allowed=lambda c: f"a name from `assistant models` ({', '.join(_model_names())}) "
                                    "or the path of an existing .gguf file"),
    "n_ctx": _int_range(lambda c: 512, lambda c: MAX_CTX, "a number of tokens"),
    "threads": Rule(parse=int, ok=lambda v, c: _is_int(v) and 0 <= v <= _cores(), from_toml=_toml_int,
                    allowed=lambda c: f"0 (all cores) or a number of threads from 1 to {_cores()} "
                                      "(this machine's logical cores)"),
    "gpu_layers": Rule(parse=lambda r: r if r == "auto" else int(r), from_toml=lambda v: v if v == "auto" else _toml_int(v),
                       ok=lambda v, c: v == "auto" or (_is_int(v) and v >= 0),
                       allowed=lambda c: '"auto" (every layer when llama.cpp can use a GPU) or a number of layers, '
                                         "0 or more"),
    "max_answer_tokens": _int_range(lambda c: 1, lambda c: (c.n_ctx - 1) // 2, "a number of tokens",
                                    "under half of n_ctx"),
    "recall_budget_tokens": _int_range(lambda c: 0, lambda c: c.n_ctx // 2, "a number of tokens",
                                       "at most half of n_ctx"),
    "recent_turns": _int_range(lambda c: 0, lambda c: MAX_RECENT_TURNS, "a number of turns"),
    "pinned_budget_tokens": _int_range(lambda c: 0, lambda c: c.n_ctx // 4, "a number of tokens",
                                       "at most a quarter of n_ctx"),
    "flash_attn": Rule(parse=lambda r: r if r == "auto" else _parse_bool(r),
                       from_toml=lambda v: v if v == "auto" else _toml_type(bool)(v),
                       ok=lambda v, c: v == "auto" or isinstance(v, bool),
                       allowed=lambda c: '"auto" (on when layers run on a GPU), true or false'),
    "cpu_repack": Rule(parse=lambda r: r if r == "auto" else _parse_bool(r),
                       from_toml=lambda v: v if v == "auto" else _toml_type(bool)(v),
                       ok=lambda v, c: v == "auto" or isinstance(v, bool),
                       allowed=lambda c: '"auto" (off on CPUs with AVX-512 VNNI, else on), true or false'),
    "system_prompt": Rule(parse=str, ok=lambda v, c: isinstance(v, str), allowed=lambda c: "any text",
                          from_toml=_toml_type(str)),
    "timeline_refine": _flag("one more model call per answer"),
    "consolidate_idle_minutes": Rule(parse=_parse_float, from_toml=_toml_float,
                                     ok=lambda v, c: isinstance(v, float) and 0 < v < math.inf,
                                     allowed=lambda c: "a number of minutes above 0, e.g. 10 or 2.5"),
    "consolidate_at": Rule(parse=_parse_hhmm, from_toml=_toml_type(str),
                           ok=lambda v, c: isinstance(v, str) and (v == "" or _HHMM.fullmatch(v) is not None),
                           allowed=lambda c: 'a time of day as HH:MM from 00:00 to 23:59, or "" for never'),
    "consolidate_segment_mode": _choice("fast", "llm"),
    "listen": _flag("listen when the chat opens"),
    "whisper_model": Rule(parse=_parse_whisper, ok=_whisper_ok, from_toml=_toml_type(str),
                          allowed=lambda c: ", ".join(f'"{n}"' for n in _whisper_names())
                                            + " or a folder holding a Whisper model.bin"),
    "audio_device": Rule(parse=_parse_device, ok=lambda v, c: isinstance(v, str), from_toml=_toml_device,
                         allowed=lambda c: 'a device name or index, or "" for the default'),
    "engine": Rule(parse=str, from_toml=_toml_type(str),
                   ok=lambda v, c: v == "local" or (v == "openai" and bool(c.base_url)),
                   allowed=lambda c: '"local" (llama.cpp in this process) or "openai" (a model server; set '
                                     'base_url first)',
                   not_yet=lambda v, c: None if v != "openai" or c.base_url else (
                       "engine cannot be openai before base_url is set: set the server's address first "
                       "(`assistant config set base_url http://HOST:PORT/v1`), then the engine.")),
    "base_url": Rule(parse=_parse_url, ok=_url_ok, from_toml=_toml_type(str),
                     allowed=lambda c: "the http:// or https:// address of an OpenAI-compatible API, e.g. "
                                       "http://127.0.0.1:8080/v1" + (" (the openai engine needs one)"
                                                                     if c.engine == "openai" else ', or ""')),
    "server_model": Rule(parse=str, ok=lambda v, c: isinstance(v, str), from_toml=_toml_type(str),
                         allowed=lambda c: 'the model\'s name on the server, or "" for the one it serves'),
    "api_key_env": Rule(parse=str, from_toml=_toml_type(str),
                        ok=lambda v, c: isinstance(v, str) and (v == "" or _ENV_NAME.fullmatch(v) is not None),
                        allowed=lambda c: 'the name of an environment variable that holds the API key (such as '
                                          'ASSISTANT_API_KEY; never the key itself), or "" for none'),
    "server_parallel": _int_range(lambda c: 1, lambda c: 64, "a number of requests"),
    "server_timeout": Rule(parse=_parse_float, from_toml=_toml_float,
                           ok=lambda v, c: isinstance(v, float) and 0 < v <= 3600,
                           allowed=lambda c: "a number of seconds above 0, at most 3600"),
}
DEFAULTS = Config()
assert set(RULES) == set(Config.keys()), "every config key needs a rule"


def _rule(key: str) -> Rule:
    if key not in RULES:
        raise ConfigError(f"There is no config key '{key}'; the keys are: {', '.join(Config.keys())}.")
    return RULES[key]


# -- the file -------------------------------------------------------------------------------------------
def file_values(path: Path | None = None) -> dict:
    """What the file says, as written (an empty dict without a file); ConfigError if it is not TOML."""
    path = path or config_file()
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"The config file {path} is not valid TOML ({e}); fix it, or start again from the "
                          "defaults with `assistant config reset`.")


def load(path: Path | None = None, *, strict: bool = True) -> Config:
    """The settings: defaults overridden by the file. With strict=False a bad or unknown entry is
    skipped (the default stays) instead of raising, so that `config set` can repair a file."""
    path = path or config_file()
    data = file_values(path)
    cfg = Config()
    for key, value in data.items():
        if key not in RULES:
            if strict:
                raise ConfigError(f"The config file {path} has an unknown key '{key}'; remove it with "
                                  f"`assistant config unset {key}` (the keys are: {', '.join(Config.keys())}).")
            continue
        try:
            setattr(cfg, key, RULES[key].from_toml(value))
        except ValueError:
            if strict:
                raise ConfigError(f"In {path}, {key} = {toml_value(value)} is not allowed: use "
                                  f"{RULES[key].allowed(cfg)}{_fix_hint(key)}.") from None
    if strict:
        cfg.validate(where=f"In {path}, ", written=data)
    else:
        for key in data:
            if key in RULES and not RULES[key].ok(getattr(cfg, key), cfg):
                setattr(cfg, key, getattr(DEFAULTS, key))
    return cfg


def write_values(values: dict, path: Path | None = None) -> Path:
    """Write the file (mode 0600) atomically; its folder is created 0700 when it does not exist."""
    path = path or config_file()
    private_dirs(path.parent)
    text = tomli_w.dumps(values)
    if path.is_symlink():      # the user keeps it elsewhere (dotfiles): write through the link
        path.write_text(text, encoding="utf-8")
        return path
    tmp = path.with_name(path.name + ".partial")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path


def save(cfg: Config, path: Path | None = None) -> Path:
    """Write the settings that differ from the defaults."""
    return write_values({k: getattr(cfg, k) for k in cfg.keys() if getattr(cfg, k) != getattr(DEFAULTS, k)}, path)


def set_value(key: str, raw: str, path: Path | None = None) -> str:
    """Check and save one setting from its command-line text; returns the line written ('threads = 2')."""
    values = file_values(path)
    cfg = load(path, strict=False)
    cfg.set(key, raw)
    values[key] = getattr(cfg, key)
    write_values(values, path)
    return f"{key} = {toml_value(values[key])}"


def reset(path: Path | None = None) -> bool:
    """Every setting back to its default: the config file (the app's own) is removed, its folder stays.
    False when there was no file."""
    path = path or config_file()
    if not path.exists() and not path.is_symlink():
        return False
    path.unlink()
    return True


def unset_value(key: str, path: Path | None = None) -> bool:
    """Take KEY out of the file (back to its default); False when the file did not set it."""
    values = file_values(path)
    if key not in values:
        _rule(key)   # an unknown key that is not in the file either is a typo
        return False
    broken = _broken({k: v for k, v in values.items() if k != key}) - _broken(values)
    if broken:     # a key measured against this one (engine needs base_url) would be left invalid
        other = sorted(broken)[0]
        raise ConfigError(f"{key} cannot be unset while {other} is {toml_value(values[other])}: change {other} "
                          "first.")
    del values[key]
    write_values(values, path)
    return True


def _broken(values: dict) -> set[str]:
    """The keys of `values` whose value the others (and defaults) make invalid."""
    cfg = Config()
    for k, v in values.items():
        if k in RULES:
            try:
                setattr(cfg, k, RULES[k].from_toml(v))
            except ValueError:
                pass
    return {k for k in values if k in RULES and not RULES[k].ok(getattr(cfg, k), cfg)}
