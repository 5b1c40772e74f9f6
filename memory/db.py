"""The memory SQLite file: its named migrations, opened through the one SQLite helper (`ohlora.db`)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ohlora.db import Database, Migration, run_script


def _memories_and_vectors(con: sqlite3.Connection) -> None:
    run_script(
        con,
        """
        CREATE TABLE memories (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            text TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT,
            persona TEXT,
            conversation_id INTEGER,
            event_date TEXT,
            slot TEXT,
            slot_value TEXT,
            source TEXT NOT NULL DEFAULT 'explicit',
            superseded_by INTEGER
        );
        CREATE INDEX memories_slot ON memories(slot);
        CREATE TABLE vectors (
            memory_id INTEGER PRIMARY KEY REFERENCES memories(id) ON DELETE CASCADE,
            model TEXT NOT NULL,
            dim INTEGER NOT NULL,
            vec BLOB NOT NULL
        );
        """
    )


def _pending(con: sqlite3.Connection) -> None:
    """Messages waiting to be observed (or /remember'ed) until the embedder is ready."""
    con.execute(
        """CREATE TABLE pending (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            kind TEXT NOT NULL CHECK (kind IN ('observe', 'add')),
            text TEXT NOT NULL,
            persona TEXT,
            conversation_id INTEGER,
            said_at TEXT NOT NULL
        )"""
    )


def _terms(con: sqlite3.Connection) -> None:
    """The lexical terms (Kiwi morphemes / stemmed words) of each memory, so opening a large
    store does not run the tokenizer over every memory again (10k memories: ~10 s)."""
    con.execute("ALTER TABLE memories ADD COLUMN terms TEXT")


MIGRATIONS = [Migration("memories-and-vectors", _memories_and_vectors), Migration("pending-observations", _pending),
              Migration("memory-terms", _terms)]


BUSY_MS = 5000  # a second process's write makes ours wait this long before "locked"


def open_db(path: Path) -> Database:
    """Open (creating and migrating as needed) the memory database at `path`."""
    return Database(path, MIGRATIONS, label="memory database", busy_ms=BUSY_MS)
