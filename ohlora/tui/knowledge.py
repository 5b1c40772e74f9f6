"""What the persona knows besides the chat: memory (F2 panel, /remember, /forget) and the lorebook (F4)."""

from __future__ import annotations


from ohlora.errors import UserError
from ohlora.tui.part import AppPart
from ohlora.tui.screens import MemoryScreen


class Knowledge(AppPart):
    """The memory panel and commands, and the lorebook view."""

    def memory_panel(self) -> None:
        app = self.app
        off = app.memory_off if app.memory is None or getattr(app.memory, "state", "") == "failed" else ""
        recalled = [f"{r.memory.text}  (#{r.memory.id}, score {getattr(r, 'score', r.cosine):.2f}, cosine {r.cosine:.2f}"
                    + (f", {r.why}" if getattr(r, "why", "") else "") + ")" for r in app.session.last_recalled]
        app.push_screen(MemoryScreen(None if off else app.memory, recalled, off))

    def remember(self, text: str = "") -> None:
        app = self.app
        if app.memory is None:
            app.system_line(app.memory_off, error=True)
        elif not text.strip():
            app.system_line("Usage: /remember TEXT")
        elif app.attempt(app.memory.add, text.strip(), persona=None):
            app.notify(f"will remember: {text.strip()}", timeout=3)

    def forget(self, mid: str = "") -> None:
        app = self.app
        if app.memory is None:
            app.system_line(app.memory_off, error=True)
            return
        try:
            gone = app.memory.forget(mid)
        except UserError as exc:
            app.system_line(str(exc), error=True)
        else:
            app.notify(f"forgot #{gone.id}: {gone.text}", timeout=3)

    def lore(self) -> None:
        """The lorebook entries the last message triggered, and the ones left out."""
        app = self.app
        lore = app.session.lore()
        persona = app.session.persona
        if lore.error:
            app.system_line(f"The lorebook could not be read: {lore.error}", error=True)
            return
        if not lore.books:
            app.system_line(f"{persona.name} has no lorebook. Import a card with a `character_book`, or attach a "
                            f"World Info file: `ohlora persona import FILE --into {persona.id}`.")
            return
        entries = sum(len(b.entries) for b in lore.books)
        head = f"Lorebook of {persona.name}: {len(lore.books)} book(s), {entries} entries."
        hits = app.session.last_lore
        if not hits:
            app.system_line(head + "\n\nNothing fired for the last message.")
            return
        lines = [f"- {'✓' if h.included else '✗'} {h.line()}" for h in hits]
        app.system_line(head + "\n\nFor the last message:\n" + "\n".join(lines))
