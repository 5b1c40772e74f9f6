"""Act replies (ohlora.guards.acts): when no written line fits, a reply written for the message's act.

The head cases use the real built-in embedder and the shipped act head (slow tier); the persona
file's `[acts]` table is checked on small files."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from ohlora.guards import Guards
from ohlora.guards.acts import ACTS, ActHead

NOW = datetime(2026, 12, 6, 19, 30)
ROOT = Path(__file__).resolve().parents[2]


def test_persona_acts_are_validated(tmp_path):
    from ohlora.errors import UserError
    from ohlora.personas import parse_persona

    folder = tmp_path / "p"
    folder.mkdir()
    base = 'id = "p"\nname = "P"\nlanguage = "ko"\nsystem_prompt = "s"\ngreeting = "g"\n'
    (folder / "persona.toml").write_text(base + '[acts]\nplan = ["좋다!"]\nplan_polite = ["좋네요!"]\n', encoding="utf-8")
    assert parse_persona(folder / "persona.toml").acts == {"plan": ("좋다!",), "plan_polite": ("좋네요!",)}
    for bad, match in (('other = ["x"]', "unknown field 'other'"), ('gossip = ["x"]', "unknown field 'gossip'"),
                       ("plan = []", "acts: field 'plan'")):
        (folder / "persona.toml").write_text(base + f"[acts]\n{bad}\n", encoding="utf-8")
        with pytest.raises(UserError, match=match):
            parse_persona(folder / "persona.toml")


def test_the_shipped_personas_have_a_reply_for_every_act():
    from ohlora.personas import load_persona

    for pid, without in (("ohlora", set()), ("ironman", {"about_persona"})):  # Tony's answers about himself read badly
        acts = load_persona(pid).acts
        for act in set(ACTS[:-1]) - without:
            assert len(acts.get(act, ())) >= 3 and acts.get(f"{act}_en"), (pid, act)
        assert not any(key.startswith(tuple(without)) for key in acts) if without else True
    assert all(load_persona("ironman").acts.get(f"{a}_polite") for a in set(ACTS[:-1]) - {"about_persona"})


@pytest.mark.parametrize("act, text, ok", [
    ("advice", "이직할까 말까 고민 중이야", True), ("advice", "Should I tell my boss or not?", True),
    ("advice", "잠 잘 오는 방법 있어?", False), ("advice", "엑셀에서 중복 지우는 법 알려줘", False),
    ("advice", "요즘 허리가 아픈데 괜찮은 건가?", False), ("funny_mishap", "다이어트 팁 좀ㅋㅋ 어제 치킨 두 마리 먹음", False),
    ("greeting", "안녕 오로라!", True), ("greeting", "hey what's up", True), ("greeting", "잘 자", False),
    ("good_news", "나 오늘 승진했어!", True), ("other", "끝말잇기 하자", False),
])
def test_a_reply_of_an_act_is_said_only_where_one_can_fit(act, text, ok):
    """No act reply gives a how-to; the advice replies help weigh a decision; a greeting's greet back."""
    from ohlora.guards.acts import fits

    assert fits(act, text) is ok


@pytest.mark.parametrize("probs, want", [
    ({"good_news": 0.55, "plan": 0.25}, ("good_news", 0.55)),
    ({"good_news": 0.55, "bad_event": 0.25}, None),  # 축하해 to what may be bad news: nothing
    ({"low_mood": 0.6, "funny_mishap": 0.1, "good_news": 0.1}, None),
    ({"low_mood": 0.6, "funny_mishap": 0.1}, ("low_mood", 0.6)),
    ({"choice": 0.45, "advice": 0.4}, None),  # below accept
    ({"choice": 0.5, "good_news": 0.3}, ("choice", 0.5)),  # no good or bad side to weigh
])
def test_an_act_is_sure_from_accept_and_not_when_the_other_side_is_likely(probs, want):
    head = ActHead.__new__(ActHead)
    head.accept = 0.5
    head.proba = lambda vec, text: np.array([probs.get(a, 0.0) for a in ACTS])
    got = head.sure(None, "")
    assert got == want if want is None else (got[0], round(got[1], 6)) == want


@pytest.fixture(scope="module")
def acted(embedder, tmp_path_factory):
    """Guards with the lines on (the act replies come with them) over a persona with no written lines."""
    from ohlora.personas import load_persona

    folder = tmp_path_factory.mktemp("persona")
    (folder / "lines.jsonl").write_text(json.dumps({"messages": [
        {"role": "user", "content": "나 오늘 머리 잘랐어"}, {"role": "assistant", "content": "오 변신했네!"}]},
        ensure_ascii=False), encoding="utf-8")
    g = Guards(lambda: embedder, safety=False, lines_cache=folder / "cache")
    personas = {pid: replace(load_persona(pid), folder=folder) for pid in ("ohlora", "ironman")}
    g.lines(personas["ohlora"])
    return g, personas


