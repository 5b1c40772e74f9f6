"""`ohlora data from-chats [--persona ID] [--since DATE] OUT`: saved chats become training data.

OUT (a folder) gets:

    sft.jsonl          ohlora's chat rows (`ohlora train --data OUT/sft.jsonl`): the replies the
                       user kept or edited, the edited text as the target
    preference.json    chosen-vs-rejected pairs in LLaMA-Factory's `ranking` format (sharegpt)
    dataset_info.json  LLaMA-Factory's entries for both files

What counts:
- A reply is *kept* when it was edited, or it ended by itself (end of turn, a stop string).
  Stopped, failed or length-cut replies that the user did not edit are left out, and a
  conversation's row is cut there (each row's assistant turns are all training targets).
  A row holds one persona's consecutive exchanges; unanswered messages are skipped.
- A *swipe pair*: a reply with alternatives the user has seen (`swipes.shown`); the chosen
  one (with the user's edits) against each other one seen. Unseen background alternatives
  say nothing about the user and are left out.
- An *edit pair*: a reply the user edited; their text against what the model wrote.
- Forks copy their conversation's rows: a row that is the start of a longer one is dropped,
  and pairs are kept once.

Each pair also says its persona, kind (swipe / edit), the clock of the user's message (`now`)
and where it came from; LLaMA-Factory reads only the columns dataset_info.json names.
`ohlora train --method dpo --persona ID --data OUT/preference.json --output DIR` trains the
persona's adapter further on the pairs (training/dpo.py).
"""

from __future__ import annotations

import argparse
import json
import random
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ohlora.errors import UserError

KEPT_REASONS = ("end_of_turn", "stop_string")
SFT_FILE = "sft.jsonl"
PAIRS_FILE = "preference.json"
INFO_FILE = "dataset_info.json"


def register(subparsers) -> None:
    p = subparsers.add_parser("data", help="training data from your chats",
                              description="Training data made from what you did in the chat app.")
    sub = p.add_subparsers(dest="data_cmd", metavar="ACTION", required=True)
    fc = sub.add_parser(
        "from-chats", help="SFT rows and preference pairs (LLaMA-Factory ranking) from saved chats",
        description="SFT rows from the replies you kept or edited (your edit is the target) and preference "
                    "pairs (the chosen alternative vs the ones you swiped past; your edit vs the model's text) "
                    "in LLaMA-Factory's ranking format. Writes OUT/sft.jsonl, OUT/preference.json and "
                    "OUT/dataset_info.json.")
    fc.add_argument("out", metavar="OUT", help="folder to write")
    fc.add_argument("--persona", "-p", help="only this persona's replies")
    fc.add_argument("--since", metavar="DATE", help="only messages from this date on (2026-03-01 or 2026-03-01T18:00)")
    fc.set_defaults(func=cmd_from_chats)


@dataclass
class Exchange:
    user: Any  # ohlora.store.Message
    reply: Any
    index: int  # the user message's index in the conversation's rows


@dataclass
class Collected:
    rows: list[dict] = field(default_factory=list)
    pairs: list[dict] = field(default_factory=list)
    replies: int = 0
    swipe_pairs: int = 0
    edit_pairs: int = 0


def exchanges(messages: list) -> list[Exchange]:
    """Answered user messages and their replies, in order (as the model's history sees them)."""
    out = []
    for i, m in enumerate(messages):
        if m.role == "user" and i + 1 < len(messages) and messages[i + 1].role == "assistant":
            out.append(Exchange(m, messages[i + 1], i))
    return out


def kept(reply: Any) -> bool:
    return bool(reply.edited_at) or reply.stop_reason in KEPT_REASONS


def _stamp(ts: float) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%dT%H:%M")


