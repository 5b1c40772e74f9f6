"""Cross-entropy on the target positions only, without the full logits.

Gemma's output layer has 262k rows: on a short persona turn it costs more than the whole
transformer. Chat training only needs logits where the labels are (assistant tokens), so
the backbone's hidden states are gathered at those positions and projected in chunks; the
gradient with respect to the hidden states is computed in the same pass (softmax - onehot),
so no (tokens x vocab) tensor is kept for backward. The output layer is frozen under LoRA
(tied to the embeddings), so no gradient is needed for it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

CHUNK = 128  # rows per output-layer tile: 128 x 262k floats = 128 MiB


class _TargetCE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, labels, softcap, chunk, denom):  # noqa: D401
        losses = hidden.new_zeros((), dtype=torch.float32)
        grad = torch.empty_like(hidden) if hidden.requires_grad else None
        for s in range(0, hidden.shape[0], chunk):
            h = hidden[s : s + chunk]
            y = labels[s : s + chunk]
            logits = (h @ weight.t()).float()
            if softcap:
                t = torch.tanh(logits / softcap)
                logits = t * softcap
            lse = torch.logsumexp(logits, dim=-1)
            losses += (lse - logits.gather(1, y[:, None]).squeeze(1)).sum()
            if grad is not None:
                p = logits.sub_(lse[:, None]).exp_()  # softmax, in place: one tile of memory
                p[torch.arange(y.numel(), device=y.device), y] -= 1.0
                if softcap:
                    p *= 1.0 - t * t  # d(softcap * tanh(x / softcap)) / dx
                grad[s : s + chunk] = (p.to(weight.dtype) @ weight).to(hidden.dtype)
        ctx.save_for_backward(grad)
        ctx.denom = denom
        return losses / denom

    @staticmethod
    def backward(ctx, grad_out):
        (grad,) = ctx.saved_tensors
        return grad * (grad_out / ctx.denom).to(grad.dtype), None, None, None, None, None


def target_cross_entropy(
    hidden: torch.Tensor,
    labels: torch.Tensor,
    weight: torch.Tensor,
    softcap: float | None = None,
    num_items: int | torch.Tensor | None = None,
    chunk: int = CHUNK,
) -> tuple[torch.Tensor, int]:
    """Mean next-token loss over labels != -100. hidden: (B, T, H); labels: (B, T) unshifted.

    Returns (loss, number of target tokens in this batch). `num_items` overrides the
    denominator (gradient accumulation over several micro-batches).
    """
    h = hidden[:, :-1]
    y = labels[:, 1:].to(hidden.device)
    mask = y != -100
    n = int(mask.sum())
    sel = h[mask]
    if n == 0:
        return hidden.sum() * 0.0, 0
    denom = float(num_items) if num_items is not None else float(n)
    if torch.is_autocast_enabled(hidden.device.type):
        dtype = torch.get_autocast_dtype(hidden.device.type)
        sel, w = sel.to(dtype), weight.to(dtype)
    else:
        w = weight.to(sel.dtype)
    loss = _TargetCE.apply(sel, w.detach(), y[mask], softcap or 0.0, chunk, max(denom, 1.0))
    return loss, n


def reference_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Plain shifted cross-entropy over full logits (for tests)."""
    return F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(), ignore_index=-100)
