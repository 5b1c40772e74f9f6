"""Training data: one documented chat format, and importers for the formats people have.

The format (`train.jsonl`, `eval.jsonl`): one conversation a line,

    {"messages": [{"role": "system"?, "content": "..."},
                  {"role": "user", "content": "..."},
                  {"role": "assistant", "content": "..."}, ...],
     "memory": ["fact the answer may use", ...]?,
     "now": "2026-03-14T21:40"?,          # the clock the app showed (else a varied one is made up)
     "tags": ["multi", "memory", ...]?}   # free-form categories, kept for reports

An optional leading `system` turn; then user and assistant turns alternating, starting
with `user` and ending with `assistant` (every assistant turn is a training target).

Importers turn other formats into the same rows:
- CSV with question/answer columns (`--question-col`, `--answer-col`, `--system-col`);
- Alpaca JSON (a list of {instruction, input?, output, system?, history?}) or JSONL;
- a LLaMA-Factory `dataset_info.json` entry (`FILE#NAME`), `alpaca` or `sharegpt` formatting.

Malformed, empty or (later, at tokenization) too long rows become `Problem`s naming the
file and line; `strict=True` turns the first one into a UserError, otherwise they are
skipped and counted.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Iterator

from ohlora.errors import UserError

FORMATS = ("auto", "chat", "csv", "alpaca", "llamafactory")
ROLES = ("system", "user", "assistant")


@dataclass
class Conversation:
    """One training row in the chat format, with where it came from."""

    messages: list[dict]
    memory: list[str] = field(default_factory=list)
    source: str = ""  # "file:line"
    now: datetime | None = None  # the row's clock; None: training picks a varied one
    tags: list[str] = field(default_factory=list)

    @property
    def system(self) -> str | None:
        return self.messages[0]["content"] if self.messages and self.messages[0]["role"] == "system" else None

    @property
    def turns(self) -> list[dict]:
        return self.messages[1:] if self.system is not None else list(self.messages)


@dataclass
class Problem:
    source: str  # "file:line"
    reason: str

    def __str__(self) -> str:
        return f"{self.source}: {self.reason}"


@dataclass
class Dataset:
    rows: list[Conversation]
    problems: list[Problem]
    path: Path
    fmt: str

    def summary(self) -> str:
        s = f"{self.path}: {len(self.rows)} conversations ({self.fmt})"
        if self.problems:
            s += f", {len(self.problems)} skipped"
        return s


class RowError(ValueError):
    """A row that cannot be used; the message says why."""


def validate_messages(messages: Any, memory: Any = None) -> tuple[list[dict], list[str]]:
    """Check one row's turns; return clean copies or raise RowError naming the field."""
    if not isinstance(messages, list) or not messages:
        raise RowError("'messages' must be a non-empty list")
    clean: list[dict] = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise RowError(f"messages[{i}] must be an object with 'role' and 'content'")
        role, content = m.get("role"), m.get("content")
        if role not in ROLES:
            raise RowError(f"messages[{i}].role must be one of {', '.join(ROLES)} (got {role!r})")
        if not isinstance(content, str):
            raise RowError(f"messages[{i}].content must be a string")
        if not content.strip():
            raise RowError(f"messages[{i}].content is empty")
        if role == "system" and i != 0:
            raise RowError(f"messages[{i}]: a system turn may only come first")
        clean.append({"role": role, "content": content.strip()})
    turns = clean[1:] if clean[0]["role"] == "system" else clean
    if not turns:
        raise RowError("no user/assistant turns")
    for i, m in enumerate(turns):
        want = "user" if i % 2 == 0 else "assistant"
        if m["role"] != want:
            offset = len(clean) - len(turns)
            raise RowError(f"messages[{i + offset}] should be a {want} turn (turns alternate, user first)")
    if turns[-1]["role"] != "assistant":
        raise RowError("the last turn must be an assistant turn")
    mem: list[str] = []
    if memory is not None:
        if not isinstance(memory, list) or not all(isinstance(x, str) and x.strip() for x in memory):
            raise RowError("'memory' must be a list of non-empty strings")
        mem = [x.strip() for x in memory]
    return clean, mem


