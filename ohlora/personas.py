"""Persona specs: load `persona.toml`, validate with errors naming file and field, list.

A persona lives in a folder `<id>/` with `persona.toml`, its training data
(`train.jsonl`, `eval.jsonl`), replies written to be said as they are (`lines.jsonl`,
optional; ohlora.guards.lines) and its trained adapter (`adapter/` PEFT folder and
`adapter.gguf`). Shipped personas are in the repo's `personas/`; user personas in
the data dir's `personas/` (same layout) and win on id clashes.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ohlora.config import get_paths
from ohlora.errors import UserError

SHIPPED_DIR = Path(__file__).resolve().parent.parent / "personas"
_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
_LANGS = ("ko", "en", "auto")


@dataclass(frozen=True)
class Generation:
    temperature: float = 0.7
    top_p: float = 0.9
    top_k: int = 40
    min_p: float = 0.05
    repeat_penalty: float = 1.15
    max_tokens: int = 256
    seed: int = -1


@dataclass(frozen=True)
class ExampleTurn:
    user: str
    assistant: str


# what a message does, for `[acts]`: a persona's replies for each (ohlora/guards/acts.py says which
# act a message is); "other" gets none
ACTS = ("good_news", "bad_event", "low_mood", "funny_mishap", "plan", "advice", "choice", "about_persona",
        "knowledge", "greeting", "other")
NO_REPLY = "other"


@dataclass(frozen=True)
class Replies:
    """Lines the app says itself instead of the model (`ohlora.guards`): declining a harmful
    request, answering a user in crisis. `_en` lines are for messages without Hangul, `_polite`
    lines for Korean written in 존댓말 (a persona that matches the user's register has them).
    Empty: the app's neutral lines."""

    refuse: tuple[str, ...] = ()
    refuse_en: tuple[str, ...] = ()
    refuse_polite: tuple[str, ...] = ()
    crisis: tuple[str, ...] = ()
    crisis_en: tuple[str, ...] = ()
    crisis_polite: tuple[str, ...] = ()


@dataclass(frozen=True)
class Persona:
    id: str
    name: str
    language: str
    system_prompt: str
    greeting: str
    folder: Path
    base: str = ""
    examples: tuple[ExampleTurn, ...] = ()
    stop: tuple[str, ...] = ()
    generation: Generation = field(default_factory=Generation)
    adapter: str = "adapter"
    adapter_gguf: str = "adapter.gguf"
    description: str = ""
    replies: Replies = field(default_factory=Replies)
    aliases: tuple[str, ...] = ()  # other names users call the persona by ("로라", "토니", "Tony")
    acts: dict[str, tuple[str, ...]] = field(default_factory=dict, hash=False)  # `[acts]`: replies by act (ACTS)

    @property
    def names(self) -> tuple[str, ...]:
        """Every name the persona is called by, its own first."""
        return (self.name, *self.aliases)

    @property
    def adapter_dir(self) -> Path | None:
        """The PEFT adapter folder, if it has been trained."""
        path = self.folder / self.adapter
        return path if (path / "adapter_config.json").is_file() else None

    @property
    def adapter_gguf_path(self) -> Path | None:
        path = self.folder / self.adapter_gguf
        return path if path.is_file() else None

    @property
    def train_file(self) -> Path:
        return self.folder / "train.jsonl"

    @property
    def eval_file(self) -> Path:
        return self.folder / "eval.jsonl"


def _want(data: dict, key: str, kind: type | tuple[type, ...], src: str, required: bool = True, default=None):
    if key not in data:
        if required:
            raise UserError(f"{src}: missing field '{key}'")
        return default
    value = data[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if float in kinds and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kinds) or isinstance(value, bool) and bool not in kinds:
        names = "/".join(k.__name__ for k in kinds)
        raise UserError(f"{src}: field '{key}' must be {names}, got {type(value).__name__}")
    if isinstance(value, str) and required and not value.strip():
        raise UserError(f"{src}: field '{key}' must not be empty")
    return value


_KNOWN = {
    "id", "name", "language", "system_prompt", "greeting", "base", "examples", "stop",
    "generation", "adapter", "adapter_gguf", "description", "replies", "aliases", "acts",
}


def parse_persona(path: Path) -> Persona:
    """Load and validate one persona.toml; UserError names the file and the field."""
    src = str(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{src}: file not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{src}: invalid TOML: {exc}") from None
    unknown = sorted(set(data) - _KNOWN)
    if unknown:
        raise UserError(f"{src}: unknown field '{unknown[0]}'")
    pid = _want(data, "id", str, src)
    if not _ID_RE.match(pid):
        raise UserError(f"{src}: field 'id' must be lowercase letters, digits, '-' or '_' (got {pid!r})")
    if pid != path.parent.name:
        raise UserError(f"{src}: field 'id' is {pid!r} but the folder is named {path.parent.name!r}")
    language = _want(data, "language", str, src)
    if language not in _LANGS:
        raise UserError(f"{src}: field 'language' must be one of {', '.join(_LANGS)} (got {language!r})")
    examples = []
    for i, ex in enumerate(_want(data, "examples", list, src, required=False, default=[])):
        where = f"{src}: examples[{i}]"
        if not isinstance(ex, dict):
            raise UserError(f"{where} must be a table with 'user' and 'assistant'")
        examples.append(ExampleTurn(_want(ex, "user", str, where), _want(ex, "assistant", str, where)))
    stop = _want(data, "stop", list, src, required=False, default=[])
    if not all(isinstance(s, str) and s for s in stop):
        raise UserError(f"{src}: field 'stop' must be a list of non-empty strings")
    gen_raw = _want(data, "generation", dict, src, required=False, default={})
    gen_src = f"{src}: generation"
    gen_fields = Generation.__dataclass_fields__
    for key in gen_raw:
        if key not in gen_fields:
            raise UserError(f"{gen_src}: unknown field '{key}'")
    gen_values = {}
    for key, f in gen_fields.items():
        if key in gen_raw:
            kind = float if f.type == "float" else int
            gen_values[key] = _want(gen_raw, key, kind, gen_src)
    generation = Generation(**gen_values)
    if not 0 <= generation.temperature <= 5:
        raise UserError(f"{gen_src}: field 'temperature' must be between 0 and 5")
    if not 0 < generation.top_p <= 1:
        raise UserError(f"{gen_src}: field 'top_p' must be in (0, 1]")
    if generation.max_tokens < 1:
        raise UserError(f"{gen_src}: field 'max_tokens' must be at least 1")
    lines = _line_lists(_want(data, "replies", dict, src, required=False, default={}), f"{src}: replies",
                        list(Replies.__dataclass_fields__), f"known: {', '.join(Replies.__dataclass_fields__)}")
    acting = [a for a in ACTS if a != NO_REPLY]
    acts = _line_lists(_want(data, "acts", dict, src, required=False, default={}), f"{src}: acts",
                       [f"{a}{suffix}" for a in acting for suffix in ("", "_polite", "_en")],
                       f"an act of: {', '.join(acting)}; with _polite or _en for 존댓말 or English")
    aliases = _want(data, "aliases", list, src, required=False, default=[])
    if not all(isinstance(a, str) and a.strip() for a in aliases):
        raise UserError(f"{src}: field 'aliases' must be a list of non-empty strings")
    return Persona(
        id=pid,
        name=_want(data, "name", str, src),
        language=language,
        system_prompt=_want(data, "system_prompt", str, src),
        greeting=_want(data, "greeting", str, src),
        folder=path.parent,
        base=_want(data, "base", str, src, required=False, default=""),
        examples=tuple(examples),
        stop=tuple(stop),
        generation=generation,
        adapter=_want(data, "adapter", str, src, required=False, default="adapter"),
        adapter_gguf=_want(data, "adapter_gguf", str, src, required=False, default="adapter.gguf"),
        description=_want(data, "description", str, src, required=False, default=""),
        replies=Replies(**lines),
        aliases=tuple(a.strip() for a in aliases),
        acts=acts,
    )


def _line_lists(raw: dict, where: str, known: list[str], hint: str) -> dict[str, tuple[str, ...]]:
    """A table of lists of lines (`[replies]`, `[acts]`: for an act, its replies in 반말 or the
    persona's language, `_polite` in 존댓말, `_en` for messages without Hangul), each key one of
    `known`, each value a list of non-empty strings."""
    out: dict[str, tuple[str, ...]] = {}
    for key, value in raw.items():
        if key not in known:
            raise UserError(f"{where}: unknown field '{key}' ({hint})")
        if not isinstance(value, list) or not value or not all(isinstance(x, str) and x.strip() for x in value):
            raise UserError(f"{where}: field '{key}' must be a list of non-empty strings")
        out[key] = tuple(x.strip() for x in value)
    return out


def persona_dirs() -> list[Path]:
    """Search order: user personas first, then the shipped ones."""
    return [get_paths().user_personas_dir, SHIPPED_DIR]


def _folders() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for root in reversed(persona_dirs()):  # user dir last so it wins
        if root.is_dir():
            for toml in sorted(root.glob("*/persona.toml")):
                found[toml.parent.name] = toml
    return found


def list_personas() -> list[Persona]:
    return [parse_persona(path) for _, path in sorted(_folders().items())]


def load_persona(pid: str) -> Persona:
    folders = _folders()
    if pid not in folders:
        known = ", ".join(sorted(folders)) or "none"
        raise UserError(f"unknown persona '{pid}' (known: {known})")
    return parse_persona(folders[pid])
