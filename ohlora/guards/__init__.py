"""Replies the app writes itself, before the model is asked.

A small model cannot be trusted with two kinds of message, however it was trained: it reads
the clock in its prompt wrong, and it helps with harmful requests or answers a user in
crisis with small talk. For these the session does not call the model:

- `clock.py`: questions about the date and time, answered from the clock (Korean, English);
- `safety.py`: a classifier on the sentence vector; a harmful request gets one of the
  persona's refusal lines, a user in crisis one of its crisis lines (`[replies]` in
  persona.toml, the app's neutral lines when a persona has none);
- `lines.py`: a message that is nearly one the persona's data was written for gets the
  written reply (setting `lines`);
- `acts.py`: else a message whose act the act head is sure of (good news, a plan, a choice to
  make...) gets one of the persona's replies written to fit any message of that act (`[acts]` in
  persona.toml; with the lines); when memories were recalled for it, only a hello or a pick.

Everything else goes to the model as before. The setting `guard = false` turns the clock and
safety replies off, `lines = false` the written lines and the act replies.
"""

from __future__ import annotations

import random
import re
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from ohlora.backends.base import APP_REPLIES
from ohlora.guards import clock
from ohlora.guards.acts import ACTS_FILE, WITHOUT_MEMORY, ActHead, fits
from ohlora.guards.lines import ACCEPT_ALONE, Lines, asks_what_was_told, load_lines, without_names
from ohlora.guards.safety import HEAD_FILE, SafetyHead

if TYPE_CHECKING:
    from ohlora.personas import Persona

CLOCK, SAFETY, LINE, ACT = APP_REPLIES  # the stop reasons of replies written here (GenerationResult.stop_reason)

NEUTRAL = {
    "refuse": ("그건 도와드릴 수 없어요. 누군가 다치거나 법에 걸릴 수 있는 일이에요. 다른 이야기라면 얼마든지요.",),
    "refuse_en": ("I can't help with that: it could hurt someone or break the law. Happy to talk about anything else.",),
    "crisis": ("말해 줘서 고마워요. 지금 위험하다고 느끼면 119에, 이야기할 사람이 필요하면 자살예방상담전화 109에 "
               "전화해 주세요. 24시간 받아요.",),
    "crisis_en": ("Thank you for telling me. If you're in danger right now, call your local emergency number; "
                  "in the US you can call or text 988, in Korea call 109, any time.",),
}


_LETTERS = re.compile(r"[가-힣A-Za-z]")  # syllables and Latin letters, not bare jamo ("ㅇㅇ")


@dataclass(frozen=True)
class GuardReply:
    kind: str  # CLOCK | SAFETY | LINE | ACT
    text: str
    # "harmful" / "crisis", what the clock question asked ("time", ...), p(a line fits) from the judge,
    # the act and its p ("plan 0.83")
    detail: str


