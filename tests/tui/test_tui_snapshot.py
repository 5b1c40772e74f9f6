"""SVG snapshot of the chat screen (pytest-textual-snapshot): a fresh chat with the greeting.

Deterministic: no model output, no clock; the model is not loaded. Update with
`pytest tests/tui/test_tui_snapshot.py --snapshot-update` after a deliberate UI change.
"""

from tests.tui.tui_helpers import make_app

from ohlora.tui.widgets import ChatInput


def test_chat_screen_snapshot(snap_compare):
    app = make_app(load_model=False)

    async def settle(pilot):
        app.query_one(ChatInput).cursor_blink = False
        await pilot.pause()

    assert snap_compare(app, terminal_size=(100, 30), run_before=settle)


def test_help_screen_snapshot(snap_compare):
    app = make_app(load_model=False)

    async def settle(pilot):
        app.query_one(ChatInput).cursor_blink = False
        await pilot.press("f1")
        await pilot.pause()

    assert snap_compare(app, terminal_size=(100, 30), run_before=settle)


def test_swipe_view_snapshot(snap_compare):
    """A reply with three alternatives, the second one chosen, focused (↑ from the input):
    the '◀ 2/3 ▶' line under it. Rows are written with fixed stats, so the notes are stable."""
    from ohlora.config import get_paths
    from ohlora.store import ChatStore

    store = ChatStore(get_paths().db_file)
    cid = store.new_conversation("ohlora")
    store.add_message(cid, "user", "비 오는 날엔 뭐 하고 싶어?", "ohlora")
    mid = store.add_message(cid, "assistant", "창가에서 빗소리 들으면서 책 읽기!", "ohlora",
                            completion_tokens=14, tokens_per_s=9.5, stop_reason="end_of_turn")
    store.add_swipe(mid, "따뜻한 차 한 잔 마시면서 영화 보고 싶어.", shown=True,
                    completion_tokens=16, tokens_per_s=9.8, stop_reason="end_of_turn")
    store.add_swipe(mid, "우산 쓰고 동네 한 바퀴 걷기, 의외로 좋아.", shown=True,
                    completion_tokens=15, tokens_per_s=9.6, stop_reason="end_of_turn")
    store.choose_swipe(mid, 1)
    store.close()
    app = make_app(load_model=False, conversation_id=cid)

    async def settle(pilot):
        app.query_one(ChatInput).cursor_blink = False
        await pilot.press("up")  # focus the reply
        await pilot.pause()

    assert snap_compare(app, terminal_size=(100, 30), run_before=settle)
