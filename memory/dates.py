"""Relative dates ("내일", "다음 주 금요일", "next Thursday") turned into the absolute date they meant.

`resolve(text, now)` returns the first date expression found: its ISO value (a day
`2026-12-04`, an ISO week `2026-W49`, a month `2026-12` or a year `2027`) and the span
of text it came from, so the caller can write the absolute date next to it. Weeks start
on Monday; "다음 주 X요일" / "next X" is X in the following calendar week; a bare
weekday ("금요일에", "on Friday") is the next such day from today (today included).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

KO_WEEKDAYS = "월화수목금토일"
EN_WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
_KO_NUM = {"하루": 1, "이틀": 2, "사흘": 3, "나흘": 4, "닷새": 5, "일주일": 7, "한 달": 30, "한달": 30}
EN_NUMBERS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "ten": 10}


@dataclass(frozen=True)
class DateRef:
    value: str  # ISO date, week, month or year
    start: int
    end: int

    @property
    def is_day(self) -> bool:
        return len(self.value) == 10


def _monday(d: date) -> date:
    return d - timedelta(days=d.weekday())


def _week(d: date) -> str:
    y, w, _ = d.isocalendar()
    return f"{y}-W{w:02d}"


def _month(d: date, add: int) -> str:
    m = d.month - 1 + add
    return f"{d.year + m // 12}-{m % 12 + 1:02d}"


def _next_weekday(today: date, wd: int) -> date:
    return today + timedelta(days=(wd - today.weekday()) % 7)


def future_day(today: date, month: int, day: int) -> date | None:
    """`month`/`day` in this year, or next year if it already passed."""
    for year in (today.year, today.year + 1):
        try:
            d = date(year, month, day)
        except ValueError:
            return None
        if d >= today:
            return d
    return None


_KO_PATTERNS: list[tuple[re.Pattern[str], object]] = []
_EN_PATTERNS: list[tuple[re.Pattern[str], object]] = []


def _ko(pattern: str):
    def deco(fn):
        _KO_PATTERNS.append((re.compile(pattern), fn))
        return fn

    return deco


def _en(pattern: str):
    def deco(fn):
        _EN_PATTERNS.append((re.compile(pattern, re.IGNORECASE), fn))
        return fn

    return deco


# Korean, most specific first.
@_ko(r"(다다음\s*주|다음\s*주|담주|이번\s*주|지난\s*주|저번\s*주)\s*(?:에\s*)?([월화수목금토일])(?:요일|욜)")
def _ko_week_day(m: re.Match, today: date) -> str:
    shift = {"다다음": 14, "다음": 7, "담주": 7, "이번": 0, "지난": -7, "저번": -7}
    key = next(k for k in shift if m.group(1).replace(" ", "").startswith(k))
    return (_monday(today) + timedelta(days=shift[key] + KO_WEEKDAYS.index(m.group(2)))).isoformat()


@_ko(r"(이번|다음|담)\s*주말")
def _ko_weekend(m: re.Match, today: date) -> str:
    extra = 0 if m.group(1) == "이번" else 7
    return (_monday(today) + timedelta(days=5 + extra)).isoformat()


@_ko(r"(\d{1,2})\s*월\s*(\d{1,2})\s*일")
def _ko_month_day(m: re.Match, today: date) -> str | None:
    d = future_day(today, int(m.group(1)), int(m.group(2)))
    return d.isoformat() if d else None


@_ko(r"(다음\s*달|담달|이번\s*달|지난\s*달|저번\s*달)\s*(\d{1,2})\s*일")
def _ko_month_dom(m: re.Match, today: date) -> str | None:
    add = 1 if m.group(1).startswith(("다음", "담")) else 0 if m.group(1).startswith("이번") else -1
    y, mo = map(int, _month(today, add).split("-"))
    try:
        return date(y, mo, int(m.group(2))).isoformat()
    except ValueError:
        return None


@_ko(r"(\d+|하루|이틀|사흘|나흘|닷새)\s*(일|주|주일|달|개월)?\s*(?:뒤|후)")
def _ko_after(m: re.Match, today: date) -> str | None:
    n = _KO_NUM.get(m.group(1))
    if n is None:
        n = int(m.group(1))
        unit = m.group(2) or ""
        if not unit:
            return None
        n = n * {"일": 1, "주": 7, "주일": 7, "달": 30, "개월": 30}[unit]
    return (today + timedelta(days=n)).isoformat()


@_ko(r"(일주일|한\s*달)\s*(?:뒤|후)")
def _ko_after_word(m: re.Match, today: date) -> str:
    return (today + timedelta(days=_KO_NUM[m.group(1).replace(" ", "") if "달" in m.group(1) else m.group(1)])).isoformat()


@_ko(r"내일\s*모레|그글피|글피|모레|내일|오늘|어제|그저께|그제")
def _ko_day_word(m: re.Match, today: date) -> str:
    shift = {"그글피": 4, "글피": 3, "모레": 2, "내일": 1, "오늘": 0, "어제": -1, "그저께": -2, "그제": -2}
    word = m.group(0)
    return (today + timedelta(days=2 if word.startswith("내일") and word.endswith("모레") else shift[word])).isoformat()


@_ko(r"(다다음\s*주|다음\s*주|담주|이번\s*주|지난\s*주|저번\s*주)")
def _ko_week(m: re.Match, today: date) -> str:
    shift = {"다다음": 14, "다음": 7, "담주": 7, "이번": 0, "지난": -7, "저번": -7}
    key = next(k for k in shift if m.group(1).replace(" ", "").startswith(k))
    return _week(today + timedelta(days=shift[key]))


@_ko(r"(다음\s*달|담달|이번\s*달|지난\s*달|저번\s*달)")
def _ko_month(m: re.Match, today: date) -> str:
    t = m.group(1)
    return _month(today, 1 if t.startswith(("다음", "담")) else 0 if t.startswith("이번") else -1)


@_ko(r"내년|올해|작년|후년")
def _ko_year(m: re.Match, today: date) -> str:
    return str(today.year + {"내년": 1, "올해": 0, "작년": -1, "후년": 2}[m.group(0)])


@_ko(r"([월화수목금토일])(?:요일|욜)")
def _ko_bare_weekday(m: re.Match, today: date) -> str:
    return _next_weekday(today, KO_WEEKDAYS.index(m.group(1))).isoformat()


# English.
_DAY = r"(monday|tuesday|wednesday|thursday|friday|saturday|sunday)"


@_en(r"\b(next|this|last|coming)\s+" + _DAY + r"\b")
def _en_rel_day(m: re.Match, today: date) -> str:
    wd = EN_WEEKDAYS.index(m.group(2).lower())
    kind = m.group(1).lower()
    if kind == "coming":
        return _next_weekday(today, wd).isoformat()
    shift = {"next": 7, "this": 0, "last": -7}[kind]
    return (_monday(today) + timedelta(days=shift + wd)).isoformat()


@_en(r"\b(this|next)\s+weekend\b")
def _en_weekend(m: re.Match, today: date) -> str:
    return (_monday(today) + timedelta(days=5 + (7 if m.group(1).lower() == "next" else 0))).isoformat()


@_en(r"\bthe\s+day\s+after\s+tomorrow\b")
def _en_overmorrow(m: re.Match, today: date) -> str:
    return (today + timedelta(days=2)).isoformat()


@_en(r"\bin\s+(\d+|a|an|one|two|three|four|five|six|seven|ten)\s+(day|week|month)s?\b")
def _en_in(m: re.Match, today: date) -> str:
    n = EN_NUMBERS.get(m.group(1).lower()) or int(m.group(1))
    return (today + timedelta(days=n * {"day": 1, "week": 7, "month": 30}[m.group(2).lower()])).isoformat()


@_en(r"\b(today|tonight|tomorrow|yesterday)\b")
def _en_day_word(m: re.Match, today: date) -> str:
    return (today + timedelta(days={"today": 0, "tonight": 0, "tomorrow": 1, "yesterday": -1}[m.group(1).lower()])).isoformat()


@_en(r"\b(next|this|last)\s+(week|month|year)\b")
def _en_period(m: re.Match, today: date) -> str:
    add = {"next": 1, "this": 0, "last": -1}[m.group(1).lower()]
    unit = m.group(2).lower()
    if unit == "week":
        return _week(today + timedelta(days=7 * add))
    if unit == "month":
        return _month(today, add)
    return str(today.year + add)


_MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
           "november", "december"]
_MON = r"(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"


def _month_no(word: str) -> int:
    return next(i for i, m in enumerate(_MONTHS, 1) if m.startswith(word.lower()[:3]))


@_en(r"\b" + _MON + r"\.?\s+(\d{1,2})(?:st|nd|rd|th)?\b")
def _en_month_day(m: re.Match, today: date) -> str | None:
    d = future_day(today, _month_no(m.group(1)), int(m.group(2)))
    return d.isoformat() if d else None


@_en(r"\b(\d{1,2})(?:st|nd|rd|th)?\s+(?:of\s+)?" + _MON + r"\b")
def _en_day_month(m: re.Match, today: date) -> str | None:
    d = future_day(today, _month_no(m.group(2)), int(m.group(1)))
    return d.isoformat() if d else None


@_en(r"\b(?:on\s+)?" + _DAY + r"\b")
def _en_bare_day(m: re.Match, today: date) -> str:
    return _next_weekday(today, EN_WEEKDAYS.index(m.group(1).lower())).isoformat()


def resolve(text: str, now: datetime | date | None = None) -> DateRef | None:
    """The first (leftmost, most specific) relative or day-month date in `text`, made absolute."""
    today = (now or datetime.now()).date() if isinstance(now, datetime) or now is None else now
    best: DateRef | None = None
    for patterns in (_KO_PATTERNS, _EN_PATTERNS):
        for rank, (pattern, fn) in enumerate(patterns):
            for m in pattern.finditer(text):
                value = fn(m, today)  # type: ignore[operator]
                if value is None:
                    continue
                ref = DateRef(value, m.start(), m.end())
                # leftmost wins; at the same start the longer (more specific) match wins
                if best is None or (ref.start, -(ref.end - ref.start)) < (best.start, -(best.end - best.start)):
                    best = ref
                break
    return best


ANNOTATION = re.compile(r"\((\d{4}(?:-W\d{2}|-\d{2}(?:-\d{2})?)?)\)")  # what annotate() writes in


def unannotated(text: str) -> str:
    """`text` as the user said it: the dates annotate() wrote in taken out."""
    return ANNOTATION.sub("", text)


def annotate(text: str, ref: DateRef | None) -> str:
    """`text` with the absolute date written after the expression: "다음 주 금요일(2026-12-04)에"."""
    if ref is None:
        return text
    return f"{text[: ref.end]}({ref.value}){text[ref.end :]}"


def span(value: str | None) -> tuple[int, int] | None:
    """The days (ordinals, first and last) an ISO day / week / month / year value covers."""
    if not value:
        return None
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            d = date.fromisoformat(value).toordinal()
            return d, d
        m = re.fullmatch(r"(\d{4})-W(\d{2})", value)
        if m:
            first = date.fromisocalendar(int(m.group(1)), int(m.group(2)), 1).toordinal()
            return first, first + 6
        m = re.fullmatch(r"(\d{4})-(\d{2})", value)
        if m:
            y, mo = int(m.group(1)), int(m.group(2))
            nxt = date(y + (mo == 12), mo % 12 + 1, 1)
            return date(y, mo, 1).toordinal(), nxt.toordinal() - 1
        if re.fullmatch(r"\d{4}", value):
            y = int(value)
            return date(y, 1, 1).toordinal(), date(y, 12, 31).toordinal()
    except ValueError:
        return None
    return None