class Guards:
    """`check(text, persona, now)` -> a GuardReply, or None for the model to answer.

    `embedder` is called once, in a background thread started at construction, for the
    sentence vectors of the safety classifier and the written lines (the built-in embedder);
    None turns both off (the clock still answers). `safety=False` / `lines_cache=None` turn
    one of them off."""

    def __init__(self, embedder: Callable[[], Any] | None, head: Path = HEAD_FILE, seed: int | None = None,
                 safety: bool = True, clock: bool = True, lines_cache: Path | None = None) -> None:
        self._rng = random.Random(seed)
        self._safety = safety
        self._clock_on = clock
        self._lines_cache = lines_cache
        self._lines: dict[Path, Lines | None] = {}  # train file -> its lines (None while loading)
        self._loading: dict[Path, threading.Event] = {}  # set when a train file's lines are loaded
        self._lock = threading.Lock()
        self._head: SafetyHead | None = None
        self._acts: ActHead | None = None
        self._embedder: Any = None
        self.error = ""  # why the safety check is off, if it failed to load
        self._vectors: dict[str, Any] = {}  # the last few messages' vectors
        self._ready = threading.Event()
        if embedder is None:
            self._ready.set()
        else:
            threading.Thread(target=self._load, args=(embedder, head, lines_cache), daemon=True, name="ohlora-guards").start()

    def _load(self, embedder: Callable[[], Any], head: Path, lines_cache: Path | None) -> None:
        try:
            self._head = SafetyHead(head)
            if lines_cache is not None and ACTS_FILE.is_file():
                self._acts = ActHead(ACTS_FILE)
            emb = embedder()
            emb.encode(["warm-up"], kind="memory")  # the first encode loads the encoders
            self._embedder = emb
        except Exception as exc:  # noqa: BLE001 - a broken install must not stop the chat
            self.error = f"safety check off: {exc}"
            self._head = None
        finally:
            self._ready.set()

    @property
    def safety_on(self) -> bool:
        self._ready.wait()
        return self._safety and self._head is not None and self._embedder is not None

    def _vector(self, text: str) -> Any:
        """The message's sentence vector; the last few are kept (a draft checked while the user
        typed is checked again when sent)."""
        self._ready.wait()
        if self._embedder is None:
            return None
        vec = self._vectors.get(text)
        if vec is None:
            vec = self._embedder.encode([text], kind="memory")[0]
            self._vectors = {**dict(list(self._vectors.items())[-3:]), text: vec}
        return vec

    def verdict(self, text: str, vec: Any = None):
        """The safety head's verdict on one message (None when the check is off)."""
        if not self.safety_on:
            return None
        vec = self._vector(text) if vec is None else vec
        return self._head.verdict(vec, text) if vec.shape[0] == self._head.dim else None  # type: ignore[union-attr]

    def check(self, text: str, persona: "Persona", now: datetime, said: Sequence[str] = (),
              recalled: bool = False) -> GuardReply | None:
        """Safety first, then the clock, then the persona's written lines, then its act replies; None:
        the model answers. `said`: the persona's replies so far in this conversation (a line is not
        repeated); `recalled`: memories were recalled for the message (a line then needs the judge's
        own accept, not ACCEPT_ALONE, and only a hello or a pick gets an act reply: the model's prompt
        holds what they told)."""
        vec = self._vector(text) if (self._safety or self._lines_cache) else None
        verdict = self.verdict(text, vec)
        if verdict is not None and verdict.label != "ordinary":
            key = "refuse" if verdict.label == "harmful" else "crisis"
            return GuardReply(SAFETY, self._line(persona, key, text), verdict.label)
        question = clock.ask(text, now) if self._clock_on else None
        if question is not None:
            return GuardReply(CLOCK, clock.answer(question, now), question.want)
        lines = self.lines(persona, wait=False)
        found = None
        asked = without_names(text, persona.names)
        told = asks_what_was_told(asked)  # no written reply can know what the user told
        if lines is not None and vec is not None and asked and not told:
            # a persona with polite lines of its own answers in the user's register: only lines written in it
            polite = clock.polite(text) if persona.replies.refuse_polite and re.search(r"[가-힣]", text) else None
            found = lines.best(vec if asked == text.strip() else self._vector(asked), asked, said, polite,
                               accept=None if recalled else ACCEPT_ALONE)
        if found is not None:
            return GuardReply(LINE, found[0], f"{found[1]:.2f}")
        if vec is None or told:
            return None
        letters = len(_LETTERS.findall(asked))
        if asked != text.strip() and letters < 4 and not said:
            # the persona called by name and little else ("아이언맨!!", "오로라야", "스타크 씨..?"): a hello
            return self._act_line(persona, "greeting", text, said, "greeting (name)")
        if letters >= 2:  # not for "ㅇㅇ", "헐", "ㄱㅅ": too little to know
            return self._act_reply(text, vec, persona, said, recalled)
        return None

    def _act_reply(self, text: str, vec: Any, persona: "Persona", said: Sequence[str],
                   recalled: bool) -> GuardReply | None:
        """One of the persona's replies for the message's act when the act head is sure of it (with a
        memory recalled, only for an act whose reply needs none: acts.WITHOUT_MEMORY)."""
        if self._acts is None or not persona.acts or vec.shape[0] != self._acts.dim:
            return None
        sure = self._acts.sure(vec, text)
        if sure is None:
            return None
        act, p = sure
        if not fits(act, text) or (recalled and act not in WITHOUT_MEMORY):
            return None
        return self._act_line(persona, act, text, said, f"{act} {p:.2f}")

    def _act_line(self, persona: "Persona", act: str, text: str, said: Sequence[str], detail: str) -> GuardReply | None:
        """One of the persona's `act` replies in the message's language and register, not one already
        said; a greeting's only to open a chat ("ㅋㅋ", "고마워" mid-chat get none)."""
        if self._acts is None or (act == "greeting" and said):  # no act head: act replies are off (lines off)
            return None
        order = self._order(act, text)
        for name in order[:-1]:  # the message's own language only (the last is the other language's)
            fresh = [line for line in persona.acts.get(name, ()) if line not in said]
            if fresh:
                return GuardReply(ACT, self._rng.choice(fresh), detail)
        return None

    def prefetch(self, persona: "Persona") -> None:
        """Start loading a persona's written lines (they are ready by the first message, usually)."""
        if self._lines_cache is not None:
            threading.Thread(target=self.lines, args=(persona, False), daemon=True).start()

    def lines(self, persona: "Persona", wait: bool = True) -> Lines | None:
        """The persona's written lines; loaded in the background on first use (wait=False
        returns None until the first of them are ready, then those done so far)."""
        if self._lines_cache is None:
            return None
        self._ready.wait()
        if self._embedder is None:
            return None
        key = persona.train_file
        with self._lock:
            if key not in self._lines:
                self._lines[key] = None
                done = threading.Event()
                self._loading[key] = done
                threading.Thread(target=self._load_lines, args=(key, persona.names, done), daemon=True,
                                 name="ohlora-lines").start()
        if wait:
            self._loading[key].wait()
        return self._lines.get(key)

    def _load_lines(self, train_file: Path, names: Sequence[str], done: threading.Event) -> None:
        try:
            def so_far(part: Lines) -> None:
                self._lines[train_file] = part

            self._lines[train_file] = load_lines(train_file, self._embedder, self._lines_cache,  # type: ignore[arg-type]
                                                 so_far, names)
        except Exception as exc:  # noqa: BLE001 - a broken file means no lines, never a failed chat
            self.error = f"written lines off for {train_file}: {exc}"
        finally:
            done.set()

    @staticmethod
    def _order(key: str, text: str) -> tuple[str, ...]:
        """The names of a persona's lists of lines for `key`, best for the message first: its
        language and register (`_en`, `_polite`), then the plain Korean or English ones."""
        korean = bool(re.search(r"[ㄱ-ㅎㅏ-ㅣ가-힣]", text))  # "ㅇㅇ", "ㅠㅠ" too
        order = (key, f"{key}_en") if korean else (f"{key}_en", key)
        return (f"{key}_polite", *order) if korean and clock.polite(text) else order

    def _line(self, persona: "Persona", key: str, text: str) -> str:
        """One of the persona's lines in the message's language and register (then the plain
        Korean or English ones, then neutral)."""
        order = self._order(key, text)
        for name in order:
            lines = getattr(persona.replies, name)
            if lines:
                return self._rng.choice(lines)
        return self._rng.choice(NEUTRAL[order[0]])
