"""Completion-only masks: golden spans for a multi-turn conversation, rendered as chat renders it."""

from __future__ import annotations

from datetime import datetime

import pytest

from ohlora.personas import load_persona
from ohlora.prompt import GemmaTemplate, build_messages, user_content
from training.data import Conversation
from training.encode import IGNORE, Encoder, encode_rows, row_messages

pytestmark = pytest.mark.slow  # needs the Gemma tokenizer (from the dequantized HF copy)

TURNS = [
    {"role": "user", "content": "슈트 몇 벌 있어요?"},
    {"role": "assistant", "content": "마흔 벌 넘게. 세는 건 자비스 담당이죠."},
    {"role": "user", "content": "제일 좋아하는 건?"},
    {"role": "assistant", "content": "Mark 42."},
]


@pytest.fixture(scope="module")
def encoder(gemma_hf):
    from transformers import AutoTokenizer

    return Encoder(AutoTokenizer.from_pretrained(str(gemma_hf)), GemmaTemplate())


def spans(tok, ids, labels):
    """Consecutive runs of (is_target, decoded text)."""
    out, cur, flag = [], [], None
    for i, l in zip(ids, labels):
        t = l != IGNORE
        if flag is not None and t != flag:
            out.append((flag, tok.decode(cur)))
            cur = []
        cur.append(i)
        flag = t
    out.append((flag, tok.decode(cur)))
    return out


def test_golden_multi_turn_mask(encoder):
    tok = encoder.tokenizer
    row = Conversation([{"role": "system", "content": "짧게 말해."}, *TURNS], [], "x:1")
    enc = encoder.encode(row, None, datetime(2026, 1, 2, 3, 4))
    assert enc.input_ids[0] == tok.bos_token_id and enc.labels[0] == IGNORE
    assert spans(tok, enc.input_ids, enc.labels) == [
        (False, "<bos><start_of_turn>user\n짧게 말해.\n\n슈트 몇 벌 있어요?<end_of_turn>\n<start_of_turn>model\n"),
        (True, "마흔 벌 넘게. 세는 건 자비스 담당이죠.<end_of_turn>\n"),
        (False, "<start_of_turn>user\n제일 좋아하는 건?<end_of_turn>\n<start_of_turn>model\n"),
        (True, "Mark 42.<end_of_turn>\n"),
    ]
    eot = tok.convert_tokens_to_ids("<end_of_turn>")
    targets = [i for i, l in zip(enc.input_ids, enc.labels) if l != IGNORE]
    assert targets.count(eot) == 2  # stopping is learned after each answer
    assert all(l in (IGNORE, i) for i, l in zip(enc.input_ids, enc.labels))


def test_persona_rows_render_like_chat(encoder):
    """Persona system prompt, then the user turn under its context block (clock + recalled
    memory), exactly what chat builds for that message (no example turns)."""
    persona = load_persona("ironman")
    now = datetime(2026, 5, 1, 12, 0)
    row = Conversation(list(TURNS[:2]), ["다음 주에 부산 여행"], "x:2")
    chat = build_messages(persona, ["다음 주에 부산 여행"], [], TURNS[0]["content"], now=now, include_examples=False)
    got = row_messages(row, persona, now)
    assert [user_content(m) if m["role"] == "user" else m["content"] for m in got] == [
        user_content(m) if m["role"] == "user" else m["content"] for m in chat] + [TURNS[1]["content"]]
    enc = encoder.encode(row, persona, now)
    text = encoder.tokenizer.decode(enc.input_ids)
    assert GemmaTemplate().render(chat, add_generation_prompt=True) in text
    assert '[사용자가 전에 한 말: "다음 주에 부산 여행"]' in text and "2026년 5월 1일 금요일" in text


def test_later_turns_keep_their_own_context_block(encoder):
    """Each user turn carries its clock (a little later every turn), like history in chat."""
    persona = load_persona("ironman")
    row = Conversation(list(TURNS), [], "x:3")
    got = row_messages(row, persona, datetime(2026, 5, 1, 12, 0))
    users = [user_content(m) for m in got if m["role"] == "user"]
    assert len(users) == 2 and "오후 12시 0분" in users[0] and "오후 12시 2분" in users[1]
    assert users[1].endswith("제일 좋아하는 건?")


def test_too_long_rows_are_reported(encoder):
    long_row = Conversation([{"role": "user", "content": "긴 " * 300}, {"role": "assistant", "content": "응"}], [], "f.jsonl:7")
    ok_row = Conversation(list(TURNS[:2]), [], "f.jsonl:8")
    enc, problems = encode_rows([long_row, ok_row], encoder, None, max_length=64)
    assert len(enc) == 1 and enc[0].source == "f.jsonl:8"
    assert str(problems[0]).startswith("f.jsonl:7: too long (") and "--max-length 64" in str(problems[0])
