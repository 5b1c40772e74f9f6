"""The real chat app on the scripted engine (fast tier): streaming, stderr inside the app,
memory loading in the background, and damaged or full databases. Rows checked in SQLite."""

from __future__ import annotations

import sqlite3
import sys
import threading

from tests.tui.tui_helpers import SIZE, engine, make_fake_app, rows, type_and_send, wait_for
from textual.widgets import Markdown

from ohlora.config import get_paths
from ohlora.tui.widgets import MessageView

LONG = " ".join(f"단어{i}" for i in range(40))


def _views(app, role=None):
    return [v for v in app.query(MessageView) if role is None or v.role == role]


async def test_text_shows_while_the_reply_streams(monkeypatch, tmp_path):
    app = make_fake_app(monkeypatch, tmp_path, [LONG], delay=0.05)  # 40 words over ~2 s
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, app.model_ready.is_set, timeout=30)
        await type_and_send(pilot, "길게 말해줘")
        view = _views(app, "assistant")[-1]
        shown = lambda: view.query_one(".body", Markdown).source  # noqa: E731 - what is on screen
        await wait_for(pilot, lambda: "단어3" in shown() or not app.generating, timeout=30)
        assert app.generating, "the reply ended before any of it was drawn"
        assert "단어3" in shown() and "단어39" not in shown()  # part of it, drawn mid-stream
        assert view.note == "writing…"
        await wait_for(pilot, lambda: not app.generating, timeout=30)
        assert shown().strip() == LONG and view.text.strip() == LONG
        assert rows("SELECT content, stop_reason FROM messages WHERE role = 'assistant'") == [(LONG, "end_of_turn")]


async def test_writing_to_stderr_inside_the_app_does_not_break_a_reply(monkeypatch, tmp_path):
    app = make_fake_app(monkeypatch, tmp_path, ["첫 답", "둘째 답"], delay=0.01)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, app.model_ready.is_set, timeout=30)

        def chatter():  # what a model loader or a warning does from another thread
            for i in range(50):
                print(f"progress {i}", file=sys.stderr, flush=True)

        t = threading.Thread(target=chatter)
        t.start()
        print("from the UI thread", file=sys.stderr)
        await type_and_send(pilot, "안녕")
        await wait_for(pilot, lambda: not app.generating, timeout=30)
        t.join()
        await type_and_send(pilot, "또 안녕")
        await wait_for(pilot, lambda: not app.generating, timeout=30)
        replies = [v for v in _views(app, "assistant") if not v.has_class("greeting")]
        assert [v.text for v in replies] == ["첫 답", "둘째 답"]
        assert not any(v.has_class("error") for v in replies), [v.note for v in replies]


async def test_first_messages_get_replies_while_memory_loads_and_are_remembered(monkeypatch, tmp_path):
    """The first run builds the embedder for minutes: replies come meanwhile (without memories),
    the status bar says so, and what was told is remembered once it is ready."""
    from memory.embed import HashEmbedder

    gate = threading.Event()

    def slow(spec="", say=None):
        if say:
            say("memory: building the embedder (first run)…")
        assert gate.wait(30)
        return HashEmbedder()

    monkeypatch.setattr("ohlora.registry.make_embedder", slow)
    app = make_fake_app(monkeypatch, tmp_path, ["좋다!", "나비 잘 지내?"], memory=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, app.model_ready.is_set, timeout=30)
        await wait_for(pilot, lambda: "building the embedder" in str(app.query_one("#status").render()), timeout=30)
        await type_and_send(pilot, "우리 집 고양이 이름은 나비야")
        await wait_for(pilot, lambda: not app.generating, timeout=30)
        assert _views(app, "assistant")[-1].text == "좋다!"  # answered without waiting for memory
        assert app.memory.store.pending_count() == 1
        gate.set()
        await wait_for(pilot, lambda: app.memory.ready and app.memory.store.pending_count() == 0, timeout=30)
        await wait_for(pilot, lambda: "memory on" in str(app.query_one("#status").render()), timeout=30)
        await type_and_send(pilot, "고양이 사료 뭐가 좋아?")
        await wait_for(pilot, lambda: not app.generating, timeout=30)
        assert "우리 집 고양이 이름은 나비야" in engine(app).prompts[-1]  # recalled into the prompt
        assert [r.memory.text for r in app.session.last_recalled] == ["우리 집 고양이 이름은 나비야"]


