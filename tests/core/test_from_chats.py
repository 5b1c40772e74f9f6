"""`ohlora data from-chats` on a chat recorded through the real Conversation and store API
(scripted engine, real SQLite file): a kept reply, an edited one, a swiped one, a reply cut by
the length limit, another persona's chat and a fork. The files it writes are compared whole."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from ohlora.backends import EnginePool
from ohlora.backends.fake import FakeBackend
from ohlora.chat import ChatSession
from ohlora.cli import main
from ohlora.config import Settings, get_paths
from ohlora.conversation import Conversation
from ohlora.personas import load_persona
from ohlora.store import ChatStore

SCRIPT = [
    "오 진짜? 어땠어?",  # 1 kept as written
    "잘했네.",  # 2 edited by the user
    "떨리는 건 당연해.",  # 3 swiped past ...
    "떨렸는데도 해낸 게 멋진 거야!",  # ... for this one (chosen)
    "누구나 그래.",  # ... and one written in the background, never seen
    "떡볶이 먹자 매콤하게 치즈 올려서",  # 4 cut by the length limit, not edited: not kept
    "응 내일 봐!",  # 5 kept, after the cut: a row of its own
    "Hi there.",  # another persona's chat
]


def _session(persona: str, pool: EnginePool) -> ChatSession:
    return ChatSession(pool.settings, persona, pool=pool)


def record_chats():
    """The chats, as a user makes them in the app (the same calls the TUI makes)."""
    s = Settings(backend="fake", memory=False, guard=False, lines=False)
    pool = EnginePool(s, "fake")
    engine = FakeBackend(script=SCRIPT)
    pool.engines[("fake", str(engine.base.path))] = engine
    store = ChatStore(get_paths().db_file)
    convo = Conversation(_session("ohlora", pool), store)

    list(convo.say("나 오늘 회사에서 발표했어"))
    list(convo.say("생각보다 잘 끝났어"))
    edited = convo.last.reply_id
    convo.edit(edited, "와 대단하다! 준비 많이 했잖아.")
    list(convo.say("근데 너무 떨렸어"))
    swiped = convo.last.reply_id
    list(convo.alternative(swiped, shown=True))  # the user pressed →
    list(convo.alternative(swiped, shown=False))  # written ahead, the user never looked
    convo.choose(swiped, 1)
    convo.set_generation({"max_tokens": 3})
    list(convo.say("저녁은 뭐 먹을까"))
    assert convo.last.result.stop_reason == "max_tokens"
    convo.set_generation({})
    list(convo.say("내일 또 얘기하자"))

    other = Conversation(_session("ironman", pool), store)
    list(other.say("Hello"))
    fork = convo.fork(swiped)  # a fork copies rows and alternatives: nothing may count twice
    msgs = store.messages(convo.id)
    store.close()
    return convo.id, other.id, fork, msgs, edited, swiped


def _from_chats(out, *flags) -> int:
    return main(["data", "from-chats", str(out), *flags])


def _stamp(ts: float) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%dT%H:%M")


def test_rows_and_pairs_from_a_recorded_chat(tmp_path, capsys):
    cid, other, fork, msgs, edited, swiped = record_chats()
    assert [m.content for m in msgs][6:8] == ["저녁은 뭐 먹을까", "떡볶이 먹자 매콤하게"]  # cut at 3 words
    out = tmp_path / "data"
    assert _from_chats(out) == 0
    said = capsys.readouterr().out
    assert "3 rows, 5 replies kept or edited" in said and "2 preference pairs (1 from swipes, 1 from edits)" in said

    sft = [json.loads(line) for line in (out / "sft.jsonl").read_text(encoding="utf-8").splitlines()]
    u = lambda text: {"role": "user", "content": text}  # noqa: E731
    a = lambda text: {"role": "assistant", "content": text}  # noqa: E731
    assert sft == [
        {"messages": [u("나 오늘 회사에서 발표했어"), a("오 진짜? 어땠어?"),
                      u("생각보다 잘 끝났어"), a("와 대단하다! 준비 많이 했잖아."),  # the edit is the target
                      u("근데 너무 떨렸어"), a("떨렸는데도 해낸 게 멋진 거야!")],  # the chosen alternative
         "now": _stamp(msgs[0].created_at), "persona": "ohlora", "tags": ["from-chats", "edited"]},
        {"messages": [u("내일 또 얘기하자"), a("응 내일 봐!")],  # the cut reply ended the first row
         "now": _stamp(msgs[8].created_at), "persona": "ohlora", "tags": ["from-chats"]},
        {"messages": [u("Hello"), a("Hi there.")], "now": sft[2]["now"], "persona": "ironman",
         "tags": ["from-chats"]},
    ]

    system = load_persona("ohlora").system_prompt.strip()
    assert "{{" not in system  # no macros to expand in this persona
    h = lambda text: {"from": "human", "value": text}  # noqa: E731
    g = lambda text: {"from": "gpt", "value": text}  # noqa: E731
    pairs = json.loads((out / "preference.json").read_text(encoding="utf-8"))
    assert pairs == [
        {"conversations": [h("나 오늘 회사에서 발표했어"), g("오 진짜? 어땠어?"), h("생각보다 잘 끝났어")],
         "chosen": g("와 대단하다! 준비 많이 했잖아."), "rejected": g("잘했네."),
         "system": system, "persona": "ohlora", "kind": "edit", "now": _stamp(msgs[2].created_at),
         "source": f"conversation {cid}, message {edited}"},
        {"conversations": [h("나 오늘 회사에서 발표했어"), g("오 진짜? 어땠어?"), h("생각보다 잘 끝났어"),
                           g("와 대단하다! 준비 많이 했잖아."), h("근데 너무 떨렸어")],
         "chosen": g("떨렸는데도 해낸 게 멋진 거야!"), "rejected": g("떨리는 건 당연해."),  # not the unseen one
         "system": system, "persona": "ohlora", "kind": "swipe", "now": _stamp(msgs[4].created_at),
         "source": f"conversation {cid}, message {swiped}"},
    ]

    # LLaMA-Factory's ranking format (data/README.md, "Sharegpt Format / Preference Dataset"):
    # human turns at odd positions, the prompt ends with one, chosen / rejected are single gpt messages
    info = json.loads((out / "dataset_info.json").read_text(encoding="utf-8"))
    assert info["ohlora_chats_preference"] == {
        "file_name": "preference.json", "formatting": "sharegpt", "ranking": True,
        "columns": {"messages": "conversations", "chosen": "chosen", "rejected": "rejected", "system": "system"}}
    assert info["ohlora_chats_sft"]["file_name"] == "sft.jsonl" and info["ohlora_chats_sft"]["formatting"] == "sharegpt"
    for p in pairs:
        assert [t["from"] for t in p["conversations"]] == ["human", "gpt"] * (len(p["conversations"]) // 2) + ["human"]
        assert p["chosen"]["from"] == p["rejected"]["from"] == "gpt"

    # the SFT file is ohlora's training format, and LLaMA-Factory's entry reads the same rows
    from training.data import load_data

    ours = load_data(str(out / "sft.jsonl"), "auto", True, "question", "answer", None)
    theirs = load_data(str(out / "dataset_info.json") + "#ohlora_chats_sft", "auto", True, "question", "answer", None)
    assert [r.messages for r in ours.rows] == [r.messages for r in theirs.rows] == [r["messages"] for r in sft]
    assert not ours.problems and ours.rows[0].now == datetime.fromisoformat(sft[0]["now"])


def test_persona_and_since_filters(tmp_path):
    record_chats()
    assert _from_chats(tmp_path / "iron", "--persona", "ironman") == 0
    rows = [json.loads(x) for x in (tmp_path / "iron" / "sft.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["messages"][0]["content"] for r in rows] == ["Hello"]
    assert json.loads((tmp_path / "iron" / "preference.json").read_text(encoding="utf-8")) == []

    tomorrow = (datetime.now() + timedelta(days=1)).strftime("%Y-%m-%d")
    assert _from_chats(tmp_path / "later", "--since", tomorrow) == 0
    assert (tmp_path / "later" / "sft.jsonl").read_text(encoding="utf-8") == ""
    assert json.loads((tmp_path / "later" / "preference.json").read_text(encoding="utf-8")) == []
    yesterday = (datetime.now() - timedelta(days=1)).strftime("%Y-%m-%d")
    assert _from_chats(tmp_path / "all", "--since", yesterday) == 0
    assert len((tmp_path / "all" / "sft.jsonl").read_text(encoding="utf-8").splitlines()) == 3


def test_bad_input_is_one_line(tmp_path, capsys):
    assert _from_chats(tmp_path / "x") == 2
    assert "no saved conversations yet" in capsys.readouterr().err
    record_chats()
    assert _from_chats(tmp_path / "x", "--since", "last tuesday") == 2
    assert "--since 'last tuesday'" in capsys.readouterr().err
    assert _from_chats(tmp_path / "x", "--persona", "nobody") == 2
    assert capsys.readouterr().err.count("\n") == 1
