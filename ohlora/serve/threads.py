"""serve.db: who owns a conversation made through the API, and where a stateless client's chat went.

The chat store (`ohlora.db`) has no users: it is the machine owner's, as in the TUI. The server
keeps two small tables beside it, in `<data dir>/serve.db`:

- `conversation_users(conversation_id, user)`: a conversation begun by API user U. One without
  a row belongs to the owner (requests that name no user), so the owner's TUI conversations can
  be read and continued through the API, and the API's owner conversations show in the TUI.
- `threads(key, conversation_id, message_count)`: a hash of (user, system text, every stored
  message) after each saved reply. A client that resends the whole history each time (SillyTavern,
  Open WebUI) sends exactly that history next time, so its message lands in the same stored
  conversation; a history that matches an older state (an edit, a regenerate) starts a new one.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from pathlib import Path
from typing import Iterable

from ohlora.db import Database, Migration, run_script


def _v1(con: sqlite3.Connection) -> None:
    run_script(
        con,
        """
        CREATE TABLE conversation_users (
            conversation_id INTEGER PRIMARY KEY,
            user TEXT NOT NULL,
            created_at REAL NOT NULL
        );
        CREATE INDEX conversation_users_by_user ON conversation_users(user);
        CREATE TABLE threads (
            key TEXT PRIMARY KEY,
            conversation_id INTEGER NOT NULL,
            message_count INTEGER NOT NULL,
            updated_at REAL NOT NULL
        );
        """,
    )


MIGRATIONS = [Migration("conversation-users-and-threads", _v1)]


def thread_key(user: str | None, system: str, messages: Iterable[tuple[str, str]]) -> str:
    data = json.dumps([user or "", system, [[r, c] for r, c in messages]], ensure_ascii=False)
    return hashlib.sha256(data.encode("utf-8")).hexdigest()


class ServeIndex:
    def __init__(self, path: Path) -> None:
        self.db = Database(path, MIGRATIONS, label="server database")

    def owner(self, conversation_id: int) -> str | None:
        row = self.db.read_one("SELECT user FROM conversation_users WHERE conversation_id = ?", (conversation_id,))
        return row["user"] if row else None

    def set_owner(self, conversation_id: int, user: str | None) -> None:
        if user is None:
            return
        with self.db.transaction() as con:
            con.execute("INSERT OR REPLACE INTO conversation_users VALUES (?, ?, ?)",
                        (conversation_id, user, time.time()))

    def owned(self, user: str) -> list[int]:
        return [r[0] for r in self.db.read(
            "SELECT conversation_id FROM conversation_users WHERE user = ? ORDER BY conversation_id", (user,))]

    def others(self) -> set[int]:
        """Conversations that belong to some API user (not to the owner)."""
        return {r[0] for r in self.db.read("SELECT conversation_id FROM conversation_users")}

    def find(self, key: str) -> tuple[int, int] | None:
        row = self.db.read_one("SELECT conversation_id, message_count FROM threads WHERE key = ?", (key,))
        return (row[0], row[1]) if row else None

    def remember(self, key: str, conversation_id: int, message_count: int) -> None:
        with self.db.transaction() as con:
            con.execute("INSERT OR REPLACE INTO threads VALUES (?, ?, ?, ?)",
                        (key, conversation_id, message_count, time.time()))

    def close(self) -> None:
        self.db.close()
