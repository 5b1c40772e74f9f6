"""Servers for the serve tests: the scripted engine (fast tier) and the packaged Gemma (slow tier)."""

from __future__ import annotations

import pytest

from tests.serve.server_helpers import Server


@pytest.fixture
def start_server(tmp_path):
    """start_server(*args, env=..., home=..., memory=False) -> a running Server; all are stopped at the end.
    Memory is off unless asked for: loading its Korean analyzer takes seconds."""
    started: list[Server] = []

    def start(*args: str, env: dict | None = None, home=None, fake: bool = True, memory: bool = False) -> Server:
        base_args = ("--backend", "fake") if fake else ()
        server = Server(home or tmp_path / "serve-home", (*base_args, *args),
                        {"OHLORA_FAKE_DELAY": "0.01", "OHLORA_MEMORY": "1" if memory else "0", **(env or {})})
        started.append(server)
        return server

    yield start
    for s in started:
        s.stop()


@pytest.fixture(scope="module")
def fake_server(tmp_path_factory):
    """One scripted-engine server for the tests that need no special flags (echo replies)."""
    server = Server(tmp_path_factory.mktemp("fake-serve"), ("--backend", "fake"), {"OHLORA_FAKE_DELAY": "0.01"})
    yield server
    server.stop()


def _gemma_home(tmp_path_factory, shared_models):
    home = tmp_path_factory.mktemp("gemma-serve")
    (home / "cache").mkdir()
    (home / "cache" / "models").symlink_to(shared_models, target_is_directory=True)
    return home


@pytest.fixture(scope="module")
def gemma_server(tmp_path_factory, shared_models, gemma_gguf):
    """`ohlora serve` on the packaged Gemma 3 270M (llama.cpp) with both personas' adapters."""
    server = Server(_gemma_home(tmp_path_factory, shared_models), ("--queue-size", "1"), timeout=600)
    yield server
    server.stop()


@pytest.fixture
def gemma_home(tmp_path_factory, shared_models, gemma_gguf):
    return _gemma_home(tmp_path_factory, shared_models)
