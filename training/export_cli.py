"""`ohlora export`: argparse wiring; the work is in `training.export`."""

from __future__ import annotations

import argparse
from pathlib import Path

from ohlora.errors import UserError


def register(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "export",
        help="merge a persona adapter into its base: one GGUF (+ Ollama Modelfile) or an HF folder",
        description=(
            "Merge a LoRA adapter into its base model. --to gguf writes one GGUF file and an Ollama "
            "Modelfile beside it; --to hf writes merged safetensors with the tokenizer."
        ),
    )
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--persona", metavar="ID", help="export this persona's trained adapter on its base")
    who.add_argument("--adapter", metavar="DIR", type=Path, help="a PEFT LoRA folder (with --base)")
    p.add_argument("--base", metavar="SPEC", help="base model: GGUF file, HF folder, or alias (default: the persona's)")
    p.add_argument("--to", choices=("gguf", "hf"), default="gguf", help="output format (default gguf)")
    p.add_argument("--quant", choices=("f16", "q8_0", "q4_k_m"), default="q4_k_m",
                   help="f16: every weight f16; q8_0: merged layers q8_0, the rest kept; "
                        "q4_k_m: llama.cpp's quantizer (default)")
    p.add_argument("--out", metavar="PATH", type=Path, help="output file (gguf) or folder (hf)")
    p.add_argument("--force", action="store_true", help="overwrite an existing output")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from ohlora.models import resolve_base
    from training.export import export

    persona = None
    if args.persona:
        from ohlora.personas import load_persona

        persona = load_persona(args.persona)
        adapter_dir = persona.adapter_dir
        if adapter_dir is None:
            raise UserError(f"persona '{persona.id}' has no trained adapter yet (run: ohlora train --persona {persona.id})")
        base_spec = args.base if args.base is not None else persona.base
    else:
        adapter_dir = args.adapter
        if not adapter_dir.is_dir():
            raise UserError(f"adapter folder not found: {adapter_dir}")
        base_spec = args.base or ""
    base = resolve_base(base_spec)
    result = export(adapter_dir, base, to=args.to, quant=args.quant, out=args.out, force=args.force, persona=persona)
    print(f"wrote {result.output}")
    if result.modelfile is not None:
        print(f"wrote {result.modelfile}  (ollama create NAME -f {result.modelfile})")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run `export` alone (the lead's `ohlora` CLI hooks `register` in)."""
    import sys

    parser = argparse.ArgumentParser(prog="ohlora")
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
