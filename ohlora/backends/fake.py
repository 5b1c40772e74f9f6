"""A scripted engine with no model: the fast tests drive the app, the session and the server with it.

`backend = "fake"` (or `OHLORA_BACKEND=fake`) selects it. Replies come from a script:
a list of strings used in turn (`OHLORA_FAKE_SCRIPT` names a JSON file holding one), or by
default an echo of the last user turn. Each word is one token; `OHLORA_FAKE_DELAY` (seconds
per token) makes streaming visible. Stop strings, `max_tokens` and cancel behave as in the
real engines (the same `pump` loop).
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Sequence

from ohlora.backends.base import EngineBase, GenerationResult, pump
from ohlora.models import BaseModel

if TYPE_CHECKING:
    from ohlora.personas import Generation

FAKE_BASE = BaseModel(name="fake-model", kind="gguf", path=Path("/fake/fake-model.gguf"), arch="gemma3")
_TURN = re.compile(r"<start_of_turn>user\n(.*?)<end_of_turn>", re.S)
END = -1


def echo(prompt: str) -> str:
    """'heard: <the last user turn's last line>'."""
    turns = _TURN.findall(prompt)
    last = turns[-1].strip().splitlines()[-1] if turns else prompt.strip()[-40:]
    return f"heard: {last}"


class FakeBackend(EngineBase):
    name = "fake"

    def __init__(self, base: BaseModel = FAKE_BASE, n_ctx: int = 4096, n_threads: int = 0,
                 script: Sequence[str] | Callable[[str], str] | None = None, delay: float | None = None) -> None:
        self.base = base
        self.n_ctx = n_ctx
        self._cancel = threading.Event()
        self.last = GenerationResult()
        self.active_adapter: str | None = None
        self.prompts: list[str] = []  # every prompt it was given (tests read them)
        self.delay = float(os.environ.get("OHLORA_FAKE_DELAY", "0")) if delay is None else delay
        if script is None and os.environ.get("OHLORA_FAKE_SCRIPT"):
            script = json.loads(Path(os.environ["OHLORA_FAKE_SCRIPT"]).read_text(encoding="utf-8"))
        self.script = script
        self._turn = 0

    def tokenize(self, text: str) -> list[int]:
        return list(range(max(1, len(text) // 3)))  # ~3 characters a token, like Korean on Gemma

    def set_adapter(self, name: str | None, path: Path | None = None) -> None:
        self.active_adapter = name

    def reply_for(self, prompt: str) -> str:
        if callable(self.script):
            return self.script(prompt)
        if self.script:
            text = self.script[self._turn % len(self.script)]
            self._turn += 1
            return text
        return echo(prompt)

    def stream(self, prompt: str, gen: "Generation", stop: Sequence[str] = ()) -> Iterator[str]:
        _, max_new, state = self.start_stream(prompt, gen, stop)
        self.prompts.append(prompt)
        pieces = re.findall(r"\s*\S+\s*", self.reply_for(prompt))  # a leading space stays (a continuation)

        def tokens() -> Iterator[int]:
            for i in range(len(pieces)):
                if self.delay:
                    time.sleep(self.delay)
                yield i
            yield END

        try:
            yield from pump(state, tokens(), lambda t: t == END, lambda t: pieces[t].encode(), max_new)
        finally:
            self.last = state.finish(state.reason)
