"""`ohlora train`: argparse wiring for training.sft and training.dpo (heavy imports happen in the handler)."""

from __future__ import annotations

import argparse

from ohlora.errors import UserError

from training import launch
from training.config import DPO_DEFAULTS, TrainConfig, load_recipe, recipe_names

_EPILOG = """\
data formats: chat JSONL ({"messages": [...], "memory": [...]}), CSV (--question-col/--answer-col),
Alpaca JSON/JSONL (instruction/input/output), LLaMA-Factory dataset_info.json#NAME (alpaca or sharegpt).
examples:
  ohlora train --persona ironman                      # retrain personas/ironman/adapter/
  ohlora train --persona ironman --recipe shipped     # the settings the shipped adapters used
  ohlora train --persona ironman --max-steps 3        # a quick check
  ohlora train --persona ohlora --data mine.csv --output ./my-adapter
  ohlora train --persona ironman --qlora              # 4-bit base (bitsandbytes; CUDA, or the CPU from 0.46.1)
  ohlora train --persona ironman --nproc 2            # DDP: 2 processes (GPUs, or a share of the CPU cores each)
  ohlora train --persona ironman --nproc 2 --launcher deepspeed    # ZeRO-3: parameters sharded across them
  ohlora train ... --nnodes 2 --node-rank 0 --master-addr 10.0.0.1  # on node 0; node 1 runs it with --node-rank 1
  ohlora train --method dpo --persona ohlora --data prefs/preference.json --output ohlora-dpo
                                                      # preference pairs (ohlora data from-chats prefs/)
  Ctrl-C saves a checkpoint; run the same command with --resume to continue.
or by hand: accelerate launch --config_file training/configs/ddp.yaml -m training.cli --persona ID
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of `ohlora train`. Their defaults are TrainConfig's (shown in --help); a flag
    left out stays unset, so a --recipe can fill it."""
    cfg = TrainConfig()

    def add(group, *flags: str, help: str | None = None, **kw) -> None:
        action = group.add_argument(*flags, default=argparse.SUPPRESS, **kw)
        if kw.get("action") in ("store_true", "store_false"):
            action.help = help
            return
        default = getattr(cfg, action.dest)
        shown = f"default: {default}" if default is not None else None
        action.help = f"{help} ({shown})" if help and shown else (help or shown)

    add(p, "--method", choices=["sft", "dpo"],
        help="sft: learn the replies in --data; dpo: train the persona's SFT adapter further on preference pairs "
             "(LLaMA-Factory ranking, as `ohlora data from-chats` writes them; defaults lr 5e-5, 3 epochs, batch 2)")
    d = p.add_argument_group("data")
    add(d, "--persona", help="persona id: its system prompt, data and adapter folder")
    add(d, "--data", help="training data file (default: the persona's train.jsonl)")
    add(d, "--eval-data", help="eval data file (default: the persona's eval.jsonl)")
    add(d, "--format", dest="fmt", choices=["auto", "chat", "csv", "alpaca", "llamafactory"])
    add(d, "--question-col", help="CSV column with the user's text")
    add(d, "--answer-col", help="CSV column with the answer")
    add(d, "--system-col", help="CSV column with a system prompt (optional)")
    add(d, "--strict", action="store_true", help="fail on the first bad row instead of skipping it")
    add(d, "--max-length", type=int, help="longest conversation in tokens (longer: skipped)")
    m = p.add_argument_group("model")
    add(m, "--base", help="base model: GGUF file, HF folder, or alias (default: the persona's)")
    add(m, "--output", help="adapter folder (default: the persona's adapter/)")
    add(m, "--from-adapter", help="continue training this PEFT adapter (same base)")
    add(m, "--rank", type=int)
    add(m, "--alpha", type=int)
    add(m, "--dropout", type=float)
    add(m, "--targets", help="'all-linear' or comma-separated module names")
    t = p.add_argument_group("training")
    t.add_argument("--recipe", metavar="NAME|FILE", default=None,
                   help="start from a recipe: a TOML file of these settings, or the name of one in training/recipes/ "
                        f"({', '.join(recipe_names())}); flags given here win over it")
    add(t, "--lr", type=float)
    add(t, "--epochs", type=float)
    add(t, "--max-steps", type=int, help="stop after N optimizer steps (overrides --epochs)")
    add(t, "--batch-size", type=int, help="conversations per step per device")
    add(t, "--grad-accum", type=int)
    add(t, "--warmup", type=float, help="warmup as a fraction of the steps")
    add(t, "--scheduler")
    add(t, "--weight-decay", type=float)
    add(t, "--seed", type=int)
    add(t, "--beta", type=float, help="DPO: how far the adapter may move from the reference (higher: less)")
    add(t, "--held-out", type=float, help="DPO: share of the pairs kept out of training to measure the effect "
        "on (--eval-data FILE instead: those pairs)")
    add(t, "--qlora", action="store_true",
        help="4-bit NF4 base (bitsandbytes: CUDA, or the CPU from 0.46.1); paged 8-bit AdamW on CUDA")
    add(t, "--zero3", action="store_true",
        help="DeepSpeed ZeRO-3 in a distributed run (what --launcher deepspeed sets; not with --qlora)")
    add(t, "--bf16", choices=["auto", "on", "off"], help="auto: on with a bf16 GPU or a CPU with native bf16 (AVX-512 BF16, AMX), else off")
    add(t, "--gradient-checkpointing", choices=["auto", "on", "off"],
        help="recompute activations in backward (auto: on with CUDA, off on CPU; off is faster, uses more memory)")
    add(t, "--no-packing", dest="packing", action="store_false",
        help="pad each batch instead of packing conversations (padding-free)")
    add(t, "--attn", help="attention implementation (auto = sdpa; eager, flash_attention_2)")
    add(t, "--resume", action="store_true", help="continue an interrupted run from its last checkpoint")
    add(t, "--eval-steps", type=int, help="evaluate every N steps (0: 4 times a run)")
    add(t, "--save-steps", type=int, help="checkpoint every N steps (0: automatic)")
    o = p.add_argument_group("output")
    add(o, "--samples", type=int, help="eval prompts answered before and after training")
    add(o, "--sample-tokens", type=int)
    add(o, "--no-gguf", dest="gguf", action="store_false", help="do not write adapter.gguf")
    add(o, "--no-progress", dest="progress", action="store_false")
    launch.add_arguments(p)


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "train", help="train a persona LoRA adapter (LoRA or QLoRA, GPU or CPU, one process or several)",
        description="Fine-tune a LoRA adapter for a persona on its chat data, on the local GPU or CPU.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(p)
    p.set_defaults(func=handler)
    return p


