"""Switching personas: the sidebar (Ctrl+B), Ctrl+T, `/persona NAME`, `/personas`.

A switch takes effect from the next reply; the new persona greets in the same chat.
"""

from __future__ import annotations


from ohlora.tui.part import AppPart
from ohlora.tui.widgets import ChatInput, PersonaSidebar


class PersonaSwitch(AppPart):
    """Which persona answers, and the sidebar that shows it."""

    def toggle_sidebar(self) -> None:
        sidebar = self.app.query_one("#sidebar", PersonaSidebar)
        sidebar.display = not sidebar.display
        if sidebar.display:
            self.sync_sidebar()
            sidebar.focus()
        else:
            self.app.query_one(ChatInput).focus()

    def sync_sidebar(self) -> None:
        """Highlight the persona that answers now."""
        sidebar = self.app.query_one("#sidebar", PersonaSidebar)
        ids = list(self.app.personas)
        if self.app.session.persona.id in ids:
            sidebar.index = ids.index(self.app.session.persona.id)

    def next(self) -> None:
        ids = list(self.app.personas)
        current = self.app.session.persona.id
        nxt = ids[(ids.index(current) + 1) % len(ids)] if current in ids else ids[0]
        self.switch(nxt)

    def switch(self, query: str) -> None:
        """Switch to the persona `query` names (id, name, or a prefix of one)."""
        app = self.app
        pid = self._find(query)
        if pid is None:
            known = ", ".join(f"{p.id} ({p.name})" for p in app.personas.values())
            app.system_line(f"Unknown persona '{query}'. Known: {known}", error=True)
            return
        if pid == app.session.persona.id:
            app.notify(f"already talking to {app.personas[pid].name}", timeout=2)
            return
        if not app.attempt(app.session.set_persona, pid):
            return
        when = "from the next reply" if not app.generating else "after this reply"
        app.notify(f"now talking to {app.session.persona.name} ({when})", timeout=2)
        app.show_greeting()
        self.sync_sidebar()
        app.status.show()

    def _find(self, query: str) -> str | None:
        q = query.strip().lower()
        personas = self.app.personas.values()
        for p in personas:
            if q in (p.id.lower(), p.name.lower()):
                return p.id
        matches = [p.id for p in personas if p.id.startswith(q) or p.name.lower().startswith(q)]
        return matches[0] if len(matches) == 1 and q else None

    def show_all(self) -> None:
        lines = [f"- **{p.id}** ({p.name}): {p.greeting}" for p in self.app.personas.values()]
        self.app.system_line("Personas (switch with `/persona ID` or Ctrl+T):\n" + "\n".join(lines))
