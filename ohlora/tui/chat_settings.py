"""This chat's generation settings: F3 opens the form, `/set KEY VALUE` sets one, `/set` lists them."""

from __future__ import annotations


from ohlora.conversation import SETTINGS, parse_setting
from ohlora.errors import UserError
from ohlora.tui.part import AppPart
from ohlora.tui.screens import SettingsScreen


class ChatSettings(AppPart):
    """Per-chat overrides of the persona's generation settings (kept by `Conversation`)."""

    def _text(self) -> str:
        convo = self.app.conversation
        gen = convo.generation()
        rows = [f"- {k} = {getattr(gen, k)}" + (" (this chat)" if k in convo.overrides else "") for k in SETTINGS]
        return "Generation settings (F3 to edit, `/set KEY VALUE`, `/set KEY default`):\n" + "\n".join(rows)

    def edit(self) -> None:
        app = self.app
        defaults = {k: getattr(app.session.persona.generation, k) for k in SETTINGS}

        def done(values: dict | None) -> None:
            if values is not None and app.attempt(app.conversation.set_generation, values):
                app.system_line(self._text())

        app.push_screen(SettingsScreen(dict(app.conversation.overrides), defaults), done)

    def set_one(self, arg: str = "") -> None:
        """`/set KEY VALUE`; `/set KEY default` drops this chat's value; `/set` alone lists them."""
        app = self.app
        key, _, value = arg.strip().partition(" ")
        if not key:
            app.system_line(self._text())
            return
        values = dict(app.conversation.overrides)
        try:
            if value.strip().lower() in ("", "default", "reset"):
                parse_setting(key, getattr(app.session.persona.generation, key, 0))  # a known key?
                values.pop(key, None)
            else:
                values[key] = parse_setting(key, value.strip())
            app.conversation.set_generation(values)
        except UserError as exc:
            app.system_line(str(exc), error=True)
            return
        app.notify(f"{key} = {getattr(app.conversation.generation(), key)} for this chat", timeout=3)
