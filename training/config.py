"""What a training run is asked to do: `TrainConfig` (every default, in one place) and recipes.

A recipe is a TOML file of `TrainConfig` fields (`training/recipes/NAME.toml`, or any file):
`ohlora train --recipe NAME|FILE` starts from it, and flags given on the command line win.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from pathlib import Path

from ohlora.errors import UserError

RECIPES = Path(__file__).parent / "recipes"


@dataclass
class TrainConfig:
    persona: str | None = None
    data: str | None = None
    eval_data: str | None = None
    fmt: str = "auto"
    question_col: str = "question"
    answer_col: str = "answer"
    system_col: str | None = None
    base: str | None = None
    output: str | None = None
    from_adapter: str | None = None
    rank: int = 16
    alpha: int = 32
    dropout: float = 0.05
    targets: str = "all-linear"
    lr: float = 2e-4
    epochs: float = 3.0
    max_steps: int = -1
    batch_size: int = 8
    grad_accum: int = 1
    warmup: float = 0.03  # fraction of the steps
    scheduler: str = "cosine"
    weight_decay: float = 0.0
    seed: int = 42
    max_length: int = 1024
    qlora: bool = False
    zero3: bool = False  # DeepSpeed ZeRO-3 across the ranks (what `--launcher deepspeed` sets)
    bf16: str = "auto"  # auto | on | off
    gradient_checkpointing: str = "auto"  # auto: on with CUDA, off on CPU
    packing: bool = True
    resume: bool = False
    strict: bool = False
    samples: int = 3
    sample_tokens: int = 80
    eval_steps: int = 0  # 0: about 4 evaluations per run
    save_steps: int = 0  # 0: about 10 checkpoints per run (min every 25 steps)
    progress: bool = True
    gguf: bool = True
    attn: str = "auto"  # attention implementation (auto: sdpa)
    method: str = "sft"  # sft | dpo (training/dpo.py: preference pairs, on top of an SFT adapter)
    beta: float = 0.1  # DPO: how far from the reference the adapter may move (higher: less)
    held_out: float = 0.2  # DPO: share of the pairs kept out of training to measure the effect on


# What --method dpo starts from, under a --recipe and the flags given: a few small steps over the
# pairs (a LoRA already trained; DPO with SFT's 2e-4 and batch 8 overshoots on a few dozen pairs).
DPO_DEFAULTS = {"lr": 5e-5, "epochs": 3.0, "batch_size": 2, "warmup": 0.0, "samples": 0}


def check_numbers(cfg: TrainConfig) -> None:
    """Refuse out-of-range numbers before anything is loaded."""
    checks = [
        (cfg.rank >= 1, "--rank must be at least 1"),
        (cfg.alpha > 0, "--alpha must be positive"),
        (0 <= cfg.dropout < 1, "--dropout must be in [0, 1)"),
        (cfg.lr > 0, "--lr must be positive"),
        (cfg.epochs > 0 or cfg.max_steps > 0, "--epochs must be positive (or give --max-steps)"),
        (cfg.batch_size >= 1, "--batch-size must be at least 1"),
        (cfg.grad_accum >= 1, "--grad-accum must be at least 1"),
        (0 <= cfg.warmup < 1, "--warmup is a fraction of the steps in [0, 1)"),
        (cfg.max_length >= 16, "--max-length must be at least 16"),
        (cfg.samples >= 0, "--samples must be 0 or more"),
    ]
    for ok, msg in checks:
        if not ok:
            raise UserError(msg)


def recipe_names() -> list[str]:
    return sorted(p.stem for p in RECIPES.glob("*.toml"))


def recipe_path(spec: str) -> Path:
    """A shipped recipe's name, or a path to a TOML file."""
    if (RECIPES / f"{spec}.toml").is_file():
        return RECIPES / f"{spec}.toml"
    path = Path(spec).expanduser()
    if path.is_file():
        return path
    raise UserError(f"unknown recipe '{spec}': not a file, and the shipped ones are {', '.join(recipe_names())}")


def _accepts(type_name: str, value: object) -> bool:
    if type_name == "bool":
        return isinstance(value, bool)
    if type_name == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if type_name == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, str)  # "str" and "str | None"


def load_recipe(spec: str) -> dict:
    """The `TrainConfig` fields a recipe sets; an unknown key or a wrong type names the file and key."""
    path = recipe_path(spec)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: invalid TOML ({exc})") from None
    types = {f.name: str(f.type) for f in fields(TrainConfig)}
    for key, value in data.items():
        if key not in types:
            raise UserError(f"{path}: unknown key '{key}' (keys are TrainConfig fields, e.g. lr, epochs, rank)")
        if not _accepts(types[key], value):
            raise UserError(f"{path}: '{key}' must be {types[key].replace(' | None', '')} (got {value!r})")
    return data
