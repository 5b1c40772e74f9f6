"""What a text is about, among closed sets of alternatives: who (family, partners, pets),
which meal or time of day, season, school, test, device, day of the week.

Recall uses it to leave out a memory about another one than the query names ("우리 오빠 무슨
일 해?" does not recall "우리 언니 은행원이야"; "겨울 휴가 계획 뭐였지?" does not recall
"여름휴가는 제주도 가기로 했어"; "How old is my cat?" does not recall "my dog Maple turned 4").
An embedding puts those close; these sets say they differ. A word may stand for several
("동생": a younger brother or sister; "주말": Saturday or Sunday); two texts are about the
same one when their sets meet.
"""

from __future__ import annotations

from typing import Iterable

from memory.dates import EN_WEEKDAYS, KO_WEEKDAYS

_OLDER_BROTHER, _YOUNGER_BROTHER = "older-brother", "younger-brother"
_OLDER_SISTER, _YOUNGER_SISTER = "older-sister", "younger-sister"
_PARTNERS = frozenset({"husband", "wife", "boyfriend", "girlfriend"})
_CHILDREN = frozenset({"son", "daughter"})

# morpheme (memory.lexical.tokenize: Kiwi forms, English lower-cased lemmas) -> what it may name
WHO: dict[str, frozenset[str]] = {}


def _add(who: Iterable[str], *words: str) -> None:
    for w in words:
        WHO[w] = frozenset(who)


_add({"mother"}, "엄마", "어머니", "어머님", "모친", "mom", "mother", "mum", "mommy")
_add({"father"}, "아빠", "아버지", "아버님", "아부지", "부친", "dad", "father", "daddy")
_add({"mother", "father"}, "부모님", "부모", "parent", "parents")
_add({_OLDER_BROTHER}, "오빠", "형", "형님")
_add({_OLDER_SISTER}, "언니", "누나")
_add({_YOUNGER_BROTHER}, "남동생")
_add({_YOUNGER_SISTER}, "여동생")
_add({_YOUNGER_BROTHER, _YOUNGER_SISTER}, "동생")
_add({_OLDER_BROTHER, _YOUNGER_BROTHER}, "brother", "bro")
_add({_OLDER_SISTER, _YOUNGER_SISTER}, "sister", "sis")
_add({_OLDER_BROTHER, _YOUNGER_BROTHER, _OLDER_SISTER, _YOUNGER_SISTER}, "sibling", "siblings", "형제", "남매", "자매")
_add({"grandmother"}, "할머니", "외할머니", "grandma", "grandmother", "granny")
_add({"grandfather"}, "할아버지", "외할아버지", "grandpa", "grandfather")
_add({"husband"}, "남편", "husband")
_add({"wife"}, "아내", "와이프", "wife")
_add({"boyfriend"}, "남친", "남자친구", "boyfriend", "bf")
_add({"girlfriend"}, "여친", "여자친구", "girlfriend", "gf")
_add(_PARTNERS, "애인", "partner")
_add({"son"}, "아들", "son")
_add({"daughter"}, "딸", "daughter")
_add(_CHILDREN, "아이", "애들", "자녀", "kid", "kids", "child", "children")
_add({"first-child"}, "첫째")
_add({"second-child"}, "둘째")
_add({"third-child"}, "셋째", "막내")
_add({"cousin"}, "사촌", "cousin")
_add({"aunt"}, "이모", "고모", "숙모", "aunt")
_add({"uncle"}, "삼촌", "외삼촌", "이모부", "고모부", "uncle")
# a niece or nephew is told of as a sibling's child ("오빠네 아들 태어났어")
_add({"nephew-niece", _OLDER_BROTHER, _YOUNGER_BROTHER, _OLDER_SISTER, _YOUNGER_SISTER, *_CHILDREN},
     "조카", "nephew", "niece", "nephews", "nieces")
_add({"grandchild", *_CHILDREN}, "손자", "손녀", "손주", "grandson", "granddaughter", "grandchild")
_add({"roommate"}, "룸메", "룸메이트", "roommate")
_add({"boss"}, "팀장", "팀장님", "상사", "사장님", "boss", "manager")
_add({"cat"}, "고양이", "냥이", "cat", "kitten")
_add({"dog"}, "강아지", "개", "dog", "puppy")
_add({"hamster"}, "햄스터", "hamster")
_add({"bird"}, "앵무새", "parrot", "bird")
_add({"rabbit"}, "토끼", "rabbit", "bunny")
_add({"dog"}, "애완견", "반려견", "댕댕", "강쥐")  # "댕댕이" is tokenized 댕댕 + 이

