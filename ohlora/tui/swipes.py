"""Alternatives of a reply (swipes): browse them, write one more, write some ahead.

←/→ on a focused reply (or Alt+←/→ from the input) browse its alternatives; → past the last
writes a new one, streamed into the same view. For the last reply `swipes_ahead` more are
written in the background while the user reads; a new message, a regenerate or another chat
stops that (`stop_background`). Background writing takes `app.engine_lock` like a reply does.
"""

from __future__ import annotations

import threading
from functools import partial
from typing import TYPE_CHECKING

from ohlora.conversation import Conversation
from ohlora.errors import UserError
from ohlora.tui.part import AppPart
from ohlora.tui.terminal import real_stderr
from ohlora.tui.widgets import MessageView, message_note

if TYPE_CHECKING:
    from ohlora.tui.app import OhloraApp


class Swipes(AppPart):
    """Alternatives of a reply: on screen, on request and in the background."""

    def __init__(self, app: OhloraApp) -> None:
        super().__init__(app)
        self.cancel = threading.Event()  # set: the background alternative stops
        self.mid: int | None = None  # the reply whose alternatives are being written in the background
        self.job = 0
        self.reveal: int | None = None  # show the background alternative of this reply when it is done

    def target_reply(self) -> MessageView | None:
        """The focused reply, or (from the input) the last one."""
        app = self.app
        focused = app.focused
        if isinstance(focused, MessageView):
            return focused if focused.role == "assistant" and focused.db_id is not None else None
        views = [v for v in app.message_list.query(MessageView)
                 if v.role == "assistant" and v.db_id is not None and not v.has_class("greeting")]
        return views[-1] if views else None

    # -- written in the background -------------------------------------------------
    def start_background(self, mid: int) -> None:
        """Write `swipes_ahead` alternatives of a new reply while the user reads it."""
        app = self.app
        ahead = max(0, int(app.settings.swipes_ahead))
        if not ahead or app.store is None or app.model_error:
            return
        try:
            have = len(app.store.swipes(mid))
        except UserError:
            return
        n = 1 + ahead - max(have, 1)
        if n <= 0:
            return
        self.cancel.clear()
        self.mid = mid
        self.job += 1
        app.run_worker(partial(self._background, app.conversation, mid, n, self.job), name="background",
                       group="swipes", thread=True)

    def stop_background(self) -> None:
        """A new message, a regenerate, another chat: the background alternative stops now."""
        if self.mid is not None:
            self.cancel.set()
            self.app.session.cancel()
            self.mid = None
            self.reveal = None

    def _background(self, convo: Conversation, mid: int, n: int, job: int) -> None:
        app = self.app
        try:
            with app.engine_lock:
                for _ in range(n):
                    if self.cancel.is_set():
                        break
                    stream = convo.alternative(mid, shown=False, keep_partial=False)
                    try:
                        with real_stderr():
                            for _piece in stream:
                                if self.cancel.is_set():
                                    break
                    except Exception:  # noqa: BLE001 - nothing the user asked for failed; stop quietly
                        break
                    finally:
                        stream.close()
                    alt = convo.last_alternative
                    if alt is not None and alt.position is not None:
                        app.from_thread(self._background_wrote, convo, mid)
        finally:
            app.from_thread(self._background_ended, mid, job)

    def _background_wrote(self, convo: Conversation, mid: int) -> None:
        app = self.app
        view = app.view_of(mid) if convo is app.conversation else None
        if view is None or app.store is None:
            return
        count = len(app.store.swipes(mid))
        pos = view.swipe[0] if view.swipe else 0
        if self.reveal == mid:
            self.reveal = None
            self.show(view, count - 1)
        else:
            view.set_swipe(pos, count, writing=self.mid == mid and not self.cancel.is_set())

    def _background_ended(self, mid: int, job: int) -> None:
        if job != self.job:
            return
        self.mid = None
        view = self.app.view_of(mid)
        if view is not None and view.swipe is not None:
            view.set_swipe(*view.swipe)
        if self.reveal == mid and view is not None:  # asked for one more, and none came: write it now
            self.reveal = None
            self._start_alternative(view)

    # -- browsing, and one more on request ---------------------------------------------
    def show(self, view: MessageView, position: int) -> None:
        """Make alternative `position` the chosen one and show it in `view`."""
        app = self.app
        assert app.store is not None and view.db_id is not None
        try:
            msg = app.conversation.choose(view.db_id, position)
        except UserError as exc:
            app.notify(str(exc), severity="warning")
            return
        view.set_content(msg.content)
        view.set_note(message_note(msg))
        view.set_swipe(position, len(app.store.swipes(view.db_id)))

    def swipe(self, delta: int) -> None:
        app = self.app
        view = self.target_reply()
        if view is None:
            app.notify("no reply to browse: focus one of the persona's replies (↑ from an empty input)",
                       severity="warning")
            return
        if app.still_writing("still writing: wait, or press Esc to stop it"):
            return
        if app.store is None:
            app.system_line(f"Alternatives are not kept: {app.store_error}", error=True)
            return
        count = max(len(app.store.swipes(view.db_id)), 1)
        pos = view.swipe[0] if view.swipe else 0
        new = pos + delta
        if new < 0:
            app.notify("this is the first alternative", timeout=2)
        elif new < count:
            self.show(view, new)
        elif self.mid == view.db_id:
            self.reveal = view.db_id  # the background one is on its way: show it when done
            view.set_swipe(pos, count, writing=True)
        else:
            self._start_alternative(view)

    def _start_alternative(self, view: MessageView) -> None:
        """Write one more alternative of this reply, streamed into its view."""
        mid = view.db_id
        assert mid is not None
        convo = self.app.conversation
        before = (view.text, view.note, view.swipe)
        count = view.swipe[1] if view.swipe else 1
        view.set_content("")
        view.set_swipe(view.swipe[0] if view.swipe else 0, count, writing=True)
        self.app.replies.start(lambda: convo.alternative(mid, shown=True), view,
                               lambda v, error: self._alternative_done(v, convo, before, error),
                               "writing an alternative…")

    async def _alternative_done(self, view: MessageView, convo: Conversation, before: tuple, error: str) -> None:
        app = self.app
        await app.replies.end(view)
        alt = convo.last_alternative
        if alt is not None and alt.position is not None and convo is app.conversation:
            self.show(view, alt.position)
        else:
            text, note, swipe = before
            view.set_content(text)
            view.set_note(note)
            view.set_swipe(*(swipe or (None,)))
            app.notify(f"no alternative: {error or 'stopped before it wrote anything'}", severity="warning")
        app.status.show()
