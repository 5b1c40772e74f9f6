"""Modal screens: help, conversation list, rename prompt, memory panel, edit, search, chat settings."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from rich.cells import cell_len, set_cell_size
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import DataTable, Input, Label, ListItem, ListView, Static

if TYPE_CHECKING:
    from ohlora.store import ChatStore

class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,f1,q", "dismiss", "Close")]

    def on_mount(self) -> None:
        self.query_one("#help-scroll").focus()

    def compose(self) -> ComposeResult:
        from ohlora.tui.commands import help_rows

        keys, slash = help_rows()
        text = Text()
        text.append("Keys\n", style="bold")
        for key, what in keys:
            text.append(f"  {key:<24}", style="bold cyan")
            text.append(f"{what}\n")
        text.append("\nSlash commands\n", style="bold")
        for cmd, what in slash:
            text.append(f"  {cmd:<24}", style="bold cyan")
            text.append(f"{what}\n")
        text.append("\nEsc closes this help.", style="dim")
        with Vertical(id="dialog", classes="tall"):
            yield Label("ohlora help", classes="title")
            with VerticalScroll(id="help-scroll"):
                yield Static(text, id="help-text")


class PromptScreen(ModalScreen[str | None]):
    """Ask for one line of text (e.g. a new title); Esc cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, question: str, value: str = "") -> None:
        super().__init__()
        self.question = question
        self.value = value

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.question, classes="title")
            yield Input(self.value, id="prompt-input")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ConversationsScreen(ModalScreen[int | str | None]):
    """Saved conversations. Dismisses with an id to open, 'new', or None."""

    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("enter", "open", "Open"),
        Binding("n", "new", "New"),
        Binding("r", "rename", "Rename"),
        Binding("d,delete", "delete", "Delete"),
    ]

    def __init__(self, store: "ChatStore", current: int | None, names: dict[str, str]) -> None:
        super().__init__()
        self.store = store
        self.current = current
        self.names = names
        self._armed_delete: int | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="wide"):
            yield Label("Conversations", classes="title")
            yield DataTable(id="conversations", cursor_type="row", zebra_stripes=True)
            yield Label("Enter open · n new · r rename · d delete (press twice) · Esc close", classes="hint")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("id", "title", "persona", "messages", "updated")
        self.refresh_rows()
        table.focus()

    def refresh_rows(self) -> None:
        table = self.query_one(DataTable)
        table.clear()
        for c in self.store.list_conversations():
            mark = "▶ " if c.id == self.current else ""
            title = c.title or "(untitled)"
            if cell_len(title) > 40:
                title = set_cell_size(title, 39) + "…"
            updated = time.strftime("%Y-%m-%d %H:%M", time.localtime(c.updated_at))
            table.add_row(
                str(c.id), mark + title, self.names.get(c.persona, c.persona),
                str(c.message_count), updated, key=str(c.id),
            )

    def _selected(self) -> int | None:
        table = self.query_one(DataTable)
        if table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        return int(key.value) if key and key.value else None

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def action_open(self) -> None:
        cid = self._selected()
        if cid is not None:
            self.dismiss(cid)

    def action_new(self) -> None:
        self.dismiss("new")

    def action_close(self) -> None:
        self.dismiss(None)

    def action_rename(self) -> None:
        cid = self._selected()
        if cid is None:
            return
        title = self.store.get_conversation(cid).title

        def done(value: str | None) -> None:
            if value is None:
                return
            try:
                self.store.rename(cid, value)
            except Exception as exc:  # UserError / StoreError
                self.notify(str(exc), severity="error")
            self.refresh_rows()

        self.app.push_screen(PromptScreen(f"New title for conversation {cid}", title), done)

    def action_delete(self) -> None:
        cid = self._selected()
        if cid is None:
            return
        if self._armed_delete != cid:
            self._armed_delete = cid
            self.notify(f"press d again to delete conversation {cid}", timeout=3)
            return
        self._armed_delete = None
        try:
            self.store.delete(cid)
        except Exception as exc:
            self.notify(str(exc), severity="error")
        else:
            self.notify(f"conversation {cid} deleted", timeout=2)
        self.refresh_rows()


class MemoryItem(ListItem):
    def __init__(self, mid: Any, text: str) -> None:
        super().__init__(Label(text, markup=False))
        self.mid = mid


class MemoryScreen(ModalScreen[None]):
    """What the assistant recalled for the last reply, and everything it remembers.

    `memory` is any object with `list()` (items with `.id` and `.text`) and `forget(id)`;
    None means memory is off or the memory package is not installed.
    """

    BINDINGS = [Binding("escape,f2", "dismiss", "Close"), Binding("d,delete", "forget", "Forget")]

    def __init__(self, memory: Any, recalled: list[str], off_reason: str = "") -> None:
        super().__init__()
        self.memory = memory
        self.recalled = recalled
        self.off_reason = off_reason

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="wide"):
            yield Label("Memory", classes="title")
            if self.memory is None:
                yield Static(self.off_reason or "memory is off", id="memory-off", markup=False)
                return
            recalled = "\n".join(f"• {t}" for t in self.recalled) or "(nothing recalled for the last reply)"
            yield Label("In the last reply's prompt (recalled for your message, and why):", classes="hint")
            yield Static(recalled, id="memory-recalled", markup=False)
            yield Label("Everything remembered (d forgets the selected one):", classes="hint")
            yield ListView(id="memory-list")

    def on_mount(self) -> None:
        if self.memory is not None:
            self.reload()

    def reload(self) -> None:
        view = self.query_one("#memory-list", ListView)
        view.clear()
        try:
            items = list(self.memory.list())
        except Exception as exc:
            self.notify(f"memory: {exc}", severity="error")
            return
        for item in items:
            mid = getattr(item, "id", None)
            label = str(getattr(item, "text", item))
            view.append(MemoryItem(mid, f"#{mid}  {label}" if mid is not None else label))
        if items:
            view.index = 0
        view.focus()

    def action_forget(self) -> None:
        if self.memory is None:
            return
        view = self.query_one("#memory-list", ListView)
        item = view.highlighted_child
        if isinstance(item, MemoryItem) and item.mid is not None:
            try:
                self.memory.forget(item.mid)
            except Exception as exc:
                self.notify(f"memory: {exc}", severity="error")
            else:
                self.notify("forgotten", timeout=2)
            self.reload()


