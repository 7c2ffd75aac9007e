"""The embedder computes what sentence-transformers computes for the packaged MiniLM (the vectors already in
every database came from it), without importing sentence-transformers."""
from __future__ import annotations

import sys

import numpy as np
import pytest

from memory.embedder import _packaged_model_dir

pytestmark = pytest.mark.real

TEXTS = ["hello", "", "My sister Ana lives in Porto and teaches piano.", "Café déjà vu — naïve 😀",
         "word " * 400,                                  # past the model's 256 tokens: cut the same way
         *[f"sentence {i} about cello lessons in Lisbon" for i in range(70)]]   # more than one batch


def test_vectors_equal_those_of_sentence_transformers(real_embedder):
    from sentence_transformers import SentenceTransformer

    ours = real_embedder.embed(TEXTS)
    theirs = SentenceTransformer(_packaged_model_dir(), device="cpu").encode(
        TEXTS, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    assert ours.shape == (len(TEXTS), 384) and ours.dtype == np.float32
    assert np.abs(ours - theirs).max() < 1e-5


def test_loading_it_does_not_import_sentence_transformers(tmp_path):
    import subprocess

    code = ("import sys; from memory.embedder import SentenceTransformerEmbedder as E; "
            "E(background=False).embed(['hi']); print('sentence_transformers' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                       cwd=str(__import__("pathlib").Path(__file__).resolve().parents[1]))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"
