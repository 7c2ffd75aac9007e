"""Typed configuration from a TOML file in the user's config directory; every key has a default."""
from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path

import tomli_w

from .errors import ConfigError
from .paths import config_file


@dataclass
class Config:
    model: str = "qwen-1.5b"          # a model name from `assistant models`, or a path to a .gguf
    n_ctx: int = 4096                 # context window in tokens
    threads: int = 0                  # 0 = all cores
    gpu_layers: str | int = "auto"    # "auto": every layer when llama.cpp can offload, else 0
    max_answer_tokens: int = 512
    recall_budget_tokens: int = 700   # room for recalled memories in each prompt
    recent_turns: int = 12            # turns of the current session always kept in the prompt
    flash_attn: str | bool = "auto"   # "auto": on when layers are offloaded to a GPU
    system_prompt: str = ""           # extra instructions appended to the built-in system prompt
    timeline_refine: bool = False     # one more model call per answer refines recalled timelines (THEANINE)
    consolidate_idle_minutes: float = 10.0   # tidy memory after this long without a message
    consolidate_at: str = "03:30"     # and every night at this local time ("" = never)
    consolidate_segment_mode: str = "fast"   # "fast" (embeddings) or "llm" (the model segments)
    listen: bool = False              # start listening to the room when the chat opens (opt-in)
    whisper_model: str = "tiny.en"    # speech model: "tiny.en" or "base" (multilingual)
    audio_device: str = ""            # input device name or index; "" = the system's default

    def resolved_threads(self) -> int:
        import os

        return self.threads if self.threads > 0 else (os.cpu_count() or 2)

    def to_toml(self) -> str:
        return tomli_w.dumps(dataclasses.asdict(self))

    @classmethod
    def keys(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def set(self, key: str, raw: str) -> None:
        """Set a key from its command-line text, converting to the key's type."""
        if key not in self.keys():
            raise ConfigError(f"Unknown config key '{key}'; known keys: {', '.join(self.keys())}.")
        current = getattr(self, key)
        try:
            if key == "gpu_layers":
                value = raw if raw == "auto" else int(raw)
            elif key == "flash_attn" and raw == "auto":
                value = raw
            elif isinstance(current, bool) or key == "flash_attn":
                if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(raw)
                value = raw.lower() in ("true", "1", "yes")
            elif isinstance(current, float):
                value = float(raw)
            elif isinstance(current, int):
                value = int(raw)
            else:
                value = raw
        except ValueError:
            raise ConfigError(f"'{raw}' is not a valid value for {key} (expected {type(current).__name__}).")
        setattr(self, key, value)
        self.validate()

    def validate(self) -> None:
        if self.n_ctx < 512:
            raise ConfigError("n_ctx must be at least 512 tokens; fix it in the config file.")
        if not (self.gpu_layers == "auto" or isinstance(self.gpu_layers, int)):
            raise ConfigError('gpu_layers must be "auto" or a number of layers; fix it in the config file.')
        if self.consolidate_segment_mode not in ("fast", "llm"):
            raise ConfigError('consolidate_segment_mode must be "fast" or "llm"; fix it in the config file.')
        if self.consolidate_idle_minutes <= 0:
            raise ConfigError("consolidate_idle_minutes must be positive; fix it in the config file.")
        if not (self.flash_attn == "auto" or isinstance(self.flash_attn, bool)):
            raise ConfigError('flash_attn must be "auto", true or false; fix it in the config file.')
        if self.max_answer_tokens >= self.n_ctx // 2:
            raise ConfigError("max_answer_tokens must be under half of n_ctx; fix it in the config file.")


def load(path: Path | None = None) -> Config:
    path = path or config_file()
    cfg = Config()
    if not path.exists():
        return cfg
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"The config file {path} is not valid TOML ({e}); fix or delete it.")
    unknown = set(data) - set(Config.keys())
    if unknown:
        raise ConfigError(f"The config file {path} has unknown keys {sorted(unknown)}; remove them.")
    for key, value in data.items():
        expected = type(getattr(cfg, key))
        if key in ("gpu_layers", "flash_attn") or isinstance(value, expected) or (expected is float and isinstance(value, int)):
            setattr(cfg, key, value)
        else:
            raise ConfigError(f"In {path}, {key} should be {expected.__name__}, not {value!r}.")
    cfg.validate()
    return cfg


def save(cfg: Config, path: Path | None = None) -> Path:
    path = path or config_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(cfg.to_toml())
    return path
