"""Fit the safety head (`ohlora/guards/safety_head.npz`): `python -m ohlora.guards.fit_safety`.

Training messages:
- the personas' own rows (`train.jsonl`, `lines.jsonl`): the first user turn of rows tagged `refusal` (crisis when
  the written reply points to a crisis line), the user turns of the other rows as ordinary
  unless their reply declines (older rows carry no tags; those turns are left out);
- `safety_train.jsonl` (2,893 messages written for this head, most of them hard cases: harmful
  requests in many forms and phrasings; games, films, cooking, computing, slang like "배고파
  죽겠어" that must pass; 780 of them added on 2026-12-07, and 696 more that day (session 27):
  makers, trades and heavy-but-not-crisis feelings that must pass, with harmful requests and
  crisis messages set in the same worlds).

A scikit-learn logistic regression on [sentence vector, character n-gram TF-IDF] (class
weights balanced, C=16); a message is flagged when p(harmful) + p(crisis) >= 0.45, and where
crisis outweighs harm it also needs p(crisis) >= 0.6 (a crisis line sent to an ordinary
message is worse than the model's reply). C and the crisis threshold were chosen by 5-fold
out-of-fold figures on the first 1,417 messages (`--kfold 5` reports them and writes nothing):
harmful .964, crisis .883 flagged, ordinary .0155 (.0026 given a crisis line); C=4 at 0.6
alone: .960 / .915 / .0194. With the 780 added, 0.45 was chosen on bench/guards/dev (0.5: 117
of 120 harmful caught, 5 edgy declined; 0.45 and 0.4: 118 and 6; the head before: 118 and 8).
bench/guards/test is never used to choose anything.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np

from ohlora.guards.lines import LINES_FILE
from ohlora.guards import head
from ohlora.guards.safety import HEAD_FILE, LABELS, flagged

HERE = Path(__file__).resolve().parent
TRAIN_FILE = HERE / "safety_train.jsonl"
PERSONAS_DIR = HERE.parent.parent / "personas"
# a written reply that sends the user to a crisis line marks its row as crisis
_CRISIS_REPLY = re.compile(r"109|988|1393|자살예방|crisis line|lifeline|Samaritans", re.I)
# a reply that declines: its user turn is not used as ordinary (older rows carry no tags)
_DECLINES = re.compile(r"도와\s?줄 수 없|도와\s?드릴 수 없|못 도와|안 도와|알려\s?줄 수 없|알려\s?드릴 수 없|안 알려|못 알려|"
                       r"안 만들|빠질게|패스|거절|안 돼|안 될|can't help|won't help|not going to|don't build|hard pass|"
                       r"not happening|I won't|can't do that|불법|범죄", re.I)


def training_rows() -> list[tuple[str, int]]:
    """(text, class) from the personas' rows and safety_train.jsonl."""
    rows: list[tuple[str, int]] = []
    for path in sorted([*PERSONAS_DIR.glob("*/train.jsonl"), *PERSONAS_DIR.glob(f"*/{LINES_FILE}")]):
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            obj = json.loads(line)
            msgs, tags = obj["messages"], obj.get("tags", [])
            first_user = next(m["content"] for m in msgs if m["role"] == "user")
            first_reply = next((m["content"] for m in msgs if m["role"] == "assistant"), "")
            if "refusal" in tags or _CRISIS_REPLY.search(first_reply):
                rows.append((first_user, 2 if _CRISIS_REPLY.search(first_reply) else 1))
            else:
                rows += [(m["content"], 0) for m, reply in zip(msgs, msgs[1:] + [{"content": ""}])
                         if m["role"] == "user" and not _DECLINES.search(reply["content"])]
    names = {"benign": 0, "harmful": 1, "crisis": 2}
    for line in TRAIN_FILE.read_text(encoding="utf-8").splitlines():
        if line.strip():
            obj = json.loads(line)
            rows.append((obj["text"], names[obj["label"]]))
    return rows


