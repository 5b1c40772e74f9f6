"""One conversation: its saved rows, the history the model sees, regenerate, memory after a reply.

The TUI, `ohlora ask` and the server all drive a chat through this class:

    convo = Conversation(session, store)                 # new; Conversation.open(...) reopens one
    for piece in convo.say("안녕"): ...                   # stream the reply
    convo.last                                            # the Turn: row ids, result, notes
    for piece in convo.regenerate(): ...                  # replace the last reply

Order of work in `say`: the user's row is committed before the model starts; the reply is
saved when it ends (what was written so far when it is stopped, fails or the caller stops
reading, with stop_reason "cancelled" / "error"); then memory observes the user's text. A
store failure (disk full, locked) is reported in `Turn.save_error` and the chat goes on; a
memory failure is reported in `Turn.memory_error` and never turns a saved reply into an error.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator

from ohlora.chat import ChatSession, clean_input
from ohlora.errors import UserError
from ohlora.store import ChatStore, Message, StoreError

if TYPE_CHECKING:
    from ohlora.backends.base import GenerationResult


@dataclass
class Turn:
    text: str  # what the user said
    persona: str
    user_id: int | None = None
    reply_id: int | None = None
    reply: str = ""  # what was written (whole, or up to the stop / failure)
    result: "GenerationResult | None" = None
    error: str = ""  # generation failed (what was written is saved)
    save_error: str = ""  # the store refused a row
    memory_error: str = ""  # memory could not take the user's text
    recalled: list[Any] = field(default_factory=list)
    _saved: bool = False


def history_from(messages: list[Message]) -> list[dict]:
    """The model's history from stored rows: every answered user message and its replies."""
    history: list[dict] = []
    for i, m in enumerate(messages):
        answered = i + 1 < len(messages) and messages[i + 1].role == "assistant"
        if m.role == "assistant" or answered:
            history.append({"role": m.role, "content": m.content})
    return history


class Conversation:
    def __init__(self, session: ChatSession, store: ChatStore | None = None,
                 conversation_id: int | None = None) -> None:
        self.session = session  # its `memory` recalls before and observes after each reply
        self.store = store
        self.id = conversation_id
        self.last: Turn | None = None
        self._lock = threading.Lock()

    @classmethod
    def open(cls, session: ChatSession, store: ChatStore, conversation_id: int,
             known_personas: set[str] | None = None) -> "Conversation":
        """Reopen a saved conversation: its persona (when known) and its history from the rows."""
        conv = store.get_conversation(conversation_id)  # UserError for an unknown id
        if conv.persona != session.persona.id and (known_personas is None or conv.persona in known_personas):
            session.set_persona(conv.persona)
        session.history = history_from(store.messages(conversation_id))
        return cls(session, store, conversation_id)

    def messages(self) -> list[Message]:
        if self.store is None or self.id is None:
            return []
        return self.store.messages(self.id)

    # -- one exchange -------------------------------------------------------------
    def say(self, text: str) -> Iterator[str]:
        """Save the user's text, stream the reply, save it, then let memory observe the text."""
        yield from self.reply(self.begin(text))

    def begin(self, text: str) -> Turn:
        """Commit the user's text (before any model work); the TUI does this on its UI thread."""
        text = clean_input(text)
        turn = Turn(text, self.session.persona.id)
        self.last = turn
        turn.user_id = self._save(turn, "user", text)
        return turn

    def reply(self, turn: Turn) -> Iterator[str]:
        """Stream the reply to a begun turn, save it, then let memory observe the user's text."""
        turn.persona = self.session.persona.id  # a switch while the model was loading counts
        yield from self._reply(turn)
        self._observe(turn)

    def regenerate(self) -> Iterator[str]:
        """Replace the last reply: its row is deleted and the same user text answered again."""
        user_text = self._last_user_text()
        if user_text is None:
            raise UserError("nothing to regenerate yet")
        rows = self.messages()
        if rows and rows[-1].role == "assistant" and self.store is not None:
            try:
                self.store.delete_message(rows[-1].id)
            except StoreError as exc:
                raise UserError(str(exc)) from None
        hist = self.session.history
        if len(hist) >= 2 and hist[-1]["role"] == "assistant" and hist[-2]["role"] == "user":
            self.session.history = hist[:-2]
        turn = Turn(user_text, self.session.persona.id)
        turn.user_id = next((m.id for m in reversed(rows) if m.role == "user"), None)
        self.last = turn
        yield from self._reply(turn)

    def stop(self) -> None:
        """Ask the running reply to stop after the current token (from any thread)."""
        self.session.cancel()

    def save_partial(self) -> None:
        """Keep what was written of a reply that will not finish (the app is quitting)."""
        turn = self.last
        if turn is not None:
            self._finish(turn, turn.reply, None, "cancelled")

    # -- internals ----------------------------------------------------------------
    def _reply(self, turn: Turn) -> Iterator[str]:
        parts: list[str] = []
        finished = False
        try:
            for piece in self.session.send(turn.text):
                parts.append(piece)
                turn.reply = "".join(parts).strip()
                yield piece
            finished = True
        except Exception as exc:
            turn.error = str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"
            self._finish(turn, turn.reply, None, "error")
            raise
        finally:
            turn.recalled = list(self.session.last_recalled)
            if finished:
                result = self.session.last
                self._finish(turn, result.text, result, result.stop_reason)
            else:  # the caller stopped reading (GeneratorExit): keep what was written
                self._finish(turn, turn.reply, None, "cancelled")

    def _finish(self, turn: Turn, text: str, result: "GenerationResult | None", reason: str) -> None:
        """Save the reply once (a finished one with its stats; a partial one if anything was written)."""
        with self._lock:
            if turn._saved:
                return
            turn._saved = True
            turn.result = result
            turn.reply = text
            if not text.strip() and result is None:
                return  # nothing was written: no empty row
            stats: dict = {"stop_reason": reason}
            if result is not None:
                stats.update(prompt_tokens=result.prompt_tokens, completion_tokens=result.completion_tokens,
                             tokens_per_s=round(result.tokens_per_s, 2))
            turn.reply_id = self._save(turn, "assistant", text, **stats)

    def _save(self, turn: Turn, role: str, content: str, **stats) -> int | None:
        if self.store is None:
            return None
        try:
            if self.id is None:
                self.id = self.store.new_conversation(turn.persona)
            return self.store.add_message(self.id, role, content, turn.persona, **stats)
        except StoreError as exc:
            turn.save_error = turn.save_error or str(exc)
            return None

    def _observe(self, turn: Turn) -> None:
        memory = self.session.memory
        if memory is None or not self.session.settings.memory:
            return
        try:
            memory.observe(turn.text, persona=turn.persona, conversation_id=self.id)
        except Exception as exc:  # noqa: BLE001 - the reply is saved; memory only reports
            turn.memory_error = f"memory could not take this message: {exc}"

    def _last_user_text(self) -> str | None:
        rows = self.messages()
        for m in reversed(rows):
            if m.role == "user":
                return m.content
        hist = self.session.history
        for m in reversed(hist):
            if m["role"] == "user":
                return m["content"]
        return self.last.text if self.last else None
