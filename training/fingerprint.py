"""Which base model an adapter was trained on, so an adapter on another base is refused.

The fingerprint hashes the base weights file's size with its first and last 8 MiB (fast
on a multi-GB file, and different for any other model or quantization) and records the
shape facts (architecture, vocabulary, width, depth). It is written as `ohlora_base.json`
in every adapter folder `ohlora train` produces.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

from ohlora.errors import UserError

if TYPE_CHECKING:
    from ohlora.models import BaseModel

FILE = "ohlora_base.json"
_SPAN = 8 << 20


def _file_digest(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in paths:
        size = p.stat().st_size
        h.update(f"{p.name}:{size}".encode())
        with p.open("rb") as fh:
            h.update(fh.read(_SPAN))
            if size > 2 * _SPAN:
                fh.seek(size - _SPAN)
                h.update(fh.read(_SPAN))
    return h.hexdigest()[:16]


def weight_files(base: "BaseModel") -> list[Path]:
    if base.kind == "gguf":
        return [Path(base.path)]
    files = sorted(Path(base.path).glob("*.safetensors"))
    if not files:
        raise UserError(f"{base.path}: no *.safetensors weights in the model folder")
    return files


def base_fingerprint(base: "BaseModel", config: dict | None = None) -> dict:
    info = {"name": base.name, "kind": base.kind, "arch": base.arch, "sha": _file_digest(weight_files(base))}
    if config:
        for key in ("vocab_size", "hidden_size", "num_hidden_layers"):
            if key in config:
                info[key] = config[key]
    return info


def write_fingerprint(folder: Path, info: dict) -> None:
    (folder / FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")


def read_fingerprint(folder: Path) -> dict | None:
    path = Path(folder) / FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        raise UserError(f"{path}: unreadable base fingerprint (invalid JSON)") from None


def same_base(recorded: dict, info: dict) -> bool:
    """Do a recorded fingerprint and a base's fingerprint name the same weights?"""
    return recorded.get("sha") == info["sha"] and recorded.get("arch") == info["arch"]


def check_adapter_base(adapter_dir: Path, base: "BaseModel", info: dict | None = None) -> None:
    """UserError if the adapter in `adapter_dir` was trained on another base than `base`."""
    recorded = read_fingerprint(adapter_dir)
    if recorded is None:
        return  # not ours (e.g. a downloaded PEFT folder): nothing recorded to compare
    info = info or base_fingerprint(base)
    if not same_base(recorded, info):
        raise UserError(
            f"{adapter_dir}: adapter was trained on base '{recorded.get('name')}' ({recorded.get('arch')}, "
            f"fingerprint {recorded.get('sha')}), not on '{info['name']}' ({info['arch']}, {info['sha']}); "
            "use --base to pick its base or train a new adapter"
        )


def adapter_fits(adapter_dir: Path | None, own_base: "BaseModel", base: "BaseModel") -> bool:
    """Was the adapter in `adapter_dir` trained on `base`? By its recorded fingerprint, or, with
    none recorded, by whether `base` is the persona's own base `own_base`. (A persona asked to
    run on another base answers with its prompt alone.)"""
    recorded = read_fingerprint(adapter_dir) if adapter_dir is not None else None
    if recorded is None:
        return Path(own_base.path) == Path(base.path)
    return same_base(recorded, base_fingerprint(base))
