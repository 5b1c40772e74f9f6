"""`ohlora export-chat ID`: a saved conversation as Markdown or JSON."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ohlora.errors import UserError


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "export-chat",
        help="export a saved conversation as Markdown or JSON",
        description="Export a saved conversation (ids: the conversation list, Ctrl+L in the chat app).",
    )
    p.add_argument("id", metavar="ID", help="conversation id, or 'last'")
    p.add_argument("--format", "-f", choices=["md", "json"], default="md", help="output format (default: md)")
    p.add_argument("--out", "-o", help="write to this file instead of stdout")
    p.set_defaults(func=cmd_export_chat)


def cmd_export_chat(args: argparse.Namespace) -> int:
    from ohlora.config import get_paths
    from ohlora.personas import list_personas
    from ohlora.store import ChatStore

    db = get_paths().db_file
    if not db.exists():
        raise UserError(f"{db}: no saved conversations yet")
    store = ChatStore(db)
    try:
        if args.id == "last":
            last = store.last_conversation()
            if last is None:
                raise UserError("no saved conversations yet")
            cid = last.id
        else:
            try:
                cid = int(args.id)
            except ValueError:
                raise UserError(f"conversation id must be a number or 'last', got {args.id!r}") from None
        if args.format == "json":
            text = json.dumps(store.export_json(cid), ensure_ascii=False, indent=2) + "\n"
        else:
            try:
                names = {p.id: p.name for p in list_personas()}
            except UserError:
                names = {}
            text = store.export_markdown(cid, names)
    finally:
        store.close()
    if args.out:
        out = Path(args.out).expanduser()
        try:
            out.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UserError(f"{out}: cannot write ({exc.strerror})") from None
        print(out)
    else:
        sys.stdout.write(text)
    return 0
