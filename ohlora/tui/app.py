"""The ohlora chat app (Textual).

First paint happens before anything heavy: the engine loads in a thread worker (the
input says "loading" meanwhile) and memory loads its embedder in its own thread (the
status bar says how far it is; replies come without memories until it is ready). A
reply streams in a thread worker into the message's MarkdownStream. Saving, regenerate
and the memory step belong to `ohlora.conversation.Conversation`: the user's row is
committed on send, before any model work; the reply when it ends (or what was written
when Esc stops it or the app quits).

Roleplay tools on any saved message (focus one with ↑ from an empty input): alternatives
(swipes, ←/→; for the last reply `swipes_ahead` more are written in the background while
the user reads, and a new message cancels that), edit, fork; Ctrl+G continues the last reply,
Ctrl+F searches every chat, F3 holds this chat's generation settings, F4 shows the lorebook
entries the last message triggered. Only one generation runs at a time (`_engine_lock`).

Keys, slash commands, the palette and help come from one table (`ohlora.tui.commands`).
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Iterable

from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Header

from ohlora.chat import ChatSession, clean_input
from ohlora.config import Settings, get_paths
from ohlora.conversation import SETTINGS, Conversation, Turn, parse_setting
from ohlora.errors import UserError
from ohlora.personas import Persona, list_personas
from ohlora.store import ChatStore, StoreError
from ohlora.tui.commands import COMMANDS, bindings, by_slash
from ohlora.tui.screens import (ConversationsScreen, EditScreen, HelpScreen, MemoryScreen, SearchScreen,
                                SettingsScreen)
from ohlora.tui.terminal import private_terminal, real_stderr
from ohlora.tui.widgets import (ChatInput, MessageList, MessageView, PersonaItem, PersonaSidebar, StatusBar,
                                reply_note)

TIMINGS_ENV = "OHLORA_TUI_TIMINGS"  # bench: append JSON lines {event, t} to this file


class MemoryStatus(Message):
    """Posted from memory's thread (post_message is thread-safe and never blocks that thread)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


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
        self.base_name = _base_label(base or settings.base or self.session.persona.base)
        self.generating = False
        self._reply_view: MessageView | None = None
        self._said_save_error = ""  # a store failure is said once, not under every reply
        self._engine_lock = threading.Lock()  # one generation at a time: replies and background alternatives
        self._bg_cancel = threading.Event()
        self._bg_mid: int | None = None  # the reply whose alternatives are being written in the background
        self._bg_job = 0
        self._reveal: int | None = None  # show the background alternative of this reply when it is done
        self._timings = os.environ.get(TIMINGS_ENV)
        self._mark("init")

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
        self._update_status()
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
                self.open_conversation(target)
                opened = True
            except UserError as exc:
                notices.append((str(exc), True))
        if not opened:
            self.new_conversation()
        if self.store_error:
            notices.append((f"Conversations are not being saved: {self.store_error}", True))
        for text, error in notices:
            self._system(text, error=error)
        self.call_after_refresh(self._after_first_paint)

    def _after_first_paint(self) -> None:
        self._mark("first_paint")
        if self.open_memory:
            self._start_memory()
        if self.load_model:
            self._load_model()

    def _mark(self, event: str) -> None:
        if self._timings:
            with open(self._timings, "a", encoding="utf-8") as fh:
                fh.write(json.dumps({"event": event, "t": time.time()}) + "\n")

    # -- model and memory loading ---------------------------------------------------
    @work(thread=True, exclusive=True, group="model")
    def _load_model(self) -> None:
        try:
            with real_stderr():
                self.session.engine()
        except Exception as exc:  # UserError or an engine failure: show it, keep the app up
            self.model_error = str(exc)
        self.model_ready.set()
        self._from_thread(self._model_loaded)

    def _model_loaded(self) -> None:
        if self.model_error:
            self._system(f"The model could not be loaded: {self.model_error}", error=True)
        elif self.session._engine is not None:
            self.base_name = self.session._engine.base.name
        self._mark("model_ready")
        self._update_status()

    def _start_memory(self) -> None:
        """Open memory; its embedder loads (on the first run: builds) in memory's own thread."""
        from ohlora.registry import open_memory

        try:
            memory = open_memory(self.settings, start=False)
        except Exception as exc:  # a locked / corrupt memory.db: the chat goes on without memory
            self.memory_off = f"memory is off: {exc}"
            self._memory_status(self.memory_off)
            return
        if memory is None:
            self.memory_off = "memory is off: the memory package is not installed in this build"
            return
        memory.on_status = lambda text: self.post_message(MemoryStatus(text))
        self.memory = memory
        self.session.memory = memory
        memory.start()
        self._memory_status(memory.status)

    def on_memory_status(self, event: MemoryStatus) -> None:
        self._memory_status(event.text)

    def _memory_status(self, text: str) -> None:
        if self.memory is not None and self.memory.state == "failed":
            self.memory_off = text
        short = {"memory: ready": "memory on"}.get(text, text)
        self.query_one(StatusBar).memory = short if len(short) < 70 else short[:69] + "…"

    def _from_thread(self, fn: Callable, *args: Any) -> Any:
        try:
            return self.call_from_thread(fn, *args)
        except RuntimeError:  # the app has already exited (or this is the app's own thread)
            return None

    # -- status -------------------------------------------------------------------
    def _update_status(self, speed: str | None = None) -> None:
        bar = self.query_one(StatusBar)
        bar.persona = self.session.persona.name
        bar.base = self.base_name
        bar.backend = self.settings.backend
        if self.model_error:
            bar.state = "model failed"
        elif not self.model_ready.is_set():
            bar.state = "loading model…" if self.load_model else "model not loaded"
        elif self.generating:
            bar.state = "writing… (Esc stops)"
        else:
            bar.state = "ready"
        if speed is not None:
            bar.speed = speed
        field = self.query_one(ChatInput)
        if self.model_ready.is_set() and not self.model_error:
            field.placeholder = f"Message {self.session.persona.name} · Enter send · Shift+Enter or Ctrl+J newline · /help"
        elif self.model_error:
            field.placeholder = "The model failed to load (see above); /help still works"
        else:
            field.placeholder = "Loading the model… you can type already"
        self.sub_title = "new conversation"
        if self.conversation_id is not None and self.store is not None:
            try:
                self.sub_title = self.store.get_conversation(self.conversation_id).title or "new conversation"
            except UserError:
                pass

    # -- messages on screen -------------------------------------------------------
    @property
    def message_list(self) -> MessageList:
        return self.query_one("#messages", MessageList)

    def _add_view(self, view: MessageView) -> MessageView:
        self.message_list.mount(view)
        self.message_list.scroll_end(animate=False)
        return view

    def _system(self, text: str, error: bool = False) -> MessageView:
        view = MessageView("system", text, "error" if error else "ohlora")
        if error:
            view.add_class("error")
        return self._add_view(view)

    def _greeting(self) -> None:
        p = self.session.persona
        view = MessageView("assistant", self.session.greeting, p.name)
        view.add_class("greeting")
        self._add_view(view)

    def _author(self, role: str, persona_id: str) -> str:
        if role == "user":
            return "you"
        p = self.personas.get(persona_id)
        return p.name if p else persona_id

    # -- conversations ------------------------------------------------------------
    def new_conversation(self) -> None:
        """A fresh screen; the conversation row is created with the first message."""
        self._stop_background()
        self.conversation = Conversation(self.session, self.store)
        self.session.history = []
        self.message_list.remove_children()
        self._greeting()
        self._update_status()

    def open_conversation(self, cid: int) -> None:
        assert self.store is not None
        self._stop_background()
        self.conversation = Conversation.open(self.session, self.store, cid, known_personas=set(self.personas))
        messages = self.conversation.messages()
        counts = self.store.swipe_counts(cid)
        self.message_list.remove_children()
        for m in messages:
            note = _note(m)
            swipe = (m.swipe or 0, counts[m.id]) if counts.get(m.id, 0) > 1 else None
            self.message_list.mount(MessageView(m.role, m.content, self._author(m.role, m.persona), db_id=m.id,
                                                note=note, swipe=swipe))
        if not messages:
            self._greeting()
        self.message_list.scroll_end(animate=False)
        self._sync_sidebar()
        self._update_status()

    # -- sending ------------------------------------------------------------------
    def on_chat_input_submitted(self, event: ChatInput.Submitted) -> None:
        raw = event.value
        if raw.strip().startswith("/"):
            event.input.clear()
            self.run_slash(raw.strip())
            return
        try:
            text = clean_input(raw)
        except UserError as exc:
            self.notify(str(exc), severity="warning", timeout=3)
            return
        if self.generating:
            self.notify("still writing the last reply: wait, or press Esc to stop it", severity="warning")
            return
        event.input.clear()
        self.send(text)

    def send(self, text: str) -> None:
        turn = self.conversation.begin(text)  # committed now, before any model work
        self._add_view(MessageView("user", turn.text, "you", db_id=turn.user_id))
        if turn.save_error:
            self._said_save_error = turn.save_error
            self._system(f"Not saved: {turn.save_error}", error=True)
        self._start_reply(lambda: self.conversation.reply(turn))

    def _start_reply(self, stream: Callable[[], Iterable[str]], view: MessageView | None = None,
                     done: Callable | None = None, note: str = "") -> None:
        """Stream into a new reply view (or into `view`: a continued reply, an alternative)."""
        self._stop_background()
        p = self.session.persona
        note = note or ("reading your message…" if self.model_ready.is_set() else "waiting for the model to load…")
        if view is None:
            view = self._add_view(MessageView("assistant", "", p.name, note=note))
        else:
            view.set_note(note)
        view.add_class("streaming")
        self._reply_view = view
        self.generating = True
        self._update_status()
        self._generate(stream, view, done)

    @work(thread=True, exclusive=True, group="reply")
    def _generate(self, stream: Callable[[], Iterable[str]], view: MessageView, done: Callable | None = None) -> None:
        self.model_ready.wait()
        with self._engine_lock:  # a background alternative, told to stop, finishes first
            error = self._stream_into(stream, view)
        if done is not None:
            self._from_thread(done, view, error)
        else:
            self._from_thread(self._reply_done, view, self.conversation.last, error)

    def _stream_into(self, stream: Callable[[], Iterable[str]], view: MessageView) -> str:
        error = ""
        if self.model_error:
            error = f"no model: {self.model_error}"
        else:
            if self.generation_overrides:
                p = self.session.persona
                self.session.persona = replace(p, generation=replace(p.generation, **self.generation_overrides))
            first = True
            try:
                with real_stderr():  # a persona on another base loads its engine here
                    for piece in stream():
                        if first:
                            self._from_thread(view.set_note, "writing…")
                            first = False
                        self._from_thread(view.write, piece)
            except UserError as exc:
                error = str(exc)
            except Exception as exc:  # keep the app alive; say what went wrong
                error = f"{type(exc).__name__}: {exc}"
        return error

    async def _reply_done(self, view: MessageView, turn: Turn | None, error: str) -> None:
        await view.end_stream()
        self._reply_view = None
        view.remove_class("streaming")
        self.generating = False
        if self.session._engine is not None:
            self.base_name = self.session._engine.base.name
        if turn is not None:
            view.db_id = turn.reply_id
        result = turn.result if turn is not None else None
        if result is not None and not error:
            view.set_content(result.text)
            view.set_note(reply_note(result.text, result.completion_tokens, result.tokens_per_s, result.stop_reason))
            self._update_status(f"{result.tokens_per_s:.1f} tok/s" if result.tokens_per_s else "")
        else:
            view.set_note(f"error: {error}")
            view.add_class("error")
            self._update_status()
        if turn is not None and turn.save_error and turn.save_error != self._said_save_error:
            self._said_save_error = turn.save_error
            self._system(f"Not saved: {turn.save_error}", error=True)
        if turn is not None and turn.memory_error:
            self.notify(turn.memory_error, severity="warning", timeout=5)
        self.message_list.scroll_end(animate=False)
        if turn is not None and turn.reply_id is not None and result is not None and not error:
            self._start_background(turn.reply_id)

    # -- alternatives (swipes) -----------------------------------------------------------
    def _reply_views(self) -> list[MessageView]:
        return [v for v in self.message_list.query(MessageView)
                if v.role == "assistant" and v.db_id is not None and not v.has_class("greeting")]

    def _view_of(self, mid: int) -> MessageView | None:
        return next((v for v in self.message_list.query(MessageView) if v.db_id == mid), None)

    def _target_reply(self) -> MessageView | None:
        """The focused reply, or (from the input) the last one."""
        focused = self.focused
        if isinstance(focused, MessageView):
            return focused if focused.role == "assistant" and focused.db_id is not None else None
        views = self._reply_views()
        return views[-1] if views else None

    def _start_background(self, mid: int) -> None:
        """Write `swipes_ahead` alternatives of a new reply while the user reads it."""
        ahead = max(0, int(self.settings.swipes_ahead))
        if not ahead or self.store is None or self.model_error:
            return
        try:
            have = len(self.store.swipes(mid))
        except UserError:
            return
        n = 1 + ahead - max(have, 1)
        if n <= 0:
            return
        self._bg_cancel.clear()
        self._bg_mid = mid
        self._bg_job += 1
        self._background(self.conversation, mid, n, self._bg_job)

    def _stop_background(self) -> None:
        """A new message, a regenerate, another chat: the background alternative stops now."""
        if self._bg_mid is not None:
            self._bg_cancel.set()
            self.session.cancel()
            self._bg_mid = None
            self._reveal = None

    @work(thread=True, group="swipes")
    def _background(self, convo: Conversation, mid: int, n: int, job: int) -> None:
        try:
            with self._engine_lock:
                for _ in range(n):
                    if self._bg_cancel.is_set():
                        break
                    stream = convo.alternative(mid, shown=False, keep_partial=False)
                    try:
                        with real_stderr():
                            for _piece in stream:
                                if self._bg_cancel.is_set():
                                    break
                    except Exception:  # noqa: BLE001 - nothing the user asked for failed; stop quietly
                        break
                    finally:
                        stream.close()
                    alt = convo.last_alternative
                    if alt is not None and alt.position is not None:
                        self._from_thread(self._background_wrote, convo, mid)
        finally:
            self._from_thread(self._background_ended, mid, job)

    def _background_wrote(self, convo: Conversation, mid: int) -> None:
        view = self._view_of(mid) if convo is self.conversation else None
        if view is None or self.store is None:
            return
        count = len(self.store.swipes(mid))
        pos = view.swipe[0] if view.swipe else 0
        if self._reveal == mid:
            self._reveal = None
            self._show_swipe(view, count - 1)
        else:
            view.set_swipe(pos, count, writing=self._bg_mid == mid and not self._bg_cancel.is_set())

    def _background_ended(self, mid: int, job: int) -> None:
        if job != self._bg_job:
            return
        self._bg_mid = None
        view = self._view_of(mid)
        if view is not None and view.swipe is not None:
            view.set_swipe(*view.swipe)
        if self._reveal == mid and view is not None:  # asked for one more, and none came: write it now
            self._reveal = None
            self._start_alternative(view)

    def _show_swipe(self, view: MessageView, position: int) -> None:
        assert self.store is not None and view.db_id is not None
        try:
            msg = self.conversation.choose(view.db_id, position)
        except UserError as exc:
            self.notify(str(exc), severity="warning")
            return
        view.set_content(msg.content)
        view.set_note(_note(msg))
        view.set_swipe(position, len(self.store.swipes(view.db_id)))

    def action_swipe(self, delta: int) -> None:
        view = self._target_reply()
        if view is None:
            self.notify("no reply to browse: focus one of the persona's replies (↑ from an empty input)",
                        severity="warning")
            return
        if self.generating:
            self.notify("still writing: wait, or press Esc to stop it", severity="warning")
            return
        if self.store is None:
            self._system(f"Alternatives are not kept: {self.store_error}", error=True)
            return
        count = max(len(self.store.swipes(view.db_id)), 1)
        pos = view.swipe[0] if view.swipe else 0
        new = pos + delta
        if new < 0:
            self.notify("this is the first alternative", timeout=2)
        elif new < count:
            self._show_swipe(view, new)
        elif self._bg_mid == view.db_id:
            self._reveal = view.db_id  # the background one is on its way: show it when done
            view.set_swipe(pos, count, writing=True)
        else:
            self._start_alternative(view)

    def action_swipe_prev(self) -> None:
        self.action_swipe(-1)

    def action_swipe_next(self) -> None:
        self.action_swipe(1)

    def _start_alternative(self, view: MessageView) -> None:
        """Write one more alternative of this reply, streamed into its view."""
        mid = view.db_id
        assert mid is not None
        convo = self.conversation
        before = (view.text, view.note, view.swipe)
        count = view.swipe[1] if view.swipe else 1
        view.set_content("")
        view.set_swipe(view.swipe[0] if view.swipe else 0, count, writing=True)
        self._start_reply(lambda: convo.alternative(mid, shown=True), view,
                          lambda v, error: self._alternative_done(v, convo, before, error), "writing an alternative…")

    async def _alternative_done(self, view: MessageView, convo: Conversation, before: tuple, error: str) -> None:
        await view.end_stream()
        self._reply_view = None
        view.remove_class("streaming")
        self.generating = False
        alt = convo.last_alternative
        if alt is not None and alt.position is not None and convo is self.conversation:
            self._show_swipe(view, alt.position)
        else:
            text, note, swipe = before
            view.set_content(text)
            view.set_note(note)
            view.set_swipe(*(swipe or (None,)))
            self.notify(f"no alternative: {error or 'stopped before it wrote anything'}", severity="warning")
        self._update_status()

    # -- continue, edit, fork ------------------------------------------------------------
    def action_continue_reply(self) -> None:
        if self.generating:
            self.notify("still writing: press Esc first", severity="warning")
            return
        rows = self.conversation.messages()
        view = self._view_of(rows[-1].id) if rows and rows[-1].role == "assistant" else None
        if view is None:
            self.notify("nothing to continue: the last message is not a reply", severity="warning")
            return
        self._start_reply(self.conversation.continue_last, view, note="continuing…")

    def _focused_message(self, role: str | None = None) -> MessageView | None:
        """The focused saved message, or the last saved one (of `role`)."""
        focused = self.focused
        if isinstance(focused, MessageView) and focused.db_id is not None:
            return focused
        views = [v for v in self.message_list.query(MessageView)
                 if v.db_id is not None and (role is None or v.role == role)]
        return views[-1] if views else None

    def action_edit_message(self) -> None:
        if self.generating:
            self.notify("still writing: press Esc first", severity="warning")
            return
        view = self._focused_message("user")
        if view is None:
            self.notify("no saved message to edit yet", severity="warning")
            return
        mid = view.db_id
        assert mid is not None
        who = "your message" if view.role == "user" else f"{view.author}'s reply"

        def done(text: str | None) -> None:
            if text is None or text == view.text:
                return
            try:
                msg = self.conversation.edit(mid, text)
            except UserError as exc:
                self._system(str(exc), error=True)
                return
            view.set_content(msg.content)
            if view.role == "assistant":
                view.set_note(_note(msg))
                self.notify("reply edited: the chat goes on from your text", timeout=3)
                return
            rows = self.conversation.messages()
            if rows[-1].id == mid:  # unanswered: answer the edited text
                self._start_reply(self.conversation.answer_last)
            elif len(rows) >= 2 and rows[-2].id == mid and rows[-1].role == "assistant":
                old = self._view_of(rows[-1].id)  # its reply answered the old text: write a new one
                if old is not None:
                    old.remove()
                self._start_reply(self.conversation.regenerate)
            else:
                self.notify("edited; the messages after it stay. Press f on it to fork a conversation that "
                            "goes on from the edited text", timeout=6)

        self.push_screen(EditScreen(f"Edit {who} (Ctrl+S save · Esc cancel)", view.text), done)

    def action_fork_here(self) -> None:
        if self.generating:
            self.notify("still writing: press Esc first", severity="warning")
            return
        view = self._focused_message()
        if view is None:
            self.notify("nothing to fork yet: send a message first", severity="warning")
            return
        old = self.conversation_id
        try:
            new = self.conversation.fork(view.db_id)  # type: ignore[arg-type]
        except UserError as exc:
            self._system(str(exc), error=True)
            return
        self.open_conversation(new)
        self._system(f"Forked conversation {old} into {new} up to this message; {old} stays as it was.")
        rows = self.conversation.messages()
        if rows and rows[-1].role == "user":
            self._start_reply(self.conversation.answer_last)

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

    # -- search, chat settings, lorebook -------------------------------------------------
    def action_search(self, words: str = "") -> None:
        if self.store is None:
            self._system(f"Search needs the saved conversations: {self.store_error}", error=True)
            return
        if self.generating:
            self.notify("still writing: press Esc first", severity="warning")
            return

        def chosen(result: tuple[int, int] | None) -> None:
            if result is None:
                return
            cid, mid = result
            if cid != self.conversation_id:
                try:
                    self.open_conversation(cid)
                except UserError as exc:
                    self._system(str(exc), error=True)
                    return
            view = self._view_of(mid)
            if view is not None:
                view.focus()
                self.call_after_refresh(self.message_list.scroll_to_widget, view, animate=False, top=True)

        names = {p.id: p.name for p in self.personas.values()}
        self.push_screen(SearchScreen(self.store, names, words), chosen)

    def _settings_text(self) -> str:
        gen = self.conversation.generation()
        rows = [f"- {k} = {getattr(gen, k)}" + (" (this chat)" if k in self.conversation.overrides else "")
                for k in SETTINGS]
        return "Generation settings (F3 to edit, `/set KEY VALUE`, `/set KEY default`):\n" + "\n".join(rows)

    def action_chat_settings(self) -> None:
        defaults = {k: getattr(self.session.persona.generation, k) for k in SETTINGS}

        def done(values: dict | None) -> None:
            if values is None:
                return
            try:
                self.conversation.set_generation(values)
            except UserError as exc:
                self._system(str(exc), error=True)
                return
            self._system(self._settings_text())

        self.push_screen(SettingsScreen(dict(self.conversation.overrides), defaults), done)

    def action_set(self, arg: str = "") -> None:
        key, _, value = arg.strip().partition(" ")
        if not key:
            self._system(self._settings_text())
            return
        values = dict(self.conversation.overrides)
        try:
            if value.strip().lower() in ("", "default", "reset"):
                parse_setting(key, getattr(self.session.persona.generation, key, 0))  # a known key?
                values.pop(key, None)
            else:
                values[key] = parse_setting(key, value.strip())
            self.conversation.set_generation(values)
        except UserError as exc:
            self._system(str(exc), error=True)
            return
        self.notify(f"{key} = {getattr(self.conversation.generation(), key)} for this chat", timeout=3)

    def action_lore(self) -> None:
        lore = self.session.lore()
        name = self.session.persona.name
        if lore.error:
            self._system(f"The lorebook could not be read: {lore.error}", error=True)
            return
        if not lore.books:
            self._system(f"{name} has no lorebook. Import a card with a `character_book`, or attach a World Info "
                         f"file: `ohlora persona import FILE --into {self.session.persona.id}`.")
            return
        entries = sum(len(b.entries) for b in lore.books)
        head = f"Lorebook of {name}: {len(lore.books)} book(s), {entries} entries."
        hits = self.session.last_lore
        if not hits:
            self._system(head + "\n\nNothing fired for the last message.")
            return
        lines = [f"- {'✓' if h.included else '✗'} {h.line()}" for h in hits]
        self._system(head + "\n\nFor the last message:\n" + "\n".join(lines))

    # -- actions (one per entry of ohlora.tui.commands.COMMANDS) ---------------------
    def action_stop(self) -> None:
        if self.generating:
            self.conversation.stop()
            self.notify("stopping…", timeout=1.5)

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_toggle_sidebar(self) -> None:
        sidebar = self.query_one("#sidebar", PersonaSidebar)
        sidebar.display = not sidebar.display
        if sidebar.display:
            self._sync_sidebar()
            sidebar.focus()
        else:
            self.query_one(ChatInput).focus()

    def _sync_sidebar(self) -> None:
        sidebar = self.query_one("#sidebar", PersonaSidebar)
        ids = list(self.personas)
        if self.session.persona.id in ids:
            sidebar.index = ids.index(self.session.persona.id)

    def on_list_view_selected(self, event: PersonaSidebar.Selected) -> None:
        if isinstance(event.item, PersonaItem):
            self.switch_persona(event.item.pid)
            self.query_one(ChatInput).focus()

    def action_next_persona(self) -> None:
        ids = list(self.personas)
        current = self.session.persona.id
        nxt = ids[(ids.index(current) + 1) % len(ids)] if current in ids else ids[0]
        self.switch_persona(nxt)

    def action_persona(self, query: str = "") -> None:
        if query:
            self.switch_persona(query)
        else:
            self.action_list_personas()

    def switch_persona(self, query: str) -> None:
        pid = self._find_persona(query)
        if pid is None:
            known = ", ".join(f"{p.id} ({p.name})" for p in self.personas.values())
            self._system(f"Unknown persona '{query}'. Known: {known}", error=True)
            return
        if pid == self.session.persona.id:
            self.notify(f"already talking to {self.personas[pid].name}", timeout=2)
            return
        try:
            self.session.set_persona(pid)
        except UserError as exc:
            self._system(str(exc), error=True)
            return
        when = "from the next reply" if not self.generating else "after this reply"
        self.notify(f"now talking to {self.session.persona.name} ({when})", timeout=2)
        self._greeting()
        self._sync_sidebar()
        self._update_status()

    def _find_persona(self, query: str) -> str | None:
        q = query.strip().lower()
        for p in self.personas.values():
            if q in (p.id.lower(), p.name.lower()):
                return p.id
        matches = [p.id for p in self.personas.values() if p.id.startswith(q) or p.name.lower().startswith(q)]
        return matches[0] if len(matches) == 1 and q else None

    def action_list_personas(self) -> None:
        lines = [f"- **{p.id}** ({p.name}): {p.greeting}" for p in self.personas.values()]
        self._system("Personas (switch with `/persona ID` or Ctrl+T):\n" + "\n".join(lines))

    def action_regenerate(self) -> None:
        if self.generating:
            self.notify("still writing: press Esc first", severity="warning")
            return
        self._stop_background()
        views = [v for v in self.message_list.query(MessageView)
                 if v.role in ("user", "assistant") and not v.has_class("greeting")]
        if len(views) < 2 or views[-1].role != "assistant" or views[-2].role != "user":
            self.notify("nothing to regenerate yet", severity="warning")
            return
        views[-1].remove()
        self._start_reply(self.conversation.regenerate)

    def action_copy_last(self) -> None:
        views = [v for v in self.message_list.query(MessageView) if v.role == "assistant"]
        if not views or not views[-1].text:
            self.notify("no reply to copy yet", severity="warning")
            return
        views[-1].action_copy()

    def action_new_conversation(self) -> None:
        if self.generating:
            self.notify("still writing: press Esc first", severity="warning")
            return
        self.new_conversation()

    def action_conversations(self) -> None:
        if self.store is None:
            self._system(f"Saved conversations are unavailable: {self.store_error}", error=True)
            return
        if self.generating:
            self.notify("still writing: press Esc first", severity="warning")
            return

        def chosen(result: int | str | None) -> None:
            if result == "new":
                self.new_conversation()
            elif isinstance(result, int):
                self.open_conversation(result)
            elif self.conversation_id is not None:
                try:
                    self.store.get_conversation(self.conversation_id)  # type: ignore[union-attr]
                except UserError:  # the open conversation was deleted
                    self.new_conversation()
                else:
                    self._update_status()

        names = {p.id: p.name for p in self.personas.values()}
        self.push_screen(ConversationsScreen(self.store, self.conversation_id, names), chosen)

    def action_memory(self) -> None:
        off = self.memory_off if self.memory is None or getattr(self.memory, "state", "") == "failed" else ""
        recalled = [f"{r.memory.text}  (#{r.memory.id}, score {getattr(r, 'score', r.cosine):.2f}, cosine {r.cosine:.2f}"
                    + (f", {r.why}" if getattr(r, "why", "") else "") + ")" for r in self.session.last_recalled]
        self.push_screen(MemoryScreen(None if off else self.memory, recalled, off))

    def action_remember(self, text: str = "") -> None:
        if self.memory is None:
            self._system(self.memory_off, error=True)
        elif not text.strip():
            self._system("Usage: /remember TEXT")
        else:
            try:
                self.memory.add(text.strip(), persona=None)
            except UserError as exc:
                self._system(str(exc), error=True)
            else:
                self.notify(f"will remember: {text.strip()}", timeout=3)

    def action_forget(self, mid: str = "") -> None:
        if self.memory is None:
            self._system(self.memory_off, error=True)
            return
        try:
            gone = self.memory.forget(mid)
        except UserError as exc:
            self._system(str(exc), error=True)
        else:
            self.notify(f"forgot #{gone.id}: {gone.text}", timeout=3)

    def action_export(self) -> None:
        if self.store is None or self.conversation_id is None:
            self._system("Nothing to export yet: send a message first.")
            return
        names = {p.id: p.name for p in self.personas.values()}
        try:
            md, js = self.store.export_files(self.conversation_id, get_paths().data_dir / "exports", names)
        except (OSError, UserError) as exc:
            self._system(f"Export failed: {exc}", error=True)
            return
        self._system(f"Exported to:\n\n- `{md}`\n- `{js}`")

    def action_rename(self, title: str = "") -> None:
        if not title:
            self._system("Usage: /rename NEW TITLE")
            return
        if self.store is None or self.conversation_id is None:
            self._system("Nothing to rename yet: send a message first.")
            return
        try:
            self.store.rename(self.conversation_id, title)
        except UserError as exc:
            self._system(str(exc), error=True)
        self._update_status()

    async def action_quit(self) -> None:
        if self.generating:  # keep what was written so far
            self.conversation.stop()
            self.conversation.save_partial()
        self.exit(0)

    def on_unmount(self) -> None:
        self._bg_cancel.set()
        self.conversation.stop()
        close = getattr(self.memory, "close", None)
        if close is not None:
            close()

    # -- slash commands and the palette, from the command table -------------------
    def run_slash(self, line: str) -> None:
        name, _, arg = line[1:].partition(" ")
        command = by_slash().get(name.lower())
        if command is None:
            self._system(f"Unknown command /{name}. Type /help for the list.", error=True)
            return
        method = getattr(self, f"action_{command.action}")
        if command.arg:
            method(arg.strip())
        elif command.action == "quit":
            self.run_action("quit")
        else:
            method()

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        for c in COMMANDS:
            if c.palette:
                label = f"{c.help} ({c.key_label})" if c.key_label else c.help
                yield SystemCommand(c.title, label, lambda a=c.action: self.run_action(a))
        for p in self.personas.values():
            yield SystemCommand(f"Persona: {p.name} ({p.id})", p.greeting, lambda pid=p.id: self.switch_persona(pid))
        yield SystemCommand("Theme", "Change the current theme", self.action_change_theme)


def _note(m: Any) -> str:
    """The line under a saved message: tokens, speed and stop reason of a reply; edited or not."""
    note = reply_note(m.content, m.completion_tokens, m.tokens_per_s, m.stop_reason) if m.role == "assistant" else ""
    if getattr(m, "edited_at", None):
        note = f"{note} · edited" if note else "edited"
    return note


def _base_label(spec: str) -> str:
    if not spec or spec in ("default", "gemma3-270m"):
        return "gemma-3-270m"
    if spec in ("smollm2", "smollm2-135m"):
        return "smollm2-135m"
    return Path(spec).stem or spec


def run_app(settings: Settings, base: str | None = None, cont: bool = False) -> int:
    """Entry point for `ohlora chat`; UserError (e.g. unknown persona) surfaces before the UI opens."""
    app = OhloraApp(settings, base=base, cont=cont)
    with private_terminal(get_paths().data_dir / "tui-stderr.log"):
        result = app.run()
    return int(result or 0)
