"""SQLite store for conversations and messages.

WAL mode, `PRAGMA user_version` migrations (one function per version), a busy
timeout so a second running instance waits briefly instead of failing. Each write is
its own short transaction: the user's message is committed before generation starts
and the reply after it ends, so a crash mid-reply loses at most that reply.

The file is never deleted or rewritten on error: a corrupt or locked database raises
`StoreError` (a UserError) whose message says what is wrong and where.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterator

from ohlora.errors import UserError

BUSY_TIMEOUT_MS = 3000
TITLE_CHARS = 48


class StoreError(UserError):
    """The conversation database cannot be used (locked, corrupt, too new)."""


@dataclass(frozen=True)
class Conversation:
    id: int
    title: str
    persona: str
    created_at: float
    updated_at: float
    message_count: int = 0


@dataclass(frozen=True)
class Message:
    id: int
    conversation_id: int
    role: str  # user | assistant
    content: str
    persona: str
    created_at: float
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    tokens_per_s: float | None = None
    stop_reason: str | None = None


# -- migrations: one function per schema version ---------------------------------
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


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_v1]
SCHEMA_VERSION = len(MIGRATIONS)


def _explain(path: Path, exc: sqlite3.Error) -> StoreError:
    text = str(exc).lower()
    if "locked" in text or "busy" in text:
        return StoreError(f"{path}: the chat database is locked by another running ohlora; close it and retry")
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return StoreError(
            f"{path}: the chat database is corrupt ({exc}); it was left untouched - move it aside to start fresh"
        )
    if "readonly" in text or "unable to open" in text:
        return StoreError(f"{path}: cannot write the chat database ({exc})")
    return StoreError(f"{path}: chat database error: {exc}")


class ChatStore:
    """Conversations and messages in one SQLite file; safe to call from several threads."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self._lock = threading.RLock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
            )
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"{self.path}: cannot open the chat database ({exc})") from None
        self.db.row_factory = sqlite3.Row
        try:
            self.db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self.db.execute("PRAGMA foreign_keys = ON")
            mode = self.db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise sqlite3.OperationalError(f"could not switch to WAL (journal_mode={mode})")
            self._migrate()
            self.db.execute("SELECT count(*) FROM messages").fetchone()
        except sqlite3.Error as exc:
            self.db.close()
            raise _explain(self.path, exc) from None
        except StoreError:
            self.db.close()
            raise

    # -- plumbing -----------------------------------------------------------------
    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: chat database schema v{version} is newer than this ohlora (v{SCHEMA_VERSION}); upgrade ohlora"
            )
        for number in range(version + 1, SCHEMA_VERSION + 1):
            with self._tx() as db:
                MIGRATIONS[number - 1](db)
                db.execute(f"PRAGMA user_version = {number}")

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE: take the write lock up front)."""
        with self._lock:
            try:
                self.db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise _explain(self.path, exc) from None
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            try:
                self.db.execute("COMMIT")
            except sqlite3.Error as exc:
                self.db.execute("ROLLBACK")
                raise _explain(self.path, exc) from None

    def _read(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return self.db.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise _explain(self.path, exc) from None

    def _write(self, fn: Callable[[sqlite3.Connection], object]) -> object:
        try:
            with self._tx() as db:
                return fn(db)
        except sqlite3.Error as exc:
            raise _explain(self.path, exc) from None

    def close(self) -> None:
        with self._lock:
            self.db.close()

    @property
    def schema_version(self) -> int:
        return self._read("PRAGMA user_version")[0][0]

    # -- conversations ------------------------------------------------------------
    def new_conversation(self, persona: str, title: str = "") -> int:
        now = time.time()
        return int(
            self._write(
                lambda db: db.execute(
                    "INSERT INTO conversations (title, persona, created_at, updated_at) VALUES (?, ?, ?, ?)",
                    (title, persona, now, now),
                ).lastrowid
            )
        )

    def get_conversation(self, cid: int) -> Conversation:
        rows = self._read(
            "SELECT c.*, (SELECT count(*) FROM messages m WHERE m.conversation_id = c.id) AS n "
            "FROM conversations c WHERE c.id = ?",
            (cid,),
        )
        if not rows:
            raise UserError(f"no conversation with id {cid} (see the conversation list)")
        return _conversation(rows[0])

    def list_conversations(self, limit: int = 500) -> list[Conversation]:
        rows = self._read(
            "SELECT c.*, (SELECT count(*) FROM messages m WHERE m.conversation_id = c.id) AS n "
            "FROM conversations c ORDER BY c.updated_at DESC, c.id DESC LIMIT ?",
            (limit,),
        )
        return [_conversation(r) for r in rows]

    def last_conversation(self) -> Conversation | None:
        found = self.list_conversations(limit=1)
        return found[0] if found else None

    def rename(self, cid: int, title: str) -> None:
        title = " ".join(title.split())[:200]
        if not title:
            raise UserError("empty title: type a name for the conversation")
        self.get_conversation(cid)
        self._write(lambda db: db.execute("UPDATE conversations SET title = ? WHERE id = ?", (title, cid)))

    def delete(self, cid: int) -> None:
        self.get_conversation(cid)

        def run(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM messages WHERE conversation_id = ?", (cid,))
            db.execute("DELETE FROM conversations WHERE id = ?", (cid,))

        self._write(run)

    # -- messages -----------------------------------------------------------------
    def add_message(
        self,
        cid: int,
        role: str,
        content: str,
        persona: str,
        *,
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
        tokens_per_s: float | None = None,
        stop_reason: str | None = None,
    ) -> int:
        """Append one message in its own committed transaction; names the conversation if untitled."""
        now = time.time()

        def run(db: sqlite3.Connection) -> int:
            mid = db.execute(
                "INSERT INTO messages (conversation_id, role, content, persona, created_at, prompt_tokens,"
                " completion_tokens, tokens_per_s, stop_reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (cid, role, content, persona, now, prompt_tokens, completion_tokens, tokens_per_s, stop_reason),
            ).lastrowid
            db.execute(
                "UPDATE conversations SET updated_at = ?, persona = ?,"
                " title = CASE WHEN title = '' AND ? = 'user' THEN ? ELSE title END WHERE id = ?",
                (now, persona, role, make_title(content), cid),
            )
            return int(mid)

        return int(self._write(run))

    def messages(self, cid: int) -> list[Message]:
        rows = self._read("SELECT * FROM messages WHERE conversation_id = ? ORDER BY id", (cid,))
        return [Message(**{k: r[k] for k in r.keys()}) for r in rows]

    def delete_message(self, mid: int) -> None:
        self._write(lambda db: db.execute("DELETE FROM messages WHERE id = ?", (mid,)))

    # -- export -------------------------------------------------------------------
    def export_json(self, cid: int) -> dict:
        conv = self.get_conversation(cid)
        return {
            "format": "ohlora-conversation",
            "version": 1,
            "conversation": asdict(conv),
            "messages": [asdict(m) for m in self.messages(cid)],
        }

    def export_markdown(self, cid: int, names: dict[str, str] | None = None) -> str:
        """The conversation as Markdown; `names` maps persona ids to display names."""
        conv = self.get_conversation(cid)
        names = names or {}
        lines = [f"# {conv.title or 'Conversation'}", "", f"- id: {conv.id}", f"- started: {_iso(conv.created_at)}", ""]
        for m in self.messages(cid):
            who = "You" if m.role == "user" else names.get(m.persona, m.persona)
            lines.append(f"## {who} · {_iso(m.created_at)}")
            lines.append("")
            lines.append(m.content)
            if m.stop_reason == "cancelled":
                lines += ["", "*(stopped)*"]
            lines.append("")
        return "\n".join(lines).rstrip() + "\n"

    def export_files(self, cid: int, folder: Path, names: dict[str, str] | None = None) -> tuple[Path, Path]:
        """Write `<folder>/conversation-<id>.md` and `.json`; returns both paths."""
        folder.mkdir(parents=True, exist_ok=True)
        md = folder / f"conversation-{cid}.md"
        js = folder / f"conversation-{cid}.json"
        md.write_text(self.export_markdown(cid, names), encoding="utf-8")
        js.write_text(json.dumps(self.export_json(cid), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        return md, js


def make_title(text: str) -> str:
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= TITLE_CHARS else one_line[: TITLE_CHARS - 1] + "…"


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


def _conversation(row: sqlite3.Row) -> Conversation:
    return Conversation(row["id"], row["title"], row["persona"], row["created_at"], row["updated_at"], row["n"])


def open_store(path: Path | None = None) -> ChatStore:
    """The user's chat store (config's db_file unless a path is given)."""
    if path is None:
        from ohlora.config import get_paths

        path = get_paths().db_file
    return ChatStore(path)
