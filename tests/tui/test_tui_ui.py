"""The chat app's UI without a model: input edge cases, damaged databases, screens, palette."""

import sqlite3

from tests.tui.tui_helpers import SIZE, make_app, no_model, rows, type_and_send, wait_for

from ohlora.config import get_paths
from ohlora.store import ChatStore
from ohlora.tui.screens import ConversationsScreen, HelpScreen, MemoryScreen
from ohlora.tui.widgets import SHOWN_USER_CHARS, ChatInput, MessageView


def _views(app, role=None):
    return [v for v in app.query(MessageView) if role is None or v.role == role]


async def test_first_paint_without_model_shows_greeting_and_loading():
    app = make_app(load_model=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        (greeting,) = _views(app)
        assert greeting.text == app.personas["ohlora"].greeting
        assert "Loading the model" in str(app.query_one(ChatInput).placeholder)
        assert "오로라" in str(app.query_one("#status").render())


async def test_enter_sends_shift_enter_adds_a_line_and_empty_sends_nothing():
    app = make_app(load_model=False)
    async with app.run_test(size=SIZE) as pilot:
        no_model(app)
        field = app.query_one(ChatInput)
        field.focus()
        await pilot.press("enter")  # empty: nothing sent
        field.insert("   \n\t ")
        await pilot.press("enter")  # whitespace only: refused, kept in the box
        assert _views(app, "user") == []
        assert not get_paths().db_file.exists() or rows("SELECT count(*) FROM messages") == [(0,)]
        field.clear()
        await pilot.press("h", "i", "shift+enter", "t", "h", "e", "r", "e")
        assert field.text == "hi\nthere"
        await pilot.press("enter")
        await wait_for(pilot, lambda: not app.generating)
        assert field.text == ""
        assert rows("SELECT role, content FROM messages") == [("user", "hi\nthere")]
        assert "no model" in _views(app, "assistant")[-1].note  # the failure is said, the app lives on


async def test_huge_paste_control_chars_and_emoji_are_kept_safely():
    app = make_app(load_model=False)
    async with app.run_test(size=SIZE) as pilot:
        no_model(app)
        huge = "가나다라마바사 🌧 " * 10_000  # 100,000 characters
        assert len(huge) == 100_000
        await type_and_send(pilot, "\x00\x07bell\x1b[31m red \x7f😀\r\nok")
        await wait_for(pilot, lambda: not app.generating)
        await type_and_send(pilot, huge)
        await wait_for(pilot, lambda: not app.generating)
        saved = [r[0] for r in rows("SELECT content FROM messages WHERE role = 'user' ORDER BY id")]
        assert saved[0] == "bell[31m red 😀\nok"
        assert saved[1] == huge.strip() and len(saved[1]) == 99_999
        shown = _views(app, "user")[-1].query_one(".body").render()
        assert len(str(shown)) < SHOWN_USER_CHARS + 100 and "saved in full" in str(shown)


async def test_corrupt_database_is_reported_and_untouched():
    db = get_paths().db_file
    db.parent.mkdir(parents=True, exist_ok=True)
    junk = b"definitely not a database\n" * 100
    db.write_bytes(junk)
    app = make_app(load_model=False)
    async with app.run_test(size=SIZE) as pilot:
        no_model(app)
        warning = _views(app, "system")[0]
        assert "not being saved" in warning.text and "corrupt" in warning.text and str(db) in warning.text
        await type_and_send(pilot, "still works?")
        await wait_for(pilot, lambda: not app.generating)
        assert _views(app, "user")[-1].text == "still works?"
    assert db.read_bytes() == junk


async def test_database_locked_by_a_second_instance(monkeypatch):
    monkeypatch.setattr("ohlora.store.BUSY_TIMEOUT_MS", 300)
    ChatStore(get_paths().db_file).close()
    other = sqlite3.connect(get_paths().db_file, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another ohlora in the middle of a write
    try:
        app = make_app(load_model=False)
        async with app.run_test(size=SIZE) as pilot:
            no_model(app)
            await type_and_send(pilot, "안녕")
            await wait_for(pilot, lambda: not app.generating)
            errors = [v.text for v in _views(app, "system")]
            assert any("locked by another running ohlora" in e for e in errors), errors
            assert _views(app, "user")[-1].text == "안녕"
    finally:
        other.execute("ROLLBACK")
        other.close()


async def test_conversation_list_open_rename_delete_new():
    store = ChatStore(get_paths().db_file)
    a = store.new_conversation("ohlora")
    store.add_message(a, "user", "첫 번째 대화", "ohlora")
    store.add_message(a, "assistant", "응!", "ohlora")
    b = store.new_conversation("ironman")
    store.add_message(b, "user", "second chat", "ironman")
    store.close()
    app = make_app(load_model=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+l")
        assert isinstance(app.screen, ConversationsScreen)
        await pilot.press("r")  # rename the newest (b)
        await pilot.press(*"ctrl+a ctrl+k".split())
        for ch in "Suit talk":
            await pilot.press("space" if ch == " " else ch)
        await pilot.press("enter")
        assert rows("SELECT title FROM conversations WHERE id = ?", (b,)) == [("Suit talk",)]
        await pilot.press("d", "d")  # delete b (asks twice)
        assert rows("SELECT id FROM conversations") == [(a,)]
        await pilot.press("enter")  # open a
        await pilot.pause()
        assert app.conversation_id == a
        assert [v.text for v in _views(app) if v.role != "system"] == ["첫 번째 대화", "응!"]
        assert app.session.history == [{"role": "user", "content": "첫 번째 대화"}, {"role": "assistant", "content": "응!"}]
        await pilot.press("ctrl+l", "n")
        assert app.conversation_id is None and app.session.history == []


async def test_palette_sidebar_key_and_slash_switch_persona():
    app = make_app(load_model=False)
    async with app.run_test(size=SIZE) as pilot:
        names = {pid: p.name for pid, p in app.personas.items()}
        await pilot.press("ctrl+t")  # key binding: next persona
        assert app.session.persona.id == "ironman"
        assert _views(app)[-1].text == app.personas["ironman"].greeting
        await type_and_send(pilot, "/persona 오로라")  # by display name
        assert app.session.persona.id == "ohlora"
        await type_and_send(pilot, "/persona nobody")
        assert "Unknown persona 'nobody'" in _views(app, "system")[-1].text
        await pilot.press("ctrl+p")  # command palette
        await pilot.pause()
        app.screen.query_one("Input").value = "Persona: " + names["ironman"]
        await pilot.pause(0.5)
        await pilot.press("enter")
        await pilot.pause()
        assert app.session.persona.id == "ironman"
        await pilot.press("ctrl+b")  # sidebar: pick 오로라 with the keyboard
        assert app.query_one("#sidebar").display
        await pilot.press("down", "enter")
        assert app.session.persona.id == "ohlora"


async def test_help_memory_panel_and_unknown_command():
    app = make_app(load_model=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        text = str(app.screen.query_one("#help-text").render())
        for needle in ("Ctrl+T", "Esc", "/persona NAME", "/export", "Shift+Enter"):
            assert needle in text
        await pilot.press("escape")
        app.memory_off = "memory is off: the memory package is not installed in this build"
        await pilot.press("f2")
        assert isinstance(app.screen, MemoryScreen)
        assert "memory is off" in str(app.screen.query_one("#memory-off").render())
        await pilot.press("escape")
        await type_and_send(pilot, "/frobnicate")
        assert "Unknown command /frobnicate" in _views(app, "system")[-1].text
        await type_and_send(pilot, "/export")
        assert "Nothing to export yet" in _views(app, "system")[-1].text


class FakeMemory:
    """The memory package's interface as the panel uses it: list() and forget(id)."""

    def __init__(self):
        self.items = [type("M", (), {"id": 1, "text": "좋아하는 날씨: 비"})(), type("M", (), {"id": 2, "text": "이름: 민수"})()]

    def list(self):
        return list(self.items)

    def forget(self, mid):
        self.items = [m for m in self.items if m.id != mid]


async def test_memory_panel_lists_recalled_and_forgets():
    app = make_app(load_model=False)
    async with app.run_test(size=SIZE) as pilot:
        app.memory = FakeMemory()
        app.session.last_recalled = [type("R", (), {"memory": app.memory.items[0], "cosine": 0.61})()]
        await pilot.press("f2")
        screen = app.screen
        assert "좋아하는 날씨: 비" in str(screen.query_one("#memory-recalled").render())
        assert len(screen.query("MemoryItem")) == 2
        await pilot.press("d")
        await pilot.pause()
        assert [m.id for m in app.memory.items] == [2]


async def test_copy_last_reply_and_a_focused_message():
    from ohlora.store import ChatStore

    store = ChatStore(get_paths().db_file)
    cid = store.new_conversation("ohlora")
    store.add_message(cid, "user", "노래 추천해줘", "ohlora")
    store.add_message(cid, "assistant", "**빗소리** 플레이리스트 어때? 🎵", "ohlora", completion_tokens=9,
                      tokens_per_s=8.0, stop_reason="max_tokens")
    store.close()
    app = make_app(load_model=False, cont=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        reply = _views(app, "assistant")[-1]
        assert reply.note == "9 tokens · 8.0 tok/s · length limit"
        await pilot.press("ctrl+o")
        assert app.clipboard == "**빗소리** 플레이리스트 어때? 🎵"
        _views(app, "user")[-1].focus()
        await pilot.press("c")
        assert app.clipboard == "노래 추천해줘"


async def test_slash_quit_exits_the_app():
    for word in ("/quit", "/exit", "/q"):
        app = make_app(load_model=False)
        async with app.run_test(size=SIZE) as pilot:
            await type_and_send(pilot, word)
            await wait_for(pilot, lambda: not app.is_running, timeout=20)
        assert app.return_code == 0, word
