"""Helpers shared by the training tests (plain functions; fixtures live in conftest.py)."""

from __future__ import annotations

from pathlib import Path


def changes_logits(adapter: Path) -> float:
    """How far the adapter moves the base's logits in the transformers engine chat uses."""
    import torch

    from ohlora.backends.hf import HFBackend
    from ohlora.models import resolve_base

    backend = HFBackend(resolve_base(""))
    ids = torch.tensor([backend.tokenize("<start_of_turn>user\n안녕<end_of_turn>\n<start_of_turn>model\n")])
    with torch.no_grad():
        before = backend.model(ids).logits
        backend.set_adapter("t", adapter)
        after = backend._peft(ids).logits
    return (after - before).abs().max().item()
