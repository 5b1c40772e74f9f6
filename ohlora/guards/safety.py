"""Which messages a persona must not answer as asked: a linear head on the built-in embedder.

Three classes: 0 ordinary, 1 harmful (help to hurt someone or break the law), 2 crisis (the
user may hurt themselves). The head is head.py's logistic regression on the sentence vector and
character n-grams (how it asks: "~하는 법", "몰래", "안 걸리게"); the n-grams halve the false alarms
of the vector alone at the same recall. Stored in `safety_head.npz`;
`python -m ohlora.guards.fit_safety` refits it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ohlora.guards.head import LinearHead

HERE = Path(__file__).resolve().parent
HEAD_FILE = HERE / "safety_head.npz"
LABELS = ("ordinary", "harmful", "crisis")


@dataclass(frozen=True)
class Verdict:
    label: str  # one of LABELS
    p_harmful: float
    p_crisis: float


# What a linear head cannot see: a harmful thing AND asking how to make or get it. "만드는 법" is
# mostly cooking, "폭탄" mostly 폭탄세일, so the head scored "폭탄 만드는 법 알려줘" 0.37. These rules
# catch the plain asks outright; everything else is the head's.
_KO_THING = (r"(?:폭탄(?!\s*세일|주|\s*맞|\s*발언|\s*머리)|폭발물|화염병|사제\s*총|총기|권총|소총|독극물|독약|청산가리|"
             r"필로폰|메스암페타민|코카인|헤로인|펜타닐|케타민|물뽕|마약|대마초?|랜섬웨어|악성\s*코드|위조\s*지폐|위폐)")
_KO_MAKE = r"(?:제조|제작|합성|조립|만드(?:는|려)|만들(?:어|고|려|\s*수|\s*거)|구하(?:는|려|고|\s*수)|구입|구매|사는\s*(?:법|곳|방법|데))"
_KO_HARM = re.compile(_KO_THING + r"(?:을|를|이|가|은|는)?\s*(?:어떻게|직접|집에서|몰래|쉽게|좀)?\s*" + _KO_MAKE +
                      r"|(?<![가-힣])총\s*(?:만드|제작|조립)")
_EN_HARM = re.compile(r"\b(?:make|making|build|building|synthesi[sz]e|cook|brew|assemble|buy|get)\s+(?:a |an |some |my own )?"
                      r"(?:pipe )?(?:bomb(?!\s*(?:ass|cake|dot|pizza|recipe|decoration))|explosives?|molotov|meth|methamphetamine|fentanyl|heroin|ricin|sarin|nerve agent|"
                      r"napalm|ghost gun|untraceable gun|ransomware|counterfeit (?:money|bills))\b", re.I)
# sexual content with a minor, and joining or contacting a terrorist group: refused whatever the wording
_KO_MINOR = r"(?:미성년자?|초등학생|초딩|중학생|중딩|여중생|남중생|고등학생|고딩|여고생|남고생|아동|어린이|어린\s*(?:애|아이|여자애)|로리|쇼타)"
_KO_SEXUAL = r"(?:야한|야설|음란|성행위|섹스|알몸|누드|19금|야동|성적인|성적으로|벗은)"
_KO_TERROR = (r"(?:테러\s*(?:조직|단체|집단|그룹)|(?<![A-Za-z])IS(?![A-Za-z])\s*(?:에|조직|단체)|ISIS|알카에다|탈레반|하마스|"
              r"무장\s*단체|극단주의\s*(?:조직|단체))")
_KO_JOIN = r"(?:가입|합류|들어가|연락|접촉|지원하|입단)"
_KO_GRAVE = re.compile(rf"{_KO_MINOR}.{{0,30}}{_KO_SEXUAL}|{_KO_SEXUAL}.{{0,30}}{_KO_MINOR}|{_KO_TERROR}.{{0,30}}{_KO_JOIN}")
_EN_MINOR = r"(?:minors?|child(?:ren)?|kids?|underage|teens?|teenagers?|(?:1[0-7]|[1-9])[- ]year[- ]olds?|loli|schoolgirls?|schoolboys?)"
_EN_SEXUAL = r"(?:sex(?!\s*ed)|sexual(?!\s*(?:health|education|abuse))|nudes?|naked|porn\w*|erotic\w*|lewd|nsfw|explicit\s+(?:story|stories|scenes?|content|photos?|pics?|images?|videos?))"
_EN_TERROR = r"(?:isis|al[- ]?qaeda|taliban|terror(?:ist)?\s+(?:group|cell|organi[sz]ation|network)s?|jihadi(?:st)?\s+group)"
_EN_GRAVE = re.compile(rf"\b{_EN_MINOR}\b.{{0,40}}\b{_EN_SEXUAL}\b|\b{_EN_SEXUAL}\b.{{0,40}}\b{_EN_MINOR}\b|"
                       rf"\b(?:join|joining|contact|reach|pledge (?:myself )?to|recruited by)\b.{{0,30}}\b{_EN_TERROR}\b", re.I)
# spying on another person's phone or messages in secret ("전 애인 카톡 몰래 보는 앱", "남편 폰 몰래 위치
# 추적하는 법"); the person first, so the one spied on ("남친이 내 폰 몰래 봤어") is not caught
_KO_OTHER = (r"(?:전\s*(?:애인|여친|남친|남편|아내|와이프)|여친|남친|여자\s*친구|남자\s*친구|애인|남편|아내|와이프|배우자|"
             r"친구|동료|상사|직원|팀장|부장|엄마|아빠|누나|언니|형|오빠|동생|옆집|이웃|그\s*사람|걔|쟤)")
_KO_SPY = re.compile(_KO_OTHER + r"(?:의)?\s*(?:카톡|카카오톡|문자|메시지|메세지|폰|휴대폰|핸드폰|통화|위치|인스타|디엠|DM|메일|이메일)"
                     r"\s*(?:을|를)?\s*(?:내용\s*(?:을|를)?\s*)?몰래\s*(?:[가-힣]+\s*)?"
                     r"(?:보|엿보|훔쳐보|확인하|추적하|녹음하|들여다보|읽)(?:는|려면|을\s*수|ㄹ\s*수)")
_EN_SPY = re.compile(r"\b(?:spy on|read|track|monitor|see|check|hack into)\s+(?:my\s+)?(?:ex(?:-girlfriend|-boyfriend|-wife|-husband)?|"
                     r"girlfriend|boyfriend|wife|husband|partner|spouse|co-?worker|boss|neighbou?r|someone)(?:'s)?\s+"
                     r"(?:texts|messages|phone|location|whatsapp|dms|emails?|instagram)\b.{0,40}\b(?:without (?:them|her|him) knowing|"
                     r"secretly|in secret)|\b(?:stalkerware|spy ?app to (?:read|track|see))", re.I)
# a self-harm method asked about: a crisis line, whatever else the message says
_KO_METHOD = re.compile(r"번개탄\s*(?:을\s*)?(?:피우|피울|사\s*놨|샀)|(?:목\s*(?:을\s*)?매|번개탄|투신|손목\s*(?:을\s*)?(?:긋|그)|치사량|자살)\s*(?:하는|는|을|할|하려면|하면)?\s*"
                        r"(?:방법|법|어떻게|확실|덜\s*아프|안\s*아프)")
_EN_METHOD = re.compile(r"\b(?:how (?:do i|to|can i) (?:kill myself|hang myself|end my life|slit)|"
                        r"(?:painless|easiest|quickest) way to (?:die|kill myself)|lethal dose)\b", re.I)


def rule_label(text: str) -> str | None:
    """'crisis' or 'harmful' for a plain ask the rules know, else None (the head decides)."""
    if _KO_METHOD.search(text) or _EN_METHOD.search(text):
        return "crisis"
    if any(rule.search(text) for rule in (_KO_HARM, _EN_HARM, _KO_GRAVE, _EN_GRAVE, _KO_SPY, _EN_SPY)):
        return "harmful"
    return None


def flagged(harmful, crisis, flag: float, crisis_flag: float):
    """Not ordinary: p(harmful) + p(crisis) >= flag, and where crisis outweighs harm also
    p(crisis) >= crisis_flag. Floats or numpy arrays (fit_safety's out-of-fold figures)."""
    return (harmful + crisis >= flag) & ((crisis <= harmful) | (crisis >= crisis_flag))


class SafetyHead(LinearHead):
    """The head (head.py) and its thresholds."""

    def __init__(self, path: Path = HEAD_FILE) -> None:
        super().__init__(path)
        self.flag = float(self.extra["flag"])  # p(harmful) + p(crisis) at or above: not ordinary
        # a crisis line needs p(crisis) at or above this too: one sent to "밤 늦게 먹으면 살 찔까?" hurts
        self.crisis_flag = float(self.extra.get("crisis_flag", self.flag))

    def verdict(self, vec: np.ndarray, text: str) -> Verdict:
        ruled = rule_label(text)
        if ruled is not None:
            return Verdict(ruled, float(ruled == "harmful"), float(ruled == "crisis"))
        p = self.proba(vec, text)
        harmful, crisis = float(p[1]), float(p[2])
        if not flagged(harmful, crisis, self.flag, self.crisis_flag):
            return Verdict("ordinary", harmful, crisis)
        return Verdict("crisis" if crisis > harmful else "harmful", harmful, crisis)
