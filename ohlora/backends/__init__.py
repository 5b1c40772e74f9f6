"""The inference engines: load one by name, one engine per base model (`EnginePool`).

The names live in `ohlora.backends.table.BACKENDS` (re-exported here), the one list that
config validation, the `--backend` choices and the help read.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

from ohlora.backends.table import BACKENDS, DEFAULT_BACKEND, Backend, backend_names
from typing import TYPE_CHECKING, Any

__all__ = ["BACKENDS", "DEFAULT_BACKEND", "Backend", "EnginePool", "backend_names", "load_backend", "resolve_base_for"]

if TYPE_CHECKING:
    from ohlora.backends.base import Backend as Engine
    from ohlora.config import Settings
    from ohlora.models import BaseModel


def _load(target: str) -> Any:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def load_backend(name: str, base: "BaseModel", settings: "Settings") -> "Engine":
    """Load an engine for a base model (heavy: imports llama_cpp or torch)."""
    from ohlora.errors import UserError

    if name not in BACKENDS:
        raise UserError(f"unknown backend '{name}' (known: {', '.join(BACKENDS)})")
    cls = _load(BACKENDS[name].target)
    return cls(base, n_ctx=settings.n_ctx, n_threads=settings.n_threads)


def resolve_base_for(backend: str, spec: str) -> "BaseModel":
    """The base a backend runs: the scripted one has its own; the others resolve `spec`."""
    if BACKENDS.get(backend) is not None and BACKENDS[backend].scripted:
        from ohlora.backends.fake import FAKE_BASE

        return FAKE_BASE
    from ohlora.models import resolve_base

    return resolve_base(spec)


@dataclass
class EnginePool:
    """One loaded engine per (backend, base model): personas on one base share it."""

    settings: "Settings"
    backend: str
    engines: dict[tuple[str, str], Any] = field(default_factory=dict)

    @property
    def scripted(self) -> bool:
        return BACKENDS[self.backend].scripted if self.backend in BACKENDS else False

    def get(self, base: "BaseModel") -> "Engine":
        key = (self.backend, str(base.path))
        if key not in self.engines:
            self.engines[key] = load_backend(self.backend, base, self.settings)
        return self.engines[key]
