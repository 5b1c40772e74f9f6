"""Lorebooks: a card's `character_book` or a standalone World Info JSON (SillyTavern), scanned
against the newest messages; the entries that fire go into this turn's context block (the
volatile part of the prompt, after the stable prefix).

Rules, per book:
- Text scanned: the last `scan_depth` messages (default 2: the new message and the reply
  before it); an entry may set its own depth (`extensions.scan_depth` / World Info `scanDepth`).
- An entry fires when it is enabled and `constant`, or one of its `keys` matches. A
  `selective` entry with `secondary_keys` also needs them, by World Info's logic (`AND ANY`
  by default; `NOT ALL`, `NOT ANY`, `AND ALL` from `extensions.selectiveLogic`).
- Keys: English and other words match as whole words (case-insensitive unless the entry is
  `case_sensitive`); `/regex/flags` keys are regular expressions; a key in Korean matches as
  Kiwi morphemes: "사과" matches "사과를", "사과가", "사과했다" (the morpheme 사과), not
  "사과문" or "사과즙" (another noun). Without kiwipiepy a particle list stands in.
- Token budget (`token_budget`, default 512): constant entries first, then higher `priority`,
  then lower `insertion_order` are admitted until the budget is spent; the rest are dropped
  (and `/lore` says so). Admitted entries are rendered in `insertion_order`.
- Recursion is off: an entry's content never triggers other entries (a book's
  `recursive_scanning` is kept on round trip but not acted on).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from ohlora.cards.spec import MAX_ENTRIES, MAX_FIELD_CHARS, CardError

if TYPE_CHECKING:
    from ohlora.personas import Persona

DEFAULT_SCAN_DEPTH = 2
DEFAULT_TOKEN_BUDGET = 512
LOGIC = {0: "AND ANY", 1: "NOT ALL", 2: "NOT ANY", 3: "AND ALL"}
_HANGUL = re.compile(r"[\uac00-\ud7a3\u3131-\u318e]")
# Kiwi tags that glue onto a word without making it another word: particles, endings, copula, suffixes
_NOUNISH = {"NNG", "NNP", "NNB", "NR", "NP", "SL", "SH", "SN", "XPN"}
_PARTICLES = ("이랑", "에게서", "에서", "에게", "한테", "으로", "로써", "처럼", "까지", "부터", "마저", "조차", "보다",
              "이나", "이라", "이야", "이다", "였", "이었", "이에요", "예요", "야", "랑", "와", "과", "은", "는", "이", "가",
              "을", "를", "의", "에", "도", "만", "로", "나", "들", "하", "해", "했")


@dataclass(frozen=True)
class Entry:
    keys: tuple[str, ...]
    content: str
    secondary_keys: tuple[str, ...] = ()
    selective: bool = False
    selective_logic: int = 0
    constant: bool = False
    enabled: bool = True
    insertion_order: int = 100
    priority: int = 10
    case_sensitive: bool = False
    name: str = ""
    scan_depth: int | None = None
    index: int = 0

    @property
    def label(self) -> str:
        return self.name or (self.keys[0] if self.keys else f"entry {self.index}")


@dataclass
class Lorebook:
    entries: list[Entry]
    name: str = ""
    scan_depth: int = DEFAULT_SCAN_DEPTH
    token_budget: int = DEFAULT_TOKEN_BUDGET
    recursive_scanning: bool = False  # read, kept, not acted on (recursion is off)
    source: str = ""


@dataclass
class Hit:
    entry: Entry
    book: str
    why: str  # "key '사과'", "constant"
    tokens: int
    included: bool = True

    def line(self) -> str:
        state = "in the prompt" if self.included else "dropped: over the token budget"
        return f"{self.entry.label} ({self.why}, {self.tokens} tokens, {state})"


# -- reading ------------------------------------------------------------------------
def _int(value: Any, default: int) -> int:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default


def _keys(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [k for k in value.split(",")]
    if not isinstance(value, list) or not all(isinstance(k, str) for k in value):
        raise CardError(f"{where}: keys must be a list of text")
    return tuple(k.strip() for k in value if k.strip())


def parse_book(obj: Any, source: str) -> Lorebook:
    """A V2/V3 `character_book` or a SillyTavern World Info file (entries keyed by uid)."""
    if not isinstance(obj, dict):
        raise CardError(f"{source}: a lorebook is a JSON object with 'entries'")
    raw = obj.get("entries")
    world_info = isinstance(raw, dict)
    if world_info:
        raw = [raw[k] for k in sorted(raw, key=lambda k: (not str(k).isdigit(), int(k) if str(k).isdigit() else 0, str(k)))]
    if not isinstance(raw, list):
        raise CardError(f"{source}: no lorebook entries (expected 'entries' as a list or an object)")
    if len(raw) > MAX_ENTRIES:
        raise CardError(f"{source}: the lorebook has {len(raw)} entries; the limit is {MAX_ENTRIES}")
    entries = []
    for i, e in enumerate(raw):
        where = f"{source}: entries[{i}]"
        if not isinstance(e, dict):
            raise CardError(f"{where} must be an object")
        content = e.get("content", "")
        if not isinstance(content, str):
            raise CardError(f"{where}: 'content' must be text")
        if len(content) > MAX_FIELD_CHARS:
            raise CardError(f"{where}: 'content' is {len(content):,} characters; the limit is {MAX_FIELD_CHARS:,}")
        ext = e.get("extensions") if isinstance(e.get("extensions"), dict) else {}
        if world_info:
            entries.append(Entry(
                keys=_keys(e.get("key"), where), content=content, secondary_keys=_keys(e.get("keysecondary"), where),
                selective=bool(e.get("selective", False)), selective_logic=_int(e.get("selectiveLogic"), 0),
                constant=bool(e.get("constant", False)), enabled=not bool(e.get("disable", False)),
                insertion_order=_int(e.get("order"), 100), priority=_int(e.get("priority"), 10),
                case_sensitive=bool(e.get("caseSensitive") or False), name=str(e.get("comment") or ""),
                scan_depth=_int(e.get("scanDepth"), 0) or None, index=i))
        else:
            entries.append(Entry(
                keys=_keys(e.get("keys"), where), content=content, secondary_keys=_keys(e.get("secondary_keys"), where),
                selective=bool(e.get("selective", False)), selective_logic=_int(ext.get("selectiveLogic"), 0),
                constant=bool(e.get("constant", False)), enabled=bool(e.get("enabled", True)),
                insertion_order=_int(e.get("insertion_order"), 100), priority=_int(e.get("priority"), 10),
                case_sensitive=bool(e.get("case_sensitive") or False), name=str(e.get("name") or e.get("comment") or ""),
                scan_depth=_int(ext.get("scan_depth"), 0) or None, index=i))
    return Lorebook(entries, name=str(obj.get("name") or ""), scan_depth=_int(obj.get("scan_depth"), DEFAULT_SCAN_DEPTH),
                    token_budget=_int(obj.get("token_budget"), DEFAULT_TOKEN_BUDGET),
                    recursive_scanning=bool(obj.get("recursive_scanning", False)), source=source)


def read_book(path: Path) -> Lorebook:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CardError(f"{path}: cannot read the lorebook ({exc})") from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CardError(f"{path}: not valid lorebook JSON ({exc})") from None
    if isinstance(obj, dict) and isinstance(obj.get("data"), dict) and "character_book" in obj["data"]:
        obj = obj["data"]["character_book"]  # a whole card: its book
    return parse_book(obj, str(path))


def is_world_info(obj: Any) -> bool:
    """A standalone lorebook file rather than a card."""
    return isinstance(obj, dict) and "entries" in obj and "spec" not in obj and "data" not in obj


def lore_dir(persona_id: str) -> Path:
    from ohlora.config import get_paths

    return get_paths().data_dir / "lorebooks" / persona_id


def books_for(persona: "Persona") -> list[Lorebook]:
    """The persona's card book (`card.json`) and the World Info files attached to it."""
    books: list[Lorebook] = []
    card = persona.folder / "card.json"
    if card.is_file():
        try:
            data = json.loads(card.read_text(encoding="utf-8")).get("data", {})
        except (OSError, json.JSONDecodeError, AttributeError) as exc:
            raise CardError(f"{card}: unreadable card ({exc})") from None
        if isinstance(data.get("character_book"), dict):
            books.append(parse_book(data["character_book"], f"{card} (character_book)"))
    for folder in (persona.folder / "lorebooks", lore_dir(persona.id)):
        if folder.is_dir():
            books += [read_book(p) for p in sorted(folder.glob("*.json"))]
    return books