class EditScreen(ModalScreen[str | None]):
    """Edit one message's text: Ctrl+S saves, Esc cancels."""

    BINDINGS = [Binding("ctrl+s", "save", "Save"), Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, text: str) -> None:
        super().__init__()
        self.title_text = title
        self.text = text

    def compose(self) -> ComposeResult:
        from textual.widgets import TextArea

        with Vertical(id="dialog", classes="wide"):
            yield Label(self.title_text, classes="title")
            yield TextArea(self.text, id="edit-text", soft_wrap=True, show_line_numbers=False)
            yield Label("Ctrl+S save · Esc cancel", classes="hint")

    def on_mount(self) -> None:
        self.query_one("#edit-text").focus()

    def action_save(self) -> None:
        from textual.widgets import TextArea

        self.dismiss(self.query_one("#edit-text", TextArea).text)

    def action_cancel(self) -> None:
        self.dismiss(None)


class HitItem(ListItem):
    def __init__(self, hit: Any, text: str) -> None:
        super().__init__(Label(text, markup=False))
        self.hit = hit


class SearchScreen(ModalScreen["tuple[int, int] | None"]):
    """Search every chat (SQLite FTS5); Enter on a hit dismisses with (conversation id, message id)."""

    BINDINGS = [Binding("escape", "close", "Close"), Binding("down", "results", "Results", show=False)]

    def __init__(self, store: "ChatStore", names: dict[str, str], query: str = "") -> None:
        super().__init__()
        self.store = store
        self.names = names
        self.query_text = query

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="wide"):
            yield Label("Search every chat", classes="title")
            yield Input(self.query_text, id="search-input", placeholder="words to find (each also as a prefix)")
            yield ListView(id="search-results")
            yield Label("Type to search · ↓ to the results · Enter jump to the message · Esc close", classes="hint",
                        id="search-hint")

    def on_mount(self) -> None:
        self.query_one("#search-input").focus()
        if self.query_text:
            self.run_search(self.query_text)

    def on_input_changed(self, event: Input.Changed) -> None:
        self.run_search(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.action_results()

    def run_search(self, query: str) -> None:
        view = self.query_one("#search-results", ListView)
        view.clear()
        try:
            hits = self.store.search(query)
        except Exception as exc:  # a StoreError: say it, keep the screen
            self.query_one("#search-hint", Label).update(f"search failed: {exc}")
            return
        for h in hits:
            who = "you" if h.role == "user" else self.names.get(h.persona, h.persona)
            when = time.strftime("%Y-%m-%d", time.localtime(h.created_at))
            title = h.title or "(untitled)"
            if cell_len(title) > 28:
                title = set_cell_size(title, 27) + "…"
            view.append(HitItem(h, f"#{h.conversation_id} {title} · {when} · {who}: {h.snippet}"))
        n = len(hits)
        self.query_one("#search-hint", Label).update(
            (f"{n} hit{'s' if n != 1 else ''} · " if query.strip() else "")
            + "↓ to the results · Enter jump to the message · Esc close")

    def action_results(self) -> None:
        view = self.query_one("#search-results", ListView)
        if view.children:
            view.index = view.index or 0
            view.focus()

    def on_list_view_selected(self, event: ListView.Selected) -> None:
        if isinstance(event.item, HitItem):
            self.dismiss((event.item.hit.conversation_id, event.item.hit.message_id))

    def action_close(self) -> None:
        self.dismiss(None)


class SettingsScreen(ModalScreen["dict | None"]):
    """This chat's generation settings; an empty field means the persona's value. Ctrl+S saves."""

    BINDINGS = [Binding("ctrl+s", "save", "Save"), Binding("escape", "cancel", "Cancel")]

    def __init__(self, current: dict, defaults: dict) -> None:
        super().__init__()
        self.current = current
        self.defaults = defaults

    def compose(self) -> ComposeResult:
        from textual.containers import Horizontal

        with Vertical(id="dialog"):
            yield Label("Generation settings for this chat", classes="title")
            for key, default in self.defaults.items():
                with Horizontal(classes="setting"):
                    yield Label(f"{key:<16}", classes="setting-name")
                    value = self.current.get(key)
                    yield Input("" if value is None else str(value), id=f"set-{key}",
                                placeholder=f"{default} (persona)")
            yield Label("Empty: the persona's value · Tab next · Ctrl+S save · Esc cancel", classes="hint",
                        id="settings-hint")

    def on_mount(self) -> None:
        self.query(Input).first().focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.action_save()

    def action_save(self) -> None:
        from ohlora.conversation import parse_setting
        from ohlora.errors import UserError

        values = {}
        for key in self.defaults:
            raw = self.query_one(f"#set-{key}", Input).value.strip()
            if raw:
                try:
                    values[key] = parse_setting(key, raw)
                except UserError as exc:
                    self.query_one("#settings-hint", Label).update(str(exc))
                    return
        self.dismiss(values)

    def action_cancel(self) -> None:
        self.dismiss(None)
