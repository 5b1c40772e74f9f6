"""Eval loss's fast path (target positions only, batches of similar length) gives the model's own loss."""

from __future__ import annotations

import pytest

from training.evaluate import length_batches, shared_prefix


def test_length_batches_group_similar_lengths_within_the_budget():
    lengths = [30, 5, 12, 6, 100, 11]
    batches = length_batches(lengths, batch_tokens=36)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert batches == [[1, 3, 5], [2], [0], [4]]  # 3 x 11 <= 36; 12 opens a new one; 100 goes alone
    assert all(max(lengths[i] for i in b) * len(b) <= 36 for b in batches if len(b) > 1)


def test_shared_prefix_stops_before_the_first_scored_position():
    from training.encode import IGNORE, Encoded

    a = Encoded([1, 2, 3, 4, 5, 6], [IGNORE] * 4 + [5, 6], "a")
    b = Encoded([1, 2, 3, 4, 9, 9, 9], [IGNORE] * 5 + [9, 9], "b")
    assert shared_prefix([a, b]) == 3  # label 4 of `a` is predicted at position 3
    c = Encoded([1, 7, 3, 4, 5], [IGNORE] * 3 + [4, 5], "c")
    assert shared_prefix([a, b, c]) == 1 and shared_prefix([]) == 0


@pytest.mark.slow
@pytest.mark.parametrize("lora", [False, True])
def test_example_losses_match_full_logit_loss(tiny_base, chat_file, lora):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ohlora.prompt import GemmaTemplate
    from training.data import load_data
    from training.encode import Encoder, encode_rows
    from training.evaluate import example_losses

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(str(tiny_base), dtype=torch.float32).eval()
    run = model
    if lora:  # LoRA layers injected in place: the backbone the fast path calls runs them
        from peft import LoraConfig, get_peft_model

        run = get_peft_model(model, LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False))
    tok = AutoTokenizer.from_pretrained(str(tiny_base))
    encoded, _ = encode_rows(load_data(str(chat_file)).rows, Encoder(tok, GemmaTemplate()), None, 256)
    assert len({len(e.input_ids) for e in encoded}) > 1
    fast = example_losses(model, encoded, batch_tokens=3 * max(len(e.input_ids) for e in encoded))
    with torch.inference_mode():
        ref = [float(run(input_ids=torch.tensor([e.input_ids]), labels=torch.tensor([e.labels])).loss) for e in encoded]
    assert fast == pytest.approx(ref, rel=1e-5, abs=1e-6)


@pytest.mark.slow
def test_shared_prefix_past_the_sliding_window(gemma_hf, tmp_path, chat_file):
    """Examples longer than a sliding window, continuing from a shared prefix that is longer too."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from ohlora.prompt import GemmaTemplate
    from training.data import Conversation, load_data
    from training.encode import Encoder, encode_rows
    from training.evaluate import example_losses

    cfg = AutoConfig.from_pretrained(str(gemma_hf))
    cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers = 64, 128, 2
    cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim = 2, 1, 32
    cfg.layer_types, cfg.sliding_window = ["sliding_attention", "full_attention"], 16
    torch.manual_seed(3)
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(str(gemma_hf))
    system = {"role": "system", "content": "너는 친절한 조수야. " * 12}  # a shared prefix of many windows
    rows = [Conversation([system, *r.turns], r.memory, r.source) for r in load_data(str(chat_file)).rows]
    encoded, _ = encode_rows(rows, Encoder(tok, GemmaTemplate()), None, 512)
    assert shared_prefix(encoded) > 3 * cfg.sliding_window
    fast = example_losses(model, encoded, batch_tokens=200)
    with torch.inference_mode():
        ref = [float(model(input_ids=torch.tensor([e.input_ids]), labels=torch.tensor([e.labels])).loss) for e in encoded]
    assert fast == pytest.approx(ref, rel=1e-5, abs=1e-6)


@pytest.mark.slow
def test_bf16_stays_close_to_float32(tiny_base, chat_file):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ohlora.prompt import GemmaTemplate
    from training.data import load_data
    from training.encode import Encoder, encode_rows
    from training.evaluate import example_losses

    model = AutoModelForCausalLM.from_pretrained(str(tiny_base), dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(str(tiny_base))
    encoded, _ = encode_rows(load_data(str(chat_file)).rows, Encoder(tok, GemmaTemplate()), None, 256)
    f32, bf16 = example_losses(model, encoded), example_losses(model, encoded, bf16=True)
    assert sum(bf16) / len(bf16) == pytest.approx(sum(f32) / len(f32), rel=5e-3)
