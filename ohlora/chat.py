"""A chat session: recall -> prompt -> stream -> store.

The session owns no UI. The TUI and `ohlora ask` both drive it: `send(text)` yields
text pieces as the model writes them; `last` holds the finished result.
"""

from __future__ import annotations

import re
from pathlib import Path
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Iterator

from ohlora.config import Settings
from ohlora.errors import UserError
from ohlora.personas import Persona, load_persona
from ohlora.prompt import build, template_for

if TYPE_CHECKING:
    from ohlora.backends.base import Backend, GenerationResult
    from ohlora.models import BaseModel
    from ohlora.prompt import ChatTemplate

MAX_INPUT_CHARS = 100_000
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def clean_input(text: str) -> str:
    """Drop control characters (keep newlines and tabs); refuse empty text."""
    text = _CONTROL.sub("", text.replace("\r\n", "\n")).strip()
    if not text:
        raise UserError("empty message: type something to send")
    return text[:MAX_INPUT_CHARS]


def load_backend(kind: str, base: "BaseModel", settings: Settings) -> "Backend":
    """Load an engine for a base model (heavy: imports llama_cpp or torch)."""
    if kind == "llamacpp":
        from ohlora.backends.llamacpp import LlamaCppBackend

        return LlamaCppBackend(base, n_ctx=settings.n_ctx, n_threads=settings.n_threads)
    if kind == "hf":
        from ohlora.backends.hf import HFBackend

        return HFBackend(base, n_ctx=settings.n_ctx, n_threads=settings.n_threads)
    raise UserError(f"unknown backend '{kind}' (known: llamacpp, hf)")


@dataclass
class EnginePool:
    """One loaded engine per (backend, base model): personas on one base share it."""

    settings: Settings
    backend: str
    engines: dict[tuple[str, str], Any] = field(default_factory=dict)

    def get(self, base: "BaseModel") -> "Backend":
        key = (self.backend, str(base.path))
        if key not in self.engines:
            self.engines[key] = load_backend(self.backend, base, self.settings)
        return self.engines[key]


def adapter_fits(persona: Persona, base: "BaseModel") -> bool:
    """Was the persona's adapter trained on `base`? (its recorded fingerprint, or, with none
    recorded, whether `base` is the persona's own base). A persona asked to run on another
    base (`--base`, the `base` setting) then answers with its prompt alone."""
    from ohlora.models import resolve_base
    from training.fingerprint import base_fingerprint, read_fingerprint, same_base

    folder = persona.adapter_dir
    recorded = read_fingerprint(folder) if folder is not None else None
    if recorded is None:
        return Path(resolve_base(persona.base).path) == Path(base.path)
    return same_base(recorded, base_fingerprint(base))


def activate_persona(engine: "Backend", persona: Persona) -> bool:
    """Switch the engine to the persona's adapter; False if the persona has none yet."""
    path = persona.adapter_gguf_path if engine.name == "llamacpp" else persona.adapter_dir
    if path is None:
        engine.set_adapter(None)
        return False
    engine.set_adapter(persona.id, path)
    return True


class ChatSession:
    """Recall memories, build the prompt, stream the reply, keep the history."""

    def __init__(
        self,
        settings: Settings,
        persona: Persona | str | None = None,
        *,
        base_override: str | None = None,
        pool: EnginePool | None = None,
        memory: Any = None,
        history: list[dict] | None = None,
        use_adapter: bool = True,
    ):
        self.settings = settings
        self.persona = persona if isinstance(persona, Persona) else load_persona(persona or settings.persona)
        self.base_override = base_override
        self.pool = pool or EnginePool(settings, settings.backend)
        self.memory = memory
        self.history: list[dict] = list(history or [])
        self.use_adapter = use_adapter  # False: the bare base with the persona's prompt
        self.conversation_id: int | None = None  # set by the TUI when the chat is saved
        self.last: GenerationResult | None = None
        self.last_memories: list[str] = []
        self.last_prompt: str = ""
        self._engine: Backend | None = None
        self._bases: dict[str, tuple[BaseModel, ChatTemplate]] = {}  # per base spec, resolved once
        self._fit: dict[tuple[str, str], bool] = {}  # (persona, base path) -> adapter_fits

    # -- model ------------------------------------------------------------------
    def _base_and_template(self) -> "tuple[BaseModel, ChatTemplate]":
        """Resolve the base and read its chat template once per spec, not on every message."""
        from ohlora.models import resolve_base

        spec = self.base_override or self.settings.base or self.persona.base
        if spec not in self._bases:
            base = resolve_base(spec)
            self._bases[spec] = (base, template_for(base))  # a model without a template fails here
        return self._bases[spec]

    def base(self) -> "BaseModel":
        return self._base_and_template()[0]

    def engine(self) -> "Backend":
        """Load (once) the engine for the persona's base and activate its adapter."""
        if self._engine is None:
            self._engine = self.pool.get(self.base())
        if self.use_adapter and self._fits():
            self._has_adapter = activate_persona(self._engine, self.persona)
        else:
            self._engine.set_adapter(None)
            self._has_adapter = False
        return self._engine

    def _fits(self) -> bool:
        key = (self.persona.id, str(self.base().path))
        if key not in self._fit:
            self._fit[key] = adapter_fits(self.persona, self.base())
        return self._fit[key]

    @property
    def adapter_skipped(self) -> bool:
        """The persona has an adapter, but for another base than the one in use."""
        return self.use_adapter and self.persona.adapter_dir is not None and not self._fits()

    def set_persona(self, persona: Persona | str) -> None:
        """Takes effect on the next reply; the engine is reused when the base is the same."""
        self.persona = persona if isinstance(persona, Persona) else load_persona(persona)
        self._engine = None

    def cancel(self) -> None:
        if self._engine is not None:
            self._engine.cancel()

    # -- one turn ---------------------------------------------------------------
    def recall(self, text: str) -> list[str]:
        if self.memory is None or not self.settings.memory:
            return []
        hits = self.memory.recall(text, k=self.settings.memory_k, persona=None)
        return [h.memory.text for h in hits]

    def send(self, text: str) -> Iterator[str]:
        """Yield the reply as it streams; the exchange joins the history when it ends."""
        text = clean_input(text)
        template = self._base_and_template()[1]  # before loading: a model without one fails fast
        engine = self.engine()
        self.last_memories = self.recall(text)
        prompt = build(
            self.persona,
            self.last_memories,
            self.history,
            text,
            template,
            engine.count_tokens,
            engine.n_ctx,
            self.persona.generation.max_tokens,
            now=datetime.now(),
            include_examples=not self._has_adapter,
        )
        self.last_prompt = prompt.text
        stops = tuple(dict.fromkeys((*self.persona.stop, template.end_of_turn)))
        yield from engine.stream(prompt.text, self.persona.generation, stops)
        self.last = engine.last
        self.history += [{"role": "user", "content": text}, {"role": "assistant", "content": self.last.text}]
        if self.memory is not None and self.settings.memory:
            self.memory.observe(text, persona=self.persona.id, conversation_id=self.conversation_id)
