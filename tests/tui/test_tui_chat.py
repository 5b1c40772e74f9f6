"""The chat app on the real packaged model, driven with Textual's pilot; rows checked in SQLite."""

import json

import pytest
from tests.tui.tui_helpers import SIZE, make_app, rows, type_and_send, wait_for

from ohlora.config import get_paths
from ohlora.tui.widgets import MessageView


def _views(app, role=None):
    return [v for v in app.query(MessageView) if role is None or v.role == role]


@pytest.mark.slow
async def test_chat_switch_regenerate_stop_export_and_reopen(gemma_gguf):
    """The whole chat on the real model (that text shows while it streams is tested on the
    scripted engine in test_tui_fast.py, where the timing is under the test's control)."""
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        # first paint comes before the model: the greeting is there and the input says loading
        assert _views(app)[0].has_class("greeting")
        await wait_for(pilot, app.model_ready.is_set)
        assert not app.model_error, app.model_error
        assert "Message 오로라" in str(app.query_one("#input").placeholder)

        # 1. send: the user's row is committed before the reply; the reply streams in
        app.generation_overrides["max_tokens"] = 24  # long enough to be seen mid-stream on a fast machine
        await type_and_send(pilot, "안녕? 오늘 비가 와서 기분이 어때? 🌧️")
        cid = app.conversation_id
        saved = rows("SELECT role, content FROM messages WHERE conversation_id = ? ORDER BY id", (cid,))
        assert saved[0] == ("user", "안녕? 오늘 비가 와서 기분이 어때? 🌧️")
        assert len(saved) == 1 or app.generating is False  # a reply row only once the reply has ended
        await wait_for(pilot, lambda: not app.generating, step=0.05)
        reply = _views(app, "assistant")[-1]
        assert reply.text.strip(), reply.note
        app.generation_overrides["max_tokens"] = 4
        (role, content, persona, ptok, ctok, reason), = rows(
            "SELECT role, content, persona, prompt_tokens, completion_tokens, stop_reason FROM messages"
            " WHERE conversation_id = ? AND role = 'assistant'", (cid,))
        assert (role, content, persona) == ("assistant", reply.text, "ohlora")
        assert ptok > 0 and 1 <= ctok <= 24 and reason in ("max_tokens", "end_of_turn", "stop_string")
        assert "tok/s" in str(app.query_one("#status").render()) or ctok < 2

        # 2. switch persona with the slash command: takes effect on the next reply
        await type_and_send(pilot, "/persona ironman")
        assert app.session.persona.id == "ironman"
        ironman = app.personas["ironman"].name
        assert ironman in str(app.query_one("#status").render())
        await type_and_send(pilot, "Hey Tony, what are you building today?")
        await wait_for(pilot, lambda: not app.generating)
        assert rows("SELECT persona FROM messages WHERE conversation_id = ? ORDER BY id DESC LIMIT 1", (cid,)) == [
            ("ironman",)
        ]

        # 3. regenerate: the last reply's row is replaced, the user's row stays
        before = rows("SELECT id, role FROM messages WHERE conversation_id = ? ORDER BY id", (cid,))
        await pilot.press("ctrl+r")
        await pilot.pause()
        await wait_for(pilot, lambda: not app.generating)
        assert not _views(app, "assistant")[-1].has_class("error"), _views(app, "assistant")[-1].note
        after = rows("SELECT id, role FROM messages WHERE conversation_id = ? ORDER BY id", (cid,))
        assert [r[1] for r in after] == [r[1] for r in before] == ["user", "assistant", "user", "assistant"]
        assert after[:3] == before[:3] and after[3][0] != before[3][0]
        assert len(app.session.history) == 4

        # 4. Esc stops a long reply and keeps what was written, even after a persona switch mid-reply
        app.generation_overrides["max_tokens"] = 200
        await type_and_send(pilot, "Tell me a long story about the suit.")
        await wait_for(pilot, lambda: not app.generating or _views(app, "assistant")[-1].text.strip())
        await pilot.press("ctrl+t")  # switching persona now affects the next reply only
        await pilot.press("escape")
        await wait_for(pilot, lambda: not app.generating)
        stopped = [v for v in _views(app, "assistant") if not v.has_class("greeting")][-1]
        assert app.session.persona.id == "ohlora"
        (content, reason, ctok), = rows(
            "SELECT content, stop_reason, completion_tokens FROM messages WHERE conversation_id = ?"
            " ORDER BY id DESC LIMIT 1", (cid,))
        assert content == stopped.text
        assert reason in ("cancelled", "end_of_turn", "stop_string") and ctok < 200

        # 5. export: Markdown and JSON into the data folder, paths shown in the chat
        await type_and_send(pilot, "/export")
        md = get_paths().data_dir / "exports" / f"conversation-{cid}.md"
        js = md.with_suffix(".json")
        assert str(md) in _views(app, "system")[-1].text
        text = md.read_text(encoding="utf-8")
        assert "안녕? 오늘 비가 와서 기분이 어때? 🌧️" in text and f"## {ironman}" in text and "## 오로라" in text
        assert len(json.loads(js.read_text(encoding="utf-8"))["messages"]) == 6
        shown = [(v.role, v.text) for v in _views(app) if v.role in ("user", "assistant") and not v.has_class("greeting")]

    # 6. restart with --continue: the same conversation, persona and history come back
    again = make_app(cont=True, load_model=False)
    async with again.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert again.conversation_id == cid
        assert again.session.persona.id == "ironman"
        assert [(v.role, v.text) for v in _views(again) if v.role != "system"] == shown
        assert [m["role"] for m in again.session.history] == ["user", "assistant"] * 3
        assert "stopped" in _views(again, "assistant")[-1].note or reason != "cancelled"


@pytest.mark.slow
def test_kill_mid_reply_keeps_the_users_message(gemma_gguf, tmp_path):
    """`ohlora chat` in a real pseudo-terminal, killed with SIGKILL while the model writes."""
    import fcntl
    import os
    import pty
    import signal
    import struct
    import subprocess
    import sys
    import termios
    import threading
    import time

    from ohlora.store import ChatStore

    timings = tmp_path / "timings.jsonl"
    env = {**os.environ, "OHLORA_TUI_TIMINGS": str(timings), "OHLORA_MEMORY": "false"}
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "ohlora.cli", "chat"], stdin=slave, stdout=slave,
                            stderr=slave, env=env, start_new_session=True)
    os.close(slave)

    def drain():
        try:
            while os.read(master, 65536):
                pass
        except OSError:
            pass

    threading.Thread(target=drain, daemon=True).start()
    try:
        deadline = time.monotonic() + 120
        while "model_ready" not in (timings.read_text() if timings.exists() else ""):
            assert proc.poll() is None and time.monotonic() < deadline, "app did not get ready"
            time.sleep(0.1)
        os.write(master, "이건 저장돼야 해. 길게 얘기해줘!".encode() + b"\r")
        db = get_paths().db_file
        while not (db.exists() and rows("SELECT count(*) FROM messages") == [(1,)]):
            assert time.monotonic() < deadline, "the user's message was not saved"
            time.sleep(0.05)
        time.sleep(0.5)  # the reply is being written now (200 tokens take far longer)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    assert rows("PRAGMA integrity_check") == [("ok",)]
    assert rows("SELECT role, content FROM messages") == [("user", "이건 저장돼야 해. 길게 얘기해줘!")]
    store = ChatStore(get_paths().db_file)  # the next start opens it normally
    assert store.last_conversation().message_count == 1
    store.close()
