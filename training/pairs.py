"""Preference pairs for `ohlora train --method dpo`: read, checked, split, rendered as chat renders them.

Pairs are LLaMA-Factory's `ranking` format as `ohlora data from-chats` writes it (sharegpt:
`conversations` ending with the user's turn, `chosen`, `rejected`, optional `system`; `now`
and `persona` are ours). The alpaca ranking form (instruction, input, chosen, rejected) is
read too; a JSON list or JSONL, or a from-chats folder (its `preference.json`). Each pair is
rendered exactly as chat renders it (`training.encode.row_messages`: the persona's system text,
every user turn under its clock line) and split with `ohlora.prompt.training_segments`: the
prompt is everything before the last reply; chosen and rejected are the reply's text plus the
end-of-turn marker, tokenized like SFT targets. The trainer run is `training.dpo`.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Sequence

from ohlora.errors import UserError

from training.data import Conversation, Problem, parse_now

PAIRS_FILE = "preference.json"  # what `ohlora data from-chats OUT` writes in OUT


@dataclass
class Pair:
    """One preference: the conversation up to the user's message, and two replies to it."""

    history: list[dict]  # earlier turns, {"role": "user" | "assistant", "content"}
    user: str
    chosen: str
    rejected: str
    system: str | None = None
    now: datetime | None = None
    persona: str | None = None
    source: str = ""


# -- reading -----------------------------------------------------------------------------
def _text(value: Any, what: str) -> str:
    if isinstance(value, dict):
        value = value.get("value", value.get("content"))
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"'{what}' must be a non-empty reply (a string, or {{\"from\": \"gpt\", \"value\": ...}})")
    return value.strip()


_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "model": "assistant"}


def _pair(obj: Any) -> Pair:
    if not isinstance(obj, dict):
        raise ValueError("a pair must be an object")
    chosen, rejected = _text(obj.get("chosen"), "chosen"), _text(obj.get("rejected"), "rejected")
    if chosen == rejected:
        raise ValueError("chosen and rejected are the same text")
    system = obj.get("system") if isinstance(obj.get("system"), str) and obj["system"].strip() else None
    if "conversations" in obj:  # sharegpt
        turns = obj["conversations"]
        if not isinstance(turns, list) or not turns:
            raise ValueError("'conversations' must be a non-empty list")
        msgs = []
        for i, t in enumerate(turns):
            role = _ROLES.get(t.get("from", t.get("role"))) if isinstance(t, dict) else None
            if role is None:
                if isinstance(t, dict) and t.get("from", t.get("role")) == "system" and i == 0:
                    system = _text(t, "system")
                    continue
                raise ValueError(f"conversations[{i}]: 'from' must be human or gpt")
            msgs.append({"role": role, "content": _text(t, f"conversations[{i}]")})
    elif "instruction" in obj:  # alpaca ranking
        query = obj["instruction"] if isinstance(obj["instruction"], str) else ""
        if isinstance(obj.get("input"), str) and obj["input"].strip():
            query = f"{query}\n{obj['input']}"
        msgs = [{"role": "user", "content": _text(query, "instruction")}]
    else:
        raise ValueError("not a preference pair: no 'conversations' (sharegpt) or 'instruction' (alpaca)")
    for i, m in enumerate(msgs):
        if m["role"] != ("user" if i % 2 == 0 else "assistant"):
            raise ValueError("turns must alternate, the user's first, and end with the user's message")
    if msgs[-1]["role"] != "user":
        raise ValueError("the conversation must end with the user's message (the one both replies answer)")
    now = parse_now(obj["now"]) if obj.get("now") else None
    persona = obj.get("persona") if isinstance(obj.get("persona"), str) else None
    return Pair(msgs[:-1], msgs[-1]["content"], chosen, rejected, system, now, persona)


