"""The conversations: one opened on screen, a new one (Ctrl+N), the list (Ctrl+L), search (Ctrl+F),
export, rename."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ohlora.config import get_paths
from ohlora.conversation import Conversation
from ohlora.errors import UserError
from ohlora.tui.part import AppPart
from ohlora.tui.screens import ConversationsScreen, SearchScreen
from ohlora.tui.widgets import MessageView, message_note

if TYPE_CHECKING:
    from ohlora.store import ChatStore


class Chats(AppPart):
    """Which conversation is on screen, and commands on the saved ones (the store)."""

    def start_new(self) -> None:
        """A fresh screen; the conversation row is created with the first message."""
        app = self.app
        app.swipes.stop_background()
        app.conversation = Conversation(app.session, app.store)
        app.session.history = []
        app.message_list.remove_children()
        app.show_greeting()
        app.status.show()

    def open(self, cid: int) -> None:
        """Show saved conversation `cid`, each reply with its note and alternatives count."""
        app = self.app
        assert app.store is not None
        app.swipes.stop_background()
        app.conversation = Conversation.open(app.session, app.store, cid, known_personas=set(app.personas))
        messages = app.conversation.messages()
        counts = app.store.swipe_counts(cid)
        app.message_list.remove_children()
        for m in messages:
            swipe = (m.swipe or 0, counts[m.id]) if counts.get(m.id, 0) > 1 else None
            app.message_list.mount(MessageView(m.role, m.content, self._author(m.role, m.persona), db_id=m.id,
                                               note=message_note(m), swipe=swipe))
        if not messages:
            app.show_greeting()
        app.message_list.scroll_end(animate=False)
        app.switcher.sync_sidebar()
        app.status.show()

    def _author(self, role: str, persona_id: str) -> str:
        if role == "user":
            return "you"
        p = self.app.personas.get(persona_id)
        return p.name if p else persona_id

    def new(self) -> None:
        if not self.app.still_writing():
            self.start_new()

    def _store(self, what: str) -> ChatStore | None:
        """The store, if it opened and no reply is being written (else say why not, and None)."""
        app = self.app
        if app.store is None:
            app.system_line(f"{what}: {app.store_error}", error=True)
            return None
        return None if app.still_writing() else app.store

    def open_list(self) -> None:
        app = self.app
        store = self._store("Saved conversations are unavailable")
        if store is None:
            return

        def chosen(result: int | str | None) -> None:
            if result == "new":
                self.start_new()
            elif isinstance(result, int):
                self.open(result)
            elif app.conversation_id is not None:
                try:
                    store.get_conversation(app.conversation_id)
                except UserError:  # the open conversation was deleted
                    self.start_new()
                else:
                    app.status.show()

        app.push_screen(ConversationsScreen(store, app.conversation_id, app.persona_names()), chosen)

    def search(self, words: str = "") -> None:
        app = self.app
        store = self._store("Search needs the saved conversations")
        if store is None:
            return

        def chosen(result: tuple[int, int] | None) -> None:
            if result is None:
                return
            cid, mid = result
            if cid != app.conversation_id:
                try:
                    self.open(cid)
                except UserError as exc:
                    app.system_line(str(exc), error=True)
                    return
            view = app.view_of(mid)
            if view is not None:
                view.focus()
                app.call_after_refresh(app.message_list.scroll_to_widget, view, animate=False, top=True)

        app.push_screen(SearchScreen(store, app.persona_names(), words), chosen)

    def export(self) -> None:
        app = self.app
        if app.store is None or app.conversation_id is None:
            app.system_line("Nothing to export yet: send a message first.")
            return
        try:
            md, js = app.store.export_files(app.conversation_id, get_paths().data_dir / "exports", app.persona_names())
        except (OSError, UserError) as exc:
            app.system_line(f"Export failed: {exc}", error=True)
            return
        app.system_line(f"Exported to:\n\n- `{md}`\n- `{js}`")

    def rename(self, title: str = "") -> None:
        app = self.app
        if not title:
            app.system_line("Usage: /rename NEW TITLE")
            return
        if app.store is None or app.conversation_id is None:
            app.system_line("Nothing to rename yet: send a message first.")
            return
        app.attempt(app.store.rename, app.conversation_id, title)
        app.status.show()
