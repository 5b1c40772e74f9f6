"""Training fixtures: the real Gemma HF copy, a tiny random Gemma 3 of the same family, data files."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def shared_models(tmp_path_factory) -> Path:
    """Override: OHLORA_TEST_MODELS=DIR reuses an existing models cache (e.g. $OHLORA_HOME/cache/models),
    so a developer does not pay the ~100 s GGUF dequantization on every run."""
    given = os.environ.get("OHLORA_TEST_MODELS")
    if given and Path(given).is_dir():
        return Path(given)
    return tmp_path_factory.mktemp("models-cache")


@pytest.fixture(scope="session")
def gemma_hf(shared_models, tmp_path_factory) -> Path:
    """The packaged Gemma 3 270M as an HF folder (dequantized once per session)."""
    old = os.environ.get("OHLORA_HOME")
    home = tmp_path_factory.mktemp("gemma-home")
    (home / "cache").mkdir()
    (home / "cache" / "models").symlink_to(shared_models, target_is_directory=True)
    os.environ["OHLORA_HOME"] = str(home)
    try:
        from ohlora.models import ensure_hf_copy, resolve_base

        return ensure_hf_copy(resolve_base(""))
    finally:
        if old is None:
            os.environ.pop("OHLORA_HOME", None)
        else:
            os.environ["OHLORA_HOME"] = old


def make_tiny_gemma(gemma_hf: Path, target: Path, seed: int) -> Path:
    """A randomly initialised 2-layer Gemma 3 with the real tokenizer: trains in seconds."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    cfg = AutoConfig.from_pretrained(str(gemma_hf))
    cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers = 64, 128, 2
    cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim = 2, 1, 32
    cfg.layer_types = ["sliding_attention", "full_attention"]
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    target.mkdir(parents=True)
    model.save_pretrained(str(target), safe_serialization=True)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(gemma_hf / name, target / name)
    return target


@pytest.fixture(scope="session")
def tiny_base(gemma_hf, tmp_path_factory) -> Path:
    return make_tiny_gemma(gemma_hf, tmp_path_factory.mktemp("tiny") / "tiny-gemma3", seed=1)


@pytest.fixture(scope="session")
def other_tiny_base(gemma_hf, tmp_path_factory) -> Path:
    return make_tiny_gemma(gemma_hf, tmp_path_factory.mktemp("tiny2") / "tiny-gemma3-b", seed=2)


@pytest.fixture
def chat_file() -> Path:
    return DATA / "tiny_chat.jsonl"


@pytest.fixture
def eval_file() -> Path:
    return DATA / "tiny_eval.jsonl"
