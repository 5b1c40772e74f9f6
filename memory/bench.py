"""`ohlora memory bench FILE`: three benches, picked by the file's shape (see memory/README.md).

- a JSON memory set {"memories": [{"id", "text"}], "queries": [{"text", "relevant": [...]}]}:
  recall@k, MRR and recall latency in a fresh temp store (`run_bench`; latency is the wall time of
  `MemoryStore.recall()` per query, query embedding included);
- JSONL dialogues {category, sessions: [{date, messages}], ask: {date, text}, expect_any, expect_all?,
  forbid}: tell, then ask, through a fresh store per row; scored per category (`run_dialogues`);
- JSONL labelled messages {text, store, facts}: precision / recall of what `observe()` keeps
  (`run_extraction`).
"""

from __future__ import annotations

import json
import re
import statistics
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Callable

from memory import dates
from memory.embed import Embedder
from memory.files import load_json, read_text
from memory.store import MemoryStore
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


# ---------------------------------------------------------------- LongMemEval-style dialogues
CATEGORIES = ("extraction", "multi-session", "temporal", "update", "abstention")
_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _read_jsonl(path: Path) -> list[dict]:
    rows = []
    for n, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}: line {n}: invalid JSON at column {exc.colno}: {exc.msg}") from None
        if not isinstance(row, dict):
            raise UserError(f"{path}: line {n}: expected a JSON object")
        rows.append(row)
    if not rows:
        raise UserError(f"{path}: no rows")
    return rows


def bench_kind(path: Path) -> str:
    """'retrieval' (a JSON bench file), 'dialogues' (JSONL rows with sessions and an ask) or
    'extraction' (JSONL rows with text and a 'store' label)."""
    if Path(path).suffix != ".jsonl":
        return "retrieval"
    first = _read_jsonl(path)[0]
    if "sessions" in first:
        return "dialogues"
    if "store" in first:
        return "extraction"
    raise UserError(f"{path}: JSONL rows need 'sessions' + 'ask' (dialogues) or 'text' + 'store' (extraction)")


def _when(value, where: str) -> datetime:
    try:
        when = datetime.fromisoformat(str(value))
    except ValueError:
        raise UserError(f"{where}: bad date {value!r} (ISO 8601, e.g. 2026-11-02T20:10)") from None
    return when if when.tzinfo else when.astimezone()


def _as_said_and_shown(texts: list[str]) -> str:
    return "\n".join(texts) + "\n" + "\n".join(dates.unannotated(t) for t in texts)


def judge(category: str, texts: list[str], row: dict) -> bool:
    """Did the recalled memory texts answer the ask? Substring checks on what went into the prompt:
    extraction / temporal / update: one expected string (temporal: and every expected ISO date);
    multi-session: every `expect_all` string; update and abstention: no `forbid` string. A string
    matches the text as the user said it or as the prompt gets it, with the absolute dates that
    observe wrote in ("내년(2027) 3월" holds "내년 3월" and "2027")."""
    blob = _as_said_and_shown(texts)
    expect = [str(e) for e in row.get("expect_any", [])]
    forbid = [str(f) for f in row.get("forbid", [])]
    if any(f in blob for f in forbid):
        return False
    if category == "abstention" or not expect:
        return True
    dates_ = [e for e in expect if _ISO_DAY.match(e)]
    words = [e for e in expect if not _ISO_DAY.match(e)]
    if category == "multi-session" and row.get("expect_all"):
        return all(str(e) in blob for e in row["expect_all"])
    if dates_ and not all(d in blob for d in dates_):
        return False
    return not words or any(w in blob for w in words)


