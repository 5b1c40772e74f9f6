"""Character Card V2 / V3 JSON: parse, check, convert between the two, keep every field.

A `Card` holds the whole top-level object as read (`raw`), so fields ohlora does not use
(extensions, V3 decorators, an app's own keys) are written back unchanged. V1 cards (flat
fields, no `spec`) are read as V2. Everything wrong with a card is one `CardError` line.

Spec: https://github.com/malfoyslastname/character-card-spec-v2 and
https://github.com/kwaroran/character-card-spec-v3.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass
from typing import Any

from ohlora.errors import UserError

V2 = "chara_card_v2"
V3 = "chara_card_v3"
SPECS = {V2: "2.0", V3: "3.0"}

MAX_CARD_BYTES = 16 << 20  # the card JSON (lorebooks included)
MAX_FIELD_CHARS = 200_000  # any one text field
MAX_ENTRIES = 5_000  # lorebook entries
MAX_DEPTH = 24  # nesting of extension objects

TEXT_FIELDS = ("name", "description", "personality", "scenario", "first_mes", "mes_example", "creator_notes",
               "system_prompt", "post_history_instructions", "creator", "character_version")
LIST_FIELDS = ("alternate_greetings", "tags")
V1_FIELDS = ("name", "description", "personality", "scenario", "first_mes", "mes_example")
V3_ONLY = ("nickname", "creator_notes_multilingual", "source", "group_only_greetings", "creation_date",
           "modification_date", "assets")
DEFAULT_ICON = {"type": "icon", "uri": "ccdefault:", "name": "main", "ext": "png"}


class CardError(UserError):
    """A file that is not a usable character card; the message says what and where."""


@dataclass
class Card:
    raw: dict  # the whole object: {"spec", "spec_version", "data": {...}, ...anything else}
    source: str = ""  # where it was read from (for messages)

    @property
    def spec(self) -> str:
        return self.raw["spec"]

    @property
    def data(self) -> dict:
        return self.raw["data"]

    @property
    def name(self) -> str:
        return self.data["name"]

    def text(self, key: str) -> str:
        value = self.data.get(key)
        return value if isinstance(value, str) else ""

    def strings(self, key: str) -> list[str]:
        value = self.data.get(key)
        return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []

    @property
    def extensions(self) -> dict:
        ext = self.data.get("extensions")
        return ext if isinstance(ext, dict) else {}

    def to_json(self) -> str:
        return json.dumps(self.raw, ensure_ascii=False)

    def copy(self) -> "Card":
        return Card(copy.deepcopy(self.raw), self.source)


def loads(text: str | bytes, source: str) -> Card:
    """Parse card JSON text; CardError for anything that is not a card."""
    return from_object(parse_json(text, source, "card", MAX_CARD_BYTES), source)


def parse_json(text: str | bytes, source: str, what: str, limit: int) -> Any:
    """JSON of at most `limit` bytes; CardError naming `what` (a card, a lorebook) when too large or malformed."""
    if len(text) > limit:
        raise CardError(f"{source}: the {what} is {len(text) / 2**20:.0f} MiB; the limit is {limit >> 20} MiB")
    try:
        return json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CardError(f"{source}: not valid {what} JSON ({exc})") from None


def from_object(obj: Any, source: str) -> Card:
    if not isinstance(obj, dict):
        raise CardError(f"{source}: a card is a JSON object, got {type(obj).__name__}")
    spec = obj.get("spec")
    if spec is None and "data" not in obj and isinstance(obj.get("name"), str) and any(k in obj for k in V1_FIELDS[1:]):
        obj = {"spec": V2, "spec_version": "2.0", "data": {k: obj.get(k, "") for k in V1_FIELDS} | {
            "creator_notes": "", "system_prompt": "", "post_history_instructions": "", "alternate_greetings": [],
            "tags": [], "creator": "", "character_version": "", "extensions": {}}}
        spec = V2
    if spec not in SPECS:
        raise CardError(f"{source}: wrong spec {spec!r}: expected '{V2}' or '{V3}'")
    data = obj.get("data")
    if not isinstance(data, dict):
        raise CardError(f"{source}: field 'data' must be an object")
    _check_sizes(obj, source, "", 0)
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise CardError(f"{source}: field 'data.name' is missing or empty")
    for key in TEXT_FIELDS:
        if key in data and not isinstance(data[key], str):
            raise CardError(f"{source}: field 'data.{key}' must be text, got {type(data[key]).__name__}")
    for key in LIST_FIELDS:
        if key in data and not (isinstance(data[key], list) and all(isinstance(v, str) for v in data[key])):
            raise CardError(f"{source}: field 'data.{key}' must be a list of text")
    if "extensions" in data and not isinstance(data["extensions"], dict):
        raise CardError(f"{source}: field 'data.extensions' must be an object")
    book = data.get("character_book")
    if book is not None:
        if not isinstance(book, dict) or not isinstance(book.get("entries", []), list):
            raise CardError(f"{source}: field 'data.character_book' must be an object with a list of entries")
        if len(book.get("entries", [])) > MAX_ENTRIES:
            raise CardError(f"{source}: the lorebook has {len(book['entries'])} entries; the limit is {MAX_ENTRIES}")
    if spec == V3 and "assets" in data and not (isinstance(data["assets"], list)
                                                and all(isinstance(a, dict) for a in data["assets"])):
        raise CardError(f"{source}: field 'data.assets' must be a list of objects")
    return Card(obj, source)


def _check_sizes(value: Any, source: str, path: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise CardError(f"{source}: field '{path}' is nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        if len(value) > MAX_FIELD_CHARS:
            raise CardError(f"{source}: field '{path}' is {len(value):,} characters; the limit is {MAX_FIELD_CHARS:,}")
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_sizes(v, source, f"{path}.{k}" if path else str(k), depth + 1)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_sizes(v, source, f"{path}[{i}]", depth + 1)


# -- V2 <-> V3 -------------------------------------------------------------------
def to_v3(card: Card) -> Card:
    """The card as V3 (a V3 card is returned as it is)."""
    if card.spec == V3:
        return card
    out = card.copy()
    out.raw["spec"], out.raw["spec_version"] = V3, "3.0"
    data = out.data
    now = int(time.time())
    data.setdefault("nickname", "")
    data.setdefault("creator_notes_multilingual", {})
    data.setdefault("source", [])
    data.setdefault("group_only_greetings", [])
    data.setdefault("creation_date", now)
    data.setdefault("modification_date", now)
    data.setdefault("assets", [dict(DEFAULT_ICON)])
    return out


def to_v2(card: Card) -> Card:
    """The card as V2 (for the `chara` chunk older apps read): V3-only fields are dropped."""
    if card.spec == V2:
        return card
    out = card.copy()
    out.raw["spec"], out.raw["spec_version"] = V2, "2.0"
    for key in V3_ONLY:
        out.data.pop(key, None)
    return out


def new_card(fields: dict, spec: str = V3) -> Card:
    """A card from ohlora's own fields (an exported persona that was never a card)."""
    data = {key: "" for key in TEXT_FIELDS} | {"alternate_greetings": [], "tags": [], "extensions": {}}
    data.update(fields)
    card = Card({"spec": V2, "spec_version": "2.0", "data": data}, "persona")
    return to_v3(card) if spec == V3 else card
