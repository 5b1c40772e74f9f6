"""The in-memory search side: a float32 matrix of memory vectors, searched with numpy.

Rows are appended in insertion order (so a higher row is a newer memory) into a buffer that
grows by doubling; forgotten or superseded memories are masked out, not moved.
"""

from __future__ import annotations

import numpy as np


class VectorIndex:
    def __init__(self, dim: int, capacity: int = 256) -> None:
        self.dim = dim
        self.vecs = np.zeros((capacity, dim), dtype=np.float32)
        self.ids = np.zeros(capacity, dtype=np.int64)
        self.active = np.zeros(capacity, dtype=bool)
        self.persona = np.zeros(capacity, dtype=np.int32)  # 0: no persona
        # day ordinals: when the memory was said, and the span of the date it mentions (0: none)
        self.said = np.zeros(capacity, dtype=np.int32)
        self.ev_lo = np.zeros(capacity, dtype=np.int32)
        self.ev_hi = np.zeros(capacity, dtype=np.int32)
        self.n = 0
        self.row_of: dict[int, int] = {}
        self._persona_codes: dict[str, int] = {}
        self._bf16 = None  # torch bfloat16 mirror of vecs, built for large matrices only
        self._bf16_n = 0

    def __len__(self) -> int:
        return int(self.active[: self.n].sum())

    def persona_code(self, persona: str | None, create: bool = True) -> int:
        if not persona:
            return 0
        if persona not in self._persona_codes and create:
            self._persona_codes[persona] = len(self._persona_codes) + 1
        return self._persona_codes.get(persona, -1)

    def _grow(self, need: int) -> None:
        cap = len(self.ids)
        if need <= cap:
            return
        new = max(need, cap * 2)
        for name in ("vecs", "ids", "active", "persona", "said", "ev_lo", "ev_hi"):
            old = getattr(self, name)
            arr = np.zeros((new, *old.shape[1:]), dtype=old.dtype)
            arr[: self.n] = old[: self.n]
            setattr(self, name, arr)

    def add_many(self, ids: list[int], vecs: np.ndarray, personas: list[str | None], active: list[bool],
                 days: list[tuple[int, int, int]] | None = None) -> None:
        """`days`: per memory (said, event first day, event last day) as day ordinals (0: unknown)."""
        self._grow(self.n + len(ids))
        sl = slice(self.n, self.n + len(ids))
        self.vecs[sl] = vecs
        self.ids[sl] = ids
        self.active[sl] = active
        self.persona[sl] = [self.persona_code(p) for p in personas]
        if days:
            arr = np.asarray(days, dtype=np.int32).reshape(len(ids), 3)
            self.said[sl], self.ev_lo[sl], self.ev_hi[sl] = arr[:, 0], arr[:, 1], arr[:, 2]
        for i, mid in enumerate(ids):
            self.row_of[mid] = self.n + i
        self.n += len(ids)

    def set_vector(self, mid: int, vec: np.ndarray) -> None:
        row = self.row_of[mid]
        self.vecs[row] = vec
        if self._bf16 is not None and row < self._bf16_n:
            import torch

            self._bf16[row] = torch.from_numpy(np.asarray(vec, dtype=np.float32)).to(torch.bfloat16)

    def set_event(self, mid: int, lo: int, hi: int) -> None:
        row = self.row_of[mid]
        self.ev_lo[row], self.ev_hi[row] = lo, hi

    def in_period(self, lo: int, hi: int) -> np.ndarray:
        """Rows said during days lo..hi, or whose mentioned date overlaps them."""
        n = self.n
        said = (self.said[:n] >= lo) & (self.said[:n] <= hi)
        event = (self.ev_lo[:n] > 0) & (self.ev_lo[:n] <= hi) & (self.ev_hi[:n] >= lo)
        return said | event

    def set_active(self, mid: int, value: bool) -> None:
        row = self.row_of.get(mid)
        if row is not None:
            self.active[row] = value

    def mask(self, persona: str | None) -> np.ndarray:
        m = self.active[: self.n].copy()
        if persona:
            code = self.persona_code(persona, create=False)
            m &= (self.persona[: self.n] == 0) | (self.persona[: self.n] == code)
        return m

    def cosine(self, query: np.ndarray) -> np.ndarray:
        """Cosine of `query` (normalised) with every row 0..n-1.

        One matrix-vector product is memory-bound: extra BLAS threads only spin (measured
        35 ms instead of 0.1 ms at 1k rows on a busy 2-core machine), so small matrices use
        einsum and mid-size ones single-threaded BLAS. Large ones (> 20k rows) first score a
        bfloat16 copy (half the bytes to read), then recompute the best rows in float32, so
        the top of the ranking is exact.
        """
        mat, q = self.vecs[: self.n], query.astype(np.float32)
        if self.n <= _EINSUM_ROWS:
            return np.einsum("ij,j->i", mat, q)
        if self.n <= _BF16_ROWS:
            with _one_blas_thread():
                return mat @ q
        import torch

        from memory.embed import torch_threads

        low = self._bf16_matrix()
        with torch.inference_mode(), torch_threads(1):
            scores = torch.mv(low, torch.from_numpy(q).to(torch.bfloat16)).float().numpy()
        top = np.argpartition(-scores, _RERANK)[:_RERANK]
        scores[top] = np.einsum("ij,j->i", mat[top], q)
        return scores

    def _bf16_matrix(self):
        import torch

        cap = len(self.ids)
        if self._bf16 is None or self._bf16.shape[0] != cap:
            self._bf16 = torch.zeros((cap, self.dim), dtype=torch.bfloat16)
            self._bf16_n = 0
        if self._bf16_n < self.n:
            self._bf16[self._bf16_n : self.n] = torch.from_numpy(self.vecs[self._bf16_n : self.n]).to(torch.bfloat16)
            self._bf16_n = self.n
        return self._bf16[: self.n]


_BF16_ROWS = 20000
_RERANK = 256
_EINSUM_ROWS = 4096


def _one_blas_thread():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with sentence-transformers
        import contextlib

        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")
