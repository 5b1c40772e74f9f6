"""Names in one place: the inference backends and the memory embedders.

The backend table lives with the backends (`ohlora.backends.BACKENDS`, so config
validation needs nothing above it) and is re-exported here; the embedder table is here,
where the app wires the memory package to its models. Config validation, the CLI's
`--backend` / `--embedder` choices, the help texts and the loaders all read these tables.
Loading is lazy (heavy imports happen on first use).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from ohlora.backends import BACKENDS, DEFAULT_BACKEND, EnginePool, backend_names, load_backend, resolve_base_for

if TYPE_CHECKING:
    from ohlora.config import Settings

__all__ = ["BACKENDS", "DEFAULT_BACKEND", "EMBEDDERS", "EnginePool", "backend_names", "embedder_help",
           "load_backend", "make_embedder", "open_memory", "resolve_base_for", "share_embedder"]


# -- embedders ----------------------------------------------------------------------
@dataclass(frozen=True)
class EmbedderEntry:
    name: str
    help: str
    make: Callable[[Callable[[str], None] | None], Any]


def _builtin(say):
    from memory.gemma_onnx import gemma_onnx_embedder

    return gemma_onnx_embedder(_gemma_dir(say), cache_dir=_models_dir() / "onnx",
                               calibration=calibration_texts, say=say)


def _gemma_torch(say):
    from memory.embed import gemma_embedder

    return gemma_embedder(_gemma_dir(say))


def _minilm(say):
    from memory.embed import minilm_embedder

    return minilm_embedder()


def _hash(say):
    from memory.embed import HashEmbedder

    return HashEmbedder()


EMBEDDERS: dict[str, EmbedderEntry] = {
    e.name: e
    for e in (
        EmbedderEntry("", "built-in: Gemma 3 270M, int8 ONNX copy built once on first use", _builtin),
        EmbedderEntry("gemma-torch", "the built-in model through sentence-transformers in torch", _gemma_torch),
        EmbedderEntry("minilm", "the packaged English MiniLM (nearly blind to Korean)", _minilm),
        EmbedderEntry("hash", "character n-gram hashing: no model (tests, tiny machines)", _hash),
    )
}
_ALIASES = {"default": "", "gemma": ""}
_LOADED: dict[str, Any] = {}
_LOAD_LOCK = threading.Lock()


def embedder_help() -> str:
    names = ", ".join(f"'{n}'" if n else "'' (built-in)" for n in EMBEDDERS)
    return f"{names}, or any sentence-transformers model name or folder"


def make_embedder(spec: str = "", say: Callable[[str], None] | None = None) -> Any:
    """Load (once per process) the embedder named by the `embedder` setting."""
    spec = _ALIASES.get(spec.strip(), spec.strip())
    with _LOAD_LOCK:
        if spec not in _LOADED:
            entry = EMBEDDERS.get(spec)
            if entry is not None:
                _LOADED[spec] = entry.make(say)
            else:
                from memory.embed import st_embedder

                _LOADED[spec] = st_embedder(spec)
        return _LOADED[spec]


def share_embedder(spec: str, embedder: Any) -> None:
    """Make `make_embedder(spec)` return an already loaded embedder (tests share one this way)."""
    with _LOAD_LOCK:
        _LOADED[_ALIASES.get(spec.strip(), spec.strip())] = embedder


def _models_dir():
    from ohlora.config import get_paths

    return get_paths().models_dir


def _gemma_dir(say):
    from ohlora.models import ensure_hf_copy, hf_copy_dir, resolve_base

    base = resolve_base("")
    if say is not None and not (hf_copy_dir(base) / "config.json").is_file():
        say("memory: making a local copy of the base model for the embedder (once, ~1-2 min)")
    return ensure_hf_copy(base)


def calibration_texts() -> list[str]:
    """Everyday Korean and English sentences: the first two turns of every 4th shipped persona chat."""
    import json

    from ohlora.personas import SHIPPED_DIR

    texts: list[str] = []
    for path in sorted(SHIPPED_DIR.glob("*/train.jsonl")):
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
            if i % 4 == 0 and line.strip():
                texts += [m["content"] for m in json.loads(line).get("messages", [])[:2]]
    return texts


def open_memory(settings: "Settings", *, say: Callable[[str], None] | None = None, start: bool = True):
    """The user's memory (a BackgroundMemory), or None when memory is off or not installed."""
    if not settings.memory:
        return None
    try:
        from memory import BackgroundMemory, MemoryStore
    except ImportError:
        return None
    from ohlora.config import get_paths

    holder: dict[str, Callable[[str], None] | None] = {"say": say}
    store = MemoryStore(get_paths().memory_db_file,
                        embedder=lambda: make_embedder(settings.embedder, say=lambda m: _relay(holder, m)))
    memory = BackgroundMemory(store, start=False)
    holder["say"] = say or memory.set_status
    if start:
        memory.start()
    return memory


def _relay(holder: dict, message: str) -> None:
    fn = holder.get("say")
    if fn is not None:
        fn(message)
