"""Batches: padding-free packing (the default) or right padding.

Padding-free: a batch's conversations are laid end to end in one row, with position ids
restarting at 0 for each; transformers turns the restarts into a block-diagonal causal
mask (no attention across samples) and nothing is spent on padding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class PackedCollator:
    def __call__(self, examples: list[dict]) -> dict:
        ids = [torch.as_tensor(e["input_ids"], dtype=torch.long) for e in examples]
        labels = [torch.as_tensor(e["labels"], dtype=torch.long) for e in examples]
        pos = [torch.arange(len(x), dtype=torch.long) for x in ids]
        return {
            "input_ids": torch.cat(ids)[None],
            "labels": torch.cat(labels)[None],
            "position_ids": torch.cat(pos)[None],
        }


@dataclass
class PaddedCollator:
    pad_token_id: int

    def __call__(self, examples: list[dict]) -> dict:
        width = max(len(e["input_ids"]) for e in examples)
        n = len(examples)
        ids = torch.full((n, width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((n, width), -100, dtype=torch.long)
        mask = torch.zeros((n, width), dtype=torch.long)
        for i, e in enumerate(examples):
            k = len(e["input_ids"])
            ids[i, :k] = torch.as_tensor(e["input_ids"])
            labels[i, :k] = torch.as_tensor(e["labels"])
            mask[i, :k] = 1
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}


def real_tokens(batch: dict) -> int:
    """Unpadded tokens in a batch."""
    if "attention_mask" in batch:
        return int(batch["attention_mask"].sum())
    return int(batch["input_ids"].numel())
