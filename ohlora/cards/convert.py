"""A card's fields <-> a persona's `persona.toml`.

Card -> persona: the system prompt is built from the card's `system_prompt`, `description`,
`personality`, `scenario` and `post_history_instructions` (in that order; `{{original}}` in
the card's system prompt stands for the default one); `first_mes` is the greeting;
`mes_example` (`<START>` blocks of `{{user}}:` / `{{char}}:` lines) becomes the example
turns; `creator_notes` the description. Macros are kept as written and expanded when the
persona is used (`ohlora.cards.macros`). A card ohlora wrote carries the persona's own fields
in `data.extensions.ohlora.persona`, which win, so persona -> card -> persona is exact.

Persona -> card: a persona imported from a card exports its stored `card.json` (every field
as it was read; name and greeting follow persona.toml if they were changed there); any
other persona becomes a new V3 card.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from ohlora.cards.spec import V3, Card, new_card

if TYPE_CHECKING:
    from ohlora.personas import Persona

_HANGUL = re.compile(r"[\uac00-\ud7a3]")
_LETTER = re.compile(r"[A-Za-z\uac00-\ud7a3]")
_ID_CHARS = re.compile(r"[^a-z0-9_-]+")
DEFAULT_SYSTEM = {"ko": "너는 {{char}}야. {{char}}로서 {{user}}와 대화해. 캐릭터를 벗어나지 마.",
                  "en": "You are {{char}}. Talk with {{user}} as {{char}} and stay in character."}
LABELS = {"ko": ("{{char}}의 성격: ", "상황: "), "en": ("{{char}}'s personality: ", "Scenario: ")}
DEFAULT_STOP = ("<end_of_turn>", "<start_of_turn>")  # as the shipped personas: a turn marker never shows


def guess_language(*texts: str) -> str:
    text = " ".join(texts)
    letters = len(_LETTER.findall(text))
    return "ko" if letters and len(_HANGUL.findall(text)) / letters > 0.2 else "en"


def slug(name: str) -> str:
    """A persona id from a card name ('Seraphina' -> 'seraphina'); Korean names get 'card-…'."""
    import hashlib

    s = _ID_CHARS.sub("-", name.lower()).strip("-_")[:40].strip("-_")
    return s or "card-" + hashlib.sha1(name.encode("utf-8")).hexdigest()[:6]


def parse_examples(text: str, char: str, user_names: tuple[str, ...] = ()) -> list[dict]:
    """`<START>` blocks of `{{user}}: …` / `{{char}}: …` lines -> [{"user", "assistant"}]."""
    user_tags = ("{{user}}", "<user>", *(u.lower() for u in user_names if u))
    char_tags = ("{{char}}", "<bot>", char.lower())
    turns: list[tuple[str, str]] = []
    for block in re.split(r"<START>", text, flags=re.I):
        for line in block.splitlines():
            head, sep, rest = line.partition(":")
            who = head.strip().lower()
            if sep and who in user_tags:
                turns.append(("user", rest.strip()))
            elif sep and who in char_tags:
                turns.append(("assistant", rest.strip()))
            elif turns and line.strip():
                role, said = turns[-1]
                turns[-1] = (role, f"{said}\n{line.strip()}".strip())
        turns.append(("break", ""))
    out = []
    for (r1, t1), (r2, t2) in zip(turns, turns[1:]):
        if r1 == "user" and r2 == "assistant" and t1 and t2:
            out.append({"user": t1, "assistant": t2})
    return out


def format_examples(examples: list[dict]) -> str:
    return "".join(f"<START>\n{{{{user}}}}: {e['user']}\n{{{{char}}}}: {e['assistant']}\n" for e in examples)


def persona_fields(card: Card, pid: str, base: str | None = None) -> dict:
    """persona.toml fields for a card."""
    own = card.extensions.get("ohlora", {})
    own = own.get("persona", {}) if isinstance(own, dict) else {}
    own = own if isinstance(own, dict) else {}
    text = card.text
    language = own.get("language") or guess_language(card.name, text("description"), text("first_mes"))
    if own.get("system_prompt"):
        system = own["system_prompt"]
    else:
        default = DEFAULT_SYSTEM["ko" if language == "ko" else "en"]
        system = text("system_prompt").replace("{{original}}", default).strip() or default
        personality_label, scenario_label = LABELS["ko" if language == "ko" else "en"]
        parts = [system, text("description").strip()]
        if text("personality").strip():
            parts.append(personality_label + text("personality").strip())
        if text("scenario").strip():
            parts.append(scenario_label + text("scenario").strip())
        parts.append(text("post_history_instructions").strip())
        system = "\n\n".join(p for p in parts if p)
    greetings = [g for g in [text("first_mes"), *card.strings("alternate_greetings")] if g.strip()]
    description = own.get("description")
    if description is None:
        description = " ".join((text("creator_notes") or text("description")).split())[:300]
    fields: dict[str, Any] = {
        "id": pid,
        "name": card.name.strip(),
        "language": language if language in ("ko", "en", "auto") else "auto",
        "description": description,
        "greeting": greetings[0].strip() if greetings else "…",
        "base": base if base is not None else str(own.get("base", "")),
        "system_prompt": system,
    }
    stop = own.get("stop")
    fields["stop"] = [s for s in stop if isinstance(s, str) and s] if isinstance(stop, list) else list(DEFAULT_STOP)
    if isinstance(own.get("generation"), dict):
        fields["generation"] = own["generation"]
    fields["examples"] = parse_examples(text("mes_example"), card.name)
    return fields


def card_from_persona(persona: "Persona", stored: Card | None) -> Card:
    """The card to export for a persona: its stored card (name and greeting from persona.toml)
    or a new V3 card that carries the persona's own fields."""
    if stored is not None:
        card = stored.copy()
        if persona.name != card.name:
            card.data["name"] = persona.name
        if persona.greeting != card.text("first_mes") and persona.greeting != "…":
            card.data["first_mes"] = persona.greeting
        return card
    own = {"id": persona.id, "language": persona.language, "system_prompt": persona.system_prompt,
           "description": persona.description, "base": persona.base, "stop": list(persona.stop),
           "generation": asdict(persona.generation)}
    return new_card({
        "name": persona.name,
        "description": persona.description,
        "system_prompt": persona.system_prompt,
        "first_mes": persona.greeting,
        "mes_example": format_examples([{"user": e.user, "assistant": e.assistant} for e in persona.examples]),
        "creator_notes": persona.description,
        "tags": ["ohlora"],
        "creator": "ohlora",
        "extensions": {"ohlora": {"persona": own}},
    }, V3)


# -- persona.toml -------------------------------------------------------------------
def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def persona_toml(fields: dict) -> str:
    lines = ["# imported from a character card by `ohlora persona import`", ""]
    for key in ("id", "name", "language", "description", "greeting", "base", "system_prompt", "stop"):
        if key in fields:
            lines.append(f"{key} = {_toml_value(fields[key])}")
    for ex in fields.get("examples", []):
        lines += ["", "[[examples]]", f"user = {_toml_value(ex['user'])}", f"assistant = {_toml_value(ex['assistant'])}"]
    gen = fields.get("generation")
    if gen:
        lines += ["", "[generation]"] + [f"{k} = {_toml_value(v)}" for k, v in gen.items()]
    return "\n".join(lines) + "\n"
