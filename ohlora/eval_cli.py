"""`ohlora eval`: text metrics on a prompt file, plus eval loss on the persona's eval set."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ohlora.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="measure how well a persona answers (termination, repetition, Hangul, chrF, eval loss)",
        description=(
            "Generate an answer for each prompt in FILE (JSONL, one {\"prompt\": ..., \"reference\": ...?} "
            "a line) with the persona's settings, and report termination rate, repeated 4-grams, distinct-2, "
            "Hangul share on Korean prompts, mean length, tokens/s and chrF against references; then eval "
            "loss on the persona's eval.jsonl for the base and every adapter on the same base."
        ),
    )
    p.add_argument("--persona", "-p", required=True, help="persona id")
    p.add_argument("--prompts", type=Path, metavar="FILE", help="JSONL prompt file (required unless --loss-only)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--base-only", action="store_true", help="the base model with the persona's prompt, no adapter")
    from ohlora.registry import backend_names

    p.add_argument("--backend", choices=backend_names(), help="inference engine (default: llamacpp)")
    p.add_argument("--no-loss", action="store_true", help="skip the eval-loss part (faster)")
    p.add_argument("--loss-only", action="store_true", help="only the eval-loss part (no prompts, no generation)")
    p.add_argument("--answers", type=Path, metavar="OUT", help="also write every answer to this JSONL file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from rich.console import Console
    from rich.progress import Progress

    from ohlora.config import load_settings
    from ohlora.personas import load_persona
    from ohlora.evaluation import generate_answers
    from training.evaluate import eval_losses, loss_summary, read_prompts, text_report

    if args.loss_only and args.no_loss:
        raise UserError("--loss-only and --no-loss exclude each other")
    if args.prompts is None and not args.loss_only:
        raise UserError("--prompts FILE is required (or --loss-only for eval loss alone)")
    persona = load_persona(args.persona)
    prompts = read_prompts(args.prompts) if not args.loss_only else []
    settings = replace(load_settings(), memory=False)
    if args.backend:
        settings = replace(settings, backend=args.backend)
    console = Console(stderr=True)
    out: dict = {}
    answers = []
    if prompts:
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task(f"{persona.id}: answering", total=len(prompts))
            answers = generate_answers(persona, prompts, settings, args.base_only, lambda: bar.advance(task))
        out = text_report(answers).as_dict()
    if not args.no_loss:
        if not persona.eval_file.is_file():
            raise UserError(f"{persona.eval_file}: no eval set for persona '{persona.id}' (use --no-loss)")
        with console.status("eval loss on eval.jsonl"):
            out.update(loss_summary(persona.id, eval_losses(persona)))
    if args.answers:
        with args.answers.open("w", encoding="utf-8") as fh:
            for a in answers:
                fh.write(json.dumps(a.__dict__, ensure_ascii=False) + "\n")
    if args.json:
        print(json.dumps(out, ensure_ascii=False))
        return 0
    from rich.table import Table

    table = Table("metric", "value", title=f"ohlora eval: {persona.id}" + (" (base only)" if args.base_only else ""))
    for k, v in out.items():
        table.add_row(k, json.dumps(v, ensure_ascii=False) if isinstance(v, dict) else (f"{v:.3f}" if isinstance(v, float) else str(v)))
    Console().print(table)
    return 0