def run_dialogues(path: Path, *, embedder: Embedder | Callable[[], Embedder], retriever: str = "dense",
                  k: int = 3, details: bool = False, min_cosine: float | None = None) -> dict:
    """Tell each row's sessions (observe every message at its session's date), then recall
    the ask at its date, in a fresh store per row; score each category (see `judge`)."""
    rows = _read_jsonl(path)
    per: dict[str, list[bool]] = {}
    lat: list[float] = []
    old_recalled = 0
    out_rows = []
    with tempfile.TemporaryDirectory(prefix="ohlora-bench-") as tmp:
        shared: list = [embedder]

        def emb():
            if callable(shared[0]) and not hasattr(shared[0], "encode"):
                shared[0] = shared[0]()
            return shared[0]

        for i, row in enumerate(rows):
            where = f"{path}: row {i + 1}"
            cat = row.get("category")
            if not isinstance(row.get("sessions"), list) or not isinstance(row.get("ask"), dict):
                raise UserError(f"{where}: needs 'sessions' and 'ask'")
            with MemoryStore(Path(tmp) / f"row{i}.db", emb, retriever=retriever, min_cosine=min_cosine) as store:
                for conv, session in enumerate(row["sessions"], 1):
                    said = _when(session.get("date"), where)
                    for j, message in enumerate(session.get("messages", [])):
                        store.observe(str(message), persona=None, conversation_id=conv,
                                      now=said + timedelta(minutes=j))
                t0 = time.perf_counter()
                got = store.recall(str(row["ask"].get("text", "")), k=k, now=_when(row["ask"].get("date"), where))
                lat.append((time.perf_counter() - t0) * 1000)
                texts = [r.memory.text for r in got]
            ok = judge(cat, texts, row)
            per.setdefault(str(cat), []).append(ok)
            if cat == "update" and any(str(f) in _as_said_and_shown(texts) for f in row.get("forbid", [])):
                old_recalled += 1
            if details:
                out_rows.append({"id": row.get("id", i + 1), "category": cat, "ok": ok, "ask": row["ask"].get("text"),
                                 "recalled": [{"text": r.memory.text, "cosine": round(r.cosine, 3),
                                               "score": round(r.score, 4)} for r in got]})
    order = [c for c in CATEGORIES if c in per] + sorted(c for c in per if c not in CATEGORIES)
    result: dict = {"kind": "dialogues", "k": k, "retriever": retriever, "n_rows": len(rows),
                    "by_category": {c: {"n": len(per[c]), "accuracy": round(sum(per[c]) / len(per[c]), 4)} for c in order},
                    "overall": round(sum(sum(v) for v in per.values()) / len(rows), 4),
                    "update_superseded_recalled": old_recalled,
                    "latency_ms_p50": round(_pct(lat, 50), 2), "latency_ms_p95": round(_pct(lat, 95), 2)}
    if details:
        result["rows"] = out_rows
    return result


# ---------------------------------------------------------------- what observe() stores
def run_extraction(path: Path, *, details: bool = False,
                   embedder: Embedder | Callable[[], Embedder] | None = None) -> dict:
    """Precision / recall of extraction on rows {text, store: bool, facts: [...]}: the rules, and the
    keep head (`memory/keep.py`) when `embedder` is the one it was fitted on.

    A message counts as stored when `extract()` keeps at least one sentence of it; precision
    and recall are over messages (store=true is positive). `fact_recall`: share of the
    labelled fact strings that appear in what was kept."""
    from memory.extract import extract
    from memory.keep import keep_judge

    rows = _read_jsonl(path)
    keep = None
    if embedder is not None:
        keep = keep_judge(embedder() if callable(embedder) and not hasattr(embedder, "encode") else embedder)
    tp = fp = fn = tn = 0
    facts_total = facts_found = 0
    wrong = []
    by_kind: dict[str, list[bool]] = {}
    for i, row in enumerate(rows):
        if not isinstance(row.get("text"), str) or not isinstance(row.get("store"), bool):
            raise UserError(f"{path}: row {i + 1}: needs 'text' (string) and 'store' (true/false)")
        kept = [f.text for f in extract(row["text"], keep=keep)]
        stored = bool(kept)
        if row["store"] and stored:
            tp += 1
        elif row["store"]:
            fn += 1
        elif stored:
            fp += 1
        else:
            tn += 1
        if row["store"]:
            for fact in row.get("facts", []):
                facts_total += 1
                facts_found += any(fact in t for t in kept)
        by_kind.setdefault(str(row.get("kind", "")), []).append(stored == row["store"])
        if details and stored != row["store"]:
            wrong.append({"text": row["text"], "store": row["store"], "kept": kept, "kind": row.get("kind")})
    result: dict = {
        "kind": "extraction", "n": len(rows),
        "precision": round(tp / (tp + fp), 4) if tp + fp else 0.0,
        "recall": round(tp / (tp + fn), 4) if tp + fn else 0.0,
        "accuracy": round((tp + tn) / len(rows), 4),
        "fact_recall": round(facts_found / facts_total, 4) if facts_total else None,
        "tp": tp, "fp": fp, "fn": fn, "tn": tn,
        "by_kind": {k: round(sum(v) / len(v), 3) for k, v in sorted(by_kind.items())},
    }
    if details:
        result["wrong"] = wrong
    return result
