"""`ohlora memory add|list|search|forget|export|import|bench` (argparse; heavy imports inside handlers).

The app side of the memory package: it names the user's memory file and the embedder
(`ohlora.registry`), and the `memory` package does the work.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ohlora.errors import UserError

RETRIEVERS = ("dense", "hybrid", "bm25")  # memory.rank.RETRIEVERS, kept here so --help stays import-free


def _say(message: str) -> None:
    import sys

    print(message, file=sys.stderr, flush=True)


def _embedder_spec(args) -> str:
    from ohlora.config import load_settings

    spec = getattr(args, "embedder", None)
    return spec if spec is not None else load_settings().embedder


def _retriever(args) -> str:
    from memory.rank import DEFAULT_RETRIEVER

    return getattr(args, "retriever", None) or DEFAULT_RETRIEVER


def _store(args, retriever: str | None = None):
    """The user's memory store; its embedder loads (with progress on stderr) on first need."""
    from memory.store import MemoryStore
    from ohlora.config import get_paths
    from ohlora.registry import make_embedder

    spec = _embedder_spec(args)
    return MemoryStore(get_paths().memory_db_file, lambda: make_embedder(spec, say=_say),
                       retriever=retriever or _retriever(args))


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
    """The memories recalled for a message, and why: fused score, cosine, BM25, which retrievers."""
    query = " ".join(args.query)
    if not query.strip():
        raise UserError("search query is empty")
    with _store(args, args.retriever) as store:
        found = store.recall(query, k=args.k, min_cosine=-2 if args.all else None)
        threshold = store.min_cosine if store.min_cosine is not None else getattr(store.embedder, "min_cosine", None)
        retriever, model = store.retriever, store.embedder.name
    if args.json:
        print(json.dumps([{"score": round(r.score, 4), "cosine": round(r.cosine, 4), "bm25": round(r.lexical, 3),
                           "why": r.why, **r.memory.to_dict()} for r in found], ensure_ascii=False, indent=1))
        return 0
    cut = "no threshold" if args.all else f"cosine >= {threshold:.2f}" if threshold is not None else ""
    print(f"retriever {retriever}, embedder {model}, {cut}")
    if not found:
        print("nothing relevant remembered")
        return 0
    print(f"{'score':>6} {'cosine':>6} {'bm25':>5}  {'why':<16} memory")
    for r in found:
        print(f"{r.score:6.2f} {r.cosine:6.3f} {r.lexical:5.2f}  {r.why:<16} {_line(r.memory)}")
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
    from memory.bench import bench_kind, run_bench, run_dialogues, run_extraction
    from ohlora.registry import make_embedder

    ks = parse_ks(args.k)
    spec = _embedder_spec(args)
    kind = bench_kind(Path(args.file))
    load = lambda: make_embedder(spec, say=_say)  # noqa: E731
    if kind == "extraction":
        return _print_extraction(args, run_extraction(Path(args.file), details=args.details, embedder=load))
    if kind == "dialogues":
        k = args.recall_k if args.recall_k else _memory_k()
        return _print_dialogues(args, run_dialogues(Path(args.file), embedder=load, retriever=_retriever(args),
                                                    k=k, details=args.details))
    result = run_bench(Path(args.file), ks, retriever=_retriever(args), embedder=load)
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


def _memory_k() -> int:
    from ohlora.config import load_settings

    return load_settings().memory_k


def _print_dialogues(args, result: dict) -> int:
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
        return 0
    print(f"{args.file}: {result['n_rows']} dialogues, recall k={result['k']}, retriever {result['retriever']}")
    for cat, v in result["by_category"].items():
        print(f"  {cat:<14} {v['accuracy']:.3f}  (n={v['n']})")
    print(f"  overall        {result['overall']:.3f}")
    print(f"  update: superseded fact recalled in {result['update_superseded_recalled']} dialogue(s)")
    print(f"  latency   p50 {result['latency_ms_p50']:.1f} ms  p95 {result['latency_ms_p95']:.1f} ms (the ask's recall)")
    for row in result.get("rows", []):
        if not row["ok"]:
            got = " / ".join(f"{r['text']} ({r['cosine']:.2f})" for r in row["recalled"]) or "-"
            print(f"  FAIL {row['id']} [{row['category']}] {row['ask']}  ->  {got}")
    return 0


def _print_extraction(args, result: dict) -> int:
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
        return 0
    print(f"{args.file}: {result['n']} messages")
    print(f"  precision {result['precision']:.3f}  recall {result['recall']:.3f}  accuracy {result['accuracy']:.3f}"
          f"  (tp {result['tp']} fp {result['fp']} fn {result['fn']} tn {result['tn']})")
    if result["fact_recall"] is not None:
        print(f"  labelled facts found in what was kept: {result['fact_recall']:.3f}")
    for row in result.get("wrong", []):
        what = "missed" if row["store"] else "stored"
        print(f"  {what} [{row['kind']}] {row['text']}  ->  {row['kept']}")
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

    s = sub.add_parser("search", help="recall the memories most relevant to a message, and why (score, cosine, BM25, retriever)")
    s.add_argument("query", nargs="+")
    s.add_argument("-k", "--k", type=int, default=5)
    s.add_argument("--all", action="store_true", help="no score threshold")
    s.add_argument("--retriever", choices=RETRIEVERS, default=None, help="default: the built-in one")
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

    b = sub.add_parser("bench", help="recall@k / MRR / latency of a memory set in a fresh temporary store; "
                                     "per-category scores of dialogues (.jsonl); extraction precision/recall (.jsonl)")
    b.add_argument("file", help="a JSON memory set, or JSONL dialogues (sessions + ask) or labelled messages (text + store)")
    b.add_argument("--k", default="1,3,5", help="comma-separated k values (default 1,3,5)")
    b.add_argument("--json", action="store_true", help="print one JSON object")
    b.add_argument("--retriever", choices=RETRIEVERS, default=None, help="default: the built-in one")
    b.add_argument("--recall-k", type=int, default=None, help="dialogues: memories recalled per ask (default: memory_k)")
    b.add_argument("--details", action="store_true", help="dialogues/extraction: list what failed")
    from ohlora.registry import embedder_help

    b.add_argument("--embedder", default=None, help=f"which embedder: {embedder_help()} (default: the setting)")
    b.set_defaults(func=cmd_bench)
    return p
