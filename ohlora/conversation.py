"""One conversation: its saved rows, the history the model sees, regenerate, memory after a reply.

The TUI, `ohlora ask` and the server all drive a chat through this class:

    convo = Conversation(session, store)                 # new; Conversation.open(...) reopens one
    for piece in convo.say("안녕"): ...                   # stream the reply
    convo.last                                            # the Turn: row ids, result, notes
    for piece in convo.regenerate(): ...                  # replace the last reply
    for piece in convo.alternative(reply_id): ...        # one more alternative (swipe) of any reply
    convo.choose(reply_id, position)                      # the alternative the chat goes on with
    convo.edit(message_id, text)                          # the user's own text for any message
    for piece in convo.continue_last(): ...               # extend the last reply
    convo.fork(message_id)                                # a new conversation up to that message
    convo.set_generation({"temperature": 0.9})            # this chat's generation settings

Order of work in `say`: the user's row is committed before the model starts; the reply is
saved when it ends (what was written so far when it is stopped, fails or the caller stops
reading, with stop_reason "cancelled" / "error"); then memory observes the user's text. A
store failure (disk full, locked) is reported in `Turn.save_error` and the chat goes on; a
memory failure is reported in `Turn.memory_error` and never turns a saved reply into an error.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Iterator

from ohlora.chat import ChatSession, clean_input
from ohlora.errors import UserError
from ohlora.store import ChatStore, Message, StoreError

if TYPE_CHECKING:
    from ohlora.backends.base import GenerationResult
    from ohlora.personas import Generation

# a chat's own generation settings: name -> (type, lowest, highest)
SETTINGS = {
    "temperature": (float, 0.0, 5.0),
    "top_p": (float, 0.01, 1.0),
    "min_p": (float, 0.0, 1.0),
    "repeat_penalty": (float, 0.5, 3.0),
    "max_tokens": (int, 1, 8192),
}


def parse_setting(key: str, value: Any) -> float | int:
    """A checked value for one chat setting; UserError names the setting and its range."""
    if key not in SETTINGS:
        raise UserError(f"unknown setting '{key}' (known: {', '.join(SETTINGS)})")
    kind, low, high = SETTINGS[key]
    try:
        number = kind(float(value)) if kind is int and float(value).is_integer() else kind(value)
    except (TypeError, ValueError):
        raise UserError(f"{key} must be {'a whole number' if kind is int else 'a number'}, got {value!r}") from None
    if not low <= number <= high:
        raise UserError(f"{key} must be between {low} and {high}, got {number}")
    return number


@dataclass
class Alternative:
    """One alternative written for a reply (`Conversation.alternative`)."""

    message_id: int
    position: int | None = None  # its place among the reply's alternatives (None: not kept)
    text: str = ""
    result: "GenerationResult | None" = None
    error: str = ""


@dataclass
class _Run:
    """One model run of an alternative or a continuation (`Conversation._run`)."""

    parts: list[str] = field(default_factory=list)  # the pieces as streamed
    result: "GenerationResult | None" = None  # set when the run finished
    error: str = ""  # set when it failed

    def stop_reason(self) -> str:
        """The result's own, else "error" for a failed run and "cancelled" for a stopped one."""
        return self.result.stop_reason if self.result is not None else ("error" if self.error else "cancelled")


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
        self.last_alternative: Alternative | None = None
        self.overrides: dict[str, Any] = {}  # this chat's generation settings (saved with it)
        self._lock = threading.Lock()

    @classmethod
    def open(cls, session: ChatSession, store: ChatStore, conversation_id: int,
             known_personas: set[str] | None = None) -> "Conversation":
        """Reopen a saved conversation: its persona (when known) and its history from the rows."""
        conv = store.get_conversation(conversation_id)  # UserError for an unknown id
        if conv.persona != session.persona.id and (known_personas is None or conv.persona in known_personas):
            session.set_persona(conv.persona)
        session.history = history_from(store.messages(conversation_id))
        convo = cls(session, store, conversation_id)
        convo.overrides = {k: v for k, v in conv.generation.items() if k in SETTINGS}
        return convo

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

    # -- this chat's generation settings ---------------------------------------------
    def generation(self) -> "Generation":
        """The persona's settings with this chat's own on top."""
        gen = self.session.persona.generation
        return replace(gen, **self.overrides) if self.overrides else gen

    def set_generation(self, values: dict[str, Any]) -> None:
        """Replace this chat's settings ({} = the persona's); saved with the conversation."""
        checked = {k: parse_setting(k, v) for k, v in values.items()}
        self.overrides = checked
        if self.store is not None and self.id is not None:
            self.store.set_generation(self.id, checked)

    # -- alternatives (swipes), edits, continue, fork ------------------------------------
    def _reply_row(self, message_id: int) -> tuple[list[Message], int, int]:
        """The rows, the reply's index and its user message's index; UserError if not a reply."""
        rows = self.messages()
        idx = next((i for i, m in enumerate(rows) if m.id == message_id), None)
        if idx is None:
            raise UserError(f"message {message_id} is not in this conversation")
        if rows[idx].role != "assistant":
            raise UserError("only replies have alternatives: pick one of the persona's messages")
        user = next((i for i in range(idx - 1, -1, -1) if rows[i].role == "user"), None)
        if user is None:
            raise UserError("this reply answers no message of yours, so there is nothing to write it again for")
        return rows, idx, user

    def alternative(self, message_id: int, *, shown: bool = True, keep_partial: bool = True) -> Iterator[str]:
        """Write one more alternative of a saved reply (any reply, not just the last) after the
        history it had; every alternative is kept (`store.swipes`), the reply's row keeps the
        chosen one. `shown=False`: written in the background, not yet seen by the user.
        A stopped alternative is kept when `keep_partial` and anything was written."""
        rows, idx, user = self._reply_row(message_id)
        if rows[idx].persona != self.session.persona.id:
            raise UserError(f"this reply is from '{rows[idx].persona}': switch to that persona for alternatives")
        alt = Alternative(message_id)
        self.last_alternative = alt
        run = _Run()
        try:
            yield from self._run(run, rows[user].content, history=history_from(rows[:user]))
        finally:
            alt.error, alt.result = run.error, run.result
            alt.text = run.result.text if run.result is not None else "".join(run.parts).strip()
            reason = run.stop_reason()
            keep = alt.text.strip() and (reason != "cancelled" or keep_partial)
            if keep and self.store is not None:
                try:
                    alt.position = self.store.add_swipe(message_id, alt.text, shown=shown, **_stats(reason, run.result))
                except StoreError as exc:
                    alt.error = alt.error or str(exc)

    def choose(self, message_id: int, position: int) -> Message:
        """Go on with this alternative: the reply's row takes its text; the history follows."""
        if self.store is None:
            raise UserError("conversations are not being saved, so there are no alternatives")
        msg = self.store.choose_swipe(message_id, position)
        self._reload_history()
        return msg

    def edit(self, message_id: int, text: str) -> Message:
        """The user's text for any message (theirs or a reply); the model's own is kept as `original`."""
        if self.store is None:
            raise UserError("conversations are not being saved, so messages cannot be edited")
        if message_id not in {m.id for m in self.messages()}:
            raise UserError(f"message {message_id} is not in this conversation")
        msg = self.store.edit_message(message_id, clean_input(text))
        self._reload_history()
        return msg

    def continue_last(self) -> Iterator[str]:
        """Extend the last reply: the model goes on from where it stopped; the row grows."""
        rows = self.messages()
        if not rows or rows[-1].role != "assistant":
            raise UserError("nothing to continue: the last message is not a reply")
        _, idx, user = self._reply_row(rows[-1].id)
        last = rows[idx]
        turn = Turn(rows[user].content, self.session.persona.id, user_id=rows[user].id, reply_id=last.id)
        self.last = turn
        run = _Run()
        try:
            yield from self._run(run, turn.text, history=history_from(rows[:user]), prefix=last.content)
        finally:
            turn.error, result = run.error, run.result
            added = "".join(run.parts).rstrip()  # as streamed: a leading space joins the words
            turn.reply = last.content + added
            reason = run.stop_reason()
            if result is not None:  # the whole reply: its text and every token written for it
                turn.result = replace(result, text=turn.reply,
                                      completion_tokens=(last.completion_tokens or 0) + result.completion_tokens)
            turn._saved = True
            if added and self.store is not None:
                stats: dict = {"stop_reason": reason}
                if turn.result is not None:
                    stats.update(completion_tokens=turn.result.completion_tokens,
                                 tokens_per_s=round(turn.result.tokens_per_s, 2))
                try:
                    self.store.update_message(last.id, turn.reply, **stats)
                except StoreError as exc:
                    turn.save_error = str(exc)
            hist = self.session.history
            if hist and hist[-1]["role"] == "assistant" and hist[-1]["content"] == last.content:
                hist[-1] = {**hist[-1], "content": turn.reply}

    def answer_last(self) -> Iterator[str]:
        """Reply to the last message when it is the user's and unanswered (a fork from it)."""
        rows = self.messages()
        if not rows or rows[-1].role != "user":
            raise UserError("the last message already has a reply")
        turn = Turn(rows[-1].content, self.session.persona.id, user_id=rows[-1].id)
        self.last = turn
        yield from self._reply(turn)

    def fork(self, message_id: int) -> int:
        """A new conversation with this one's messages up to `message_id`; returns its id."""
        if self.store is None or self.id is None:
            raise UserError("nothing to fork yet: send a message first")
        return self.store.fork(self.id, message_id)

    def _reload_history(self) -> None:
        self.session.history = history_from(self.messages())

    # -- internals ----------------------------------------------------------------
    def _run(self, run: "_Run", text: str, **send: Any) -> Iterator[str]:
        """Stream the model's answer to `text` (with `send`'s history / prefix) into `run`: the
        pieces as they come, the result when it ends, the error text when it fails (re-raised)."""
        try:
            for piece in self.session.send(text, generation=self.generation(), **send):
                run.parts.append(piece)
                yield piece
            run.result = self.session.last
        except Exception as exc:
            run.error = _error_text(exc)
            raise

    def _reply(self, turn: Turn) -> Iterator[str]:
        run = _Run()
        try:
            for piece in self._run(run, turn.text):
                turn.reply = "".join(run.parts).strip()  # what save_partial keeps if the app quits now
                yield piece
        except Exception:
            turn.error = run.error
            self._finish(turn, turn.reply, None, "error")
            raise
        finally:
            turn.recalled = list(self.session.last_recalled)
            if run.result is not None:
                self._finish(turn, run.result.text, run.result, run.result.stop_reason)
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
            turn.reply_id = self._save(turn, "assistant", text, **_stats(reason, result))

    def _save(self, turn: Turn, role: str, content: str, **stats) -> int | None:
        if self.store is None:
            return None
        try:
            if self.id is None:
                self.id = self.store.new_conversation(turn.persona)
                if self.overrides:
                    self.store.set_generation(self.id, self.overrides)
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


def _error_text(exc: BaseException) -> str:
    """A failure as the user sees it: a UserError's own line, otherwise its type and message."""
    return str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"


def _stats(reason: str, result: "GenerationResult | None") -> dict:
    """The stored figures of a reply or an alternative: why it stopped, and its counts when it finished."""
    stats: dict = {"stop_reason": reason}
    if result is not None:
        stats.update(prompt_tokens=result.prompt_tokens, completion_tokens=result.completion_tokens,
                     tokens_per_s=round(result.tokens_per_s, 2))
    return stats
