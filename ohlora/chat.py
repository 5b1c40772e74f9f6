"""A chat session: recall -> prompt -> stream. It owns no UI and no storage.

`ChatSession.send(text)` yields text pieces as the model writes them and keeps the
in-memory history; `last` holds the finished result. Saving rows, regenerate and the
memory step after a reply belong to `ohlora.conversation.Conversation`, which the TUI,
`ohlora ask` and the server drive.
"""

from __future__ import annotations

import random
import re
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Iterator

from ohlora.config import Settings
from ohlora.errors import UserError
from ohlora.personas import Persona, load_persona
from ohlora.prompt import build, context_block, template_for
from ohlora.backends import EnginePool, resolve_base_for

if TYPE_CHECKING:
    from ohlora.backends.base import Backend, GenerationResult
    from ohlora.models import BaseModel
    from ohlora.prompt import ChatTemplate

MAX_INPUT_CHARS = 100_000
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _said(hist: list[dict]) -> list[str]:
    """The persona's replies so far in `hist` (a written line is not said twice)."""
    return [m["content"] for m in hist if m["role"] == "assistant"]


def clean_input(text: str) -> str:
    """Drop control characters (keep newlines and tabs); refuse empty text."""
    text = _CONTROL.sub("", text.replace("\r\n", "\n")).strip()
    if not text:
        raise UserError("empty message: type something to send")
    return text[:MAX_INPUT_CHARS]


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
        guards: Any = None,
    ):
        self.settings = settings
        self.persona = persona if isinstance(persona, Persona) else load_persona(persona or settings.persona)
        self.base_override = base_override
        self.pool = pool or EnginePool(settings, settings.backend)
        self.memory = memory  # anything with recall(text, k, persona=) -> [Recalled]
        self.history: list[dict] = list(history or [])
        self.use_adapter = use_adapter  # False: the bare base with the persona's prompt
        if guards is None and (settings.guard or settings.lines):
            from ohlora.registry import open_guards

            guards = open_guards(settings)
        self.guards = guards  # ohlora.guards.Guards: clock and safety replies the model does not write
        if guards is not None:
            guards.prefetch(self.persona)  # the written lines load in the background from now
        self.last_guard: Any = None  # the GuardReply of the last turn, if the app answered itself
        self.last: GenerationResult | None = None
        self.last_recalled: list[Any] = []  # Recalled items that went into the last prompt
        self._draft: tuple[str, int, list[Any]] | None = None  # warm_draft's (text, turns before it, its recall)
        self.last_prompt: str = ""
        self.last_lore: list[Any] = []  # lorebook Hits of the last prompt (ohlora.cards.lorebook)
        self.lore_error = ""
        self._lore: dict[str, Any] = {}  # persona id -> its LoreState
        self._seed = random.randrange(1 << 30)  # {{random:...}} is drawn once per session
        self._expanded: dict[Persona, Persona] = {}
        self._engine: Backend | None = None
        self._writing: Backend | None = None  # the engine of the reply being streamed
        self._has_adapter = False
        self._bases: dict[str, tuple[BaseModel, ChatTemplate]] = {}  # per base spec, resolved once
        self._fit: dict[tuple[str, str], bool] = {}  # (persona, base path) -> the adapter fits

    # -- the persona as the model sees it ------------------------------------------
    @property
    def user_name(self) -> str:
        from ohlora.cards.macros import default_user_name

        return self.settings.user_name or default_user_name(self.persona.language)

    def shown_persona(self) -> Persona:
        """The persona with card macros ({{char}}, {{user}}, {{random:...}}) expanded."""
        p = self.persona
        if p not in self._expanded:
            from ohlora.cards.macros import expand

            char, user = p.name, self.user_name
            x = lambda text: expand(text, char, user, random.Random(f"{self._seed}:{p.id}:{text}"))  # noqa: E731
            self._expanded[p] = replace(
                p, system_prompt=x(p.system_prompt), greeting=x(p.greeting),
                examples=tuple(replace(e, user=x(e.user), assistant=x(e.assistant)) for e in p.examples))
        return self._expanded[p]

    @property
    def greeting(self) -> str:
        return self.shown_persona().greeting

    def lore(self) -> Any:
        """The persona's lorebooks (loaded once); a broken one is reported, never fatal."""
        pid = self.persona.id
        if pid not in self._lore:
            from ohlora.cards.lorebook import LoreState, books_for

            try:
                self._lore[pid] = LoreState(books_for(self.persona))
            except UserError as exc:
                self._lore[pid] = LoreState(error=str(exc))
        return self._lore[pid]

    def reload_lore(self) -> None:
        self._lore.pop(self.persona.id, None)

    @property
    def last_memories(self) -> list[str]:
        return [r.memory.text for r in self.last_recalled]

    # -- model ------------------------------------------------------------------
    def _base_and_template(self) -> "tuple[BaseModel, ChatTemplate]":
        """Resolve the base and read its chat template once per spec, not on every message."""
        spec = self.base_override or self.settings.base or self.persona.base
        if spec not in self._bases:
            base = resolve_base_for(self.pool.backend, spec)
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
            if self.pool.scripted:
                self._fit[key] = True
            else:
                from ohlora.models import resolve_base
                from training.fingerprint import adapter_fits

                self._fit[key] = adapter_fits(self.persona.adapter_dir, resolve_base(self.persona.base), self.base())
        return self._fit[key]

    @property
    def adapter_skipped(self) -> bool:
        """The persona has an adapter, but for another base than the one in use."""
        return self.use_adapter and self.persona.adapter_dir is not None and not self._fits()

    def set_persona(self, persona: Persona | str) -> None:
        """Takes effect on the next reply; the engine is reused when the base is the same."""
        self.persona = persona if isinstance(persona, Persona) else load_persona(persona)
        self._engine = None
        if self.guards is not None:
            self.guards.prefetch(self.persona)

    def cancel(self) -> None:
        """Stop the reply being written (also after a persona switch mid-reply)."""
        engine = self._writing or self._engine
        if engine is not None:
            engine.cancel()

    # -- one turn ---------------------------------------------------------------
    def recall(self, text: str) -> list[Any]:
        if self.memory is None or not self.settings.memory:
            return []
        return list(self.memory.recall(text, k=self.settings.memory_k, persona=None))

    def send(self, text: str, *, history: list[dict] | None = None, generation: Any = None,
             prefix: str = "") -> Iterator[str]:
        """Yield the reply as it streams; the exchange joins the history when it ends.

        With `history`, the reply is written after that history instead (an alternative to an
        earlier reply) and the session's own history is left alone. `generation` overrides the
        persona's settings (a chat's own); `prefix` is reply text the model continues from
        (only the new text is yielded)."""
        text = clean_input(text)
        own = history is None
        hist = self.history if own else history
        now = datetime.now()
        drafted = self._draft if own and self._draft is not None and self._draft[:2] == (text, len(hist)) else None
        self._draft = None
        recalled = drafted[2] if drafted is not None else self.recall(text)
        self.last_guard = (self.guards.check(text, self.shown_persona(), now, _said(hist), recalled=bool(recalled))
                           if self.guards and not prefix else None)
        if self.last_guard is not None:
            yield from self._say_guarded(text, self.last_guard, now, own)
            return
        template = self._base_and_template()[1]  # before loading: a model without one fails fast
        engine = self.engine()
        self.last_recalled = recalled
        persona = self.shown_persona()
        gen = generation or persona.generation
        prompt, self.last_lore = self._prompt(engine, text, hist, now, gen.max_tokens + engine.count_tokens(prefix)
                                              if prefix else gen.max_tokens, self.last_recalled)
        self.last_prompt = prompt.text + prefix
        stops = tuple(dict.fromkeys((*self.persona.stop, template.end_of_turn)))
        self._writing = engine
        try:
            yield from engine.stream(prompt.text + prefix, gen, stops)
        finally:
            self._writing = None
        self.last = engine.last
        if own:
            self.history += [{"role": "user", "content": text, "context": prompt.context},
                             {"role": "assistant", "content": prefix + self.last.text}]

    def _prompt(self, engine: Any, text: str, hist: list[dict], now: datetime, max_tokens: int,
                recalled: list[Any]) -> tuple[Any, list]:
        """The prompt for `text` after `hist`, with `recalled` memories and the lore it fires (and
        which lore entries fired)."""
        lore = self.lore()
        self.lore_error = lore.error
        lore_texts = lore.fire([m["content"] for m in hist] + [text], engine.count_tokens) if lore.books else []
        prompt = build(self.shown_persona(), [r.memory.text for r in recalled], hist, text, self._base_and_template()[1],
                       engine.count_tokens, engine.n_ctx, max_tokens, now=now,
                       include_examples=not self._has_adapter, lore=lore_texts)
        return prompt, list(lore.last)

    def warm_draft(self, text: str) -> None:
        """Read the prompt for `text`, what the user has typed so far, before it is sent: the
        recall for it and the prompt up to the reply. When the message sent is that text, `send`
        reuses the recall and the engine reads only what changed (the clock line, if the minute
        did). The chat app calls it when the user stops typing for a moment."""
        engine = self._engine
        if engine is None or self._writing is not None or not text.strip():
            return
        try:
            text = clean_input(text)
        except Exception:  # noqa: BLE001 - not a message yet
            return
        now = datetime.now()
        persona = self.shown_persona()
        recalled = self.recall(text)
        if (self.guards is not None
                and self.guards.check(text, persona, now, _said(self.history), recalled=bool(recalled)) is not None):
            return  # the app answers this one itself
        self._draft = (text, len(self.history), recalled)
        max_tokens = persona.generation.max_tokens
        engine.warm(self._prompt(engine, text, self.history, now, max_tokens, recalled)[0].text)

    def warm_next(self) -> None:
        """Read the start of the next turn now, while the user reads the reply and types: the
        end of this exchange, the next turn's opening and its clock line, and the memory
        header when this turn recalled something (the next one most likely will too). The next
        `send` then reads only the recalled memories and the new text. A guess that misses
        (another minute, nothing recalled) costs nothing then: the prompt's matching tokens are
        kept, the rest is read as before. The chat app calls it after each reply."""
        engine = self._engine
        if engine is None or self._writing is not None or self.last is None or self.last.stop_reason == "cancelled":
            return
        template = self._base_and_template()[1]
        persona = self.shown_persona()
        mark = "\ue000"  # a private-use character: where the unknown part of the next turn starts
        prompt = build(persona, [mark] if self.last_recalled else [], self.history, mark, template,
                       engine.count_tokens, engine.n_ctx, persona.generation.max_tokens,
                       include_examples=not self._has_adapter)
        engine.warm(prompt.text[: prompt.text.index(mark)])

    def _say_guarded(self, text: str, guard: Any, now: datetime, own: bool) -> Iterator[str]:
        """A reply the app wrote itself (ohlora.guards): no model call, no recall."""
        from ohlora.backends.base import GenerationResult

        self.last_recalled, self.last_lore, self.last_prompt = [], [], ""
        self.last = GenerationResult(text=guard.text, stop_reason=guard.kind)
        yield guard.text
        if own:
            self.history += [{"role": "user", "content": text, "context": context_block(now, [])},
                             {"role": "assistant", "content": guard.text}]
