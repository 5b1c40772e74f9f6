"""The ohlora chat app (Textual).

First paint happens before the model is loaded: the engine loads in a thread worker
and the input says "loading" meanwhile. Replies stream in a thread worker; pieces are
buffered and drawn by a timer a few times a second, not one re-render per token.
Storage: the user's message is committed before generation starts, the reply once it
ends (or what was written when Esc stops it).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer, Header

from ohlora.chat import ChatSession, clean_input
from ohlora.config import Settings, get_paths
from ohlora.errors import UserError
from ohlora.personas import Persona, list_personas
from ohlora.store import ChatStore, StoreError
from ohlora.tui.commands import OhloraCommands
from ohlora.tui.screens import ConversationsScreen, HelpScreen, MemoryScreen
from ohlora.tui.widgets import ChatInput, MessageList, MessageView, PersonaItem, PersonaSidebar, StatusBar

if TYPE_CHECKING:
    from ohlora.backends.base import GenerationResult

FLUSH_SECONDS = 0.08  # streamed text is drawn at most ~12 times a second
TIMINGS_ENV = "OHLORA_TUI_TIMINGS"  # bench: append JSON lines {event, t} to this file


class OhloraApp(App[int]):
    CSS_PATH = "ohlora.tcss"
    TITLE = "ohlora"
    COMMANDS = App.COMMANDS | {OhloraCommands}
    BINDINGS = [
        Binding("escape", "stop", "Stop", show=False),
        Binding("f1", "help", "Help"),
        Binding("ctrl+t", "next_persona", "Persona"),
        Binding("ctrl+b", "toggle_sidebar", "Sidebar"),
        Binding("ctrl+r", "regenerate", "Regenerate"),
        Binding("ctrl+o", "copy_last", "Copy"),
        Binding("ctrl+l", "conversations", "Chats"),
        Binding("ctrl+n", "new_conversation", "New"),
        Binding("f2", "memory", "Memory"),
    ]

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
    ) -> None:
        super().__init__()
        self.settings = settings
        self.personas: dict[str, Persona] = {p.id: p for p in list_personas()}
        self.session = ChatSession(settings, base_override=base)  # UserError on an unknown persona
        self.base_spec = base
        self.cont = cont
        self.open_id = conversation_id
        self.load_model = load_model
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
        self.conversation_id: int | None = None
        self.memory: Any = None
        self.memory_off = "memory is off (loading…)"
        self.model_ready = threading.Event()
        self.model_error = ""
        self.base_name = _base_label(base or settings.base or self.session.persona.base)
        self.generating = False
        self._reply: dict | None = None  # the reply being streamed: view, persona, saved flag
        self._reply_engine: Any = None  # the engine writing it
        self._buffer_lock = threading.Lock()
        self._timings = os.environ.get(TIMINGS_ENV)
        self._mark("init")

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
        self.set_interval(FLUSH_SECONDS, self._flush)
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
        if self.load_model:
            self._load_model()

    def _mark(self, event: str) -> None:
        if self._timings:
            with open(self._timings, "a", encoding="utf-8") as fh:
                fh.write(json.dumps({"event": event, "t": time.time()}) + "\n")

    # -- model loading ------------------------------------------------------------
    @work(thread=True, exclusive=True, group="model")
    def _load_model(self) -> None:
        try:
            with _real_stderr():
                self.session.engine()
        except Exception as exc:  # UserError or an engine failure: show it, keep the app up
            self.model_error = str(exc)
        if not self.model_error:
            self._open_memory()
        self.model_ready.set()
        self._from_thread(self._model_loaded)

    def _open_memory(self) -> None:
        if not self.settings.memory:
            self.memory_off = "memory is off (settings: memory = false)"
            return
        try:
            from ohlora.cli import open_memory

            self.memory = open_memory(self.settings)
        except Exception as exc:
            self.memory_off = f"memory is off: {exc}"
            return
        if self.memory is None:
            self.memory_off = "memory is off: the memory package is not installed in this build"
        self.session.memory = self.memory

    def _model_loaded(self) -> None:
        if self.model_error:
            self._system(f"The model could not be loaded: {self.model_error}", error=True)
        else:
            engine = self.session._engine or self.session.engine()
            self.base_name = engine.base.name
        self._mark("model_ready")
        self._update_status()

    def _from_thread(self, fn: Callable, *args: Any) -> None:
        try:
            self.call_from_thread(fn, *args)
        except RuntimeError:  # the app has already exited
            pass

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
        if self.conversation_id is not None and self.store is not None:
            try:
                self.sub_title = self.store.get_conversation(self.conversation_id).title or "new conversation"
            except UserError:
                self.sub_title = ""
        else:
            self.sub_title = "new conversation"

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
        view = MessageView("assistant", p.greeting, p.name)
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
        self.conversation_id = None
        self.session.history = []
        self.message_list.remove_children()
        self._greeting()
        self._update_status()

    def open_conversation(self, cid: int) -> None:
        assert self.store is not None
        conv = self.store.get_conversation(cid)
        messages = self.store.messages(cid)
        self.conversation_id = cid
        self.message_list.remove_children()
        if conv.persona in self.personas and conv.persona != self.session.persona.id:
            self.session.set_persona(conv.persona)
        history: list[dict] = []
        for i, m in enumerate(messages):
            view = MessageView(m.role, m.content, self._author(m.role, m.persona), db_id=m.id, note=_note(m))
            self.message_list.mount(view)
            answered = i + 1 < len(messages) and messages[i + 1].role == "assistant"
            if m.role == "assistant" or answered:
                history.append({"role": m.role, "content": m.content})
        self.session.history = history
        if not messages:
            self._greeting()
        self.message_list.scroll_end(animate=False)
        self._sync_sidebar()
        self._update_status()

    def _ensure_conversation(self) -> int | None:
        if self.store is None:
            return None
        if self.conversation_id is None:
            self.conversation_id = self.store.new_conversation(self.session.persona.id)
        return self.conversation_id

    def _save(self, role: str, content: str, persona: str, result: "GenerationResult | None" = None) -> int | None:
        if self.store is None:
            return None
        try:
            cid = self._ensure_conversation()
            assert cid is not None
            stats = {}
            if result is not None:
                stats = dict(
                    prompt_tokens=result.prompt_tokens,
                    completion_tokens=result.completion_tokens,
                    tokens_per_s=round(result.tokens_per_s, 2),
                    stop_reason=result.stop_reason,
                )
            return self.store.add_message(cid, role, content, persona, **stats)
        except StoreError as exc:
            self._system(f"Not saved: {exc}", error=True)
            return None

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
        persona = self.session.persona.id
        mid = self._save("user", text, persona)
        self._add_view(MessageView("user", text, "you", db_id=mid))
        self._start_reply(text)

    def _start_reply(self, text: str) -> None:
        p = self.session.persona
        note = "thinking…" if self.model_ready.is_set() else "waiting for the model to load…"
        view = self._add_view(MessageView("assistant", "", p.name, note=note))
        view.add_class("streaming")
        self._reply = {"view": view, "persona": p.id, "saved": False}
        self.generating = True
        self._update_status()
        self._generate(text, view)

    @work(thread=True, exclusive=True, group="reply")
    def _generate(self, text: str, view: MessageView) -> None:
        self.model_ready.wait()
        if self.model_error:
            self._from_thread(self._reply_done, view, None, f"no model: {self.model_error}")
            return
        if self.generation_overrides:
            p = self.session.persona
            self.session.persona = replace(p, generation=replace(p.generation, **self.generation_overrides))
        error = ""
        self._from_thread(view.set_note, "reading your message…")
        self.session.conversation_id = self.conversation_id  # for memory.observe (see chat.py)
        try:
            with _real_stderr():  # a persona on another base loads its engine here
                self._reply_engine = self.session.engine()
            for piece in self.session.send(text):
                with self._buffer_lock:
                    view.queue(piece)
        except UserError as exc:
            error = str(exc)
        except Exception as exc:  # keep the app alive; say what went wrong
            error = f"{type(exc).__name__}: {exc}"
        self._from_thread(self._reply_done, view, None if error else self.session.last, error)

    def _flush(self) -> None:
        reply = self._reply
        if reply is None:
            return
        view: MessageView = reply["view"]
        with self._buffer_lock:
            arrived = bool(view._pending)
            view.flush()
        if arrived:
            if view.note != "writing…":
                view.set_note("writing…")
            self.message_list.scroll_end(animate=False)

    def _reply_done(self, view: MessageView, result: "GenerationResult | None", error: str) -> None:
        reply, self._reply = self._reply, None
        with self._buffer_lock:
            view.flush()
        view.remove_class("streaming")
        self.generating = False
        persona = reply["persona"] if reply else self.session.persona.id
        saved = bool(reply and reply["saved"])
        if self.session._engine is not None:
            self.base_name = self.session._engine.base.name
        if result is not None:
            view.set_content(result.text)
            if not saved:
                view.db_id = self._save("assistant", result.text, persona, result)
            view.set_note(_result_note(result))
            self._update_status(f"{result.tokens_per_s:.1f} tok/s" if result.tokens_per_s else "")
        else:
            view.set_note(f"error: {error}")
            view.add_class("error")
            if view.text.strip() and not saved:
                view.db_id = self._save("assistant", view.text, persona)
            self._update_status()
        self.message_list.scroll_end(animate=False)

    # -- actions ------------------------------------------------------------------
    def _cancel(self) -> None:
        """Stop the running reply (set_persona mid-reply detaches the session from its engine)."""
        self.session.cancel()
        if self._reply_engine is not None:
            self._reply_engine.cancel()

    def action_stop(self) -> None:
        if self.generating:
            self._cancel()
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

    def action_regenerate(self) -> None:
        if self.generating:
            self.notify("still writing: press Esc first", severity="warning")
            return
        views = [v for v in self.message_list.query(MessageView) if v.role in ("user", "assistant")]
        views = [v for v in views if not v.has_class("greeting")]
        if len(views) < 2 or views[-1].role != "assistant" or views[-2].role != "user":
            self.notify("nothing to regenerate yet", severity="warning")
            return
        last, user = views[-1], views[-2]
        if self.store is not None and last.db_id is not None:
            try:
                self.store.delete_message(last.db_id)
            except StoreError as exc:
                self._system(str(exc), error=True)
                return
        hist = self.session.history
        if len(hist) >= 2 and hist[-1]["role"] == "assistant" and hist[-2]["role"] == "user":
            self.session.history = hist[:-2]
        last.remove()
        self._start_reply(user.text)

    def _last_reply(self) -> MessageView | None:
        views = [v for v in self.message_list.query(MessageView) if v.role == "assistant"]
        return views[-1] if views else None

    def action_copy_last(self) -> None:
        view = self._last_reply()
        if view is None or not view.text:
            self.notify("no reply to copy yet", severity="warning")
            return
        view.action_copy()

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
        off = self.memory_off if self.memory is None else ""
        self.push_screen(MemoryScreen(self.memory, list(self.session.last_memories), off))

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

    def action_clear(self) -> None:
        self.action_new_conversation()

    def action_rename(self, title: str) -> None:
        if self.store is None or self.conversation_id is None:
            self._system("Nothing to rename yet: send a message first.")
            return
        try:
            self.store.rename(self.conversation_id, title)
        except UserError as exc:
            self._system(str(exc), error=True)
        self._update_status()

    async def action_quit(self) -> None:
        self._save_partial()
        self.exit(0)

    def _save_partial(self) -> None:
        """On quit mid-reply: stop the model and keep what was written so far."""
        reply = self._reply
        if reply is None or reply["saved"]:
            return
        self._cancel()
        view: MessageView = reply["view"]
        with self._buffer_lock:
            view.flush()
        if view.text.strip():
            self._save("assistant", view.text, reply["persona"])
        reply["saved"] = True

    def on_unmount(self) -> None:
        self._cancel()

    # -- slash commands and the palette -------------------------------------------
    def run_slash(self, line: str) -> None:
        name, _, arg = line[1:].partition(" ")
        name, arg = name.lower(), arg.strip()
        simple = {
            "help": self.action_help,
            "new": self.action_new_conversation,
            "clear": self.action_clear,
            "regen": self.action_regenerate,
            "regenerate": self.action_regenerate,
            "copy": self.action_copy_last,
            "export": self.action_export,
            "list": self.action_conversations,
            "chats": self.action_conversations,
            "memory": self.action_memory,
            "sidebar": self.action_toggle_sidebar,
        }
        if name in simple:
            simple[name]()
        elif name == "persona":
            if arg:
                self.switch_persona(arg)
            else:
                self._list_personas()
        elif name == "personas":
            self._list_personas()
        elif name == "rename":
            if arg:
                self.action_rename(arg)
            else:
                self._system("Usage: /rename NEW TITLE")
        elif name in ("quit", "exit", "q"):
            self.run_action("quit")
        else:
            self._system(f"Unknown command /{name}. Type /help for the list.", error=True)

    def _list_personas(self) -> None:
        lines = [f"- **{p.id}** ({p.name}): {p.greeting}" for p in self.personas.values()]
        self._system("Personas (switch with `/persona ID` or Ctrl+T):\n" + "\n".join(lines))

    def palette_commands(self) -> list[tuple[str, str, Callable[[], Any]]]:
        items: list[tuple[str, str, Callable[[], Any]]] = [
            ("Stop the reply", "Esc: stop generating, keep what was written", self.action_stop),
            ("Regenerate last reply", "Ctrl+R", self.action_regenerate),
            ("Copy last reply", "Ctrl+O: to the clipboard", self.action_copy_last),
            ("Export conversation", "/export: Markdown and JSON into the data folder", self.action_export),
            ("New conversation", "Ctrl+N", self.action_new_conversation),
            ("Clear screen", "/clear: start fresh; the old conversation stays saved", self.action_clear),
            ("Conversations", "Ctrl+L: open, rename, delete", self.action_conversations),
            ("Toggle persona sidebar", "Ctrl+B", self.action_toggle_sidebar),
            ("Next persona", "Ctrl+T", self.action_next_persona),
            ("Memory panel", "F2: what the assistant remembers", self.action_memory),
            ("Help", "F1: key bindings and slash commands", self.action_help),
            ("Quit", "Ctrl+Q", lambda: self.run_action("quit")),
        ]
        for p in self.personas.values():
            items.append((f"Persona: {p.name} ({p.id})", p.greeting, lambda pid=p.id: self.switch_persona(pid)))
        return items


@contextmanager
def _real_stderr() -> Iterator[None]:
    """Give the engine loader a sys.stderr backed by fd 2 while Textual captures sys.stderr.

    The llama.cpp backend silences its C-level logs by redirecting `sys.stderr.fileno()`;
    Textual's capture object reports -1 there, which fails with EBADF.
    """
    captured = sys.stderr
    if _fileno(captured) >= 0:
        yield
        return
    sys.stderr = fd2 = open(2, "w", closefd=False)
    try:
        yield
    finally:
        if sys.stderr is fd2:
            sys.stderr = captured


@contextmanager
def _private_terminal(log_file: Path) -> Iterator[None]:
    """Textual draws on a private copy of the terminal fd; fd 2 goes to a log file.

    C libraries (llama.cpp) write to fd 2 and silence themselves by pointing fd 2 at
    /dev/null while a model loads. On a shared fd that would scribble on the screen or
    swallow Textual's frames; on a private fd neither can happen.
    """
    term = sys.__stderr__
    if term is None or not term.isatty():
        yield
        return
    term.flush()
    private = os.dup(term.fileno())
    saved = os.dup(2)
    try:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        log = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    except OSError:
        log = os.open(os.devnull, os.O_WRONLY)
    os.dup2(log, 2)
    os.close(log)
    sys.__stderr__ = open(private, "w", encoding=term.encoding or "utf-8", errors="replace", closefd=True)  # type: ignore[misc]
    try:
        yield
    finally:
        sys.__stderr__.flush()
        sys.__stderr__.close()
        sys.__stderr__ = term  # type: ignore[misc]
        os.dup2(saved, 2)
        os.close(saved)


def _fileno(stream: Any) -> int:
    try:
        return int(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return -1


def _base_label(spec: str) -> str:
    if not spec or spec in ("default", "gemma3-270m"):
        return "gemma-3-270m"
    if spec in ("smollm2", "smollm2-135m"):
        return "smollm2-135m"
    return Path(spec).stem or spec


_REASONS = {"cancelled": "stopped", "max_tokens": "length limit", "error": "error"}


def _result_note(result: "GenerationResult") -> str:
    return _stats_note(result.text, result.completion_tokens, result.tokens_per_s, result.stop_reason)


def _stats_note(text: str, tokens: int | None, speed: float | None, reason: str | None) -> str:
    """'12 tokens · 9.8 tok/s · length limit' under a reply."""
    bits = [] if text else ["(empty reply)"]
    if tokens is not None:
        bits.append(f"{tokens} tokens")
    if speed:
        bits.append(f"{speed:.1f} tok/s")
    if reason in _REASONS:
        bits.append(_REASONS[reason])
    return " · ".join(bits)


def _note(m) -> str:
    if m.role != "assistant":
        return ""
    return _stats_note(m.content, m.completion_tokens, m.tokens_per_s, m.stop_reason)


def run_app(settings: Settings, base: str | None = None, cont: bool = False) -> int:
    """Entry point for `ohlora chat`; UserError (e.g. unknown persona) surfaces before the UI opens."""
    app = OhloraApp(settings, base=base, cont=cont)
    with _private_terminal(get_paths().data_dir / "tui-stderr.log"):
        result = app.run()
    return int(result or 0)
