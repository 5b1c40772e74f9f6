"""The memory SQLite file: WAL mode, schema version in PRAGMA user_version, one function per version."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from ohlora.errors import UserError


def _script(con: sqlite3.Connection, sql: str) -> None:
    """Run `;`-separated DDL inside the caller's transaction (executescript would commit it)."""
    for stmt in sql.split(";"):
        if stmt.strip():
            con.execute(stmt)


def _v1(con: sqlite3.Connection) -> None:
    _script(
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


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_v1]


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating and migrating as needed) the memory database at `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        con.row_factory = sqlite3.Row
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA foreign_keys=ON")
        con.execute("PRAGMA busy_timeout=5000")
        version = con.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise UserError(f"{path}: not a usable memory database ({exc})") from None
    if version > len(MIGRATIONS):
        raise UserError(f"{path}: schema version {version} is newer than this ohlora knows ({len(MIGRATIONS)})")
    for number in range(version, len(MIGRATIONS)):
        con.execute("BEGIN IMMEDIATE")
        try:
            MIGRATIONS[number](con)
            con.execute(f"PRAGMA user_version = {number + 1}")
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
    return con
