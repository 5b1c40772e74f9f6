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
    return [form for form, _ in tagged(text)]


def tagged(text: str) -> list[tuple[str, str]]:
    """`tokenize`'s terms with their Kiwi tags (English words: "SL")."""
    terms: list[tuple[str, str]] = []
    if re.search(r"[\uac00-\ud7a3]", text):
        for tok in _kiwi().tokenize(text):
            if tok.tag in _CONTENT_TAGS:
                if tok.tag == "SL":
                    for w in _WORD.findall(tok.form.lower()):
                        if w not in _EN_STOP:
                            terms.append((_stem(w), "SL"))
                elif tok.form not in _KO_STOP:
                    terms.append((tok.form, tok.tag))
        return terms
    for w in _WORD.findall(text.lower()):
        if w not in _EN_STOP:
            terms.append((_stem(w), "SL"))
    return terms


class BM25Index:
    """An in-memory inverted index over documents identified by their row number.

    Postings live in dicts (cheap to update one memory at a time); a query scores each term's
    postings as numpy arrays, cached per term until the term changes (100k memories: a common
    term has ~10k postings, which a Python loop took ~30 ms over)."""

    def __init__(self, k1: float = 1.2, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        self.postings: dict[str, dict[int, int]] = defaultdict(dict)
        self.lengths: dict[int, int] = {}
        self._total = 0
        self._arrays: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._doc_len = np.zeros(256, dtype=np.float32)
        self._terms_of: dict[int, list[str]] = {}

    def __len__(self) -> int:
        return len(self.lengths)

    def add(self, row: int, terms: list[str]) -> None:
        self.remove(row)
        counts = Counter(terms)
        for term, tf in counts.items():
            self.postings[term][row] = tf
            self._arrays.pop(term, None)
        self._terms_of[row] = list(counts)
        self.lengths[row] = len(terms)
        self._total += len(terms)
        if row >= len(self._doc_len):
            grown = np.zeros(max(row + 1, 2 * len(self._doc_len)), dtype=np.float32)
            grown[: len(self._doc_len)] = self._doc_len
            self._doc_len = grown
        self._doc_len[row] = len(terms)

    def remove(self, row: int) -> None:
        if row not in self.lengths:
            return
        self._total -= self.lengths.pop(row)
        self._doc_len[row] = 0
        for term in self._terms_of.pop(row, []):
            post = self.postings.get(term)
            if post is not None:
                post.pop(row, None)
                self._arrays.pop(term, None)
                if not post:
                    del self.postings[term]

    def _array(self, term: str) -> tuple[np.ndarray, np.ndarray] | None:
        got = self._arrays.get(term)
        if got is None:
            post = self.postings.get(term)
            if not post:
                return None
            got = (np.fromiter(post.keys(), dtype=np.int64, count=len(post)),
                   np.fromiter(post.values(), dtype=np.float32, count=len(post)))
            self._arrays[term] = got
        return got

    def scores(self, terms: list[str], n_rows: int) -> np.ndarray:
        """BM25 score of every row 0..n_rows-1 (zero where no term matches)."""
        out = np.zeros(n_rows, dtype=np.float32)
        n = len(self.lengths)
        if not n or not terms:
            return out
        avg = self._total / n or 1.0
        for term in set(terms):
            got = self._array(term)
            if got is None:
                continue
            rows, tf = got
            keep = rows < n_rows
            rows, tf = rows[keep], tf[keep]
            idf = math.log(1 + (n - len(self.postings[term]) + 0.5) / (len(self.postings[term]) + 0.5))
            norm = tf + self.k1 * (1 - self.b + self.b * self._doc_len[rows] / avg)
            out[rows] += idf * tf * (self.k1 + 1) / norm
        return out
