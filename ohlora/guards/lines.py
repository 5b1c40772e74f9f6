"""The persona's own written lines as replies, when a message is close to one they were written for.

The persona's `train.jsonl` holds a few thousand exchanges written for it, and `lines.jsonl`
(same shape, kept apart so the training mix stays as written) more first messages with a reply
written to be said as it is. When a new message is close to the user turn of one of them
(cosine >= THRESHOLD on the built-in embedder's vectors), the written reply is a better answer
than what a small model writes: read blind,
the shipped adapters' own replies made sense 6 times in 162, the written lines at >= 0.9
58 in 62. Only exchanges that stand alone are used: the first turn of a row, no
`memory` field (its reply may use a fact this user never told), no clock (its reply names a
time) and no refusal (the safety check answers those). A line already said in the
conversation is not said again.

The vectors of a persona's lines are computed once (in the background; ~20 s for 1,400
lines on 2 cores) and cached under the cache folder, keyed by the file's hash.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from memory.lexical import tokenize
from ohlora.guards import clock

# cosine of the message to a written user turn (fused e5 + USE, memory side). Read blind on 280
# prompts, written lines were sensible 58 of 62 times at >= 0.9 and 48 of 113 at 0.82-0.9 (the
# adapter's own replies: 6 of 162). At 0.82, 51 of the 80 tell-then-ask questions (they need a
# told fact) were within reach of a line (which cannot use it), many off the point ("뭐 챙겨가면 좋을까?"
# -> what 오로라 likes). So only close matches. With lines.jsonl (twice the lines), on 120 new
# prompts read blind: 44 of 53 lines sensible, most misses called the persona by name (hence
# without_names) or were a couple of letters ("ㅎㅇ" -> "ㄹㅇ"'s reply).
THRESHOLD = 0.9
# Below it, down to NEAR, a line is said when the words agree (words_agree): "초능력 하나 가질수
# 있으면 뭐 고를래" for "초능력 하나 가질수 있으면 뭐할래?" (0.896), "토니식 농담 하나 해봐" for "토니
# 농담 하나만" (0.897). Read on the dev prompts (bench/prompts, fresh2): with the written turn's
# words 60% of the message's, 18 more lines, 4 off the point ("점심 뭐먹지 추천좀" -> "잘했어! 뭐
# 먹었어?", the one word left over asks for something); with 75%, 9 more, 1 off the point.
NEAR = 0.8
MESSAGE_SHARE = 0.75
# Tony answers 존댓말 in 존댓말 and 반말 in 반말: a written turn in the user's register is taken
# over a closer one in the other when it is at most this much further ("치즈버거 좋아해?" got "인생
# 음식이에요").
REGISTER_MARGIN = 0.06
LINES_FILE = "lines.jsonl"  # next to train.jsonl
CHUNK = 256  # lines embedded at a time on a first start
_SKIP_TAGS = {"memory", "clock", "refusal"}


# a name the user calls the persona by, with what Korean hangs on it ("오로라야", "토니는", "로라 님")
_AFTER_NAME = r"(?:\s?님|\s?씨|야|아|이|은|는|가|도|랑|한테|의)?"
_SQUASH = re.compile(r"[\s\W_]+")
_WORDS = re.compile(r"[가-힣A-Za-z0-9]")


def without_names(text: str, names: Sequence[str]) -> str:
    """`text` without the persona's names: every message is to the persona, so its name says
    nothing about what is asked, and it made unlike messages close ("오로라 mbti 뭐야?" matched
    "오로라 너 뭐 하고 있어?")."""
    if not names:
        return text.strip()
    alt = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    out = re.sub(rf"(?<![\w가-힣])(?:{alt}){_AFTER_NAME}(?![\w가-힣])", " ", text, flags=re.I)
    return re.sub(r"\s+([,.!?])", r"\1", re.sub(r"\s+", " ", out)).strip(" ,.~!")


def squashed(text: str) -> str:
    """`text` without spaces, punctuation and repeated letters ("ㅋㅋㅋㅋ" -> "ㅋ")."""
    return re.sub(r"(.)\1+", r"\1", _SQUASH.sub("", text.lower()))


def words_agree(message: set[str], asked: frozenset[str]) -> bool:
    """Every content word of the written turn is in the message, and they are most of the message's
    (memory.lexical's morphemes)."""
    return bool(asked) and asked <= message and len(asked) >= MESSAGE_SHARE * len(message)


@dataclass
class Lines:
    asked: list[str]  # the written user turns
    replies: list[str]
    vectors: np.ndarray  # (n, d), unit rows
    terms: list[frozenset[str]] = field(default_factory=list, repr=False)  # asked[i]'s words (memory.lexical)

    def best(self, vec: np.ndarray, said: Sequence[str] = (), text: str | None = None,
             polite: bool | None = None) -> tuple[str, float] | None:
        """The reply to the closest written turn at or above THRESHOLD, or at or above NEAR when its
        words agree with `text`'s; not one already said. With `polite` (the user's register, for a
        persona that answers in it), a turn written in that register if one is within
        REGISTER_MARGIN of the closest."""
        if not self.replies:
            return None
        scores = self.vectors @ vec.astype(np.float32)
        done = set(said)
        # "ㅎㅇ", "ㅋㅋ", "헐": too little for a sentence vector to place ("ㅎㅇ" was next to "ㄹㅇ", "헐" to
        # "흠"): the same text only
        bare = squashed(text) if text is not None else None
        if bare is not None and _WORDS.search(text) and len(bare) > 2:
            bare = None
        words: set[str] | None = None
        first: tuple[str, float] | None = None  # the closest, in either register
        for i in np.argsort(-scores):
            if scores[i] < NEAR or (first is not None and scores[i] < first[1] - REGISTER_MARGIN):
                break
            if self.replies[i] in done or (bare is not None and squashed(self.asked[i]) != bare):
                continue
            if scores[i] < THRESHOLD:
                if text is None:
                    break
                words = set(tokenize(text)) if words is None else words
                asked = self.terms[i] if i < len(self.terms) else frozenset(tokenize(self.asked[i]))
                if not words_agree(words, asked):
                    continue
            if polite is None or clock.polite(self.asked[i]) == polite:
                return self.replies[i], float(scores[i])
            first = first or (self.replies[i], float(scores[i]))
        return first


def standalone_rows(path: Path) -> list[tuple[str, str]]:
    """(user turn, written reply) of the rows whose first exchange stands on its own."""
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        obj = json.loads(line)
        if obj.get("memory") or obj.get("now") or _SKIP_TAGS & set(obj.get("tags") or ()):
            continue
        msgs = [m for m in obj["messages"] if m["role"] != "system"]
        if len(msgs) < 2 or msgs[0]["role"] != "user" or msgs[1]["role"] != "assistant":
            continue
        asked = msgs[0]["content"].strip()
        if asked and asked not in seen:
            seen.add(asked)
            out.append((asked, msgs[1]["content"].strip()))
    return out


def load_lines(train_file: Path, embedder: Any, cache_dir: Path,
               partial: Callable[[Lines], None] | None = None, names: Sequence[str] = ()) -> Lines:
    """The persona's standalone lines (the LINES_FILE beside `train_file`, then `train_file`) and
    their vectors (from the cache when the files are unchanged). Computing them takes a while on
    a first start (~30 s for 2,000 lines on 2 cores): `partial` gets the lines done so far after
    each CHUNK, the written first messages first, so the first messages of a chat can use them.
    The written turns are matched without the persona's `names` (without_names)."""
    files = [f for f in (train_file.with_name(LINES_FILE), train_file) if f.is_file()]
    if not files:
        return Lines([], [], np.zeros((0, 1), np.float32))
    rows: list[tuple[str, str]] = []
    for f in files:
        asked = {a for a, _ in rows}
        for a, r in standalone_rows(f):
            a = without_names(a, names)
            if a and a not in asked:
                asked.add(a)
                rows.append((a, r))
    asked_all, replies = [a for a, _ in rows], [r for _, r in rows]
    terms = [frozenset(tokenize(a)) for a in asked_all]  # here, in the loading thread: Kiwi loads off the chat's path
    digest = hashlib.sha256(b"".join(f.read_bytes() for f in files) + "\n".join(names).encode()).hexdigest()[:16]
    cached = cache_dir / f"lines-{digest}.npy"
    if cached.is_file():
        vectors = np.load(cached)
        if vectors.shape[0] == len(rows):
            return Lines(asked_all, replies, vectors, terms)
    done: list[np.ndarray] = []
    for start in range(0, len(rows), CHUNK):
        done.append(embedder.encode(asked_all[start:start + CHUNK], kind="memory").astype(np.float32))
        if partial is not None and start + CHUNK < len(rows):
            n = start + CHUNK
            partial(Lines(asked_all[:n], replies[:n], np.concatenate(done), terms[:n]))
    vectors = np.concatenate(done) if done else np.zeros((0, 1), np.float32)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(".tmp.npy")
    np.save(tmp, vectors)
    tmp.replace(cached)  # a crash mid-write leaves no half file behind
    return Lines(asked_all, replies, vectors, terms)
