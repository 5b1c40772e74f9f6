"""Before anything heavy: which devices, which files, which base, and where the adapter goes.

Every check that needs no model runs here, so a bad flag fails in a second.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ohlora.errors import UserError

from training.config import TrainConfig
from training.fingerprint import check_adapter_base

if TYPE_CHECKING:
    from ohlora.models import BaseModel
    from ohlora.personas import Persona


def native_cpu_bf16() -> bool:
    """Does this CPU compute bfloat16 products natively (AVX-512 BF16 or AMX)? Elsewhere
    bfloat16 is emulated and slower than float32."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            flags = next((line for line in fh if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


BNB_CPU_MIN = (0, 46, 1)  # the first bitsandbytes with 4-bit NF4 kernels on the CPU


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split("+")[0].split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def check_bitsandbytes(cuda: bool) -> str:
    """--qlora runs wherever bitsandbytes does 4-bit: CUDA, or the CPU from 0.46.1 on. Returns its version."""
    try:
        import bitsandbytes
    except ImportError:
        raise UserError("--qlora needs bitsandbytes >= 0.46.1: pip install 'bitsandbytes>=0.46.1' "
                        "(or drop --qlora: LoRA on a float32 base)") from None
    version = getattr(bitsandbytes, "__version__", "0")
    if not cuda and _version_tuple(version) < BNB_CPU_MIN:
        raise UserError(
            f"--qlora on the CPU needs bitsandbytes >= 0.46.1 (this is {version}, whose 4-bit layers need CUDA): "
            "pip install -U 'bitsandbytes>=0.46.1', or drop --qlora to train on the CPU (LoRA, float32 weights)"
        )
    return version


@dataclass(frozen=True)
class Devices:
    cuda: bool
    bf16: bool
    gradient_checkpointing: bool
    world_size: int  # processes in this run (WORLD_SIZE, read once)
    rank: int  # this process (RANK)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def settings(self) -> dict:
        """The device part of report.json's settings."""
        return {
            "device_cuda": self.cuda, "device_bf16": self.bf16,
            "device_gradient_checkpointing": self.gradient_checkpointing, "world_size": self.world_size,
        }


def device_plan(cfg: TrainConfig) -> Devices:
    """CUDA or CPU, bf16, gradient checkpointing, and this process's place in a distributed run."""
    import torch

    cuda = torch.cuda.is_available()
    if cfg.qlora:
        check_bitsandbytes(cuda)
    if cfg.qlora and cfg.zero3:
        raise UserError("--qlora and DeepSpeed ZeRO-3 do not mix (4-bit weights cannot be sharded); "
                        "use --qlora with --nproc N (DDP), or ZeRO-3 without --qlora")
    if cfg.zero3:
        try:
            import deepspeed  # noqa: F401
        except ImportError:
            raise UserError("ZeRO-3 (--launcher deepspeed / --zero3) needs deepspeed: pip install deepspeed") from None
    if cfg.bf16 not in ("auto", "on", "off"):
        raise UserError(f"--bf16 must be auto, on or off (got {cfg.bf16!r})")
    if cuda:
        bf16 = cfg.bf16 == "on" or (cfg.bf16 == "auto" and torch.cuda.is_bf16_supported())
    else:
        # CPU: bf16 where it is native (AVX-512 BF16, AMX): twice the matmul rate, half the
        # base's memory (bench/train_throughput.py: 4x TRL's tokens/s at 0.8x its peak RSS).
        # Elsewhere bf16 is emulated and slower than float32. bf16 rounds differently with the
        # summation order: 2 DDP ranks end ~1e-2 from the same run in 1 process (float32 ~2e-5),
        # so tests/training/test_scale.py checks DDP's arithmetic with --bf16 off
        bf16 = cfg.bf16 == "on" or (cfg.bf16 == "auto" and native_cpu_bf16())
    gc = cfg.gradient_checkpointing
    if gc not in ("auto", "on", "off"):
        raise UserError(f"--gradient-checkpointing must be auto, on or off (got {gc!r})")
    # auto: on for CUDA (GPU memory is the limit); off on the CPU, where RAM is plentiful and
    # recomputing the forward costs ~40% of the step (Gemma 3 270M: 111 -> 154 tok/s on 2 cores)
    return Devices(
        cuda=cuda, bf16=bf16, gradient_checkpointing=gc == "on" or (gc == "auto" and cuda),
        world_size=int(os.environ.get("WORLD_SIZE", "1")), rank=int(os.environ.get("RANK", "0")),
    )