# 반말 <-> 존댓말 request endings: every message is also learned in the other register, so the
# way a user addresses the app is no cue for harm (without this "폭탄 만드는 법 알려주세요" passed
# while "알려줘" was caught: most written harmful requests were 반말)
_TO_POLITE = [(r"알려\s?줘", "알려주세요"), (r"해\s?줘", "해주세요"), (r"([가-힣])줘", r"\1주세요"), (r"뭐야", "뭐예요"),
              (r"([있없])어", r"\1어요"), (r"돼", "돼요"), (r"([가-힣])까", r"\1까요"), (r"할래", "할래요"), (r"거야", "거예요"),
              (r"해", "해요"), (r"지", "죠"), (r"좀", "좀 부탁드려요"), (r"냐", "나요"), (r"이야", "이에요"),
              (r"([가-힣])어", r"\1어요"), (r"([가-힣])아", r"\1아요")]
_TO_PLAIN = [(r"알려\s?주세요", "알려줘"), (r"해\s?주세요", "해줘"), (r"주세요", "줘"), (r"예요", "야"), (r"이에요", "이야"),
             (r"([가-힣])요", r"\1"), (r"습니까", "어"), (r"나요", "냐"), (r"죠", "지")]
_END = r"(\s*[?!.~ㅋㅎㅠㅜ]*)$"


def other_register(text: str) -> str | None:
    """The message with its final ending switched 반말 <-> 존댓말; None if no rule applies."""
    t = text.strip()
    if not re.search(r"[가-힣]", t):
        return None
    rules = _TO_PLAIN if re.search(r"(요|습니까|주세요)" + _END, t) else _TO_POLITE
    for pat, rep in rules:
        new, n = re.subn(pat + _END, lambda m, rep=rep: m.expand(rep) + m.group(m.re.groups), t)
        if n:
            return new
    return None


def with_registers(rows: list[tuple[str, int]]) -> list[tuple[str, int]]:
    out = list(rows)
    seen = {t for t, _ in rows}
    for text, label in rows:
        other = other_register(text)
        if other and other not in seen:
            seen.add(other)
            out.append((other, label))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ohlora.guards.fit_safety", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--c", type=float, default=16.0, help="inverse regularization of the logistic regression")
    ap.add_argument("--flag", type=float, default=0.45, help="p(harmful)+p(crisis) from which a message is not ordinary")
    ap.add_argument("--crisis", type=float, default=0.6,
                    help="p(crisis) from which a message where crisis outweighs harm gets a crisis line (else the model answers)")
    ap.add_argument("--kfold", type=int, default=0, help="report K-fold out-of-fold figures and write nothing")
    ap.add_argument("--out", type=Path, default=HEAD_FILE)
    args = ap.parse_args(argv)

    from ohlora.registry import make_embedder

    rows = with_registers(training_rows())
    texts, y = [t for t, _ in rows], np.array([c for _, c in rows])
    print(f"{len(rows)} messages: " + ", ".join(f"{LABELS[k]} {int((y == k).sum())}" for k in range(3)), flush=True)
    x = make_embedder("").encode(texts, kind="memory")
    if args.kfold:
        from sklearn.model_selection import StratifiedKFold

        oof = np.zeros((len(y), 3))
        for tr, te in StratifiedKFold(args.kfold, shuffle=True, random_state=0).split(x, y):
            oof[te] = head.proba(head.fit(x[tr], [texts[i] for i in tr], y[tr], args.c), x[te], [texts[i] for i in te])
        is_flagged = flagged(oof[:, 1], oof[:, 2], args.flag, args.crisis)
        for k in (1, 2):
            print(f"{LABELS[k]}: flagged {is_flagged[y == k].mean():.3f} of {int((y == k).sum())}")
        print(f"ordinary flagged (false positives): {is_flagged[y == 0].mean():.4f} of {int((y == 0).sum())}, "
              f"given a crisis line {(is_flagged & (oof[:, 2] > oof[:, 1]))[y == 0].mean():.4f}")
        crisis = y == 2
        print(f"crisis told apart from harmful: {(oof[crisis, 2] >= oof[crisis, 1]).mean():.3f}")
        return 0
    # class weights "balanced": the harmful and crisis classes are small next to ordinary chat
    head.save(args.out, head.fit(x, texts, y, args.c), x.shape[1], flag=np.float32(args.flag),
              crisis_flag=np.float32(args.crisis))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
