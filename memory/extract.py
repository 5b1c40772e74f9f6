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

from memory import dates
from memory.lexical import _kiwi

MAX_SENTENCE = 300  # longer "sentences" are pasted text, not facts about the user
MAX_FACTS = 10  # per message

_HANGUL = re.compile(r"[\uac00-\ud7a3]")


@dataclass
class Fact:
    text: str  # what is stored (the user's sentence, tidied, absolute date written in)
    kind: str  # name | job | home | origin | pref | fav | people | pet | plan | health | goal | habit | birthday | age | fact
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
_FILLER = re.compile(r"^(아|어|음|흠|근데|그리고|그래서|참|아참|맞다|있잖아|so|well|oh|um|also|and|btw)[,\s]+", re.I)
_TAIL = re.compile(r"[\sㅋㅎㅠㅜ~^]+$")


def split_sentences(text: str) -> list[str]:
    parts = re.split(r"(?<=[.!?。])\s+|\n+|(?<=[다요야어아지네])[.!]\s*", text)
    return [p.strip() for p in parts if p and p.strip()]


def is_chitchat(sentence: str) -> bool:
    s = sentence.strip()
    if len(s) < 4:
        return True
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
    "동료|팀장님|선배|후배|룸메이트|시어머니|장모님"
)
_KO_PET = r"(강아지|고양이|냥이|멍멍이|반려견|반려묘|반려동물|햄스터|앵무새|토끼|거북이|키우)"
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
    ("home", re.compile(r"(살아|살고|삽니다|살아요|사는\s*중|이사(했|왔|갔|가|할|해|온|간))")),
    ("origin", re.compile(r"(고향은|고향이|에서\s*태어났|출신)")),
    ("job", re.compile(rf"(직업은|회사\s*다녀|회사\s*다니|(으로|로)\s*일(해|하고|합니다|하는)|에서\s*일(해|하고|합니다)|근무|"
                       rf"({_KO_JOBS})(이야|야|이에요|예요|입니다|이고|으로|로|라서|이라서))")),
    ("fav", re.compile(r"(가장|제일)?\s*좋아하는\s*\S+(은|는)|최애")),
    ("pref", re.compile(r"(좋아해|좋아한|좋아함|좋아합|좋더라|사랑해|싫어|별로야|질색|못\s*먹|안\s*먹|못\s*마셔|안\s*마셔|좋아요)")),
    ("health", re.compile(r"(알레르기|알러지|아파|아프|병원|진단|디스크|수술|다쳤|다쳐|삐었|깁스|약을?\s*먹|불면|감기|당뇨|혈압|"
                          r"임신|우울|공황|천식|비염|입원|몸이\s*안\s*좋|잠을?\s*(잘\s*)?못\s*자)")),
    ("pet", re.compile(_KO_PET)),
    ("plan", re.compile(r"(예정|약속|계획|가기로|하기로|갈\s*거|할\s*거|만나기로|여행|면접|시험|출장|결혼|이사|예약|생신|모임|파티|발표|마감)")),
    ("people", re.compile(rf"({_KO_PEOPLE})")),
    ("goal", re.compile(r"(목표|꿈은|하고\s*싶어|되고\s*싶|준비\s*중|공부\s*중|배우(고|는|기)|시작했|도전|모으고|다이어트|끊었|끊을)")),
    ("habit", re.compile(r"(매일|주말마다|매주|매달|항상|자주|취미|마다|즐겨|하루에)")),
]


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
        if third and kind in ("home", "job", "age", "birthday", "name", "origin", "fav", "pref"):
            return Fact(s, "people")
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
        if kind == "age":
            return Fact(s, "age", "age", s)
        if kind == "home":
            if re.search(r"(살아\s*있|살아\s*남|살아서|살아가)", s):
                continue
            place = _ko_value_before(s, ("살", "삽", "사", "이사"))
            return Fact(s, "home", "home", place)
        if kind == "origin":
            return Fact(s, "origin", "origin", _ko_value_before(s, ("태어나", "고향", "출신")))
        if kind == "job":
            return Fact(s, "job", "job", s)
        if kind == "fav":
            m = re.search(r"좋아하는\s*(\S+?)(은|는)\s", s)
            cat = m.group(1) if m else "최애"
            return Fact(s, "fav", f"fav:{cat}", s)
        if kind == "pref":
            obj, sign = _ko_pref(s)
            return Fact(s, "pref", f"pref:{obj}" if obj else None, sign)
        return Fact(s, kind)
    if _KO_FIRST_PERSON.search(s) and re.search(r"(있어|없어|했어|해|야|이야|거든|어요|아요|습니다|입니다)$", s):
        return Fact(s, "fact")
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
                       rf"\bmy work\b|\bmy (new )?boss\b|\b(new|got a) job\b|\bjob at\b", re.I)),
    ("fav", re.compile(r"\bmy (all[- ]time )?fav(ou?rite)? \w+", re.I)),
    ("pref", re.compile(r"\bi (really |totally |absolutely )?(love|like|enjoy|adore|hate|dislike|can'?t stand|don'?t like|don'?t eat|never eat|can'?t eat)\b", re.I)),
    ("health", re.compile(r"\ballerg|\bsick\b|\bhospital\b|\bdiagnosed\b|\bbroke my\b|\binjur|\bsurgery\b|\bpregnan|\binsomnia\b|"
                          r"\basthma\b|\bdiabet|\bdepress|\banxiety\b|\bintoleran|\bmigraine|\bhurt my\b|\bsprained\b", re.I)),
    ("pet", re.compile(_EN_PET, re.I)),
    ("people", re.compile(rf"\bmy ({_EN_PEOPLE})s?\b", re.I)),
    ("goal", re.compile(r"\bmy goal\b|\bi want to\b|\bi'?d like to\b|\bi'?m (learning|training|saving|trying|studying|preparing)\b|"
                        r"\bmy dream\b|\bi quit\b|\bi started\b|\bi'?m planning\b", re.I)),
    ("plan", re.compile(r"\bappointment\b|\bmeeting\b|\binterview\b|\bexam\b|\btrip\b|\bgoing to\b|\bi'?ll\b|\bi will\b|\bplan\b|"
                        r"\bwedding\b|\bmarried\b|\bflight\b|\bvacation\b|\bparty\b|\bdeadline\b", re.I)),
    ("habit", re.compile(r"\bevery (day|morning|night|week|weekend)\b|\bi usually\b|\bi always\b|\bi often\b|\bmy hobby\b|\bi play\b|\btwice a\b|\bon weekends\b", re.I)),
]


