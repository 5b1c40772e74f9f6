"""The built-in embedder: the int8 ONNX copy of Gemma agrees with the torch model and is centred."""

from __future__ import annotations

import numpy as np
import pytest

TEXTS = ["나 땅콩 알레르기 있어", "My sister lives in Vancouver.", "다음 주 금요일에 엄마 생신이야"]


def test_vectors_are_unit_and_centred(embedder):
    from ohlora.registry import calibration_texts

    vecs = embedder.encode(TEXTS)
    assert vecs.shape == (3, embedder.dim) and vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    # centring removed the shared direction: unrelated texts are no longer ~0.9 apart
    off_diag = (vecs @ vecs.T)[~np.eye(3, dtype=bool)]
    assert off_diag.max() < 0.8
    # and the calibration set's mean is (nearly) gone from its own vectors
    calib = embedder.encode(calibration_texts()[:40])
    assert np.linalg.norm(calib.mean(axis=0)) < 0.5


def test_int8_copy_agrees_with_the_torch_model(embedder, gemma_dir):
    """Centred the same way, the float32 torch model and the int8 ONNX copy give the same
    vectors (cosine > 0.9; between these unrelated texts it is below 0.3)."""
    from memory.embed import gemma_embedder

    ref = gemma_embedder(gemma_dir, dtype="float32").encode(TEXTS) - embedder._mean
    ref /= np.linalg.norm(ref, axis=1, keepdims=True)
    sims = ref @ embedder.encode(TEXTS).T
    assert np.diag(sims).min() > 0.9, sims
    assert (sims.argmax(axis=1) == np.arange(3)).all()


def test_query_cache_and_long_text(embedder):
    a = embedder.encode(["고양이 키우는 사람 있어?"], kind="query")
    assert np.array_equal(a, embedder.encode(["고양이 키우는 사람 있어?"], kind="query"))
    long = embedder.encode(["가나다라 " * 5000])  # far past 512 tokens: cut in the middle, still a vector
    assert np.isfinite(long).all() and abs(np.linalg.norm(long) - 1.0) < 1e-5
    assert embedder.encode([]).shape == (0, embedder.dim)


def test_build_is_atomic(tmp_path, gemma_dir, monkeypatch):
    """A build that fails leaves no folder behind (the next start builds again)."""
    from memory import gemma_onnx

    def boom(*a, **k):
        raise RuntimeError("export failed")

    monkeypatch.setattr(gemma_onnx, "_export", boom)
    out = tmp_path / "onnx" / "x"
    with pytest.raises(RuntimeError):
        gemma_onnx.build(gemma_dir, out, ["문장"] * 20)
    assert not out.exists() and list((tmp_path / "onnx").iterdir()) == []
