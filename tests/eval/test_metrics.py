"""`ohlora eval` metrics on hand-made answers with known values."""

import json

import pytest

from ohlora.errors import UserError
from training.evaluate import (
    Answer,
    distinct_2,
    hangul_ratio,
    has_repeated_4gram,
    loss_summary,
    read_prompts,
    text_report,
)
from tests.conftest import run_cli


def test_repeated_4gram_needs_three_occurrences():
    assert not has_repeated_4gram("a b c d a b c d")  # twice
    assert has_repeated_4gram("a b c d a b c d a b c d")  # three times
    assert has_repeated_4gram("나는 오늘 정말 좋아 나는 오늘 정말 좋아 나는 오늘 정말 좋아")
    assert not has_repeated_4gram("짧은 답")


def test_distinct_2_known_value():
    # bigrams: (a b) (b a) (a b) | (c d) -> 3 distinct of 4
    assert distinct_2(["a b a b", "c d"]) == pytest.approx(3 / 4)
    assert distinct_2(["one"]) == 0.0


def test_hangul_ratio_counts_letters_only():
    assert hangul_ratio("안녕하세요!! 123") == 1.0
    assert hangul_ratio("안녕 hi") == pytest.approx(2 / 4)
    assert hangul_ratio("...") == 0.0


def _a(prompt, text, reason="end_of_turn", tps=10.0, ref=None):
    return Answer(prompt, text, reason, len(text), tps, ref)


def test_text_report_known_values():
    answers = [
        _a("안녕?", "안녕! 반가워", tps=10),
        _a("뭐해?", "a b c d a b c d a b c d", reason="max_tokens", tps=20),
        _a("Hello", "Hi there friend", tps=30),
        _a("잘 자", "잘 자 good", reason="stop_string", tps=40),
    ]
    r = text_report(answers)
    assert r.n_prompts == 4
    assert r.termination_rate == pytest.approx(3 / 4)
    assert r.repetition_rate == pytest.approx(1 / 4)
    # Korean prompts: 안녕?, 뭐해?, 잘 자 -> ratios 1.0, 0.0, 2/6
    assert r.hangul_ratio == pytest.approx((1.0 + 0.0 + 2 / 6) / 3)
    assert r.mean_chars == pytest.approx(sum(len(a.text) for a in answers) / 4)
    assert r.tokens_per_s == pytest.approx(25.0)
    assert r.chrf is None


def test_chrf_identical_and_disjoint():
    same = text_report([_a("q", "오늘 날씨 좋다", ref="오늘 날씨 좋다")])
    assert same.chrf == pytest.approx(100.0)
    other = text_report([_a("q", "xyz", ref="오늘 날씨 좋다")])
    assert other.chrf < 5


def test_loss_summary():
    s = loss_summary("ohlora", {"base": [2.0, 2.0], "ohlora": [1.0, 1.0], "ironman": [1.5, 0.5]})
    assert s["drop_vs_base"] == pytest.approx(0.5)
    assert s["beats_other_adapter"] == {"ironman": 0.5}


def test_read_prompts_errors_name_line(tmp_path):
    f = tmp_path / "p.jsonl"
    f.write_text('{"prompt": "a"}\n{"prompt": 3}\n', encoding="utf-8")
    with pytest.raises(UserError, match=r"p.jsonl:2: .*'prompt'"):
        read_prompts(f)
    f.write_text('{"prompt": "a"}\n{bad\n', encoding="utf-8")
    with pytest.raises(UserError, match=r"p.jsonl:2: invalid JSON"):
        read_prompts(f)


def test_eval_cli_missing_file(tmp_path):
    proc = run_cli("eval", "--persona", "ohlora", "--prompts", str(tmp_path / "none.jsonl"))
    assert proc.returncode == 2 and "prompts file not found" in proc.stderr


def short_persona_copy(home, pid: str, max_tokens: int = 16) -> str:
    """A user persona copying a shipped one, with short answers, so tests stay quick."""
    import shutil

    from ohlora.personas import load_persona

    src = load_persona(pid).folder
    dst = home / "data" / "personas" / f"{pid}-short"
    dst.mkdir(parents=True)
    text = (src / "persona.toml").read_text(encoding="utf-8")
    text = text.replace(f'id = "{pid}"', f'id = "{pid}-short"')
    text = text.replace("max_tokens = 200", f"max_tokens = {max_tokens}")
    (dst / "persona.toml").write_text(text, encoding="utf-8")
    for name in ("eval.jsonl",):
        if (src / name).exists():
            shutil.copy(src / name, dst / name)
    return f"{pid}-short"


@pytest.mark.slow
def test_eval_cli_json_on_real_model(tmp_path, ohlora_home):
    pid = short_persona_copy(ohlora_home, "ohlora")
    f = tmp_path / "p.jsonl"
    f.write_text("\n".join(json.dumps({"prompt": p, "reference": "안녕!"}, ensure_ascii=False) for p in ["안녕?", "뭐해?"]), encoding="utf-8")
    proc = run_cli("eval", "--persona", pid, "--prompts", str(f), "--json", "--no-loss")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    for key in ("termination_rate", "repetition_rate", "distinct_2", "hangul_ratio", "mean_chars", "tokens_per_s", "chrf", "n_prompts"):
        assert key in out
    assert out["n_prompts"] == 2 and 0 <= out["termination_rate"] <= 1
