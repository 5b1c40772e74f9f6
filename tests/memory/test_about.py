"""What a query asks about and what a memory speaks of (memory.about), on Kiwi's morphemes."""

from __future__ import annotations

import pytest

from memory.lexical import tokenize
from memory.about import about_another


@pytest.mark.parametrize(
    "query, memory, other",
    [
        ("우리 오빠 무슨 일 한다고 했지?", "우리 언니 은행원인데 요즘 바쁘대", True),
        ("우리 오빠 무슨 일 한다고 했지?", "형이 이번에 경찰 시험 붙었어", False),  # 오빠 / 형: an older brother
        ("아빠 생신 언제였지?", "엄마 생신이 3월 2일이라 선물 고민 중", True),
        ("아빠 생신 언제였지?", "아빠가 요즘 등산에 빠지셨어", False),
        ("여동생 몇 살이지?", "사촌 여동생이 이번에 대학 들어갔대", True),
        ("여동생 몇 살이지?", "동생이 고3이야", False),  # 동생: a brother or a sister
        ("둘째는 무슨 학원 다닌다고 했지?", "첫째 딸 요즘 피아노 학원 다녀", True),
        ("딸 학원 어디였지?", "첫째 딸 요즘 피아노 학원 다녀", False),
        ("나 조카 몇 명이지?", "오빠네 아들 태어났어", False),  # a sibling's child
        ("우리 집 고양이 이름 뭐였지?", "우리 강아지 초코 산책하다가 비둘기 쫓아감", True),
        ("What does my brother do for work?", "my sister is a dentist", True),
        ("How old is my cat?", "my dog Maple turned 4 today", True),
        ("남친 우리 집 와도 괜찮을까?", "현우가 고양이 알레르기 있어", False),  # names a pet, not a person
        ("딸이 애완견 사달라고 한다던가?", "서아가 강아지 키우고 싶다고 졸라", False),
        ("엄마 선물 뭐 사지?", "나 땅콩 알레르기 있어", False),  # the memory names nobody
        ("나 무슨 일 하지?", "우리 언니 은행원", False),  # the query names nobody
        ("겨울 휴가 계획 뭐였지?", "여름휴가는 제주도 가기로 했어", True),
        ("나 점심은 보통 뭐 먹지?", "아침엔 늘 시리얼 먹어", True),
        ("나 토플 점수 몇 점이었지?", "토익 850 나왔어", True),
        ("나 주말에 하는 운동 뭐였지?", "수요일마다 요가 가는데", True),
        ("이번 주말에 뭐 하기로 했지?", "토요일에 친구 결혼식 가", False),  # 주말: Saturday or Sunday
        ("아빠랑 여름휴가 어디 가기로 했지?", "여름휴가 엄마랑 제주도 가기로 했어", False),  # agrees on the season
    ],
)
def test_about_another(query, memory, other):
    assert about_another(tokenize(query), tokenize(memory)) is other


def test_same_one():
    from memory.about import same_one

    assert same_one(tokenize("폰 갤럭시 S24 쓰는데"), tokenize("아이폰16으로 갈아탔음"))
    assert not same_one(tokenize("우리 언니 은행원"), tokenize("오빠는 게임 회사 다녀"))
    assert not same_one(tokenize("나 땅콩 알레르기 있어"), tokenize("아이폰 샀어"))


def test_recall_leaves_out_memories_about_about_another(store):
    store.add("우리 언니 은행원인데 요즘 대출 상담 때문에 바쁘대")
    store.add("남동생은 요즘 군대에서 휴가 나왔어")
    brother = store.add("오빠는 게임 회사 다녀")
    got = [r.memory.id for r in store.recall("우리 오빠 무슨 일 한다고 했지?", k=3)]
    assert got == [brother.id]
