"""Fit the keep head (`memory/keep.py`): `python -m memory.fit_keep [--kfold 5] [--threshold P]`.

Reads `memory/keep_train.jsonl` (rows {"text", "store": bool}: messages written with their label, see
`memory/README.md`), embeds what the head would be asked about (the message less its questions and
greetings, as `extract()` hands it over) with the built-in embedder, and fits a logistic regression.
`--kfold K` reports, out of fold, precision and recall of the head on the messages the rules keep
nothing of, at a few thresholds, and does not write the file.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from memory.keep import KEEP_FILE, KeepHead

TRAIN_FILE = Path(__file__).with_name("keep_train.jsonl")
C = 10.0
THRESHOLD = 0.7


def head_input(text: str) -> tuple[str, bool]:
    """(what the head is asked about, whether the rules alone keep something of the message)."""
    from memory.extract import extract

    asked: list[str] = []
    kept = extract(text, keep=lambda rest: asked.append(rest) or False)
    return (asked[0] if asked else text.strip()), bool(kept)


def main(argv: list[str] | None = None) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    from memory.embed import E5Embedder, FusedEmbedder, USEEmbedder

    ap = argparse.ArgumentParser(prog="python -m memory.fit_keep", description=__doc__.splitlines()[0])
    ap.add_argument("--kfold", type=int, default=0, help="report out-of-fold figures instead of writing the head")
    ap.add_argument("--threshold", type=float, default=THRESHOLD, help=f"keep from this p (default {THRESHOLD})")
    ap.add_argument("--c", type=float, default=C, help=f"inverse regularisation (default {C})")
    args = ap.parse_args(argv)

    rows = [json.loads(line) for line in TRAIN_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]
    inputs, by_rules = zip(*(head_input(r["text"]) for r in rows))
    y = np.array([bool(r["store"]) for r in rows])
    emb = FusedEmbedder(E5Embedder(), USEEmbedder())
    x = emb.encode(list(inputs), kind="memory")
    print(f"{len(rows)} messages ({y.sum()} to store); the rules alone keep something of {sum(by_rules)}")
    if args.kfold:
        p = np.zeros(len(y))
        for tr, te in StratifiedKFold(args.kfold, shuffle=True, random_state=0).split(x, y):
            p[te] = LogisticRegression(C=args.c, max_iter=2000).fit(x[tr], y[tr]).predict_proba(x[te])[:, 1]
        left = ~np.array(by_rules)
        rules = np.array(by_rules)
        tp0 = int((rules & y).sum())
        print(f"  rules alone: precision {tp0 / max(rules.sum(), 1):.3f}, recall {tp0 / y.sum():.3f}")
        for t in (0.4, 0.5, 0.6, 0.7, 0.8):
            keep = left & (p >= t)
            tp, fp = int((keep & y).sum()), int((keep & ~y).sum())
            fn = int((left & ~keep & y).sum())
            print(f"  p >= {t}: of {left.sum()} messages the rules keep nothing of, kept {keep.sum()} "
                  f"(precision {tp / max(tp + fp, 1):.3f}, recall of the stores among them {tp / max(tp + fn, 1):.3f}); "
                  f"with the rules: precision {(tp0 + tp) / max(rules.sum() + keep.sum(), 1):.3f}, "
                  f"recall {(tp0 + tp) / y.sum():.3f}")
        return
    lr = LogisticRegression(C=args.c, max_iter=2000).fit(x, y)
    KeepHead(lr.coef_[0], float(lr.intercept_[0]), args.threshold, emb.name).save(KEEP_FILE)
    print(f"wrote {KEEP_FILE} (threshold {args.threshold})")


if __name__ == "__main__":
    main()
