"""How recall ranks memories: the cosine of sentence embeddings, Kiwi-morpheme BM25 and a date bonus.

`retriever="dense"` ranks by cosine (the measured best on the bench files), `"hybrid"` adds BM25
in z units (LEXICAL_WEIGHT), `"bm25"` ranks by BM25 alone. A query naming a date lifts memories
said in, or about, that period (DATE_BONUS). Newer memories win ties. Numbers only: the rows
come from, and the records go out through, `memory.store`.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np

from memory import dates
from memory.index import VectorIndex

# Cosines of the built-in (centred) embedder on memory/bench/*.json: query-relevant memory median
# 0.50-0.57, 5th percentile 0.27-0.30; query-unrelated median ~0.0 (see memory.merge for the rest).
MIN_COSINE = 0.20  # recall() drops memories below this cosine: only clear misses
# An embedder may carry its own `min_cosine` (each model's cosines live on their own scale).
# hybrid: z-scored cosine + LEXICAL_WEIGHT x z-scored BM25 (over the searched rows); measured on
# memory/bench/dev.json (recall@3) with the built-in e5+USE: weight 0.1 -> .750, 0.2 -> .762,
# 0.3 -> .751; with e5 alone: 0 -> .717, 0.1 -> .732, 0.2 -> .722; the older rank fusion (RRF) -> .585
LEXICAL_WEIGHT = 0.2
DATE_BONUS = 2.0  # a query naming a date ("지난주에", "다음 주 금요일"): memories said then or about then, + 2 sd
RETRIEVERS = ("dense", "hybrid", "bm25")
DEFAULT_RETRIEVER = "hybrid"


def z(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """`x` in standard deviations of its masked rows (zeros when fewer than two)."""
    sel = x[mask]
    if sel.size < 2:
        return np.zeros_like(x)
    return (x - sel.mean()) / (float(sel.std()) or 1.0)


def date_rows(query: str, now: datetime | None, index: VectorIndex) -> np.ndarray | None:
    """Rows said in, or about, the period a date in the query names; None without one."""
    ref = dates.resolve(query, now)
    period = dates.span(ref.value) if ref is not None else None
    if period is None:
        return None
    return index.in_period(*period)


def rank(retriever: str, cos: np.ndarray, lex: np.ndarray, mask: np.ndarray, threshold: float,
         dated: np.ndarray | None, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(the top-k rows, best first; every row's score) among the rows of `mask`.

    A row below the cosine `threshold` is never ranked, whatever its other scores ("bm25": a row
    no query term matched). Scores are fused in z units (sd of the searched rows), then put back
    on the scale of the base score (cosine; BM25 for "bm25"): same ranking, and one memory
    scores its cosine."""
    n = len(cos)
    if retriever == "bm25":
        mask = mask & (lex > 0)
        base = lex
    else:
        if threshold > -1:
            mask = mask & (cos >= threshold)
        base = cos
    none = np.zeros(0, dtype=np.int64)
    if not mask.any():
        return none, base
    score = z(base, mask)
    if retriever == "hybrid" and (lex[mask] > 0).any():
        score = score + LEXICAL_WEIGHT * z(lex, mask)
    if dated is not None:
        score = score + DATE_BONUS * dated
    sel = base[mask]
    score = float(sel.mean()) + max(float(sel.std()), 1e-3) * score
    # newer memories win ties: rows are in insertion order
    score = score + 1e-6 * np.arange(n, dtype=np.float32) / max(n, 1)
    score[~mask] = -np.inf
    k = min(k, int(mask.sum()))
    if k == 0:
        return none, score
    top = np.argpartition(-score, k - 1)[:k] if k < n else np.arange(n)
    return top[np.argsort(-score[top], kind="stable")][:k], score
