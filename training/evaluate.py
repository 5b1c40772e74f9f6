"""`ohlora eval`: does a persona answer in character, in Korean, and stop cleanly?

Text metrics are pure functions over answers (tested on hand-made answers with known
values). Eval loss runs the persona's `eval.jsonl` through the base and every adapter on
the same base, assistant tokens only, with the same rendering as training and chat.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from ohlora.errors import UserError

_WORD = re.compile(r"\w+", re.UNICODE)
_HANGUL = re.compile(r"[\uac00-\ud7a3\u3131-\u318e]")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def has_repeated_4gram(text: str, times: int = 3) -> bool:
    """True if any word 4-gram occurs `times` or more times in the answer."""
    w = words(text)
    grams = Counter(tuple(w[i : i + 4]) for i in range(len(w) - 3))
    return any(c >= times for c in grams.values())


def distinct_2(answers: Sequence[str]) -> float:
    """Distinct word bigrams over all bigrams, across all answers."""
    grams = [tuple(w[i : i + 2]) for a in answers for w in [words(a)] for i in range(len(w) - 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def is_korean(text: str) -> bool:
    return bool(_HANGUL.search(text))


def hangul_ratio(text: str) -> float:
    """Share of Hangul among letters (Hangul + Latin + other alphabetic characters)."""
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return 0.0
    return sum(1 for c in letters if _HANGUL.match(c)) / len(letters)


def chrf(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Corpus chrF (sacrebleu's default: char 6-grams, beta 2), 0..100."""
    from sacrebleu.metrics import CHRF

    return CHRF().corpus_score(list(hypotheses), [list(references)]).score


@dataclass
class Answer:
    prompt: str
    text: str
    stop_reason: str
    completion_tokens: int
    tokens_per_s: float
    reference: str | None = None


@dataclass
class TextReport:
    termination_rate: float
    repetition_rate: float
    distinct_2: float
    hangul_ratio: float | None
    mean_chars: float
    tokens_per_s: float
    chrf: float | None
    n_prompts: int
    answers: list[Answer] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "answers"}


def text_report(answers: Sequence[Answer]) -> TextReport:
    n = len(answers)
    if n == 0:
        raise UserError("no prompts to evaluate")
    korean = [a for a in answers if is_korean(a.prompt)]
    with_ref = [a for a in answers if a.reference]
    return TextReport(
        termination_rate=sum(a.stop_reason in ("end_of_turn", "stop_string") for a in answers) / n,
        repetition_rate=sum(has_repeated_4gram(a.text) for a in answers) / n,
        distinct_2=distinct_2([a.text for a in answers]),
        hangul_ratio=(sum(hangul_ratio(a.text) for a in korean) / len(korean)) if korean else None,
        mean_chars=sum(len(a.text) for a in answers) / n,
        tokens_per_s=sum(a.tokens_per_s for a in answers) / n,
        chrf=chrf([a.text for a in with_ref], [a.reference or "" for a in with_ref]) if with_ref else None,
        n_prompts=n,
        answers=list(answers),
    )


def read_prompts(path: Path) -> list[tuple[str, str | None]]:
    """JSONL, one {"prompt": ..., "reference": ...?} a line; errors name file and line."""
    if not path.is_file():
        raise UserError(f"prompts file not found: {path}")
    rows: list[tuple[str, str | None]] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}:{n}: invalid JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(obj, dict) or not isinstance(obj.get("prompt"), str) or not obj["prompt"].strip():
            raise UserError(f"{path}:{n}: each line needs a non-empty string 'prompt'")
        ref = obj.get("reference")
        if ref is not None and not isinstance(ref, str):
            raise UserError(f"{path}:{n}: 'reference' must be a string")
        rows.append((obj["prompt"], ref))
    if not rows:
        raise UserError(f"{path}: no prompts")
    return rows


def generate_answers(persona, prompts, settings, base_only: bool = False, progress=None) -> list[Answer]:
    """One fresh single-turn chat per prompt, with the persona's own generation settings."""
    from ohlora.chat import ChatSession

    session = ChatSession(settings, persona, use_adapter=not base_only)
    answers = []
    for prompt, ref in prompts:
        session.history.clear()
        for _ in session.send(prompt):
            pass
        r = session.last
        answers.append(Answer(prompt, r.text, r.stop_reason, r.completion_tokens, r.tokens_per_s, ref))
        if progress:
            progress()
    return answers


def eval_losses(persona, max_length: int = 1024) -> dict[str, list[float]]:
    """Per-example assistant-token loss on the persona's eval.jsonl: base and every adapter
    trained on the same base (keys: 'base', and each persona id)."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ohlora.models import ensure_hf_copy, resolve_base
    from ohlora.personas import list_personas
    from ohlora.prompt import template_for
    from training.data import load_chat_jsonl
    from training.encode import Encoder, encode_rows

    base = resolve_base(persona.base)
    folder = ensure_hf_copy(base)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    rows = load_chat_jsonl(persona.eval_file, strict=False).rows
    encoded, _ = encode_rows(rows, Encoder(tokenizer, template_for(base)), persona, max_length)
    others = [p for p in list_personas() if p.adapter_dir and resolve_base(p.base).path == base.path]
    peft = None
    for p in others:
        if peft is None:
            peft = PeftModel.from_pretrained(model, str(p.adapter_dir), adapter_name=p.id)
        else:
            peft.load_adapter(str(p.adapter_dir), adapter_name=p.id)

    def losses(run) -> list[float]:
        out = []
        with torch.inference_mode():
            for enc in encoded:
                ids = torch.tensor([enc.input_ids])
                labels = torch.tensor([enc.labels])
                out.append(float(run(input_ids=ids, labels=labels).loss))
        return out

    result: dict[str, list[float]] = {}
    if peft is None:
        result["base"] = losses(model)
        return result
    with peft.disable_adapter():
        result["base"] = losses(peft)
    for p in others:
        peft.set_adapter(p.id)
        result[p.id] = losses(peft)
    return result


def loss_summary(persona_id: str, per_example: dict[str, list[float]]) -> dict:
    """Mean losses, the persona adapter's drop vs base, and how often it beats each other adapter."""
    mean = {k: sum(v) / len(v) for k, v in per_example.items() if v}
    out: dict = {"eval_loss": mean}
    own = per_example.get(persona_id)
    if own:
        out["drop_vs_base"] = 1 - mean[persona_id] / mean["base"]
        out["beats_other_adapter"] = {
            k: sum(a < b for a, b in zip(own, v)) / len(own)
            for k, v in per_example.items()
            if k not in ("base", persona_id)
        }
    return out
