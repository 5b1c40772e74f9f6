"""`ohlora train`: argparse wiring for training.sft (heavy imports happen in the handler)."""

from __future__ import annotations

import argparse

from ohlora.errors import UserError

_EPILOG = """\
data formats: chat JSONL ({"messages": [...], "memory": [...]}), CSV (--question-col/--answer-col),
Alpaca JSON/JSONL (instruction/input/output), LLaMA-Factory dataset_info.json#NAME (alpaca or sharegpt).
examples:
  ohlora train --persona ironman                      # retrain personas/ironman/adapter/
  ohlora train --persona ironman --max-steps 3        # a quick check
  ohlora train --persona ohlora --data mine.csv --output ./my-adapter
  ohlora train --persona ironman --qlora              # CUDA: 4-bit base + paged 8-bit AdamW
  Ctrl-C saves a checkpoint; run the same command with --resume to continue.
multi-GPU: accelerate launch --config_file training/configs/ddp.yaml -m training.cli --persona ID
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = p.add_argument_group("data")
    d.add_argument("--persona", help="persona id: its system prompt, data and adapter folder")
    d.add_argument("--data", help="training data file (default: the persona's train.jsonl)")
    d.add_argument("--eval-data", help="eval data file (default: the persona's eval.jsonl)")
    d.add_argument("--format", dest="fmt", default="auto", choices=["auto", "chat", "csv", "alpaca", "llamafactory"])
    d.add_argument("--question-col", default="question", help="CSV column with the user's text")
    d.add_argument("--answer-col", default="answer", help="CSV column with the answer")
    d.add_argument("--system-col", default=None, help="CSV column with a system prompt (optional)")
    d.add_argument("--strict", action="store_true", help="fail on the first bad row instead of skipping it")
    d.add_argument("--max-length", type=int, default=1024, help="longest conversation in tokens (longer: skipped)")
    m = p.add_argument_group("model")
    m.add_argument("--base", default=None, help="base model: GGUF file, HF folder, or alias (default: the persona's)")
    m.add_argument("--output", default=None, help="adapter folder (default: the persona's adapter/)")
    m.add_argument("--from-adapter", default=None, help="continue training this PEFT adapter (same base)")
    m.add_argument("--rank", type=int, default=16)
    m.add_argument("--alpha", type=int, default=32)
    m.add_argument("--dropout", type=float, default=0.05)
    m.add_argument("--targets", default="all-linear", help="'all-linear' or comma-separated module names")
    t = p.add_argument_group("training")
    t.add_argument("--lr", type=float, default=2e-4)
    t.add_argument("--epochs", type=float, default=3.0)
    t.add_argument("--max-steps", type=int, default=-1, help="stop after N optimizer steps (overrides --epochs)")
    t.add_argument("--batch-size", type=int, default=8, help="conversations per step per device")
    t.add_argument("--grad-accum", type=int, default=1)
    t.add_argument("--warmup", type=float, default=0.03, help="warmup as a fraction of the steps")
    t.add_argument("--scheduler", default="cosine")
    t.add_argument("--weight-decay", type=float, default=0.0)
    t.add_argument("--seed", type=int, default=42)
    t.add_argument("--qlora", action="store_true", help="4-bit base + paged 8-bit AdamW (CUDA + bitsandbytes)")
    t.add_argument("--bf16", default="auto", choices=["auto", "on", "off"], help="auto: on with a bf16 GPU, off on CPU")
    t.add_argument("--gradient-checkpointing", default="auto", choices=["auto", "on", "off"],
                   help="recompute activations in backward (auto: on with CUDA, off on CPU; off is faster, uses more memory)")
    t.add_argument("--no-packing", dest="packing", action="store_false",
                   help="pad each batch instead of packing conversations (padding-free)")
    t.add_argument("--attn", default="auto", help="attention implementation (auto = sdpa; eager, flash_attention_2)")
    t.add_argument("--resume", action="store_true", help="continue an interrupted run from its last checkpoint")
    t.add_argument("--eval-steps", type=int, default=0, help="evaluate every N steps (0: 4 times a run)")
    t.add_argument("--save-steps", type=int, default=0, help="checkpoint every N steps (0: automatic)")
    o = p.add_argument_group("output")
    o.add_argument("--samples", type=int, default=3, help="eval prompts answered before and after training")
    o.add_argument("--sample-tokens", type=int, default=80)
    o.add_argument("--no-gguf", dest="gguf", action="store_false", help="do not write adapter.gguf")
    o.add_argument("--no-progress", dest="progress", action="store_false")


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "train", help="train a persona LoRA adapter (LoRA on CPU, QLoRA on CUDA)",
        description="Fine-tune a LoRA adapter for a persona on its chat data, on the local GPU or CPU.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(p)
    p.set_defaults(func=handler)
    return p


def config_from_args(args: argparse.Namespace):
    from training.sft import TrainConfig

    fields = TrainConfig.__dataclass_fields__
    return TrainConfig(**{k: v for k, v in vars(args).items() if k in fields})


def handler(args: argparse.Namespace) -> int:
    from rich.console import Console

    from training.sft import Interrupted, default_threads, train

    console = Console(stderr=True)
    default_threads()
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # the Rich bar is the one progress display
    except ImportError:
        pass
    cfg = config_from_args(args)
    try:
        result = train(cfg, console=console)
    except Interrupted as exc:
        console.print(f"[yellow]{exc}[/]")
        return 130
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
