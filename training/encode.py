"""Conversations -> token ids + labels, rendered exactly the way chat renders them.

Each row goes through `ohlora.prompt.build_messages` (the persona's system prompt, then each
user turn under its context block: the row's clock, `now` or a varied made-up one, and the
memories recalled for it) and the base model's chat template; `training_segments` splits the
text into prompt pieces (label -100) and assistant targets (content + end-of-turn marker,
so stopping is learned). Each piece is tokenized on its own, like chat tokenizes the prompt
and then generates; the tokenizer's own leading special tokens (BOS) open the sequence.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Sequence

from ohlora.prompt import MEMORY_HEADER, build_messages, context_block, training_segments

from training.data import Conversation, Problem

if TYPE_CHECKING:
    from ohlora.personas import Persona
    from ohlora.prompt import ChatTemplate

IGNORE = -100
_EPOCH = datetime(2025, 1, 1, 9, 0)


def row_datetime(index: int, seed: int = 0) -> datetime:
    """A date line per row, varied but reproducible, so the model sees many dates."""
    rng = random.Random(seed * 1_000_003 + index)
    return _EPOCH + timedelta(days=rng.randrange(730), minutes=rng.randrange(24 * 60))


def row_messages(row: Conversation, persona: "Persona | None", now: datetime,
                 memory: Sequence[str] | None = None) -> list[dict]:
    """The messages chat would build for this row: the persona's system text, then every user
    turn under its context block (the row's clock, a minute or two later each turn, and the
    memories recalled for it), as `ohlora.prompt.build_messages` lays out a live chat."""
    turns = row.turns
    memory = list(row.memory if memory is None else memory)
    if persona is None:
        if memory:
            mem = MEMORY_HEADER + "\n" + "\n".join(f"- {m}" for m in memory)
            system = f"{row.system}\n\n{mem}" if row.system else mem
            return [{"role": "system", "content": system}, *turns]
        return list(row.messages)
    history: list[dict] = []
    for i, t in enumerate(turns):
        if t["role"] == "user":
            history.append({"role": "user", "content": t["content"],
                            "context": context_block(now + timedelta(minutes=2 * (i // 2)), memory)})
        else:
            history.append(t)
    msgs = build_messages(persona, [], history, None, now=now, include_examples=False)
    if row.system:  # the row's own system text follows the persona's
        msgs[0] = {"role": "system", "content": msgs[0]["content"] + "\n\n" + row.system}
    return msgs


def recalled_for(rows: Sequence[Conversation], seed: int = 0) -> list[list[str]]:
    """What memory "recalls" for each row: its own facts, plus, like a live recall that always
    returns its top k, unrelated facts from other rows now and then (about a third of the
    rows get one or two), in a shuffled order. The model learns to use the fact that fits
    and to ignore the rest. Reproducible for a seed."""
    pool = sorted({m for r in rows for m in r.memory})
    out: list[list[str]] = []
    for i, row in enumerate(rows):
        rng = random.Random(seed * 7_000_003 + i)
        facts = list(row.memory)
        if pool and rng.random() < 0.35:
            extra = [m for m in rng.sample(pool, min(len(pool), 2)) if m not in facts]
            facts += extra[: 1 if facts else rng.choice((1, 2))]
        rng.shuffle(facts)
        out.append(facts)
    return out


@dataclass
class Encoded:
    input_ids: list[int]
    labels: list[int]
    source: str

    @property
    def n_target(self) -> int:
        return sum(1 for x in self.labels if x != IGNORE)


class Encoder:
    """Tokenizes rendered segments; knows the tokenizer's leading special tokens."""

    def __init__(self, tokenizer, template: "ChatTemplate") -> None:
        self.tokenizer = tokenizer
        self.template = template
        with_special = tokenizer("a", add_special_tokens=True)["input_ids"]
        plain = tokenizer("a", add_special_tokens=False)["input_ids"]
        self.prefix: list[int] = with_special[: len(with_special) - len(plain)] if with_special[-len(plain):] == plain else []
        # the template renders the BOS text itself for some tokenizers (e.g. "<bos>" in the Jinja source)
        self._bos_text = tokenizer.bos_token if tokenizer.bos_token else None

    def encode_segments(self, segments: Sequence[tuple[str, bool]]) -> tuple[list[int], list[int]]:
        ids: list[int] = []
        labels: list[int] = []
        for i, (text, target) in enumerate(segments):
            if i == 0 and self.prefix and self._bos_text and text.startswith(self._bos_text):
                text = text[len(self._bos_text):]  # the template wrote BOS; the prefix adds it once
            toks = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            ids += toks
            labels += toks if target else [IGNORE] * len(toks)
        return self.prefix + ids, [IGNORE] * len(self.prefix) + labels

    def encode(self, row: Conversation, persona: "Persona | None", now: datetime,
               memory: Sequence[str] | None = None) -> Encoded:
        msgs = row_messages(row, persona, now, memory)
        ids, labels = self.encode_segments(training_segments(msgs, self.template))
        return Encoded(ids, labels, row.source)


def encode_rows(
    rows: Sequence[Conversation],
    encoder: Encoder,
    persona: "Persona | None",
    max_length: int,
    seed: int = 0,
) -> tuple[list[Encoded], list[Problem]]:
    """Encode every row; rows longer than max_length (or with no target left) are problems."""
    out: list[Encoded] = []
    problems: list[Problem] = []
    recalled = recalled_for(rows, seed) if persona is not None else [r.memory for r in rows]
    for i, row in enumerate(rows):
        enc = encoder.encode(row, persona, row.now or row_datetime(i, seed), recalled[i])
        if len(enc.input_ids) > max_length:
            problems.append(Problem(row.source, f"too long ({len(enc.input_ids)} tokens > --max-length {max_length})"))
            continue
        if enc.n_target == 0:
            problems.append(Problem(row.source, "no assistant tokens to learn"))
            continue
        out.append(enc)
    return out, problems

