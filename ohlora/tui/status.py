"""What loads behind the chat and what the status line says about it.

The engine loads in a thread worker after first paint; memory loads its embedder in its own
thread and reports progress with `MemoryStatus`. The status bar, the input's placeholder and
the subtitle (the conversation's title) are written here.
"""

from __future__ import annotations

from pathlib import Path

from textual.message import Message

from ohlora.errors import UserError
from ohlora.tui.part import AppPart
from ohlora.tui.terminal import real_stderr
from ohlora.tui.widgets import ChatInput, StatusBar


def base_label(spec: str) -> str:
    """The base model's name for the status bar, until the engine says its own."""
    if not spec or spec in ("default", "gemma3-270m"):
        return "gemma-3-270m"
    if spec in ("smollm2", "smollm2-135m"):
        return "smollm2-135m"
    return Path(spec).stem or spec


class MemoryStatus(Message):
    """Posted from memory's thread (post_message is thread-safe and never blocks that thread)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class Status(AppPart):
    """Loads the engine and memory; keeps the status bar, placeholder and subtitle current."""

    # -- the engine ---------------------------------------------------------------
    def load_model(self) -> None:
        self.app.run_worker(self._load_model, name="load_model", group="model", exclusive=True, thread=True)

    def _load_model(self) -> None:
        app = self.app
        try:
            with real_stderr():
                app.session.engine()
        except Exception as exc:  # UserError or an engine failure: show it, keep the app up
            app.model_error = str(exc)
        app.model_ready.set()
        app.from_thread(self._model_loaded)

    def _model_loaded(self) -> None:
        app = self.app
        if app.model_error:
            app.system_line(f"The model could not be loaded: {app.model_error}", error=True)
        elif app.session._engine is not None:
            app.base_name = app.session._engine.base.name
        app.mark_time("model_ready")
        self.show()

    # -- memory -------------------------------------------------------------------
    def start_memory(self) -> None:
        """Open memory; its embedder loads (on the first run: builds) in memory's own thread."""
        from ohlora.registry import open_memory

        app = self.app
        try:
            memory = open_memory(app.settings, start=False)
        except Exception as exc:  # a locked / corrupt memory.db: the chat goes on without memory
            app.memory_off = f"memory is off: {exc}"
            self.memory(app.memory_off)
            return
        if memory is None:
            app.memory_off = "memory is off: the memory package is not installed in this build"
            return
        memory.on_status = lambda text: app.post_message(MemoryStatus(text))
        app.memory = memory
        app.session.memory = memory
        memory.start()
        self.memory(memory.status)

    def memory(self, text: str) -> None:
        """Show memory's state in the status bar (a failure also becomes `memory_off`)."""
        app = self.app
        if app.memory is not None and app.memory.state == "failed":
            app.memory_off = text
        short = {"memory: ready": "memory on"}.get(text, text)
        app.query_one(StatusBar).memory = short if len(short) < 70 else short[:69] + "…"

    # -- what the screen says -------------------------------------------------------
    def show(self, speed: str | None = None) -> None:
        """Status bar, placeholder and subtitle from the app's state (`speed`: the last reply's tok/s)."""
        app = self.app
        bar = app.query_one(StatusBar)
        bar.persona = app.session.persona.name
        bar.base = app.base_name
        bar.backend = app.settings.backend
        if app.model_error:
            bar.state = "model failed"
        elif not app.model_ready.is_set():
            bar.state = "loading model…" if app.load_model else "model not loaded"
        elif app.generating:
            bar.state = "writing… (Esc stops)"
        else:
            bar.state = "ready"
        if speed is not None:
            bar.speed = speed
        field = app.query_one(ChatInput)
        if app.model_ready.is_set() and not app.model_error:
            field.placeholder = f"Message {app.session.persona.name} · Enter send · Shift+Enter or Ctrl+J newline · /help"
        elif app.model_error:
            field.placeholder = "The model failed to load (see above); /help still works"
        else:
            field.placeholder = "Loading the model… you can type already"
        app.sub_title = "new conversation"
        if app.conversation_id is not None and app.store is not None:
            try:
                app.sub_title = app.store.get_conversation(app.conversation_id).title or "new conversation"
            except UserError:
                pass