def config_from_args(args: argparse.Namespace):
    """TrainConfig's defaults, then the --recipe's settings, then the flags given."""
    recipe = load_recipe(args.recipe) if getattr(args, "recipe", None) else {}
    given = {k: v for k, v in vars(args).items() if k in TrainConfig.__dataclass_fields__}
    dpo = DPO_DEFAULTS if given.get("method", recipe.get("method")) == "dpo" else {}
    return TrainConfig(**{**dpo, **recipe, **given})


def handler(args: argparse.Namespace) -> int:
    from rich.console import Console

    from training.model import default_threads, quiet_libraries

    quiet_libraries()
    from training.sft import Interrupted, train

    console = Console(stderr=True)
    if launch.requested(args):  # --nproc/--launcher/--nnodes: this process starts the ranks
        return launch.relaunch(args, add_arguments, console)
    default_threads()
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # the Rich bar is the one progress display
    except ImportError:
        pass
    cfg = config_from_args(args)
    if cfg.method == "dpo":
        return _dpo(cfg, console)
    try:
        result = train(cfg, console=console)
    except Interrupted as exc:
        console.print(f"[yellow]{exc}[/]")
        return 130
    if not result.report:  # a rank other than 0 of a distributed run: rank 0 reports
        return 0
    r = result.report
    console.print(
        f"[green]adapter written:[/] {result.output}  ({r['steps']} steps, {r['tokens_per_s']} tok/s, "
        f"wall {r['wall_seconds']} s, peak RSS {r['peak_rss_mb']} MB)"
    )
    if r.get("final_eval_loss") is not None:
        console.print(f"eval loss {r['final_eval_loss']:.4f}")
    if result.gguf:
        console.print(f"[green]GGUF adapter:[/] {result.gguf}")
    for note in result.notes:
        console.print(f"note: {note}")
    return 0


def _dpo(cfg, console) -> int:
    from training.dpo import train as train_dpo

    result = train_dpo(cfg, console=console)
    r = result.report
    console.print(f"[green]adapter written:[/] {result.output}  ({r['steps']} steps on {r['data']['train_pairs']} pairs, "
                  f"wall {r['wall_seconds']} s)")
    for split, label in (("train", "trained pairs"), ("held_out", "held-out pairs")):
        m = r["reward_margin"][split]
        if m["after"] is not None:
            lp = r["logp_margin"][split]
            console.print(f"{label}: reward margin {m['before']:+.4f} -> {m['after']:+.4f}, "
                          f"log-prob margin {lp['before']:+.3f} -> {lp['after']:+.3f}")
    if result.gguf:
        console.print(f"[green]GGUF adapter:[/] {result.gguf}")
    for note in result.notes:
        console.print(f"note: {note}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m training.cli ...` (what `accelerate launch -m training.cli` runs)."""
    import sys

    parser = argparse.ArgumentParser(prog="ohlora train", epilog=_EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return handler(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
