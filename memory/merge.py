"""When a new fact meets the memories already kept: the same one said again, an update of one, or new.

`MemoryStore.observe` asks these questions of the closest active memory; the answers decide
whether it updates that row, supersedes it, or inserts a new one.
"""

from __future__ import annotations

import re
from typing import Sequence

from memory import about
from memory.lexical import tokenize
from memory.types import Memory

# Cosines of the built-in (centred) embedder on memory/bench/*.json: two different memories at
# most 0.80; rewordings of one fact ("나 땅콩 알레르기 있어" / "...알레르기가 있어") 0.92-0.98.
DUP_COSINE = 0.88  # near-duplicate: cosine at least this AND most content words shared
DUP_OVERLAP = 0.8  # ... or the content words of one contain the other's ("오이 싫어해" / "나 오이 진짜 싫어해")
# An embedder may carry its own `dup_cosine` and `update_cosine` (each model's cosines live on
# their own scale); these are the defaults.
UPDATE_COSINE = 0.80  # an update ("이제", "바꿨어", "미뤄졌어") of a memory at least this close supersedes it
_UPDATE_MARK = re.compile(
    r"(이제|이젠|바꿨|바꾸었|바뀌었|바뀜|미뤄|미뤘|당겨졌|옮겼|변경|취소|그만|끊었|포기|더\s*이상|안\s*해|관뒀|헤어졌|이사했|"
    r"이직했|새로|대신|갈아타|갈아탔|갈아탐|연기(됐|했|됨|되었)|다시\s|쉬고\s*있|"
    r"팔았|처분|전학|발령|이동\s*(했|함|됨|떴)|내려왔|올라왔|이사\s*(함|감|왔|옴|갔)|옮겨|옮김|그만둠|그만두고|관둠|"
    r"끊음|끊은\s*지|바꿈|바꾸고|미룸|타협|새\s*(학교|회사|직장|팀장|집|차|폰|핸드폰)|(다음|담)\s*(주|달)(\([-\dW]+\))?부터)|"
    r"\b(now|anymore|no longer|changed|moved|switched|quit|postponed|pushed|cancell?ed|rescheduled|instead|stopped|"
    r"gave up|replaced|traded in|upgraded|sold|from (here|now) on|starting (next|this)|going by|started seeing|"
    r"transferred|relocated|new (job|place|apartment|school|phone|car|therapist|doctor))\b",
    re.I,
)


def overlap(a: str, b: str) -> float:
    """How much two texts say the same: 1.0 when one's content words contain the other's, else Jaccard
    ("요즘 기타 배우고 있어" / "요즘 요가 배우고 있어": 0.5, two facts)."""
    ta, tb = set(tokenize(a)), set(tokenize(b))
    if not ta or not tb:
        return 1.0 if a.strip() == b.strip() else 0.0
    if ta <= tb or tb <= ta:
        return 1.0
    return len(ta & tb) / len(ta | tb)


def is_duplicate(old: Memory, text: str, slot: str | None, cosine: float, dup_cosine: float) -> bool:
    """Is `text` (of `slot`) `old` said again: at least `dup_cosine` close, no other slot, and most
    of the same content words?"""
    return cosine >= dup_cosine and old.slot in (None, slot) and overlap(old.text, text) >= DUP_OVERLAP


def is_update(text: str, old: Memory, cosine: float, update_cosine: float) -> bool:
    """Does `text` update `old` ("결혼식 6월 20일로 미뤄졌어" after "결혼식 날짜 5월 16일로 잡았어")?
    It says so ("이제", "바꿨어", "미뤄졌어", "갈아탔어", "now", "moved"...), is at least `update_cosine`
    close to it, and names a content word of it or the same one of a kind (memory.about: a phone,
    a sister...)."""
    if cosine < update_cosine or not _UPDATE_MARK.search(text):
        return False
    return _same_thing(tokenize(text), tokenize(old.text))


def _same_thing(new_terms: Sequence[str], old_terms: Sequence[str]) -> bool:
    """A content word in common, or the same one of a kind (memory.about)."""
    shared = set(new_terms) & set(old_terms)
    return any(len(t) >= 2 for t in shared) or about.same_one(list(new_terms), list(old_terms))


# At recall, two memories that both answer the query and were said on different days: the later
# one supersedes the earlier when it says it changed (the update words above, less the two that
# also mean "new" or "so far": "러닝화 새로 샀다" after "요즘 러닝 시작했어", "my long runs are up to
# 28 km now") and they are about the same thing (at least PAIR_COSINE close, a shared content
# word, or the same one of a kind). Measured on the dev dialogue sets (longmem_ko, longmem_dev2):
# 0.4, 0.5 and 0.6 decide alike; without the cosine, half the gain.
PAIR_COSINE = 0.5
_NOT_A_CHANGE = {"새로", "now"}


def changed_by(new_text: str, new_terms: Sequence[str], old_terms: Sequence[str], pair_cosine: float) -> bool:
    """Does the later memory `new_text` say that what the earlier one (`old_terms`) says has changed?"""
    if not any(m.group(0).strip().lower() not in _NOT_A_CHANGE for m in _UPDATE_MARK.finditer(new_text)):
        return False
    return pair_cosine >= PAIR_COSINE or _same_thing(new_terms, old_terms)
