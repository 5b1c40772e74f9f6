"""Fit the line judge (ohlora/guards/judge.npz) on labelled candidate pairs.

`judge_pairs.jsonl`: 6,140 (message, written turn) pairs of 3,324 messages: each message with its
two closest written turns of one persona at cosine >= 0.78 (the built-in embedder, the lines as on
2026-12-07). The messages: the dev prompts (bench/prompts, bench/prompts/fresh2) and the harmless
messages of safety_train.jsonl against each persona's lines; then the written user turns of one
persona against the other's lines (less the few that are also a prompt of bench/prompts/fresh3 or
fresh4, read blind to measure the lines). Each pair was labelled by a reader (a helper) who saw the message
and the written reply, not the turn: does the reply fit the message as sent? (BLIND_READING's
"sensible", the voice aside.) `cos` is the pair's cosine and `top` the message's closest turn's;
`cos_first` and `cos_second` the pair's cosines by each of the built-in vector's two encoders (e5, USE),
filled in by this script, once, for rows that lack them.
Out of fold (folds by message, --kfold 5): AUC .85 (the cosine alone .78); at accept 0.5 a line for
870 messages, 624 fitting (.72), where cosine >= 0.9 said one for 528, 379 fitting (.72). Without the
split cosines and the reply's words (the first 16 features): AUC .83, 809 and 577.

    python -m ohlora.guards.fit_judge            # writes judge.npz
    python -m ohlora.guards.fit_judge --kfold 5  # out-of-fold figures (folds by message), writes nothing
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from ohlora.guards.judge import FEATURES, JUDGE_FILE, features, parts, split_cosines
from ohlora.guards.lines import without_names

PAIRS_FILE = Path(__file__).with_name("judge_pairs.jsonl")
# a line said at p 0.5-0.6 fitted half the time out of fold (114 of 229), the model's own replies
# about one time in thirty (blind readings): so from 0.5, where the lines said fit as often as the old rule's
ACCEPT, FLOOR, TOP_K = 0.5, 0.78, 2
SPLIT = 384  # the built-in vector: multilingual-e5-small's 384 dimensions, then USE's 512


def add_split_cosines(path: Path) -> None:
    """Fill in `cos_first` / `cos_second` (split_cosines of the built-in vectors of the message, less the
    persona's names, and of the turn) where a row lacks them, and write the file back."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    todo = [r for r in rows if "cos_second" not in r]
    if not todo:
        return
    from ohlora.personas import load_persona
    from ohlora.registry import make_embedder

    names = {pid: load_persona(pid).names for pid in {r["persona"] for r in todo}}
    emb = make_embedder("")
    if emb.parts[0].dim != SPLIT:
        raise SystemExit(f"the built-in vector's first encoder has {emb.parts[0].dim} dimensions, SPLIT is {SPLIT}")
    texts = sorted({without_names(r["message"], names[r["persona"]]) for r in todo} | {r["turn"] for r in todo})
    print(f"embedding {len(texts)} texts for the split cosines", flush=True)
    vec = dict(zip(texts, emb.encode(texts, kind="memory")))
    for r in todo:
        first, second = split_cosines(vec[r["turn"]], vec[without_names(r["message"], names[r["persona"]])], SPLIT)[0]
        r["cos_first"], r["cos_second"] = round(float(first), 4), round(float(second), 4)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def training_rows(path: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(features, labels, the message of each row)."""
    from ohlora.personas import load_persona

    names = {}
    cache: dict[str, object] = {}

    def part(text: str):
        if text not in cache:
            cache[text] = parts(text)
        return cache[text]

    xs, ys, messages = [], [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if row["persona"] not in names:
            names[row["persona"]] = load_persona(row["persona"]).names
        message = without_names(row["message"], names[row["persona"]])
        xs.append(features(part(message), part(row["turn"]), part(row["reply"]), row["cos"], row["top"],
                           row["cos_first"], row["cos_second"]))
        ys.append(int(row["fits"]))
        messages.append(row["persona"] + "\t" + row["message"])
    return np.stack(xs), np.array(ys), messages


def _fit(x: np.ndarray, y: np.ndarray, trees: int):
    from sklearn.ensemble import HistGradientBoostingClassifier

    # depth 2: "the words agree AND the cosine is high" and the like; a logistic regression on the same
    # features scored as well (AUC .845 out of fold) but picked fewer fitting lines at the same precision
    return HistGradientBoostingClassifier(max_depth=2, max_iter=trees, learning_rate=0.05, early_stopping=False,
                                          random_state=0).fit(x, y)


def _arrays(clf) -> dict[str, np.ndarray]:
    """The fitted trees as flat arrays (judge.Judge reads them)."""
    feature, threshold, left, right, leaf, value, roots = [], [], [], [], [], [], []
    for (tree,) in clf._predictors:  # one tree per iteration (binary)
        nodes, base = tree.nodes, len(feature)
        roots.append(base)
        feature += nodes["feature_idx"].tolist()
        threshold += nodes["num_threshold"].tolist()
        left += (nodes["left"] + base).tolist()
        right += (nodes["right"] + base).tolist()
        leaf += nodes["is_leaf"].astype(bool).tolist()
        value += nodes["value"].tolist()
    return {"feature": np.array(feature, np.int32), "threshold": np.array(threshold, np.float64),
            "left": np.array(left, np.int32), "right": np.array(right, np.int32), "leaf": np.array(leaf),
            "value": np.array(value, np.float64), "roots": np.array(roots, np.int32),
            "baseline": np.float64(np.ravel(clf._baseline_prediction)[0])}


def _by_message(messages: list[str]) -> list[list[int]]:
    """The rows of each message."""
    by: dict[str, list[int]] = defaultdict(list)
    for i, m in enumerate(messages):
        by[m].append(i)
    return list(by.values())


def _said(p: np.ndarray, y: np.ndarray, messages: list[str], accept: float) -> tuple[int, int]:
    """(messages given a line, of them fitting): each message takes its likeliest pair if >= accept."""
    picked = [max(idx, key=lambda i: p[i]) for idx in _by_message(messages)]
    picked = [i for i in picked if p[i] >= accept]
    return len(picked), int(sum(y[i] for i in picked))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ohlora.guards.fit_judge", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trees", type=int, default=200, help="boosting iterations (trees of depth 2)")
    ap.add_argument("--accept", type=float, default=ACCEPT, help="p(fits) from which a line is said")
    ap.add_argument("--kfold", type=int, default=0, help="report K-fold out-of-fold figures and write nothing")
    ap.add_argument("--out", type=Path, default=JUDGE_FILE)
    args = ap.parse_args(argv)

    add_split_cosines(PAIRS_FILE)
    x, y, messages = training_rows(PAIRS_FILE)
    print(f"{len(y)} pairs, {int(y.sum())} fitting, {len(set(messages))} messages", flush=True)
    if args.kfold:
        from sklearn.metrics import roc_auc_score
        from sklearn.model_selection import GroupKFold

        oof = np.zeros(len(y))
        for tr, te in GroupKFold(args.kfold).split(x, y, messages):
            oof[te] = _fit(x[tr], y[tr], args.trees).predict_proba(x[te])[:, 1]
        print(f"AUC: judge {roc_auc_score(y, oof):.3f}, cosine alone {roc_auc_score(y, x[:, 0]):.3f}")
        for accept in sorted({0.3, 0.4, 0.5, 0.6, 0.7, args.accept}):
            n, right = _said(oof, y, messages, accept)
            print(f"accept {accept:.2f}: a line for {n} messages, fitting {right} ({right / max(n, 1):.3f})")
        # the rule before the judge: the closest turn (no gap to the closest) at cosine >= 0.9
        closest = [next(i for i in idx if x[i, 1] == 0) for idx in _by_message(messages)]
        n, right = sum(x[i, 0] >= 0.9 for i in closest), sum(int(y[i]) for i in closest if x[i, 0] >= 0.9)
        print(f"cosine >= 0.9 alone: a line for {n} messages, fitting {right} ({right / max(n, 1):.3f})")
        return 0
    clf = _fit(x, y, args.trees)
    np.savez_compressed(args.out, features=np.array(FEATURES), accept=np.float32(args.accept), floor=np.float32(FLOOR),
                        top_k=np.int32(TOP_K), split=np.int32(SPLIT), **_arrays(clf))
    from ohlora.guards.judge import Judge

    got = Judge(args.out).p(x)
    assert np.allclose(got, clf.predict_proba(x)[:, 1], atol=1e-6), "the saved trees disagree with the fit"
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
