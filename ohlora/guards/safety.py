"""Which messages a persona must not answer as asked: a linear head on the built-in embedder.

Three classes: 0 ordinary, 1 harmful (help to hurt someone or break the law), 2 crisis (the
user may hurt themselves). The head is a multinomial logistic regression on two views of the
message side by side: the fused e5 + USE sentence vector (the memory side, no query adapter:
what it is about) and character 2-4-gram TF-IDF (scikit-learn's, `char_wb`: how it asks,
"~하는 법", "몰래", "안 걸리게"). The n-grams halve the false alarms of the vector alone at the
same recall. Stored as plain arrays in `safety_head.npz` (no pickle);
`python -m ohlora.guards.fit_safety` refits it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
HEAD_FILE = HERE / "safety_head.npz"
LABELS = ("ordinary", "harmful", "crisis")


@dataclass(frozen=True)
class Verdict:
    label: str  # one of LABELS
    p_harmful: float
    p_crisis: float


NGRAMS = {"analyzer": "char_wb", "ngram_range": (2, 4), "sublinear_tf": True}  # TF-IDF settings, fit and use


def ngram_vectorizer(vocabulary: list[str] | None = None, idf: np.ndarray | None = None, **fit_args):
    """The TF-IDF view: unfitted (for fit_safety), or rebuilt from a stored vocabulary and idf."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(**NGRAMS, **fit_args, vocabulary=vocabulary)
    if idf is not None:
        vec.idf_ = idf
    return vec


class SafetyHead:
    """coef (3, d + n-grams), intercept (3,), the n-gram vocabulary and idf, and the threshold."""

    def __init__(self, path: Path = HEAD_FILE) -> None:
        with np.load(path, allow_pickle=False) as data:
            self.coef = data["coef"].astype(np.float32)
            self.intercept = data["intercept"].astype(np.float32)
            self.flag = float(data["flag"])  # p(harmful) + p(crisis) at or above: not ordinary
            self.dim = int(data["dim"])  # the sentence vector's size; the n-grams follow it
            self.ngrams = ngram_vectorizer(data["vocabulary"].tolist(), data["idf"])

    def verdict(self, vec: np.ndarray, text: str) -> Verdict:
        grams = self.ngrams.transform([text]).toarray()[0].astype(np.float32)
        z = np.concatenate([vec.astype(np.float32), grams]) @ self.coef.T + self.intercept
        p = np.exp(z - z.max())
        p /= p.sum()
        harmful, crisis = float(p[1]), float(p[2])
        if harmful + crisis < self.flag:
            return Verdict("ordinary", harmful, crisis)
        return Verdict("crisis" if crisis >= harmful else "harmful", harmful, crisis)