# -- matching -----------------------------------------------------------------------
@lru_cache(maxsize=1)
def _kiwi():
    try:
        from memory.lexical import _kiwi as shared  # one Kiwi per process, shared with memory
    except ImportError:
        shared = None
    if shared is not None:
        try:
            return shared()
        except ImportError:
            return None
    try:
        from kiwipiepy import Kiwi
    except ImportError:
        return None
    return Kiwi()


def _skip(tag: str) -> bool:
    """Morphemes that do not make a word: particles, endings, copula, punctuation."""
    return tag.startswith(("J", "E")) or tag in ("VCP", "VCN") or (tag.startswith("S") and tag not in ("SL", "SH", "SN"))


@lru_cache(maxsize=512)
def _morphs(text: str) -> tuple[tuple[str, str, int, int], ...]:
    kiwi = _kiwi()
    return tuple((t.form, t.tag, t.start, t.start + t.len) for t in kiwi.tokenize(text)) if kiwi else ()


def _korean_match(key: str, text: str) -> bool:
    if _kiwi() is None:  # fallback: the key as a whole word, or followed by a particle
        tail = "|".join(_PARTICLES)
        return re.search(rf"(?<![\uac00-\ud7a3]){re.escape(key)}(?:{tail})?(?![\uac00-\ud7a3])", text) is not None
    want = [f for f, tag, _, _ in _morphs(key) if not _skip(tag)]
    if not want:
        return key in text
    toks = _morphs(text)
    content = [i for i, t in enumerate(toks) if not _skip(t[1])]
    n = len(want)
    for j in range(len(content) - n + 1):
        idx = content[j:j + n]
        if [toks[i][0] for i in idx] != want:
            continue
        first, last = idx[0], idx[-1]
        if first > 0:  # the morpheme before, glued to this word, must not be another noun
            prev = toks[first - 1]
            if prev[3] >= toks[first][2] and prev[1] in _NOUNISH:
                continue
        if last + 1 < len(toks):
            nxt = toks[last + 1]
            if nxt[2] <= toks[last][3] and nxt[1] in _NOUNISH:  # 사과 + 문 / 즙: another word
                continue
        return True
    return False


