"""Whether a written line fits a message: small boosted trees on (message, written turn) features.

A sentence vector places a message by topic, not by what it says about it: "오늘 또 머리 깨질 것
같아" (a headache) sits at 0.92 from "나 오늘 머리 잘랐어" (a haircut), while "요즘 왜케 외롭지.. 그냥 얘기 좀
하자" sits at 0.89 from "요즘따라 왜케 외롭지", whose reply fits it. The judge looks at the closest
written turns and scores each from the cosine and from how their words agree: content words, the
predicates (verb and adjective stems) apart from the nouns, letter pairs (typos, spacing), length,
question or not, negation; the two encoders' cosines apart (the built-in vector is multilingual-e5's
and USE's side by side); and whether the written reply takes up the message's words or only the
turn's (a reply about "머리 스타일" to a headache). It was fitted (`python -m ohlora.guards.fit_judge`) on candidate pairs
that readers labelled "the written reply fits this message" or not (`judge_pairs.jsonl`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from memory.lexical import tagged

JUDGE_FILE = Path(__file__).with_name("judge.npz")

_PREDICATES = {"VV", "VA", "XR", "VV-R", "VA-R", "VV-I", "VA-I"}
_NEGATION = re.compile(r"(?:^|\s)(?:안|못)\s|않|없|싫|말고|\b(?:not|no|never|don'?t|can'?t|won'?t)\b", re.I)
_QUESTION = re.compile(r"\?|뭐|왜|어떻게|어때|어떡|언제|어디|누구|얼마|몇|할까|될까|나요|까요|니\b|냐|래\b|what|why|how|which|should", re.I)
_SQUASH = re.compile(r"[\s\W_]+")

FEATURES = (
    "cos", "gap", "turn_words_in_message", "message_words_in_turn", "predicates_agree",
    "message_predicates_missing", "turn_predicates_missing", "nouns_agree", "message_nouns_missing",
    "turn_nouns_missing", "letter_pairs", "length_ratio", "message_length", "question_differs",
    "negation_differs", "cos_x_words", "cos_first", "cos_second", "message_words_in_reply",
    "reply_words_vs_turn", "reply_nouns_of_turn_only",
)


@dataclass(frozen=True)
class Parts:
    """What the judge reads of one text (computed once per written turn, when the lines load)."""
    terms: frozenset[str]
    nouns: frozenset[str]
    predicates: frozenset[str]
    pairs: frozenset[str]  # letter pairs of the text without spaces and punctuation
    question: bool
    negated: bool
    letters: int


def parts(text: str) -> Parts:
    words = tagged(text)
    squashed = _SQUASH.sub("", text.lower())
    return Parts(
        terms=frozenset(w for w, _ in words),
        nouns=frozenset(w for w, t in words if t not in _PREDICATES),
        predicates=frozenset(w for w, t in words if t in _PREDICATES),
        pairs=frozenset(squashed[i:i + 2] for i in range(len(squashed) - 1)) or frozenset([squashed]),
        question=bool(_QUESTION.search(text)),
        negated=bool(_NEGATION.search(text)),
        letters=max(len(squashed), 1),
    )


def _share(part: frozenset[str], whole: frozenset[str]) -> float:
    """How much of `part` is in `whole` (1 when `part` is empty)."""
    return len(part & whole) / len(part) if part else 1.0


def features(message: Parts, turn: Parts, reply: Parts, cos: float, top: float,
             cos_first: float, cos_second: float) -> np.ndarray:
    """The judge's inputs for one (message, written turn with its `reply`) pair; `top` is the closest
    turn's cosine, `cos_first` and `cos_second` the pair's cosines by each encoder of the built-in
    vector (`split_cosines`)."""
    words = _share(turn.terms, message.terms)
    return np.array([
        cos,
        top - cos,
        words,
        _share(message.terms, turn.terms),
        _share(turn.predicates, message.predicates) * _share(message.predicates, turn.predicates),
        min(len(message.predicates - turn.predicates), 3),
        min(len(turn.predicates - message.predicates), 3),
        _share(turn.nouns, message.nouns) * _share(message.nouns, turn.nouns),
        min(len(message.nouns - turn.nouns), 4),
        min(len(turn.nouns - message.nouns), 4),
        len(message.pairs & turn.pairs) / len(message.pairs | turn.pairs),
        abs(math.log(message.letters / turn.letters)),
        math.log(message.letters),
        float(message.question != turn.question),
        float(message.negated != turn.negated),
        cos * words,
        cos_first,
        cos_second,
        _share(message.terms, reply.terms),
        _share(message.terms, reply.terms) - _share(turn.terms, reply.terms),
        min(len((reply.nouns & turn.nouns) - message.nouns), 3),
    ], dtype=np.float32)


def split_cosines(rows: np.ndarray, vec: np.ndarray, split: int) -> np.ndarray:
    """(n, 2): the cosines of `rows` to `vec` over dimensions [:split] and [split:], each encoder's own
    in the built-in vector (FusedEmbedder: e5's 384 then USE's 512); both the whole cosine when the
    vectors are not split that way (another embedder, the tests' small vectors)."""
    rows = np.atleast_2d(rows)
    if split <= 0 or rows.shape[1] <= split:
        whole = rows @ vec
        return np.stack([whole, whole], axis=1)
    out = []
    for a, b in ((rows[:, :split], vec[:split]), (rows[:, split:], vec[split:])):
        out.append((a @ b) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b), 1e-12))
    return np.stack(out, axis=1)


class Judge:
    """p(the written reply fits the message) for candidate pairs: boosted trees of depth 2 (fitted by
    scikit-learn's HistGradientBoostingClassifier, kept as arrays so a chat needs no pickle);
    `accept` is the p from which a line is said."""

    def __init__(self, path: Path = JUDGE_FILE) -> None:
        data = np.load(path)
        names = tuple(str(n) for n in data["features"])
        if names != FEATURES:
            raise ValueError(f"{path}: fitted on other features ({', '.join(names)}); refit with fit_judge")
        self.feature, self.threshold = data["feature"], data["threshold"]  # per node, all trees
        self.left, self.right, self.leaf, self.value = data["left"], data["right"], data["leaf"], data["value"]
        self.roots, self.baseline = data["roots"], float(data["baseline"])
        self.accept = float(data["accept"])
        self.floor = float(data["floor"])  # candidates below this cosine are not judged
        self.top_k = int(data["top_k"])
        self.split = int(data["split"])  # where the built-in vector's second encoder starts

    def p(self, x: np.ndarray) -> np.ndarray:
        """Probabilities for rows of `features`."""
        x = np.atleast_2d(x)
        out = np.empty(len(x))
        for r, row in enumerate(x):
            node = self.roots.copy()
            while not self.leaf[node].all():
                go_left = row[self.feature[node]] <= self.threshold[node]
                node = np.where(self.leaf[node], node, np.where(go_left, self.left[node], self.right[node]))
            out[r] = self.baseline + self.value[node].sum()
        return 1.0 / (1.0 + np.exp(-out))
