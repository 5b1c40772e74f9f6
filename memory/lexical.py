"""Lexical side of recall: Kiwi morphemes (Korean) and plain words (English), scored by BM25."""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from functools import lru_cache

import numpy as np

# Kiwi tags kept as content: nouns, proper nouns, numerals, verb/adjective stems, roots,
# foreign (Latin) words, numbers and Hanja.
_CONTENT_TAGS = {"NNG", "NNP", "NR", "VV", "VA", "XR", "SL", "SN", "SH", "VV-R", "VA-R", "VV-I", "VA-I"}
_KO_STOP = {"있", "없", "하", "되", "것", "수", "때", "좀", "같", "이", "그", "저", "나", "너", "우리", "보"}
_EN_STOP = set(
    """a an the and or but if of to in on at for from by with about as is am are was were be been being do does did
    have has had i i'm im me my mine you your we our they their he she it its this that these those what which who whom
    how when where why can could should would will just so not no yes very really all any some m s t ll ve re d""".split()
)
_WORD = re.compile(r"[a-z0-9]+")


@lru_cache(maxsize=1)
def _kiwi():
    from kiwipiepy import Kiwi

    return Kiwi()


def _stem(word: str) -> str:
    """A tiny English suffix stripper (plural, -ing, -ed); enough to match 'runs'/'running'."""
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def tokenize(text: str) -> list[str]:
    """Content terms of `text`: Kiwi morphemes for Korean, stemmed lowercase words for the rest."""
    terms: list[str] = []
    if re.search(r"[\uac00-\ud7a3]", text):
        for tok in _kiwi().tokenize(text):
            if tok.tag in _CONTENT_TAGS:
                if tok.tag == "SL":
                    for w in _WORD.findall(tok.form.lower()):
                        if w not in _EN_STOP:
                            terms.append(_stem(w))
                elif tok.form not in _KO_STOP:
                    terms.append(tok.form)
        return terms
    for w in _WORD.findall(text.lower()):
        if w not in _EN_STOP:
            terms.append(_stem(w))
    return terms


class BM25Index:
    """An in-memory inverted index over documents identified by their row number."""

    def __init__(self, k1: float = 1.2, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        self.postings: dict[str, dict[int, int]] = defaultdict(dict)
        self.lengths: dict[int, int] = {}
        self._total = 0

    def __len__(self) -> int:
        return len(self.lengths)

    def add(self, row: int, terms: list[str]) -> None:
        self.remove(row)
        for term, tf in Counter(terms).items():
            self.postings[term][row] = tf
        self.lengths[row] = len(terms)
        self._total += len(terms)

    def remove(self, row: int) -> None:
        if row not in self.lengths:
            return
        self._total -= self.lengths.pop(row)
        for term in [t for t, p in self.postings.items() if row in p]:
            del self.postings[term][row]
            if not self.postings[term]:
                del self.postings[term]

    def scores(self, terms: list[str], n_rows: int) -> np.ndarray:
        """BM25 score of every row 0..n_rows-1 (zero where no term matches)."""
        out = np.zeros(n_rows, dtype=np.float32)
        n = len(self.lengths)
        if not n or not terms:
            return out
        avg = self._total / n or 1.0
        for term in set(terms):
            post = self.postings.get(term)
            if not post:
                continue
            idf = math.log(1 + (n - len(post) + 0.5) / (len(post) + 0.5))
            for row, tf in post.items():
                norm = tf + self.k1 * (1 - self.b + self.b * self.lengths[row] / avg)
                if row < n_rows:
                    out[row] += idf * tf * (self.k1 + 1) / norm
        return out
