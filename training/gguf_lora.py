"""PEFT LoRA adapter -> llama.cpp LoRA GGUF, written with the `gguf` package.

llama.cpp's adapter format (src/llama-adapter.cpp): metadata `general.type = "adapter"`,
`adapter.type = "lora"`, `adapter.lora.alpha` (f32) and the base's `general.architecture`;
for every adapted base tensor `<name>` (a GGUF name such as `blk.3.attn_q.weight`) a pair
`<name>.lora_a` with ggml shape [n_in, r] and `<name>.lora_b` with ggml shape [r, n_out].
In numpy (row-major, reversed ggml order) these are exactly PEFT's `lora_A.weight` (r, n_in)
and `lora_B.weight` (n_out, r). At run time llama.cpp adds `scale * alpha / r * B @ A x`.

Per-architecture layout: the HF->GGUF converter permutes the rows of llama's q/k
projections for its rotary layout, so the rows of lora_b (the output side) of q/k get the
same permutation. Gemma 3 changes only norm weights (+1) on conversion, which LoRA never
targets, and Qwen2 (NEOX rotary) is converted without any permutation, so their adapter
tensors go through unchanged.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from ohlora.errors import UserError

from training.gguf_base import BaseInfo, base_info, check_arch, gguf_name_map, gguf_tensor_name

if TYPE_CHECKING:
    import numpy as np

_PEFT_KEY = re.compile(r"^(?:base_model\.model\.)?(?P<module>.+)\.lora_(?P<ab>[AB])(?:\.[^.]+)?\.weight$")
_LAYER_RE = re.compile(r"\.layers\.(\d+)\.")


@dataclass
class LoraPair:
    """One adapted linear layer, in HF layout: delta W = scale * b @ a."""

    module: str  # HF module path, e.g. "model.layers.0.self_attn.q_proj"
    a: "np.ndarray"  # (r, n_in) float32
    b: "np.ndarray"  # (n_out, r) float32
    scale: float  # PEFT's lora_alpha / r (or / sqrt(r) with rsLoRA)

    @property
    def rank(self) -> int:
        return int(self.a.shape[0])


@dataclass
class PeftLora:
    folder: Path
    config: dict
    alpha: float
    rank: int
    pairs: list[LoraPair] = field(default_factory=list)

    @property
    def base_name(self) -> str:
        return str(self.config.get("base_model_name_or_path") or "")


def _pattern_value(patterns: dict, module: str, default):
    """PEFT's rank_pattern / alpha_pattern lookup: a key matches the module path's tail."""
    for key, value in (patterns or {}).items():
        if re.match(rf"(.*\.)?({key})$", module):
            return value
    return default


def read_peft_adapter(folder: Path) -> PeftLora:
    """Load a PEFT LoRA folder (adapter_config.json + adapter_model.safetensors) as numpy."""
    import numpy as np
    from safetensors import safe_open

    folder = Path(folder)
    cfg_file = folder / "adapter_config.json"
    weights = folder / "adapter_model.safetensors"
    if not cfg_file.is_file():
        raise UserError(f"{folder}: not a PEFT adapter folder (no adapter_config.json)")
    if not weights.is_file():
        raise UserError(f"{folder}: adapter weights missing (no adapter_model.safetensors)")
    try:
        config = json.loads(cfg_file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UserError(f"{cfg_file}: invalid JSON ({exc})") from None
    if config.get("peft_type", "LORA") != "LORA":
        raise UserError(f"{cfg_file}: peft_type is {config.get('peft_type')!r}, only LORA adapters can be exported")
    if config.get("use_dora"):
        raise UserError(f"{cfg_file}: DoRA adapters cannot be written as llama.cpp LoRA GGUF")
    if config.get("modules_to_save"):
        raise UserError(f"{cfg_file}: modules_to_save ({config['modules_to_save']}) cannot be written as LoRA GGUF")
    if config.get("bias", "none") != "none":
        raise UserError(f"{cfg_file}: trained biases (bias={config['bias']!r}) cannot be written as LoRA GGUF")
    rank = int(config.get("r", 8))
    alpha = float(config.get("lora_alpha", rank))
    rslora = bool(config.get("use_rslora"))
    fan_in_fan_out = bool(config.get("fan_in_fan_out"))

    parts: dict[str, dict[str, np.ndarray]] = {}
    try:
        with safe_open(str(weights), framework="numpy") as st:
            keys = list(st.keys())
            for key in keys:
                m = _PEFT_KEY.match(key)
                if not m:
                    raise UserError(f"{weights}: unexpected tensor '{key}' (only lora_A/lora_B of linear layers)")
                parts.setdefault(m["module"], {})[m["ab"]] = st.get_tensor(key).astype(np.float32)
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - safetensors raises several types on a bad file
        raise UserError(f"{weights}: unreadable safetensors file ({exc})") from None

    pairs = []
    for module in sorted(parts, key=_module_order):
        ab = parts[module]
        if "A" not in ab or "B" not in ab:
            raise UserError(f"{weights}: '{module}' has only lora_{'A' if 'A' in ab else 'B'}")
        a, b = ab["A"], ab["B"]
        if fan_in_fan_out:  # Conv1D-style weights store (in, out)
            a, b = b.T.copy(), a.T.copy()
        if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[1]:
            raise UserError(f"{weights}: '{module}' has mismatched lora_A {a.shape} / lora_B {b.shape}")
        r = a.shape[0]
        m_alpha = float(_pattern_value(config.get("alpha_pattern"), module, alpha))
        scale = m_alpha / (math.sqrt(r) if rslora else r)
        pairs.append(LoraPair(module=module, a=a, b=b, scale=scale))
    if not pairs:
        raise UserError(f"{weights}: no LoRA tensors found")
    return PeftLora(folder=folder, config=config, alpha=alpha, rank=rank, pairs=pairs)


def _module_order(module: str) -> tuple[int, str]:
    m = _LAYER_RE.search(module + ".")
    return (int(m.group(1)) if m else -1, module)


def llama_permute(rows: "np.ndarray", n_head: int, n_head_kv: int | None = None) -> "np.ndarray":
    """The row permutation that llama.cpp's HF->GGUF converter applies to q/k for rotary.

    Within each head the rows [x0, x1, ..., x_{d/2}, ...] (HF's half-split rotary layout) are
    interleaved into pairs (GGUF's adjacent-pair layout). `rows` has the output dim first.
    """
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    shape = rows.shape
    return rows.reshape(n_head, 2, shape[0] // n_head // 2, *shape[1:]).swapaxes(1, 2).reshape(shape)


# --- adapter in GGUF layout -----------------------------------------------------------


@dataclass
class GgufLoraTensor:
    name: str  # GGUF base tensor name, e.g. blk.0.attn_q.weight
    a: "np.ndarray"  # (r, n_in)
    b: "np.ndarray"  # (n_out, r), already permuted for the GGUF layout
    scale: float

    def delta(self) -> "np.ndarray":
        return (self.scale * (self.b @ self.a)).astype("float32")


def gguf_lora_tensors(adapter: PeftLora, info: BaseInfo) -> Iterator[GgufLoraTensor]:
    """The adapter's pairs under GGUF names, in GGUF layout, checked against the base."""
    check_arch(info.arch)
    n_blocks = info.n_blocks or (max(_module_order(p.module)[0] for p in adapter.pairs) + 1)
    name_map = gguf_name_map(info.arch, n_blocks)
    for pair in adapter.pairs:
        name = gguf_tensor_name(name_map, pair.module)
        if name is None:
            raise UserError(
                f"{adapter.folder}: adapted layer '{pair.module}' has no {info.arch} GGUF tensor "
                "(is this adapter for another base model?)"
            )
        want = (pair.b.shape[0], pair.a.shape[1])
        have = info.shapes.get(name)
        if info.shapes and have is None:
            raise UserError(f"{adapter.folder}: '{name}' does not exist in base {info.source} (adapter for another base?)")
        if have is not None and have != want:
            raise UserError(
                f"{adapter.folder}: '{pair.module}' is {want[0]}x{want[1]} but the base's '{name}' is "
                f"{have[0]}x{have[1]} (adapter trained for another base model than {info.source})"
            )
        b = pair.b
        if info.arch == "llama" and name.endswith(("attn_q.weight", "attn_k.weight")):
            if not info.n_head:
                raise UserError(f"{info.source}: attention head count unknown; needed for llama's q/k layout")
            n_kv = info.n_head_kv if name.endswith("attn_k.weight") else info.n_head
            b = llama_permute(b, info.n_head, n_kv)
        yield GgufLoraTensor(name=name, a=pair.a, b=b, scale=pair.scale)


def _resolve_base_for(adapter: PeftLora, base: Path | str | None, arch: str) -> BaseInfo:
    if base is not None:
        info = base_info(Path(base), arch)
    else:
        guess = Path(adapter.base_name) if adapter.base_name else None
        if guess is not None and (guess / "config.json").is_file():
            info = base_info(guess, arch)
        elif arch == "llama":
            raise UserError(
                f"{adapter.folder}: base model not found ({adapter.base_name or 'unset'}); "
                "pass the base (GGUF or HF folder): llama's q/k layout needs its head counts"
            )
        else:
            info = BaseInfo(arch=arch, n_head=None, n_head_kv=None, n_blocks=None, shapes={}, source="?")
    if info.arch != arch:
        raise UserError(f"base {info.source} is '{info.arch}', not '{arch}'")
    return info


# --- writing ---------------------------------------------------------------------------


def atomic_target(out: Path) -> Path:
    return out.with_name(f".{out.name}.{os.getpid()}.partial")


def check_free_space(folder: Path, need_bytes: int, what: str) -> None:
    import shutil

    free = shutil.disk_usage(folder).free
    if free < need_bytes * 1.05 + (16 << 20):
        raise UserError(
            f"not enough disk space in {folder} for {what}: need about {need_bytes / 2**20:.0f} MiB, "
            f"{free / 2**20:.0f} MiB free"
        )


def write_lora_gguf(
    adapter_dir: Path,
    out: Path,
    base_arch: str,
    *,
    base: Path | str | None = None,
    dtype: str = "f32",
    overwrite: bool = True,
) -> Path:
    """Write the PEFT adapter in `adapter_dir` as a llama.cpp LoRA GGUF at `out`.

    `base` (a GGUF file or HF folder) gives the head counts for llama's q/k layout and the
    shapes the adapter is checked against; without it, the adapter's recorded
    `base_model_name_or_path` is tried. Written to a temporary file and renamed, so an
    error leaves no partial file.
    """
    import gguf
    import numpy as np

    check_arch(base_arch)
    out = Path(out)
    if out.exists() and not overwrite:
        raise UserError(f"{out} already exists (use --force to overwrite)")
    if dtype not in ("f32", "f16"):
        raise UserError(f"adapter dtype must be f32 or f16, got {dtype!r}")
    adapter = read_peft_adapter(Path(adapter_dir))
    info = _resolve_base_for(adapter, base, base_arch)
    tensors = list(gguf_lora_tensors(adapter, info))

    # llama.cpp applies alpha / r_module; fold any per-module difference into lora_b
    alpha = adapter.alpha
    np_dtype = np.float32 if dtype == "f32" else np.float16
    out.parent.mkdir(parents=True, exist_ok=True)
    need = sum((t.a.size + t.b.size) * np.dtype(np_dtype).itemsize for t in tensors) + (1 << 20)
    check_free_space(out.parent, need, str(out))
    tmp = atomic_target(out)
    try:
        writer = gguf.GGUFWriter(str(tmp), base_arch)
        writer.add_type(gguf.GGUFType.ADAPTER)
        writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
        writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(alpha))
        writer.add_string(gguf.Keys.General.NAME, f"{adapter.folder.name} LoRA")
        writer.add_uint32("adapter.lora.rank", int(adapter.rank))
        if adapter.base_name:
            writer.add_string("ohlora.base_model", adapter.base_name)
        writer.add_file_type(gguf.LlamaFileType.ALL_F32 if dtype == "f32" else gguf.LlamaFileType.MOSTLY_F16)
        for t in tensors:
            fold = t.scale * t.a.shape[0] / alpha if alpha else t.scale
            b = t.b if math.isclose(fold, 1.0, rel_tol=1e-6) else t.b * fold
            writer.add_tensor(t.name + ".lora_a", np.ascontiguousarray(t.a, dtype=np_dtype))
            writer.add_tensor(t.name + ".lora_b", np.ascontiguousarray(b, dtype=np_dtype))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return out
