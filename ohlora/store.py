"""SQLite store for conversations and messages.

Opened through `ohlora.db.Database` (WAL, named migrations, a busy timeout so a second
running instance waits briefly instead of failing). Each write is
its own short transaction: the user's message is committed before generation starts
and the reply after it ends, so a crash mid-reply loses at most that reply.

The file is never deleted or rewritten on error: a corrupt or locked database raises
`StoreError` (a UserError) whose message says what is wrong and where.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from ohlora.db import Database, DatabaseError, Migration
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


# -- migrations: named, applied in order (ohlora.db) -------------------------------
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


MIGRATIONS = [Migration("conversations-and-messages", _v1)]
SCHEMA_VERSION = len(MIGRATIONS)


class ChatStore:
    """Conversations and messages in one SQLite file; safe to call from several threads."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        try:
            self.database = Database(self.path, MIGRATIONS, label="chat database", busy_ms=BUSY_TIMEOUT_MS)
            self.database.read("SELECT count(*) FROM messages")
        except DatabaseError as exc:
            raise StoreError(str(exc)) from None
        self.db = self.database.con  # the raw connection, for reads in tests and tools

    # -- plumbing -----------------------------------------------------------------
    def _read(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        try:
            return self.database.read(sql, args)
        except DatabaseError as exc:
            raise StoreError(str(exc)) from None

    def _write(self, fn: Callable[[sqlite3.Connection], object]) -> object:
        try:
            with self.database.transaction() as con:
                return fn(con)
        except DatabaseError as exc:
            raise StoreError(str(exc)) from None

    def close(self) -> None:
        self.database.close()

    @property
    def schema_version(self) -> int:
        return self.database.schema_version

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
