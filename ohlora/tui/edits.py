"""Going on differently from a saved message: regenerate, continue, edit, fork.

Ctrl+R writes the last reply again, Ctrl+G continues it; on a focused message (↑ from an empty
input) e edits it and f forks a new conversation up to it. Saving belongs to `Conversation`.
"""

from __future__ import annotations


from ohlora.errors import UserError
from ohlora.tui.part import AppPart
from ohlora.tui.screens import EditScreen
from ohlora.tui.widgets import MessageView, message_note


class Edits(AppPart):
    """Regenerate, continue, edit and fork."""

    def regenerate(self) -> None:
        app = self.app
        if app.still_writing():
            return
        app.swipes.stop_background()
        views = [v for v in app.message_list.query(MessageView)
                 if v.role in ("user", "assistant") and not v.has_class("greeting")]
        if len(views) < 2 or views[-1].role != "assistant" or views[-2].role != "user":
            app.notify("nothing to regenerate yet", severity="warning")
            return
        views[-1].remove()
        app.replies.start(app.conversation.regenerate)

    def continue_reply(self) -> None:
        app = self.app
        if app.still_writing():
            return
        rows = app.conversation.messages()
        view = app.view_of(rows[-1].id) if rows and rows[-1].role == "assistant" else None
        if view is None:
            app.notify("nothing to continue: the last message is not a reply", severity="warning")
            return
        app.replies.start(app.conversation.continue_last, view, note="continuing…")

    def _focused_message(self, role: str | None = None) -> MessageView | None:
        """The focused saved message, or the last saved one (of `role`)."""
        focused = self.app.focused
        if isinstance(focused, MessageView) and focused.db_id is not None:
            return focused
        views = [v for v in self.app.message_list.query(MessageView)
                 if v.db_id is not None and (role is None or v.role == role)]
        return views[-1] if views else None

    def edit_message(self) -> None:
        app = self.app
        if app.still_writing():
            return
        view = self._focused_message("user")
        if view is None:
            app.notify("no saved message to edit yet", severity="warning")
            return
        mid = view.db_id
        assert mid is not None
        who = "your message" if view.role == "user" else f"{view.author}'s reply"

        def done(text: str | None) -> None:
            if text is None or text == view.text:
                return
            try:
                msg = app.conversation.edit(mid, text)
            except UserError as exc:
                app.system_line(str(exc), error=True)
                return
            view.set_content(msg.content)
            if view.role == "assistant":
                view.set_note(message_note(msg))
                app.notify("reply edited: the chat goes on from your text", timeout=3)
                return
            rows = app.conversation.messages()
            if rows[-1].id == mid:  # unanswered: answer the edited text
                app.replies.start(app.conversation.answer_last)
            elif len(rows) >= 2 and rows[-2].id == mid and rows[-1].role == "assistant":
                old = app.view_of(rows[-1].id)  # its reply answered the old text: write a new one
                if old is not None:
                    old.remove()
                app.replies.start(app.conversation.regenerate)
            else:
                app.notify("edited; the messages after it stay. Press f on it to fork a conversation that "
                           "goes on from the edited text", timeout=6)

        app.push_screen(EditScreen(f"Edit {who} (Ctrl+S save · Esc cancel)", view.text), done)

    def fork_here(self) -> None:
        app = self.app
        if app.still_writing():
            return
        view = self._focused_message()
        if view is None:
            app.notify("nothing to fork yet: send a message first", severity="warning")
            return
        old = app.conversation_id
        try:
            new = app.conversation.fork(view.db_id)  # type: ignore[arg-type]
        except UserError as exc:
            app.system_line(str(exc), error=True)
            return
        app.chats.open(new)
        app.system_line(f"Forked conversation {old} into {new} up to this message; {old} stays as it was.")
        rows = app.conversation.messages()
        if rows and rows[-1].role == "user":
            app.replies.start(app.conversation.answer_last)
