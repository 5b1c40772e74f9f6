"""A new user's first chat: the real `ohlora` in a pseudo-terminal on an empty OHLORA_HOME.

Nothing prebuilt: the base model is assembled, and the memory embedder is built in the
background while the user already chats. Two messages get two replies, Ctrl+T switches to
Iron Man, a third message gets his reply; rows are checked in the SQLite file the app wrote.
"""

from __future__ import annotations

import fcntl
import os
import pty
import signal
import sqlite3
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import pytest

from ohlora.backends.base import APP_REPLIES

REPO = Path(__file__).resolve().parents[2]
STEP_S = 900  # per step; a quiet machine needs well under a tenth of this


def _rows(db: Path, sql: str) -> list[tuple]:
    if not db.exists():
        return []
    con = sqlite3.connect(db, timeout=5)
    try:
        return con.execute(sql).fetchall()
    except sqlite3.OperationalError:  # not created yet
        return []
    finally:
        con.close()


@pytest.mark.slow
def test_first_chat_on_an_empty_home_in_a_terminal(tmp_path):
    home = tmp_path / "fresh-home"  # no models cache linked in: a true first run
    timings = tmp_path / "timings.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OHLORA_")}
    env.update(OHLORA_HOME=str(home), OHLORA_TUI_TIMINGS=str(timings), HF_HUB_OFFLINE="1")
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 110, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "ohlora.cli"], stdin=slave, stdout=slave, stderr=slave,
                            env=env, cwd=REPO, start_new_session=True)
    os.close(slave)
    screen = bytearray()

    def drain() -> None:
        try:
            while chunk := os.read(master, 65536):
                screen.extend(chunk)
        except OSError:
            pass

    threading.Thread(target=drain, daemon=True).start()
    db = home / "data" / "ohlora.db"
    replies = "SELECT persona, content, stop_reason FROM messages WHERE role = 'assistant' ORDER BY id"

    def wait(what: str, cond) -> None:
        deadline = time.monotonic() + STEP_S
        while not cond():
            assert proc.poll() is None, f"the app exited while waiting for {what}: {bytes(screen[-3000:])!r}"
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.2)

    def say(text: str, n: int) -> None:
        os.write(master, text.encode() + b"\r")
        wait(f"reply {n}", lambda: len(_rows(db, replies)) >= n)

    try:
        wait("the model", lambda: "model_ready" in (timings.read_text() if timings.exists() else ""))
        say("안녕! 오늘 처음 와 봤어", 1)
        say("나 다음 주에 제주도 여행 가", 2)
        os.write(master, b"\x14")  # Ctrl+T: the next persona
        time.sleep(1.0)
        say("토니, 여행 가방 싸는 팁 있어?", 3)
        got = _rows(db, replies)
        os.write(master, b"\x11")  # Ctrl+Q
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        os.close(master)
    assert [p for p, _, _ in got] == ["ohlora", "ohlora", "ironman"]
    assert all(text.strip() for _, text, _ in got), got
    # a reply ends as the model stopped, or is one the app wrote itself (a written line, the clock)
    assert all(reason in ("end_of_turn", "stop_string", "max_tokens", *APP_REPLIES) for _, _, reason in got), got
    assert b"error:" not in bytes(screen), bytes(screen)[-3000:]
    users = _rows(db, "SELECT content FROM messages WHERE role = 'user' ORDER BY id")
    assert [u for (u,) in users] == ["안녕! 오늘 처음 와 봤어", "나 다음 주에 제주도 여행 가", "토니, 여행 가방 싸는 팁 있어?"]
