"""A multinomial logistic regression on two views of a message, kept as plain arrays (no pickle).

The views, side by side: the built-in fused e5 + USE sentence vector (the memory side, no query
adapter: what the message is about) and character 2-4-gram TF-IDF (scikit-learn's `char_wb`: how
it is said, "~하는 법", "몰래", "ㅋㅋ", "골라줘"). The safety head (safety.py) and the act head
(acts.py) are both this; `fit` and `save` are what their fit_* scripts call.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

NGRAMS = {"analyzer": "char_wb", "ngram_range": (2, 4), "sublinear_tf": True}  # TF-IDF settings, fit and use


def ngram_vectorizer(vocabulary: list[str] | None = None, idf: np.ndarray | None = None, **fit_args):
    """The TF-IDF view: unfitted (for fitting), or rebuilt from a stored vocabulary and idf."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(**NGRAMS, **fit_args, vocabulary=vocabulary)
    if idf is not None:
        vec.idf_ = idf
    return vec


class LinearHead:
    """coef (classes, d + n-grams), intercept (classes,), the n-gram vocabulary and idf; `extra`
    holds the file's other arrays (thresholds, class names)."""

    def __init__(self, path: Path) -> None:
        with np.load(path, allow_pickle=False) as data:
            self.coef = data["coef"].astype(np.float32)
            self.intercept = data["intercept"].astype(np.float32)
            self.dim = int(data["dim"])  # the sentence vector's size; the n-grams follow it
            self.ngrams = ngram_vectorizer(data["vocabulary"].tolist(), data["idf"])
            self.extra = {k: data[k] for k in data.files if k not in ("coef", "intercept", "dim", "vocabulary", "idf")}

    def proba(self, vec: np.ndarray, text: str) -> np.ndarray:
        """Class probabilities for one message."""
        grams = self.ngrams.transform([text]).toarray()[0].astype(np.float32)
        z = np.concatenate([vec.astype(np.float32), grams]) @ self.coef.T + self.intercept
        p = np.exp(z - z.max())
        return p / p.sum()


def fit(x: np.ndarray, texts: list[str], y: np.ndarray, c: float, class_weight: str | None = "balanced") -> Any:
    """(classifier, vectorizer) on [sentence vectors `x`, n-grams of `texts`]."""
    from scipy.sparse import csr_matrix, hstack
    from sklearn.linear_model import LogisticRegression

    grams = ngram_vectorizer(min_df=2, max_features=30000)
    feats = hstack([csr_matrix(x), grams.fit_transform(texts)]).tocsr()
    return LogisticRegression(C=c, max_iter=5000, class_weight=class_weight).fit(feats, y), grams


def proba(model: Any, x: np.ndarray, texts: list[str]) -> np.ndarray:
    """Class probabilities of a `fit` model, rows of `x` with their `texts`."""
    from scipy.sparse import csr_matrix, hstack

    clf, grams = model
    return clf.predict_proba(hstack([csr_matrix(x), grams.transform(texts)]).tocsr())


def save(path: Path, model: Any, dim: int, **extra: Any) -> None:
    """Write a `fit` model as LinearHead reads it, with `extra` arrays beside it."""
    clf, grams = model
    vocab = sorted(grams.vocabulary_, key=grams.vocabulary_.get)  # column order
    np.savez_compressed(path, coef=clf.coef_.astype(np.float32), intercept=clf.intercept_.astype(np.float32),
                        dim=np.int32(dim), vocabulary=np.array(vocab), idf=grams.idf_.astype(np.float64), **extra)
