"""Extraction and relative dates: pure rules, no model."""

from __future__ import annotations

from datetime import datetime

import pytest

from memory import dates
from memory.extract import MAX_FACTS, extract

MONDAY = datetime(2026, 11, 23, 17, 0)  # a Monday


def one(text: str):
    facts = extract(text, MONDAY)
    assert len(facts) == 1, (text, facts)
    return facts[0]


@pytest.mark.parametrize(
    "text, kind, slot, value",
    [
        ("내 이름은 김지수야", "name", "name", "김지수"),
        ("나 판교에서 소프트웨어 개발자로 일해", "job", "job", None),
        ("나 서울 살아", "home", "home", "서울"),
        ("이사했어, 이제 부산 살아", "home", "home", "부산"),
        ("나 오이 진짜 싫어해", "pref", "pref:오이", "-"),
        ("오이 좋아해", "pref", "pref:오이", "+"),
        ("나 땅콩 알레르기 있어", "health", None, None),
        ("우리 집 고양이 이름은 나비야", "pet", None, None),
        ("여동생이 올해 고등학교에 입학했어", "people", None, None),
        ("제일 친한 친구 민호는 캐나다에 살아", "people", None, None),
        ("올해 목표는 토익 900점 넘기는 거야", "goal", None, None),
        ("My name is Daniel", "name", "name", "daniel"),
        ("I live in Seattle with my wife", "home", "home", "seattle"),
        ("I work night shifts as a nurse", "job", "job", None),
        ("I'm a software engineer", "job", "job", None),
        ("I'm allergic to shellfish", "health", None, None),
        ("I hate horror movies", "pref", "pref:horror", "-"),
        ("My dog Max is a golden retriever", "pet", None, None),
        ("I'm training for a marathon in October", "goal", None, None),
        # something got, won, chosen or visited, with no other rule's words
        ("중고차 샀어, 2019년식 모닝", "event", None, None),
        ("드디어 운전면허 땄다", "event", None, None),
        ("오늘 제주도 다녀왔어", "event", None, None),  # names a place: kept though said "today"
        ("여름휴가 발리로 정했어", "plan", None, None),
        ("첫 차는 아반떼였어", "fact", None, None),  # no rule's words, but it names something
        # a relationship status is one slot: a breakup supersedes "연애 중"
        ("남자친구랑 3년째 연애 중이야", "partner", "partner", None),
        ("나 헤어졌어... 이제 솔로야", "partner", "partner", "나 헤어졌어, 이제 솔로야"),
        ("I'm seeing someone new now, his name is Jun", "partner", "partner", None),
        ("남자친구랑 주말에 만나기로 했어", "plan", None, None),  # a date is not a status
        ("적금 하나 들었어 월 50씩 2년짜리", "event", None, None),
        ("우리 집 보일러 또 고장났어 ㅠ 작년에 바꾼 건데", "event", None, None),
        ("got into the MBA program at Yonsei!", "fact", None, None),  # English chat drops "I"
        ("been learning the cello since January", "goal", None, None),
        # a major has no slot: a second one does not supersede the first
        ("원래 전공이 기계공학인데 실험 보고서 너무 빡세", "major", None, None),
        ("이번 학기에 복수전공 신청했어, 경제학으로", "major", None, None),
    ],
)
def test_facts_korean_and_english(text, kind, slot, value):
    fact = one(text)
    assert fact.kind == kind
    assert fact.slot == slot
    if value is not None:
        assert fact.value == value


@pytest.mark.parametrize(
    "text",
    ["안녕!", "안녕하세요 ㅎㅎ", "오늘 날씨 어때?", "뭐 먹을까", "ㅋㅋㅋㅋ", "고마워", "너는 이름이 뭐야?",
     "How are you?", "Thanks!", "hi there", "What should I eat tonight?", "ok", "",
     "오늘 진짜 피곤하다", "I'm so tired today", "I love you", "이번 주말에 뭐 하지"],
)
def test_questions_greetings_chitchat_are_not_stored(text):
    assert extract(text, MONDAY) == []


@pytest.mark.parametrize("text", ["오늘 편의점 다녀왔어", "been so tired all week", "just got home lol"])
def test_todays_errand_or_mood_is_not_kept(text):
    assert extract(text, MONDAY) == []


def test_a_short_follow_up_joins_the_fact_before_it():
    facts = extract("고양이 입양했어!! 이름은 치즈", MONDAY)
    assert [f.text for f in facts] == ["고양이 입양했어, 이름은 치즈"]
    # ... unless it has a slot of its own
    assert [f.slot for f in extract("나 서울 살아. 개발자야", MONDAY)] == ["home", "job"]
    # ... and a short sentence of its own is not a follow-up
    assert [f.text for f in extract("나 땅콩 알레르기 있어. 고양이 입양했어", MONDAY)] == ["나 땅콩 알레르기 있어", "고양이 입양했어"]


