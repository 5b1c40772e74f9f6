"""Fixtures for the memory tests: one real embedder per session (OHLORA_HOME per test comes from tests/conftest.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def gemma_dir(shared_models, tmp_path_factory) -> Path:
    """The HF copy of the packaged Gemma 3 270M, made once per session in the shared models cache.

    Session fixtures run before the per-test OHLORA_HOME, so point OHLORA_HOME at a home
    whose models cache is the shared one (the layout tests/conftest.py gives every test).
    """
    from ohlora.models import ensure_hf_copy, resolve_base

    home = tmp_path_factory.mktemp("memory-models-home")
    (home / "cache").mkdir()
    (home / "cache" / "models").symlink_to(shared_models, target_is_directory=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OHLORA_HOME", str(home))
        return ensure_hf_copy(resolve_base(""))


@pytest.fixture(scope="session")
def embedder(gemma_dir):
    """The built-in embedder, loaded once; also what `get_embedder('')` returns (CLI handlers)."""
    from memory.embed import gemma_embedder, register_embedder

    import torch

    # the test machine is shared and busy: one torch thread is ~10x faster than two that spin
    torch.set_num_threads(1)
    emb = gemma_embedder(gemma_dir)
    register_embedder("", emb)
    return emb


@pytest.fixture
def store(tmp_path, embedder):
    from memory import MemoryStore

    s = MemoryStore(tmp_path / "memory.db", embedder)
    yield s
    s.close()
