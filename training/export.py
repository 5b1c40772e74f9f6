"""`ohlora export`: a persona's (or any) adapter merged into its base, as GGUF or HF.

- GGUF base, `--to gguf`: `training.gguf_merge` (copy untouched tensors, merge + requantize
  the adapted ones; q4_k_m via llama.cpp's quantizer), plus an Ollama Modelfile beside it.
- `--to hf`: peft `merge_and_unload` on the base's HF copy, saved as safetensors + tokenizer.
- HF-folder base, `--to gguf`: the merged HF folder through llama.cpp's
  `convert_hf_to_gguf.py` from the checkout named by `LLAMA_CPP_DIR`.

Every output is written under a temporary name and renamed at the end: an error leaves
no partial file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ohlora.errors import UserError
from training.gguf_base import base_info
from training.gguf_lora import atomic_target, check_free_space, gguf_lora_tensors, read_peft_adapter
from training.gguf_merge import QUANTS, merge_lora_into_gguf, quantize_gguf

if TYPE_CHECKING:
    from ohlora.models import BaseModel
    from ohlora.personas import Persona

LLAMA_CPP_ENV = "LLAMA_CPP_DIR"


@dataclass
class ExportResult:
    output: Path
    modelfile: Path | None = None
    notes: list[str] = field(default_factory=list)


def default_output(name: str, to: str, quant: str) -> Path:
    return Path.cwd() / (f"{name}-{quant}.gguf" if to == "gguf" else f"{name}-merged-hf")


def modelfile_path(gguf_out: Path) -> Path:
    return gguf_out.with_name(gguf_out.stem + ".Modelfile")


def check_adapter_matches(adapter_dir: Path, base: "BaseModel") -> None:
    """UserError when the adapter's layers do not fit the base (an adapter for another model)."""
    from ohlora.models import ensure_hf_copy

    source = base.path if base.kind == "gguf" else ensure_hf_copy(base)
    info = base_info(Path(source), base.arch)
    list(gguf_lora_tensors(read_peft_adapter(adapter_dir), info))


def export(
    adapter_dir: Path,
    base: "BaseModel",
    to: str = "gguf",
    quant: str = "q4_k_m",
    out: Path | None = None,
    force: bool = False,
    persona: "Persona | None" = None,
) -> ExportResult:
    adapter_dir = Path(adapter_dir)
    if to not in ("gguf", "hf"):
        raise UserError(f"unknown export format '{to}' (choose gguf or hf)")
    if quant not in QUANTS:
        raise UserError(f"unknown quantization '{quant}' (choose from {', '.join(QUANTS)})")
    name = persona.id if persona is not None else adapter_dir.name
    out = Path(out) if out is not None else default_output(name, to, quant)
    if out.exists() and not force:
        raise UserError(f"{out} already exists (use --force to overwrite)")
    mf = modelfile_path(out) if to == "gguf" else None
    if mf is not None and mf.exists() and not force:
        raise UserError(f"{mf} already exists (use --force to overwrite)")
    read_peft_adapter(adapter_dir)  # fails early on a broken adapter folder
    if to == "gguf" and base.kind == "hf":
        converter = llama_cpp_converter()  # fails early without LLAMA_CPP_DIR
    check_adapter_matches(adapter_dir, base)

    if to == "hf":
        return ExportResult(export_hf(adapter_dir, base, out, force))
    if base.kind == "gguf":
        meta = {"ohlora.persona": persona.id} if persona is not None else {}
        merge_lora_into_gguf(base.path, adapter_dir, out, quant, force=force, metadata=meta)
    else:
        _gguf_via_converter(adapter_dir, base, out, quant, converter)
    result = ExportResult(out)
    result.modelfile = write_modelfile(out, base, persona, force=True)
    return result


def write_modelfile(gguf_out: Path, base: "BaseModel", persona: "Persona | None", force: bool = False) -> Path:
    from training.modelfile import render, spec_for

    path = modelfile_path(gguf_out)
    if path.exists() and not force:
        raise UserError(f"{path} already exists (use --force to overwrite)")
    text = render(spec_for(gguf_out, base, persona, path.parent))
    tmp = atomic_target(path)
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


# --- HF ---------------------------------------------------------------------------------


def _replace_dir(tmp: Path, out: Path) -> None:
    if out.exists():
        if out.is_dir():
            shutil.rmtree(out)
        else:
            out.unlink()
    tmp.rename(out)


def _hf_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.glob("*.safetensors"))


def merged_hf_folder(adapter_dir: Path, hf_dir: Path, dest: Path) -> None:
    """peft merge_and_unload on the HF base, saved as safetensors + tokenizer in `dest`."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32)
    model = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    dest.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(dest, safe_serialization=True)
    AutoTokenizer.from_pretrained(hf_dir).save_pretrained(dest)
    for extra in ("chat_template.jinja", "generation_config.json"):
        if (hf_dir / extra).is_file() and not (dest / extra).is_file():
            shutil.copy2(hf_dir / extra, dest / extra)


def export_hf(adapter_dir: Path, base: "BaseModel", out: Path, force: bool) -> Path:
    from ohlora.models import ensure_hf_copy

    hf_dir = ensure_hf_copy(base)
    out.parent.mkdir(parents=True, exist_ok=True)
    check_free_space(out.parent, _hf_size(hf_dir), str(out))
    tmp = atomic_target(out)
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        merged_hf_folder(adapter_dir, hf_dir, tmp)
        _replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


# --- HF base -> GGUF through llama.cpp's converter ----------------------------------------


def llama_cpp_converter() -> Path:
    root = os.environ.get(LLAMA_CPP_ENV, "").strip()
    script = Path(root).expanduser() / "convert_hf_to_gguf.py" if root else None
    if script is None or not script.is_file():
        where = f" ({root} has no convert_hf_to_gguf.py)" if root else ""
        raise UserError(
            "GGUF export from an HF-folder base needs llama.cpp's converter: set "
            f"{LLAMA_CPP_ENV} to a llama.cpp checkout{where}, or use --to hf"
        )
    return script


def _gguf_via_converter(adapter_dir: Path, base: "BaseModel", out: Path, quant: str, converter: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    size = _hf_size(base.path)
    check_free_space(out.parent, size * (2 if quant == "q4_k_m" else 1) + size, str(out))
    tmp = atomic_target(out)
    work = Path(tempfile.mkdtemp(prefix=".ohlora-export-", dir=out.parent))
    try:
        merged = work / "merged"
        merged_hf_folder(adapter_dir, base.path, merged)
        outtype = "q8_0" if quant == "q8_0" else "f16"
        conv_out = work / "model.gguf"
        proc = subprocess.run(
            [sys.executable, str(converter), str(merged), "--outfile", str(conv_out), "--outtype", outtype],
            capture_output=True, text=True,
        )
        if proc.returncode != 0 or not conv_out.is_file():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            raise UserError(f"llama.cpp's converter failed on the merged model: {tail[0]}")
        if quant == "q4_k_m":
            quantize_gguf(conv_out, tmp, "q4_k_m")
        else:
            shutil.move(str(conv_out), tmp)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
