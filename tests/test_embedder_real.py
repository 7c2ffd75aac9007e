"""The embedder computes what sentence-transformers computes for the packaged MiniLM (the vectors already in
every database came from it), in numpy, without importing torch, transformers or sentence-transformers."""
from __future__ import annotations

import ast
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from memory.embedder import _packaged_model_dir
from memory.minilm import MiniLM, erf, gelu

pytestmark = pytest.mark.real
ROOT = Path(__file__).resolve().parents[1]

LONG = [" ".join(f"{w}{i}" for i in range(n)) for w, n in (("word", 400), ("pianist", 300), ("a", 1000))]
TEXTS = ["hello", "", " ", "\n\t", ".", "My sister Ana lives in Porto and teaches piano.",
         "Café déjà vu — naïve 😀 🎻", "東京で日本語を勉強しています。", "مرحبا بالعالم", "Ünïcödé ÀÉÎÕÜ ß ﬁ",
         "ok " * 255,                                    # right at the limit
         *LONG,                                          # past the model's 256 tokens: cut the same way
         *[f"{i} apples and the cello lesson on Tuesday in Lisbon. " * (1 + i % 30) for i in range(20)],
         *[f"sentence {i} about cello lessons in Lisbon" for i in range(60)]]   # more than one batch


@pytest.fixture(scope="module")
def reference():
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(_packaged_model_dir(), device="cpu")


@pytest.fixture(scope="module")
def ours(real_embedder):
    return real_embedder.embed(TEXTS)


def test_vectors_equal_those_of_sentence_transformers(ours, reference):
    """1e-5 on unit vectors whose components are about 0.05: float32 rounding in another order (numpy's
    BLAS against torch's) measured under 3e-7 here. Even 1e-5 in every one of the 384 components would
    move a cosine similarity by at most 4e-4, below the gaps between ranked memories; the tanh form of
    GELU in place of the erf form alone moves components by 5e-4, fifty times the bound."""
    theirs = reference.encode(TEXTS, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    assert ours.shape == (len(TEXTS), 384) and ours.dtype == np.float32
    assert np.abs(ours - theirs).max() < 1e-5
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-6)


def test_a_text_alone_equals_the_same_text_in_a_batch(real_embedder, ours):
    # padding to a batch's longest text and the passes' bounds must not change a text's vector
    model = real_embedder._model
    alone = np.stack([model.encode([t], 64)[0] for t in TEXTS[:14]])
    assert np.abs(alone - ours[:14]).max() < 1e-5
    assert np.abs(model.encode(TEXTS[:34], 3) - ours[:34]).max() < 1e-5     # many passes of three


def test_long_texts_keep_their_first_256_tokens(real_embedder):
    model = real_embedder._model
    assert model.max_tokens == 256
    # what lies past the 256th token does not change the vector
    a, b = real_embedder.embed([LONG[0], LONG[0] + " and then something else entirely"])
    assert np.abs(a - b).max() < 1e-6


def test_gelu_is_the_exact_erf_form():
    x = np.linspace(-10, 10, 200_001).astype(np.float32)
    x64 = x.astype(np.float64)
    exact = np.array([math.erf(v) for v in x64])
    assert np.abs(erf(x) - exact).max() < 5e-7
    exact_gelu = x64 * 0.5 * (1 + np.array([math.erf(v / math.sqrt(2)) for v in x64]))
    ours = gelu(x.copy())                                # in place, block by block: more than one block
    assert ours.dtype == np.float32 and x.size > 65536
    assert np.abs(ours - exact_gelu).max() < 2e-6        # float32 spacing at 10 is 9.5e-7


def test_the_encoder_refuses_a_bert_it_does_not_compute(tmp_path):
    folder = Path(_packaged_model_dir())
    for name in ("tokenizer.json", "sentence_bert_config.json", "model.safetensors"):
        (tmp_path / name).symlink_to(folder / name)
    config = json.loads((folder / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "hidden_act": "relu"}))
    with pytest.raises(ValueError, match="BERT variant"):
        MiniLM(str(tmp_path))


def test_the_embedder_uses_a_quarter_of_the_cores_for_blas(real_embedder):
    from threadpoolctl import threadpool_info

    blas = [p for p in threadpool_info() if p["user_api"] == "blas" and "numpy" in p["filepath"]]
    assert blas and all(p["num_threads"] == max(1, (os.cpu_count() or 2) // 4) for p in blas)


def test_the_app_never_imports_torch_transformers_or_sentence_transformers():
    heavy = {"torch", "transformers", "sentence_transformers"}
    found = []
    for package in ("assistant", "memory", "audio", "ui"):
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                         else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
                found += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] in heavy]
    assert found == []


def test_embedding_in_a_new_process_loads_none_of_them():
    code = ("import sys; import assistant.cli, assistant.wiring, ui.app; "
            "from memory.embedder import SentenceTransformerEmbedder as E; "
            "E(background=False).embed(['hi']); "
            "print(sorted(m for m in ('torch', 'transformers', 'sentence_transformers') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=str(ROOT))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
