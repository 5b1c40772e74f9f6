"""Memory that never makes the user wait: the embedder loads in a background thread.

The first run builds the built-in embedder (about two minutes). Until it is ready,
`recall()` returns nothing (the reply comes without memories) and `observe()` / `add()`
queue the text in memory.db, committed at once, so nothing told meanwhile is lost, even if
the process dies: the queue is worked off as soon as the embedder is ready (at the next
start, if need be). `status` is one line for the UI; `wait()` and `drain()` let a one-shot
command (`ohlora ask`) wait for the embedder and for its own observation.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Callable

from memory.store import MemoryStore
from memory.types import Memory, Recalled
from ohlora.errors import UserError

LOADING, READY, FAILED = "loading", "ready", "failed"


class BackgroundMemory:
    def __init__(self, store: MemoryStore, *, start: bool = True,
                 on_status: Callable[[str], None] | None = None) -> None:
        self.store = store
        self.state = LOADING
        self.status = "memory: loading the embedder…"
        self.error = ""
        self.on_status = on_status
        self.last_error = ""  # the latest failure while observing (the UI shows it once)
        self._wake = threading.Condition()
        self._work = 0  # queued items not yet processed
        self._ready = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None
        if start:
            self.start()

    # -- lifecycle ------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._work = self.store.pending_count()
            self._thread = threading.Thread(target=self._run, name="ohlora-memory", daemon=True)
            self._thread.start()

    def set_status(self, text: str) -> None:
        self.status = text
        if self.on_status is not None:
            try:
                self.on_status(text)
            except Exception:  # a UI that has gone away
                pass

    def _run(self) -> None:
        try:
            self.store.embedder  # noqa: B018 - loads (and on the first run builds) the model
            self.store.recall("warm-up", k=1)  # loads the search matrix, embedding old rows if needed
        except Exception as exc:  # noqa: BLE001 - any loader failure turns memory off, not the app
            self.state, self.error = FAILED, str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"
            self.set_status(f"memory is off: {self.error}")
            self._ready.set()
            return
        self.state = READY
        self.set_status("memory: ready")
        self._ready.set()
        while True:
            with self._wake:
                while not self._closed and self.store.pending_count() == 0:
                    self._work = 0
                    self._wake.notify_all()
                    self._wake.wait()
                if self._closed:
                    return
            try:
                self.store.process_pending(limit=1)
            except Exception as exc:  # noqa: BLE001 - reported, the queue row stays for the next start
                self.last_error = f"memory could not store a fact: {exc}"
                self.set_status(self.last_error)
                with self._wake:
                    self._work = 0
                    self._wake.notify_all()
                    self._wake.wait(timeout=30)

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify_all()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout=5)
        self.store.close()

    # -- readiness ------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return self.state == READY

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the embedder is ready (True) or failed / timed out (False)."""
        self._ready.wait(timeout)
        return self.ready

    def drain(self, timeout: float | None = None) -> bool:
        """Block until every queued message has been processed (False on timeout or failure)."""
        if not self.wait(timeout):
            return False
        with self._wake:
            return self._wake.wait_for(lambda: self.store.pending_count() == 0 or self._closed, timeout)

    # -- the memory API the app uses --------------------------------------------------
    def recall(self, text: str, k: int = 3, *, persona: str | None = None,
               now: datetime | None = None) -> list[Recalled]:
        if not self.ready:
            return []
        return self.store.recall(text, k, persona=persona, now=now)

    def observe(self, text: str, *, persona: str | None = None, conversation_id: int | None = None,
                now: datetime | None = None) -> None:
        self._queue("observe", text, persona, conversation_id, now)

    def add(self, text: str, *, persona: str | None = None, now: datetime | None = None) -> None:
        self._queue("add", MemoryStore._check_text(text), persona, None, now)

    def _queue(self, kind: str, text: str, persona, conversation_id, now) -> None:
        if not isinstance(text, str) or not text.strip():
            return
        self.store.enqueue(text, kind=kind, persona=persona, conversation_id=conversation_id, now=now)
        with self._wake:
            self._work += 1
            self._wake.notify_all()

    def list(self, include_superseded: bool = False) -> list[Memory]:
        return self.store.list(include_superseded)

    def forget(self, memory_id) -> Memory:
        return self.store.forget(memory_id)
