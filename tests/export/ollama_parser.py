"""A small reader of Ollama's Modelfile syntax, to check what `ohlora export` writes.

It follows the rules of Ollama's parser (parser/parser.go): a command word
(FROM, PARAMETER, TEMPLATE, SYSTEM, ADAPTER, LICENSE, MESSAGE, ...; any case), then a value:
a bare word, a "quoted" string or a \"\"\"triple-quoted\"\"\" block that may span lines, with
no escape sequences; `#` starts a comment line; PARAMETER takes a name of letters, digits
and `_`; a FROM line is required. On top of that it checks what `ollama create` checks
later: parameter names and value types, and that a TEMPLATE's Go actions are balanced.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

COMMANDS = {"from", "license", "template", "system", "adapter", "draft", "renderer", "parser",
            "parameter", "message", "requires"}
ROLES = {"system", "user", "assistant"}
# Ollama's api.Options / Runner fields: name -> type
PARAMS = {
    "num_keep": int, "seed": int, "num_predict": int, "top_k": int, "top_p": float, "min_p": float,
    "typical_p": float, "repeat_last_n": int, "temperature": float, "repeat_penalty": float,
    "presence_penalty": float, "frequency_penalty": float, "stop": str, "num_ctx": int,
    "num_batch": int, "num_gpu": int, "main_gpu": int, "use_mmap": bool, "num_thread": int,
}


class ModelfileError(ValueError):
    pass


@dataclass
class Modelfile:
    commands: list[tuple[str, str]] = field(default_factory=list)

    def get(self, name: str) -> list[str]:
        return [v for k, v in self.commands if k == name]


def _unquote(s: str) -> tuple[str, bool]:
    if s.startswith('"""'):
        if len(s) >= 6 and s.endswith('"""'):
            return s[3:-3], True
        return "", False
    if s.startswith('"'):
        if len(s) >= 2 and s.endswith('"'):
            return s[1:-1], True
        return "", False
    return s, True


def _step(state: str, ch: str, line: int) -> tuple[str, str | None]:
    """One character: the next state and the character kept (None: dropped), as Ollama does."""
    space, newline = ch in " \t", ch in "\r\n"
    alpha = ch.isascii() and ch.isalpha()
    if state == "nil":
        return ("comment", None) if ch == "#" else (("nil", None) if space or newline else ("name", ch))
    if state == "comment":
        return ("nil", None) if newline else ("comment", None)
    if state == "value":
        return ("nil", ch) if space or newline else ("value", ch)
    ok = alpha or (state == "parameter" and ch.isascii() and (ch.isdigit() or ch == "_"))
    if ok:
        return state, ch
    if space:
        return "value", None
    raise ModelfileError(f"line {line}: unexpected {ch!r} after a {state}")


def parse(text: str) -> Modelfile:
    """Parse like Ollama: ModelfileError(line N: ...) on what Ollama would reject."""
    mf = Modelfile()
    state, buf, name, role, line = "nil", "", "", "", 1
    for ch in text:
        if ch in "\r\n":
            line += 1
        nxt, emit = _step(state, ch, line)
        if nxt != state:
            if state == "name":
                low = buf.lower()
                if low not in COMMANDS:
                    raise ModelfileError(f"line {line}: unknown command {buf!r}")
                name = "model" if low == "from" else low
                if low in ("parameter", "message"):
                    nxt = low
            elif state == "parameter":
                name = buf
            elif state == "message":
                if buf not in ROLES:
                    raise ModelfileError(f"line {line}: message role {buf!r}")
                role = buf
            elif state == "value":
                value, ok = _unquote(buf.strip())
                if not ok or ch in " \t":
                    buf += ch  # inside quotes, or a space inside a bare value
                    continue
                mf.commands.append((name, f"{role}: {value}" if role else value))
                role = ""
            buf = ""
            state = nxt
        if emit is not None and emit.isprintable():
            buf += emit
    if state == "value":
        value, ok = _unquote(buf.strip())
        if not ok:
            raise ModelfileError("unexpected end of file inside a quoted value")
        mf.commands.append((name, f"{role}: {value}" if role else value))
    elif state not in ("nil", "comment"):
        raise ModelfileError("unexpected end of file")
    if not mf.get("model"):
        raise ModelfileError("no FROM line")
    return mf


def check_parameters(mf: Modelfile) -> None:
    for name, value in mf.commands:
        if name in {"model", "template", "system", "license", "adapter", "message", "draft", "renderer",
                    "parser", "requires"}:
            continue
        if name not in PARAMS:
            raise ModelfileError(f"unknown parameter {name!r}")
        kind = PARAMS[name]
        if kind is int:
            int(value)
        elif kind is float:
            float(value)
        elif kind is bool and value.lower() not in ("true", "false"):
            raise ModelfileError(f"parameter {name} wants a bool, got {value!r}")


_ACTION = re.compile(r"{{-?\s*(.*?)\s*-?}}", re.S)


def check_go_template(template: str) -> None:
    """Every `{{` closes, and if/range/with/define/block balance with end (else inside)."""
    if template.count("{{") != template.count("}}"):
        raise ModelfileError("unbalanced {{ }} in TEMPLATE")
    depth = 0
    for m in _ACTION.finditer(template):
        word = m.group(1).split(" ", 1)[0]
        if word in ("if", "range", "with", "define", "block"):
            depth += 1
        elif word == "end":
            depth -= 1
            if depth < 0:
                raise ModelfileError("{{ end }} without an opening action")
        elif word == "else" and depth == 0:
            raise ModelfileError("{{ else }} outside if/range/with")
    if depth != 0:
        raise ModelfileError(f"{depth} unclosed if/range/with in TEMPLATE")
