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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from ohlora.db import Database, DatabaseError
from ohlora.errors import UserError
from ohlora.store_schema import MIGRATIONS

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
    parent_id: int | None = None  # forked from this conversation
    forked_from: int | None = None  # ... at this message (its last copied row)
    generation: dict = field(default_factory=dict)  # per-chat generation settings (over the persona's)


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
    swipe: int | None = None  # the chosen alternative's position (None: never swiped)
    original: str | None = None  # what the model wrote, when the user edited it
    edited_at: float | None = None


@dataclass(frozen=True)
class Swipe:
    """One alternative of an assistant message; the message row holds the chosen one's text."""

    id: int
    message_id: int
    position: int
    content: str
    created_at: float
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    tokens_per_s: float | None = None
    stop_reason: str | None = None
    shown: int = 0  # the user has seen it (only seen alternatives become rejected examples)
    original: str | None = None


@dataclass(frozen=True)
class SearchHit:
    conversation_id: int
    message_id: int
    title: str
    role: str
    persona: str
    snippet: str  # the matched text with [brackets] around the hit
    created_at: float




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
        return [_message(r) for r in rows]

    def delete_message(self, mid: int) -> None:
        self._write(lambda db: db.execute("DELETE FROM messages WHERE id = ?", (mid,)))

    def message(self, mid: int) -> Message:
        rows = self._read("SELECT * FROM messages WHERE id = ?", (mid,))
        if not rows:
            raise UserError(f"no message with id {mid}")
        return _message(rows[0])

    def update_message(self, mid: int, content: str, **stats) -> None:
        """Replace a reply's text and stats (a continued reply); its chosen alternative follows."""
        cols = [k for k in ("prompt_tokens", "completion_tokens", "tokens_per_s", "stop_reason") if k in stats]
        sets = ", ".join(["content = ?"] + [f"{k} = ?" for k in cols])
        args = (content, *[stats[k] for k in cols])

        def run(db: sqlite3.Connection) -> None:
            db.execute(f"UPDATE messages SET {sets} WHERE id = ?", (*args, mid))
            db.execute(f"UPDATE swipes SET {sets} WHERE message_id = ? AND position ="
                       " (SELECT swipe FROM messages WHERE id = ?)", (*args, mid, mid))

        self._write(run)

    def edit_message(self, mid: int, content: str) -> Message:
        """The user's edit: the text changes, what the model wrote is kept in `original` (once)."""
        now = time.time()
        self.message(mid)

        def run(db: sqlite3.Connection) -> None:
            db.execute("UPDATE messages SET original = COALESCE(original, content), content = ?, edited_at = ? WHERE id = ? AND content != ?", (content, now, mid, content))
            db.execute("UPDATE swipes SET original = COALESCE(original, content), content = ? WHERE message_id = ?"
                       " AND position = (SELECT swipe FROM messages WHERE id = ?) AND content != ?",
                       (content, mid, mid, content))
            db.execute("UPDATE conversations SET updated_at = ? WHERE id = (SELECT conversation_id FROM messages"
                       " WHERE id = ?)", (now, mid))

        self._write(run)
        return self.message(mid)

    # -- swipes: the alternatives of an assistant message -------------------------
    def swipes(self, mid: int) -> list[Swipe]:
        rows = self._read("SELECT * FROM swipes WHERE message_id = ? ORDER BY position", (mid,))
        return [Swipe(**{k: r[k] for k in r.keys()}) for r in rows]

    def swipe_counts(self, cid: int) -> dict[int, int]:
        """{message id: number of alternatives} for the replies of a conversation that have some."""
        rows = self._read("SELECT s.message_id, count(*) FROM swipes s JOIN messages m ON m.id = s.message_id"
                          " WHERE m.conversation_id = ? GROUP BY s.message_id", (cid,))
        return {r[0]: r[1] for r in rows}

    def add_swipe(self, mid: int, content: str, *, shown: bool = False, **stats) -> int:
        """Keep one more alternative of an assistant message; returns its position. The first one
        makes the message's own text position 0 (chosen until the user picks another)."""
        now = time.time()

        def run(db: sqlite3.Connection) -> int:
            m = db.execute("SELECT * FROM messages WHERE id = ?", (mid,)).fetchone()
            if m is None or m["role"] != "assistant":
                raise UserError(f"message {mid} is not a reply: only replies have alternatives")
            if m["swipe"] is None:
                db.execute(
                    "INSERT INTO swipes (message_id, position, content, created_at, prompt_tokens, completion_tokens,"
                    " tokens_per_s, stop_reason, shown, original) VALUES (?, 0, ?, ?, ?, ?, ?, ?, 1, ?)",
                    (mid, m["content"], m["created_at"], m["prompt_tokens"], m["completion_tokens"],
                     m["tokens_per_s"], m["stop_reason"], m["original"]))
                db.execute("UPDATE messages SET swipe = 0 WHERE id = ?", (mid,))
            pos = db.execute("SELECT COALESCE(MAX(position), -1) + 1 FROM swipes WHERE message_id = ?",
                             (mid,)).fetchone()[0]
            db.execute(
                "INSERT INTO swipes (message_id, position, content, created_at, prompt_tokens, completion_tokens,"
                " tokens_per_s, stop_reason, shown) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (mid, pos, content, now, stats.get("prompt_tokens"), stats.get("completion_tokens"),
                 stats.get("tokens_per_s"), stats.get("stop_reason"), int(shown)))
            return int(pos)

        return int(self._write(run))

    def choose_swipe(self, mid: int, position: int) -> Message:
        """Make an alternative the message's text (what the history, exports and training read)."""

        def run(db: sqlite3.Connection) -> None:
            sw = db.execute("SELECT * FROM swipes WHERE message_id = ? AND position = ?", (mid, position)).fetchone()
            if sw is None:
                raise UserError(f"message {mid} has no alternative {position}")
            db.execute("UPDATE messages SET content = ?, prompt_tokens = ?, completion_tokens = ?, tokens_per_s = ?,"
                       " stop_reason = ?, original = ?, swipe = ? WHERE id = ?",
                       (sw["content"], sw["prompt_tokens"], sw["completion_tokens"], sw["tokens_per_s"],
                        sw["stop_reason"], sw["original"], position, mid))
            db.execute("UPDATE swipes SET shown = 1 WHERE id = ?", (sw["id"],))

        self._write(run)
        return self.message(mid)

    # -- forks, per-chat settings, search ------------------------------------------
    def fork(self, cid: int, mid: int) -> int:
        """A new conversation holding this one's messages up to `mid` (their alternatives too)."""
        conv = self.get_conversation(cid)
        msg = self.message(mid)
        if msg.conversation_id != cid:
            raise UserError(f"message {mid} is not in conversation {cid}")
        now = time.time()
        title = make_title(f"{conv.title or 'conversation'} (fork)")

        def run(db: sqlite3.Connection) -> int:
            new = db.execute(
                "INSERT INTO conversations (title, persona, created_at, updated_at, parent_id, forked_from, generation)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (title, msg.persona, now, now, cid, mid, json.dumps(conv.generation))).lastrowid
            for m in db.execute("SELECT * FROM messages WHERE conversation_id = ? AND id <= ? ORDER BY id",
                                (cid, mid)).fetchall():
                keys = [k for k in m.keys() if k not in ("id", "conversation_id")]
                copied = db.execute(
                    f"INSERT INTO messages (conversation_id, {', '.join(keys)}) VALUES (?{', ?' * len(keys)})",
                    (new, *[m[k] for k in keys])).lastrowid
                db.execute(
                    "INSERT INTO swipes (message_id, position, content, created_at, prompt_tokens, completion_tokens,"
                    " tokens_per_s, stop_reason, shown, original) SELECT ?, position, content, created_at,"
                    " prompt_tokens, completion_tokens, tokens_per_s, stop_reason, shown, original FROM swipes"
                    " WHERE message_id = ?", (copied, m["id"]))
            return int(new)

        return int(self._write(run))

    def set_generation(self, cid: int, values: dict) -> None:
        """This chat's generation settings (over the persona's); {} goes back to the persona's."""
        self.get_conversation(cid)
        self._write(lambda db: db.execute("UPDATE conversations SET generation = ? WHERE id = ?",
                                          (json.dumps(values, sort_keys=True), cid)))

    @property
    def has_fts(self) -> bool:
        return bool(self._read("SELECT 1 FROM sqlite_master WHERE name = 'messages_fts'"))

    def search(self, query: str, limit: int = 50) -> list[SearchHit]:
        """Every chat's messages holding all the words of `query` (each word also as a prefix, so
        '사과' finds '사과를'), newest first."""
        words = [w for w in query.split() if w.strip('"*')]
        if not words:
            return []
        if self.has_fts:
            match = " ".join('"' + w.replace('"', '""') + '"*' for w in words)
            sql = ("SELECT m.id, m.conversation_id, m.role, m.persona, m.created_at, c.title,"
                   " snippet(messages_fts, 0, '[', ']', '…', 10) AS snip FROM messages_fts"
                   " JOIN messages m ON m.id = messages_fts.rowid JOIN conversations c ON c.id = m.conversation_id"
                   " WHERE messages_fts MATCH ? ORDER BY m.created_at DESC, m.id DESC LIMIT ?")
            rows = self._read(sql, (match, limit))
        else:
            cond = " AND ".join("m.content LIKE ?" for _ in words)
            rows = self._read(
                "SELECT m.id, m.conversation_id, m.role, m.persona, m.created_at, c.title, substr(m.content, 1, 80)"
                f" AS snip FROM messages m JOIN conversations c ON c.id = m.conversation_id WHERE {cond}"
                " ORDER BY m.created_at DESC, m.id DESC LIMIT ?", (*[f"%{w}%" for w in words], limit))
        return [SearchHit(r["conversation_id"], r["id"], r["title"], r["role"], r["persona"],
                          " ".join(r["snip"].split()), r["created_at"]) for r in rows]

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
    try:
        generation = json.loads(row["generation"] or "{}")
    except json.JSONDecodeError:
        generation = {}
    return Conversation(row["id"], row["title"], row["persona"], row["created_at"], row["updated_at"], row["n"],
                        row["parent_id"], row["forked_from"], generation if isinstance(generation, dict) else {})


def _message(row: sqlite3.Row) -> Message:
    return Message(**{k: row[k] for k in row.keys()})


def open_store(path: Path | None = None) -> ChatStore:
    """The user's chat store (config's db_file unless a path is given)."""
    if path is None:
        from ohlora.config import get_paths

        path = get_paths().db_file
    return ChatStore(path)