# the other kinds: each value is "kind:value", so kinds never meet
_add({"meal:morning"}, "아침", "breakfast", "morning")
_add({"meal:noon"}, "점심", "lunch", "noon")
_add({"meal:evening"}, "저녁", "dinner", "supper", "evening")
_add({"season:spring"}, "봄", "spring", "spr")  # the English stemmer makes "spring" "spr"
_add({"season:summer"}, "여름", "summer")
_add({"season:autumn"}, "가을", "autumn", "fall")
_add({"season:winter"}, "겨울", "winter")
_add({"school:elementary"}, "초등학교", "초딩", "elementary")
_add({"school:middle"}, "중학교", "중딩")
_add({"school:high"}, "고등학교", "고딩")
_add({"school:university"}, "대학", "대학교", "college", "university", "uni")
_add({"test:toeic"}, "토익", "toeic")
_add({"test:toefl"}, "토플", "toefl")
_add({"test:ielts"}, "아이엘츠", "ielts")
_add({"test:opic"}, "오픽", "opic")
_add({"device:laptop"}, "노트북", "맥북", "갤럭시북", "laptop", "macbook")
_add({"device:tablet"}, "태블릿", "아이패드", "갤럭시탭", "tablet", "ipad")
_add({"device:phone"}, "폰", "핸드폰", "휴대폰", "스마트폰", "아이폰", "갤럭시", "phone", "iphone", "smartphone")
_add({"device:desktop"}, "데스크탑", "데스크톱", "desktop")
_WEEK = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
for _day, _ko, _en in zip(_WEEK, KO_WEEKDAYS, EN_WEEKDAYS):
    _add({f"day:{_day}"}, f"{_ko}요일", _en)
_add({"day:sat", "day:sun"}, "주말", "weekend", "weekends")
_add({f"day:{d}" for d in _WEEK[:5]}, "평일", "주중", "weekday", "weekdays")

# order among children: a word of these sets ("첫째", "둘째") names which child, not who else
_ORDINALS = frozenset({"first-child", "second-child", "third-child"})
PETS = frozenset({"cat", "dog", "hamster", "bird", "rabbit"})


def named(terms: Iterable[str]) -> list[frozenset[str]]:
    """What a text's morphemes name (people, pets, meals, seasons...), one set of possibilities per word."""
    return [WHO[t] for t in terms if t in WHO]


def same_one(a_terms: Iterable[str], b_terms: Iterable[str]) -> bool:
    """Do two texts name the same one of some kind (a person, a pet, a phone...)? "폰 갤럭시 쓰는데"
    and "아이폰으로 갈아탔어" both name a phone."""
    a, b = named(a_terms), named(b_terms)
    if not a or not b:
        return False
    return bool((frozenset().union(*a) & frozenset().union(*b)) - _ORDINALS)


def _kind(value: str) -> str:
    return "pet" if value in PETS else value.split(":")[0] if ":" in value else "person"


def _verdict(asked: list[frozenset[str]], told: frozenset[str]) -> bool | None:
    """Within one kind: True when the memory can be about one the query names, False when it
    names only others, None when either side names none of this kind."""
    asked = [w for w in asked if w]
    if not asked or not told:
        return None
    return any(w & told for w in asked)


def about_another(query_terms: Iterable[str], memory_terms: Iterable[str]) -> bool:
    """Is the memory about another one than the query asks about? Both must name one of the
    same kind (a person, a pet, a meal, a season...) and none of those can be the same; a
    memory that agrees on any kind is kept ("아빠랑 여름휴가" keeps "여름휴가 엄마랑 제주도").
    A memory or query naming none is never excluded: "현우가 고양이 알레르기 있어" may be
    about the boyfriend the query names."""
    asked = named(query_terms)
    told_words = named(memory_terms)
    if not asked or not told_words:
        return False
    told = frozenset().union(*told_words)
    asked_order = frozenset().union(*asked) & _ORDINALS
    if asked_order and told & _ORDINALS and not asked_order & told:
        return True  # "둘째" is not "첫째 딸"
    told = told - _ORDINALS
    asked = [w - _ORDINALS for w in asked]
    if "cousin" in told and any(_kind(v) == "person" for w in asked for v in w) and not any("cousin" in w for w in asked):
        return True  # "사촌 여동생" is not "여동생"
    kinds = {_kind(v) for v in told} | {_kind(v) for w in asked for v in w}
    verdicts = [_verdict([frozenset(v for v in w if _kind(v) == k) for w in asked],
                         frozenset(v for v in told if _kind(v) == k)) for k in kinds]
    return False in verdicts and True not in verdicts
