"""Sending a message and streaming the reply into its view.

`send` commits the user's row (`Conversation.begin`) before any model work. A reply streams in a
thread worker into the view's MarkdownStream (`call_from_thread(view.write, piece)`; Textual
batches the re-renders), one generation at a time (`app.engine_lock`, shared with background
alternatives). `done` closes the stream and writes the note under the reply.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Awaitable, Callable, Iterable

from ohlora.conversation import Turn
from ohlora.errors import UserError
from ohlora.tui.part import AppPart
from ohlora.tui.terminal import real_stderr
from ohlora.tui.widgets import MessageView, reply_note

if TYPE_CHECKING:
    from ohlora.tui.app import OhloraApp

Stream = Callable[[], Iterable[str]]
Done = Callable[[MessageView, str], Awaitable[None]]  # (view, error) once a stream other than a reply ends


class Replies(AppPart):
    """The user's message, the reply streamed after it, and Esc that stops it."""

    DRAFT_PAUSE = 0.4  # seconds without a keystroke before what is typed is read ahead

    def __init__(self, app: OhloraApp) -> None:
        super().__init__(app)
        self.said_save_error = ""  # a store failure is said once, not under every reply
        self._draft_timer = None

    def typed(self, text: str) -> None:
        """The input changed: once the user pauses, read the prompt for what is typed
        (`ChatSession.warm_draft`), so a reply to it starts sooner when it is sent."""
        if self._draft_timer is not None:
            self._draft_timer.stop()
        self._draft_timer = None
        if text.strip() and not text.lstrip().startswith("/"):
            self._draft_timer = self.app.set_timer(self.DRAFT_PAUSE, partial(self._read_draft, text))

    def _read_draft(self, text: str) -> None:
        app = self.app
        if app.generating or not app.model_ready.is_set() or app.model_error:
            return
        app.run_worker(partial(self._warm_draft, text), name="draft", group="draft", exclusive=True, thread=True)

    def _warm_draft(self, text: str) -> None:
        app = self.app
        if not app.engine_lock.acquire(blocking=False):  # a reply or an alternative is being written
            return
        try:
            app.session.warm_draft(text)
        except Exception:  # noqa: BLE001 - only a head start; the reply reads it anyway
            pass
        finally:
            app.engine_lock.release()

    def send(self, text: str) -> None:
        app = self.app
        turn = app.conversation.begin(text)  # committed now, before any model work
        app.add_view(MessageView("user", turn.text, "you", db_id=turn.user_id))
        if turn.save_error:
            self.said_save_error = turn.save_error
            app.system_line(f"Not saved: {turn.save_error}", error=True)
        self.start(lambda: app.conversation.reply(turn))

    def stop(self) -> None:
        if self.app.generating:
            self.app.conversation.stop()
            self.app.notify("stopping…", timeout=1.5)

    def start(self, stream: Stream, view: MessageView | None = None, done: Done | None = None, note: str = "") -> None:
        """Stream into a new reply view (or into `view`: a continued reply, an alternative)."""
        app = self.app
        app.swipes.stop_background()
        p = app.session.persona
        note = note or ("reading your message…" if app.model_ready.is_set() else "waiting for the model to load…")
        if view is None:
            view = app.add_view(MessageView("assistant", "", p.name, note=note))
        else:
            view.set_note(note)
        view.add_class("streaming")
        app.generating = True
        app.status.show()
        app.run_worker(partial(self._generate, stream, view, done), name="generate", group="reply", exclusive=True,
                       thread=True)

    def _generate(self, stream: Stream, view: MessageView, done: Done | None) -> None:
        app = self.app
        app.model_ready.wait()
        with app.engine_lock:  # a background alternative, told to stop, finishes first
            error = self._stream_into(stream, view)
        if done is not None:
            app.from_thread(done, view, error)
            return
        app.from_thread(self.done, view, app.conversation.last, error)
        if not error:
            with app.engine_lock:  # the user reads and types now: read the next turn's start
                try:
                    app.session.warm_next()
                except Exception:  # noqa: BLE001 - only a head start; the next reply reads it anyway
                    pass

    def _stream_into(self, stream: Stream, view: MessageView) -> str:
        app = self.app
        error = ""
        if app.model_error:
            error = f"no model: {app.model_error}"
        else:
            if app.generation_overrides:
                p = app.session.persona
                app.session.persona = replace(p, generation=replace(p.generation, **app.generation_overrides))
            first = True
            try:
                with real_stderr():  # a persona on another base loads its engine here
                    for piece in stream():
                        if first:
                            app.from_thread(view.set_note, "writing…")
                            first = False
                        app.from_thread(view.write, piece)
            except UserError as exc:
                error = str(exc)
            except Exception as exc:  # keep the app alive; say what went wrong
                error = f"{type(exc).__name__}: {exc}"
        return error

    async def end(self, view: MessageView) -> None:
        """The stream into `view` is over: close it; the app may write again."""
        await view.end_stream()
        view.remove_class("streaming")
        self.app.generating = False

    async def done(self, view: MessageView, turn: Turn | None, error: str) -> None:
        app = self.app
        await self.end(view)
        if app.session._engine is not None:
            app.base_name = app.session._engine.base.name
        if turn is not None:
            view.db_id = turn.reply_id
        result = turn.result if turn is not None else None
        if result is not None and not error:
            view.set_content(result.text)
            view.set_note(reply_note(result.text, result.completion_tokens, result.tokens_per_s, result.stop_reason))
            app.status.show(f"{result.tokens_per_s:.1f} tok/s" if result.tokens_per_s else "")
        else:
            view.set_note(f"error: {error}")
            view.add_class("error")
            app.status.show()
        if turn is not None and turn.save_error and turn.save_error != self.said_save_error:
            self.said_save_error = turn.save_error
            app.system_line(f"Not saved: {turn.save_error}", error=True)
        if turn is not None and turn.memory_error:
            app.notify(turn.memory_error, severity="warning", timeout=5)
        app.message_list.scroll_end(animate=False)
        if turn is not None and turn.reply_id is not None and result is not None and not error:
            app.swipes.start_background(turn.reply_id)
