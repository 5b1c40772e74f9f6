"""The ohlora chat app (Textual): the screen, the state its parts share, one action per command.

First paint comes before anything heavy: engine and memory load in threads afterwards
(`status`). The app holds the shared state (session, store, conversation, `generating`,
`engine_lock`: one generation at a time) and hands each job to a helper holding a reference
to it: `replies` (send, stream, Esc), `swipes` (alternatives, some written in the background),
`edits` (regenerate, continue, edit, fork), `personas` (switching), `chats` (open, new, list,
search, export, rename), `chat_settings` (F3, /set), `knowledge` (memory panel, lorebook).
Keys, slash commands, palette and help come from one table (`commands`); each entry is an
`action_*` method below.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable

from textual.app import App, ComposeResult, SystemCommand
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Header

from ohlora.chat import ChatSession, clean_input
from ohlora.config import Settings, get_paths
from ohlora.conversation import Conversation
from ohlora.errors import UserError
from ohlora.personas import Persona, list_personas
from ohlora.store import ChatStore, StoreError
from ohlora.tui.chat_settings import ChatSettings
from ohlora.tui.chats import Chats
from ohlora.tui.commands import bindings, palette, run_slash
from ohlora.tui.edits import Edits
from ohlora.tui.knowledge import Knowledge
from ohlora.tui.personas import PersonaSwitch
from ohlora.tui.replies import Replies
from ohlora.tui.screens import HelpScreen
from ohlora.tui.status import MemoryStatus, Status, base_label
from ohlora.tui.swipes import Swipes
from ohlora.tui.terminal import private_terminal
from ohlora.tui.widgets import ChatInput, MessageList, MessageView, PersonaItem, PersonaSidebar, StatusBar

TIMINGS_ENV = "OHLORA_TUI_TIMINGS"  # bench: append JSON lines {event, t} to this file


class OhloraApp(App[int]):
    CSS_PATH = "ohlora.tcss"
    TITLE = "ohlora"
    BINDINGS = bindings()

    def __init__(
        self,
        settings: Settings,
        *,
        base: str | None = None,
        cont: bool = False,
        conversation_id: int | None = None,
        load_model: bool = True,
        generation_overrides: dict[str, Any] | None = None,
        db_path: Path | None = None,
        open_memory: bool | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.personas: dict[str, Persona] = {p.id: p for p in list_personas()}
        self.session = ChatSession(settings, base_override=base)  # UserError on an unknown persona
        self.cont = cont
        self.open_id = conversation_id
        self.load_model = load_model
        self.open_memory = settings.memory if open_memory is None else open_memory
        self.generation_overrides = dict(generation_overrides or {})
        if settings.theme:
            try:
                self.theme = settings.theme
            except Exception:  # an unknown theme name in config.toml: keep the default
                pass
        self.store: ChatStore | None = None
        self.store_error = ""
        try:
            self.store = ChatStore(db_path or get_paths().db_file)
        except StoreError as exc:
            self.store_error = str(exc)
        self.conversation = Conversation(self.session, self.store)
        self.memory: Any = None
        self.memory_off = "memory is off (settings: memory = false)" if not settings.memory else "memory: loading…"
        self.model_ready = threading.Event()
        self.model_error = ""
        self.base_name = base_label(base or settings.base or self.session.persona.base)
        self.generating = False
        self.engine_lock = threading.Lock()  # one generation at a time: replies and background alternatives
        self.status = Status(self)
        self.replies = Replies(self)
        self.swipes = Swipes(self)
        self.edits = Edits(self)
        self.switcher = PersonaSwitch(self)
        self.chats = Chats(self)
        self.chat_settings = ChatSettings(self)
        self.knowledge = Knowledge(self)
        self._timings = os.environ.get(TIMINGS_ENV)
        self.mark_time("init")

    @property
    def conversation_id(self) -> int | None:
        return self.conversation.id

    # -- layout -------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="✦")
        with Horizontal(id="main"):
            yield PersonaSidebar(
                *[PersonaItem(p.id, p.name, p.greeting) for p in self.personas.values()], id="sidebar"
            )
            with Vertical(id="chat"):
                yield MessageList(id="messages")
                yield ChatInput(id="input", placeholder="Loading the model… you can type already")
        yield StatusBar(id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#sidebar").display = False
        self.status.show()
        self.query_one(ChatInput).focus()
        notices: list[tuple[str, bool]] = []
        target = self.open_id
        if target is None and self.cont and self.store is not None:
            last = self.store.last_conversation()
            target = last.id if last else None
            if last is None:
                notices.append(("No saved conversation yet: starting a new one.", False))
        opened = False
        if target is not None and self.store is not None:
            try:
                self.chats.open(target)
                opened = True
            except UserError as exc:
                notices.append((str(exc), True))
        if not opened:
            self.chats.start_new()
        if self.store_error:
            notices.append((f"Conversations are not being saved: {self.store_error}", True))
        for text, error in notices:
            self.system_line(text, error=error)
        self.call_after_refresh(self._after_first_paint)

    def _after_first_paint(self) -> None:
        self.mark_time("first_paint")
        if self.open_memory:
            self.status.start_memory()
        if self.load_model:
            self.status.load_model()

    def mark_time(self, event: str) -> None:
        """For the bench: append {event, t} to the file OHLORA_TUI_TIMINGS names."""
        if self._timings:
            with open(self._timings, "a", encoding="utf-8") as fh:
                fh.write(json.dumps({"event": event, "t": time.time()}) + "\n")

    def on_memory_status(self, event: MemoryStatus) -> None:
        self.status.memory(event.text)

    def from_thread(self, fn: Callable, *args: Any) -> Any:
        """`call_from_thread`, or nothing once the app has exited."""
        try:
            return self.call_from_thread(fn, *args)
        except RuntimeError:  # the app has already exited (or this is the app's own thread)
            return None

    def still_writing(self, text: str = "still writing: press Esc first") -> bool:
        """True (after saying `text`) while a reply is being written."""
        if self.generating:
            self.notify(text, severity="warning")
        return self.generating

    def attempt(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> bool:
        """Call fn; False after showing its UserError as a red system line."""
        try:
            fn(*args, **kwargs)
        except UserError as exc:
            self.system_line(str(exc), error=True)
            return False
        return True

    def persona_names(self) -> dict[str, str]:
        return {p.id: p.name for p in self.personas.values()}

    # -- messages on screen -------------------------------------------------------
    @property
    def message_list(self) -> MessageList:
        return self.query_one("#messages", MessageList)

    def add_view(self, view: MessageView) -> MessageView:
        self.message_list.mount(view)
        self.message_list.scroll_end(animate=False)
        return view

    def system_line(self, text: str, error: bool = False) -> MessageView:
        """A message from the app itself (an error in red)."""
        view = MessageView("system", text, "error" if error else "ohlora")
        if error:
            view.add_class("error")
        return self.add_view(view)

    def show_greeting(self) -> None:
        p = self.session.persona
        view = MessageView("assistant", self.session.greeting, p.name)
        view.add_class("greeting")
        self.add_view(view)

    def view_of(self, mid: int) -> MessageView | None:
        """The view of saved message `mid`, if it is on screen."""
        return next((v for v in self.message_list.query(MessageView) if v.db_id == mid), None)

    def open_conversation(self, cid: int) -> None:
        """Show saved conversation `cid` (UserError if it cannot be opened)."""
        self.chats.open(cid)

    # -- the input and moving between messages ------------------------------------
    def on_chat_input_submitted(self, event: ChatInput.Submitted) -> None:
        raw = event.value
        if raw.strip().startswith("/"):
            event.input.clear()
            run_slash(self, raw.strip())
            return
        try:
            text = clean_input(raw)
        except UserError as exc:
            self.notify(str(exc), severity="warning", timeout=3)
            return
        if self.still_writing("still writing the last reply: wait, or press Esc to stop it"):
            return
        event.input.clear()
        self.replies.send(text)

    def on_text_area_changed(self, event: ChatInput.Changed) -> None:
        if isinstance(event.text_area, ChatInput):
            self.replies.typed(event.text_area.text)

    def on_chat_input_leave_up(self, event: ChatInput.LeaveUp) -> None:
        views = [v for v in self.message_list.query(MessageView) if v.db_id is not None]
        if views:
            views[-1].focus()
            self.message_list.scroll_to_widget(views[-1], animate=False)

    def action_focus_message(self, delta: int) -> None:
        views = list(self.message_list.query(MessageView))
        focused = self.focused
        if not isinstance(focused, MessageView) or focused not in views:
            return
        i = views.index(focused) + delta
        if i >= len(views):
            self.query_one(ChatInput).focus()
        elif i >= 0:
            views[i].focus()
            self.message_list.scroll_to_widget(views[i], animate=False)

    def action_leave_message(self) -> None:
        if self.generating:
            self.action_stop()
        else:
            self.query_one(ChatInput).focus()

    def on_list_view_selected(self, event: PersonaSidebar.Selected) -> None:
        if isinstance(event.item, PersonaItem):
            self.switcher.switch(event.item.pid)
            self.query_one(ChatInput).focus()

    # -- actions (one per entry of ohlora.tui.commands.COMMANDS) ---------------------
    def action_stop(self) -> None:
        self.replies.stop()

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_toggle_sidebar(self) -> None:
        self.switcher.toggle_sidebar()

    def action_next_persona(self) -> None:
        self.switcher.next()

    def action_persona(self, query: str = "") -> None:
        if query:
            self.switcher.switch(query)
        else:
            self.switcher.show_all()

    def action_list_personas(self) -> None:
        self.switcher.show_all()

    def action_regenerate(self) -> None:
        self.edits.regenerate()

    def action_swipe(self, delta: int) -> None:
        self.swipes.swipe(delta)

    def action_swipe_prev(self) -> None:
        self.swipes.swipe(-1)

    def action_swipe_next(self) -> None:
        self.swipes.swipe(1)

    def action_continue_reply(self) -> None:
        self.edits.continue_reply()

    def action_edit_message(self) -> None:
        self.edits.edit_message()

    def action_fork_here(self) -> None:
        self.edits.fork_here()

    def action_copy_last(self) -> None:
        views = [v for v in self.message_list.query(MessageView) if v.role == "assistant"]
        if not views or not views[-1].text:
            self.notify("no reply to copy yet", severity="warning")
            return
        views[-1].action_copy()

    def action_conversations(self) -> None:
        self.chats.open_list()

    def action_new_conversation(self) -> None:
        self.chats.new()

    def action_rename(self, title: str = "") -> None:
        self.chats.rename(title)

    def action_export(self) -> None:
        self.chats.export()

    def action_search(self, words: str = "") -> None:
        self.chats.search(words)

    def action_chat_settings(self) -> None:
        self.chat_settings.edit()

    def action_set(self, arg: str = "") -> None:
        self.chat_settings.set_one(arg)

    def action_lore(self) -> None:
        self.knowledge.lore()

    def action_memory(self) -> None:
        self.knowledge.memory_panel()

    def action_remember(self, text: str = "") -> None:
        self.knowledge.remember(text)

    def action_forget(self, mid: str = "") -> None:
        self.knowledge.forget(mid)

    async def action_quit(self) -> None:
        if self.generating:  # keep what was written so far
            self.conversation.stop()
            self.conversation.save_partial()
        self.exit(0)

    def on_unmount(self) -> None:
        self.swipes.cancel.set()
        self.conversation.stop()
        close = getattr(self.memory, "close", None)
        if close is not None:
            close()

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from palette(self)


def run_app(settings: Settings, base: str | None = None, cont: bool = False) -> int:
    """Entry point for `ohlora chat`; UserError (e.g. unknown persona) surfaces before the UI opens."""
    app = OhloraApp(settings, base=base, cont=cont)
    with private_terminal(get_paths().data_dir / "tui-stderr.log"):
        result = app.run()
    return int(result or 0)