@dataclass
class RunPlan:
    persona: "Persona | None"
    train_path: str
    eval_path: str | None
    base: "BaseModel"
    output: Path
    gguf_path: Path

    @property
    def partial(self) -> Path:
        """Where the run writes until it is complete (checkpoints included)."""
        return self.output.with_name(self.output.name + ".partial")


def run_plan(cfg: TrainConfig) -> RunPlan:
    """Persona, data files, base and output folder; fails on a missing file or a missing --output."""
    from ohlora.models import resolve_base
    from ohlora.personas import load_persona

    from training.data import detect_format

    persona = load_persona(cfg.persona) if cfg.persona else None
    if persona is None and not cfg.data:
        raise UserError("give --persona ID (train its adapter) or --data FILE with --output DIR")
    if cfg.data:
        train_path = cfg.data
    else:
        if not persona.train_file.is_file():
            raise UserError(f"persona '{persona.id}' has no training data at {persona.train_file}; give --data FILE")
        train_path = str(persona.train_file)
    eval_path = cfg.eval_data
    if eval_path is None and persona is not None and persona.eval_file.is_file() and not cfg.data:
        eval_path = str(persona.eval_file)
    base = resolve_base(cfg.base if cfg.base is not None else (persona.base if persona else ""))
    if cfg.output:
        output = Path(cfg.output).expanduser().resolve()
    elif persona is not None and not cfg.data and cfg.base is None:
        output = (persona.folder / persona.adapter).resolve()
    else:
        raise UserError("--output DIR is required with --data or --base (the persona's own adapter is kept)")
    gguf_path = (
        (persona.folder / persona.adapter_gguf).resolve()
        if persona is not None and not cfg.output and output == (persona.folder / persona.adapter).resolve()
        else output.with_name(output.name + ".gguf")
    )
    plan = RunPlan(persona, train_path, eval_path, base, output, gguf_path)
    for path in (train_path, eval_path):
        if path is not None and cfg.fmt == "auto":
            detect_format(path)
        if path is not None and not Path(path.partition("#")[0]).is_file():
            raise UserError(f"data file not found: {path.partition('#')[0]}")
    if cfg.resume and not plan.partial.is_dir():
        raise UserError(f"nothing to resume: {plan.partial} does not exist (train without --resume)")
    return plan


def check_from_adapter(cfg: TrainConfig, base: "BaseModel", fp: dict) -> Path | None:
    """The --from-adapter folder, refused if it is not an adapter or was trained on another base
    (before anything is written)."""
    if not cfg.from_adapter:
        return None
    src = Path(cfg.from_adapter).expanduser()
    if not (src / "adapter_config.json").is_file():
        raise UserError(f"{src}: not a PEFT adapter folder (no adapter_config.json)")
    check_adapter_base(src, base, fp)
    return src


def schedule(cfg: TrainConfig, n_train: int, world_size: int) -> tuple[int, int, int]:
    """(total optimizer steps, evaluate every, checkpoint every)."""
    steps_per_epoch = max(1, -(-n_train // (cfg.batch_size * cfg.grad_accum * world_size)))
    total = cfg.max_steps if cfg.max_steps > 0 else int(round(steps_per_epoch * cfg.epochs)) or 1
    # auto: 4 evaluations a run; a short run (< 8 steps) is evaluated once, at its end
    eval_steps = cfg.eval_steps or (total // 4 if total >= 8 else total)
    save_steps = cfg.save_steps or max(1, min(25, total // 10 or 1))
    return total, eval_steps, save_steps
