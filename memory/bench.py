"""`ohlora memory bench FILE`: recall@k, MRR and recall latency of a memory set, in a fresh temp store.

FILE is JSON: {"memories": [{"id": "m1", "text": "..."}], "queries": [{"text": "...", "relevant": ["m1"]}]}.
Latency is the wall time of `MemoryStore.recall()` per query, query embedding included.
"""

from __future__ import annotations

import re
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable

from memory.embed import Embedder
from memory.store import MemoryStore, load_json
from ohlora.errors import UserError

_HANGUL = re.compile(r"[\uac00-\ud7a3]")


def load_bench(path: Path) -> tuple[list[dict], list[dict]]:
    """Validated (memories, queries) of a bench file; UserError naming the file and the entry."""
    data = load_json(path)
    memories, queries = data.get("memories"), data.get("queries")
    if not isinstance(memories, list) or not memories:
        raise UserError(f"{path}: 'memories' must be a non-empty list")
    if not isinstance(queries, list) or not queries:
        raise UserError(f"{path}: 'queries' must be a non-empty list")
    ids: set[str] = set()
    for i, m in enumerate(memories):
        if not isinstance(m, dict) or not isinstance(m.get("text"), str) or not m["text"].strip():
            raise UserError(f"{path}: memories[{i}]: needs a non-empty 'text' string")
        if not isinstance(m.get("id"), (str, int)):
            raise UserError(f"{path}: memories[{i}]: needs an 'id' (string)")
        if str(m["id"]) in ids:
            raise UserError(f"{path}: memories[{i}]: duplicate id {m['id']!r}")
        ids.add(str(m["id"]))
    for i, q in enumerate(queries):
        if not isinstance(q, dict) or not isinstance(q.get("text"), str) or not q["text"].strip():
            raise UserError(f"{path}: queries[{i}]: needs a non-empty 'text' string")
        rel = q.get("relevant")
        if not isinstance(rel, list) or not rel:
            raise UserError(f"{path}: queries[{i}]: 'relevant' must be a non-empty list of memory ids")
        unknown = [r for r in rel if str(r) not in ids]
        if unknown:
            raise UserError(f"{path}: queries[{i}]: unknown memory id {unknown[0]!r} in 'relevant'")
    return memories, queries


def _pct(values: list[float], q: float) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def run_bench(path: Path, ks: list[int], *, embedder: Embedder | Callable[[], Embedder],
              retriever: str = "dense") -> dict:
    memories, queries = load_bench(path)
    depth = max(max(ks), 10)
    with tempfile.TemporaryDirectory(prefix="ohlora-bench-") as tmp:
        store = MemoryStore(Path(tmp) / "bench.db", embedder, retriever=retriever)
        try:
            db_ids = store.add_raw([m["text"].strip() for m in memories])
            ext = {db: str(m["id"]) for db, m in zip(db_ids, memories)}
            store.recall("warm-up 준비", k=1, min_cosine=-2)  # first-call costs (matrix load) are not latency
            hits = {k: [] for k in ks}
            rr: list[float] = []
            lat: list[float] = []
            langs: list[str] = []
            for q in queries:
                t0 = time.perf_counter()
                got = store.recall(q["text"], k=depth, min_cosine=-2)
                lat.append((time.perf_counter() - t0) * 1000)
                ranked = [ext[r.memory.id] for r in got]
                relevant = {str(r) for r in q["relevant"]}
                for k in ks:
                    hits[k].append(len(relevant & set(ranked[:k])) / len(relevant))
                first = next((i for i, mid in enumerate(ranked) if mid in relevant), None)
                rr.append(0.0 if first is None else 1.0 / (first + 1))
                langs.append("ko" if _HANGUL.search(q["text"]) else "en")
        finally:
            store.close()
    out: dict = {f"recall@{k}": round(sum(v) / len(v), 4) for k, v in hits.items()}
    out["mrr"] = round(sum(rr) / len(rr), 4)
    out["latency_ms_p50"] = round(_pct(lat, 50), 2)
    out["latency_ms_p95"] = round(_pct(lat, 95), 2)
    out["n_queries"] = len(queries)
    out["n_memories"] = len(memories)
    out["retriever"] = retriever
    by_lang = {}
    for lang in ("ko", "en"):
        sel = [i for i, l in enumerate(langs) if l == lang]
        if sel:
            by_lang[lang] = {"n_queries": len(sel),
                             **{f"recall@{k}": round(sum(hits[k][i] for i in sel) / len(sel), 4) for k in ks}}
    out["by_language"] = by_lang
    return out