def parse_now(value: Any) -> datetime | None:
    """A row's "now" ("2026-03-14T21:40"); RowError if it is not an ISO date-time."""
    if value is None:
        return None
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        raise RowError(f"'now' must be an ISO date-time like 2026-03-14T21:40 (got {value!r})") from None


class _Collector:
    def __init__(self, path: Path, strict: bool) -> None:
        self.path, self.strict = path, strict
        self.rows: list[Conversation] = []
        self.problems: list[Problem] = []

    def add(self, where: str, make, now: Any = None, tags: Any = None) -> None:
        try:
            messages, memory = make()
            self.rows.append(Conversation(messages, memory, f"{self.path}:{where}", parse_now(now),
                                          [str(t) for t in tags] if isinstance(tags, list) else []))
        except RowError as exc:
            self.problem(where, str(exc))

    def problem(self, where: str, reason: str) -> None:
        p = Problem(f"{self.path}:{where}", reason)
        if self.strict:
            raise UserError(f"{p} (--strict)")
        self.problems.append(p)

    def done(self, fmt: str) -> Dataset:
        if not self.rows:
            extra = f"; first problem: {self.problems[0]}" if self.problems else ""
            raise UserError(f"{self.path}: no usable conversations{extra}")
        return Dataset(self.rows, self.problems, self.path, fmt)


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise UserError(f"data file not found: {path}")
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def _jsonl_objects(path: Path, col: _Collector) -> Iterator[tuple[int, dict]]:
    for n, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            col.problem(str(n), f"invalid JSON ({exc.msg}, column {exc.colno})")
            continue
        if not isinstance(obj, dict):
            col.problem(str(n), "a line must be a JSON object")
            continue
        yield n, obj


def load_chat_jsonl(path: Path, strict: bool = False) -> Dataset:
    """The documented format: one {"messages": [...], "memory"?: [...]} per line."""
    col = _Collector(path, strict)
    for n, obj in _jsonl_objects(path, col):
        if "messages" not in obj:
            col.problem(str(n), "missing field 'messages'")
            continue
        col.add(str(n), lambda obj=obj: validate_messages(obj["messages"], obj.get("memory")),
                obj.get("now"), obj.get("tags"))
    return col.done("chat")


def load_csv(
    path: Path,
    question_col: str = "question",
    answer_col: str = "answer",
    system_col: str | None = None,
    strict: bool = False,
) -> Dataset:
    """CSV (or TSV by extension) with a header row; one single-turn conversation a row."""
    text = _read_text(path)
    col = _Collector(path, strict)
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    reader = csv.DictReader(text.splitlines(keepends=True), delimiter=delimiter)
    header = reader.fieldnames or []
    for name, flag in ((question_col, "--question-col"), (answer_col, "--answer-col"), (system_col, "--system-col")):
        if name is not None and name not in header:
            raise UserError(
                f"{path}: no column '{name}' (columns: {', '.join(header) or 'none'}); choose it with {flag}"
            )
    start = reader.line_num
    for row in reader:
        where = str(reader.line_num if reader.line_num else start)
        if None in row:
            col.problem(where, f"more fields than the header has ({len(header)})")
            continue

        def make(row=row):
            q, a = row.get(question_col), row.get(answer_col)
            if q is None or a is None:
                raise RowError("fewer fields than the header has")
            msgs = [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
            if system_col and (row.get(system_col) or "").strip():
                msgs.insert(0, {"role": "system", "content": row[system_col]})
            return validate_messages(msgs)

        col.add(where, make)
    return col.done("csv")


def _alpaca_messages(obj: dict, cols: dict[str, str]) -> list[dict]:
    """Alpaca row -> turns; `cols` maps prompt/query/response/system/history to keys."""
    instruction = obj.get(cols["prompt"])
    query = obj.get(cols["query"]) or ""
    response = obj.get(cols["response"])
    if not isinstance(instruction, str) or not isinstance(response, str):
        raise RowError(f"'{cols['prompt']}' and '{cols['response']}' must be strings")
    if not isinstance(query, str):
        raise RowError(f"'{cols['query']}' must be a string")
    msgs: list[dict] = []
    system = obj.get(cols["system"])
    if isinstance(system, str) and system.strip():
        msgs.append({"role": "system", "content": system})
    history = obj.get(cols["history"]) or []
    if not isinstance(history, list):
        raise RowError(f"'{cols['history']}' must be a list of [question, answer] pairs")
    for i, pair in enumerate(history):
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, str) for x in pair)):
            raise RowError(f"{cols['history']}[{i}] must be a [question, answer] pair of strings")
        msgs += [{"role": "user", "content": pair[0]}, {"role": "assistant", "content": pair[1]}]
    prompt = instruction.strip() + ("\n\n" + query.strip() if query.strip() else "")
    msgs += [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]
    return msgs


