"""Merge a LoRA adapter into a GGUF base: one GGUF file for llama.cpp or Ollama.

Metadata is copied; each adapted tensor is dequantized (`gguf.quants.dequantize`), gets
`scale * B @ A` added in the GGUF layout (for llama the q/k delta is row-permuted like the
weights) and is re-encoded:
- q8_0: the merged tensors as q8_0, every untouched tensor copied byte for byte;
- f16: every weight as f16 (untouched quantized ones dequantized too), so the file is a
  clean input for llama-quantize or other tools, as an f16 export is expected to be;
- q4_k_m: merged tensors as f16 beside the copied ones, then llama.cpp's own quantizer
  (`llama_model_quantize`), which keeps tensors already at their target type.
"""

from __future__ import annotations

import os
from pathlib import Path

from ohlora.errors import UserError
from training.gguf_base import base_info, check_arch, open_gguf
from training.gguf_lora import atomic_target, check_free_space, gguf_lora_tensors, read_peft_adapter

QUANTS = ("f16", "q8_0", "q4_k_m")
_SKIP_KEYS = ("GGUF.", "general.architecture")


def _copy_metadata(reader, writer, extra: dict[str, str]) -> None:
    import gguf

    for key, fld in reader.fields.items():
        if key.startswith(_SKIP_KEYS) or key in extra:
            continue
        vtype = fld.types[0]
        if vtype == gguf.GGUFValueType.ARRAY:
            sub = fld.types[1] if len(fld.types) > 1 else None
            writer.add_key_value(key, fld.contents(), vtype, sub_type=sub)
        else:
            writer.add_key_value(key, fld.contents(), vtype)
    for key, value in extra.items():
        writer.add_string(key, value)


def estimate_bytes(base_gguf: Path, n_adapted_params: int, quant: str) -> int:
    """An upper estimate of the output size (plus the f16 intermediate for q4_k_m)."""
    per = {"f16": 2.0, "q8_0": 34 / 32, "q4_k_m": 2.0}[quant]
    size = base_gguf.stat().st_size + int(n_adapted_params * per)
    return size * 2 if quant == "q4_k_m" else size


def merge_lora_into_gguf(
    base_gguf: Path,
    adapter_dir: Path,
    out: Path,
    quant: str = "f16",
    *,
    force: bool = False,
    metadata: dict[str, str] | None = None,
) -> Path:
    """Write base + adapter as one GGUF at `out`; UserError on bad input, no partial file."""
    if quant not in QUANTS:
        raise UserError(f"unknown quantization '{quant}' (choose from {', '.join(QUANTS)})")
    base_gguf, out = Path(base_gguf), Path(out)
    if out.exists() and not force:
        raise UserError(f"{out} already exists (use --force to overwrite)")
    info = base_info(base_gguf)
    check_arch(info.arch)
    adapter = read_peft_adapter(Path(adapter_dir))
    deltas = {t.name: t for t in gguf_lora_tensors(adapter, info)}
    n_params = sum(info.shapes[n][0] * info.shapes[n][1] for n in deltas)
    out.parent.mkdir(parents=True, exist_ok=True)
    check_free_space(out.parent, estimate_bytes(base_gguf, n_params, quant), str(out))

    extra = {"ohlora.merged_adapter": adapter.folder.name, "ohlora.merged_quant": quant, **(metadata or {})}
    tmp = atomic_target(out)
    f16_tmp = tmp.with_name(tmp.name + ".f16") if quant == "q4_k_m" else tmp
    try:
        # f16: every weight as f16 (a clean input for other quantizers); q8_0 and the q4_k_m
        # intermediate: only the merged tensors are re-encoded, the rest is copied
        _write_merged(base_gguf, info.arch, deltas, f16_tmp, "f16" if quant == "q4_k_m" else quant, extra,
                      convert=quant == "f16")
        if quant == "q4_k_m":
            quantize_gguf(f16_tmp, tmp, "q4_k_m")
            f16_tmp.unlink(missing_ok=True)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        f16_tmp.unlink(missing_ok=True)
        raise
    return out


def dequantize_gguf(src: Path, dest: Path, names: set[str] | None = None) -> Path:
    """Every quantized tensor of `src` as f32: the exact weights an HF copy dequantized from it has.

    llama.cpp on such a file computes with the same weights as transformers on the HF copy,
    so comparisons against it measure the adapter, not the quantization. `names` limits
    the conversion to those tensors (e.g. the ones an adapter touches).
    """
    src, dest = Path(src), Path(dest)
    info = base_info(src)
    tmp = atomic_target(dest)
    try:
        _write_merged(src, info.arch, {}, tmp, "f32", {"ohlora.dequantized_from": src.name}, convert=names or True)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return dest


def _write_merged(
    base_gguf: Path, arch: str, deltas: dict, dest: Path, quant: str, extra: dict, convert: "bool | set[str]" = False
) -> None:
    import gguf
    import numpy as np
    from gguf.quants import dequantize, quantize

    reader = open_gguf(base_gguf)
    writer = gguf.GGUFWriter(str(dest), arch)
    alignment = reader.fields.get("general.alignment")
    if alignment is not None:
        writer.data_alignment = int(alignment.parts[alignment.data[0]][0])
    _copy_metadata(reader, writer, extra)
    Q = gguf.GGMLQuantizationType
    for t in reader.tensors:
        lora = deltas.get(t.name)
        wanted = convert is True or (isinstance(convert, set) and t.name in convert)
        if lora is None and not (wanted and t.tensor_type not in (Q.F32, Q.F16)):
            writer.add_tensor(t.name, t.data, raw_dtype=t.tensor_type)
            continue
        shape = tuple(int(n) for n in reversed(t.shape))  # numpy order of the ggml shape
        w = dequantize(t.data, t.tensor_type).astype(np.float32).reshape(shape)
        if lora is not None:
            w += lora.delta()
        if quant == "f32":
            writer.add_tensor(t.name, w)
        elif quant == "q8_0" and w.shape[-1] % gguf.GGML_QUANT_SIZES[Q.Q8_0][0] == 0:
            writer.add_tensor(t.name, quantize(w, Q.Q8_0), raw_dtype=Q.Q8_0)
        else:
            writer.add_tensor(t.name, w.astype(np.float16))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def quantize_gguf(src: Path, dest: Path, quant: str = "q4_k_m", n_threads: int = 0) -> None:
    """llama.cpp's quantizer through llama-cpp-python's low-level API."""
    import llama_cpp

    ftypes = {"q4_k_m": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M, "q8_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0,
              "f16": llama_cpp.LLAMA_FTYPE_MOSTLY_F16}
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftypes[quant]
    params.nthread = n_threads or (os.cpu_count() or 2)
    params.allow_requantize = True  # untouched tensors may already be k-quants of another type
    rc = llama_cpp.llama_model_quantize(str(src).encode(), str(dest).encode(), ctypes_ref(params))
    if rc != 0:
        raise UserError(f"llama.cpp could not quantize {src} to {quant} (code {rc})")


def ctypes_ref(obj):
    import ctypes

    return ctypes.byref(obj)
