"""The one SQLite helper: WAL, a busy timeout, named migrations, transactions.

Both stores (`ohlora.store` for chats, `memory.store` for memories) open their file with
`Database(path, MIGRATIONS, label=...)`. Migrations are named functions applied in order,
each in its own transaction; the names applied are kept in the `_migrations` table and
their count in `PRAGMA user_version` (a file made before `_migrations` existed counts its
first `user_version` migrations as applied). Every write goes through `transaction()`:
BEGIN IMMEDIATE, then COMMIT, or ROLLBACK on any exception. SQLite errors surface as
`DatabaseError` (a UserError) whose message says what is wrong and where.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ohlora.errors import UserError

BUSY_TIMEOUT_MS = 3000


class DatabaseError(UserError):
    """A database that cannot be used right now (locked, corrupt, full, read-only, too new)."""


@dataclass(frozen=True)
class Migration:
    name: str
    apply: Callable[[sqlite3.Connection], None]


def run_script(con: sqlite3.Connection, sql: str) -> None:
    """Run `;`-separated DDL inside the caller's transaction (executescript would commit it)."""
    for stmt in sql.split(";"):
        if stmt.strip():
            con.execute(stmt)


def explain(path: Path, exc: sqlite3.Error, label: str = "database") -> DatabaseError:
    """One clear line for a SQLite error."""
    text = str(exc).lower()
    if "locked" in text or "busy" in text:
        return DatabaseError(f"{path}: the {label} is locked by another running ohlora; close it and retry")
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return DatabaseError(f"{path}: the {label} is corrupt ({exc}); it was left untouched - move it aside to start fresh")
    if "full" in text:
        return DatabaseError(f"{path}: the disk is full; the {label} could not be written (free some space)")
    if "readonly" in text or "unable to open" in text:
        return DatabaseError(f"{path}: cannot write the {label} ({exc})")
    return DatabaseError(f"{path}: {label} error: {exc}")


class Database:
    """One SQLite file, shared by threads behind one lock."""

    def __init__(self, path: Path | str, migrations: Sequence[Migration], *, label: str = "database",
                 busy_ms: int = BUSY_TIMEOUT_MS) -> None:
        self.path = Path(path)
        self.label = label
        self.migrations = list(migrations)
        self._lock = threading.RLock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.con = sqlite3.connect(self.path, timeout=busy_ms / 1000, isolation_level=None,
                                       check_same_thread=False)
        except (sqlite3.Error, OSError) as exc:
            raise DatabaseError(f"{self.path}: cannot open the {label} ({exc})") from None
        self.con.row_factory = sqlite3.Row
        try:
            self.con.execute(f"PRAGMA busy_timeout = {busy_ms}")
            self.con.execute("PRAGMA foreign_keys = ON")
            mode = self.con.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise sqlite3.OperationalError(f"could not switch to WAL (journal_mode={mode})")
            self._migrate()
        except sqlite3.Error as exc:
            self.con.close()
            raise explain(self.path, exc, label) from None
        except DatabaseError:
            self.con.close()
            raise

    # -- migrations -----------------------------------------------------------------
    def _migrate(self) -> None:
        """Apply the migrations not yet applied; an up-to-date file is only read (opening works
        while another process holds the write lock)."""
        known = [m.name for m in self.migrations]
        version = self.con.execute("PRAGMA user_version").fetchone()[0]
        if version > len(known):
            raise DatabaseError(f"{self.path}: the {self.label} has schema v{version}, newer than this "
                                f"ohlora knows (v{len(known)}); upgrade ohlora")
        has_table = self.con.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_migrations'").fetchone()
        done = {r[0] for r in self.con.execute("SELECT name FROM _migrations")} if has_table else set()
        unknown = done - set(known)
        if unknown:
            raise DatabaseError(f"{self.path}: the {self.label} has migrations this ohlora does not know "
                                f"({', '.join(sorted(unknown))}); upgrade ohlora")
        if has_table and done == set(known):
            return
        with self.transaction() as db:
            db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)")
            if not done and version:  # made before _migrations existed: its first `version` are applied
                db.executemany("INSERT OR IGNORE INTO _migrations VALUES (?, ?)",
                               [(n, time.time()) for n in known[:version]])
                done = set(known[:version])
        for number, migration in enumerate(self.migrations, start=1):
            if migration.name in done:
                continue
            with self.transaction() as db:
                migration.apply(db)
                db.execute("INSERT INTO _migrations VALUES (?, ?)", (migration.name, time.time()))
                db.execute(f"PRAGMA user_version = {number}")

    @property
    def applied(self) -> list[str]:
        return [r[0] for r in self.read("SELECT name FROM _migrations ORDER BY rowid")]

    @property
    def schema_version(self) -> int:
        return int(self.read("PRAGMA user_version")[0][0])

    # -- reads and writes ----------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: BEGIN IMMEDIATE (the write lock up front), COMMIT, or ROLLBACK."""
        with self._lock:
            try:
                self.con.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise explain(self.path, exc, self.label) from None
            try:
                yield self.con
            except sqlite3.Error as exc:
                self._rollback()
                raise explain(self.path, exc, self.label) from None
            except BaseException:
                self._rollback()
                raise
            try:
                self.con.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise explain(self.path, exc, self.label) from None

    def _rollback(self) -> None:
        try:
            self.con.execute("ROLLBACK")
        except sqlite3.Error:  # the failed statement may already have rolled it back
            pass

    def read(self, sql: str, args: Sequence | dict = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return self.con.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise explain(self.path, exc, self.label) from None

    def read_one(self, sql: str, args: Sequence | dict = ()) -> sqlite3.Row | None:
        rows = self.read(sql, args)
        return rows[0] if rows else None

    @property
    def lock(self) -> threading.RLock:
        """Held by `transaction()` and `read()`; take it to make several calls one step."""
        return self._lock

    def close(self) -> None:
        with self._lock:
            self.con.close()
