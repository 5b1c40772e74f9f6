"""Fixtures for the memory tests (the real embedder and OHLORA_HOME per test come from tests/conftest.py)."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture
def store(tmp_path, embedder):
    from memory import MemoryStore

    s = MemoryStore(tmp_path / "memory.db", embedder)
    yield s
    s.close()
