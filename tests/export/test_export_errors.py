"""Bad input to the merged export: clear UserError, and no file left behind."""

from __future__ import annotations

import argparse
import json
import shutil
from collections import namedtuple

import pytest
from fake_adapter import make_fake_adapter

from ohlora.errors import UserError
from ohlora.models import resolve_base
from training.export import export
from training.export_cli import register
from training.gguf_merge import merge_lora_into_gguf


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.suffix in (".gguf", ".partial", ".f16") or ".partial" in p.name)


def test_truncated_and_corrupt_gguf(tmp_path, smollm2_gguf):
    adapter = make_fake_adapter(tmp_path / "a", "smollm2")
    cut = tmp_path / "cut.gguf"
    with smollm2_gguf.open("rb") as src:
        cut.write_bytes(src.read(smollm2_gguf.stat().st_size // 2))
    out = tmp_path / "out" / "m.gguf"
    with pytest.raises(UserError, match="truncated"):
        merge_lora_into_gguf(cut, adapter, out, "q8_0")
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"GGUF" + bytes(range(256)) * 8)
    with pytest.raises(UserError, match="corrupt or truncated"):
        merge_lora_into_gguf(junk, adapter, out, "q8_0")
    notgguf = tmp_path / "x.gguf"
    notgguf.write_bytes(b"PK\x03\x04 not a gguf")
    with pytest.raises(UserError, match="not a GGUF"):
        merge_lora_into_gguf(notgguf, adapter, out, "q8_0")
    assert not out.exists() and not out.parent.exists()


def test_adapter_for_another_base(tmp_path, gemma_gguf):
    adapter = make_fake_adapter(tmp_path / "a", "smollm2")
    with pytest.raises(UserError, match="another base"):
        merge_lora_into_gguf(gemma_gguf, adapter, tmp_path / "m.gguf", "f16")
    assert _leftovers(tmp_path) == []


def test_existing_output_needs_force_and_merge_works(tmp_path, smollm2_gguf):
    from gguf import GGUFReader

    adapter = make_fake_adapter(tmp_path / "a", "smollm2")
    out = tmp_path / "m.gguf"
    out.write_text("precious")
    with pytest.raises(UserError, match="already exists.*--force"):
        merge_lora_into_gguf(smollm2_gguf, adapter, out, "q8_0")
    assert out.read_text() == "precious"
    merge_lora_into_gguf(smollm2_gguf, adapter, out, "q8_0", force=True)
    reader = GGUFReader(str(out))
    types = {t.name: t.tensor_type.name for t in reader.tensors}
    assert types["blk.0.attn_q.weight"] == "Q8_0" and types["blk.2.ffn_up.weight"] == "Q8_0"
    assert types["blk.1.attn_q.weight"] == "Q4_1"  # untouched: copied as is
    assert len(reader.tensors) == len(GGUFReader(str(smollm2_gguf)).tensors)
    assert _leftovers(tmp_path) == ["m.gguf"]


def test_not_enough_disk(tmp_path, smollm2_gguf, monkeypatch):
    adapter = make_fake_adapter(tmp_path / "a", "smollm2")
    Usage = namedtuple("Usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: Usage(10 << 30, 10 << 30, 5 << 20))
    with pytest.raises(UserError, match="not enough disk space"):
        merge_lora_into_gguf(smollm2_gguf, adapter, tmp_path / "m.gguf", "q4_k_m")
    assert _leftovers(tmp_path) == []


def test_hf_base_to_gguf_needs_llama_cpp_dir(tmp_path, monkeypatch):
    folder = tmp_path / "MyModel"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "llama", "num_hidden_layers": 2}))
    adapter = make_fake_adapter(tmp_path / "a", "smollm2")
    monkeypatch.delenv("LLAMA_CPP_DIR", raising=False)
    with pytest.raises(UserError, match="set LLAMA_CPP_DIR to a llama.cpp checkout"):
        export(adapter, resolve_base(str(folder)), "gguf", "f16", out=tmp_path / "o.gguf")
    monkeypatch.setenv("LLAMA_CPP_DIR", str(tmp_path))
    with pytest.raises(UserError, match="has no convert_hf_to_gguf.py"):
        export(adapter, resolve_base(str(folder)), "gguf", "f16", out=tmp_path / "o.gguf")
    assert not (tmp_path / "o.gguf").exists()


def _cli(argv):
    parser = argparse.ArgumentParser(prog="ohlora")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_adapter_and_base(tmp_path, smollm2_gguf, capsys):
    adapter = make_fake_adapter(tmp_path / "a", "smollm2")
    out = tmp_path / "o.gguf"
    argv = ["export", "--adapter", str(adapter), "--base", "smollm2", "--quant", "q8_0", "--out", str(out)]
    assert _cli(argv) == 0
    assert out.is_file() and (tmp_path / "o.Modelfile").is_file()
    assert "wrote" in capsys.readouterr().out
    with pytest.raises(UserError, match="already exists"):
        _cli(argv)
    assert _cli(argv + ["--force"]) == 0


def test_cli_bad_arguments(tmp_path):
    with pytest.raises(UserError, match="adapter folder not found"):
        _cli(["export", "--adapter", str(tmp_path / "nope"), "--base", "smollm2"])
    with pytest.raises(UserError, match="unknown persona"):
        _cli(["export", "--persona", "nobody-here"])
    with pytest.raises(SystemExit):
        _cli(["export", "--adapter", str(tmp_path), "--quant", "q2_k"])
    with pytest.raises(UserError, match="unknown quantization"):
        export(make_fake_adapter(tmp_path / "a", "smollm2"), resolve_base("smollm2"), "gguf", "q3", out=tmp_path / "x")


def test_cli_module_has_no_heavy_imports():
    import subprocess
    import sys

    code = ("import sys, training.export_cli, training.export, training.modelfile; "
            "heavy = [m for m in ('torch', 'transformers', 'llama_cpp', 'peft') if m in sys.modules]; "
            "assert not heavy, heavy")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0
