"""Chat templates: persona + memories + history -> the model's input text.

Gemma bases get Gemma's turn format (no system role: the system text opens the first
user turn). Other bases use the chat template from the tokenizer (GGUF metadata
`tokenizer.chat_template` or the HF folder's template). Training renders conversations
through the same functions, so chat and training see identical turns.

Layout (`build_messages`): the persona's system text first (stable), then the history,
then the new user text with this turn's context block (clock, recalled memories) just
above it. Each user turn keeps the block it was sent with, so the prefix is unchanged
from one turn to the next and llama.cpp reuses its KV cache.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Protocol, Sequence

from ohlora.errors import UserError

if TYPE_CHECKING:
    from ohlora.models import BaseModel
    from ohlora.personas import Persona

Message = dict  # {"role": "system"|"user"|"assistant", "content": str}

_WEEKDAYS_KO = "월화수목금토일"
MEMORY_HEADER = "사용자가 전에 한 말:"
LORE_HEADER = "설정:"


class ChatTemplate(Protocol):
    name: str
    end_of_turn: str  # the marker that ends an assistant turn (a stop string)

    def render(self, messages: Sequence[Message], add_generation_prompt: bool) -> str: ...


@dataclass(frozen=True)
class GemmaTemplate:
    """`<start_of_turn>user\\n…<end_of_turn>\\n<start_of_turn>model\\n…<end_of_turn>\\n`."""

    name: str = "gemma"
    end_of_turn: str = "<end_of_turn>"

    def render(self, messages: Sequence[Message], add_generation_prompt: bool) -> str:
        msgs = list(messages)
        system = ""
        if msgs and msgs[0]["role"] == "system":
            system = msgs.pop(0)["content"].strip()
        out = []
        for i, m in enumerate(msgs):
            role = {"user": "user", "assistant": "model"}.get(m["role"])
            if role is None:
                raise ValueError(f"Gemma turns take user/assistant roles, got {m['role']!r}")
            content = m["content"]
            if i == 0 and system:
                content = f"{system}\n\n{content}" if role == "user" else content
                if role != "user":
                    out.append(f"<start_of_turn>user\n{system}<end_of_turn>\n")
            out.append(f"<start_of_turn>{role}\n{content}<end_of_turn>\n")
        if add_generation_prompt:
            out.append("<start_of_turn>model\n")
        return "".join(out)


@dataclass(frozen=True)
class JinjaTemplate:
    """A tokenizer's own Jinja chat template (ChatML for SmolLM2, Llama 3, …)."""

    source: str
    end_of_turn: str
    bos_token: str = ""
    eos_token: str = ""
    name: str = "tokenizer"

    def render(self, messages: Sequence[Message], add_generation_prompt: bool) -> str:
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)

        def raise_exception(msg: str) -> None:
            raise ValueError(msg)

        env.globals["raise_exception"] = raise_exception
        return env.from_string(self.source).render(
            messages=list(messages),
            add_generation_prompt=add_generation_prompt,
            bos_token=self.bos_token,
            eos_token=self.eos_token,
        )


_END_MARKERS = ("<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>", "</s>")


def _jinja_from(source: str, bos: str, eos: str) -> JinjaTemplate:
    end = next((m for m in _END_MARKERS if m in source), eos or "</s>")
    return JinjaTemplate(source=source, end_of_turn=end, bos_token=bos, eos_token=eos)


def template_for(base: "BaseModel") -> ChatTemplate:
    """The chat template of a base model; UserError if a non-Gemma model has none."""
    if base.is_gemma:
        return GemmaTemplate()
    if base.kind == "gguf":
        from ohlora.models import gguf_metadata

        source = gguf_metadata(base.path, "tokenizer.chat_template")
        if source:
            return _jinja_from(source, "", "")
    else:
        folder = Path(base.path)
        source = None
        if (folder / "chat_template.jinja").is_file():
            source = (folder / "chat_template.jinja").read_text(encoding="utf-8")
        cfg = folder / "tokenizer_config.json"
        data = json.loads(cfg.read_text(encoding="utf-8")) if cfg.is_file() else {}
        source = source or data.get("chat_template")
        if isinstance(source, str) and source:
            tok = lambda v: v.get("content", "") if isinstance(v, dict) else (v or "")  # noqa: E731
            return _jinja_from(source, tok(data.get("bos_token")), tok(data.get("eos_token")))
    raise UserError(f"{base.path}: model has no chat template (tokenizer.chat_template is missing)")


def now_line(now: datetime) -> str:
    """The clock as the model sees it: date, weekday and 12-hour time, in words a reply can
    copy ("지금 몇 시야?" -> "오후 2시 20분"). Short: it is part of every user turn (~25 tokens)."""
    ampm = "오전" if now.hour < 12 else "오후"
    return (f"지금: {now.year}년 {now.month}월 {now.day}일 {_WEEKDAYS_KO[now.weekday()]}요일 "
            f"{ampm} {now.hour % 12 or 12}시 {now.minute}분")


