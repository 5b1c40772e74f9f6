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
VOCAB_BLOCK = 16384  # output rows per block in token_losses: 256 x 16k floats = 16 MiB


def _tile_logits(
    h: torch.Tensor, weight: torch.Tensor, softcap: float, acc: torch.dtype = torch.float32
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Logits of one tile of rows in `acc` (soft-capped when the model caps them) and the tanh."""
    logits = (h @ weight.t()).to(acc)
    if not softcap:
        return logits, None
    t = torch.tanh(logits / softcap)
    return t * softcap, t


class _TargetCE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, labels, softcap, chunk, denom):  # noqa: D401
        losses = hidden.new_zeros((), dtype=torch.float32)
        grad = torch.empty_like(hidden) if hidden.requires_grad else None
        for s in range(0, hidden.shape[0], chunk):
            y = labels[s : s + chunk]
            logits, t = _tile_logits(hidden[s : s + chunk], weight, softcap)
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


def token_losses(
    hidden: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor, softcap: float | None = None,
    chunk: int = 256, vocab_block: int = VOCAB_BLOCK,
) -> torch.Tensor:
    """Each row's next-token loss, no gradient. hidden: (N, H) at the predicting positions;
    targets: (N,) the tokens they predict; returns (N,) float32 (float64 for float64 input).

    The vocabulary runs in blocks with a running logsumexp, so no (rows x vocab) float
    tensor is made: the exponentials stay in cache, which halves the time after the
    product on a CPU.
    """
    acc = torch.promote_types(hidden.dtype, torch.float32)
    out = torch.empty(targets.numel(), dtype=acc, device=hidden.device)
    for s in range(0, targets.numel(), chunk):
        h, y = hidden[s : s + chunk], targets[s : s + chunk]
        top = torch.full((h.shape[0],), -torch.inf, dtype=acc, device=h.device)
        total = torch.zeros_like(top)
        for v in range(0, weight.shape[0], vocab_block):
            logits, _ = _tile_logits(h, weight[v : v + vocab_block], softcap or 0.0, acc)
            new_top = torch.maximum(top, logits.amax(dim=1))
            total = total * torch.exp(top - new_top) + torch.exp(logits - new_top[:, None]).sum(dim=1)
            top = new_top
        target = (h.to(acc) * weight[y].to(acc)).sum(dim=1)
        if softcap:
            target = torch.tanh(target / softcap) * softcap
        out[s : s + chunk] = top + torch.log(total) - target
    return out


def reference_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Plain shifted cross-entropy over full logits (for tests)."""
    return F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(), ignore_index=-100)
