"""Prompt rendering: golden strings for both template kinds, trimming, training segments."""

from datetime import datetime

import pytest

from ohlora.models import resolve_base
from ohlora.personas import load_persona
from ohlora.prompt import (MEMORY_HEADER, GemmaTemplate, build, build_messages, context_block, now_line,
                           template_for, training_segments)

NOW = datetime(2026, 11, 23, 9, 5)  # a Monday


@pytest.fixture
def persona():
    return load_persona("ohlora")


def test_now_line_names_weekday_and_12_hour_time():
    assert now_line(NOW) == "지금: 2026년 11월 23일 월요일 오전 9시 5분"
    assert now_line(datetime(2026, 12, 31, 23, 59)) == "지금: 2026년 12월 31일 목요일 오후 11시 59분"
    assert now_line(datetime(2026, 1, 1, 12, 0)).endswith("오후 12시 0분")
    assert now_line(datetime(2026, 1, 1, 0, 30)).endswith("오전 12시 30분")


def test_gemma_golden(persona):
    msgs = [
        {"role": "system", "content": "SYS"},
        {"role": "user", "content": "안녕"},
        {"role": "assistant", "content": "안녕!"},
        {"role": "user", "content": "뭐해?"},
    ]
    assert GemmaTemplate().render(msgs, add_generation_prompt=True) == (
        "<start_of_turn>user\nSYS\n\n안녕<end_of_turn>\n"
        "<start_of_turn>model\n안녕!<end_of_turn>\n"
        "<start_of_turn>user\n뭐해?<end_of_turn>\n"
        "<start_of_turn>model\n"
    )


def test_chatml_golden_from_gguf_template(smollm2_gguf):
    template = template_for(resolve_base(str(smollm2_gguf)))
    msgs = [{"role": "system", "content": "SYS"}, {"role": "user", "content": "Hi"}]
    assert template.render(msgs, add_generation_prompt=True) == (
        "<|im_start|>system\nSYS<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    )
    assert template.end_of_turn == "<|im_end|>"


def test_stable_system_text_first_clock_and_memories_next_to_the_new_turn(persona):
    msgs = build_messages(persona, ["다음 주 금요일 부산 여행"], [], "안녕", NOW, include_examples=False)
    assert msgs[0] == {"role": "system", "content": persona.system_prompt.strip()}  # nothing volatile up top
    assert msgs[-1] == {"role": "user", "content": f"[{now_line(NOW)}]\n[{MEMORY_HEADER} \"다음 주 금요일 부산 여행\"]\n안녕"}
    assert build_messages(persona, [], [], "안녕", NOW, False)[-1]["content"] == f"[{now_line(NOW)}]\n안녕"


def test_the_prefix_is_unchanged_from_one_turn_to_the_next(persona):
    """Turn 2's prompt starts with turn 1's prompt plus the reply: the KV cache is reused."""
    t = GemmaTemplate()
    first = build(persona, ["나 땅콩 알레르기 있어"], [], "과자 추천해줘", t, _count_chars, 4000, 200, now=NOW,
                  include_examples=False)
    history = [{"role": "user", "content": "과자 추천해줘", "context": first.context},
               {"role": "assistant", "content": "견과류 없는 걸로 골라 봐!"}]
    later = datetime(2026, 11, 23, 9, 7)
    second = build(persona, ["다른 기억"], history, "고마워", t, _count_chars, 4000, 200, now=later,
                   include_examples=False)
    assert second.text.startswith(first.text + "견과류 없는 걸로 골라 봐!<end_of_turn>\n")
    assert second.context == context_block(later, ["다른 기억"]) and "다른 기억" not in first.text


def test_examples_only_without_adapter(persona):
    with_ex = build_messages(persona, [], [], "x", NOW, include_examples=True)
    without = build_messages(persona, [], [], "x", NOW, include_examples=False)
    assert len(with_ex) == len(without) + 2 * len(persona.examples)


def _count_chars(text: str) -> int:
    return len(text)


def test_trimming_drops_oldest_history_first(persona):
    history = []
    for i in range(30):
        history += [{"role": "user", "content": f"질문{i} " * 20}, {"role": "assistant", "content": f"답{i} " * 20}]
    prompt = build(persona, [], history, "마지막", GemmaTemplate(), _count_chars, 2500, 200, now=NOW,
                   include_examples=False)
    assert len(prompt.text) <= 2300
    assert prompt.dropped_turns > 0 and prompt.dropped_turns % 2 == 0
    assert "질문29" in prompt.text and "질문0 " not in prompt.text
    assert prompt.text.endswith("]\n마지막<end_of_turn>\n<start_of_turn>model\n")
    assert not prompt.truncated_input


def test_huge_input_is_cut_keeping_its_end(persona):
    text = "가" * 50_000 + "끝"
    prompt = build(persona, [], [], text, GemmaTemplate(), _count_chars, 4000, 200, now=NOW)
    assert prompt.truncated_input and len(prompt.text) <= 3800
    assert "가끝<end_of_turn>" in prompt.text


def test_training_segments_mask_only_assistant_turns():
    msgs = [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "b"},
        {"role": "user", "content": "c"},
        {"role": "assistant", "content": "d"},
    ]
    segs = training_segments(msgs, GemmaTemplate())
    assert segs == [
        ("<start_of_turn>user\nS\n\na<end_of_turn>\n<start_of_turn>model\n", False),
        ("b<end_of_turn>\n", True),
        ("<start_of_turn>user\nc<end_of_turn>\n<start_of_turn>model\n", False),
        ("d<end_of_turn>\n", True),
    ]
    assert "".join(s for s, _ in segs) == GemmaTemplate().render(msgs, add_generation_prompt=False)
