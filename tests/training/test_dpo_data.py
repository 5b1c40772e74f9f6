"""`ohlora train --method dpo` without a model (fast tier): reading pairs in LLaMA-Factory's ranking
format, the held-out split, the margins the report shows, the flags and the checks before loading."""

from __future__ import annotations

import argparse
import json

import pytest

from ohlora.errors import UserError
from training.cli import add_arguments, config_from_args
from training.config import DPO_DEFAULTS, TrainConfig
from training.dpo import margins, plan_dpo
from training.pairs import load_pairs, split_pairs

SHAREGPT = {
    "conversations": [{"from": "human", "value": "안녕"}, {"from": "gpt", "value": "안녕!"},
                      {"from": "human", "value": "비 온다"}],
    "chosen": {"from": "gpt", "value": "오 비다! 음악 틀자."},
    "rejected": {"from": "gpt", "value": "우산을 챙기십시오."},
    "system": "짧게 말해.", "persona": "ohlora", "now": "2026-03-14T21:40",
}


def write(path, obj):
    path.write_text(json.dumps(obj, ensure_ascii=False), encoding="utf-8")
    return path


def test_sharegpt_ranking_pairs_as_from_chats_writes_them(tmp_path):
    (pair,), problems = load_pairs(write(tmp_path / "p.json", [SHAREGPT]))
    assert problems == []
    assert pair.history == [{"role": "user", "content": "안녕"}, {"role": "assistant", "content": "안녕!"}]
    assert (pair.user, pair.chosen, pair.rejected) == ("비 온다", "오 비다! 음악 틀자.", "우산을 챙기십시오.")
    assert (pair.system, pair.persona, pair.now.isoformat()) == ("짧게 말해.", "ohlora", "2026-03-14T21:40:00")
    # a from-chats folder is read through its preference.json
    (tmp_path / "out").mkdir()
    write(tmp_path / "out" / "preference.json", [SHAREGPT])
    assert len(load_pairs(tmp_path / "out")[0]) == 1


def test_alpaca_ranking_and_jsonl(tmp_path):
    lines = [json.dumps({"instruction": "요약해", "input": "긴 글", "chosen": "짧은 요약", "rejected": "몰라요"},
                        ensure_ascii=False), "{broken", json.dumps(SHAREGPT, ensure_ascii=False)]
    path = tmp_path / "p.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    pairs, problems = load_pairs(path)
    assert [(p.user, p.chosen) for p in pairs] == [("요약해\n긴 글", "짧은 요약"), ("비 온다", "오 비다! 음악 틀자.")]
    assert [str(p) for p in problems] == [f"{path}:2: invalid JSON (Expecting property name enclosed in double quotes)"]


@pytest.mark.parametrize("change, reason", [
    ({"rejected": {"from": "gpt", "value": "오 비다! 음악 틀자."}}, "chosen and rejected are the same text"),
    ({"chosen": ""}, "'chosen' must be a non-empty reply"),
    ({"conversations": [{"from": "human", "value": "a"}, {"from": "gpt", "value": "b"}]}, "end with the user's message"),
    ({"conversations": [{"from": "gpt", "value": "a"}, {"from": "human", "value": "b"}]}, "turns must alternate"),
    ({"conversations": [{"from": "robot", "value": "a"}]}, "'from' must be human or gpt"),
    ({"now": "yesterday"}, "'now' must be an ISO date-time"),
])
def test_bad_pairs_are_problems_with_file_and_row(tmp_path, change, reason):
    path = write(tmp_path / "p.json", [SHAREGPT, {**SHAREGPT, **change}])
    pairs, problems = load_pairs(path)
    assert len(pairs) == 1 and len(problems) == 1
    assert str(problems[0]).startswith(f"{path}:2: ") and reason in str(problems[0])


def test_not_a_list_or_missing_is_one_clear_error(tmp_path):
    with pytest.raises(UserError, match="expected a JSON list of pairs"):
        load_pairs(write(tmp_path / "p.json", {"chosen": "x"}))
    with pytest.raises(UserError, match="ohlora data from-chats"):
        load_pairs(tmp_path / "nope.json")


