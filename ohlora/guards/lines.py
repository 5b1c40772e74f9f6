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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

# cosine of the message to a written user turn (fused e5 + USE, memory side). Read blind on 280
# prompts, written lines were sensible 58 of 62 times at >= 0.9 and 48 of 113 at 0.82-0.9 (the
# adapter's own replies: 6 of 162). At 0.82, 51 of the 80 tell-then-ask questions (they need a
# told fact) were within reach of a line (which cannot use it), many off the point ("뭐 챙겨가면 좋을까?"
# -> what 오로라 likes). So only close matches.
THRESHOLD = 0.9
LINES_FILE = "lines.jsonl"  # next to train.jsonl
_SKIP_TAGS = {"memory", "clock", "refusal"}


@dataclass
class Lines:
    asked: list[str]  # the written user turns
    replies: list[str]
    vectors: np.ndarray  # (n, d), unit rows

    def best(self, vec: np.ndarray, said: Sequence[str] = ()) -> tuple[str, float] | None:
        """The reply to the closest written turn at or above THRESHOLD, not one already said."""
        if not self.replies:
            return None
        scores = self.vectors @ vec.astype(np.float32)
        done = set(said)
        for i in np.argsort(-scores):
            if scores[i] < THRESHOLD:
                return None
            if self.replies[i] not in done:
                return self.replies[i], float(scores[i])
        return None


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


def load_lines(train_file: Path, embedder: Any, cache_dir: Path) -> Lines:
    """The persona's standalone lines (`train_file` and the LINES_FILE beside it) and their vectors
    (from the cache when the files are unchanged)."""
    files = [f for f in (train_file, train_file.with_name(LINES_FILE)) if f.is_file()]
    if not files:
        return Lines([], [], np.zeros((0, 1), np.float32))
    rows: list[tuple[str, str]] = []
    for f in files:
        asked = {a for a, _ in rows}
        rows += [(a, r) for a, r in standalone_rows(f) if a not in asked]
    digest = hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()[:16]
    cached = cache_dir / f"lines-{digest}.npy"
    vectors = None
    if cached.is_file():
        vectors = np.load(cached)
        if vectors.shape[0] != len(rows):
            vectors = None
    if vectors is None:
        vectors = embedder.encode([a for a, _ in rows], kind="memory").astype(np.float32)
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(".tmp.npy")
        np.save(tmp, vectors)
        tmp.replace(cached)  # a crash mid-write leaves no half file behind
    return Lines([a for a, _ in rows], [r for _, r in rows], vectors)
