"""Helpers for driving the real chat app with Textual's pilot."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import replace

from ohlora.config import get_paths, load_settings

SHORT = {"max_tokens": 4, "seed": 7}  # short, repeatable replies keep the slow tests short
SIZE = (100, 32)


def settings(**kw):
    """The user's settings with memory off (the memory package has its own tests) and no
    background alternatives (tests of swipes turn them on: `swipes_ahead=1`)."""
    kw.setdefault("swipes_ahead", 0)
    return replace(load_settings(), memory=False, **kw)


def make_app(**kw):
    from ohlora.tui.app import OhloraApp

    kw.setdefault("generation_overrides", dict(SHORT))
    return OhloraApp(settings(), **kw)


async def wait_for(pilot, cond, timeout: float = 240.0, step: float = 0.1) -> None:
    """Let the app run until cond() is true (model work happens in thread workers)."""
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout}s waiting for {cond}")
        await pilot.pause(step)


async def type_and_send(pilot, text: str) -> None:
    from ohlora.tui.widgets import ChatInput

    field = pilot.app.query_one(ChatInput)
    field.focus()
    field.insert(text)
    await pilot.press("enter")
    await pilot.pause()


def rows(sql: str, args: tuple = ()) -> list[tuple]:
    """Read the real SQLite file the app writes, with a separate connection."""
    con = sqlite3.connect(get_paths().db_file)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def no_model(app) -> None:
    """For tests of the UI alone: the model 'failed', so replies end at once with an error."""
    app.model_error = "not loaded in this test"
    app.model_ready.set()





def make_fake_app(monkeypatch, tmp_path, replies: list[str], delay: float = 0.0, **kw):
    """The real app on the scripted engine (no model): replies in turn, `delay` seconds a word."""
    import json

    from ohlora.tui.app import OhloraApp

    script = tmp_path / "script.json"
    script.write_text(json.dumps(replies, ensure_ascii=False), encoding="utf-8")
    monkeypatch.setenv("OHLORA_FAKE_SCRIPT", str(script))
    monkeypatch.setenv("OHLORA_FAKE_DELAY", str(delay))
    memory = kw.pop("memory", False)
    embedder = kw.pop("embedder", "hash")
    ahead = kw.pop("swipes_ahead", 0)  # background alternatives take replies from the script too
    return OhloraApp(replace(load_settings(), backend="fake", memory=memory, embedder=embedder, swipes_ahead=ahead), **kw)


def engine(app):
    """The scripted engine the app loaded."""
    return next(iter(app.session.pool.engines.values()))
