"""Memory files: the JSON `ohlora memory export` writes and `import` reads (bench files too).

    {"format": "ohlora-memory", "version": 1, "memories": [{"text": ..., "created_at"?, "event_date"?,
                                                           "persona"?, "superseded_by"?, ...}]}
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from memory.types import Memory
from ohlora.errors import UserError


@dataclass(frozen=True)
class Imported:
    """One memory of an export to add: its text, when it was said and about, whose it was."""

    text: str
    created_at: str | None = None
    event_date: str | None = None
    persona: str | None = None


def write_export(path: Path, memories: list[Memory]) -> None:
    """Write `memories` as an export; vectors are not exported."""
    data = {"format": "ohlora-memory", "version": 1, "memories": [m.to_dict() for m in memories]}
    Path(path).write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")


def read_export(path: Path, max_chars: int) -> list[Imported]:
    """The active memories of an export (or a bench file), each checked; UserError names the first bad one.
    Superseded ones are left out; a text may repeat (the store skips what it already holds)."""
    items = load_json(Path(path)).get("memories")
    if not isinstance(items, list):
        raise UserError(f"{path}: no 'memories' list")
    out: list[Imported] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("text"), str) or not item["text"].strip():
            raise UserError(f"{path}: memories[{i}]: needs a non-empty 'text' string")
        text = item["text"].strip()
        if len(text) > max_chars:
            raise UserError(f"{path}: memories[{i}]: text longer than {max_chars} characters")
        if item.get("superseded_by") is not None:
            continue
        out.append(Imported(text, *(item.get(k) if isinstance(item.get(k), str) else None
                                    for k in ("created_at", "event_date", "persona"))))
    return out


def load_json(path: Path) -> dict:
    """Read a JSON object from `path`; UserError with line and column when it is malformed."""
    try:
        data = json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a JSON object at the top level")
    return data


def read_text(path: Path) -> str:
    """A UTF-8 text file; UserError when it is missing, not UTF-8 or cannot be read."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror})") from None