def _en_fact(s: str) -> Fact | None:
    for kind, pattern in _EN_RULES:
        m = pattern.search(s)
        if not m:
            continue
        if kind == "name":
            n = re.search(r"(?:my name is|call me|i'?m called|i am called)\s+([A-Za-z][\w'-]*)", s, re.I)
            if not n or re.search(r"\bmy (dog|cat|pet|\w+'s) name", s, re.I):
                continue
            return Fact(s, "name", "name", n.group(1).lower())
        if kind in ("birthday", "age", "job"):
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
    r"(피곤|졸려|졸리|배고파|배불러|심심|지루|귀찮|짜증|기분\s*좋|행복해|슬퍼|우울해|외로워)|"
    r"\bi'?m (so |really |very |kinda |a bit )?(tired|sleepy|hungry|full|bored|sad|happy|fine|good|ok|okay|great|busy|annoyed)\b",
    re.I,
)


# ---------------------------------------------------------------- entry point
def extract(message: str, now: datetime | None = None) -> list[Fact]:
    """The facts worth remembering in one user message (possibly none)."""
    facts: list[Fact] = []
    for raw in split_sentences(message):
        if len(raw) > MAX_SENTENCE or is_chitchat(raw):
            continue
        s = tidy(raw)
        if len(s) < 4:
            continue
        fact = _ko_fact(s) if _HANGUL.search(s) else _en_fact(s)
        if fact is not None and fact.kind in ("fact", "people") and _TRANSIENT.search(s) and len(s) < 40:
            continue
        if fact is None:
            ref = dates.resolve(s, now)
            # a dated statement in the first person is a plan or an event, whatever its words
            if ref is None or not (_KO_FIRST_PERSON.search(s) or re.search(r"\b(i|we|my)\b", s, re.I)):
                continue
            fact = Fact(s, "plan")
        ref = dates.resolve(s, now)
        if ref is not None and fact.kind not in ("name", "age"):
            fact.event_date = ref.value
            fact.text = dates.annotate(s, ref)
        facts.append(fact)
        if len(facts) >= MAX_FACTS:
            break
    return facts
