"""Tiny random PEFT LoRA folders with a real base's layer shapes (for fast format/error tests)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

# HF layer -> (n_out, n_in) of a few layers of each packaged base
SHAPES = {
    "gemma": {"model.layers.0.self_attn.q_proj": (1024, 640), "model.layers.0.self_attn.k_proj": (256, 640),
              "model.layers.1.mlp.down_proj": (640, 2048)},
    "smollm2": {"model.layers.0.self_attn.q_proj": (576, 576), "model.layers.0.self_attn.k_proj": (192, 576),
                "model.layers.2.mlp.up_proj": (1536, 576)},
}


def make_fake_adapter(folder: Path, key: str, r: int = 4, alpha: float = 8.0, seed: int = 0, **config) -> Path:
    from safetensors.numpy import save_file

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for module, (n_out, n_in) in SHAPES[key].items():
        tensors[f"base_model.model.{module}.lora_A.weight"] = rng.normal(0, 0.02, (r, n_in)).astype(np.float32)
        tensors[f"base_model.model.{module}.lora_B.weight"] = rng.normal(0, 0.02, (n_out, r)).astype(np.float32)
    save_file(tensors, str(folder / "adapter_model.safetensors"))
    cfg = {"peft_type": "LORA", "r": r, "lora_alpha": alpha, "target_modules": ["q_proj", "k_proj", "down_proj", "up_proj"],
           "bias": "none", "task_type": "CAUSAL_LM", "base_model_name_or_path": "", **config}
    (folder / "adapter_config.json").write_text(json.dumps(cfg))
    return folder
