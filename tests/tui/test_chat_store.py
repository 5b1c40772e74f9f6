"""The SQLite chat store on a real file: schema, writes, export, and damaged or locked databases."""

import json
import sqlite3
import threading

import pytest

from ohlora.errors import UserError
from ohlora.store import ChatStore, StoreError
from ohlora.store_schema import MIGRATIONS, SCHEMA_VERSION


@pytest.fixture
def store(tmp_path):
    s = ChatStore(tmp_path / "chat.db")
    yield s
    s.close()


def test_schema_is_versioned_and_wal(store, tmp_path):
    assert store.schema_version == SCHEMA_VERSION == len(MIGRATIONS)
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.db.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000
    cols = {r[1] for r in store.db.execute("PRAGMA table_info(messages)")}
    assert {"conversation_id", "role", "content", "persona", "created_at", "prompt_tokens",
            "completion_tokens", "tokens_per_s", "stop_reason"} <= cols
    store.close()
    again = ChatStore(tmp_path / "chat.db")  # reopening runs no migration twice
    assert again.schema_version == SCHEMA_VERSION
    again.close()


def test_messages_round_trip_every_kind_of_text(store):
    cid = store.new_conversation("ohlora")
    weird = "탭\t줄바꿈\n이모지 🌧️🎵 zero\u200bwidth " + "가" * 100_000
    store.add_message(cid, "user", weird, "ohlora")
    store.add_message(cid, "assistant", "응 😊", "ohlora", prompt_tokens=30, completion_tokens=3,
                      tokens_per_s=12.5, stop_reason="end_of_turn")
    msgs = store.messages(cid)
    assert [m.role for m in msgs] == ["user", "assistant"]
    assert msgs[0].content == weird
    assert (msgs[1].completion_tokens, msgs[1].tokens_per_s, msgs[1].stop_reason) == (3, 12.5, "end_of_turn")
    conv = store.get_conversation(cid)
    assert conv.title.startswith("탭 줄바꿈 이모지") and len(conv.title) <= 48
    assert conv.message_count == 2


def test_list_rename_delete_last(store):
    a = store.new_conversation("ohlora")
    store.add_message(a, "user", "first", "ohlora")
    b = store.new_conversation("ironman")
    store.add_message(b, "user", "second", "ironman")
    assert store.last_conversation().id == b
    assert [c.id for c in store.list_conversations()] == [b, a]
    store.add_message(a, "user", "again", "ohlora")  # touching a makes it the last one
    assert store.last_conversation().id == a
    store.rename(a, "  비 오는 날   이야기 ")
    assert store.get_conversation(a).title == "비 오는 날 이야기"
    with pytest.raises(UserError, match="empty title"):
        store.rename(a, "   ")
    store.delete(b)
    assert [c.id for c in store.list_conversations()] == [a]
    assert store.db.execute("SELECT count(*) FROM messages WHERE conversation_id = ?", (b,)).fetchone()[0] == 0
    with pytest.raises(UserError, match="no conversation with id"):
        store.delete(b)


def test_export_markdown_and_json(store, tmp_path):
    cid = store.new_conversation("ironman")
    store.add_message(cid, "user", "Hi *there*", "ironman")
    store.add_message(cid, "assistant", "Suit's ready.", "ironman", completion_tokens=4, stop_reason="cancelled")
    md = store.export_markdown(cid, {"ironman": "Iron Man"})
    assert md.startswith("# Hi *there*\n")
    assert "## You ·" in md and "## Iron Man ·" in md and "Suit's ready." in md and "*(stopped)*" in md
    data = store.export_json(cid)
    assert data["conversation"]["id"] == cid and [m["role"] for m in data["messages"]] == ["user", "assistant"]
    md_path, js_path = store.export_files(cid, tmp_path / "exports", {"ironman": "Iron Man"})
    assert md_path.read_text(encoding="utf-8") == md
    assert json.loads(js_path.read_text(encoding="utf-8"))["messages"][1]["content"] == "Suit's ready."