_ALPACA_COLS = {"prompt": "instruction", "query": "input", "response": "output", "system": "system", "history": "history"}


def _json_items(path: Path, col: _Collector) -> Iterable[tuple[str, Any]]:
    """Items of a JSON array (where = 'item N') or of a JSONL file (where = line)."""
    text = _read_text(path)
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})") from None
        return [(f"item {i}", obj) for i, obj in enumerate(data)]
    return [(str(n), obj) for n, obj in _jsonl_objects(path, col)]


def load_alpaca(path: Path, strict: bool = False, cols: dict[str, str] | None = None) -> Dataset:
    cols = {**_ALPACA_COLS, **(cols or {})}
    col = _Collector(path, strict)
    for where, obj in _json_items(path, col):
        if not isinstance(obj, dict):
            col.problem(where, "an Alpaca row must be an object")
            continue
        col.add(where, lambda obj=obj: validate_messages(_alpaca_messages(obj, cols)))
    return col.done("alpaca")


_SHAREGPT_COLS = {"messages": "conversations", "system": "system"}
_SHAREGPT_TAGS = {
    "role_tag": "from", "content_tag": "value", "user_tag": "human",
    "assistant_tag": "gpt", "system_tag": "system", "observation_tag": "observation",
    "function_tag": "function_call",
}


def _sharegpt_messages(obj: dict, cols: dict[str, str], tags: dict[str, str]) -> list[dict]:
    turns = obj.get(cols["messages"])
    if not isinstance(turns, list) or not turns:
        raise RowError(f"'{cols['messages']}' must be a non-empty list")
    roles = {tags["user_tag"]: "user", tags["assistant_tag"]: "assistant", tags["system_tag"]: "system"}
    msgs: list[dict] = []
    system = obj.get(cols["system"])
    if isinstance(system, str) and system.strip():
        msgs.append({"role": "system", "content": system})
    for i, t in enumerate(turns):
        if not isinstance(t, dict):
            raise RowError(f"{cols['messages']}[{i}] must be an object")
        tag = t.get(tags["role_tag"])
        if tag not in roles:
            raise RowError(f"{cols['messages']}[{i}].{tags['role_tag']} is {tag!r}; only user/assistant/system turns are supported")
        msgs.append({"role": roles[tag], "content": t.get(tags["content_tag"])})
    return msgs