def test_held_out_split_is_reproducible_and_disjoint(tmp_path):
    pairs, _ = load_pairs(write(tmp_path / "p.json", [{**SHAREGPT, "chosen": f"답 {i}"} for i in range(10)]))
    train, held = split_pairs(pairs, 0.2, seed=42)
    assert len(train) == 8 and len(held) == 2
    assert {p.chosen for p in train}.isdisjoint({p.chosen for p in held})
    assert [p.chosen for p in held] == [p.chosen for p in split_pairs(pairs, 0.2, seed=42)[1]]
    assert split_pairs(pairs[:4], 0.2, seed=42) == (pairs[:4], [])  # too few to hold any out
    assert split_pairs(pairs, 0.0, seed=42) == (pairs, [])


def test_margins():
    ref = [(-10.0, -12.0), (-8.0, -6.0)]
    assert margins(ref, ref, 0.1) == {"pairs": 2, "reward_margin": 0.0, "reward_accuracy": 0.0, "logp_margin": 0.0,
                                      "logp_accuracy": 0.5, "chosen_logp": -9.0, "rejected_logp": -9.0}
    after = [(-9.0, -13.0), (-7.0, -6.5)]  # both chosen up, both rejected down
    m = margins(after, ref, 0.1)
    assert m["reward_margin"] == pytest.approx(0.1 * ((1 + 1) + (1 + 0.5)) / 2) and m["reward_accuracy"] == 1.0
    assert m["logp_margin"] == pytest.approx((4 - 0.5) / 2) and m["logp_accuracy"] == 0.5
    assert margins([], [], 0.1) == {"pairs": 0}


def parse(*argv: str) -> TrainConfig:
    p = argparse.ArgumentParser()
    add_arguments(p)
    return config_from_args(p.parse_args(list(argv)))


def test_method_dpo_starts_from_its_own_defaults_and_flags_win():
    cfg = parse("--method", "dpo", "--persona", "ohlora", "--lr", "1e-4", "--beta", "0.2")
    assert cfg.method == "dpo" and cfg.lr == 1e-4 and cfg.beta == 0.2
    assert (cfg.epochs, cfg.batch_size) == (DPO_DEFAULTS["epochs"], DPO_DEFAULTS["batch_size"])
    assert parse("--persona", "ohlora") == TrainConfig(persona="ohlora")  # SFT keeps its defaults


def test_checks_before_anything_loads(tmp_path):
    pairs = write(tmp_path / "p.json", [SHAREGPT])
    with pytest.raises(UserError, match="needs preference pairs: --data"):
        plan_dpo(TrainConfig(method="dpo", persona="ohlora", output=str(tmp_path / "o")))
    with pytest.raises(UserError, match="--output DIR is required"):
        plan_dpo(TrainConfig(method="dpo", persona="ohlora", data=str(pairs)))
    with pytest.raises(UserError, match="no SFT adapter there"):
        plan_dpo(TrainConfig(method="dpo", from_adapter=str(tmp_path), data=str(pairs), output=str(tmp_path / "o")))
    with pytest.raises(UserError, match="give --persona ID"):
        plan_dpo(TrainConfig(method="dpo", data=str(pairs), output=str(tmp_path / "o")))
    with pytest.raises(UserError, match="keeps no checkpoints"):
        plan_dpo(TrainConfig(method="dpo", persona="ohlora", data=str(pairs), output=str(tmp_path / "o"), resume=True))
    plan = plan_dpo(TrainConfig(method="dpo", persona="ohlora", data=str(pairs), output=str(tmp_path / "o")))
    assert plan.start.name == "adapter" and (plan.start / "adapter_config.json").is_file()
    with pytest.raises(UserError, match="is the adapter DPO starts from"):
        plan_dpo(TrainConfig(method="dpo", persona="ohlora", data=str(pairs), output=str(plan.start)))
