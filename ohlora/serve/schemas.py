"""The chat-completions request, parsed by hand so every bad input gets an OpenAI-style body.

`parse_chat(body, headers)` returns a `ChatRequest` or raises `APIError` (status, message,
type, param, code). Nothing here knows the models; `ohlora.serve.service` resolves `model`.
Fields the server does not use (presence_penalty, logit_bias, tools, ...) are accepted and
ignored, as the front-ends send them; `n` > 1 and the roles no template can take are refused.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from ohlora.chat import MAX_INPUT_CHARS, clean_input
from ohlora.errors import UserError
from ohlora.serve import MAX_BODY_BYTES  # noqa: F401 - re-exported for the app

MAX_MESSAGES = 1000
MAX_MESSAGE_CHARS = MAX_INPUT_CHARS
MAX_STOP = 4
MAX_STOP_CHARS = 200
MAX_TOKENS_CAP = 1_000_000  # anything above is an error before the model's own limit is read
USER_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@+-]{0,63}$")

USER_HEADERS = ("x-ohlora-user", "x-openwebui-user-id")
CONVERSATION_HEADER = "x-ohlora-conversation"
MEMORY_HEADER = "x-ohlora-memory"
_OFF = ("off", "0", "false", "no")
_ON = ("on", "1", "true", "yes")


class APIError(Exception):
    """An error the client gets as {"error": {...}} with an HTTP status."""

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None, headers: Mapping[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = dict(headers or {})

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def bad(message: str, param: str | None = None, code: str | None = None) -> APIError:
    return APIError(400, message, param=param, code=code)


@dataclass
class ChatRequest:
    model: str
    text: str  # the new user message (last of `messages`)
    prior: list[tuple[str, str]] = field(default_factory=list)  # (user|assistant, content) before it
    system: str = ""  # the client's system/developer messages, joined
    stream: bool = False
    include_usage: bool = False
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    user: str | None = None  # None: the machine's owner (the TUI's memory and conversations)
    conversation: int | str | None = None  # an id, "new", or None (stateless: found by its history)
    memory: bool = True


def parse_json(raw: bytes) -> dict:
    def no_constant(name: str) -> Any:
        raise ValueError(f"{name} is not valid JSON")

    try:
        body = json.loads(raw.decode("utf-8"), parse_constant=no_constant)
    except UnicodeDecodeError:
        raise bad("the request body is not UTF-8 text", code="invalid_json") from None
    except (ValueError, RecursionError) as exc:
        raise bad(f"could not parse the JSON body: {exc}", code="invalid_json") from None
    if not isinstance(body, dict):
        raise bad("the JSON body must be an object", code="invalid_json")
    return body


def _number(body: dict, key: str, lo: float, hi: float) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise bad(f"'{key}' must be a number, got {_kind(value)}", key, "invalid_type")
    if not lo <= value <= hi:
        raise bad(f"'{key}' must be between {lo:g} and {hi:g}, got {value}", key, "invalid_value")
    return float(value)


def _integer(body: dict, key: str) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad(f"'{key}' must be an integer, got {_kind(value)}", key, "invalid_type")
    return value


def _kind(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), type(value).__name__)


def _content(message: dict, i: int) -> str:
    content = message.get("content")
    where = f"messages[{i}].content"
    if isinstance(content, list):  # content parts: text only
        texts = []
        for j, part in enumerate(content):
            if not isinstance(part, dict) or not isinstance(part.get("type"), str):
                raise bad(f"{where}[{j}] must be an object with a 'type'", where, "invalid_type")
            if part["type"] != "text":
                raise bad(f"{where}[{j}]: content of type '{part['type']}' is not supported (text only)",
                          where, "unsupported_content")
            if not isinstance(part.get("text"), str):
                raise bad(f"{where}[{j}].text must be a string", where, "invalid_type")
            texts.append(part["text"])
        content = "\n".join(texts)
    if not isinstance(content, str):
        raise bad(f"{where} must be a string or an array of text parts, got {_kind(content)}", where, "invalid_type")
    if len(content) > MAX_MESSAGE_CHARS:
        raise bad(f"{where} has {len(content)} characters; at most {MAX_MESSAGE_CHARS} are accepted",
                  where, "message_too_long")
    try:
        return clean_input(content)
    except UserError:
        raise bad(f"{where} is empty", where, "empty_message") from None


def _messages(body: dict) -> tuple[str, list[tuple[str, str]], str]:
    msgs = body.get("messages")
    if msgs is None:
        raise bad("'messages' is required", "messages", "missing_field")
    if not isinstance(msgs, list):
        raise bad(f"'messages' must be an array, got {_kind(msgs)}", "messages", "invalid_type")
    if not msgs:
        raise bad("'messages' is empty: send at least one user message", "messages", "empty_messages")
    if len(msgs) > MAX_MESSAGES:
        raise bad(f"'messages' has {len(msgs)} entries; at most {MAX_MESSAGES} are accepted", "messages",
                  "too_many_messages")
    system: list[str] = []
    turns: list[tuple[str, str]] = []
    for i, m in enumerate(msgs):
        if not isinstance(m, dict):
            raise bad(f"messages[{i}] must be an object, got {_kind(m)}", f"messages[{i}]", "invalid_type")
        role = m.get("role")
        if not isinstance(role, str):
            raise bad(f"messages[{i}].role must be a string", f"messages[{i}].role", "invalid_type")
        if role in ("tool", "function"):
            raise bad(f"messages[{i}]: role '{role}' is not supported (this server has no tools)",
                      f"messages[{i}].role", "unsupported_role")
        if role not in ("system", "developer", "user", "assistant"):
            raise bad(f"messages[{i}]: unknown role '{role}' (use system, user or assistant)",
                      f"messages[{i}].role", "invalid_role")
        if role in ("system", "developer"):
            if turns:
                raise bad(f"messages[{i}]: a '{role}' message can only come before the conversation "
                          "(the persona's chat template has no system turn in the middle)",
                          f"messages[{i}].role", "unsupported_role")
            system.append(_content(m, i))
            continue
        turns.append((role, _content(m, i)))
    if not turns or turns[-1][0] != "user":
        raise bad("the last message must have role 'user' (the one to answer)", "messages", "invalid_role")
    return turns[-1][1], turns[:-1], "\n\n".join(system)


def _stop(body: dict) -> tuple[str, ...]:
    stop = body.get("stop")
    if stop is None:
        return ()
    items = [stop] if isinstance(stop, str) else stop
    if not isinstance(items, list) or not all(isinstance(s, str) for s in items):
        raise bad("'stop' must be a string or an array of strings", "stop", "invalid_type")
    if len(items) > MAX_STOP:
        raise bad(f"'stop' takes at most {MAX_STOP} strings", "stop", "invalid_value")
    if any(len(s) > MAX_STOP_CHARS for s in items):
        raise bad(f"each 'stop' string is at most {MAX_STOP_CHARS} characters", "stop", "invalid_value")
    return tuple(s for s in items if s)


def check_user(value: Any, param: str = "user") -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise bad(f"'{param}' must be a string, got {_kind(value)}", param, "invalid_type")
    if not USER_RE.match(value):
        raise bad(f"'{param}' must be 1-64 letters, digits or _ . @ + - (not starting with . @ + -)",
                  param, "invalid_user")
    return value


def _conversation(value: Any, param: str) -> int | str | None:
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        text = str(value)
    elif isinstance(value, str):
        text = value.strip()
    else:
        raise bad(f"'{param}' must be a conversation id or 'new', got {_kind(value)}", param, "invalid_type")
    if text.lower() == "new":
        return "new"
    if not text.isdigit() or len(text) > 18:
        raise bad(f"'{param}' must be a conversation id (a number) or 'new', got {text[:40]!r}", param,
                  "invalid_conversation")
    return int(text)


def _switch(value: str, param: str) -> bool:
    v = value.strip().lower()
    if v in _OFF:
        return False
    if v in _ON:
        return True
    raise bad(f"'{param}' must be on or off, got {value[:40]!r}", param, "invalid_value")


def parse_chat(body: dict, headers: Mapping[str, str] | None = None) -> ChatRequest:
    headers = headers or {}
    model = body.get("model")
    if model is None:
        raise bad("'model' is required (see GET /v1/models)", "model", "missing_field")
    if not isinstance(model, str) or not model.strip() or len(model) > 200:
        raise bad("'model' must be a model id from GET /v1/models", "model", "invalid_type")
    text, prior, system = _messages(body)
    stream = body.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise bad(f"'stream' must be true or false, got {_kind(stream)}", "stream", "invalid_type")
    options = body.get("stream_options")
    include_usage = False
    if options is not None:
        if not isinstance(options, dict):
            raise bad("'stream_options' must be an object", "stream_options", "invalid_type")
        include_usage = options.get("include_usage", False)
        if not isinstance(include_usage, bool):
            raise bad("'stream_options.include_usage' must be true or false", "stream_options", "invalid_type")
    n = _integer(body, "n")
    if n is not None and n != 1:
        raise bad("'n' must be 1: this server writes one reply per request", "n", "invalid_value")
    for key in ("frequency_penalty", "presence_penalty"):
        _number(body, key, -2, 2)  # accepted for compatibility, not used
    max_tokens = _integer(body, "max_completion_tokens")
    param = "max_completion_tokens"
    if max_tokens is None:
        max_tokens, param = _integer(body, "max_tokens"), "max_tokens"
    if max_tokens is not None and not 1 <= max_tokens <= MAX_TOKENS_CAP:
        raise bad(f"'{param}' must be at least 1 and fit the model's context, got {max_tokens}", param,
                  "invalid_value")
    seed = _integer(body, "seed")
    if seed is not None:
        if abs(seed) >= 1 << 63:
            raise bad("'seed' must fit in 64 bits", "seed", "invalid_value")
        seed = -1 if seed < 0 else seed % (1 << 32)  # a negative seed (SillyTavern's -1) means random
    metadata = body.get("metadata") or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise bad("'metadata' must be an object of strings", "metadata", "invalid_type")
    user = check_user(body.get("user"))
    if user is None:
        for h in USER_HEADERS:
            if headers.get(h):
                user = check_user(headers[h], h)
                break
    conversation = _conversation(metadata.get("conversation_id"), "metadata.conversation_id")
    if conversation is None and headers.get(CONVERSATION_HEADER):
        conversation = _conversation(headers[CONVERSATION_HEADER], CONVERSATION_HEADER)
    memory = True
    if "memory" in metadata:
        memory = _switch(metadata["memory"], "metadata.memory")
    elif headers.get(MEMORY_HEADER):
        memory = _switch(headers[MEMORY_HEADER], MEMORY_HEADER)
    return ChatRequest(
        model=model.strip(), text=text, prior=prior, system=system, stream=stream,
        include_usage=include_usage, temperature=_number(body, "temperature", 0, 2),
        top_p=_number(body, "top_p", 0, 1), max_tokens=max_tokens, stop=_stop(body), seed=seed,
        user=user, conversation=conversation, memory=memory,
    )
