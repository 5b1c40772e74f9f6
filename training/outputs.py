"""The output folder: written as `<out>.partial/` (checkpoints, settings), renamed to `<out>` once
the adapter, `report.json` and `loss.png` are complete; then `adapter.gguf` beside it."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ohlora.errors import UserError

from training.fingerprint import check_adapter_base, write_fingerprint
from training.samples import SAMPLE_FILE

if TYPE_CHECKING:
    from training.plan import Devices, RunPlan

SETTINGS_FILE = "ohlora_train.json"
MAX_FILE_BYTES = 20 * 1024 * 1024


@dataclass
class TrainResult:
    output: Path
    report: dict
    gguf: Path | None = None
    notes: list[str] = field(default_factory=list)


def latest_checkpoint(partial: Path) -> Path | None:
    cks = sorted(
        (p for p in partial.glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()),
        key=lambda p: int(p.name.split("-")[-1]),
    )
    return cks[-1] if cks else None


def prepare_partial(plan: "RunPlan", resume: bool, fp: dict, dev: "Devices") -> Path | None:
    """Create `<out>.partial/` (or, with --resume, check it); return the checkpoint to resume from.

    Rank 0 checks and creates; the other ranks follow its checkpoint. (That the folder exists
    under --resume was checked by `training.plan.run_plan`.)"""
    partial = plan.partial
    if not dev.is_main:
        partial.mkdir(parents=True, exist_ok=True)
        return latest_checkpoint(partial) if resume else None
    if resume:
        check_adapter_base(partial, plan.base, fp)
        ck = latest_checkpoint(partial)
        if ck is None:
            raise UserError(f"nothing to resume: no checkpoint in {partial} (delete it and train again)")
        return ck
    if partial.exists():
        raise UserError(
            f"an interrupted run is in {partial}: continue it with --resume, or delete that folder to start over"
        )
    partial.mkdir(parents=True)
    write_fingerprint(partial, fp)
    return None


def write_settings(partial: Path, settings: dict) -> None:
    (partial / SETTINGS_FILE).write_text(json.dumps(settings, indent=2, default=str) + "\n", encoding="utf-8")


def save_adapter(trainer, model, partial: Path, dev: "Devices", base_name: str, fp: dict) -> bool:
    """Write the trained adapter into `partial`; False on the ranks that only helped gather it."""
    if dev.distributed or trainer.is_deepspeed_enabled:
        trainer.save_model(str(partial))  # gathers ZeRO-3 shards; every rank must call it
        if not dev.is_main:
            return False
        for pattern in ("tokenizer*", "special_tokens_map.json", "chat_template.jinja", "training_args.bin"):
            for extra in partial.glob(pattern):
                extra.unlink()
    else:
        model.save_pretrained(str(partial), safe_serialization=True)
    _fix_adapter_config(partial, base_name)
    write_fingerprint(partial, fp)
    return True


def _fix_adapter_config(folder: Path, base_name: str) -> None:
    """Portable adapter_config.json: name the base, not this machine's cache path."""
    path = folder / "adapter_config.json"
    cfg = json.loads(path.read_text(encoding="utf-8"))
    cfg["base_model_name_or_path"] = base_name
    path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def big_files(folder: Path) -> list[str]:
    """Adapter weight files too large to ship in the repo."""
    return [p.name for p in folder.glob("*.safetensors") if p.stat().st_size > MAX_FILE_BYTES]


def finish_folder(partial: Path, output: Path) -> None:
    """Drop checkpoints and scratch files, then swap `partial` in as `output`."""
    for p in partial.glob("checkpoint-*"):
        shutil.rmtree(p, ignore_errors=True)
    for name in (SAMPLE_FILE, "README.md", "training_args.bin"):
        (partial / name).unlink(missing_ok=True)
    old = output.with_name(output.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if output.exists():
        output.rename(old)
    partial.rename(output)
    shutil.rmtree(old, ignore_errors=True)


def write_gguf(adapter_dir: Path, out_path: Path, arch: str, base_path: Path) -> tuple[Path | None, str | None]:
    """`adapter.gguf` for llama.cpp; (None, why) when the adapter cannot be converted."""
    from training.gguf_lora import write_lora_gguf

    try:
        write_lora_gguf(adapter_dir, out_path, arch, base=base_path)
    except UserError as exc:
        return None, f"adapter.gguf not written: {exc}"
    return out_path, None
