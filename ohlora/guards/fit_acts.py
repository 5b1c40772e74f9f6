"""Fit the act head (`ohlora/guards/acts_head.npz`): `python -m ohlora.guards.fit_acts`.

Training messages: `acts_train.jsonl` (rows {"text", "act", "source"}): first user turns of the
personas' written rows, each read and labelled with one of acts.ACTS by a reader who had `ACTS.md`
(beside this file: what each act is, with examples; source "read"), and messages written with their act
from ACTS.md, many of them long, from unusual users, or doing two things at once (source "written").
Every message is also learned in the other register (fit_safety.with_registers): how a user addresses
the persona says nothing of the act.

`--kfold 5` reports out-of-fold figures and writes nothing: for each `accept`, the share of
messages given an act reply (not `other`, acts.MIXED applied) and the share of those whose act was
the labelled one. The reply is said from `--accept` (0.3: out of fold, with acts.fits and acts.MIXED,
the likeliest act is the labelled one 0.72 of the time at p 0.5-0.6, 0.49-0.60 at 0.4-0.5, 0.45 at
0.3-0.4, while the model's replies made sense 0 times in 147, read blind on fresh7, fresh8, fresh9).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from ohlora.guards import head
from ohlora.guards.acts import ACTS, ACTS_FILE, DOWN, MIXED, NO_REPLY, UP, other_side
from ohlora.guards.fit_safety import other_register, with_registers

TRAIN_FILE = Path(__file__).resolve().with_name("acts_train.jsonl")


def training_rows(path: Path | None = None) -> list[tuple[str, int]]:
    rows = []
    for line in (path or TRAIN_FILE).read_text(encoding="utf-8").splitlines():
        if line.strip():
            obj = json.loads(line)
            rows.append((obj["text"], ACTS.index(obj["act"])))
    return rows


def report(p: np.ndarray, y: np.ndarray, accepts: list[float]) -> None:
    """Out-of-fold: messages given an act reply (acts.MIXED too), how many of those got the labelled act,
    and how many got a good time's reply for a bad one or the other way round."""
    best, top = p.argmax(1), p.max(1)
    other = ACTS.index(NO_REPLY)
    up, down = [ACTS.index(a) for a in UP], [ACTS.index(a) for a in DOWN]
    flipped = (np.isin(best, up) & np.isin(y, down)) | (np.isin(best, down) & np.isin(y, up))
    torn = other_side(p) >= MIXED
    for a in accepts:
        said = (top >= a) & (best != other) & ~torn
        right = said & (best == y)
        print(f"accept {a:.2f}: a reply for {said.mean():.3f} of messages, right act {right.sum() / max(said.sum(), 1):.3f}, "
              f"the other side's {int((said & flipped).sum())}")
    for k, name in enumerate(ACTS):
        mine = best == k
        print(f"  {name:14s} labelled {int((y == k).sum()):4d}  precision {(y[mine] == k).mean() if mine.any() else 0:.3f}"
              f"  recall {(best[y == k] == k).mean() if (y == k).any() else 0:.3f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ohlora.guards.fit_acts", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--c", type=float, default=4.0, help="inverse regularization of the logistic regression")
    ap.add_argument("--accept", type=float, default=0.3, help="p of the likeliest act from which its reply is said")
    ap.add_argument("--kfold", type=int, default=0, help="report K-fold out-of-fold figures and write nothing")
    ap.add_argument("--out", type=Path, default=ACTS_FILE)
    args = ap.parse_args(argv)

    from ohlora.registry import make_embedder

    base = training_rows()
    print(f"{len(base)} labelled messages: " + ", ".join(f"{a} {sum(1 for _, k in base if k == i)}" for i, a in enumerate(ACTS)),
          flush=True)
    # every message and its other register, embedded once (the folds take theirs from here)
    texts = sorted({t for t, _ in base} | {o for t, _ in base if (o := other_register(t))})
    vec = dict(zip(texts, make_embedder("").encode(texts, kind="memory")))

    def fit(rows: list[tuple[str, int]]):
        rows = with_registers(rows)
        return head.fit(np.stack([vec[t] for t, _ in rows]), [t for t, _ in rows], np.array([k for _, k in rows]),
                        args.c, class_weight=None)

    if args.kfold:
        from sklearn.model_selection import StratifiedKFold

        y = np.array([k for _, k in base])
        x = np.stack([vec[t] for t, _ in base])
        oof = np.zeros((len(base), len(ACTS)))
        for tr, te in StratifiedKFold(args.kfold, shuffle=True, random_state=0).split(x, y):
            # the other register of the training messages only
            oof[te] = head.proba(fit([base[i] for i in tr]), x[te], [base[i][0] for i in te])
        report(oof, y, [0.0, 0.4, 0.5, 0.6, 0.7, 0.8])
        return 0
    head.save(args.out, fit(base), vec[texts[0]].shape[0], acts=np.array(ACTS),
              accept=np.float32(args.accept))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
