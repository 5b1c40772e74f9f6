"""A few greedy answers before and after training, for report.json (as chat would prompt them)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    from ohlora.personas import Persona

    from training.data import Conversation
    from training.encode import Encoder

SAMPLE_FILE = "samples_before.json"  # in the partial folder, so a resumed run keeps its "before"


def sample_rows(eval_rows: Sequence["Conversation"], train_rows: Sequence["Conversation"], n: int) -> list:
    """The first `n` eval rows, or training rows when there is no eval set."""
    return list(eval_rows or train_rows)[:n]


def generate_samples(model, tokenizer, encoder: "Encoder", persona: "Persona | None",
                     rows: Sequence["Conversation"], max_new_tokens: int) -> list[dict]:
    """Greedy answers to the first user turn of a few rows (as chat would prompt them)."""
    import torch

    from training.encode import row_datetime, row_messages

    out = []
    was_training = model.training
    model.eval()
    for i, row in enumerate(rows):
        first_user = row.turns[:1]
        msgs = row_messages(type(row)(list(first_user), row.memory, row.source), persona, row_datetime(i))
        if row.system and persona is None:
            msgs.insert(0, {"role": "system", "content": row.system})
        text = encoder.template.render(msgs, add_generation_prompt=True)
        ids = encoder.prefix + tokenizer(text, add_special_tokens=False)["input_ids"]
        inp = torch.tensor([ids], device=model.device)
        end_id = tokenizer.convert_tokens_to_ids(encoder.template.end_of_turn)
        eos = [x for x in {end_id, tokenizer.eos_token_id} if isinstance(x, int) and x >= 0]
        with torch.no_grad():
            gen = model.generate(
                input_ids=inp, attention_mask=torch.ones_like(inp), max_new_tokens=max_new_tokens,
                do_sample=False, eos_token_id=eos, pad_token_id=tokenizer.pad_token_id or 0, use_cache=True,
            )
        new = gen[0, inp.shape[1]:].tolist()
        stopped = bool(new) and new[-1] in eos
        out.append({
            "prompt": first_user[0]["content"], "memory": row.memory,
            "answer": tokenizer.decode(new, skip_special_tokens=True).strip(), "stopped": stopped,
        })
    if was_training:
        model.train()
    return out


def samples_before(model, tokenizer, encoder: "Encoder", persona: "Persona | None",
                   rows: Sequence["Conversation"], max_new_tokens: int, partial: Path, say=print) -> list[dict]:
    """The untrained model's answers, generated once per run (a resumed run reads them back)."""
    if not rows:
        return []
    path = partial / SAMPLE_FILE
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    say(f"sampling {len(rows)} answers before training …")
    answers = generate_samples(model, tokenizer, encoder, persona, rows, max_new_tokens)
    path.write_text(json.dumps(answers, ensure_ascii=False, indent=2), encoding="utf-8")
    return answers
