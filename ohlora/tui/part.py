"""The base of the chat app's helpers: each job of the app is a class that holds the app."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ohlora.tui.app import OhloraApp


class AppPart:
    """One job of the chat app; `self.app` is the app whose shared state it reads and changes."""

    def __init__(self, app: OhloraApp) -> None:
        self.app = app
