"""The persona's own written lines as replies, when a message is close to one they were written for.

The persona's `train.jsonl` holds a few thousand exchanges written for it, and `lines.jsonl`
(same shape, kept apart so the training mix stays as written) more first messages with a reply
written to be said as it is. When a new message is close to the user turn of one of them
(the built-in embedder's vectors) and the judge (judge.py) finds that the written reply fits it,
the written reply is a better answer than what a small model writes: read blind,
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
from functools import lru_cache
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ohlora.guards import clock
from ohlora.guards.judge import Judge, Parts, features, parts, split_cosines

# Which written line, if any, is said is the judge's call (judge.py): the closest TOP_K written turns
# at cosine >= its floor (0.78) are scored, the likeliest to fit is said when p >= its `accept` (0.5).
# Before it, a line was said at cosine >= 0.9 (or 0.8-0.9 when the words agreed); on 3,324 labelled
# messages (fit_judge --kfold 5) cosine >= 0.9 said a line for 528, 379 fitting; the judge at 0.5 says
# one for 870, 624 fitting ("요즘 왜케 외롭지.. 그냥 얘기 좀 하자" gets "요즘따라 왜케 외롭지"'s reply
# at 0.89; "오늘 또 머리 깨질 것 같아", at 0.92 from the haircut, gets p 0.48: not the haircut's reply at 0.5, but it is
# said from ACCEPT_ALONE).
# Tony answers 존댓말 in 존댓말 and 반말 in 반말: of the lines the judge accepts, one written in the
# user's register is taken first ("치즈버거 좋아해?" got "인생 음식이에요"); besides the closest top_k, up
# to REGISTER_EXTRA turns in the user's register within REGISTER_MARGIN of the closest are judged too.
# When the model's prompt would hold no memory recalled for the message, the model has nothing a
# written line lacks, and a line is said from p >= ACCEPT_ALONE: read blind (2026-12-07, the dev prompt
# sets, one reader, shuffled), the lines at p 0.3-0.5 made sense 47 times in 88 (0.3-0.4: 23 of 47,
# 0.4-0.5: 24 of 41), the model's replies to the same messages 2 times in 88. With a recalled memory
# (it may hold what the message needs: "뭐 챙겨가면 좋을까?" after "다음 주에 부산 가"), the judge's own 0.5.
ACCEPT_ALONE = 0.3
REGISTER_MARGIN = 0.06
REGISTER_EXTRA = 2
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


# "우리 고양이 이름 뭐였지?", "어디라고 했더라", "나 뭐 좋아하는지 기억나?", "do you remember my dog's name":
# the user asks for something they told; a written line cannot know it ("우리 고양이 이름 뭐였지?" got the
# reply written for "우리 고양이 자랑해도 돼?"), the recalled memories in the model's prompt can
_ASKS_TOLD = re.compile(
    r"(뭐|뭘|무엇|어디|언제|누구|누가|몇|무슨|어떤|얼마|이름)\S*\s*(\S+\s+)?\S*(였|이었|었|았|했|랬|댔)(지|더라|던가|었나|나)\s*[?.~!ㅋㅎ]*$"
    r"|(라고|다고|냐고|이라고)\s*(했|그랬|말했|얘기했)(지|더라|던가|었나|나|니|냐)\s*[?.~!ㅋㅎ]*$|(라고|다고)\s*했어\s*\?"
    r"|기억\s*(나|해|하니|하지|하냐|하고|나니|돼)\S*\s*[?.~!ㅋㅎ]*$"
    r"|내가\s*(말|얘기|애기)\s*(했|한)"
    r"|\b(do|did) (you|u) remember\b|\bwhat did i (tell|say|mention)\b|\bdid i (tell|mention)\b|\bremind me what\b",
    re.I,
)


def asks_what_was_told(text: str) -> bool:
    """The message asks for something the user told earlier: no written line for it."""
    return bool(_ASKS_TOLD.search(text.strip()))


def squashed(text: str) -> str:
    """`text` without spaces, punctuation and repeated letters ("ㅋㅋㅋㅋ" -> "ㅋ")."""
    return re.sub(r"(.)\1+", r"\1", _SQUASH.sub("", text.lower()))


@lru_cache(maxsize=1)
def default_judge() -> Judge:
    return Judge()


@dataclass
class Lines:
    asked: list[str]  # the written user turns
    replies: list[str]
    vectors: np.ndarray  # (n, d), unit rows
    # what the judge reads of asked[i] and replies[i], read when first judged (~2 ms each)
    _parts: dict[tuple[int, bool], Parts] = field(default_factory=dict, repr=False)

    def _read(self, i: int, reply: bool = False) -> Parts:
        if (i, reply) not in self._parts:
            self._parts[i, reply] = parts(self.replies[i] if reply else self.asked[i])
        return self._parts[i, reply]

    def best(self, vec: np.ndarray, text: str, said: Sequence[str] = (), polite: bool | None = None,
             judge: Judge | None = None, accept: float | None = None) -> tuple[str, float] | None:
        """(reply, p) of the written turn the judge finds likeliest to fit `text` (whose vector is
        `vec`), when p >= `accept` (the judge's own by default); not one already said. With `polite`
        (the user's register, for a persona that answers in it), an accepted turn in that register
        is taken first."""
        if not self.replies:
            return None
        judge = judge or default_judge()
        accept = judge.accept if accept is None else accept
        scores = self.vectors @ vec.astype(np.float32)
        done = set(said)
        # "ㅎㅇ", "ㅋㅋ", "헐": too little for a sentence vector to place ("ㅎㅇ" was next to "ㄹㅇ", "헐" to
        # "흠"): the same text only
        bare = squashed(text)
        if _WORDS.search(text) and len(bare) > 2:
            bare = None
        picked: list[int] = []
        extra = 0  # turns in the user's register judged beyond the closest top_k
        for i in np.argsort(-scores):
            if scores[i] < judge.floor:
                break
            if self.replies[i] in done:
                continue
            if bare is not None:
                if squashed(self.asked[i]) == bare:
                    return self.replies[i], 1.0
                continue
            if len(picked) < judge.top_k:
                picked.append(int(i))
            elif polite is None or extra == REGISTER_EXTRA or scores[i] < scores[picked[0]] - REGISTER_MARGIN:
                break
            elif clock.polite(self.asked[i]) == polite:
                picked.append(int(i))
                extra += 1
        if not picked:
            return None
        message = parts(text)
        top = float(scores[picked[0]])
        each = split_cosines(self.vectors[picked], vec.astype(np.float32), judge.split)
        p = judge.p(np.stack([features(message, self._read(i), self._read(i, reply=True), float(scores[i]), top, *each[k])
                              for k, i in enumerate(picked)]))
        fits = sorted((k for k in range(len(picked)) if p[k] >= accept), key=lambda k: -p[k])
        if polite is not None:
            fits = sorted(fits, key=lambda k: clock.polite(self.asked[picked[k]]) != polite)  # stable: by p within
        return (self.replies[picked[fits[0]]], float(p[fits[0]])) if fits else None


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
    each CHUNK, the shortest written turns first ("ㅎㅇ", "안녕 처음 왔어": what a new user opens with),
    so the first messages of a chat can use them.
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
    rows.sort(key=lambda row: len(row[0]))  # stable: the lines file's rows before train.jsonl's of a length
    asked_all, replies = [a for a, _ in rows], [r for _, r in rows]
    parts("워밍업")  # Kiwi loads here, in the loading thread, not on the chat's path
    digest = hashlib.sha256(b"by length\n" + b"".join(f.read_bytes() for f in files) + "\n".join(names).encode()).hexdigest()[:16]
    cached = cache_dir / f"lines-{digest}.npy"
    if cached.is_file():
        vectors = np.load(cached)
        if vectors.shape[0] == len(rows):
            return Lines(asked_all, replies, vectors)
    # the chunks done so far are kept as they come: a chat closed before the end resumes from them
    part_file = cache_dir / f"lines-{digest}.part.npy"
    done: list[np.ndarray] = []
    if part_file.is_file():
        try:
            kept = np.load(part_file)
            if kept.shape[0] % CHUNK == 0 and kept.shape[0] < len(rows):
                done.append(kept.astype(np.float32))
        except (OSError, ValueError):
            pass  # a damaged file: start again
    if done and partial is not None:
        n = len(done[0])
        partial(Lines(asked_all[:n], replies[:n], done[0]))
    cache_dir.mkdir(parents=True, exist_ok=True)
    for start in range(sum(len(d) for d in done), len(rows), CHUNK):
        done.append(embedder.encode(asked_all[start:start + CHUNK], kind="memory").astype(np.float32))
        n = start + CHUNK
        if n < len(rows):
            so_far = np.concatenate(done)
            _save(part_file, so_far)
            if partial is not None:
                partial(Lines(asked_all[:n], replies[:n], so_far))
    vectors = np.concatenate(done) if done else np.zeros((0, 1), np.float32)
    _save(cached, vectors)
    part_file.unlink(missing_ok=True)
    return Lines(asked_all, replies, vectors)


def _save(path: Path, array: np.ndarray) -> None:
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, array)
    tmp.replace(path)  # a crash mid-write leaves no half file behind
