"""Questions about the date and time, answered from the clock instead of by the model.

A 270M (or 1.5B) model copies the clock from its prompt badly: it names the wrong hour,
adds a day to "모레", calls Sunday Monday. `ask(text)` reads what the question wants
(the time now, the date or weekday of a day relative to today, past or future, the time
left until an hour, the days left until a weekday or a holiday, 설날 and 추석 from the lunar
calendar included, yes/no about midnight or lunch) and `answer(q, now)`
writes the reply. Anything else (`ask` returns None) goes to the model as before.

Korean and English. Rules are on the question's form (a question word for time or date
next to a question ending), not on a list of sentences, so "몇 시에 자는 게 좋아?" or
"며칠 동안 못 잤어" stay with the model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from korean_lunar_calendar import KoreanLunarCalendar

from memory.dates import EN_NUMBERS, future_day

WEEKDAYS_KO = "월화수목금토일"
WEEKDAYS_EN = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS_EN = ("January", "February", "March", "April", "May", "June", "July", "August",
             "September", "October", "November", "December")

# a question ending right after the asked-for word: 몇 시야 / 며칠이지 / 무슨 요일이에요 / 몇 시임; the past
# copula (이었/였 + 어요, 지, 냐, 더라...) and 되다 (몇 시 됐어 / 몇 시나 됐냐) take any question ending
_ASK_TAIL = r"(?:어요|어|지|죠|냐|니|나요|나|더라|는지|을까|네|음)"
_END = (r"(?:\s*(?:이야|이지|이냐|이니|이에요|이예요|예요|에요|이더라|더라|일까|인지|인가|이죠|죠|(?:이었|였)" + _ASK_TAIL +
        r"|임|야|지|냐|니|쯤|(?:(?:나|쯤|정도)\s*)?(?:됐|되었)" + _ASK_TAIL + r"?|돼|인데|이게|게|일|인가요|이여)"
        r"\s*(?:\?|$|[.!~,ㅋㅎㅠㅜ]|\s)|\s*(?:\?|$|[.!~,ㅋㅎㅠㅜ]))")
_KO_TIME = re.compile(r"몇\s*[시씨](?!간)" + r"(?:\s*몇\s*분)?" + _END + r"|몇\s*신지")  # 몇신지: 몇 시인지
_KO_TIME_WORDS = re.compile(r"(?:지금|현재)\s*(?:시간|시각)\s*(?:좀\s*)?(?:알려|몇|어떻게|이|은|\?|$)|시간\s*좀\s*알려|"
                            r"(?:지금|현재)\s*몇\s*시")
_KO_DATE_ASK = re.compile(r"날[짜자]\s*(?:가|는|좀)?\s*(?:알려|뭐|어떻게|몇|궁금)|(?:오늘|지금)\s*날[짜자]\s*좀\s*(?:$|[?.!~])")
_KO_DATE = re.compile(r"(?:며칠|몇\s*일|몇\s*월\s*몇\s*일|날[짜자])(?!\s*(?:남|걸|동안|전|후|뒤|째|내|정도|씩|만에|간|연속|이나|됐|되었))" + _END)
_KO_WEEKDAY = re.compile(r"(?:무슨|몇|어떤|무순|뭔|먼)\s*요일" + _END +
                         r"|(?:오늘|내일|지금)\s*(?:이\s*)?(?:무슨\s*)?요일\s*(?:좀\s*)?알려\s*(?:줘|주세요|줄래|줄\s*수|주실)")
_KO_MONTH = re.compile(r"몇\s*월" + _END)
_KO_YEAR = re.compile(r"(?:몇\s*년|몇\s*년도|올해\s*가?\s*몇)" + _END)
_KO_LEFT = re.compile(r"(?:얼마|몇\s*분|몇\s*시간|몇\s*일|며칠)\s*(?:나|이나|정도|쯤)?\s*(남|지났|지남|걸려|됐)")
_KO_MIDNIGHT = re.compile(r"자정\s*(?:이\s*)?(?:넘었|넘음|넘었나|지났|지남|됐)")
_KO_LUNCH = re.compile(r"점심\s*시간\s*(?:이야|이지|인가|이에요|이죠|맞|됐|야|지\b|임|이냐|\?)")
_KO_AMPM = re.compile(r"(?:오전|오후)\s*(?:이야|야|인가|이에요|예요|임|이지|지)?\s*(?:오전|오후)\s*(?:이야|야|인가|이에요|예요|임|이지|지)")
_KO_IS_DAY = re.compile(r"(?:요일|욜)\s*(?:이었나|였나|이지|지|이냐|냐|맞|인가|이니|이죠|죠|이야\s*\?|야\s*\?|이에요\s*\?|예요\s*\?|됐|이네\s*\?)")
_KO_IS_WEEKEND = re.compile(r"(주말|평일)\s*(?:이야|야|이에요|예요|인가요?|이지|이죠|죠|이냐|냐|이니|임|이었나|였나)?\s*(?:\?|맞)")
_KO_IS_MONTH = re.compile(r"(?:벌써|이제|곧|아직|오늘|내일)?\s*(1[0-2]|[1-9])\s*월\s*(?:이지|인가|이야\s*\?|맞|됐|이죠|이에요\s*\?|이냐)")

_EN_TIME = re.compile(r"\bwhat(?:'?s| is)? the time\b|\bwhat time (?:\w+ )?is it\b|\bwhat time it is\b|\btime is it\b|\bcurrent time\b|"
                      r"\bgot the time\b|\btell me the time\b|\bhow late is it\b", re.I)
_EN_DATE = re.compile(r"\bwhat(?:'s| is| was)? (?:the )?date\b|\bwhat date\b|\bdate (?:is it|today)\b|"
                      r"\bwhich date\b|\bwhat(?:'s| is)? today\b|\b(?:today|yesterday|tomorrow)'?s date\b|"
                      r"\bthe date (?:is it|tomorrow|today)\b", re.I)
_EN_DAY = re.compile(r"\bwhat day\b|\bwhich day\b|\bday of the week (?:is it|today)\b|\bwhat(?:'s| is| was) the day\b", re.I)
_EN_MONTH = re.compile(r"\b(?:what|which) month (?:is it|are we|is this)\b|\bwhat'?s the month\b", re.I)
_EN_YEAR = re.compile(r"\b(?:what|which) year (?:is it|are we|is this)\b|\bwhat'?s the year\b", re.I)
_EN_IS_DAY = re.compile(r"\bis (?:it|today|tomorrow) (?:already |still |really )?(monday|tuesday|wednesday|thursday|"
                        r"friday|saturday|sunday)\b", re.I)
_EN_MIDNIGHT = re.compile(r"\b(?:past|after) midnight\b|\bmidnight yet\b|\bhit midnight\b", re.I)
_EN_IS_WEEKEND = re.compile(r"\bis (?:it|today|tomorrow) (?:already |still |really )?(?:the |a )?(weekend|weekday)\b", re.I)
_EN_IS_MONTH = re.compile(r"\bis (?:it|today|tomorrow) (?:already |still |really )?(" + "|".join(MONTHS_EN) + r")\b", re.I)
_EN_IS_HOLIDAY = re.compile(r"\bis (?:it|today|tomorrow) (?:already |still |really )?"
                            r"(christmas|lunar new year|new year|valentine|halloween|april fool|chuseok|seollal)", re.I)
_EN_LUNCH = re.compile(r"\blunch ?time\b", re.I)

_KO_DAYS = [  # longest first: 내일모레 before 내일, 엊그제 before 그제
    ("내일모레", 2), ("내일 모레", 2), ("낼모레", 2), ("글피", 3), ("모레", 2), ("내일", 1), ("낼", 1),
    ("그끄저께", -3), ("그끄제", -3), ("엊그저께", -2), ("엊그제", -2), ("그저께", -2), ("그제", -2),
    ("어저께", -1), ("어제", -1), ("오늘", 0)]
_KO_N_DAYS = re.compile(r"(\d+)\s*일\s*(뒤|후|전|있다가)")
_KO_NATIVE_DAYS = {"하루": 1, "이틀": 2, "사흘": 3, "나흘": 4, "닷새": 5, "엿새": 6, "이레": 7, "열흘": 10,
                   "일주일": 7, "한 주": 7, "한주": 7, "이주": 14, "2주": 14, "보름": 15}
_KO_NATIVE = re.compile(r"(하루|이틀|사흘|나흘|닷새|엿새|이레|열흘|일주일|한\s?주|이주|2주|보름)\s*(?:일\s*)?(뒤|후|전|있다가)")
_KO_WEEK_DAY = re.compile(r"(이번\s*주|이번주|다음\s*주|다음주|담주|저번\s*주|저번주|지난\s*주|지난주|다다음\s*주)?\s*"
                          r"([월화수목금토일])(?:요일|욜)")
_KO_HOUR = re.compile(r"(오전|오후|아침|저녁|밤|새벽|낮)?\s*(\d{1,2})\s*시\s*(?:(\d{1,2})\s*분|반)?")

# days people count down to: fixed dates (month, day), and lunar ones (LUNAR_HOLIDAYS, month and day
# of the Korean lunar calendar)
HOLIDAYS = {"크리스마스": (12, 25), "성탄절": (12, 25), "새해": (1, 1), "신정": (1, 1), "발렌타인": (2, 14),
            "밸런타인": (2, 14), "화이트데이": (3, 14), "만우절": (4, 1), "어린이날": (5, 5), "할로윈": (10, 31),
            "핼러윈": (10, 31), "빼빼로데이": (11, 11), "한글날": (10, 9), "광복절": (8, 15), "삼일절": (3, 1),
            "개천절": (10, 3), "현충일": (6, 6), "christmas": (12, 25), "new year": (1, 1), "valentine": (2, 14),
            "halloween": (10, 31), "april fool": (4, 1)}
LUNAR_HOLIDAYS = {"설날": (1, 1), "구정": (1, 1), "설": (1, 1), "추석": (8, 15), "한가위": (8, 15),
                  "seollal": (1, 1), "lunar new year": (1, 1), "chuseok": (8, 15)}
_HOLIDAY_NAMES = sorted((*HOLIDAYS, *LUNAR_HOLIDAYS), key=len, reverse=True)  # longest first: 설날 before 설
# names that start other words: 설 (설명, 설탕, 소설) only on its own, 구정 not in 구정물
_NAME_PATTERNS = {"설": r"(?<![가-힣])설(?=\s|까지|은|이|에|도|$|[?.!])", "구정": r"구정(?!물)"}
_HOLIDAY = "|".join(_NAME_PATTERNS.get(k, re.escape(k)) for k in _HOLIDAY_NAMES)
_YEAR_WORDS = {"올해": 0, "금년": 0, "내년": 1, "작년": -1, "지난해": -1, "this year": 0, "next year": 1, "last year": -1}
_YEAR_WORD = re.compile("|".join(_YEAR_WORDS), re.I)
_KO_UNTIL = re.compile(r"(" + _HOLIDAY + r"|이번\s*달\s*말일?|이번\s*달|말일|월말|올해|연말|주말|자정|[월화수목금토일]요일)\s*(?:데이)?\s*(?:까지|이)?\s*(?:는\s*)?"
                       r"(?:앞으로\s*)?(며칠|몇\s*일|몇\s*시간|몇\s*분|얼마)\s*(?:나\s*|이나\s*|정도\s*)?남")
# "내 생일 8월 14일인데 며칠 남았어?"
_KO_UNTIL_DATE = re.compile(r"(\d{1,2})\s*월\s*(\d{1,2})\s*일[^?.!]{0,12}?(?:며칠|몇\s*일|얼마)\s*(?:나\s*|이나\s*|정도\s*)?남")
_KO_IS_HOLIDAY = re.compile(r"(" + _HOLIDAY + r")\s*(?:데이|이브)?\s*(?:이지|지(?![가-힣])|맞|이야\s*\?|야\s*\?|인가|이죠|죠|냐|됐|되었|이냐)")
_KO_HOLIDAY_NAMED = re.compile(r"(" + _HOLIDAY + r")")
_KO_WHEN = re.compile(r"언제" + _END)  # 추석 언제야 (not 추석에 언제 내려가)
_EN_UNTIL = re.compile(r"\bhow (?:many (days|hours|minutes)|long) (?:un)?till? (?:the )?(" + _HOLIDAY +
                       r"|weekend|midnight|monday|tuesday|wednesday|thursday|friday|saturday|sunday|(\d{1,2})(?::(\d\d))? ?(am|pm)?)", re.I)

_EN_LEFT_IN = re.compile(r"\bhow many days (?:are )?(?:left|remaining) (?:in|of) (?:this|the) month\b|"
                         r"\bhow many days until the end of (?:this|the) month\b", re.I)

_EN_HOLIDAY_NAMED = re.compile(r"\b(" + _HOLIDAY + r")\b", re.I)
_EN_WHEN = re.compile(r"\bwhen(?:'s| is| was| will be)\s+(?:the\s+)?(?:" + _HOLIDAY +
                      r")(?:\s+(?:this|next|last) year)?\s*(?:\?|$|[.!,])", re.I)  # not "when is christmas dinner"

_EN_DAYS = [("day after tomorrow", 2), ("tomorrow", 1), ("day before yesterday", -2), ("yesterday", -1), ("today", 0),
            ("tonight", 0)]
_EN_COUNT = r"(\d+|" + "|".join(EN_NUMBERS) + r")"
_EN_N_DAYS = re.compile(r"\bin " + _EN_COUNT + r" days?\b|\b" + _EN_COUNT + r" days? (from now|ago)\b", re.I)
_EN_WEEK_DAY = re.compile(r"\b(this|next|last)?\s*(monday|tuesday|wednesday|thursday|friday|saturday|sunday)\b", re.I)


@dataclass(frozen=True)
class ClockQuestion:
    """What a message asks of the clock."""

    lang: str  # "ko" | "en"
    want: str  # "time" | "date" | "weekday" | "month" | "year" | "left" | "midnight" | "lunch" | "ampm" | "is_day" | "is_weekend"
    day: int = 0  # days from today the question is about
    day_word: str = ""  # how the user named that day (내일, 이번 주 금요일, tomorrow)
    target: tuple[int, int] | None = None  # "left" questions: the hour and minute asked about
    target_weekday: int | None = None  # "is_day" / "left" to a weekday
    polite: bool = False  # the user writes 존댓말
    goal: datetime | None = None  # "left" questions: the moment counted down to
    unit: str = "day"  # "day" | "hour" | "minute": how the time left is said
    name: str = ""  # the day's name (크리스마스) for "left" and "is_day" questions about a holiday
    target_month: int | None = None  # "is_month": the month asked about
    also_time: bool = False  # the message also asks the time now
    either: bool = False  # "is it Saturday or Sunday?": no yes/no in the reply


def _holiday_key(word: str) -> str:
    """The HOLIDAYS / LUNAR_HOLIDAYS key of a name as written (Christmas, 설날이 -> christmas, 설날)."""
    w = re.sub(r"\s", "", word).lower()
    return next(k for k in _HOLIDAY_NAMES if w.startswith(k.replace(" ", "")))


def _holiday_on(name: str, year: int) -> date | None:
    """The day a holiday falls on in `year`; lunar ones from the Korean lunar calendar (None past its tables)."""
    if name in HOLIDAYS:
        return date(year, *HOLIDAYS[name])
    cal = KoreanLunarCalendar()
    if not cal.setLunarDate(year, *LUNAR_HOLIDAYS[name], False):
        return None
    return date(cal.solarYear, cal.solarMonth, cal.solarDay)


def _next_holiday(name: str, now: datetime) -> datetime | None:
    """The next such day from today (today included), at midnight."""
    for year in (now.year, now.year + 1):
        day = _holiday_on(name, year)
        if day is not None and day >= now.date():
            return datetime.combine(day, datetime.min.time())
    return None


def _holiday_day(name: str, text: str, now: datetime) -> date | None:
    """The holiday in the year the message names (올해 추석, last year's Christmas), else the next one."""
    year = _YEAR_WORD.search(text)
    if year:
        return _holiday_on(name, now.year + _YEAR_WORDS[year.group(0).lower()])
    goal = _next_holiday(name, now)
    return goal.date() if goal else None


def _goal_of(word: str, now: datetime) -> tuple[datetime, str] | None:
    """The moment a countdown word names, and the name to say it by (None: a lunar day past the tables)."""
    w = re.sub(r"\s", "", word).lower()
    day0 = datetime.combine(now.date(), datetime.min.time())
    if w.startswith("이번달") or w in ("말일", "월말"):
        first = (now.replace(day=1) + timedelta(days=32)).replace(day=1)
        return datetime.combine(first.date(), datetime.min.time()), "이번 달 끝"
    if w in ("올해", "연말"):
        return datetime(now.year + 1, 1, 1), "올해 끝"
    if w in ("주말", "weekend"):
        return day0 + timedelta(days=(5 - now.weekday()) % 7), "주말" if w == "주말" else "the weekend"
    if w in ("자정", "midnight"):
        return day0 + timedelta(days=1), w
    if re.fullmatch(r"[월화수목금토일]요일", w):
        wd = WEEKDAYS_KO.index(w[0])
        return day0 + timedelta(days=(wd - now.weekday()) % 7), word.strip()
    if w in [d.lower() for d in WEEKDAYS_EN]:
        wd = [d.lower() for d in WEEKDAYS_EN].index(w)
        return day0 + timedelta(days=(wd - now.weekday()) % 7 or 7), WEEKDAYS_EN[wd]
    key = _holiday_key(w)
    goal = _next_holiday(key, now)
    return (goal, key) if goal else None


def _unit(word: str) -> str:
    return "hour" if "시간" in word or word.lower() == "hours" else "minute" if "분" in word or word.lower() == "minutes" else "day"


# a sentence of the message in 존댓말: 요 or 죠 at its end, or a polite ending before more words
# ("어떻게 해요 진짜 궁금함", "많아요? ㅋㅋ", "하세요 토니 씨"); 습니다/ㅂ니까 anywhere (formal_ending)
_POLITE_END = re.compile(r"(요|죠)\s*[?.!~ㅠㅜㅋㅎ^;]*\s*$|(요|죠)\s*[?.!~]+|[아어여해에예세까나네데게래지걸군대워와봐줘돼]요\s")
_NIDA = re.compile(r"([가-힣])니(?:다|까)")


def _formal_ending(text: str) -> bool:
    """습니다, 입니다, 합니까: 니다/니까 after a syllable ending in ㅂ (not 아니다, 그러니까)."""
    return any((ord(m.group(1)) - 0xAC00) % 28 == 17 for m in _NIDA.finditer(text))


def polite(text: str) -> bool:
    """The message is in 존댓말: one of its sentences ends in 요/죠 or 습니다/ㅂ니까, also when a 반말
    afterthought follows ("전기차 배터리 왜 이렇게 빨리 닳아요? 어제 30% 빠짐")."""
    t = text.strip()
    return bool(_POLITE_END.search(t)) or _formal_ending(t)


def _ko_day(text: str, today: date | None = None) -> tuple[int, str] | None:
    m = _KO_N_DAYS.search(text)
    if m:
        n = int(m.group(1))
        return (-n if m.group(2) == "전" else n), m.group(0)
    m = _KO_NATIVE.search(text)
    if m:
        n = _KO_NATIVE_DAYS[re.sub(r"\s", " ", m.group(1))] if m.group(1) in _KO_NATIVE_DAYS else 7
        return (-n if m.group(2) == "전" else n), m.group(0)
    for word, offset in _KO_DAYS:
        if word in text:
            return offset, word
    return None


def _ko_day_or_today(text: str) -> tuple[int, str]:
    """The day the message names (내일, 3일 후...), or today."""
    return _ko_day(text) or (0, "오늘")


def _week_offset(prefix: str) -> int:
    p = (prefix or "").replace(" ", "")
    if p in ("다음주", "담주"):
        return 1
    if p == "다다음주":
        return 2
    if p in ("저번주", "지난주"):
        return -1
    return 0


def _weekday_day(weekday: int, week: int, today: date) -> int:
    """Days from today to `weekday` of this week (+ week), weeks starting on Monday; "this week's"
    day that has already gone means the coming one (asked on a Sunday, 이번 주 금요일 is ahead)."""
    days = weekday - today.weekday() + 7 * week
    return days + 7 if week == 0 and days < 0 else days


def ask(text: str, now: datetime | None = None) -> ClockQuestion | None:
    """What the message asks about the date or time; None if it is not such a question."""
    now = now or datetime.now()
    t = text.strip()
    if re.search(r"[가-힣]", t):
        return _ask_ko(t, now)
    return _ask_en(t, now)


def _ask_ko(t: str, now: datetime) -> ClockQuestion | None:
    today = now.date()
    is_polite = polite(t)
    asks_time = bool(_KO_TIME.search(t) or _KO_TIME_WORDS.search(t))
    q = lambda want, **kw: ClockQuestion("ko", want, polite=is_polite, also_time=asks_time and want != "time", **kw)  # noqa: E731
    until = _KO_UNTIL.search(t)
    if until:
        counted = _goal_of(until.group(1), now)
        if counted is None:
            return None
        goal, name = counted
        unit = _unit(until.group(2)) if "얼마" not in until.group(2) else ("day" if (goal - now).days >= 1 else "minute")
        return ClockQuestion("ko", "left", polite=is_polite, goal=goal, unit=unit, name=name)
    until_date = _KO_UNTIL_DATE.search(t)
    if until_date:
        day = future_day(now.date(), int(until_date.group(1)), int(until_date.group(2)))
        if day is not None:
            return ClockQuestion("ko", "left", polite=is_polite, goal=datetime.combine(day, datetime.min.time()), unit="day",
                                 name=f"{int(until_date.group(1))}월 {int(until_date.group(2))}일")
    left = _KO_LEFT.search(t)
    if left and left.group(1) in ("남", "걸려"):
        hour = _KO_HOUR.search(t)
        if hour:
            return ClockQuestion("ko", "left", polite=is_polite, goal=_next_hour(hour, now), unit="minute",
                                 name=hour.group(0).strip())
    if left and left.group(1) in ("지났", "지남"):
        hour = _KO_HOUR.search(t)
        if hour:
            return ClockQuestion("ko", "since", polite=is_polite, goal=_last_hour(hour, now), name=hour.group(0).strip())
    holiday = _KO_IS_HOLIDAY.search(t)
    if holiday:
        day = _ko_day_or_today(t)
        key = _holiday_key(holiday.group(1))
        return q("is_holiday", day=day[0], day_word=day[1], goal=_next_holiday(key, now - timedelta(days=1)),
                 name=holiday.group(1))
    asks_date = bool(_KO_DATE.search(t) or _KO_DATE_ASK.search(t))
    asks_weekday = bool(_KO_WEEKDAY.search(t))
    named = _KO_HOLIDAY_NAMED.search(t)
    if named and (asks_date or asks_weekday or _KO_WHEN.search(t)) and not _ko_day(t):  # 올해 추석 언제야
        day = _holiday_day(_holiday_key(named.group(1)), t, now)
        return q("date", day=(day - today).days, day_word=named.group(1)) if day else None
    wk = _KO_WEEK_DAY.search(t)
    if wk and (asks_date or wk.group(1) and asks_weekday):
        wd = WEEKDAYS_KO.index(wk.group(2))
        return q("date", day=_weekday_day(wd, _week_offset(wk.group(1)), today), day_word=wk.group(0).strip())
    weekend_word = re.search(r"(이번\s*|다음\s*|담\s*)?주말", t)
    if asks_date and weekend_word and not _ko_day(t):  # 이번 주말이 며칠이야: that Saturday (today on a weekend)
        nxt = (weekend_word.group(1) or "").strip() in ("다음", "담")
        if today.weekday() >= 5 and not nxt:
            return q("date", day=0, day_word="오늘")
        return q("date", day=5 - today.weekday() + (7 if nxt else 0), day_word=weekend_word.group(0).strip())
    if asks_date or asks_weekday:
        day = _ko_day_or_today(t)
        return q("weekday" if asks_weekday and not asks_date else "date", day=day[0], day_word=day[1])
    if wk and _KO_IS_DAY.search(t):  # "오늘 금요일 맞지?" / "벌써 금요일이야?"
        day = _ko_day_or_today(t)
        return q("is_day", target_weekday=WEEKDAYS_KO.index(wk.group(2)), day=day[0], day_word=day[1],
                 either=len(_KO_WEEK_DAY.findall(t)) > 1)
    weekend = _KO_IS_WEEKEND.search(t)
    if weekend:
        day = _ko_day_or_today(t)
        return q("is_weekend", day=day[0], day_word=day[1], name=weekend.group(1),
                 either="주말" in t and "평일" in t)
    month = _KO_IS_MONTH.search(t)
    if month:
        day = _ko_day_or_today(t)
        return q("is_month", target_month=int(month.group(1)), day=day[0], day_word=day[1])
    if asks_time and _ko_day_or_today(t)[0] >= 0:  # not 어제 몇 시였지: an hour that day, from memory
        return q("time")
    if _KO_MONTH.search(t):
        shift = 1 if re.search(r"다음\s*달", t) else -1 if re.search(r"(?:지난|저번)\s*달", t) else 0
        return q("month", day=shift)
    if _KO_YEAR.search(t):
        return q("year")
    if _KO_MIDNIGHT.search(t):
        return q("midnight")
    if _KO_LUNCH.search(t):
        return q("lunch")
    if _KO_AMPM.search(t):
        return q("ampm")
    return None


def _hour_min(m: re.Match) -> tuple[int, int, str]:
    h, minute = int(m.group(2)), int(m.group(3) or 0)
    if m.group(0).rstrip().endswith("반"):
        minute = 30
    return h, minute, m.group(1) or ""


def _candidates(m: re.Match, now: datetime) -> list[datetime]:
    """Every moment "N시 (M분)" can mean, yesterday to tomorrow: 오후/저녁/밤 fix the half of the day,
    an unqualified hour may be either (the nearest one is meant)."""
    h, minute, part = _hour_min(m)
    if part in ("오후", "저녁", "밤") and h < 12:
        hours = [h + 12]
    elif part in ("오전", "아침", "새벽"):
        hours = [h % 12]
    elif part == "낮":
        hours = [h + 12 if h < 6 else h]
    else:
        hours = [h % 12, h % 12 + 12] if h <= 12 else [h]
    day0 = datetime.combine(now.date(), datetime.min.time())
    return [day0 + timedelta(days=d, hours=hh, minutes=minute) for d in (-1, 0, 1) for hh in hours]


def _next_hour(m: re.Match, now: datetime) -> datetime:
    return min((c for c in _candidates(m, now) if c >= now), key=lambda c: c - now)


def _last_hour(m: re.Match, now: datetime) -> datetime:
    return min((c for c in _candidates(m, now) if c <= now), key=lambda c: now - c)


def _en_day(t: str, today: date) -> tuple[int, str] | None:
    m = _EN_N_DAYS.search(t)
    if m:
        count = (m.group(1) or m.group(2)).lower()
        n = EN_NUMBERS[count] if count in EN_NUMBERS else int(count)
        return (-n if (m.group(3) or "").lower() == "ago" else n), m.group(0)
    low = t.lower()
    for word, offset in _EN_DAYS:
        if word in low:
            return offset, word
    return None


def _en_is_day(t: str) -> tuple[int, str]:
    """The day an "is it ..." question asks about: tomorrow when it says "is tomorrow", else today."""
    return (1, "tomorrow") if re.search(r"\bis tomorrow\b", t, re.I) else (0, "today")


def _ask_en(t: str, now: datetime) -> ClockQuestion | None:
    today = now.date()
    until = _EN_UNTIL.search(t)
    if until:
        unit = (until.group(1) or "").lower() or "minute"
        if until.group(3):
            h, m = int(until.group(3)), int(until.group(4) or 0)
            if (until.group(5) or "").lower() == "pm" and h < 12 or not until.group(5) and 1 <= h <= 6:
                h += 12
            goal = datetime.combine(today, datetime.min.time()) + timedelta(hours=h, minutes=m)
            goal = goal if goal > now else goal + timedelta(days=1)
            return ClockQuestion("en", "left", goal=goal, unit=unit.rstrip("s"), name=until.group(2))
        counted = _goal_of(until.group(2), now)
        if counted is None:
            return None
        goal, name = counted
        if until.group(1) is None:
            unit = "day" if (goal - now).days >= 1 else "minute"
        return ClockQuestion("en", "left", goal=goal, unit=unit.rstrip("s"), name=name)
    if _EN_LEFT_IN.search(t):
        first = (now.replace(day=1) + timedelta(days=32)).replace(day=1)
        return ClockQuestion("en", "left", goal=datetime.combine(first.date(), datetime.min.time()) - timedelta(days=1),
                             unit="day", name="the end of the month")
    if _EN_TIME.search(t):
        return ClockQuestion("en", "time")
    m = _EN_IS_WEEKEND.search(t)
    if m:
        day, word = _en_is_day(t)
        return ClockQuestion("en", "is_weekend", day=day, day_word=word, name=m.group(1).lower())
    m = _EN_IS_DAY.search(t)
    if m:
        wd = [d.lower() for d in WEEKDAYS_EN].index(m.group(1).lower())
        day, word = _en_is_day(t)
        return ClockQuestion("en", "is_day", target_weekday=wd, day=day, day_word=word,
                             either=bool(re.search(r"\bor\b", t, re.I)))
    asks_date = bool(_EN_DATE.search(t) or _EN_DAY.search(t))
    named = _EN_HOLIDAY_NAMED.search(t)
    if named and (asks_date or _EN_WHEN.search(t)) and not _en_day(t, today):  # when is Chuseok this year?
        key = _holiday_key(named.group(1))
        day = _holiday_day(key, t, now)
        return ClockQuestion("en", "date", day=(day - today).days, day_word=key.title()) if day else None
    if asks_date:
        wk = _EN_WEEK_DAY.search(t)
        if wk and wk.group(1):
            wd = [d.lower() for d in WEEKDAYS_EN].index(wk.group(2).lower())
            week = {"this": 0, "next": 1, "last": -1}[wk.group(1).lower()]
            return ClockQuestion("en", "date", day=_weekday_day(wd, week, today), day_word=wk.group(0).strip())
        day = _en_day(t, today) or (0, "today")
        if day[0] >= 0 and re.search(r"\b(?:what|which)\b[^.?!,]*\bwas\b", t, re.I):  # what was the date of the moon landing?
            return None
        want = "weekday" if _EN_DAY.search(t) and not _EN_DATE.search(t) else "date"
        return ClockQuestion("en", want, day=day[0], day_word=day[1])
    if _EN_MONTH.search(t):
        return ClockQuestion("en", "month")
    if _EN_YEAR.search(t):
        return ClockQuestion("en", "year")
    m = _EN_IS_MONTH.search(t)
    if m:
        day, word = _en_is_day(t)
        return ClockQuestion("en", "is_month", target_month=[x.lower() for x in MONTHS_EN].index(m.group(1).lower()) + 1,
                             day=day, day_word=word)
    m = _EN_IS_HOLIDAY.search(t)
    if m:
        day, word = _en_is_day(t)
        key = _holiday_key(m.group(1))
        return ClockQuestion("en", "is_holiday", day=day, day_word=word,
                             goal=_next_holiday(key, now - timedelta(days=1)), name=key)
    if _EN_MIDNIGHT.search(t) and "?" in t or re.search(r"\bis it (?:past|after) midnight\b", t, re.I):
        return ClockQuestion("en", "midnight")
    if _EN_LUNCH.search(t) and re.search(r"\bis it\b|\byet\b|\?", t, re.I):
        return ClockQuestion("en", "lunch")
    return None


# -- answers ---------------------------------------------------------------------------
def _ko_clock(now: datetime) -> str:
    h = now.hour
    part = "새벽" if h < 6 else "오전" if h < 12 else "낮" if h == 12 else "오후" if h < 18 else "저녁" if h < 21 else "밤"
    minute = f" {now.minute}분" if now.minute else ""
    return f"{part} {h % 12 or 12}시{minute}"


def _ko_date(d: date, with_year: bool = False) -> str:
    year = f"{d.year}년 " if with_year else ""
    return f"{year}{d.month}월 {d.day}일 {WEEKDAYS_KO[d.weekday()]}요일"


def _en_clock(now: datetime) -> str:
    return f"{now.hour % 12 or 12}:{now.minute:02d} {'AM' if now.hour < 12 else 'PM'}"


def _en_date(d: date, with_year: bool = False) -> str:
    year = f", {d.year}" if with_year else ""
    return f"{WEEKDAYS_EN[d.weekday()]}, {MONTHS_EN[d.month - 1]} {d.day}{year}"


def _span_ko(minutes: int) -> str:
    h, m = divmod(minutes, 60)
    return " ".join(p for p in (f"{h}시간" if h else "", f"{m}분" if m else "") if p) or "0분"


def _has_final(word: str) -> bool:
    """The last syllable ends in a consonant (은/는, 이야/야); digits are read aloud."""
    ch = word.strip()[-1:] if word.strip() else ""
    if ch.isdigit():
        return ch in "013678"  # 영 일 삼 육 칠 팔 end in a consonant; 이 사 오 구 do not
    return bool(ch) and "가" <= ch <= "힣" and (ord(ch) - 0xAC00) % 28 != 0


def _is(word: str, polite: bool) -> str:
    """word + the copula: 12월 6일이야 / 새벽 2시야 / 일요일이에요 / 2시예요."""
    if polite:
        return word + ("이에요" if _has_final(word) else "예요")
    return word + ("이야" if _has_final(word) else "야")


def _was(word: str, polite: bool) -> str:
    """word + the past copula: 토요일이었어 / 2시였어요."""
    return word + ("이었어" if _has_final(word) else "였어") + ("요" if polite else "")


def _topic(word: str) -> str:
    return word + ("은" if _has_final(word) else "는")


def answer(q: ClockQuestion, now: datetime) -> str:
    """The reply to a clock question, in the user's language (존댓말 if they wrote it)."""
    return _answer_ko(q, now) if q.lang == "ko" else _answer_en(q, now)


def _answer_ko(q: ClockQuestion, now: datetime) -> str:
    p = q.polite
    yo = "요" if p else ""
    yes, no = ("네" if p else "응"), ("아니요" if p else "아니")
    today = now.date()
    target = today + timedelta(days=q.day)
    word = q.day_word or "오늘"
    clock = _ko_clock(now)
    tail = f" 지금은 {_is(clock, p)}." if q.also_time else ""
    if q.want == "time":
        return f"지금 {_is(clock, p)}."
    if q.want in ("date", "weekday"):
        day = _ko_date(target, with_year=target.year != today.year)  # 작년 추석: 2025년 10월 6일
        said = _was(day, p) if q.day < 0 else _is(day, p)
        return f"{_topic(word)} {said}.{tail}"
    if q.want == "month":
        month = (now.month - 1 + q.day) % 12 + 1  # day holds the month shift here (다음 달: +1)
        which = {1: "다음 달은", -1: "지난달은"}.get(q.day, "지금은")
        return f"{which} {_is(f'{month}월', p)}."
    if q.want == "year":
        return f"올해는 {_is(f'{now.year}년', p)}."
    if q.want == "left" and q.goal is not None:
        if q.name == "주말" and today.weekday() >= 5:
            return f"지금이 주말{'이에요' if p else '이야'}! 오늘은 {_is(_ko_date(today), p)}."
        if q.unit == "day":
            days = (q.goal.date() - today).days
            if q.name in ("이번 달 끝", "올해 끝"):
                return f"{q.name[:-2]}은 오늘 빼고 {days - 1}일 남았어{yo}."
            if days == 0:
                return f"오늘이 바로 {_is(q.name, p)}!"
            return f"{q.name}까지 {days}일 남았어{yo}. {_is(_ko_date(q.goal.date()), p)}."
        minutes = int((q.goal - now).total_seconds() // 60)
        span = f"{minutes}분" if q.unit == "minute" and minutes < 60 else _span_ko(minutes)
        return f"지금 {_is(clock, p)}. {q.name}까지 {span} 남았어{yo}."
    if q.want == "since" and q.goal is not None:
        span = _span_ko(int((now - q.goal).total_seconds() // 60))
        return f"지금 {_is(clock, p)}. {q.name}부터 {span} 지났어{yo}."
    if q.want == "is_holiday":
        hit = q.goal is not None and q.goal.date() == target
        when = "" if hit or q.goal is None else f" {_topic(q.name)} {_ko_date(q.goal.date())}."
        return f"{yes if hit else no}, {_topic(word)} {_is(_ko_date(target), p)}.{when}{tail}"
    if q.want == "is_day":
        hit = target.weekday() == q.target_weekday
        head = "" if q.either else f"{yes if hit else no}, "
        said = _was(_ko_date(target), p) if q.day < 0 else _is(_ko_date(target), p)
        return f"{head}{_topic(word)} {said}.{tail}"
    if q.want == "is_month":
        hit = target.month == q.target_month
        return f"{yes if hit else no}, {_topic(word)} {_is(_ko_date(target), p)}.{tail}"
    if q.want == "is_weekend":
        hit = (target.weekday() >= 5) == (q.name == "주말")
        head = "" if q.either else f"{yes if hit else no}, "
        return f"{head}{_topic(word)} {_is(_ko_date(target), p)}.{tail}"
    if q.want == "midnight":
        head = f"{yes}, 넘었어{yo}" if now.hour < 5 else ("아직이에요" if p else "아직이야")
        return f"{head}. 지금 {_is(clock, p)}."
    if q.want == "lunch":
        head = f"{yes}, 점심시간이에요" if p else f"{yes}, 점심시간이야"
        if not 11 <= now.hour < 14:
            head = "지금은 점심시간 아니에요" if p else "지금은 점심시간 아니야"
        return f"{head}. {_is(clock, p)}."
    if q.want == "ampm":
        return f"{_is('오전' if now.hour < 12 else '오후', p)}. 지금 {_is(clock, p)}."
    return f"지금 {_ko_date(today)} {_is(clock, p)}."


def _answer_en(q: ClockQuestion, now: datetime) -> str:
    today = now.date()
    target = today + timedelta(days=q.day)
    if q.want == "time":
        return f"It's {_en_clock(now)}."
    if q.want == "left" and q.goal is not None:
        minutes = int((q.goal - now).total_seconds() // 60)
        name = q.name.title() if q.name in _HOLIDAY_NAMES else q.name
        if q.name == "the weekend" and today.weekday() >= 5:
            return f"It's the weekend already: today is {_en_date(today)}."
        if q.unit == "day":
            days = (q.goal.date() - today).days
            return f"{days} day{'s' if days != 1 else ''} until {name} ({_en_date(q.goal.date())})." if days else f"{name[:1].upper()}{name[1:]} is today!"
        h, m = divmod(minutes, 60)
        span = f"{minutes} minutes" if q.unit == "minute" and minutes < 120 else f"{h} h {m} min"
        return f"It's {_en_clock(now)}, so {span} to go."
    if q.want in ("date", "weekday"):
        if q.day == 0:
            return f"Today is {_en_date(target)}."
        word = q.day_word[:1].upper() + q.day_word[1:]
        return f"{word} {'was' if q.day < 0 else 'is'} {_en_date(target, with_year=target.year != today.year)}."
    if q.want == "month":
        return f"It's {MONTHS_EN[now.month - 1]}."
    if q.want == "year":
        return f"It's {now.year}."
    if q.want == "is_day":
        yes = target.weekday() == q.target_weekday
        head = "" if q.either else ("Yes, " if yes else "No, ")
        said = f"{head}{q.day_word or 'today'} is {_en_date(target)}."
        return said[:1].upper() + said[1:]
    if q.want == "is_month":
        yes = target.month == q.target_month
        return f"{'Yes' if yes else 'No'}, {q.day_word or 'today'} is {_en_date(target)}."
    if q.want == "is_weekend":
        yes = (target.weekday() >= 5) == (q.name == "weekend")
        return f"{'Yes' if yes else 'No'}, {q.day_word or 'today'} is {_en_date(target)}."
    if q.want == "is_holiday":
        yes = q.goal is not None and q.goal.date() == target
        return f"{'Yes' if yes else 'No'}, {q.day_word or 'today'} is {_en_date(target)}."
    if q.want == "midnight":
        return f"{'Yes' if now.hour < 5 else 'Not yet'}: it's {_en_clock(now)}."
    if q.want == "lunch":
        return f"{'Yes' if 11 <= now.hour < 14 else 'No'}, it's {_en_clock(now)}."
    return f"It's {_en_clock(now)} on {_en_date(today)}."
