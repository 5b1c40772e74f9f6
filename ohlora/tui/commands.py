"""The chat app's commands, in one table: key bindings, slash commands, palette entries and help.

Each `Command` names an app action (`action_<name>` on OhloraApp). The app's BINDINGS,
its slash-command dispatch (`run_slash`), the command palette (`palette`) and the help
screen are all generated from `COMMANDS`, so a command is added or renamed in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable

from textual.app import SystemCommand
from textual.binding import Binding

if TYPE_CHECKING:
    from ohlora.tui.app import OhloraApp


@dataclass(frozen=True)
class Command:
    action: str  # OhloraApp.action_<action>; takes the slash argument when `arg` is set
    title: str  # palette entry
    help: str
    keys: str = ""  # Textual key names, comma-separated ("ctrl+r")
    key_label: str = ""  # how help shows them ("Ctrl+R")
    slash: tuple[str, ...] = ()  # "/regen", "/regenerate"
    arg: str = ""  # "NAME": the slash command takes an argument
    footer: str = ""  # short footer label; empty: not shown in the footer
    palette: bool = True


COMMANDS: tuple[Command, ...] = (
    Command("stop", "Stop the reply", "stop the reply (keeps what was written)", "escape", "Esc", palette=True),
    Command("help", "Help", "key bindings and slash commands", "f1", "F1", ("help",), footer="Help"),
    Command("next_persona", "Next persona", "switch to the next persona (from the next reply)", "ctrl+t", "Ctrl+T",
            footer="Persona"),
    Command("persona", "Switch persona…", "switch persona by id or name, from the next reply", slash=("persona",),
            arg="NAME", palette=False),
    Command("list_personas", "List personas", "list the personas", slash=("personas",)),
    Command("toggle_sidebar", "Toggle persona sidebar", "show/hide the persona sidebar", "ctrl+b", "Ctrl+B",
            ("sidebar",), footer="Sidebar"),
    Command("regenerate", "Regenerate last reply", "regenerate the last reply", "ctrl+r", "Ctrl+R",
            ("regen", "regenerate"), footer="Regenerate"),
    Command("swipe_prev", "Previous alternative", "previous alternative of the focused (or last) reply", "alt+left",
            "Alt+←"),
    Command("swipe_next", "Next alternative", "next alternative of the focused (or last) reply; past the last, "
            "write a new one", "alt+right", "Alt+→", ("swipe",)),
    Command("continue_reply", "Continue the reply", "extend the last reply from where it stopped", "ctrl+g", "Ctrl+G",
            ("continue",)),
    Command("edit_message", "Edit a message", "edit the focused message (or your last one) and go on from there",
            slash=("edit",)),
    Command("fork_here", "Fork from a message", "a new conversation up to the focused message (or the last one)",
            slash=("fork",)),
    Command("copy_last", "Copy last reply", "copy the last reply to the clipboard", "ctrl+o", "Ctrl+O", ("copy",),
            footer="Copy"),
    Command("conversations", "Conversations", "conversation list (open, rename, delete, new)", "ctrl+l", "Ctrl+L",
            ("list", "chats"), footer="Chats"),
    Command("new_conversation", "New conversation", "start a new conversation (the old one stays saved)", "ctrl+n",
            "Ctrl+N", ("new", "clear"), footer="New"),
    Command("rename", "Rename conversation…", "rename this conversation", slash=("rename",), arg="TITLE",
            palette=False),
    Command("export", "Export conversation", "save as Markdown + JSON in the data folder", slash=("export",)),
    Command("search", "Search every chat", "search all conversations and jump to a message", "ctrl+f", "Ctrl+F",
            ("search", "find"), arg="WORDS"),
    Command("chat_settings", "Chat settings", "this chat's temperature, top_p, min_p, repeat penalty, max tokens",
            "f3", "F3", ("settings",)),
    Command("set", "Set a chat setting…", "set one: /set temperature 0.9 (/set alone lists them)", slash=("set",),
            arg="KEY VALUE", palette=False),
    Command("lore", "Lorebook", "lorebook entries the last message triggered (and the ones left out)", "f4", "F4",
            ("lore",)),
    Command("memory", "Memory panel", "what was recalled for the last reply, and everything remembered", "f2", "F2",
            ("memory",), footer="Memory"),
    Command("remember", "Remember…", "remember a fact (like telling it in a message)", slash=("remember",),
            arg="TEXT", palette=False),
    Command("forget", "Forget…", "forget a memory by its id (see the memory panel)", slash=("forget",), arg="ID",
            palette=False),
    Command("quit", "Quit", "quit (a reply being written is kept)", "ctrl+q", "Ctrl+Q", ("quit", "exit", "q")),
)

# keys that belong to widgets, shown in help but bound elsewhere
WIDGET_KEYS = (
    ("Enter", "send the message"),
    ("Shift+Enter or Ctrl+J", "new line in the message"),
    ("↑ (empty input) or Tab", "focus a message: ←/→ alternatives, e edit, f fork, c copy, ↑/↓ move, Esc back"),
    ("Ctrl+P", "command palette (every action)"),
)


def bindings() -> list[Binding]:
    return [Binding(c.keys, c.action, c.footer or c.title, show=bool(c.footer), priority=c.action == "quit")
            for c in COMMANDS if c.keys]


def by_slash() -> dict[str, Command]:
    return {name: c for c in COMMANDS for name in c.slash}


def help_rows() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(keys, slash commands) as (label, what) rows for the help screen."""
    keys = [WIDGET_KEYS[0], WIDGET_KEYS[1]] + [(c.key_label, c.help) for c in COMMANDS if c.keys] + list(WIDGET_KEYS[2:])
    slash = [("/" + c.slash[0] + (f" {c.arg}" if c.arg else ""), c.help) for c in COMMANDS if c.slash]
    return keys, slash


def run_slash(app: OhloraApp, line: str) -> None:
    """Run `/name arg` as the app action the table names for it."""
    name, _, arg = line[1:].partition(" ")
    command = by_slash().get(name.lower())
    if command is None:
        app.system_line(f"Unknown command /{name}. Type /help for the list.", error=True)
        return
    method = getattr(app, f"action_{command.action}")
    if command.arg:
        method(arg.strip())
    elif command.action == "quit":
        app.call_later(app.run_action, "quit")  # run_action is a coroutine: schedule it, don't drop it
    else:
        method()


def palette(app: OhloraApp) -> Iterable[SystemCommand]:
    """The command palette: the table's entries, one per persona, and the theme picker."""
    for c in COMMANDS:
        if c.palette:
            label = f"{c.help} ({c.key_label})" if c.key_label else c.help
            yield SystemCommand(c.title, label, lambda a=c.action: app.run_action(a))
    for p in app.personas.values():
        yield SystemCommand(f"Persona: {p.name} ({p.id})", p.greeting, lambda pid=p.id: app.switcher.switch(pid))
    yield SystemCommand("Theme", "Change the current theme", app.action_change_theme)
