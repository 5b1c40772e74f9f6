"""Answers for `ohlora eval`, through the real session: prompts, tell-then-ask dialogues, reading sheets.

- `generate_answers`: each prompt in a fresh single-turn chat.
- `run_dialogues`: each dialogue on a fresh memory; the tell turns are said in one
  conversation (the model answers them, memory observes them), then the ask in a NEW
  conversation, so only memory can carry the fact across. Run with and without memory.
- `write_sheet`: every prompt and reply as Markdown, for reading (and rating blind).
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Callable

from ohlora.errors import UserError
from training.evaluate import Answer


def generate_answers(persona, prompts, settings, base_only: bool = False,
                     progress: Callable[[], None] | None = None, base: str | None = None) -> list[Answer]:
    """One fresh single-turn chat per prompt, with the persona's own generation settings."""
    from ohlora.chat import ChatSession

    session = ChatSession(settings, persona, use_adapter=not base_only, base_override=base)
    if session.guards is not None:
        session.guards.lines(session.persona)  # wait for the written lines: every prompt sees the same app
    answers = []
    for prompt, ref in prompts:
        session.history.clear()
        asked = datetime.now()
        for _ in session.send(prompt):
            pass
        r = session.last
        answers.append(Answer(prompt, r.text, r.stop_reason, r.completion_tokens, r.tokens_per_s, ref,
                              by_app=session.last_guard is not None, now=f"{asked:%Y-%m-%d %H:%M}"))
        if progress:
            progress()
    return answers


# -- tell-then-ask dialogues -----------------------------------------------------------
@dataclass
class Dialogue:
    persona: str
    tell: list[str]
    ask: str
    expect_any: list[str]
    category: str = ""


@dataclass
class DialogueResult:
    dialogue: Dialogue
    memory: bool  # run with memory on
    reply: str
    hit: bool  # the reply contains an expected string
    recalled: list[str] = field(default_factory=list)  # what memory put into the ask's prompt
    in_prompt: bool = False  # an expected string was among the recalled memories

    def as_dict(self) -> dict:
        d = self.dialogue
        return {"persona": d.persona, "tell": d.tell, "ask": d.ask, "expect_any": d.expect_any,
                "category": d.category, "memory": self.memory, "answer": self.reply, "hit": self.hit,
                "recalled": self.recalled, "fact_in_prompt": self.in_prompt}


def read_dialogues(path: Path) -> list[Dialogue]:
    """JSONL, one {"persona", "tell": [...], "ask", "expect_any": [...]} a line; errors name the line."""
    if not path.is_file():
        raise UserError(f"dialogues file not found: {path}")
    out: list[Dialogue] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}:{n}: invalid JSON ({exc.msg} at column {exc.colno})") from None
        tell, expect = obj.get("tell") if isinstance(obj, dict) else None, obj.get("expect_any") if isinstance(obj, dict) else None
        if not (isinstance(obj, dict) and isinstance(obj.get("persona"), str) and isinstance(obj.get("ask"), str)
                and obj["ask"].strip() and isinstance(tell, list) and tell and all(isinstance(t, str) and t.strip() for t in tell)
                and isinstance(expect, list) and expect and all(isinstance(e, str) and e for e in expect)):
            raise UserError(f"{path}:{n}: each line needs 'persona', 'tell' (non-empty list of strings), "
                            "'ask' and 'expect_any' (non-empty list of strings)")
        out.append(Dialogue(obj["persona"], tell, obj["ask"], expect, str(obj.get("category", ""))))
    if not out:
        raise UserError(f"{path}: no dialogues")
    return out


def _hit(text: str, expect: list[str]) -> bool:
    low = text.lower()
    return any(e.lower() in low for e in expect)


def run_dialogues(dialogues: list[Dialogue], settings, *, memory: bool, base: str | None = None,
                  progress: Callable[[], None] | None = None) -> list[DialogueResult]:
    """Each dialogue on a fresh memory store (in a temporary folder, never the user's)."""
    from memory import MemoryStore

    from ohlora.backends import EnginePool
    from ohlora.chat import ChatSession
    from ohlora.conversation import Conversation
    from ohlora.registry import make_embedder

    settings = replace(settings, memory=memory)
    pool = EnginePool(settings, settings.backend)  # one engine for every dialogue
    results: list[DialogueResult] = []
    with tempfile.TemporaryDirectory(prefix="ohlora-dialogues-") as tmp:
        for i, d in enumerate(dialogues):
            store = MemoryStore(Path(tmp) / f"m{i}.db", lambda: make_embedder(settings.embedder)) if memory else None
            try:
                if memory:
                    session = ChatSession(settings, d.persona, base_override=base, pool=pool, memory=store)
                    telling = Conversation(session)
                    for text in d.tell:
                        for _ in telling.say(text):
                            pass
                session = ChatSession(settings, d.persona, base_override=base, pool=pool, memory=store)
                asking = Conversation(session)  # a new conversation: no history from the tells
                reply = "".join(asking.say(d.ask)).strip()
                recalled = session.last_memories
                results.append(DialogueResult(d, memory, reply, _hit(reply, d.expect_any), recalled,
                                              any(_hit(m, d.expect_any) for m in recalled)))
            finally:
                if store is not None:
                    store.close()
            if progress:
                progress()
    return results


def dialogue_report(results: list[DialogueResult]) -> dict:
    """Share of replies that carry the fact, with memory and without, overall and per persona."""
    out: dict = {}
    for mode in (True, False):
        sel = [r for r in results if r.memory is mode]
        if not sel:
            continue
        key = "with_memory" if mode else "without_memory"
        out[key] = {"n": len(sel), "fact_in_reply": round(sum(r.hit for r in sel) / len(sel), 4)}
        if mode:
            out[key]["fact_in_prompt"] = round(sum(r.in_prompt for r in sel) / len(sel), 4)
        for pid in sorted({r.dialogue.persona for r in sel}):
            ps = [r for r in sel if r.dialogue.persona == pid]
            out[key][pid] = round(sum(r.hit for r in ps) / len(ps), 4)
    return out


# -- reading sheets ----------------------------------------------------------------------
def write_sheet(path: Path, title: str, rows: list[dict]) -> None:
    """Markdown for reading: each item's prompt (or dialogue) and the reply, numbered."""
    lines = [f"# {title}", "", f"_{len(rows)} items, written {datetime.now():%Y-%m-%d %H:%M}_", ""]
    for i, r in enumerate(rows, 1):
        lines.append(f"## {i}")
        if r.get("tell"):
            for t in r["tell"]:
                lines.append(f"> **told earlier:** {t}")
            lines.append(f"> **asks (new conversation):** {r['ask']}")
        else:
            lines.append(f"> **user:** {r['prompt']}")
        lines.append("")
        lines.append(r.get("answer") or r.get("text") or "")
        notes = []
        if r.get("recalled"):
            notes.append("recalled: " + " / ".join(r["recalled"]))
        if r.get("stop_reason") and r["stop_reason"] not in ("end_of_turn", "stop_string"):
            notes.append(f"stopped by {r['stop_reason']}")
        if notes:
            lines += ["", "_" + "; ".join(notes) + "_"]
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
