"""`ohlora eval`'s measures: does a persona answer in character, in Korean, and stop cleanly?

Text metrics are pure functions over answers (tested on hand-made answers with known
values); the answers themselves come from the app (`ohlora.evaluation`). Eval loss runs the persona's `eval.jsonl` through the base and every adapter on
the same base, assistant tokens only, with the same rendering as training and chat.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from ohlora.errors import UserError

_WORD = re.compile(r"\w+", re.UNICODE)
_HANGUL = re.compile(r"[\uac00-\ud7a3\u3131-\u318e]")
BATCH_TOKENS = 2048  # padded tokens per eval-loss batch


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
    by_app: bool = False  # the app wrote it without the model (a clock or safety reply)
    now: str = ""  # the clock when the answer was asked for ("2026-12-06 19:30"), for reading clock answers


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
    app_replies: int = 0  # answers the app wrote itself (clock, safety): not in termination or tok/s
    answers: list[Answer] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "answers"}


def text_report(answers: Sequence[Answer]) -> TextReport:
    n = len(answers)
    if n == 0:
        raise UserError("no prompts to evaluate")
    korean = [a for a in answers if is_korean(a.prompt)]
    with_ref = [a for a in answers if a.reference]
    model = [a for a in answers if not a.by_app]  # what the model wrote
    return TextReport(
        termination_rate=sum(a.stop_reason in ("end_of_turn", "stop_string") for a in model) / len(model) if model else 1.0,
        repetition_rate=sum(has_repeated_4gram(a.text) for a in answers) / n,
        distinct_2=distinct_2([a.text for a in answers]),
        hangul_ratio=(sum(hangul_ratio(a.text) for a in korean) / len(korean)) if korean else None,
        mean_chars=sum(len(a.text) for a in answers) / n,
        tokens_per_s=sum(a.tokens_per_s for a in model) / len(model) if model else 0.0,
        chrf=chrf([a.text for a in with_ref], [a.reference or "" for a in with_ref]) if with_ref else None,
        n_prompts=n,
        app_replies=n - len(model),
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


@dataclass
class LossSetup:
    """What eval loss runs on: the base (every adapter injected, none active yet) and the encoded set."""

    model: object  # the causal LM; with adapters, their LoRA layers sit inside it
    peft: object | None  # the PeftModel over `model`, None when no adapter shares the base
    adapters: list[str]  # persona ids, in list_personas() order
    encoded: list  # training.encode.Encoded


def loss_setup(persona, max_length: int = 1024, eval_file: Path | None = None) -> LossSetup:
    """Load the persona's base once, every adapter trained on that base, and its eval.jsonl
    (or `eval_file`, the same format) encoded."""
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
    rows = load_chat_jsonl(eval_file or persona.eval_file, strict=False).rows
    encoded, _ = encode_rows(rows, Encoder(tokenizer, template_for(base)), persona, max_length)
    others = [p for p in list_personas() if p.adapter_dir and resolve_base(p.base).path == base.path]
    peft = None
    for p in others:
        if peft is None:
            peft = PeftModel.from_pretrained(model, str(p.adapter_dir), adapter_name=p.id)
        else:
            peft.load_adapter(str(p.adapter_dir), adapter_name=p.id)
    return LossSetup(model, peft, [p.id for p in others], encoded)


def losses_per_adapter(setup: LossSetup, losses: Callable[[], list[float]]) -> dict[str, list[float]]:
    """`losses()` with the adapters off ('base'), then with each adapter active in turn."""
    if setup.peft is None:
        return {"base": losses()}
    with setup.peft.disable_adapter():
        result = {"base": losses()}
    for pid in setup.adapters:
        setup.peft.set_adapter(pid)
        result[pid] = losses()
    return result


def example_losses(model, encoded: Sequence, batch_tokens: int = BATCH_TOKENS, bf16: bool = False) -> list[float]:
    """Mean assistant-token loss of each encoded example, in order: the model's own loss, cheaper.

    - The backbone's last hidden states go through the output layer only at target positions
      (`training.loss.token_losses`), a batch's targets together: Gemma's 262k-row output
      layer over every position costs more than the transformer.
    - The tokens every example starts with (the persona's system prompt) run once; each
      example continues from their KV cache. Attention is causal, so those positions are
      the same in every example.
    - The rest run in batches of similar length (right padding, which no real position sees).
    - `bf16`: matrix products in bfloat16 (autocast; the residual stream, norms and softmax
      stay float32): about 3x faster where the CPU computes bfloat16 natively, mean losses
      within ~0.1% of float32.
    """
    import contextlib
    import copy
    import inspect

    import torch
    from transformers import DynamicCache

    from training.collate import PaddedCollator
    from training.encode import IGNORE
    from training.loss import token_losses

    softcap = getattr(model.config.get_text_config(), "final_logit_softcapping", None)
    backbone = getattr(model, model.base_model_prefix)
    weight = model.get_output_embeddings().weight.detach()
    if bf16:
        weight = weight.to(torch.bfloat16)  # once, not once per batch
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext
    cache_arg = "cache" if "cache" in inspect.signature(backbone.forward).parameters else "past_key_values"
    collate = PaddedCollator(pad_token_id=0)
    start = shared_prefix(encoded)
    out = [0.0] * len(encoded)
    with torch.inference_mode():
        prefix = None
        if start:
            prefix = DynamicCache(config=model.config)
            with autocast():
                backbone(input_ids=torch.tensor([encoded[0].input_ids[:start]]), use_cache=True, **{cache_arg: prefix})
        for batch in length_batches([len(e.input_ids) - start for e in encoded], batch_tokens):
            inputs = collate([{"input_ids": encoded[i].input_ids[start:], "labels": encoded[i].labels[start:]} for i in batch])
            mask, extra = inputs["attention_mask"], {}
            if prefix is not None:
                past = copy.deepcopy(prefix)
                past.batch_repeat_interleave(len(batch))
                mask = torch.cat([torch.ones(len(batch), start, dtype=mask.dtype), mask], dim=1)
                extra = {cache_arg: past, "use_cache": True}
            with autocast():
                hidden = backbone(input_ids=inputs["input_ids"], attention_mask=mask, **extra).last_hidden_state
            labels = inputs["labels"][:, 1:]
            scored = labels != IGNORE
            tokens = token_losses(hidden[:, :-1][scored].to(weight.dtype), labels[scored], weight, softcap)
            for i, row in zip(batch, tokens.split(scored.sum(dim=1).tolist())):
                out[i] = float(row.mean())
    return out


def shared_prefix(encoded: Sequence) -> int:
    """How many leading tokens all examples share, stopping before the first target's
    predicting position (every position whose output is scored stays in the per-example part)."""
    from training.encode import IGNORE

    if not encoded:
        return 0
    first = encoded[0].input_ids
    limit = min(next(j for j, y in enumerate(e.labels) if y != IGNORE) for e in encoded) - 1
    n = 0
    while n < limit and all(e.input_ids[n] == first[n] for e in encoded):
        n += 1
    return n


def length_batches(lengths: Sequence[int], batch_tokens: int) -> list[list[int]]:
    """Indices grouped by length (shortest first), each group's padded size within `batch_tokens`
    (a longer example goes alone)."""
    batches: list[list[int]] = []
    for i in sorted(range(len(lengths)), key=lambda i: lengths[i]):
        if batches and lengths[i] * (len(batches[-1]) + 1) <= batch_tokens:
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches


def eval_losses(
    persona, max_length: int = 1024, bf16: bool | None = None, eval_file: Path | None = None
) -> dict[str, list[float]]:
    """Per-example assistant-token loss on the persona's eval.jsonl (or `eval_file`): base and
    every adapter trained on the same base (keys: 'base', and each persona id). `bf16`: see
    `example_losses`; None: where the CPU computes bfloat16 natively."""
    from training.model import default_threads
    from training.plan import native_cpu_bf16

    default_threads()
    setup = loss_setup(persona, max_length, eval_file)
    bf16 = native_cpu_bf16() if bf16 is None else bf16
    return losses_per_adapter(setup, lambda: example_losses(setup.model, setup.encoded, bf16=bf16))


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
