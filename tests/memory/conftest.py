"""Fixtures for the memory tests: one real embedder per session (OHLORA_HOME per test comes from tests/conftest.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def models_home(shared_models, tmp_path_factory) -> Path:
    """An OHLORA_HOME whose models cache is the session's shared one.

    Session fixtures run before the per-test OHLORA_HOME, so the ones that build model
    copies (HF, ONNX) point OHLORA_HOME here while they do (the layout tests/conftest.py
    gives every test).
    """
    home = tmp_path_factory.mktemp("memory-models-home")
    (home / "cache").mkdir()
    (home / "cache" / "models").symlink_to(shared_models, target_is_directory=True)
    return home


@pytest.fixture(scope="session")
def gemma_dir(models_home) -> Path:
    """The HF copy of the packaged Gemma 3 270M, made once per session in the shared models cache."""
    from ohlora.models import ensure_hf_copy, resolve_base

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OHLORA_HOME", str(models_home))
        return ensure_hf_copy(resolve_base(""))


@pytest.fixture(scope="session")
def embedder(gemma_dir, models_home):
    """The built-in embedder (int8 ONNX Gemma, built once); also what `make_embedder('')` returns."""
    from memory.gemma_onnx import gemma_onnx_embedder
    from ohlora.registry import calibration_texts, share_embedder

    emb = gemma_onnx_embedder(gemma_dir, cache_dir=models_home / "cache" / "models" / "onnx",
                              calibration=calibration_texts)
    share_embedder("", emb)
    return emb


@pytest.fixture
def store(tmp_path, embedder):
    from memory import MemoryStore

    s = MemoryStore(tmp_path / "memory.db", embedder)
    yield s
    s.close()
