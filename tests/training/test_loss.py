"""The target-only loss equals plain cross-entropy over full logits, in value and gradient."""

from __future__ import annotations

import pytest
import torch

from training.loss import reference_cross_entropy, target_cross_entropy


@pytest.mark.parametrize("softcap", [None, 5.0])
def test_matches_full_logits(softcap):
    torch.manual_seed(0)
    hidden = torch.randn(2, 9, 8, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(50, 8, dtype=torch.float64)
    labels = torch.randint(0, 50, (2, 9))
    labels[0, :4] = -100
    labels[1, 6:] = -100
    logits = hidden @ weight.t()
    if softcap:
        logits = torch.tanh(logits / softcap) * softcap
    ref = reference_cross_entropy(logits, labels)
    (g_ref,) = torch.autograd.grad(ref, hidden)
    loss, n = target_cross_entropy(hidden, labels, weight, softcap, chunk=3)
    (g,) = torch.autograd.grad(loss, hidden)
    assert n == int((labels[:, 1:] != -100).sum())
    torch.testing.assert_close(loss.double(), ref.double())
    torch.testing.assert_close(g, g_ref)


def test_num_items_sets_the_denominator_and_empty_batch_is_zero():
    hidden = torch.randn(1, 5, 4, requires_grad=True)
    weight = torch.randn(10, 4)
    labels = torch.tensor([[-100, 1, 2, -100, 3]])
    mean, n = target_cross_entropy(hidden, labels, weight)
    summed, _ = target_cross_entropy(hidden, labels, weight, num_items=1)
    torch.testing.assert_close(summed, mean * n)
    zero, n0 = target_cross_entropy(hidden, torch.full((1, 5), -100), weight)
    assert n0 == 0 and zero.item() == 0.0
    zero.backward()  # still connected to the graph


@pytest.mark.parametrize("softcap", [None, 5.0])
def test_token_losses_are_per_token_cross_entropy(softcap):
    from training.loss import token_losses

    torch.manual_seed(1)
    hidden, weight, y = torch.randn(7, 8, dtype=torch.float64), torch.randn(50, 8, dtype=torch.float64), torch.randint(0, 50, (7,))
    logits = hidden @ weight.t()
    if softcap:
        logits = torch.tanh(logits / softcap) * softcap
    ref = torch.nn.functional.cross_entropy(logits, y, reduction="none")
    torch.testing.assert_close(token_losses(hidden, y, weight, softcap, chunk=3, vocab_block=16), ref)