def test_corrupt_file_is_reported_and_left_untouched(tmp_path):
    db = tmp_path / "chat.db"
    junk = b"this is not sqlite at all\x00" * 200
    db.write_bytes(junk)
    with pytest.raises(StoreError, match="corrupt.*left untouched"):
        ChatStore(db)
    assert db.read_bytes() == junk


def test_newer_schema_is_refused(tmp_path):
    db = tmp_path / "chat.db"
    con = sqlite3.connect(db)
    con.execute("PRAGMA user_version = 99")
    con.close()
    with pytest.raises(StoreError, match="newer than this ohlora"):
        ChatStore(db)


def test_second_instance_holding_the_write_lock(store, tmp_path, monkeypatch):
    """Another process in a long write transaction: a clear 'locked' error, nothing saved lost."""
    cid = store.new_conversation("ohlora")
    store.add_message(cid, "user", "saved before", "ohlora")
    monkeypatch.setattr("ohlora.store.BUSY_TIMEOUT_MS", 200)
    other = sqlite3.connect(tmp_path / "chat.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        second = ChatStore(tmp_path / "chat.db")  # reading and opening still work in WAL mode
        assert [m.content for m in second.messages(cid)] == ["saved before"]
        second.db.execute("PRAGMA busy_timeout = 200")
        with pytest.raises(StoreError, match="locked by another running ohlora"):
            second.add_message(cid, "user", "blocked", "ohlora")
        second.close()
    finally:
        other.execute("ROLLBACK")
        other.close()
    store.add_message(cid, "assistant", "after", "ohlora")
    assert [m.content for m in store.messages(cid)] == ["saved before", "after"]


def test_writes_from_two_threads(store):
    cid = store.new_conversation("ohlora")

    def write(n):
        for i in range(20):
            store.add_message(cid, "user", f"{n}-{i}", "ohlora")

    threads = [threading.Thread(target=write, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(store.messages(cid)) == 40


def test_a_database_from_before_swipes_opens_upgraded_and_searchable(tmp_path):
    """A file written by the first schema (conversations and messages only) gains alternatives,
    edits, forks, settings and the search index when it is opened; its rows are kept and found."""
    from ohlora.db import Database

    path = tmp_path / "old.db"
    old = Database(path, MIGRATIONS[:1], label="chat database")
    with old.transaction() as con:
        con.execute("INSERT INTO conversations (title, persona, created_at, updated_at) VALUES ('옛날 대화', 'ohlora', 1, 1)")
        con.execute("INSERT INTO messages (conversation_id, role, content, persona, created_at) "
                    "VALUES (1, 'user', '우리 고양이 이름은 나비야', 'ohlora', 1)")
        con.execute("INSERT INTO messages (conversation_id, role, content, persona, created_at, stop_reason) "
                    "VALUES (1, 'assistant', '나비 귀엽다', 'ohlora', 2, 'end_of_turn')")
    assert old.schema_version == 1
    old.close()

    store = ChatStore(path)
    try:
        assert store.schema_version == SCHEMA_VERSION
        assert [(m.role, m.content, m.swipe, m.original) for m in store.messages(1)] == [
            ("user", "우리 고양이 이름은 나비야", None, None), ("assistant", "나비 귀엽다", None, None)]
        assert store.get_conversation(1).generation == {} and store.get_conversation(1).parent_id is None
        assert [h.message_id for h in store.search("나비")] == [2, 1]  # old rows are in the new index
        assert store.add_swipe(2, "나비라니 예쁜 이름!", shown=True) == 1
        assert [s.content for s in store.swipes(2)] == ["나비 귀엽다", "나비라니 예쁜 이름!"]
        assert store.edit_message(1, "우리 강아지 이름은 초코야").original == "우리 고양이 이름은 나비야"
        assert [h.message_id for h in store.search("초코")] == [1] and [h.message_id for h in store.search("나비")] == [2]
    finally:
        store.close()
