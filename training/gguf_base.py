"""A base model in GGUF terms: supported architectures, HF -> GGUF tensor names, and the heads
and linear-layer shapes of a GGUF file or an HF folder (what a LoRA GGUF is checked against)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ohlora.errors import UserError

SUPPORTED_ARCHS = ("gemma3", "llama", "qwen2")


@dataclass
class BaseInfo:
    """What the adapter needs to know about its base: architecture, heads, tensor shapes."""

    arch: str
    n_head: int | None
    n_head_kv: int | None
    n_blocks: int | None
    shapes: dict[str, tuple[int, int]]  # GGUF tensor name -> (n_out, n_in)
    source: str


def check_arch(arch: str) -> None:
    if arch not in SUPPORTED_ARCHS:
        raise UserError(
            f"architecture '{arch}' is not supported for GGUF adapters (supported: {', '.join(SUPPORTED_ARCHS)})"
        )


def gguf_name_map(arch: str, n_blocks: int):
    import gguf

    check_arch(arch)
    by_name = {v: k for k, v in gguf.MODEL_ARCH_NAMES.items()}
    return gguf.get_tensor_name_map(by_name[arch], n_blocks)


def gguf_tensor_name(name_map, hf_module: str) -> str | None:
    """`model.layers.3.self_attn.q_proj` -> `blk.3.attn_q.weight` (None if unknown)."""
    candidates = [hf_module]
    for prefix in ("model.language_model.", "language_model.model.", "language_model."):
        if hf_module.startswith(prefix):
            candidates.append("model." + hf_module[len(prefix):])
    for cand in candidates:
        name = name_map.get_name(cand + ".weight", try_suffixes=(".weight", ".bias"))
        if name:
            return name
    return None


def base_info(base: Path | str, arch: str | None = None) -> BaseInfo:
    """Read heads and linear-layer shapes from a GGUF base file or an HF folder."""
    base = Path(base)
    if base.is_dir():
        return _hf_base_info(base, arch)
    return _gguf_base_info(base)


def _gguf_base_info(path: Path) -> BaseInfo:
    from ohlora.models import check_gguf_file

    check_gguf_file(path)
    reader = open_gguf(path)
    arch = _field_str(reader, "general.architecture")
    shapes = {}
    for t in reader.tensors:
        if len(t.shape) == 2:  # ggml ne = [n_in, n_out]
            shapes[t.name] = (int(t.shape[1]), int(t.shape[0]))
    return BaseInfo(
        arch=arch,
        n_head=_field_int(reader, f"{arch}.attention.head_count"),
        n_head_kv=_field_int(reader, f"{arch}.attention.head_count_kv"),
        n_blocks=_field_int(reader, f"{arch}.block_count"),
        shapes=shapes,
        source=str(path),
    )


def _hf_base_info(folder: Path, arch: str | None) -> BaseInfo:
    from safetensors import safe_open

    cfg_file = folder / "config.json"
    if not cfg_file.is_file():
        raise UserError(f"{folder}: not a Hugging Face model folder (no config.json)")
    cfg = json.loads(cfg_file.read_text(encoding="utf-8"))
    cfg = cfg.get("text_config", cfg)
    if arch is None:
        from ohlora.models import resolve_base

        arch = resolve_base(folder).arch
    n_blocks = cfg.get("num_hidden_layers")
    shapes: dict[str, tuple[int, int]] = {}
    if arch in SUPPORTED_ARCHS and n_blocks:
        name_map = gguf_name_map(arch, int(n_blocks))
        for st_file in sorted(folder.glob("*.safetensors")):
            with safe_open(str(st_file), framework="numpy") as st:
                for key in st.keys():
                    if not key.endswith(".weight"):
                        continue
                    shape = st.get_slice(key).get_shape()
                    if len(shape) == 2:
                        gname = gguf_tensor_name(name_map, key[: -len(".weight")])
                        if gname:
                            shapes[gname] = (int(shape[0]), int(shape[1]))
    return BaseInfo(
        arch=arch,
        n_head=cfg.get("num_attention_heads"),
        n_head_kv=cfg.get("num_key_value_heads", cfg.get("num_attention_heads")),
        n_blocks=n_blocks,
        shapes=shapes,
        source=str(folder),
    )


def open_gguf(path: Path):
    """GGUFReader over `path`, with truncation checked; UserError on a corrupt file."""
    from gguf import GGUFReader

    try:
        reader = GGUFReader(str(path))
    except Exception as exc:  # noqa: BLE001 - any parse failure means a corrupt file
        raise UserError(f"{path}: corrupt or truncated GGUF file ({type(exc).__name__}: {exc})") from None
    size = path.stat().st_size
    for t in reader.tensors:
        if t.data_offset + t.n_bytes > size:
            raise UserError(f"{path}: truncated GGUF file (tensor '{t.name}' runs past the end)")
    return reader


def _field_str(reader, key: str) -> str:
    field_ = reader.fields.get(key)
    if field_ is None:
        raise UserError(f"GGUF file has no '{key}' (not a model file?)")
    return bytes(field_.parts[field_.data[0]]).decode("utf-8")


def _field_int(reader, key: str) -> int | None:
    field_ = reader.fields.get(key)
    if field_ is None:
        return None
    value = field_.parts[field_.data[0]]
    return int(value[0]) if len(value) == 1 else None