def context_block(now: datetime, memories: Sequence[str], lore: Sequence[str] = ()) -> str:
    """The volatile part of a user turn: the clock, what memory recalled for this message, then
    the lorebook entries this message triggered (nothing is added when none fired)."""
    lines = [f"[{now_line(now)}]"]
    if memories:
        lines.append(f"[{MEMORY_HEADER} " + " / ".join(f'"{m}"' for m in memories) + "]")
    if lore:
        lines.append(f"[{LORE_HEADER}\n" + "\n".join(t.strip() for t in lore) + "]")
    return "\n".join(lines)


def user_content(message: Message) -> str:
    """A user turn as rendered: its context block (if it had one) above the text."""
    context = message.get("context")
    return f"{context}\n{message['content']}" if context else message["content"]


def build_messages(
    persona: "Persona",
    memories: Sequence[str],
    history: Sequence[Message],
    text: str | None,
    now: datetime,
    include_examples: bool = True,
    lore: Sequence[str] = (),
) -> list[Message]:
    """Stable first, volatile last: the persona's system text, example turns (when no adapter
    carries the persona), the history (each user turn with the context block it had), then
    the new text under this turn's context block (clock, recalled memories, triggered lore).

    The prefix up to the new turn is byte-identical from one turn to the next, so the engine
    reuses its KV cache instead of re-reading the conversation. Training renders rows the
    same way (`training.encode`), every user turn with its block.
    """
    msgs: list[Message] = [{"role": "system", "content": persona.system_prompt.strip()}]
    if include_examples:
        for ex in persona.examples:
            msgs += [{"role": "user", "content": ex.user}, {"role": "assistant", "content": ex.assistant}]
    for m in history:
        content = user_content(m) if m["role"] == "user" else m["content"]
        msgs.append({"role": m["role"], "content": content})
    if text is not None:
        msgs.append({"role": "user", "content": user_content({"content": text, "context": context_block(now, memories, lore)})})
    return msgs


@dataclass
class Prompt:
    text: str
    messages: list[Message]
    context: str  # this turn's context block (the history keeps it, so the next prefix matches)
    dropped_turns: int  # history messages trimmed to fit the window
    truncated_input: bool  # the new text itself was cut to fit


def build(
    persona: "Persona",
    memories: Sequence[str],
    history: Sequence[Message],
    text: str,
    template: ChatTemplate,
    count_tokens: Callable[[str], int],
    n_ctx: int,
    max_new_tokens: int,
    now: datetime | None = None,
    include_examples: bool = True,
    lore: Sequence[str] = (),
) -> Prompt:
    """Render the prompt, dropping the oldest history (then the examples) to fit n_ctx."""
    now = now or datetime.now()
    budget = n_ctx - max_new_tokens
    if budget < 64:
        raise UserError(f"context window {n_ctx} is too small for max_tokens {max_new_tokens}")
    hist = list(history)
    dropped = 0
    examples = include_examples
    truncated = False
    while True:
        msgs = build_messages(persona, memories, hist, text, now, examples, lore)
        rendered = template.render(msgs, add_generation_prompt=True)
        if count_tokens(rendered) <= budget:
            return Prompt(rendered, msgs, context_block(now, memories, lore), dropped, truncated)
        if hist:
            # drop the oldest exchange (a user turn and its reply) together
            cut = 2 if len(hist) > 1 and hist[0]["role"] == "user" and hist[1]["role"] == "assistant" else 1
            hist = hist[cut:]
            dropped += cut
        elif examples and persona.examples:
            examples = False
        else:
            # the new text alone is too long: keep its end, which is what the user just wrote
            over = count_tokens(rendered) - budget
            chars_per_token = len(text) / max(count_tokens(text), 1)
            keep = max(1, len(text) - int(over * chars_per_token) - 8)
            text = text[-keep:]
            truncated = True


def training_segments(messages: Sequence[Message], template: ChatTemplate) -> list[tuple[str, bool]]:
    """Split a rendered conversation into (text, is_assistant_target) pieces.

    Each assistant turn's target is what the template renders after the generation prompt:
    its content and the end-of-turn marker, so stopping is learned too.
    """
    segments: list[tuple[str, bool]] = []
    done = ""
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        prefix = template.render(messages[:i], add_generation_prompt=True)
        full = template.render(messages[: i + 1], add_generation_prompt=False)
        if not prefix.startswith(done) or not full.startswith(prefix):
            raise ValueError("chat template is not prefix-stable; cannot mask assistant turns")
        segments.append((prefix[len(done):], False))
        segments.append((full[len(prefix):], True))
        done = full
    rest = template.render(messages, add_generation_prompt=False)[len(done):]
    if rest:
        segments.append((rest, False))
    return [s for s in segments if s[0]]
