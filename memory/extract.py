"""Rule-based extraction: which sentences of a user message are facts worth remembering.

A sentence is kept when it states something about the user (name, job, home, likes and
dislikes, family, friends, pets, plans and dates, health, goals, habits) and is not a
question, a greeting or small talk. Each fact may carry a *slot* ("home", "name",
"pref:오이", ...): a newer fact on the same slot updates the old one when the value is the
same, and supersedes it when the value differs ("이제 부산 살아" after "서울 살아").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from memory import dates
from memory.lexical import _kiwi

MAX_SENTENCE = 300  # longer "sentences" are pasted text, not facts about the user
MAX_FACTS = 10  # per message
FRAGMENT = 12  # a kept sentence this short, right after another kept one, is joined to it ...
_ATTRIBUTE = re.compile(r"^\S{1,6}(은|는)\s")  # ... when it tells an attribute of it: "이름은 치즈", "숙소는 우붓"
FOLLOW_UP = 15  # a sentence no rule kept, this short, right after a kept one, is joined to it

_HANGUL = re.compile(r"[\uac00-\ud7a3]")
# kinds whose slot value is the whole sentence (a new one with other words supersedes the old one)
_WHOLE_SENTENCE_SLOTS = ("age", "job", "partner", "school")


@dataclass
class Fact:
    text: str  # what is stored (the user's sentence, tidied, absolute date written in)
    kind: str  # name | job | home | origin | pref | fav | people | pet | plan | health | goal | habit | birthday | age | major | partner | event | fact
    slot: str | None = None  # single-valued slot key
    value: str | None = None  # slot value: same value -> update, different -> supersede
    event_date: str | None = None


# ---------------------------------------------------------------- sentence filters
_KO_QUESTION_END = re.compile(
    r"(니|냐|나요|까|까요|죠|지|어때|어떄|뭐야|뭐지|뭘까|할래|줄래|줘|주세요|래|거야\?|맞아|알아|기억해|기억나)\s*[~.!…ㅋㅎ]*$"
)
_KO_QUESTION_WORD = re.compile(r"(뭐|무엇|언제|어디|누구|왜|어떻게|어떤|몇|얼마)")
_EN_QUESTION = re.compile(
    r"^(what|how|why|when|where|who|which|do|does|did|can|could|would|should|will|are|is|am|shall|may)\b", re.I
)
_GREETING = re.compile(
    r"^(안녕|하이|ㅎㅇ|반가|고마|감사|ㅋ+|ㅎ+|응+|어+|네+|그래|그렇구나|좋아|오케이|ㅇㅋ|굿|잘\s*자|잘\s*가|"
    r"hello|hi|hey|thanks|thank you|ok|okay|lol|yes|no|yeah|nope|sure|cool|nice|good (morning|night)|bye)\b",
    re.I,
)
_FILLER = re.compile(r"^(아|어|음|흠|근데|그리고|그래서|참|아참|맞다|있잖아|대박|참고로|헐|so|well|oh|um|also|and|btw|"
                     r"big news|guess what|fun fact|fyi|update)[,!:\s]+", re.I)
_TAIL = re.compile(r"[\sㅋㅎㅠㅜ~^]+$")


_ABBREVIATION = re.compile(r"\b(dr|mr|mrs|ms|prof|st|jr|sr|vs|mt|no)\.$", re.I)  # "started seeing Dr. Okafor"


def split_sentences(text: str) -> list[str]:
    parts = [p.strip() for p in re.split(r"(?<=[.!?。~])\s+|\n+|(?<=[다요야어아지네])[.!]\s*", text) if p]
    out: list[str] = []
    for p in parts:
        if out and _ABBREVIATION.search(out[-1]):
            out[-1] = f"{out[-1]} {p}"
        else:
            out.append(p)
    return [p for p in out if p.strip(" \t.!?。~")]


_TELLING_QUESTION = re.compile(r"(는|은|인|한)\s*(거|것)\s*(알아|알지|알았어|아니|기억해|기억나)\s*\?*$|\bdid (you|u) know\b", re.I)


def is_chitchat(sentence: str) -> bool:
    s = sentence.strip()
    if len(s) < 4:
        return True
    if _TELLING_QUESTION.search(s) and (_KO_FIRST_PERSON.search(s) or re.search(r"\b(i|my)\b", s, re.I)):
        return False  # "나 수박 알레르기 있는 거 알아?": a fact, asked rhetorically
    if s.endswith("?") or s.endswith("？"):
        return True
    if _HANGUL.search(s):
        if _KO_QUESTION_END.search(s) and _KO_QUESTION_WORD.search(s):
            return True
        if re.search(r"(니|냐|나요|까요?|할래|줄래|줘|주세요)\s*[~.!ㅋㅎ]*$", s):
            return True
    elif _EN_QUESTION.match(s) and not re.match(r"^(i|my|we)\b", s, re.I):
        return True
    if _GREETING.match(s) and len(s) < 25:
        return True
    return False


def tidy(sentence: str) -> str:
    s = re.sub(r"\s+", " ", sentence).strip()
    while _FILLER.match(s):
        s = _FILLER.sub("", s, count=1)
    s = _TAIL.sub("", s)
    return s.strip(" ,")


# ---------------------------------------------------------------- Korean rules
_KO_PEOPLE = (
    "엄마|아빠|어머니|아버지|부모님|할머니|할아버지|외할머니|외할아버지|형|오빠|누나|언니|동생|여동생|남동생|"
    "남편|아내|와이프|남자친구|여자친구|남친|여친|애인|친구|절친|아들|딸|아기|아이|애들|조카|삼촌|이모|고모|사촌|"
    "동료|팀장님|선배|후배|룸메이트|룸메|시어머니|장모님|동기|조카"
)
_KO_PET = r"(강아지|고양이|냥이|멍멍이|반려견|반려묘|반려동물|햄스터|앵무새|토끼|거북이|키우)"
_KO_OWNED = re.compile(r"(우리|내|제|나|저|키우|키워|데려|입양|이름은|이름이|살짜리|\d+살)")
_KO_FIRST_PERSON = re.compile(r"(^|\s)(나|난|내|내가|나는|저|저는|제|제가|우리)(\s|$)")
_KO_THIRD_SUBJECT = re.compile(rf"({_KO_PEOPLE})(\s+[가-힣]{{1,4}}?)?(이는|는|은|가|이)\s")
_KO_JOBS = (
    "개발자|프로그래머|디자이너|간호사|의사|약사|선생님|교사|강사|교수|학생|대학생|대학원생|고등학생|중학생|"
    "회사원|직장인|공무원|요리사|셰프|변호사|회계사|엔지니어|연구원|기자|작가|프리랜서|사장|알바|군인|경찰|소방관|"
    "마케터|기획자|번역가|트레이너|유튜버|은행원|주부|백수|취준생"
)
_KO_RULES: list[tuple[str, re.Pattern[str]]] = [
    ("name", re.compile(r"(내|제|나의|저의)\s*이름은|(나는|저는|난)\s*\S+(이?라고 해|이?라고 합니다)|\S+(이?라고 불러)")),
    ("birthday", re.compile(r"(내|제)?\s*생일은|(내|제)\s*생일")),
    ("age", re.compile(r"(나|저|난|전)\s*(는|은)?\s*\d+\s*살|내\s*나이는|\d+\s*살이야|\d+\s*살이에요")),
    ("home", re.compile(r"(살아|살고|삽니다|살아요|사는\s*중|사는데|사는\s*곳|살거든|이사(했|왔|갔|가|할|해|온|간))")),
    ("origin", re.compile(r"(고향은|고향이|에서\s*태어났|출신)")),
    ("past", re.compile(r"(어릴\s*때|어렸을\s*때|(초등|중|고등|대)학교\s*때|대학\s*때|학생\s*때|시절에?|했었|었었|았었|"
                        r"(군대|군\s*복무)\S*\s.*(나왔|다녀왔|했어)|졸업했)")),
    ("school", re.compile(r"(학교|대학|대학원|방통대|학원|고등학교|중학교|학과|과)\S*\s*(다니|다녀|재학|휴학)|(학년|전공)(이야|이에요|입니다|은|는)")),
    # a major is not single-valued ("복수전공 신청했어, 경제학으로" beside "원래 전공이 기계공학"): no slot
    ("major", re.compile(r"전공|전과했")),
    ("job", re.compile(rf"(직업은|회사\s*다녀|회사\s*다니|(으로|로)\s*일(해|하고|합니다|하는)|에서\s*일(해|하고|합니다)|근무|"
                       rf"({_KO_JOBS})(이야|야|이에요|예요|입니다|이고|으로|로|라서|이라서))")),
    ("work", re.compile(r"((회사|직장|사무실)(가|는|이|은)\s|맡았|맡고\s*있|담당하|리드\s*맡|승진|이직(했|함)|입사|퇴사|연봉|야근\s*(이|을)?\s*(많|잦)|교대\s*근무)")),
    ("fav", re.compile(r"(가장|제일)?\s*좋아하는\s*\S+(은|는)|최애")),
    ("pref", re.compile(r"(좋아해|좋아한|좋아함|좋아합|좋더라|사랑해|싫어|별로야|질색|못\s*먹|안\s*먹|못\s*마셔|안\s*마셔|좋아요|"
                        r"좋아하는\s*사람|잘\s*먹|빼고는|비건|채식|(고기|술|커피|설탕|탄수화물|밀가루)\S*\s*(줄이|끊))")),
    ("health", re.compile(r"(알레르기|알러지|아파|아프|병원|진단|디스크|수술|다쳤|다쳐|삐었|깁스|약을?\s*먹|불면|감기|당뇨|혈압|"
                          r"임신|우울|공황|천식|비염|입원|몸이\s*안\s*좋|잠을?\s*(잘\s*)?못\s*자|확진|격리|골절|불내증|시력|안경|렌즈|"
                          r"보청기|잘\s*안\s*들려|치료\s*(받|중)|공포증|장애|\S+증\s*(이|이\s*)?있|사고\s*(났|당했)|한의원|뻐근|잠을?\s*\S*\s*못\s*자|"
                          r"체질)")),
    ("pet", re.compile(_KO_PET)),
    ("plan", re.compile(r"(예정|약속|계획|가기로|하기로|갈\s*거|할\s*거|만나기로|여행|휴가|면접|시험|출장|결혼|이사|예약|생신|모임|파티|발표|마감|"
                        r"청첩장|식장|돌잔치|등록했|등록해)")),
    # whether and with whom the user is in a relationship: one at a time ("헤어졌어, 이제 솔로야"
    # supersedes "남자친구랑 3년째 연애 중"); meeting or a date is not a status
    ("partner", re.compile(r"(연애\s*(중|하고|한\s*지)|사귀(고|는|기|게|어|자)|사귄\s*지|헤어졌|헤어짐|이별했|솔로(야|다|임|됨|가\s*됐)|모태\s*솔로|"
                           r"싱글(이야|이다|임|됨)|(남자|여자)\s*친구\s*(생겼|없어)|"
                           r"(남친|여친|남자\s*친구|여자\s*친구|애인)\S*\s*(\S+\s*)?(잘\s*지내|사이\s*좋|만난\s*지|사귄\s*지))")),
    ("people", re.compile(rf"({_KO_PEOPLE})|이름(은|이)\s")),
    ("goal", re.compile(r"(목표|꿈은|기로\s*했|하고\s*싶어|되고\s*싶|준비\s*중|공부\s*중|배우(고|는|기)|시작했|도전|모으고|다이어트|끊었|끊을)")),
    ("habit", re.compile(r"(매일|주말마다|매주|매달|항상|자주|취미|마다|즐겨|하루에|꼭|무조건|(일주일|한\s*주|한\s*달|하루)에\s*\S*\s*(번|회|잔|시간)|"
                         r"(아침|저녁|밤|점심|주말)엔|요즘은|평소에?|보통|맨날|(?<![가-힣])늘\s|(타고|으로|로)\s*(출근|퇴근|통학|다녀)|(출근|퇴근|자기)\s*(전|후)에|(배운|다닌|키운|사귄|산|한|된)\s*지\s*\S+\s*(년|달|개월|주|일))")),
]


# Something the user got, won, chose or went to ("중고차 샀어, 2019년식 모닝", "운전면허 땄다",
# "청약 당첨됐어", "여름휴가 발리로 정했어"): checked after every other kind.
_KO_EVENT = re.compile(r"(샀어|샀다|샀음|샀지|샀는데|장만|구입했|구매했|땄어|땄다|땄음|합격|붙었|당첨|정했|결정했|신청했|가입했|"
                       r"예약했|예약함|예매했|계약했|다녀왔|다녀옴|갔다\s*왔|갔다\s*옴|입주|완주|고장\s*(났|남|나서)|입양(했|함)|"
                       r"(적금|보험|펀드|연금)\S*\s*(하나\s*)?(들었|가입|넣)|(전세|월세)\s*(들어|계약|살)|대출\s*(받았|받아서|받음))")


def _ko_value_before(sentence: str, stems: tuple[str, ...]) -> str | None:
    """The noun closest before the first morpheme in `stems` (e.g. the place before 살다)."""
    tokens = _kiwi().tokenize(sentence)
    last_noun: str | None = None
    found: str | None = None
    for tok in tokens:
        if tok.form in stems and tok.tag.startswith(("VV", "VA", "NNG", "XR")):
            found = last_noun or found
            continue
        if tok.tag in ("NNP", "NNG", "SL") and tok.form not in ("이제", "지금", "요즘", "혼자", "집", "진짜", "정말"):
            last_noun = tok.form
    return found


def _ko_pref(sentence: str) -> tuple[str | None, str]:
    negative = bool(re.search(r"싫어|별로|질색|못\s*먹|안\s*먹|못\s*마셔|안\s*마셔", sentence))
    stem = ("싫", "싫어하", "별로", "질색", "먹", "마시") if negative else ("좋", "좋아하", "사랑", "좋아")
    obj = _ko_value_before(sentence, stem)
    return obj, "-" if negative else "+"


def _ko_fact(s: str) -> Fact | None:
    third = _KO_THIRD_SUBJECT.search(s) and not _KO_FIRST_PERSON.search(s)
    for kind, pattern in _KO_RULES:
        if not pattern.search(s):
            continue
        if third and kind in ("home", "job", "age", "birthday", "name", "origin", "fav", "pref", "school", "major", "work", "past",
                              "partner"):
            return Fact(s, "people")
        if kind == "name" and _HEARSAY_END.search(s):
            return Fact(s, "people")  # "이름은 세라고 대학원생이래": someone else's name
        if kind == "name":
            m = re.search(r"이름은\s*([^\s,.!?]+?)(이야|야|이에요|예요|입니다|이고|이며|라고|$|[,.!\s])", s)
            if m and not re.search(rf"({_KO_PET[1:-1]}|{_KO_PEOPLE})\S*\s*(의\s*)?이름", s):
                return Fact(s, "name", "name", m.group(1))
            m = re.search(r"(\S+?)이?라고\s*(해|합니다|불러)", s)
            if m and not re.search(rf"({_KO_PET[1:-1]}|{_KO_PEOPLE})", s):
                return Fact(s, "name", "name", m.group(1))
            continue
        if kind == "birthday":
            if re.search(rf"({_KO_PEOPLE})\S*\s*생일|생신", s) and not re.search(r"(내|제)\s*생일", s):
                continue
            return Fact(s, "birthday", "birthday", s)
        if kind in _WHOLE_SENTENCE_SLOTS:
            return Fact(s, kind, kind, s)
        if kind == "home":
            if re.search(r"(살아\s*있|살아\s*남|살아서|살아가)", s):
                continue
            place = _ko_value_before(s, ("살", "삽", "사", "이사"))
            return Fact(s, "home", "home", place)
        if kind == "origin":
            return Fact(s, "origin", "origin", _ko_value_before(s, ("태어나", "고향", "출신")))
        if kind == "pet" and not _KO_OWNED.search(s):
            continue  # "고양이는 하루에 16시간 잔대": about cats, not the user's pet
        if kind == "fav":
            m = re.search(r"좋아하는\s*(\S+?)(은|는)\s", s)
            cat = m.group(1) if m else "최애"
            return Fact(s, "fav", f"fav:{cat}", s)
        if kind == "pref":
            obj, sign = _ko_pref(s)
            return Fact(s, "pref", f"pref:{obj}" if obj else None, sign)
        return Fact(s, kind)
    if _KO_EVENT.search(s):
        return Fact(s, "event")
    if _KO_FIRST_PERSON.search(s) and re.search(r"(있어|없어|했어|해|야|이야|거든|어요|아요|습니다|입니다)$", s):
        return Fact(s, "fact")
    if len(s) >= 8 and _names_something(s):
        return Fact(s, "fact")  # no rule's words, but it names a place, brand or person ("첫 차는 아반떼였어")
    return None


# ---------------------------------------------------------------- English rules
_EN_PEOPLE = (
    r"mom|mother|dad|father|parents|brother|sister|sibling|wife|husband|partner|boyfriend|girlfriend|"
    r"son|daughter|kids|children|baby|friend|best friend|grandma|grandmother|grandpa|grandfather|aunt|uncle|"
    r"cousin|niece|nephew|boss|coworker|colleague|roommate|fianc[eé]e?"
)
_EN_PET = r"\b(dog|cat|puppy|kitten|pet|hamster|parrot|rabbit|bunny|goldfish)s?\b"
_EN_JOBS = (
    r"teacher|nurse|doctor|engineer|developer|programmer|designer|student|lawyer|accountant|chef|cook|writer|"
    r"artist|manager|consultant|scientist|researcher|professor|firefighter|police officer|driver|pharmacist|"
    r"dentist|architect|journalist|freelancer|barista|cashier|electrician|plumber|mechanic|analyst|nanny|soldier|pilot"
)
_EN_RULES: list[tuple[str, re.Pattern[str]]] = [
    ("name", re.compile(r"\bmy name is\b|\bcall me\b|\bi'?m called\b|\bi am called\b", re.I)),
    ("birthday", re.compile(r"\bmy birthday\b|\bi was born on\b", re.I)),
    ("age", re.compile(r"\bi'?m \d+( years old)?\b|\bi am \d+\b|\bi turned \d+\b", re.I)),
    ("home", re.compile(r"\bi (now )?live\b|\bi'?ve moved\b|\bwe (just )?moved\b|\bi (just )?moved\b|\bi'?m moving\b|\bwe live\b", re.I)),
    ("origin", re.compile(r"\bi'?m from\b|\bi am from\b|\bi grew up in\b|\bi was born in\b", re.I)),
    ("job", re.compile(rf"\bi work\b|\bmy job\b|\bi'?m an? ([\w-]+ )?({_EN_JOBS})\b|\bi am an? ([\w-]+ )?({_EN_JOBS})\b|"
                       rf"\bmy work\b|\b(new|got a) job\b|\bjob at\b|\bi'?m (studying|majoring|a (freshman|sophomore|junior|senior))\b", re.I)),
    ("fav", re.compile(r"\bmy (all[- ]time )?fav(ou?rite)? \w+", re.I)),
    ("pref", re.compile(r"\bi (really |totally |absolutely )?(love|like|enjoy|adore|hate|dislike|can'?t stand|don'?t like|don'?t eat|never eat|can'?t eat)\b", re.I)),
    ("health", re.compile(r"\ballerg|\bsick\b|\bhospital\b|\bdiagnosed\b|\bbroke my\b|\binjur|\bsurgery\b|\bpregnan|\binsomnia\b|"
                          r"\basthma\b|\bdiabet|\bdepress|\banxiety\b|\bintoleran|\bmigraine|\bhurt my\b|\bsprained\b|\bdysplasia\b|"
                          r"\bturns out (i|she|he|my)\b|\bvet\b|\bphobi", re.I)),
    ("pet", re.compile(_EN_PET + r"|\badopted\b|\b(greyhound|retriever|poodle|terrier|beagle|corgi|shiba|tabby)s?\b", re.I)),
    ("partner", re.compile(r"\bi'?m (now |currently )?(dating|seeing (someone|a guy|a girl|a man|a woman)|single|in a relationship)\b|"
                           r"\b(we|i) (just )?broke up\b|\bbroke up with\b|\bi have a (new )?(boyfriend|girlfriend)\b", re.I)),
    ("people", re.compile(rf"\bmy ({_EN_PEOPLE})s?\b", re.I)),
    ("goal", re.compile(r"\bmy goal\b|\bi want to\b|\bi'?d like to\b|\bi'?m (learning|training|saving|trying|studying|preparing)\b|"
                        r"\bi'?ve been (learning|training|saving|studying|practicing|preparing)\b|"
                        r"\bmy dream\b|\bi quit\b|\bi started\b|\bi'?m planning\b", re.I)),
    ("plan", re.compile(r"\bappointment\b|\bmeeting\b|\binterview\b|\bexam\b|\btrip\b|\bgoing to\b|\bi'?ll\b|\bi will\b|\bplan\b|"
                        r"\bwedding\b|\bmarried\b|\bflight\b|\bvacation\b|\bparty\b|\bdeadline\b", re.I)),
    ("habit", re.compile(r"\bevery (day|morning|night|week|weekend)\b|\bi usually\b|\bi always\b|\bi often\b|\bmy hobby\b|\bi play\b|\btwice a\b|\bon weekends\b", re.I)),
]


# English chat drops "I": "got into the MBA program at Yonsei!", "been learning the cello since January"
_EN_NO_SUBJECT = re.compile(r"^(been|got|started|finally|just|bought|moved|adopted|quit|joined|signed up|passed|won|finished|"
                            r"graduated|baked|booked|learning|working|living|training|saving|studying)\b", re.I)


def _en_fact(s: str) -> Fact | None:
    if _EN_NO_SUBJECT.match(s):
        subject = "I've " if re.match(r"^been\b", s, re.I) else "I'm " if re.match(r"^\w+ing\b", s) else "I "
        fact = _en_fact_said(subject + s)
        if fact is not None:
            fact.text = s
        return fact
    return _en_fact_said(s)


def _en_fact_said(s: str) -> Fact | None:
    for kind, pattern in _EN_RULES:
        m = pattern.search(s)
        if not m:
            continue
        if kind == "name":
            n = re.search(r"(?:my name is|call me|i'?m called|i am called)\s+([A-Za-z][\w'-]*)", s, re.I)
            if not n or re.search(r"\bmy (dog|cat|pet|\w+'s) name", s, re.I):
                continue
            return Fact(s, "name", "name", n.group(1).lower())
        if kind in ("birthday", *_WHOLE_SENTENCE_SLOTS):
            return Fact(s, kind, kind, s)
        if kind == "home":
            place = re.search(r"\b(?:in|to|near)\s+([A-Z][\w-]*(?:\s+[A-Z][\w-]*)*)", s)
            return Fact(s, "home", "home", place.group(1).lower() if place else None)
        if kind == "origin":
            place = re.search(r"\b(?:from|in)\s+([A-Z][\w-]*(?:\s+[A-Z][\w-]*)*)", s)
            return Fact(s, "origin", "origin", place.group(1).lower() if place else None)
        if kind == "fav":
            return Fact(s, "fav", f"fav:{m.group(0).split()[-1].lower()}", s)
        if kind == "pref":
            negative = re.search(r"hate|dislike|can'?t|don'?t|never", m.group(0), re.I) is not None
            rest = s[m.end():].split()
            obj = next((w.strip(".,!").lower() for w in rest if w.lower() not in ("the", "a", "an", "to", "my", "really")), None)
            if obj in ("you", "it", "this", "that", "them", "him", "her", "u"):
                return None  # talk to the companion, not a fact about the user
            return Fact(s, "pref", f"pref:{obj}" if obj else None, "-" if negative else "+")
        return Fact(s, kind)
    if re.match(r"^(i|i'm|i've|my|we|we're|our)\b", s, re.I) and not re.search(r"\b(think|guess|feel|wonder|mean|know)\b", s, re.I):
        if len(s.split()) >= 4:
            return Fact(s, "fact")
    return None


# Passing states are small talk, not facts ("오늘 피곤해", "I'm so tired today").
_TRANSIENT = re.compile(
    r"(피곤|졸려|졸리|배고파|배불러|심심|지루|귀찮|짜증|기분\s*좋|행복해|슬퍼|우울해|외로워|답답|속상|웃기|신기하)|"
    r"\bi'?m (so |really |very |kinda |a bit )?(tired|sleepy|hungry|full|bored|sad|happy|fine|good|ok|okay|great|busy|annoyed)\b|"
    r"^(been |feeling |feel )?(so |really |very |kinda )?(tired|sleepy|hungry|bored|exhausted)\b",
    re.I,
)
# What happened today / where the user is now: a daily log, not a lasting fact about them.
_NOW = re.compile(r"(오늘|지금|방금|아까|이따가?|요 며칠)|\b(today|tonight|this morning|right now|rn|just now)\b", re.I)
_EN_DAILY = re.compile(r"\bfor (breakfast|lunch|dinner)\b|\bwas in a mood\b|\bon the (subway|bus|train)\b|"
                       r"^just (got (home|back|up)|woke up|ate|had (lunch|dinner|breakfast))\b", re.I)
# A condition that lasts (kept even when told with "오늘": "오늘 코로나 확진됐어").
_LASTING_HEALTH = re.compile(
    r"(알레르기|알러지|진단|확진|수술|입원|디스크|사고|체질|당뇨|혈압|천식|비염|임신|공황|우울증|약을?\s*먹|깁스|골절|불내증|격리|치료|"
    r"시력|렌즈|안경|보청기|들려|불면)|\b(allerg|diagnos|surgery|pregnan|asthma|diabet|intoleran|broke my|sprained)",
    re.I,
)
# Reported speech about the world ("고양이는 하루에 16시간 잔대"), not about the user.
_HEARSAY_END = re.compile(r"(대|래|다더라|라더라|라던데|대요|래요|더라고)\s*[.!~]*$")
# A day-off intention is small talk ("내일은 좀 일찍 자야지"), and so is the weather.
_SMALL_PLAN = re.compile(r"(비\s*(와|온|오)|눈\s*(와|온|오)|날씨|미세먼지|자야지|자야겠|쉬어야지|쉬어야겠|먹어야지|챙겨야지|"
                         r"다행|어떡하|어쩌지|귀찮|싫다|좋겠|뒹굴|그냥\s*집에|[월화수목금토일]요일이라|출근\s*(하기\s*)?싫|"
                         r"\b(rain|snow|weather)\b)", re.I)
# Pasted text (news, notices) is not the user talking about themselves.
_PASTED = re.compile(r"^\s*[\[【<]|(밝혔다|전했다|예보했다|당부했다|발표했다|보도했다|덧붙였다|설명했다)[.\s]|"
                     r"\b(according to|reported|said in a statement)\b", re.I)
# A wish about the impossible ("타임머신 있으면 ... 돌아가고 싶어") is not a goal.
_HYPOTHETICAL = re.compile(r"(있으면|였으면|이라면|라면|다면|된다면|태어나면)\s.*(싶|좋겠|할\s*거)|\bif i (were|had|could)\b", re.I)
# Events that change the user's life are kept even when told with "오늘" ("아들 오늘 초등학교 입학했어").
_LIFE_EVENT = re.compile(r"(새\s*\S+\s*(들어왔|생겼)|입학|졸업|결혼|이혼|약혼|태어났|돌아가셨|입양|데려왔|취업|합격|이사|퇴직|은퇴|임신|출산|사귀|헤어|전역|입대|훈련소|자대|"
                         r"등록했|등록해|개업|이름은|이름이|키우)|"
                         r"\b(adopted|married|engaged|divorced|graduated|hired|promoted|moved|pregnant|born|diagnosed|"
                         r"turns out|named)\b", re.I)
_WEAK_KINDS = ("fact", "people", "habit", "health", "pref", "pet")


def _small_talk(fact: Fact, s: str, future: bool, dated: bool = False) -> bool:
    """A sentence the rules matched that is still small talk: a passing state, today's log,
    hearsay about the world."""
    if fact.kind in ("goal", "fact", "pref", "plan", "past") and _HYPOTHETICAL.search(s):
        return True
    if fact.kind == "plan" and re.search(r"(뒹굴|그냥\s*집에|아무것도\s*안|쉴\s*예정|잘\s*예정)", s):
        return True  # "주말엔 그냥 집에서 뒹굴 예정"
    if fact.kind == "plan" and dated and not future and not _LIFE_EVENT.search(s):
        return True  # a plan for today or the past is today's log ("오늘 회사에서 발표했는데 망함")
    lasting = fact.kind == "health" and _LASTING_HEALTH.search(s)
    if fact.kind in _WEAK_KINDS and not lasting and _TRANSIENT.search(s) and len(s) < 40:
        return True
    if fact.kind == "event" and (_NOW.search(s) or _TRANSIENT.search(s)) and not _LIFE_EVENT.search(s) \
            and not _names_something(s):
        return True  # "오늘 편의점 다녀왔어"; "오늘 제주도 다녀왔어" names a place and is kept
    if fact.kind in _WEAK_KINDS and not lasting and not future and not _LIFE_EVENT.search(s) \
            and (_NOW.search(s) or _EN_DAILY.search(s)):
        # "오늘 엄마랑 통화했어", "I'm on the subway rn"; habits and likes said "today" are still
        # habits ("오늘부터 매일 달리기") only when they name a routine
        if not (fact.kind in ("habit", "pref") and re.search(r"(부터|매일|마다|항상|every|always)", s, re.I)):
            return True
    if _HANGUL.search(s) and fact.kind in ("habit", "fact", "pet") and _HEARSAY_END.search(s) \
            and not _KO_FIRST_PERSON.search(s) and not re.search(r"(우리|내|제)\s", s):
        return True
    return False


def _names_something(s: str) -> bool:
    """Does the sentence name a place, brand or person (a proper noun, Kiwi's NNP)?"""
    return any(t.tag == "NNP" for t in _kiwi().tokenize(s))


def _is_future(ref, now: datetime | None) -> bool:
    today = (now or datetime.now()).date()
    v = ref.value
    if len(v) == 10:
        return v > today.isoformat()
    if "-W" in v:  # this week / month / year still has days to come
        return v >= f"{today.isocalendar()[0]}-W{today.isocalendar()[1]:02d}"
    if len(v) == 7:
        return v >= today.isoformat()[:7]
    return v >= str(today.year)


# ---------------------------------------------------------------- entry point
def extract(message: str, now: datetime | None = None, keep: Callable[[str], bool] | None = None) -> list[Fact]:
    """The facts worth remembering in one user message (possibly none).

    `keep` (the keep head, `memory/keep.py`) is asked about what is left of a message the rules
    kept nothing of, its questions and greetings taken out; when it says yes, that is one fact."""
    facts: list[Fact] = []
    if _PASTED.search(message):
        return facts
    last_kept = -2
    rest: list[str] = []  # statements no rule kept
    for raw_index, raw in enumerate(split_sentences(message)):
        if len(raw) > MAX_SENTENCE or is_chitchat(raw):
            continue
        s = tidy(raw)
        if len(s) < 4:
            continue
        fact = _ko_fact(s) if _HANGUL.search(s) else _en_fact(s)
        ref = dates.resolve(s, now)
        future = ref is not None and _is_future(ref, now)
        if fact is None and ref is not None and not _SMALL_PLAN.search(s):
            # a dated statement is a plan or an event, whatever its words: in the first person,
            # or (Korean drops the subject) any statement about a day still to come
            if future and (_HANGUL.search(s) or re.search(r"\b(i|we|my)\b", s, re.I)):
                fact = Fact(s, "plan")
        if fact is None and facts and last_kept == raw_index - 1 and len(s) <= FOLLOW_UP \
                and not _TRANSIENT.search(s) and not _SMALL_PLAN.search(s):
            # "이사했어! 이제 성수동임", "청약 당첨됐어!! 화성 동탄이야": says where, what, which
            facts[-1].text = f"{facts[-1].text}, {s}"
            last_kept = raw_index
            continue
        if fact is None:
            if not _HYPOTHETICAL.search(s) and not (_HEARSAY_END.search(s) and not _KO_FIRST_PERSON.search(s)):
                rest.append(s)
            continue
        if _small_talk(fact, s, future, ref is not None):
            continue
        if ref is not None and fact.kind not in ("name", "age"):
            fact.event_date = ref.value
            fact.text = dates.annotate(s, ref)
        same_slot = bool(facts and fact.slot and facts[-1].slot == fact.slot)
        follow_up = fact.slot is None and len(s) <= FRAGMENT and _ATTRIBUTE.match(s)
        if facts and last_kept == raw_index - 1 and (same_slot or follow_up):
            # "고양이 입양했어!! 이름은 치즈": a short follow-up says more about the fact before it;
            # "나 헤어졌어... 이제 솔로야": one slot said twice is one fact, not one superseding the other
            prev = facts[-1]
            whole_sentence = prev.value == prev.text
            prev.text = f"{prev.text}, {fact.text}"
            prev.event_date = prev.event_date or fact.event_date
            if same_slot:
                prev.value = prev.text if whole_sentence else fact.value or prev.value
            last_kept = raw_index
            continue
        facts.append(fact)
        last_kept = raw_index
        if len(facts) >= MAX_FACTS:
            break
    if not facts and rest and keep is not None:
        text = " ".join(r.rstrip(" .") for r in rest)
        if len(text) <= MAX_SENTENCE and keep(text):
            fact = Fact(text, "fact")
            ref = dates.resolve(text, now)
            if ref is not None:
                fact.event_date, fact.text = ref.value, dates.annotate(text, ref)
            facts.append(fact)
    return facts
