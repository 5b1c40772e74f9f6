"""The keep head: is a user message worth a memory when no extraction rule matched it?

The rules in `extract.py` know the usual ways of telling a fact; people have more ("월수금은 수영
가", "이제 쏘렌토 타", "Sam got promoted to charge nurse!"). For a message the rules kept nothing of,
a logistic regression on its sentence vector (the built-in embedder's memory vector) says whether
it tells something about the user's life (store) or is small talk, a question, today's log,
hearsay or pasted text (skip). Fitted by `python -m memory.fit_keep` on `memory/keep_train.jsonl`;
it only runs with the embedder it was fitted on (another embedder's vectors mean nothing to it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

KEEP_FILE = Path(__file__).with_name("keep_head.npz")


class KeepHead:
    def __init__(self, w: np.ndarray, b: float, threshold: float, embedder_name: str) -> None:
        self.w, self.b, self.threshold, self.embedder_name = w.astype(np.float32), float(b), float(threshold), embedder_name

    @classmethod
    def load(cls, path: Path = KEEP_FILE) -> "KeepHead | None":
        if not path.is_file():
            return None
        z = np.load(path)
        return cls(z["w"], float(z["b"]), float(z["threshold"]), str(z["embedder"]))

    def save(self, path: Path = KEEP_FILE) -> None:
        np.savez(path, w=self.w.astype(np.float16), b=np.float32(self.b), threshold=np.float32(self.threshold),
                 embedder=np.array(self.embedder_name))

    def proba(self, vecs: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(vecs.astype(np.float32) @ self.w + self.b)))


def keep_judge(embedder, head: KeepHead | None = None) -> Callable[[str], bool] | None:
    """`extract()`'s `keep` callback for this embedder, or None when the head was fitted on another."""
    head = head or KeepHead.load()
    if head is None or getattr(embedder, "name", None) != head.embedder_name:
        return None

    def keep(text: str) -> bool:
        return bool(head.proba(embedder.encode([text], kind="memory"))[0] >= head.threshold)

    return keep
