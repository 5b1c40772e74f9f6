"""Training the built-in embedder's query adapter: a learned linear map applied to recall queries only
(`memory.embed.FusedEmbedder` applies it).

A query's fused e5 + USE vector q becomes norm(q + q @ W); memories are embedded as before, so
stored vectors, `dup_cosine` and `update_cosine` (memory vs memory) are untouched. W (896 x 896,
float16, 1.6 MB: `query_adapter.npy`) was trained by `python -m memory.adapter` with a contrastive
loss (each query against every training memory, its own the target; temperature 1/30) plus
1e-2 x ||W||^2 (pulling it toward the identity map), Adam lr 1e-3, batch 64, 15 epochs; the mean
of 4 such runs (seeds 0-3: less variance, dev 5-fold recall@3 .826 against .816 for one), on the
(query, memory) pairs of bench/dev.json (328) and bench/train_pairs.jsonl (540, written for
this, none from test.json or holdout.json). Chosen by 5-fold cross-validation over dev.json's
memories (memory/README.md has the numbers); ~10 s of training on one CPU core.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from memory.embed import ADAPTER_PATH

HERE = Path(__file__).parent
LAMBDA, SCALE, EPOCHS, LR, BATCH, SEEDS = 1e-2, 30.0, 15, 1e-3, 64, 4


def training_pairs(files: list[Path]) -> tuple[list[str], list[str], list[set[int]]]:
    """(memory texts, query texts, each query's memory rows) from bench JSON files and pair JSONL files."""
    memories: list[str] = []
    queries: list[str] = []
    positives: list[set[int]] = []
    for path in files:
        if path.suffix == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
            row = {str(m["id"]): len(memories) + i for i, m in enumerate(data["memories"])}
            memories += [m["text"].strip() for m in data["memories"]]
            for q in data["queries"]:
                queries.append(q["text"])
                positives.append({row[str(r)] for r in q["relevant"]})
        else:
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    pair = json.loads(line)
                    memories.append(pair["memory"])
                    for q in pair["queries"]:
                        queries.append(q)
                        positives.append({len(memories) - 1})
    return memories, queries, positives


def train(q: np.ndarray, m: np.ndarray, positives: list[set[int]], *, lam: float = LAMBDA, scale: float = SCALE,
          epochs: int = EPOCHS, lr: float = LR, batch: int = BATCH, seed: int = 0) -> np.ndarray:
    """W minimising cross-entropy of each adapted query over all memories (its other positives
    left out of the negatives) + lam x ||W||^2; W starts at 0 (the identity map)."""
    import torch

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    qt, mt = torch.tensor(q, dtype=torch.float32), torch.tensor(m, dtype=torch.float32)
    w = torch.nn.Parameter(torch.zeros(q.shape[1], q.shape[1]))
    opt = torch.optim.Adam([w], lr=lr)
    pos = torch.zeros(len(q), len(m), dtype=torch.bool)
    for i, rows in enumerate(positives):
        pos[i, list(rows)] = True
    target = torch.tensor([min(rows) for rows in positives])
    for _ in range(epochs):
        perm = torch.randperm(len(q), generator=gen)
        for s in range(0, len(q), batch):
            b = perm[s:s + batch]
            a = qt[b] + qt[b] @ w
            a = a / a.norm(dim=1, keepdim=True)
            logits = scale * a @ mt.T
            own = logits.gather(1, target[b, None])
            logits = logits.masked_fill(pos[b], float("-inf")).scatter(1, target[b, None], own)
            loss = torch.nn.functional.cross_entropy(logits, target[b]) + lam * (w ** 2).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
    return w.detach().numpy()


def fit(base, memories: list[str], queries: list[str], positives: list[set[int]], seeds: int = SEEDS) -> np.ndarray:
    """W on `base`'s (unadapted) vectors: the mean of `seeds` training runs (seeds 0, 1, ...)."""
    q, m = base.encode(queries, kind="query"), base.encode(memories)
    return np.mean([train(q, m, positives, seed=seed) for seed in range(seeds)], axis=0)


def cross_validate(folds: int = 5, seeds: int = SEEDS) -> dict:
    """Recall on bench/dev.json with an adapter trained without the fold's memories, fold by fold
    (dev's memories split at random, seed 0): each fold's queries are searched among all 150
    memories by `ohlora memory bench` (hybrid); training is bench/train_pairs.jsonl plus dev's
    queries whose memories are outside the fold."""
    import tempfile

    from memory.bench import run_bench
    from memory.embed import E5Embedder, FusedEmbedder, USEEmbedder

    dev_path = HERE / "bench" / "dev.json"
    dev = json.loads(dev_path.read_text(encoding="utf-8"))
    mem_ids = [str(m["id"]) for m in dev["memories"]]
    fold_of = dict(zip(mem_ids, np.random.default_rng(0).permutation(len(mem_ids)) % folds))
    extra_m, extra_q, extra_pos = training_pairs([HERE / "bench" / "train_pairs.jsonl"])
    e5, use = E5Embedder(), USEEmbedder()
    base = FusedEmbedder(e5, use, adapter=None)
    totals: dict[str, float] = {}
    for fold in range(folds):
        kept = [m for m in dev["memories"] if fold_of[str(m["id"])] != fold]
        row = {str(m["id"]): i for i, m in enumerate(kept)}
        train_q = [q for q in dev["queries"] if all(fold_of[str(r)] != fold for r in q["relevant"])]
        memories = [m["text"].strip() for m in kept] + extra_m
        queries = [q["text"] for q in train_q] + extra_q
        positives = [{row[str(r)] for r in q["relevant"]} for q in train_q] + \
            [{len(kept) + p for p in rows} for rows in extra_pos]
        w = fit(base, memories, queries, positives, seeds)
        held = [q for q in dev["queries"] if fold_of[str(q["relevant"][0])] == fold]
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "fold.json"
            path.write_text(json.dumps({"memories": dev["memories"], "queries": held}, ensure_ascii=False), encoding="utf-8")
            for name, emb in (("without", base), ("with", FusedEmbedder(e5, use, adapter=w))):
                got = run_bench(path, [1, 3, 5], embedder=emb, retriever="hybrid")
                for k in (1, 3, 5):
                    key = f"{name} recall@{k}"
                    totals[key] = totals.get(key, 0.0) + got[f"recall@{k}"] * len(held)
    return {key: round(v / len(dev["queries"]), 4) for key, v in totals.items()}


def main(argv: list[str] | None = None) -> None:
    """Rebuild query_adapter.npy from bench/dev.json and bench/train_pairs.jsonl (or the files given);
    `--kfold N`: print dev.json's N-fold recall with and without an adapter instead."""
    from memory.embed import E5Embedder, FusedEmbedder, USEEmbedder

    args = list(argv if argv is not None else sys.argv[1:])
    if args[:1] == ["--kfold"]:
        print(json.dumps(cross_validate(int(args[1]))))
        return
    files = [Path(a) for a in args] or [HERE / "bench" / "dev.json", HERE / "bench" / "train_pairs.jsonl"]
    memories, queries, positives = training_pairs(files)
    w = fit(FusedEmbedder(E5Embedder(), USEEmbedder(), adapter=None), memories, queries, positives)
    np.save(ADAPTER_PATH, w.astype(np.float16))
    print(f"{ADAPTER_PATH}: {len(queries)} queries, {len(memories)} memories, |W| = {np.linalg.norm(w):.3f}")


if __name__ == "__main__":
    main()