@pytest.mark.parametrize("text, act", [
    ("드디어 자격증 시험 합격했어!!! 세 번째 도전이었음", "good_news"),
    ("버스에서 졸다가 종점까지 가버림ㅋㅋㅋ", "funny_mishap"),
    ("다음 주에 부모님이랑 일본 여행 가", "plan"),
    ("저녁 떡볶이 vs 치킨 골라줘", "choice"),
])
def test_a_message_of_a_sure_act_gets_a_reply_written_for_it(acted, text, act):
    g, personas = acted
    got = g.check(text, personas["ohlora"], NOW)
    assert got is not None and got.kind == "act" and got.detail.split()[0] == act, got
    assert got.text in personas["ohlora"].acts[act]


def test_the_act_reply_follows_the_users_language_and_register(acted):
    g, personas = acted
    tony = personas["ironman"]
    polite = g.check("저 드디어 회사 최종 합격했어요!!", tony, NOW)
    assert polite is not None and polite.text in tony.acts["good_news_polite"], polite
    english = g.check("I finally got my driver's license today!!", tony, NOW)
    assert english is not None and english.text in tony.acts["good_news_en"], english


def test_no_act_reply_when_memories_were_recalled_or_every_one_was_said(acted):
    """A recalled memory may hold what the message needs (the model's prompt has it), except for a
    hello and a pick between named options; a reply is never repeated in a conversation; a greeting's
    reply only opens one."""
    g, personas = acted
    ohlora = personas["ohlora"]
    text = "드디어 자격증 시험 합격했어!!! 세 번째 도전이었음"
    assert g.check(text, ohlora, NOW, recalled=True) is None
    pick = g.check("저녁 떡볶이 vs 치킨 골라줘", ohlora, NOW, recalled=True)
    assert pick is not None and pick.detail.startswith("choice"), pick
    hello = g.check("안녕 오로라!", ohlora, NOW, recalled=True)
    assert hello is not None and hello.detail.startswith("greeting"), hello
    assert g.check("오로라야", ohlora, NOW, recalled=True).detail == "greeting (name)"
    every = list(ohlora.acts["good_news"])
    assert g.check(text, ohlora, NOW, said=every) is None
    assert g.check(text, ohlora, NOW, said=every[1:]).text == every[0]
    hello = g.check("안녕 오로라!", ohlora, NOW)
    assert hello is not None and hello.detail.startswith("greeting")
    assert g.check("안녕 오로라!", ohlora, NOW, said=["아까 한 말"]) is None


def test_the_persona_called_by_name_and_little_else_gets_a_hello(acted):
    g, personas = acted
    tony = personas["ironman"]
    for text in ("아이언맨!!", "스타크 씨..?"):
        got = g.check(text, tony, NOW)
        assert got is not None and got.detail == "greeting (name)" and got.text in tony.acts["greeting"], (text, got)
    assert g.check("아이언맨!!", tony, NOW, said=["반가워"]) is None  # a hello opens a chat only
    assert g.check("Tony?", tony, NOW).text in tony.acts["greeting_en"]


def test_the_saved_head_gives_what_scikit_learn_fitted(tmp_path, monkeypatch, embedder):
    from ohlora.guards import fit_acts, head

    rows = [json.loads(r) for r in fit_acts.TRAIN_FILE.read_text(encoding="utf-8").splitlines()[:300]]
    texts, y = [r["text"] for r in rows], np.array([ACTS.index(r["act"]) for r in rows])
    x = embedder.encode(texts, kind="memory")
    model = head.fit(x, texts, y, 4.0, class_weight=None)
    head.save(tmp_path / "h.npz", model, x.shape[1], acts=np.array(ACTS), accept=np.float32(0.6))
    saved = ActHead(tmp_path / "h.npz")
    want = head.proba(model, x[:20], texts[:20])
    got = np.stack([saved.proba(v, t) for v, t in zip(x[:20], texts[:20])])
    assert np.allclose(got, want, atol=1e-5)
    monkeypatch.setattr(fit_acts, "TRAIN_FILE", tmp_path / "none.jsonl")
    (tmp_path / "none.jsonl").write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    assert fit_acts.main(["--out", str(tmp_path / "a.npz")]) == 0
    assert ActHead(tmp_path / "a.npz").accept == pytest.approx(0.3)


def test_the_act_labels_hold_no_held_out_prompt():
    """bench/prompts/fresh3 onward are read blind: none of them may be a labelled message."""
    from ohlora.guards.fit_acts import TRAIN_FILE

    labelled = {json.loads(line)["text"] for line in TRAIN_FILE.read_text(encoding="utf-8").splitlines() if line.strip()}
    held = {json.loads(line)["prompt"] for d in ("fresh3", "fresh4", "fresh5", "fresh6", "fresh7", "fresh8", "fresh9", "fresh10")
            for path in (ROOT / "bench/prompts" / d).glob("*.jsonl")
            for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}
    assert len(labelled) >= 2000 and len(held) > 550  # 600 lines, a few alike across sets
    assert labelled & held <= {"sup tony"}  # a two-word opener of the personas' rows that fresh9's writer wrote too
