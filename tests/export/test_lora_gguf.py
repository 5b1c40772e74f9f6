"""The LoRA GGUF layout: metadata, names, shapes, llama's q/k permutation, llama.cpp accepts it."""

from __future__ import annotations

import numpy as np
import pytest
from fake_adapter import make_fake_adapter
from gguf import GGUFReader

from ohlora.errors import UserError
from training.gguf_lora import llama_permute, read_peft_adapter, write_lora_gguf


def _fields(reader):
    return {k: f.contents() for k, f in reader.fields.items() if not k.startswith("GGUF.")}


def test_adapter_gguf_metadata_and_tensors(tmp_path, smollm2_gguf):
    adapter = make_fake_adapter(tmp_path / "a", "smollm2", r=4, alpha=8.0)
    out = write_lora_gguf(adapter, tmp_path / "adapter.gguf", "llama", base=smollm2_gguf)
    reader = GGUFReader(str(out))
    meta = _fields(reader)
    assert meta["general.type"] == "adapter"
    assert meta["general.architecture"] == "llama"
    assert meta["adapter.type"] == "lora"
    assert meta["adapter.lora.alpha"] == pytest.approx(8.0)
    tensors = {t.name: t for t in reader.tensors}
    assert set(tensors) == {f"blk.0.attn_q.weight.lora_{x}" for x in "ab"} | {
        f"blk.0.attn_k.weight.lora_{x}" for x in "ab"} | {f"blk.2.ffn_up.weight.lora_{x}" for x in "ab"}
    # ggml shapes: lora_a [n_in, r], lora_b [r, n_out]
    assert list(tensors["blk.0.attn_k.weight.lora_a"].shape) == [576, 4]
    assert list(tensors["blk.0.attn_k.weight.lora_b"].shape) == [4, 192]
    peft = {p.module: p for p in read_peft_adapter(adapter).pairs}
    q, k, up = (peft[f"model.layers.{m}"] for m in ("0.self_attn.q_proj", "0.self_attn.k_proj", "2.mlp.up_proj"))
    # q/k rows are permuted like the converter permutes the weights (9 heads, 3 kv heads); A is untouched
    np.testing.assert_array_equal(tensors["blk.0.attn_q.weight.lora_b"].data, llama_permute(q.b, 9, 9))
    np.testing.assert_array_equal(tensors["blk.0.attn_k.weight.lora_b"].data, llama_permute(k.b, 9, 3))
    np.testing.assert_array_equal(tensors["blk.0.attn_k.weight.lora_a"].data, k.a)
    np.testing.assert_array_equal(tensors["blk.2.ffn_up.weight.lora_b"].data, up.b)
    assert not np.array_equal(llama_permute(k.b, 9, 3), k.b)


def test_gemma_adapter_is_not_permuted(tmp_path, gemma_gguf):
    adapter = make_fake_adapter(tmp_path / "a", "gemma")
    out = write_lora_gguf(adapter, tmp_path / "adapter.gguf", "gemma3", base=gemma_gguf)
    tensors = {t.name: t for t in GGUFReader(str(out)).tensors}
    peft = {p.module: p for p in read_peft_adapter(adapter).pairs}
    np.testing.assert_array_equal(tensors["blk.0.attn_q.weight.lora_b"].data, peft["model.layers.0.self_attn.q_proj"].b)
    assert list(tensors["blk.1.ffn_down.weight.lora_a"].shape) == [2048, 4]


def test_rslora_and_alpha_pattern_fold_into_lora_b(tmp_path, gemma_gguf):
    adapter = make_fake_adapter(tmp_path / "a", "gemma", r=4, alpha=8.0, use_rslora=True,
                                alpha_pattern={"k_proj": 2.0})
    out = write_lora_gguf(adapter, tmp_path / "adapter.gguf", "gemma3", base=gemma_gguf)
    reader = GGUFReader(str(out))
    tensors = {t.name: t for t in reader.tensors}
    peft = {p.module: p for p in read_peft_adapter(adapter).pairs}
    # llama.cpp scales by alpha / r = 2; rsLoRA wants alpha / sqrt(r) = 4 (k_proj: 2 / 2 = 1)
    np.testing.assert_allclose(tensors["blk.0.attn_q.weight.lora_b"].data, peft["model.layers.0.self_attn.q_proj"].b * 2)
    np.testing.assert_allclose(tensors["blk.0.attn_k.weight.lora_b"].data, peft["model.layers.0.self_attn.k_proj"].b / 2)


def test_llama_cpp_loads_the_adapter(tmp_path, smollm2_gguf):
    import llama_cpp

    adapter = make_fake_adapter(tmp_path / "a", "smollm2")
    out = write_lora_gguf(adapter, tmp_path / "adapter.gguf", "llama", base=smollm2_gguf)
    llm = llama_cpp.Llama(str(smollm2_gguf), n_ctx=64, verbose=False)
    try:
        assert llama_cpp.llama_adapter_lora_init(llm.model, str(out).encode())
    finally:
        llm.close()


def test_unsupported_architecture_is_named(tmp_path):
    adapter = make_fake_adapter(tmp_path / "a", "gemma")
    with pytest.raises(UserError, match="'mamba' is not supported"):
        write_lora_gguf(adapter, tmp_path / "adapter.gguf", "mamba")
    assert not any(tmp_path.glob("*.gguf*"))


def test_adapter_for_another_base_is_refused(tmp_path, gemma_gguf):
    adapter = make_fake_adapter(tmp_path / "a", "smollm2")
    with pytest.raises(UserError, match="another base"):
        write_lora_gguf(adapter, tmp_path / "adapter.gguf", "gemma3", base=gemma_gguf)
    assert list(tmp_path.glob("*.gguf*")) == []


def test_llama_without_base_needs_head_counts(tmp_path):
    adapter = make_fake_adapter(tmp_path / "a", "smollm2")
    with pytest.raises(UserError, match="head counts"):
        write_lora_gguf(adapter, tmp_path / "adapter.gguf", "llama")


def test_broken_adapter_folders(tmp_path):
    with pytest.raises(UserError, match="no adapter_config.json"):
        write_lora_gguf(tmp_path, tmp_path / "x.gguf", "gemma3")
    adapter = make_fake_adapter(tmp_path / "d", "gemma", use_dora=True)
    with pytest.raises(UserError, match="DoRA"):
        write_lora_gguf(adapter, tmp_path / "x.gguf", "gemma3")
    adapter = make_fake_adapter(tmp_path / "t", "gemma")
    (adapter / "adapter_model.safetensors").write_bytes(b"\x10\x00\x00\x00garbage")
    with pytest.raises(UserError, match="unreadable safetensors"):
        write_lora_gguf(adapter, tmp_path / "x.gguf", "gemma3")