def collect(store: Any, *, persona: str | None = None, since: float | None = None,
            systems: dict[str, str] | None = None) -> Collected:
    """Every conversation's SFT rows and preference pairs (see the module docstring)."""
    systems = systems or {}
    out = Collected()
    chains: list[tuple[str, list[Exchange]]] = []
    seen_pairs: set[tuple] = set()
    for conv in sorted(store.list_conversations(limit=1_000_000), key=lambda c: c.id):
        messages = store.messages(conv.id)
        chain: list[Exchange] = []
        owner = ""

        def close() -> None:
            if chain:
                chains.append((owner, list(chain)))
                chain.clear()

        for ex in exchanges(messages):
            r = ex.reply
            wanted = (persona is None or r.persona == persona) and (since is None or ex.user.created_at >= since)
            if not wanted or not kept(r):
                close()
            else:
                if chain and r.persona != owner:
                    close()
                owner = r.persona
                chain.append(ex)
            if wanted:
                _pairs(store, messages, ex, systems, seen_pairs, out)
        close()
    out.rows = _rows(chains)
    out.replies = sum(len(r["messages"]) // 2 for r in out.rows)
    return out


def _rows(chains: list[tuple[str, list[Exchange]]]) -> list[dict]:
    rows = []
    for owner, chain in chains:
        msgs = []
        for ex in chain:
            msgs += [{"role": "user", "content": ex.user.content}, {"role": "assistant", "content": ex.reply.content}]
        rows.append({"messages": msgs, "now": _stamp(chain[0].user.created_at), "persona": owner,
                     "tags": ["from-chats"] + (["edited"] if any(ex.reply.edited_at for ex in chain) else [])})
    # forks copy rows: drop a row that repeats, or begins, another one
    keys = [json.dumps(r["messages"], ensure_ascii=False)[:-1] for r in rows]
    keep = []
    for i, r in enumerate(rows):
        longer = any(j != i and keys[j].startswith(keys[i]) and (len(keys[j]) > len(keys[i]) or j < i)
                     for j in range(len(rows)))
        if not longer:
            keep.append(r)
    return keep


def _prompt(messages: list, ex: Exchange) -> list[dict]:
    """The sharegpt turns up to and including the user's message, as the model saw them."""
    turns = []
    for e in exchanges(messages[:ex.index]):
        turns += [{"from": "human", "value": e.user.content}, {"from": "gpt", "value": e.reply.content}]
    return turns + [{"from": "human", "value": ex.user.content}]


def _pairs(store: Any, messages: list, ex: Exchange, systems: dict[str, str], seen: set, out: Collected) -> None:
    r = ex.reply
    chosen = r.content
    found: list[tuple[str, str]] = []
    if r.swipe is not None and (kept(r) or r.stop_reason == "max_tokens"):
        for s in store.swipes(r.id):
            if s.position != r.swipe and s.shown and s.content.strip() and s.content != chosen \
                    and s.stop_reason != "error":
                found.append(("swipe", s.content))
    if r.original is not None and r.original.strip() and r.original != chosen:
        found.append(("edit", r.original))
    for kind, rejected in found:
        key = (r.created_at, chosen, rejected)
        if key in seen:
            continue
        seen.add(key)
        pair = {"conversations": _prompt(messages, ex),
                "chosen": {"from": "gpt", "value": chosen},
                "rejected": {"from": "gpt", "value": rejected}}
        if systems.get(r.persona):
            pair["system"] = systems[r.persona]
        pair.update(persona=r.persona, kind=kind, now=_stamp(ex.user.created_at),
                    source=f"conversation {r.conversation_id}, message {r.id}")
        out.pairs.append(pair)
        if kind == "swipe":
            out.swipe_pairs += 1
        else:
            out.edit_pairs += 1


def dataset_info() -> dict:
    return {
        "ohlora_chats_sft": {
            "file_name": SFT_FILE, "formatting": "sharegpt",
            "columns": {"messages": "messages"},
            "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user",
                     "assistant_tag": "assistant", "system_tag": "system"},
        },
        "ohlora_chats_preference": {
            "file_name": PAIRS_FILE, "formatting": "sharegpt", "ranking": True,
            "columns": {"messages": "conversations", "chosen": "chosen", "rejected": "rejected", "system": "system"},
        },
    }


def _since(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise UserError(f"--since {text!r}: use a date like 2026-03-01 or 2026-03-01T18:00") from None


def _systems() -> dict[str, str]:
    """Each persona's system prompt as the chat rendered it ({{char}} / {{user}} expanded)."""
    from ohlora.cards.macros import default_user_name, expand
    from ohlora.config import load_settings
    from ohlora.personas import list_personas

    user = load_settings().user_name
    try:
        personas = list_personas()
    except UserError:
        return {}
    return {p.id: expand(p.system_prompt.strip(), p.name, user or default_user_name(p.language), random.Random(0))
            for p in personas}


def cmd_from_chats(args: argparse.Namespace) -> int:
    from ohlora.config import get_paths
    from ohlora.personas import load_persona
    from ohlora.store import ChatStore

    since = _since(args.since)
    if args.persona:
        load_persona(args.persona)  # an unknown id is one clear line
    db = get_paths().db_file
    if not db.exists():
        raise UserError(f"{db}: no saved conversations yet")
    t0 = time.perf_counter()
    store = ChatStore(db)
    try:
        got = collect(store, persona=args.persona, since=since, systems=_systems())
    finally:
        store.close()
    out = Path(args.out).expanduser()
    try:
        out.mkdir(parents=True, exist_ok=True)
        with (out / SFT_FILE).open("w", encoding="utf-8") as fh:
            for row in got.rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        (out / PAIRS_FILE).write_text(json.dumps(got.pairs, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        (out / INFO_FILE).write_text(json.dumps(dataset_info(), indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise UserError(f"{out}: cannot write ({exc.strerror})") from None
    print(f"{out / SFT_FILE}: {len(got.rows)} rows, {got.replies} replies kept or edited")
    print(f"{out / PAIRS_FILE}: {len(got.pairs)} preference pairs ({got.swipe_pairs} from swipes, "
          f"{got.edit_pairs} from edits), LLaMA-Factory ranking format")
    print(f"{out / INFO_FILE}: LLaMA-Factory dataset entries (ohlora_chats_sft, ohlora_chats_preference)")
    print(f"({time.perf_counter() - t0:.1f} s)")
    return 0
