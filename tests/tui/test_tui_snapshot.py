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
