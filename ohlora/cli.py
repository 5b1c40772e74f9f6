"""The `ohlora` command: chat (default), ask, persona, train, export, memory, eval.

Every subcommand's heavy imports happen inside its handler, so `ohlora --help` is fast.
Bad input raises UserError anywhere below; `main` prints it as one line and exits 2.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from typing import Sequence

from ohlora import __version__
from ohlora.errors import UserError

EPILOG = """examples:
  ohlora                                   open the chat (persona from config, default 오로라)
  ohlora chat --persona ironman --continue reopen the last conversation as Iron Man
  ohlora ask --persona ironman "안녕?"      one answer, streamed to stdout
  ohlora ask --json --base smollm2 "Hi"    one JSON object: text, tokens, tokens/s, stop reason
  ohlora persona list                      the personas you can talk to
  ohlora persona import Seraphina.png      a character card (PNG, JSON or CHARX) becomes a persona
  ohlora persona export ohlora -f charx    a card that carries the persona's trained adapter
  ohlora data from-chats out/              your kept, edited and swiped replies as training data
  ohlora train --persona ironman           retrain a persona's adapter (GPU if present, else CPU)

settings live in $XDG_CONFIG_HOME/ohlora/config.toml; OHLORA_HOME moves all files.
"""

# Subcommands owned by the other packages: module path -> it provides register(subparsers).
_PLUGINS = ("training.cli", "training.export_cli", "ohlora.eval_cli", "ohlora.memory_cli", "ohlora.tui.cli", "ohlora.serve.cli",
            "ohlora.data_cli")


def _add_model_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--persona", "-p", help="persona id (see `ohlora persona list`)")
    from ohlora.registry import DEFAULT_BACKEND, backend_names

    p.add_argument("--backend", choices=backend_names(), help=f"inference engine (default: {DEFAULT_BACKEND})")
    p.add_argument("--base", help="base model: a GGUF file, an HF folder, or 'smollm2' (default: Gemma 3 270M)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ohlora",
        description="Chat in your terminal with persona LoRA adapters that remember you.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"ohlora {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    chat = sub.add_parser("chat", help="open the chat app (the default)", description="Open the chat app.")
    _add_model_flags(chat)
    chat.add_argument("--continue", "-c", dest="cont", action="store_true", help="reopen the last conversation")
    chat.set_defaults(func=cmd_chat)

    ask = sub.add_parser(
        "ask",
        help="one answer from a persona, streamed to stdout",
        description="Ask a persona one question; the answer streams to stdout. TEXT '-' reads stdin.",
    )
    _add_model_flags(ask)
    ask.add_argument("--json", action="store_true", help="print one JSON object instead of streaming")
    ask.add_argument("--no-memory", action="store_true", help="neither recall nor store memories")
    ask.add_argument("--show-prompt", action="store_true", help="also print the whole prompt the model saw (recalled memories included) to stderr")
    ask.add_argument("--max-tokens", type=int, help="cap the answer length (tokens)")
    ask.add_argument("--seed", type=int, help="sampling seed for a repeatable answer")
    ask.add_argument("--continue", "-c", dest="cont", action="store_true",
                     help="continue the last saved conversation (every answer is saved, like a chat)")
    ask.add_argument("text", metavar="TEXT", help="what to say")
    ask.set_defaults(func=cmd_ask)

    persona = sub.add_parser("persona", help="list, show, import or export personas (character cards)",
                             description="Personas you can talk to; character cards in and out.")
    psub = persona.add_subparsers(dest="persona_cmd", metavar="ACTION", required=True)
    psub.add_parser("list", help="list personas").set_defaults(func=cmd_persona_list)
    show = psub.add_parser("show", help="show one persona's settings")
    show.add_argument("id")
    show.set_defaults(func=cmd_persona_show)
    imp = psub.add_parser(
        "import", help="import a character card (V2/V3 PNG, JSON, CHARX) or attach a lorebook",
        description="Import a Character Card V2/V3 (PNG with a chara/ccv3 chunk, JSON, or CHARX) as a user "
                    "persona. A CHARX from `ohlora persona export -f charx` brings its adapter when it fits the "
                    "persona's base. A World Info JSON is attached to a persona with --into.")
    imp.add_argument("file", metavar="FILE")
    imp.add_argument("--id", help="persona id (default: from the card's name)")
    imp.add_argument("--replace", action="store_true", help="replace a persona with the same id")
    imp.add_argument("--base", help="base model the persona runs on (default: the card's, else Gemma 3 270M)")
    imp.add_argument("--into", metavar="PERSONA", help="attach FILE (a World Info lorebook) to this persona")
    imp.set_defaults(func=cmd_persona_import)
    exp = psub.add_parser(
        "export", help="write a persona as a character card (png, json or charx)",
        description="Write a persona as a Character Card. An imported card comes back with every field it had. "
                    "charx (V3) also carries the persona's adapter.gguf, its base fingerprint, chat template "
                    "name and eval report under assets/ohlora/.")
    exp.add_argument("id", metavar="ID")
    exp.add_argument("--format", "-f", choices=["png", "json", "charx"], default="png", help="card format (default: png)")
    exp.add_argument("--out", "-o", help="file or folder to write (default: ./ID.FORMAT)")
    exp.add_argument("--spec", choices=["v2", "v3"], help="card spec (default: the card's own; new cards: v3)")
    exp.add_argument("--no-adapter", action="store_true", help="charx: leave the adapter out")
    exp.set_defaults(func=cmd_persona_export)

    for module in _PLUGINS:
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name and module.startswith(exc.name):
                continue  # that package is not part of this build
            raise
        mod.register(sub)
    return parser


def _settings(args: argparse.Namespace):
    from dataclasses import replace

    from ohlora.config import load_settings

    settings = load_settings()
    if getattr(args, "backend", None):
        settings = replace(settings, backend=args.backend)
    if getattr(args, "persona", None):
        settings = replace(settings, persona=args.persona)
    return settings


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cmd_ask(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from ohlora.chat import ChatSession, clean_input
    from ohlora.conversation import Conversation
    from ohlora.registry import open_memory
    from ohlora.store import StoreError, open_store

    text = sys.stdin.read() if args.text == "-" else args.text
    text = clean_input(text)
    settings = _settings(args)
    if args.no_memory:
        settings = replace(settings, memory=False)
    session = ChatSession(settings, base_override=args.base)
    if args.max_tokens or args.seed is not None:
        gen = session.persona.generation
        gen = replace(gen, max_tokens=args.max_tokens or gen.max_tokens, seed=gen.seed if args.seed is None else args.seed)
        session.persona = replace(session.persona, generation=gen)
    session.base()  # a missing or unusable base model fails here, before memory loads anything
    try:
        store = open_store()
    except StoreError as exc:
        store = None
        _say(f"note: this answer is not saved: {exc}")
    memory = open_memory(settings, say=_say)
    if memory is not None and not memory.wait():
        _say(f"note: answering without memory: {memory.error}")
    session.memory = memory
    if store is not None and args.cont:
        last = store.last_conversation()
        convo = Conversation.open(session, store, last.id) if last else Conversation(session, store)
    else:
        convo = Conversation(session, store)
    try:
        if args.json:
            for _ in convo.say(text):
                pass
            print(json.dumps(session.last.as_dict(), ensure_ascii=False))
        else:
            for piece in convo.say(text):
                sys.stdout.write(piece)
                sys.stdout.flush()
            sys.stdout.write("\n")
    finally:
        if memory is not None:
            if not memory.drain(timeout=600):
                _say(f"note: memory did not store this message yet ({memory.status}); it will at the next start")
            memory.close()
    turn = convo.last
    for note in (turn.save_error, turn.memory_error, memory.last_error if memory else ""):
        if note:
            _say(f"note: {note}")
    if args.show_prompt:
        print(f"--- prompt ---\n{session.last_prompt}\n--- end of prompt ---", file=sys.stderr)
    if session.adapter_skipped:
        _say(f"note: {session.persona.id}'s adapter was trained on another base; "
             f"this answer came from {session.base().name} with the persona's prompt alone")
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    try:
        from ohlora.tui.app import run_app
    except ImportError:
        raise UserError("the chat app is not installed in this build; use `ohlora ask TEXT`") from None
    return run_app(_settings(args), base=getattr(args, "base", None), cont=getattr(args, "cont", False))


def cmd_persona_list(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from ohlora.personas import list_personas

    table = Table("id", "name", "language", "adapter", "greeting", box=None)
    for p in list_personas():
        adapter = "trained" if p.adapter_gguf_path or p.adapter_dir else "none (base model + prompt)"
        table.add_row(p.id, p.name, p.language, adapter, p.greeting)
    Console().print(table)
    return 0


def cmd_persona_show(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from ohlora.personas import load_persona

    p = load_persona(args.id)
    data = asdict(p)
    data["folder"] = str(p.folder)
    print(json.dumps(data, ensure_ascii=False, indent=2))
    return 0


def cmd_persona_import(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ohlora.cards.files import import_file

    done = import_file(Path(args.file), pid=args.id, replace=args.replace, into=args.into, base=args.base)
    if args.into:
        print(f"attached {args.file} to {done.name} ({done.pid}): {done.folder}")
    else:
        print(f"imported {done.name} as persona '{done.pid}': {done.folder}")
    for note in done.notes:
        print(f"  {note}")
    if not args.into:
        print(f"talk to it: ohlora chat --persona {done.pid}")
    return 0


def cmd_persona_export(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ohlora.cards.files import export_persona

    out, notes = export_persona(args.id, args.format, Path(args.out) if args.out else None, spec=args.spec,
                                with_adapter=not args.no_adapter)
    print(out)
    for note in notes:
        print(f"  {note}")
    return 0


def _quiet_deepspeed_on_cpu() -> None:
    """DeepSpeed (installed for ZeRO-3) logs "Setting accelerator to CPU" to stdout when it
    finds no GPU; that line broke `--json` output. Without an NVIDIA device, say it is the CPU."""
    import os

    if "DS_ACCELERATOR" not in os.environ and not os.path.exists("/dev/nvidia0") and not os.path.exists("/dev/nvidiactl"):
        os.environ["DS_ACCELERATOR"] = "cpu"


def main(argv: Sequence[str] | None = None) -> int:
    _quiet_deepspeed_on_cpu()
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version")):
        argv = ["chat", *argv]  # `ohlora`, `ohlora --continue`, `ohlora -p ironman` open the chat
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
