"""Logits of the same token ids through transformers (+PEFT) and through llama.cpp (+LoRA GGUF)."""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from pathlib import Path

import numpy as np


def hf_logits(hf_dir: Path, adapter_dir: Path | None, ids_list: list[list[int]]) -> np.ndarray:
    """Next-token logits at every position, rows of all sequences stacked."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32)
    if adapter_dir is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter_dir))
    model.eval()
    rows = []
    with torch.no_grad():
        for ids in ids_list:
            out = model(input_ids=torch.tensor([ids]))
            rows.append(out.logits[0].float().numpy())
    return np.concatenate(rows)


def llama_logits(gguf_path: Path, lora_gguf: Path | None, ids_list: list[list[int]]) -> np.ndarray:
    import llama_cpp

    n_ctx = max(len(ids) for ids in ids_list) + 8
    llm = llama_cpp.Llama(str(gguf_path), n_ctx=n_ctx, logits_all=True, verbose=False, n_threads=2)
    if lora_gguf is not None:
        handle = llama_cpp.llama_adapter_lora_init(llm.model, str(lora_gguf).encode())
        assert handle, f"llama.cpp refused {lora_gguf}"
        arr = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(handle)
        scales = (ctypes.c_float * 1)(1.0)
        assert llama_cpp.llama_set_adapters_lora(llm.ctx, arr, 1, scales) == 0
    rows = []
    for ids in ids_list:
        llm.reset()
        llm.eval(ids)
        rows.append(np.array(llm.scores[: len(ids)], dtype=np.float32))
    llm.close()
    return np.concatenate(rows)


@dataclass
class Agreement:
    positions: int
    top1: float  # share of positions with the same argmax
    corr_mean: float  # mean per-position Pearson correlation of the logit vectors
    corr_min: float

    def as_dict(self) -> dict:
        return {"positions": self.positions, "top1": round(self.top1, 4),
                "corr_mean": round(self.corr_mean, 5), "corr_min": round(self.corr_min, 5)}


def agreement(a: np.ndarray, b: np.ndarray) -> Agreement:
    assert a.shape == b.shape, (a.shape, b.shape)
    top1 = float(np.mean(a.argmax(-1) == b.argmax(-1)))
    ac = a - a.mean(-1, keepdims=True)
    bc = b - b.mean(-1, keepdims=True)
    corr = (ac * bc).sum(-1) / np.sqrt((ac * ac).sum(-1) * (bc * bc).sum(-1))
    return Agreement(len(a), top1, float(corr.mean()), float(corr.min()))