@lru_cache(maxsize=2048)
def _pattern(key: str, case_sensitive: bool) -> re.Pattern | None:
    m = re.fullmatch(r"/(.+)/([imsx]*)", key, re.S)
    if m:
        flags = 0
        for ch in m.group(2):
            flags |= {"i": re.I, "m": re.M, "s": re.S, "x": re.X}[ch]
        try:
            return re.compile(m.group(1), flags)
        except re.error:
            return None
    return re.compile(rf"(?<!\w){re.escape(key)}(?!\w)", 0 if case_sensitive else re.I)


def key_matches(key: str, text: str, case_sensitive: bool = False) -> bool:
    if not key or not text:
        return False
    if _HANGUL.search(key) and not key.startswith("/"):
        return _korean_match(key, text)
    pattern = _pattern(key, case_sensitive)
    return bool(pattern and pattern.search(text))


def _first_key(keys: Sequence[str], texts: Sequence[str], cs: bool) -> str | None:
    for k in keys:
        if any(key_matches(k, t, cs) for t in texts):
            return k
    return None


def _fires(e: Entry, texts: Sequence[str]) -> str | None:
    """Why the entry fires on `texts` (newest last), or None."""
    if not e.enabled:
        return None
    if e.constant:
        return "constant"
    key = _first_key(e.keys, texts, e.case_sensitive)
    if key is None:
        return None
    why = f"key '{key}'"
    if e.selective and e.secondary_keys:
        hits = [any(key_matches(k, t, e.case_sensitive) for t in texts) for k in e.secondary_keys]
        logic = e.selective_logic
        ok = {0: any(hits), 1: not all(hits), 2: not any(hits), 3: all(hits)}.get(logic, any(hits))
        if not ok:
            return None
        why += f" + secondary ({LOGIC.get(logic, 'AND ANY')})"
    return why


def scan(books: Sequence[Lorebook], messages: Sequence[str],
         count_tokens: Callable[[str], int] | None = None) -> list[Hit]:
    """The entries the newest `messages` (oldest first, the new user text last) trigger: the
    admitted ones in insertion order, then the ones dropped for the budget."""
    count = count_tokens or (lambda s: max(1, len(s) // 3))
    out: list[Hit] = []
    for book in books:
        fired: list[Hit] = []
        for e in book.entries:
            depth = e.scan_depth or book.scan_depth
            window = list(messages[-depth:]) if depth > 0 else []
            why = _fires(e, window)
            if why is not None and e.content.strip():
                fired.append(Hit(e, book.name or book.source, why, count(e.content)))
        used = 0
        for hit in sorted(fired, key=lambda h: (not h.entry.constant, -h.entry.priority, h.entry.insertion_order,
                                                h.entry.index)):
            hit.included = used + hit.tokens <= book.token_budget
            used += hit.tokens if hit.included else 0
        kept = sorted((h for h in fired if h.included), key=lambda h: (h.entry.insertion_order, h.entry.index))
        out += kept + [h for h in fired if not h.included]
    return out


@dataclass
class LoreState:
    """A session's lorebooks and what the last message triggered."""

    books: list[Lorebook] = field(default_factory=list)
    last: list[Hit] = field(default_factory=list)
    error: str = ""

    def fire(self, messages: Sequence[str], count_tokens: Callable[[str], int] | None = None) -> list[str]:
        self.last = scan(self.books, messages, count_tokens) if self.books else []
        return [h.entry.content for h in self.last if h.included]
