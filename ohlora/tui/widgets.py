"""Widgets of the chat screen: the input, one message (and the note under it), the status bar, the persona sidebar."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.message import Message as TMessage
from textual.reactive import reactive
from textual.widgets import Label, ListItem, ListView, Markdown, Static, TextArea
from textual.widgets.markdown import MarkdownStream

SHOWN_USER_CHARS = 4000  # a huge paste is stored whole but shown shortened


class ChatInput(TextArea):
    """Enter sends; Shift+Enter (or Ctrl+J, for terminals that send Shift+Enter as Enter) inserts a newline."""

    @dataclass
    class Submitted(TMessage):
        input: "ChatInput"
        value: str

    BINDINGS = [Binding("shift+enter,ctrl+j", "newline", "Newline", show=False)]

    def __init__(self, **kwargs) -> None:
        super().__init__(soft_wrap=True, show_line_numbers=False, tab_behavior="focus", **kwargs)

    @dataclass
    class LeaveUp(TMessage):
        """Up in an empty input: go to the messages (swipe, edit, fork a focused one)."""

        input: "ChatInput"

    async def _on_key(self, event: events.Key) -> None:
        if event.key == "enter":
            event.stop()
            event.prevent_default()
            self.post_message(self.Submitted(self, self.text))
            return
        if event.key == "up" and not self.text:
            event.stop()
            event.prevent_default()
            self.post_message(self.LeaveUp(self))
            return
        await super()._on_key(event)

    def action_newline(self) -> None:
        self.insert("\n")


class MessageView(Vertical):
    """One chat message. Assistant text renders as Markdown and can be streamed into.

    Focused (Up from an empty input, or Tab), a saved message takes keys of its own: ←/→
    browse a reply's alternatives (→ past the last writes a new one), e edits, f forks a new
    conversation from it, ↑/↓ move between messages, Esc goes back to the input."""

    can_focus = True
    BINDINGS = [
        Binding("c", "copy", "Copy message"),
        Binding("left", "app.swipe(-1)", "Previous alternative", show=False),
        Binding("right", "app.swipe(1)", "Next alternative", show=False),
        Binding("e", "app.edit_message", "Edit", show=False),
        Binding("f", "app.fork_here", "Fork", show=False),
        Binding("up", "app.focus_message(-1)", "Previous message", show=False),
        Binding("down", "app.focus_message(1)", "Next message", show=False),
        Binding("escape,i", "app.leave_message", "Back to the input", show=False),
    ]

    def __init__(self, role: str, content: str, author: str, *, db_id: int | None = None, note: str = "",
                 swipe: tuple[int, int] | None = None) -> None:
        super().__init__(classes=f"message {role}")
        self.role = role
        self.author = author
        self.text = content
        self.db_id = db_id
        self.note = note
        self.swipe = swipe  # (position, count) of a reply with alternatives
        self._stream: MarkdownStream | None = None

    def compose(self):
        yield Label(self.author, classes="author")
        if self.role in ("assistant", "system"):
            yield Markdown(self.text, classes="body")
        else:
            yield Static(self._user_text(), classes="body", markup=False)
        swipes = Label(self._swipe_text(), classes="swipes")
        swipes.display = self.swipe is not None
        yield swipes
        note = Label(self.note, classes="note")
        note.display = bool(self.note)
        yield note

    def _swipe_text(self) -> str:
        if self.swipe is None:
            return ""
        pos, count = self.swipe
        return f"◀ {pos + 1}/{count} ▶  ←/→ alternatives"

    def set_swipe(self, position: int | None, count: int = 0, writing: bool = False) -> None:
        """Show which alternative this is (None: hide); `writing`: another one is on its way."""
        self.swipe = None if position is None else (position, count)
        label = self.query_one(".swipes", Label)
        text = self._swipe_text()
        if writing:
            text = (text + " · " if text else "") + f"writing alternative {count + 1}…"
        label.update(text)
        label.display = bool(text)

    def _user_text(self) -> Text:
        shown = self.text
        if len(shown) > SHOWN_USER_CHARS:
            shown = shown[:SHOWN_USER_CHARS] + f"\n… ({len(self.text) - SHOWN_USER_CHARS:,} more characters, saved in full)"
        return Text(shown)

    # -- streaming (on the UI thread; Textual's MarkdownStream batches the appends) ---
    async def write(self, piece: str) -> None:
        """Append a streamed piece of the reply."""
        if not piece:
            return
        self.text += piece
        if self._stream is None:
            self._stream = Markdown.get_stream(self.query_one(".body", Markdown))
        await self._stream.write(piece)

    async def end_stream(self) -> None:
        if self._stream is not None:
            stream, self._stream = self._stream, None
            await stream.stop()

    def set_content(self, text: str) -> None:
        self.text = text
        body = self.query_one(".body")
        if isinstance(body, Markdown):
            body.update(text)
        else:
            body.update(self._user_text())

    def set_note(self, note: str) -> None:
        self.note = note
        label = self.query_one(".note", Label)
        label.update(note)
        label.display = bool(note)

    def action_copy(self) -> None:
        self.app.copy_to_clipboard(self.text)
        self.app.notify("message copied to the clipboard", timeout=2)


class MessageList(VerticalScroll):
    """The scrolling column of messages."""

    can_focus = False


class StatusBar(Static):
    """persona · base model · backend · state · memory state · tokens/s of the last reply"""

    persona = reactive("")
    base = reactive("")
    backend = reactive("")
    state = reactive("loading model…")
    speed = reactive("")
    memory = reactive("")

    def render(self) -> Text:
        parts = [
            (f" {self.persona} ", "bold reverse"),
            (f"  {self.base}", ""),
            (f" · {self.backend}", "dim"),
            (f" · {self.state}", ""),
        ]
        if self.speed:
            parts.append((f" · {self.speed}", ""))
        if self.memory:
            parts.append((f" · {self.memory}", "dim"))
        parts.append(("   F1 help · ctrl+p commands", "dim"))
        return Text.assemble(*parts)


class PersonaItem(ListItem):
    def __init__(self, pid: str, name: str, greeting: str) -> None:
        super().__init__(Label(name, classes="pname"), Label(greeting, classes="pgreet"))
        self.pid = pid


class PersonaSidebar(ListView):
    """The personas you can talk to, with their greeting; Enter switches."""


_REASONS = {"cancelled": "stopped", "max_tokens": "length limit", "error": "error",
            "clock": "from the clock", "safety": "safety reply", "line": "written line", "act": "written for its kind"}


def reply_note(text: str, tokens: int | None, speed: float | None, reason: str | None) -> str:
    """'12 tokens · 9.8 tok/s · length limit' under a reply."""
    bits = [] if text else ["(empty reply)"]
    if tokens is not None:
        bits.append(f"{tokens} tokens")
    if speed:
        bits.append(f"{speed:.1f} tok/s")
    if reason in _REASONS:
        bits.append(_REASONS[reason])
    return " · ".join(bits)


def message_note(m: Any) -> str:
    """The line under a saved message: tokens, speed and stop reason of a reply; edited or not."""
    note = reply_note(m.content, m.completion_tokens, m.tokens_per_s, m.stop_reason) if m.role == "assistant" else ""
    if getattr(m, "edited_at", None):
        note = f"{note} · edited" if note else "edited"
    return note
