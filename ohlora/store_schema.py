"""The chat database's schema: named migrations, applied in order by `ohlora.db`.

Append only: a database keeps the names it has applied, so a file made by any earlier
version opens and upgrades. `ohlora.store` reads and writes the rows.
"""

from __future__ import annotations

import sqlite3

from ohlora.db import Migration


def _v1(db: sqlite3.Connection) -> None:
    db.execute(
        """CREATE TABLE conversations (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            title TEXT NOT NULL DEFAULT '',
            persona TEXT NOT NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE messages (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
            content TEXT NOT NULL,
            persona TEXT NOT NULL,
            created_at REAL NOT NULL,
            prompt_tokens INTEGER,
            completion_tokens INTEGER,
            tokens_per_s REAL,
            stop_reason TEXT
        )"""
    )
    db.execute("CREATE INDEX messages_by_conversation ON messages(conversation_id, id)")
    db.execute("CREATE INDEX conversations_by_update ON conversations(updated_at)")


def _swipes(db: sqlite3.Connection) -> None:
    db.execute(
        """CREATE TABLE swipes (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            content TEXT NOT NULL,
            created_at REAL NOT NULL,
            prompt_tokens INTEGER,
            completion_tokens INTEGER,
            tokens_per_s REAL,
            stop_reason TEXT,
            shown INTEGER NOT NULL DEFAULT 0,
            original TEXT,
            UNIQUE (message_id, position)
        )"""
    )
    db.execute("ALTER TABLE messages ADD COLUMN swipe INTEGER")


def _edits(db: sqlite3.Connection) -> None:
    db.execute("ALTER TABLE messages ADD COLUMN original TEXT")
    db.execute("ALTER TABLE messages ADD COLUMN edited_at REAL")


def _forks_and_settings(db: sqlite3.Connection) -> None:
    db.execute("ALTER TABLE conversations ADD COLUMN parent_id INTEGER")
    db.execute("ALTER TABLE conversations ADD COLUMN forked_from INTEGER")
    db.execute("ALTER TABLE conversations ADD COLUMN generation TEXT NOT NULL DEFAULT '{}'")


def _search(db: sqlite3.Connection) -> None:
    """Full-text search over every message (FTS5, kept in step by triggers). A SQLite built
    without FTS5 skips this; search then scans with LIKE."""
    try:
        db.execute("CREATE VIRTUAL TABLE messages_fts USING fts5(content, content='messages', content_rowid='id',"
                   " tokenize='unicode61 remove_diacritics 2')")
    except sqlite3.OperationalError as exc:
        if "no such module" in str(exc):
            return
        raise
    for trigger in (  # one statement each: a trigger body holds semicolons
        "CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN"
        " INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content); END",
        "CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN"
        " INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.id, old.content); END",
        "CREATE TRIGGER messages_fts_update AFTER UPDATE OF content ON messages BEGIN"
        " INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.id, old.content);"
        " INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content); END",
    ):
        db.execute(trigger)
    db.execute("INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')")


# Append only: a database keeps the names it has applied (ohlora.db); v1 files open and upgrade.
MIGRATIONS = [
    Migration("conversations-and-messages", _v1),
    Migration("message-swipes", _swipes),
    Migration("message-edits", _edits),
    Migration("conversation-forks-and-settings", _forks_and_settings),
    Migration("message-search", _search),
]
SCHEMA_VERSION = len(MIGRATIONS)
