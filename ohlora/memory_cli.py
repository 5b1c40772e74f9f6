"""`ohlora memory add|list|search|forget|export|import|bench` (argparse; heavy imports inside handlers).

The app side of the memory package: it names the user's memory file and the embedder
(`ohlora.registry`), and the `memory` package does the work.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ohlora.errors import UserError

RETRIEVERS = ("dense", "hybrid", "bm25")  # memory.store.RETRIEVERS, kept here so --help stays import-free


def _say(message: str) -> None:
    import sys

    print(message, file=sys.stderr, flush=True)


def _embedder_spec(args) -> str:
    from ohlora.config import load_settings

    spec = getattr(args, "embedder", None)
    return spec if spec is not None else load_settings().embedder


def _store(args, retriever: str = "dense"):
    """The user's memory store; its embedder loads (with progress on stderr) on first need."""
    from memory.store import MemoryStore
    from ohlora.config import get_paths
    from ohlora.registry import make_embedder

    spec = _embedder_spec(args)
    return MemoryStore(get_paths().memory_db_file, lambda: make_embedder(spec, say=_say), retriever=retriever)


def _line(m) -> str:
    extra = f"  [{m.event_date}]" if m.event_date else ""
    old = f"  (superseded by #{m.superseded_by})" if m.superseded_by else ""
    who = f"  <{m.persona}>" if m.persona else ""
    return f"#{m.id:<5} {m.text}{extra}{who}{old}"


def cmd_add(args) -> int:
    with _store(args) as store:
        m = store.add(" ".join(args.text), persona=args.persona)
    print(f"remembered #{m.id}: {m.text}")
    return 0


def cmd_list(args) -> int:
    with _store(args) as store:
        memories = store.list(include_superseded=args.all)
    if args.json:
        print(json.dumps([m.to_dict() for m in memories], ensure_ascii=False, indent=1))
    elif not memories:
        print("no memories yet")
    else:
        for m in memories:
            print(_line(m))
    return 0


def cmd_search(args) -> int:
    query = " ".join(args.query)
    if not query.strip():
        raise UserError("search query is empty")
    with _store(args, args.retriever) as store:
        found = store.recall(query, k=args.k, min_cosine=-2 if args.all else None)
    if args.json:
        print(json.dumps([{"score": round(r.score, 4), "cosine": round(r.cosine, 4), **r.memory.to_dict()}
                          for r in found], ensure_ascii=False, indent=1))
    elif not found:
        print("nothing relevant remembered")
    else:
        for r in found:
            print(f"{r.cosine:.3f}  {_line(r.memory)}")
    return 0


def cmd_forget(args) -> int:
    with _store(args) as store:
        m = store.forget(args.id)
    print(f"forgot #{m.id}: {m.text}")
    return 0


def cmd_export(args) -> int:
    with _store(args) as store:
        n = store.export_json(Path(args.file))
    print(f"exported {n} memories to {args.file}")
    return 0


def cmd_import(args) -> int:
    with _store(args) as store:
        n = store.import_json(Path(args.file))
    print(f"imported {n} memories from {args.file}")
    return 0


def parse_ks(text: str) -> list[int]:
    try:
        ks = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        raise UserError(f"--k must be comma-separated positive integers, got {text!r}") from None
    if not ks or ks[0] < 1:
        raise UserError(f"--k must be comma-separated positive integers, got {text!r}")
    return ks


def cmd_bench(args) -> int:
    from memory.bench import run_bench
    from ohlora.registry import make_embedder

    ks = parse_ks(args.k)
    spec = _embedder_spec(args)
    result = run_bench(Path(args.file), ks, retriever=args.retriever, embedder=lambda: make_embedder(spec, say=_say))
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
        return 0
    print(f"{args.file}: {result['n_memories']} memories, {result['n_queries']} queries, retriever {result['retriever']}")
    for k in ks:
        langs = "  ".join(f"{lang} {v[f'recall@{k}']:.3f}" for lang, v in result["by_language"].items())
        print(f"  recall@{k:<3} {result[f'recall@{k}']:.3f}   ({langs})")
    print(f"  MRR       {result['mrr']:.3f}")
    print(f"  latency   p50 {result['latency_ms_p50']:.1f} ms  p95 {result['latency_ms_p95']:.1f} ms (per recall, query embedding included)")
    return 0


def register(subparsers) -> argparse.ArgumentParser:
    """Add `memory` and its subcommands to the `ohlora` parser's subparsers."""
    p = subparsers.add_parser("memory", help="long-term memory: add, list, search, forget, export, import, bench")
    sub = p.add_subparsers(dest="memory_command", metavar="COMMAND", required=True)

    a = sub.add_parser("add", help="remember a fact (like /remember)")
    a.add_argument("text", nargs="+")
    a.add_argument("--persona", default=None, help="tie the memory to one persona (default: shared)")
    a.set_defaults(func=cmd_add)

    ls = sub.add_parser("list", help="list memories")
    ls.add_argument("--all", action="store_true", help="include superseded memories")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_list)

    s = sub.add_parser("search", help="recall the memories most relevant to a query")
    s.add_argument("query", nargs="+")
    s.add_argument("-k", "--k", type=int, default=5)
    s.add_argument("--all", action="store_true", help="no score threshold")
    s.add_argument("--retriever", choices=RETRIEVERS, default="dense")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_search)

    f = sub.add_parser("forget", help="delete a memory by ID")
    f.add_argument("id")
    f.set_defaults(func=cmd_forget)

    e = sub.add_parser("export", help="write all memories to a JSON file")
    e.add_argument("file")
    e.set_defaults(func=cmd_export)

    i = sub.add_parser("import", help="add memories from a JSON file (an export or a bench file)")
    i.add_argument("file")
    i.set_defaults(func=cmd_import)

    b = sub.add_parser("bench", help="recall@k / MRR / latency of a memory set in a fresh temporary store")
    b.add_argument("file")
    b.add_argument("--k", default="1,3,5", help="comma-separated k values (default 1,3,5)")
    b.add_argument("--json", action="store_true", help="print one JSON object")
    b.add_argument("--retriever", choices=RETRIEVERS, default="dense")
    from ohlora.registry import embedder_help

    b.add_argument("--embedder", default=None, help=f"which embedder: {embedder_help()} (default: the setting)")
    b.set_defaults(func=cmd_bench)
    return p
