"""A tiny DPO run on the real Gemma 3 270M, on top of the shipped 오로라 SFT adapter: eight pairs
(warm 반말 chosen over stiff 존댓말 rejected, as a user swiping past stiff replies would make
them), six trained on for 3 steps, two held out. The reward margin must move the right way on
both; the reference adapter must not move; the output is one adapter of our own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ohlora.personas import load_persona
from training.config import TrainConfig

pytestmark = pytest.mark.slow

PAIRS = [  # (user, chosen, rejected): ours, written for this test
    ("오늘 시험 망쳤어", "에고, 속상했겠다. 오늘은 맛있는 거 먹고 푹 쉬자!", "시험 결과는 다음에 더 노력하시면 됩니다."),
    ("비 온다", "오 비다! 빗소리 들으면서 음악 틀자.", "우산을 챙기시기 바랍니다."),
    ("나 고양이 입양했어", "헐 대박! 이름 뭐야? 사진 보여줘!", "입양을 축하드립니다."),
    ("잠이 안 와", "나도 같이 깨어 있을게. 따뜻한 우유 한 잔 어때?", "수면 위생을 지키시는 것을 권장합니다."),
    ("배고파", "뭐 먹고 싶어? 나는 떡볶이 추천!", "식사를 하시기 바랍니다."),
    ("친구랑 싸웠어", "헉, 무슨 일 있었어? 얘기해 줘.", "갈등 상황은 대화로 해결하시기 바랍니다."),
    ("주말에 뭐 하지", "산책 가자! 날씨 좋으면 공원 최고야.", "주말 일정은 개인의 선택입니다."),
    ("케이크 구웠는데 탔어", "ㅋㅋ 나도 베이킹 자주 망해. 그래도 시도한 게 멋져!", "오븐 온도를 확인하십시오."),
]


def write_pairs(path: Path) -> Path:
    """The pairs as `ohlora data from-chats` writes them (LLaMA-Factory ranking, sharegpt)."""
    system = load_persona("ohlora").system_prompt.strip()
    rows = [{"conversations": [{"from": "human", "value": u}], "chosen": {"from": "gpt", "value": c},
             "rejected": {"from": "gpt", "value": r}, "system": system, "persona": "ohlora", "kind": "swipe",
             "now": f"2026-03-{10 + i:02d}T20:{5 * i:02d}", "source": f"test pair {i}"}
            for i, (u, c, r) in enumerate(PAIRS)]
    path.write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def dpo_run(gemma_hf, tmp_path_factory):
    from training.dpo import train

    tmp = tmp_path_factory.mktemp("dpo")
    cfg = TrainConfig(method="dpo", persona="ohlora", data=str(write_pairs(tmp / "preference.json")),
                      output=str(tmp / "ohlora-dpo"), max_steps=3, batch_size=2, lr=1e-4, beta=0.1,
                      held_out=0.2, progress=False, gguf=False, samples=0)
    return train(cfg), load_persona("ohlora")


def test_the_reward_margin_moves_the_right_way(dpo_run):
    result, _ = dpo_run
    r = json.loads((result.output / "report.json").read_text(encoding="utf-8"))
    assert r["method"] == "dpo" and r["steps"] == 3 and r["beta"] == 0.1
    assert (r["data"]["train_pairs"], r["data"]["held_out_pairs"]) == (6, 2)
    rm, lp = r["reward_margin"], r["logp_margin"]
    assert rm["train"]["before"] == 0.0 and rm["held_out"]["before"] == 0.0  # the policy starts as the reference
    assert rm["train"]["after"] > 0.05, rm  # chosen replies gained on rejected ones, against the SFT adapter
    assert r["after"]["train"]["reward_accuracy"] >= 0.75
    assert lp["train"]["after"] > lp["train"]["before"]
    assert rm["held_out"]["after"] > 0, rm  # and on pairs it never saw
    assert lp["held_out"]["after"] > lp["held_out"]["before"]
    assert r["reference_frozen"] is True
    assert [h["step"] for h in r["train_loss"]] == [1, 2, 3] and all("reward_margins" in h for h in r["train_loss"])
    print(f"\nDPO 3 steps: reward margin train {rm['train']['before']} -> {rm['train']['after']}, held out "
          f"{rm['held_out']['before']} -> {rm['held_out']['after']}; log-prob margin train {lp['train']['before']} -> "
          f"{lp['train']['after']}, held out {lp['held_out']['before']} -> {lp['held_out']['after']}; "
          f"wall {r['wall_seconds']} s")


def test_the_output_is_the_trained_adapter_alone(dpo_run):
    from safetensors import safe_open

    result, persona = dpo_run
    out = result.output
    assert {p.name for p in out.iterdir()} == {"adapter_config.json", "adapter_model.safetensors", "ohlora_base.json",
                                               "report.json", "loss.png"}
    assert not out.with_name(out.name + ".partial").exists()
    start = persona.folder / persona.adapter
    assert json.loads((out / "ohlora_base.json").read_text()) == json.loads((start / "ohlora_base.json").read_text())
    assert json.loads((out / "adapter_config.json").read_text())["r"] == json.loads((start / "adapter_config.json").read_text())["r"]
    with safe_open(str(out / "adapter_model.safetensors"), "pt") as new, \
            safe_open(str(start / "adapter_model.safetensors"), "pt") as old:
        assert sorted(new.keys()) == sorted(old.keys())  # no copy of the reference in it
        moved = [k for k in new.keys() if not (new.get_tensor(k) == old.get_tensor(k)).all()]
    assert moved, "the adapter did not change"


def test_pairs_render_as_chat_renders_them(gemma_hf, tmp_path):
    """The prompt is the persona's system text once, the pair's clock, the user's message and the
    model's turn; chosen and rejected are the reply and its end-of-turn marker."""
    from transformers import AutoTokenizer

    from ohlora.prompt import GemmaTemplate
    from training.pairs import encode_pairs, load_pairs
    from training.encode import Encoder

    tok = AutoTokenizer.from_pretrained(str(gemma_hf))
    persona = load_persona("ohlora")
    pairs, _ = load_pairs(write_pairs(tmp_path / "p.json"))
    (enc,), kept, problems = encode_pairs(pairs[:1], Encoder(tok, GemmaTemplate()), persona, 1024, 0)
    prompt = tok.decode(enc["prompt_ids"])
    assert prompt.startswith("<bos><start_of_turn>user\n") and prompt.endswith("<start_of_turn>model\n")
    assert prompt.count(persona.system_prompt.strip()) == 1 and "오늘 시험 망쳤어" in prompt and "3월 10일" in prompt
    assert tok.decode(enc["chosen_ids"]) == PAIRS[0][1] + "<end_of_turn>\n"
    assert tok.decode(enc["rejected_ids"]) == PAIRS[0][2] + "<end_of_turn>\n"
    assert problems == []