def test_a_short_sentence_no_rule_keeps_joins_the_kept_one_before_it():
    # says where or which: without it the memory would be "이사했어" alone
    assert [f.text for f in extract("이사했어! 이제 성수동임", MONDAY)] == ["이사했어, 이제 성수동임"]
    assert [f.text for f in extract("대박 청약 당첨됐어!! 화성 동탄이야", MONDAY)] == ["청약 당첨됐어, 화성 동탄이야"]
    # a passing state is not joined
    assert [f.text for f in extract("이사했어! 너무 피곤해", MONDAY)] == ["이사했어"]


def test_an_abbreviation_does_not_end_a_sentence():
    from memory.extract import split_sentences

    assert split_sentences("started seeing Dr. Okafor this week. she's great") == [
        "started seeing Dr. Okafor this week.", "she's great"]


def test_the_keep_callback_is_asked_only_about_what_no_rule_kept():
    asked: list[str] = []

    def keep(text: str) -> bool:
        asked.append(text)
        return True

    assert [f.kind for f in extract("나 서울 살아", MONDAY, keep=keep)] == ["home"] and asked == []
    # questions and greetings are taken out before the head is asked; what it keeps is one fact
    facts = extract("안녕! 월수금은 수영 가. 너는 운동 뭐 해?", MONDAY, keep=keep)
    assert asked == ["월수금은 수영 가"] and [(f.text, f.kind) for f in facts] == [("월수금은 수영 가", "fact")]
    asked.clear()
    assert extract("오늘 뭐 먹지?", MONDAY, keep=keep) == [] and asked == []  # nothing left to ask about
    assert extract("월수금은 수영 가", MONDAY, keep=lambda t: False) == []
    # a date in what the head keeps is resolved like any other
    fact = extract("다음 주 금요일 워크숍 발표 맡음", MONDAY, keep=keep)[0]
    assert fact.event_date == "2026-12-04" and "(2026-12-04)" in fact.text


def test_a_message_with_several_sentences():
    facts = extract("안녕! 나 부산 살아. 근데 오늘 뭐 먹지? 다음 주 금요일에 엄마 생신이야.", MONDAY)
    assert [f.kind for f in facts] == ["home", "plan"]
    assert facts[1].event_date == "2026-12-04"
    assert "(2026-12-04)" in facts[1].text


@pytest.mark.parametrize(
    "text, expected",
    [
        ("내일 치과 가", "2026-11-24"),
        ("모레 시험 봐", "2026-11-25"),
        ("다음 주 금요일에 엄마 생신이야", "2026-12-04"),
        ("이번 주 금요일에 회식 있어", "2026-11-27"),
        ("이번 주말에 등산 가", "2026-11-28"),
        ("담주 수요일에 면접", "2026-12-02"),
        ("이번주 토욜에 친구 결혼식", "2026-11-28"),
        ("일욜에 돌잔치 있어", "2026-11-29"),
        ("3일 후에 출국해", "2026-11-26"),
        ("다음 달 15일에 이사", "2026-12-15"),
        ("다음 달에 이직 면접이 있어", "2026-12"),
        ("내년 봄에 결혼해", "2027"),
        ("I have a dentist appointment next Thursday", "2026-12-03"),
        ("I fly out tomorrow", "2026-11-24"),
        ("my exam is on Friday", "2026-11-27"),
        ("we're going camping this weekend", "2026-11-28"),
        ("the party is in two weeks", "2026-12-07"),
    ],
)
def test_relative_dates_resolve_from_now(text, expected):
    ref = dates.resolve(text, MONDAY)
    assert ref is not None and ref.value == expected


def test_no_date_no_event():
    assert dates.resolve("그냥 좀 심심해", MONDAY) is None
    assert one("나 땅콩 알레르기 있어").event_date is None


def test_extracted_plan_carries_the_absolute_date():
    fact = one("I have a dentist appointment next Thursday")
    assert fact.event_date == "2026-12-03"
    assert fact.text == "I have a dentist appointment next Thursday(2026-12-03)"


def test_fifty_thousand_characters_are_bounded():
    assert extract("가" * 50_000, MONDAY) == []  # one huge "sentence": pasted text, not a fact
    many = extract("나 서울 살아. " * 5000, MONDAY)
    assert 1 <= len(many) <= MAX_FACTS
