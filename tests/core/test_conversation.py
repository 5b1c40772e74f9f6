"""The conversation module on the scripted engine and a real SQLite file: what is saved, when,
and what survives a stop, a failure, a full disk or a broken memory (fast tier)."""

from __future__ import annotations

import sqlite3
from dataclasses import replace

import pytest

from ohlora.backends import EnginePool
from ohlora.backends.fake import FakeBackend
from ohlora.chat import ChatSession
from ohlora.config import Settings, get_paths
from ohlora.conversation import Conversation, history_from
from ohlora.errors import UserError
from ohlora.store import ChatStore


def rows(sql, args=()):
    con = sqlite3.connect(get_paths().db_file)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def make(script=None, persona="ohlora", memory=None, **settings):
    s = Settings(backend="fake", memory=memory is not None, **{"guard": False, "lines": False, **settings})
    pool = EnginePool(s, "fake")
    engine = FakeBackend(script=script)
    pool.engines[("fake", str(engine.base.path))] = engine
    session = ChatSession(s, persona, pool=pool, memory=memory)
    store = ChatStore(get_paths().db_file)
    return Conversation(session, store), engine


def test_user_row_is_committed_before_the_model_starts():
    seen = []

    def script(prompt):  # runs when the model starts: the user's row is already in the file
        seen.append(rows("SELECT role, content FROM messages"))
        return "응 들었어"

    convo, _ = make(script)
    assert "".join(convo.say("나 오늘 면접 봤어")) == "응 들었어"
    assert seen == [[("user", "나 오늘 면접 봤어")]]
    (role, content, persona, ctok, reason), = rows(
        "SELECT role, content, persona, completion_tokens, stop_reason FROM messages WHERE role = 'assistant'")
    assert (role, content, persona, ctok, reason) == ("assistant", "응 들었어", "ohlora", 2, "end_of_turn")
    assert convo.last.reply_id is not None and convo.last.user_id is not None


def test_history_comes_back_from_the_rows():
    convo, engine = make(["첫 답", "둘째 답"])
    list(convo.say("하나"))
    list(convo.say("둘"))
    session = ChatSession(convo.session.settings, "ironman", pool=convo.session.pool)
    again = Conversation.open(session, convo.store, convo.id)
    assert again.session.persona.id == "ohlora"  # the conversation's persona
    assert again.session.history == [
        {"role": "user", "content": "하나"}, {"role": "assistant", "content": "첫 답"},
        {"role": "user", "content": "둘"}, {"role": "assistant", "content": "둘째 답"}]
    assert "첫 답" in engine.prompts[-1] and "하나" in engine.prompts[-1]  # the model saw the history


def test_unanswered_user_message_stays_out_of_the_history():
    convo, _ = make()
    cid = convo.store.new_conversation("ohlora")
    convo.store.add_message(cid, "user", "답 없는 말", "ohlora")
    convo.store.add_message(cid, "user", "두 번째", "ohlora")
    convo.store.add_message(cid, "assistant", "응", "ohlora")
    assert history_from(convo.store.messages(cid)) == [
        {"role": "user", "content": "두 번째"}, {"role": "assistant", "content": "응"}]


def test_regenerate_replaces_only_the_last_reply():
    convo, _ = make(["a1", "a2", "a3"])
    list(convo.say("q1"))
    list(convo.say("q2"))
    before = rows("SELECT id, role, content FROM messages ORDER BY id")
    assert "".join(convo.regenerate()) == "a3"
    after = rows("SELECT id, role, content FROM messages ORDER BY id")
    assert after[:3] == before[:3] and after[3][1:] == ("assistant", "a3") and after[3][0] != before[3][0]
    assert [m["content"] for m in convo.session.history] == ["q1", "a1", "q2", "a3"]


def test_regenerate_with_nothing_said_is_a_clear_error():
    convo, _ = make()
    with pytest.raises(UserError, match="nothing to regenerate"):
        list(convo.regenerate())


def test_stop_mid_reply_keeps_what_was_written_as_cancelled():
    convo, engine = make(["하나 둘 셋 넷 다섯 여섯 일곱"])
    got = []
    for piece in convo.say("길게 말해줘"):
        got.append(piece)
        if len(got) == 3:
            convo.stop()
    (content, reason), = rows("SELECT content, stop_reason FROM messages WHERE role = 'assistant'")
    assert content == "하나 둘 셋" and reason == "cancelled"


def test_caller_that_stops_reading_still_saves_the_partial_reply():
    convo, _ = make(["하나 둘 셋 넷"])
    stream = convo.say("말해줘")
    next(stream), next(stream)
    stream.close()  # e.g. Ctrl-C in `ohlora ask`, a client that disconnects
    assert rows("SELECT content, stop_reason FROM messages WHERE role = 'assistant'") == [("하나 둘", "cancelled")]


def test_engine_failure_mid_reply_saves_the_partial_reply_and_raises():
    convo, engine = make(["하나 둘 셋"])
    real = engine.stream

    def broken(*a, **k):
        it = real(*a, **k)
        yield next(it)
        raise RuntimeError("engine died")

    engine.stream = broken
    with pytest.raises(RuntimeError, match="engine died"):
        list(convo.say("말해줘"))
    assert rows("SELECT role, content, stop_reason FROM messages ORDER BY id") == [
        ("user", "말해줘", None), ("assistant", "하나", "error")]
    assert convo.last.error == "RuntimeError: engine died"


def test_a_full_disk_is_reported_once_and_the_reply_still_comes():
    convo, _ = make(["응 여기 있어"])
    list(convo.say("첫 말"))
    pages = convo.store.db.execute("PRAGMA page_count").fetchone()[0]
    convo.store.db.execute(f"PRAGMA max_page_count = {pages}")  # SQLite now answers SQLITE_FULL
    big = "가" * 20000
    text = "".join(convo.say(big))
    assert text == "응 여기 있어"
    assert "disk is full" in convo.last.save_error
    saved = rows("SELECT role, content FROM messages ORDER BY id")
    assert saved[:2] == [("user", "첫 말"), ("assistant", "응 여기 있어")]  # the saved rows stay
    assert ("user", big) not in saved  # the row that did not fit is not half-written
    assert rows("PRAGMA integrity_check") == [("ok",)]


class BrokenMemory:
    def recall(self, text, k=3, persona=None):
        return []

    def observe(self, text, **kw):
        raise OSError("memory.db: disk I/O error")


def test_a_memory_failure_never_turns_the_saved_reply_into_an_error():
    convo, _ = make(["잘 됐다!"], memory=BrokenMemory())
    assert "".join(convo.say("나 합격했어")) == "잘 됐다!"
    assert convo.last.error == "" and "disk I/O error" in convo.last.memory_error
    assert rows("SELECT role FROM messages ORDER BY id") == [("user",), ("assistant",)]


def test_max_tokens_ends_the_reply_exactly_at_the_limit():
    convo, _ = make(["하나 둘 셋 넷 다섯"])
    p = convo.session.persona
    convo.session.persona = replace(p, generation=replace(p.generation, max_tokens=3))
    assert "".join(convo.say("세어봐")).split() == ["하나", "둘", "셋"]
    assert (convo.last.result.completion_tokens, convo.last.result.stop_reason) == (3, "max_tokens")


def test_stop_string_ends_the_reply():
    convo, _ = make(["하나 둘 <end_of_turn> 셋"])
    assert "".join(convo.say("세어봐")).strip() == "하나 둘"
    assert convo.last.result.stop_reason == "stop_string"
