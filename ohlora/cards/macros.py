"""Card macros, expanded when a persona is used (the persona files keep them as written):

    {{char}} / <BOT>        the character's name (V3: its nickname when it has one)
    {{user}} / <USER>       the user's name (`user_name` in config.toml)
    {{random:a,b,c}}        one of the choices (also {{random::a::b}}); {{pick:...}} alike
    {{newline}}, {{noop}}, {{// comment}}

Unknown macros are left as they are. `{{random}}` is drawn once per session (a seeded
`random.Random`), so the persona's text, which opens every prompt, stays the same from turn
to turn and the engine keeps reusing its cache.
"""

from __future__ import annotations

import random
import re

_MACRO = re.compile(r"\{\{(.*?)\}\}", re.S)
_LEGACY = re.compile(r"<(USER|BOT)>")


def expand(text: str, char: str, user: str, rng: random.Random | None = None) -> str:
    if "{{" not in text and "<" not in text:
        return text
    rng = rng or random.Random(0)

    def one(m: re.Match) -> str:
        body = m.group(1)
        key = body.strip().lower()
        if key == "char":
            return char
        if key == "user":
            return user
        if key == "newline":
            return "\n"
        if key == "noop" or key.startswith("//"):
            return ""
        for prefix in ("random", "pick"):
            if key.startswith(prefix + ":"):
                rest = body.strip()[len(prefix) + 1:]
                if rest.startswith(":"):
                    choices = rest[1:].split("::")
                else:
                    choices = [c.replace("\\,", ",") for c in re.split(r"(?<!\\),", rest)]
                return rng.choice(choices).strip() if choices else ""
        return m.group(0)

    text = _MACRO.sub(one, text)
    return _LEGACY.sub(lambda m: user if m.group(1) == "USER" else char, text)


def default_user_name(language: str) -> str:
    return "사용자" if language == "ko" else "User"