async def test_a_locked_memory_file_costs_no_reply(monkeypatch, tmp_path):
    from memory import MemoryStore
    from memory.embed import HashEmbedder

    db = get_paths().memory_db_file
    MemoryStore(db, HashEmbedder()).close()
    monkeypatch.setattr("memory.db.BUSY_MS", 200)
    app = make_fake_app(monkeypatch, tmp_path, ["응 알겠어"], memory=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.model_ready.is_set() and app.memory is not None and app.memory.ready,
                       timeout=30)
        other = sqlite3.connect(db, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # a second ohlora in the middle of a memory write
        try:
            await type_and_send(pilot, "나 부산 살아")
            await wait_for(pilot, lambda: not app.generating, timeout=30)
        finally:
            other.execute("ROLLBACK")
            other.close()
        reply = _views(app, "assistant")[-1]
        assert reply.text == "응 알겠어" and not reply.has_class("error")
        assert "locked by another running ohlora" in app.conversation.last.memory_error
        assert rows("SELECT role, content FROM messages ORDER BY id") == [("user", "나 부산 살아"), ("assistant", "응 알겠어")]


async def test_a_corrupt_memory_file_turns_memory_off_and_is_left_alone(monkeypatch, tmp_path):
    db = get_paths().memory_db_file
    db.parent.mkdir(parents=True, exist_ok=True)
    junk = b"garbage, not sqlite\n" * 100
    db.write_bytes(junk)
    app = make_fake_app(monkeypatch, tmp_path, ["그래도 대답은 해"], memory=True)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, app.model_ready.is_set, timeout=30)
        await wait_for(pilot, lambda: "corrupt" in app.memory_off, timeout=30)
        assert "memory is off" in str(app.query_one("#status").render())
        await type_and_send(pilot, "안녕")
        await wait_for(pilot, lambda: not app.generating, timeout=30)
        assert _views(app, "assistant")[-1].text == "그래도 대답은 해"
    assert db.read_bytes() == junk


async def test_a_full_disk_while_saving_is_one_line_and_the_app_goes_on(monkeypatch, tmp_path):
    app = make_fake_app(monkeypatch, tmp_path, ["첫 답", "둘째 답", "셋째 답"])
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, app.model_ready.is_set, timeout=30)
        await type_and_send(pilot, "첫 말")
        await wait_for(pilot, lambda: not app.generating, timeout=30)
        pages = app.store.db.execute("PRAGMA page_count").fetchone()[0]
        app.store.db.execute(f"PRAGMA max_page_count = {pages}")  # SQLite now answers SQLITE_FULL
        await type_and_send(pilot, "가" * 20000)
        await wait_for(pilot, lambda: not app.generating, timeout=30)
        errors = [v.text for v in _views(app, "system") if v.has_class("error")]
        assert len(errors) == 1 and "disk is full" in errors[0], errors  # said once, not per row
        app.store.db.execute("PRAGMA max_page_count = 1073741823")
        await type_and_send(pilot, "이제 돼?")
        await wait_for(pilot, lambda: not app.generating, timeout=30)
        assert [v.text for v in _views(app, "assistant") if not v.has_class("greeting")] == ["첫 답", "둘째 답", "셋째 답"]
    saved = rows("SELECT role, content FROM messages ORDER BY id")
    assert saved[:2] == [("user", "첫 말"), ("assistant", "첫 답")] and saved[-1] == ("assistant", "셋째 답")


async def test_quit_mid_reply_keeps_what_was_written(monkeypatch, tmp_path):
    app = make_fake_app(monkeypatch, tmp_path, [LONG], delay=0.05)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, app.model_ready.is_set, timeout=30)
        await type_and_send(pilot, "길게 말해줘")
        view = _views(app, "assistant")[-1]
        await wait_for(pilot, lambda: "단어2" in view.text, timeout=30)
        await pilot.press("ctrl+q")
    (content, reason), = rows("SELECT content, stop_reason FROM messages WHERE role = 'assistant'")
    assert content.startswith("단어0 단어1 단어2") and len(content) < len(LONG) and reason == "cancelled"


async def test_what_is_typed_is_read_ahead_once_the_user_pauses(monkeypatch, tmp_path):
    from ohlora.tui.widgets import ChatInput

    app = make_fake_app(monkeypatch, tmp_path, ["첫 답", "둘째 답"])
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, app.model_ready.is_set, timeout=30)
        await type_and_send(pilot, "안녕")
        await wait_for(pilot, lambda: not app.generating, timeout=30)
        field = app.query_one(ChatInput)
        field.insert("오늘 점심 뭐 먹지")
        await pilot.pause(0.2)
        assert app.session._draft is None  # still typing
        await wait_for(pilot, lambda: app.session._draft is not None, timeout=10)
        assert app.session._draft[:2] == ("오늘 점심 뭐 먹지", 2)
        await pilot.press("enter")
        await wait_for(pilot, lambda: not app.generating and len(_views(app, "assistant")) >= 3, timeout=30)
        assert app.session._draft is None
        replies = [v.text for v in _views(app, "assistant") if not v.has_class("greeting")]
        assert replies == ["첫 답", "둘째 답"]
