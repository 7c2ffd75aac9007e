import dataclasses
import hashlib
import sys

import pytest

from assistant import models
from assistant.errors import ModelError


@pytest.fixture
def fake_parts(tmp_path, monkeypatch):
    """Two installed 'packages' holding chunks of a small GGUF-looking file."""
    payload = b"GGUF" + bytes(range(256)) * 64
    halves = [payload[: len(payload) // 2], payload[len(payload) // 2:]]
    for i, chunk in enumerate(halves, start=1):
        pkg = tmp_path / "site" / f"fakemodel_part{i}"
        (pkg / "data").mkdir(parents=True)
        (pkg / "__init__.py").write_text("")
        (pkg / "data" / f"part{i:02d}.bin").write_bytes(chunk)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    spec = models.ModelSpec(name="fake", description="", filename="fake.gguf", size=len(payload),
                            sha256=hashlib.sha256(payload).hexdigest(),
                            package_prefix="fakemodel_part", parts=2, install_hint="pip install fake")
    monkeypatch.setitem(models.MODELS, "fake", spec)
    return spec, payload


def test_parts_joined_once_verified_and_reused(fake_parts, tmp_path):
    spec, payload = fake_parts
    seen = []
    path = models.resolve_model("fake", progress=lambda d, t: seen.append((d, t)))
    assert path.read_bytes() == payload
    assert seen and seen[-1] == (len(payload), len(payload))
    mtime = path.stat().st_mtime_ns
    seen.clear()
    assert models.resolve_model("fake", progress=lambda d, t: seen.append(d)) == path
    assert path.stat().st_mtime_ns == mtime and not seen  # reused, not re-joined or re-hashed


def test_checksum_mismatch_is_an_error_that_says_so(fake_parts, monkeypatch):
    spec, _ = fake_parts
    monkeypatch.setitem(models.MODELS, "fake", dataclasses.replace(spec, sha256="0" * 64))
    with pytest.raises(ModelError, match="sha256"):
        models.resolve_model("fake")
    assert not list((models.models_dir()).glob("*.partial"))


def test_missing_package_names_the_fix(monkeypatch):
    spec = models.ModelSpec(name="gone", description="", filename="g.gguf", size=1, sha256="0",
                            package_prefix="no_such_package_part", parts=2, install_hint="pip install gone")
    monkeypatch.setitem(models.MODELS, "gone", spec)
    with pytest.raises(ModelError, match="pip install gone"):
        models.resolve_model("gone")


def test_missing_and_corrupt_gguf_paths(tmp_path):
    with pytest.raises(ModelError) as e:
        models.resolve_model(str(tmp_path / "nope.gguf"))
    assert str(tmp_path / "nope.gguf") in str(e.value)
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a model at all")
    with pytest.raises(ModelError) as e:
        models.resolve_model(str(bad))
    assert str(bad) in str(e.value) and "corrupt" in str(e.value)


def test_smollm2_package_checksum_verified():
    path = models.resolve_model("smollm2")
    assert path.exists() and path.stat().st_size == models.MODELS["smollm2"].size
    assert (models.models_dir() / (models.MODELS["smollm2"].filename + ".verified")).exists()


def test_available_lists_every_model():
    names = [spec.name for spec, _, _ in models.available()]
    assert names[0] == models.DEFAULT_MODEL and {"qwen-0.5b", "smollm2"} <= set(names)
