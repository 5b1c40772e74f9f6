"""The one small interface both engines implement: load, stream tokens, stop, set adapter."""

from __future__ import annotations

import codecs
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Protocol, Sequence

if TYPE_CHECKING:
    from ohlora.models import BaseModel
    from ohlora.personas import Generation

STOP_REASONS = ("end_of_turn", "stop_string", "max_tokens", "cancelled")
# replies the app writes itself, without the model (ohlora.guards): their stop reason says which
APP_REPLIES = ("clock", "safety", "line", "act")


@dataclass
class GenerationResult:
    text: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    decode_seconds: float = 0.0  # from the first generated token to the last
    total_seconds: float = 0.0  # prompt processing included
    stop_reason: str = "max_tokens"

    @property
    def tokens_per_s(self) -> float:
        """Decode speed: tokens after the first, over the time since the first arrived."""
        if self.completion_tokens < 2 or self.decode_seconds <= 0:
            return 0.0
        return (self.completion_tokens - 1) / self.decode_seconds

    def as_dict(self) -> dict:
        return {
            "text": self.text,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "tokens_per_s": round(self.tokens_per_s, 2),
            "stop_reason": self.stop_reason,
        }


class Backend(Protocol):
    name: str
    base: "BaseModel"
    n_ctx: int
    last: GenerationResult

    def count_tokens(self, text: str) -> int: ...

    def stream(self, prompt: str, gen: "Generation", stop: Sequence[str] = ()) -> Iterator[str]:
        """Yield text pieces; `self.last` holds the result once the iterator ends."""
        ...

    def cancel(self) -> None:
        """Ask a running `stream` (in another thread) to stop after the current token."""
        ...

    def set_adapter(self, name: str | None, path: Path | None = None) -> None:
        """Activate a persona's adapter (None: the bare base) for the next generation."""
        ...


class StopMatcher:
    """Streams text while holding back any tail that could still become a stop string."""

    def __init__(self, stops: Sequence[str]):
        self.stops = [s for s in stops if s]
        self.buffer = ""
        self.hit = False

    def feed(self, piece: str) -> str:
        """Add generated text; return what is safe to show. Sets `hit` on a full match."""
        self.buffer += piece
        cut = min((i for i in (self.buffer.find(s) for s in self.stops) if i >= 0), default=-1)
        if cut >= 0:
            self.hit = True
            out, self.buffer = self.buffer[:cut], ""
            return out
        hold = 0
        for s in self.stops:
            for n in range(min(len(s) - 1, len(self.buffer)), 0, -1):
                if self.buffer.endswith(s[:n]):
                    hold = max(hold, n)
                    break
        out = self.buffer[: len(self.buffer) - hold] if hold else self.buffer
        self.buffer = self.buffer[len(out):]
        return out

    def flush(self) -> str:
        out, self.buffer = self.buffer, ""
        return out


@dataclass
class StreamState:
    """Book-keeping shared by the engines' streaming loops."""

    prompt_tokens: int
    stops: StopMatcher
    cancel: threading.Event
    started: float = field(default_factory=time.perf_counter)
    first_token_at: float | None = None
    parts: list[str] = field(default_factory=list)
    n: int = 0
    reason: str = "max_tokens"

    def token(self, piece: str) -> str:
        if self.first_token_at is None:
            self.first_token_at = time.perf_counter()
        self.n += 1
        out = self.stops.feed(piece)
        if out:
            self.parts.append(out)
        return out

    def drain(self, reason: str) -> str:
        """Text held back for a possible stop string that never completed."""
        tail = "" if reason == "stop_string" else self.stops.flush()
        if tail:
            self.parts.append(tail)
        return tail

    def finish(self, reason: str) -> GenerationResult:
        end = time.perf_counter()
        decode = end - self.first_token_at if self.first_token_at else 0.0
        text = "".join(self.parts).strip()
        return GenerationResult(text, self.prompt_tokens, self.n, decode, end - self.started, reason)


def pump(
    state: StreamState,
    tokens: Iterable[int],
    is_end: Callable[[int], bool],
    piece_of: Callable[[int], bytes],
    max_new: int,
) -> Iterator[str]:
    """The streaming loop both engines share: end-of-turn, stop strings, cancel, token limit.

    Sets `state.reason`; text is decoded incrementally so split UTF-8 (Korean) stays whole.
    """
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    state.reason = "max_tokens"
    for tok in tokens:
        if is_end(tok):
            state.reason = "end_of_turn"
            break
        out = state.token(decoder.decode(piece_of(tok)))
        if out:
            yield out
        if state.stops.hit:
            state.reason = "stop_string"
            break
        if state.cancel.is_set():
            state.reason = "cancelled"
            break
        if state.n >= max_new:
            break
    tail = state.drain(state.reason)
    if tail:
        yield tail


class EngineBase:
    """What both engines share: token counting, cancel, and the start of a stream."""

    n_ctx: int
    _cancel: threading.Event

    def tokenize(self, text: str) -> list[int]:
        raise NotImplementedError

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))

    def cancel(self) -> None:
        self._cancel.set()

    def warm(self, text: str) -> None:
        """Read `text`, the start of the next prompt, ahead of time (engines that reuse a KV
        prefix); the others have nothing to keep, so this does nothing."""

    def start_stream(self, prompt: str, gen: "Generation", stop: Sequence[str]) -> tuple[list[int], int, StreamState]:
        """Tokenize the prompt, check it fits, and set up the stream's book-keeping."""
        from ohlora.errors import UserError

        self._cancel.clear()
        ids = self.tokenize(prompt)
        if len(ids) >= self.n_ctx:
            raise UserError(f"prompt has {len(ids)} tokens; the context window is {self.n_ctx}")
        max_new = min(gen.max_tokens, self.n_ctx - len(ids))
        return ids, max_new, StreamState(len(ids), StopMatcher(stop), self._cancel)
