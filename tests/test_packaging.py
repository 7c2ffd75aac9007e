"""The install script decides a CUDA build by a GPU the driver can see, never by nvcc alone."""
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _fake(bin_dir: Path, name: str, script: str) -> None:
    p = bin_dir / name
    p.write_text("#!/bin/sh\n" + script + "\n")
    p.chmod(0o755)


def _cuda_arch(bin_dir: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{bin_dir}:/usr/bin:/bin")
    return subprocess.run(["bash", str(ROOT / "packaging" / "cuda-arch.sh")], capture_output=True,
                          text=True, env=env, timeout=30)


@pytest.fixture
def bin_dir(tmp_path):
    d = tmp_path / "bin"
    d.mkdir()
    _fake(d, "nvcc", 'echo "Cuda compilation tools, release 13.0"')
    return d


def test_nvcc_without_a_gpu_is_no_cuda_build(bin_dir):
    if Path("/usr/local/cuda/bin/nvcc").exists() and Path("/usr/bin/nvidia-smi").exists():
        pytest.skip("this machine has a real NVIDIA driver")
    r = _cuda_arch(bin_dir)
    assert r.returncode != 0 and r.stdout == ""


def test_a_driver_that_lists_no_gpu_is_no_cuda_build(bin_dir):
    _fake(bin_dir, "nvidia-smi", 'echo "No devices were found"; exit 6')
    r = _cuda_arch(bin_dir)
    assert r.returncode != 0 and r.stdout == ""


def test_a_visible_gpu_gives_its_architecture(bin_dir):
    _fake(bin_dir, "nvidia-smi", '''case "$1" in
  -L) echo "GPU 0: NVIDIA H200 (UUID: GPU-0000)";;
  *) echo "9.0";;
esac''')
    r = _cuda_arch(bin_dir)
    assert r.returncode == 0 and r.stdout.strip() == "90"


def test_an_unknown_gpu_choice_is_one_sentence(tmp_path):
    env = dict(os.environ, ASSISTANT_GPU="yes please", ASSISTANT_VENV=str(tmp_path / "venv"))
    r = subprocess.run(["bash", str(ROOT / "packaging" / "install.sh")], capture_output=True, text=True,
                       env=env, timeout=30)
    assert r.returncode == 1
    assert r.stderr.strip() == "ASSISTANT_GPU must be auto, cuda or cpu (got 'yes please')."
    assert not (tmp_path / "venv").exists()


def test_the_quick_start_and_the_install_script_say_where_the_command_is():
    """The README writes `assistant ...` everywhere: right after the quick start, and at the end of the
    install, it says the command is in the virtual environment and how to reach it."""
    readme = (ROOT / "README.md").read_text()
    quick_start = readme[readme.index("## Quick start"):readme.index("## Using it")]
    assert "source .venv/bin/activate" in quick_start and ".venv/bin/assistant ..." in quick_start
    last = (ROOT / "packaging" / "install.sh").read_text().rstrip().splitlines()[-1]
    assert last.startswith('say "Installed. Start it with: $VENV/bin/assistant')
    assert "source $VENV/bin/activate" in last