def load_pairs(path: str | Path) -> tuple[list[Pair], list[Problem]]:
    """Preference pairs from a JSON list or JSONL file (or a from-chats folder); bad rows are problems."""
    p = Path(path).expanduser()
    if p.is_dir():
        p = p / PAIRS_FILE
    if not p.is_file():
        raise UserError(f"preference file not found: {p} (make one with `ohlora data from-chats OUT`)")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{p}: cannot read ({exc})") from None
    items: list[tuple[str, Any]] = []
    try:
        data = json.loads(text)
        if not isinstance(data, list):
            raise UserError(f"{p}: expected a JSON list of pairs (LLaMA-Factory ranking format)")
        items = [(f"{p}:{i + 1}", obj) for i, obj in enumerate(data)]
    except json.JSONDecodeError:
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    items.append((f"{p}:{n}", json.loads(line)))
                except json.JSONDecodeError as exc:
                    items.append((f"{p}:{n}", exc))
    pairs: list[Pair] = []
    problems: list[Problem] = []
    for where, obj in items:
        if isinstance(obj, Exception):
            problems.append(Problem(where, f"invalid JSON ({obj.msg})"))
            continue
        try:
            pair = _pair(obj)
        except ValueError as exc:
            problems.append(Problem(where, str(exc)))
            continue
        pair.source = where
        pairs.append(pair)
    return pairs, problems


def split_pairs(pairs: Sequence[Pair], share: float, seed: int) -> tuple[list[Pair], list[Pair]]:
    """(trained, held out): a reproducible share held out; none when fewer than 5 pairs."""
    if share <= 0 or len(pairs) < 5:
        return list(pairs), []
    order = list(range(len(pairs)))
    random.Random(seed).shuffle(order)
    n = max(1, int(round(share * len(pairs))))
    held = set(order[:n])
    return [p for i, p in enumerate(pairs) if i not in held], [p for i, p in enumerate(pairs) if i in held]


# -- rendering: as chat renders the prompt, as SFT renders a target -----------------------
def encode_pair(pair: Pair, encoder, persona, now: datetime) -> dict:
    """{"prompt_ids", "chosen_ids", "rejected_ids"} for TRL's preference collator."""
    from ohlora.prompt import training_segments

    from training.encode import row_messages

    # the persona's own system text comes from the persona; a pair's differing one follows it
    own = persona is not None and (pair.persona == persona.id or (pair.system or "").strip() == persona.system_prompt.strip())
    system = [] if own or not pair.system else [{"role": "system", "content": pair.system}]
    out: dict = {}
    for key, reply in (("chosen", pair.chosen), ("rejected", pair.rejected)):
        row = Conversation(system + pair.history + [{"role": "user", "content": pair.user},
                                                    {"role": "assistant", "content": reply}])
        segments = training_segments(row_messages(row, persona, now, []), encoder.template)
        if not segments or not segments[-1][1]:
            raise ValueError("the chat template wrote nothing after the reply's generation prompt")
        prompt_ids, _ = encoder.encode_segments([(text, False) for text, _ in segments[:-1]])
        if out.setdefault("prompt_ids", prompt_ids) != prompt_ids:
            raise ValueError("chosen and rejected rendered different prompts")
        out[f"{key}_ids"] = encoder.tokenizer(segments[-1][0], add_special_tokens=False)["input_ids"]
    return out


def encode_pairs(pairs: Sequence[Pair], encoder, persona, max_length: int, seed: int):
    """Encoded pairs (clock: the pair's `now`, else a varied made-up one) and the ones left out."""
    from training.encode import row_datetime

    done: list[dict] = []
    kept: list[Pair] = []
    problems: list[Problem] = []
    for i, pair in enumerate(pairs):
        try:
            enc = encode_pair(pair, encoder, persona, pair.now or row_datetime(i, seed))
        except ValueError as exc:
            problems.append(Problem(pair.source, str(exc)))
            continue
        longest = len(enc["prompt_ids"]) + max(len(enc["chosen_ids"]), len(enc["rejected_ids"]))
        if longest > max_length:
            problems.append(Problem(pair.source, f"too long ({longest} tokens > --max-length {max_length})"))
            continue
        done.append(enc)
        kept.append(pair)
    return done, kept, problems
