"""`ohlora eval`: text metrics on a prompt file, tell-then-ask dialogues, reading sheets, eval loss."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ohlora.errors import UserError

EPILOG = """examples:
  ohlora eval --persona ohlora --prompts bench/prompts/ohlora.jsonl --sheet ohlora.md --answers ohlora.jsonl
  ohlora eval --dialogues bench/dialogues.jsonl --json          tell-then-ask, with memory and without
  ohlora eval --persona ironman --loss-only                      eval loss: base vs every adapter
  ohlora eval --persona ohlora --prompts FILE --base-only --no-loss   the base model with the prompt alone

prompt files: JSONL, one {"prompt": ..., "reference"?: ...} a line.
dialogue files: JSONL, one {"persona", "tell": [...], "ask", "expect_any": [...]} a line; each
dialogue runs on a fresh memory, the tells in one conversation, the ask in a new one.
"""


def register(sub: argparse._SubParsersAction) -> None:
    from ohlora.backends.table import backend_names

    p = sub.add_parser(
        "eval",
        help="measure how well a persona answers (form metrics, dialogues with memory, eval loss, sheets)",
        description=(
            "Generate an answer for each prompt in FILE with the persona's settings and report termination rate, "
            "repeated 4-grams, distinct-2, Hangul share on Korean prompts, mean length, tokens/s and chrF against "
            "references; run tell-then-ask dialogues with and without memory; then eval loss on the persona's "
            "eval.jsonl for the base and every adapter on the same base. --sheet writes every reply for reading."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--persona", "-p", help="persona id (required unless --dialogues alone)")
    p.add_argument("--prompts", type=Path, metavar="FILE", help="JSONL prompt file")
    p.add_argument("--dialogues", type=Path, metavar="FILE", help="JSONL tell-then-ask dialogues (their own personas)")
    p.add_argument("--sheet", type=Path, metavar="OUT.md", help="write every prompt and reply as Markdown for reading")
    p.add_argument("--answers", type=Path, metavar="OUT", help="write every answer to this JSONL file")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--base-only", action="store_true", help="the base model with the persona's prompt, no adapter")
    p.add_argument("--base", help="base model for the answers (default: the persona's)")
    p.add_argument("--backend", choices=backend_names(), help="inference engine (default: llamacpp)")
    p.add_argument("--no-loss", action="store_true", help="skip the eval-loss part (faster)")
    p.add_argument("--loss-only", action="store_true", help="only the eval-loss part (no prompts, no generation)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from rich.console import Console
    from rich.progress import Progress

    from ohlora.config import load_settings
    from ohlora.evaluation import dialogue_report, generate_answers, read_dialogues, run_dialogues, write_sheet
    from ohlora.personas import load_persona
    from training.evaluate import eval_losses, loss_summary, read_prompts, text_report

    if args.loss_only and args.no_loss:
        raise UserError("--loss-only and --no-loss exclude each other")
    if args.loss_only and (args.prompts or args.dialogues):
        raise UserError("--loss-only runs no prompts or dialogues; drop --prompts / --dialogues")
    if args.persona is None and not args.dialogues:
        raise UserError("--persona ID is required (or --dialogues FILE alone)")
    if args.prompts is None and args.dialogues is None and not args.loss_only:
        raise UserError("--prompts FILE is required (or --dialogues FILE, or --loss-only for eval loss alone)")
    persona = load_persona(args.persona) if args.persona else None
    prompts = read_prompts(args.prompts) if args.prompts else []
    dialogues = read_dialogues(args.dialogues) if args.dialogues else []
    if dialogues:
        for pid in sorted({d.persona for d in dialogues}):
            load_persona(pid)  # an unknown persona fails before any model loads
    settings = replace(load_settings(), memory=False)
    if args.backend:
        settings = replace(settings, backend=args.backend)
    console = Console(stderr=True)
    out: dict = {}
    rows: list[dict] = []
    if prompts:
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task(f"{persona.id}: answering", total=len(prompts))
            answers = generate_answers(persona, prompts, settings, args.base_only, lambda: bar.advance(task), args.base)
        out = text_report(answers).as_dict()
        rows += [{"persona": persona.id, **a.__dict__} for a in answers]
    if dialogues:
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task("dialogues", total=2 * len(dialogues))
            results = []
            for memory in (True, False):
                results += run_dialogues(dialogues, replace(settings, memory=True), memory=memory, base=args.base,
                                         progress=lambda: bar.advance(task))
        out["dialogues"] = dialogue_report(results)
        rows += [r.as_dict() for r in results]
    if persona is not None and not args.no_loss and (args.loss_only or not (args.base_only or args.base)):
        if not persona.eval_file.is_file():
            raise UserError(f"{persona.eval_file}: no eval set for persona '{persona.id}' (use --no-loss)")
        with console.status("eval loss on eval.jsonl"):
            out.update(loss_summary(persona.id, eval_losses(persona)))
    if args.answers:
        with args.answers.open("w", encoding="utf-8") as fh:
            for r in rows:
                fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    if args.sheet:
        title = f"ohlora eval: {persona.id if persona else 'dialogues'}" + (" (base only)" if args.base_only else "")
        write_sheet(args.sheet, title, rows)
    if args.json:
        print(json.dumps(out, ensure_ascii=False))
        return 0
    from rich.table import Table

    table = Table("metric", "value", title=f"ohlora eval: {persona.id if persona else 'dialogues'}"
                  + (" (base only)" if args.base_only else ""))
    for k, v in out.items():
        table.add_row(k, json.dumps(v, ensure_ascii=False) if isinstance(v, dict) else (f"{v:.3f}" if isinstance(v, float) else str(v)))
    Console().print(table)
    return 0