def load_llamafactory(spec: str, strict: bool = False) -> Dataset:
    """`path/to/dataset_info.json#name`: the entry's file, formatting, columns and tags."""
    info_path_s, _, name = spec.partition("#")
    info_path = Path(info_path_s)
    text = _read_text(info_path)
    try:
        info = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{info_path}:{exc.lineno}: invalid JSON ({exc.msg})") from None
    if not isinstance(info, dict) or not info:
        raise UserError(f"{info_path}: a dataset_info.json must be an object of named datasets")
    if not name:
        if len(info) != 1:
            raise UserError(f"{info_path}: name the dataset with {info_path}#NAME (one of: {', '.join(info)})")
        name = next(iter(info))
    if name not in info:
        raise UserError(f"{info_path}: no dataset '{name}' (known: {', '.join(info)})")
    entry = info[name]
    if not isinstance(entry, dict) or not isinstance(entry.get("file_name"), str):
        raise UserError(f"{info_path}: dataset '{name}' has no 'file_name' (only local files are supported)")
    formatting = entry.get("formatting", "alpaca")
    if formatting not in ("alpaca", "sharegpt"):
        raise UserError(f"{info_path}: dataset '{name}': formatting '{formatting}' is not supported (alpaca, sharegpt)")
    data_path = info_path.parent / entry["file_name"]
    columns = entry.get("columns") or {}
    if formatting == "alpaca":
        return load_alpaca(data_path, strict, cols=columns)
    cols = {**_SHAREGPT_COLS, **columns}
    tags = {**_SHAREGPT_TAGS, **(entry.get("tags") or {})}
    col = _Collector(data_path, strict)
    for where, obj in _json_items(data_path, col):
        if not isinstance(obj, dict):
            col.problem(where, "a ShareGPT row must be an object")
            continue
        col.add(where, lambda obj=obj: validate_messages(_sharegpt_messages(obj, cols, tags)))
    return col.done("sharegpt")


def detect_format(path: str) -> str:
    p = Path(path.partition("#")[0])
    if p.name == "dataset_info.json" or "#" in path:
        return "llamafactory"
    suffix = p.suffix.lower()
    if suffix in (".csv", ".tsv"):
        return "csv"
    if suffix == ".json":
        return "alpaca"
    if suffix == ".jsonl":
        if not p.is_file():
            raise UserError(f"data file not found: {p}")
        # a JSONL file is Alpaca if its first object has 'instruction' and no 'messages'
        for line in _read_text(p).splitlines():
            if line.strip():
                try:
                    first = json.loads(line)
                except json.JSONDecodeError:
                    return "chat"
                if isinstance(first, dict) and "instruction" in first and "messages" not in first:
                    return "alpaca"
                return "chat"
        return "chat"
    raise UserError(
        f"{path}: unknown data format '{suffix or p.name}' (use .jsonl chat, .csv, Alpaca .json, "
        "or dataset_info.json#NAME; or say --format)"
    )


def load_data(
    path: str | Path,
    fmt: str = "auto",
    strict: bool = False,
    question_col: str = "question",
    answer_col: str = "answer",
    system_col: str | None = None,
) -> Dataset:
    """Load any supported file into chat rows."""
    spec = str(path)
    if fmt not in FORMATS:
        raise UserError(f"unknown --format '{fmt}' (one of: {', '.join(FORMATS)})")
    if fmt == "auto":
        fmt = detect_format(spec)
    if fmt == "llamafactory":
        return load_llamafactory(spec, strict)
    p = Path(spec)
    if not p.is_file():
        raise UserError(f"data file not found: {p}")
    if fmt == "chat":
        return load_chat_jsonl(p, strict)
    if fmt == "csv":
        return load_csv(p, question_col, answer_col, system_col, strict)
    return load_alpaca(p, strict)


def write_chat_jsonl(rows: Iterable[Conversation], path: Path) -> None:
    """Write rows in the documented format (what the importers produce)."""
    with path.open("w", encoding="utf-8") as fh:
        for r in rows:
            obj: dict = {"messages": r.messages}
            if r.memory:
                obj["memory"] = r.memory
            if r.now is not None:
                obj["now"] = r.now.isoformat(timespec="minutes")
            if r.tags:
                obj["tags"] = r.tags
            fh.write(json.dumps(obj, ensure_ascii=False) + "\n")
