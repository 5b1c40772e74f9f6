"""What a message does (its act), for a reply that fits any message of that act.

When no written line fits a message (lines.py), the small model answers, and read blind its
replies almost never make sense. Most first messages do one of a few things: tell good news, tell
something bad that happened, say how the user feels, tell a funny mishap, tell a plan, ask for
advice, ask the persona to choose, ask about the persona, ask a knowledge question, greet. For
each act the persona has replies written to fit any message of it (`[acts]` in persona.toml:
"와 진짜 잘됐다!! 축하해 🎉 지금 기분 어때?" for good news), and the act head (head.py's logistic
regression, fitted by `python -m ohlora.guards.fit_acts` on labelled messages) says which act a
message is; a reply is said when the head is sure (p >= its `accept`) and the message is one a
reply of that act can fit (`fits`). `other` never gets one.

Read blind on the dev prompt sets (2026-12-07, the 87 messages that got an act reply, each beside the
model's reply to it, shuffled): the act replies made sense 30 times in 43 (오로라) and 25 in 44 (Tony),
the model's 0 and 0. What missed is what `fits` now leaves to the model: "what matters most to you?"
to a how-to ("git에서 마지막 커밋 취소하려면?", "잠 잘 오는 방법"), a greeting's reply that does not
greet back, and Tony's answers about himself (1 of 11; he has none).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ohlora.guards.head import LinearHead
from ohlora.personas import ACTS, NO_REPLY  # the acts a persona file can have replies for

ACTS_FILE = Path(__file__).resolve().with_name("acts_head.npz")

# asks for a how-to, tips or a recommendation: no act reply gives one
_HOW_TO = re.compile(r"(?:는|을|할|하는|쓰는|만드는)\s?법|방법|팁|노하우|추천|체크리스트|알려\s?(?:줘|주세요|줄래|줄 수)|"
                     r"\btips?\b|\brecommend|\bhow (?:to|do i|can i|should i)\b", re.I)
# the advice replies help weigh a decision ("회사 그만둘까 고민 중이야"); a question about the user's
# situation that wants an answer ("잠 5시간밖에 못 자는데 괜찮은 거야?") is left to the model
_DILEMMA = re.compile(r"고민|할까|말까|볼까|갈까|살까|갈지|할지|어떡하지|어떡해|어떻게\s?해야|"
                      r"\bshould i\b|\bor not\b|\bvs\.?\b|\bwhether\b", re.I)
# the greeting replies greet back: a hello, not "잘 자" or "고마워"
_HELLO = re.compile(r"안녕|하이|ㅎㅇ|하잉|반가|방가|오랜만|잘\s?지냈|\bhi\b|\bhello\b|\bhey\b|\byo\b|"
                    r"how are you|how's it going|what'?s up|\bsup\b", re.I)


# acts whose reply needs nothing the user told before: said even when memories were recalled (a hello
# that opens a new chat, a pick between options the message names); the other acts' replies cannot use a
# recalled memory the message may be about ("또 망했어 ㅠ" after "마카롱 도전 중"), so the model answers
WITHOUT_MEMORY = ("greeting", "choice")


def fits(act: str, text: str) -> bool:
    """Whether a reply written for `act` can fit this message at all (the head says which act it is)."""
    if act == NO_REPLY or _HOW_TO.search(text):
        return False
    if act == "advice":
        return bool(_DILEMMA.search(text))
    if act == "greeting":
        return bool(_HELLO.search(text))
    return True


# replies to good news and to a bad time are opposites ("축하해!" / "속상했겠다"): neither is said while the
# head gives the other side p >= MIXED. Out of fold (fit_acts --kfold 5, 3,972 messages) at p 0.5-0.6 this
# cut the replies of the wrong side from 33 to 6 of 367 messages, keeping 284 of them
UP, DOWN = ("good_news", "funny_mishap"), ("bad_event", "low_mood")
MIXED = 0.2


def other_side(p: np.ndarray) -> np.ndarray:
    """For act probabilities (one message's, or rows of them): the p of the other side of the likeliest
    act (a bad time's for good news or a mishap, a good time's for a bad event or a low mood); 0 for an
    act with no side."""
    best = p.argmax(-1)
    up, down = [ACTS.index(a) for a in UP], [ACTS.index(a) for a in DOWN]
    return np.where(np.isin(best, up), p[..., down].sum(-1), np.where(np.isin(best, down), p[..., up].sum(-1), 0.0))


class ActHead(LinearHead):
    """The head (head.py) over ACTS and the p from which its act is trusted."""

    def __init__(self, path: Path = ACTS_FILE) -> None:
        super().__init__(path)
        names = tuple(str(n) for n in self.extra["acts"])
        if names != ACTS:
            raise ValueError(f"{path}: fitted on other acts ({', '.join(names)}); refit with fit_acts")
        self.accept = float(self.extra["accept"])

    def sure(self, vec: np.ndarray, text: str) -> tuple[str, float] | None:
        """(the likeliest act, its p) when its reply may be said: p >= accept, and for a good or a bad
        time, the other side's p below MIXED."""
        p = self.proba(vec, text)
        best = int(np.argmax(p))
        if p[best] < self.accept or other_side(p) >= MIXED:
            return None
        return ACTS[best], float(p[best])
