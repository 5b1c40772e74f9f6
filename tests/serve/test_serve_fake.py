"""`ohlora serve` as a subprocess on the scripted engine (fast tier): the real openai client, the
real HTTP stack, the real SQLite files. The replies echo the last user line ("heard: ...")."""

from __future__ import annotations

import threading
import time

import openai
import pytest

from ohlora.config import get_paths
from tests.conftest import run_cli
from tests.serve.server_helpers import db_rows, integrity, words


# -- models, replies, parameters -------------------------------------------------------------
def test_models_are_the_personas(fake_server):
    models = fake_server.client().models.list()
    ids = {m.id for m in models.data}
    assert {"ohlora", "ironman"} <= ids
    one = fake_server.client().models.retrieve("ironman")
    assert one.id == "ironman" and one.owned_by == "ohlora"
    with pytest.raises(openai.NotFoundError):
        fake_server.client().models.retrieve("nobody")


def test_non_streaming_reply_usage_and_storage(fake_server):
    r = fake_server.client().chat.completions.create(
        model="ohlora", messages=[{"role": "user", "content": "오늘 비 온다"}], user="carol")
    assert r.choices[0].message.content == "heard: 오늘 비 온다"
    assert r.choices[0].finish_reason == "stop"
    assert r.usage.completion_tokens == 4 and r.usage.prompt_tokens > 0
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    info = r.ohlora
    rows = db_rows(fake_server.home, "SELECT role, content, persona, stop_reason FROM messages "
                   "WHERE conversation_id = ? ORDER BY id", (info["conversation_id"],))
    assert rows == [("user", "오늘 비 온다", "ohlora", None), ("assistant", "heard: 오늘 비 온다", "ohlora", "end_of_turn")]
    owner = db_rows(fake_server.home, "SELECT user FROM conversation_users WHERE conversation_id = ?",
                    (info["conversation_id"],), name="serve.db")
    assert owner == [("carol",)]


def test_streaming_reply_with_usage(fake_server):
    stream = fake_server.client().chat.completions.create(
        model="ironman", messages=[{"role": "user", "content": "status report please"}], stream=True,
        stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "heard: status report please"
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish == ["stop"]
    assert chunks[-1].usage.completion_tokens == 4 and not chunks[-1].choices
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) >= 3  # it streamed


def test_max_tokens_gives_length_and_stop_strings_stop(fake_server):
    c = fake_server.client()
    r = c.chat.completions.create(model="ohlora", messages=[{"role": "user", "content": words(50)}], max_tokens=3)
    assert r.choices[0].finish_reason == "length" and r.usage.completion_tokens == 3
    assert r.choices[0].message.content == "heard: w0 w1"
    r = c.chat.completions.create(model="ohlora", messages=[{"role": "user", "content": "alpha beta STOP gamma"}],
                                  stop=["STOP"], temperature=0.2, top_p=0.5, seed=7)
    assert r.choices[0].message.content == "heard: alpha beta" and r.choices[0].finish_reason == "stop"


def test_persona_switches_between_requests_on_one_engine(fake_server):
    c = fake_server.client()
    seen = []
    for model in ("ohlora", "ironman", "ohlora"):
        r = c.chat.completions.create(model=model, messages=[{"role": "user", "content": "누구야?"}])
        seen.append((r.ohlora["persona"], r.ohlora["adapter"], r.ohlora["base"]))
    assert seen == [("ohlora", "ohlora", "fake-model"), ("ironman", "ironman", "fake-model"),
                    ("ohlora", "ohlora", "fake-model")]


# -- memory per user ----------------------------------------------------------------------------
def test_a_fact_told_by_a_is_recalled_for_a_never_for_b(fake_server):
    c = fake_server.client()
    c.chat.completions.create(model="ohlora", messages=[{"role": "user", "content": "나 고양이 키워. 이름은 나비야"}],
                              user="amy")
    ask = [{"role": "user", "content": "내 고양이 이름이 뭐였지?"}]
    for_a = c.chat.completions.create(model="ironman", messages=ask, user="amy")
    for_b = c.chat.completions.create(model="ironman", messages=ask, user="ben")
    assert any("고양이" in m for m in for_a.ohlora["memories"]), for_a.ohlora
    assert for_b.ohlora["memories"] == []
    off = c.chat.completions.create(model="ironman", messages=ask, user="amy", extra_headers={"X-Ohlora-Memory": "off"})
    assert off.ohlora["memory"] is False and off.ohlora["memories"] == []
    home = fake_server.home / "data" / "users"
    assert (home / "amy" / "memory.db").is_file() and (home / "ben" / "memory.db").is_file()
    amy = [r[0] for r in db_rows(fake_server.home, "SELECT text FROM memories", name="users/amy/memory.db")]
    ben = [r[0] for r in db_rows(fake_server.home, "SELECT text FROM memories", name="users/ben/memory.db")]
    assert any("고양이" in t for t in amy) and not any("고양이" in t for t in ben)


# -- conversations: named, stateless threads, the TUI's -------------------------------------------
def test_stateless_history_continues_the_same_conversation(fake_server):
    c = fake_server.client()
    msgs = [{"role": "system", "content": "짧게 말해"}, {"role": "user", "content": "첫 말"}]
    r1 = c.chat.completions.create(model="ohlora", messages=msgs, user="dana")
    msgs += [{"role": "assistant", "content": r1.choices[0].message.content}, {"role": "user", "content": "둘째 말"}]
    r2 = c.chat.completions.create(model="ohlora", messages=msgs, user="dana")
    assert r2.ohlora["conversation_id"] == r1.ohlora["conversation_id"]
    rows = db_rows(fake_server.home, "SELECT role, content FROM messages WHERE conversation_id = ? ORDER BY id",
                   (r1.ohlora["conversation_id"],))
    assert [r[1] for r in rows] == ["첫 말", "heard: 첫 말", "둘째 말", "heard: 둘째 말"]
    # the same history from another user is another conversation; an edited history forks
    other = c.chat.completions.create(model="ohlora", messages=msgs, user="erin")
    assert other.ohlora["conversation_id"] != r1.ohlora["conversation_id"]
    edited = msgs[:2] + [{"role": "assistant", "content": "다른 답"}, {"role": "user", "content": "셋째"}]
    forked = c.chat.completions.create(model="ohlora", messages=edited, user="dana")
    assert forked.ohlora["conversation_id"] not in (r1.ohlora["conversation_id"], other.ohlora["conversation_id"])
    rows = db_rows(fake_server.home, "SELECT content FROM messages WHERE conversation_id = ? ORDER BY id",
                   (forked.ohlora["conversation_id"],))
    assert [r[0] for r in rows] == ["첫 말", "다른 답", "셋째", "heard: 셋째"]


def test_named_conversation_and_its_owner(fake_server):
    c = fake_server.client()
    r = c.chat.completions.with_raw_response.create(
        model="ohlora", messages=[{"role": "user", "content": "하나"}], user="fay",
        extra_headers={"X-Ohlora-Conversation": "new"})
    cid = int(r.headers["x-ohlora-conversation"])
    r2 = c.chat.completions.create(model="ironman", messages=[{"role": "user", "content": "둘"}], user="fay",
                                   metadata={"conversation_id": str(cid)})
    assert r2.ohlora["conversation_id"] == cid
    status, _, body = fake_server.http("GET", f"/v1/conversations/{cid}", headers={"X-Ohlora-User": "fay"})
    assert status == 200
    assert [(m["role"], m["content"], m["persona"]) for m in body["messages"]] == [
        ("user", "하나", "ohlora"), ("assistant", "heard: 하나", "ohlora"),
        ("user", "둘", "ironman"), ("assistant", "heard: 둘", "ironman")]
    listed = fake_server.http("GET", "/v1/conversations?user=fay")[2]["data"]
    assert cid in [x["id"] for x in listed]
    for who in ({"X-Ohlora-User": "gus"}, {}):  # another user, and the owner, cannot read it or write to it
        assert fake_server.http("GET", f"/v1/conversations/{cid}", headers=who)[0] == 404
        status, _, err = fake_server.chat("셋", headers={**who, "X-Ohlora-Conversation": str(cid)})
        assert status == 404 and err["error"]["code"] == "conversation_not_found"


def test_a_tui_conversation_is_read_and_continued_through_the_api(start_server, ohlora_home):
    from ohlora.backends import EnginePool
    from ohlora.backends.fake import FakeBackend
    from ohlora.chat import ChatSession
    from ohlora.config import Settings
    from ohlora.conversation import Conversation
    from ohlora.store import ChatStore

    s = Settings(backend="fake", memory=False, guard=False, lines=False)
    pool = EnginePool(s, "fake")
    engine = FakeBackend(script=["TUI 답"])
    pool.engines[("fake", str(engine.base.path))] = engine
    store = ChatStore(get_paths().db_file)
    convo = Conversation(ChatSession(s, "ohlora", pool=pool), store)
    list(convo.say("TUI에서 한 말"))
    store.close()

    server = start_server(home=ohlora_home)
    listed = server.http("GET", "/v1/conversations")[2]["data"]
    assert [x["id"] for x in listed] == [convo.id]
    body = server.http("GET", f"/v1/conversations/{convo.id}")[2]
    assert [m["content"] for m in body["messages"]] == ["TUI에서 한 말", "TUI 답"]
    status, headers, r = server.chat("API에서 이어서", headers={"X-Ohlora-Conversation": str(convo.id)})
    assert status == 200 and r["ohlora"]["conversation_id"] == convo.id
    store = ChatStore(get_paths().db_file)  # what the TUI reads
    assert [m.content for m in store.messages(convo.id)] == ["TUI에서 한 말", "TUI 답", "API에서 이어서",
                                                            "heard: API에서 이어서"]
    assert store.last_conversation().id == convo.id
    store.close()


# -- the queue, disconnects, auth --------------------------------------------------------------
def _open_stream(client, text, **kw):
    stream = client.chat.completions.create(model="ohlora", messages=[{"role": "user", "content": text}],
                                            stream=True, **kw)
    it = iter(stream)
    next(it)  # the role chunk
    first = next(it)  # the first token: the job is running
    return stream, it, first


def test_full_queue_answers_429_with_retry_after(start_server):
    server = start_server("--queue-size", "1", env={"OHLORA_FAKE_DELAY": "0.02"})
    c = server.client()
    running, _, _ = _open_stream(c, words(300))
    waiting_done = threading.Event()

    def waiter():
        try:
            c.chat.completions.create(model="ohlora", messages=[{"role": "user", "content": "기다릴게"}])
        finally:
            waiting_done.set()

    threading.Thread(target=waiter, daemon=True).start()
    server.wait_for(lambda: server.health()["queue"]["waiting"] == 1)
    with pytest.raises(openai.RateLimitError) as info:
        c.chat.completions.create(model="ohlora", messages=[{"role": "user", "content": "나도"}])
    assert int(info.value.response.headers["retry-after"]) >= 1
    assert info.value.body["code"] == "queue_full"
    running.close()  # frees the engine: the waiting one runs next
    assert waiting_done.wait(20)


def test_disconnect_mid_stream_frees_the_engine_and_saves_the_partial_reply(start_server):
    server = start_server(env={"OHLORA_FAKE_DELAY": "0.03"})
    c = server.client()
    stream, it, _ = _open_stream(c, words(300), user="hal")  # ~9 s of tokens
    for _ in range(3):
        next(it)
    stream.close()
    t0 = time.monotonic()
    r = c.chat.completions.create(model="ohlora", messages=[{"role": "user", "content": "다음"}])
    assert r.choices[0].message.content == "heard: 다음"
    assert time.monotonic() - t0 < 5  # not after the ~8 s the first reply still had to go
    rows = db_rows(server.home, "SELECT content, stop_reason FROM messages m WHERE role = 'assistant' "
                   "ORDER BY id")
    partial, reason = rows[0]
    assert reason == "cancelled" and partial.startswith("heard: w0 w1") and len(partial.split()) < 100
    assert server.health()["queue"]["running"] == 0


def test_a_client_leaving_while_queued_leaves_the_line(start_server):
    server = start_server("--queue-size", "4", env={"OHLORA_FAKE_DELAY": "0.02"})
    c = server.client()
    running, _, _ = _open_stream(c, words(200))
    impatient = server.client(timeout=1.0)
    with pytest.raises(openai.APITimeoutError):
        impatient.chat.completions.create(model="ohlora", messages=[{"role": "user", "content": "안 기다려"}])
    server.wait_for(lambda: server.health()["queue"]["waiting"] == 0, timeout=5)
    running.close()
    server.wait_for(lambda: server.health()["queue"]["running"] == 0, timeout=10)
    contents = [r[0] for r in db_rows(server.home, "SELECT content FROM messages")]
    assert "안 기다려" not in contents  # it never ran, so nothing of it was stored


def test_api_key_is_required_when_given(start_server):
    server = start_server("--api-key", "s3cret-key")
    with pytest.raises(openai.AuthenticationError) as info:
        server.client("wrong").models.list()
    assert info.value.status_code == 401 and info.value.body["code"] == "invalid_api_key"
    status, headers, body = server.http("POST", "/v1/chat/completions", {"model": "ohlora", "messages": []})
    assert status == 401 and headers["www-authenticate"] == "Bearer" and "Missing API key" in body["error"]["message"]
    assert server.http("GET", "/health")[0] == 200  # probes need no key
    r = server.client("s3cret-key").chat.completions.create(model="ohlora", messages=[{"role": "user", "content": "열쇠"}])
    assert r.choices[0].message.content == "heard: 열쇠"


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.1"])
def test_a_non_loopback_bind_without_a_key_refuses_to_start(host):
    proc = run_cli("serve", "--backend", "fake", "--host", host, "--port", "0", timeout=60)
    assert proc.returncode == 2
    assert "--api-key" in proc.stderr and "Traceback" not in proc.stderr


# -- every bad input: an OpenAI-style error body, never a traceback ------------------------------------
USER = [{"role": "user", "content": "hi"}]
BAD = [
    ("malformed JSON", b'{"model": "ohlora", "messages": [', 400, "invalid_json"),
    ("not UTF-8", b'{"model": "\xff"}', 400, "invalid_json"),
    ("NaN", b'{"model": "ohlora", "messages": [{"role": "user", "content": "hi"}], "temperature": NaN}', 400, "invalid_json"),
    ("array body", [1, 2], 400, "invalid_json"),
    ("no model", {"messages": USER}, 400, "missing_field"),
    ("model not a string", {"model": 5, "messages": USER}, 400, "invalid_type"),
    ("unknown model", {"model": "gpt-4o", "messages": USER}, 404, "model_not_found"),
    ("unknown base", {"model": "ohlora@nope", "messages": USER}, 404, "model_not_found"),
    ("no messages", {"model": "ohlora"}, 400, "missing_field"),
    ("messages not a list", {"model": "ohlora", "messages": "hi"}, 400, "invalid_type"),
    ("empty messages", {"model": "ohlora", "messages": []}, 400, "empty_messages"),
    ("message not an object", {"model": "ohlora", "messages": [1]}, 400, "invalid_type"),
    ("empty content", {"model": "ohlora", "messages": [{"role": "user", "content": "  \n "}]}, 400, "empty_message"),
    ("content a number", {"model": "ohlora", "messages": [{"role": "user", "content": 5}]}, 400, "invalid_type"),
    ("image part", {"model": "ohlora", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "file:///etc/passwd"}}]}]}, 400, "unsupported_content"),
    ("over-long message", {"model": "ohlora", "messages": [{"role": "user", "content": "가" * 100_001}]}, 400,
     "message_too_long"),
    ("longer than the context", {"model": "ohlora", "messages": [{"role": "user", "content": "word " * 4000}]}, 400,
     "context_length_exceeded"),
    ("tool role", {"model": "ohlora", "messages": [{"role": "tool", "content": "x", "tool_call_id": "1"}, *USER]},
     400, "unsupported_role"),
    ("made-up role", {"model": "ohlora", "messages": [{"role": "narrator", "content": "x"}, *USER]}, 400,
     "invalid_role"),
    ("system mid-chat", {"model": "ohlora", "messages": [*USER, {"role": "assistant", "content": "a"},
                                                          {"role": "system", "content": "s"}, *USER]},
     400, "unsupported_role"),
    ("last is assistant", {"model": "ohlora", "messages": [*USER, {"role": "assistant", "content": "a"}]}, 400,
     "invalid_role"),
    ("negative max_tokens", {"model": "ohlora", "messages": USER, "max_tokens": -5}, 400, "invalid_value"),
    ("zero max_tokens", {"model": "ohlora", "messages": USER, "max_tokens": 0}, 400, "invalid_value"),
    ("huge max_tokens", {"model": "ohlora", "messages": USER, "max_tokens": 10**12}, 400, "invalid_value"),
    ("max_tokens past the context", {"model": "ohlora", "messages": USER, "max_tokens": 5000}, 400, "invalid_value"),
    ("max_tokens a string", {"model": "ohlora", "messages": USER, "max_tokens": "10"}, 400, "invalid_type"),
    ("max_tokens a bool", {"model": "ohlora", "messages": USER, "max_tokens": True}, 400, "invalid_type"),
    ("temperature a string", {"model": "ohlora", "messages": USER, "temperature": "hot"}, 400, "invalid_type"),
    ("temperature too high", {"model": "ohlora", "messages": USER, "temperature": 9}, 400, "invalid_value"),
    ("top_p out of range", {"model": "ohlora", "messages": USER, "top_p": 1.5}, 400, "invalid_value"),
    ("stream a string", {"model": "ohlora", "messages": USER, "stream": "yes"}, 400, "invalid_type"),
    ("stop a number", {"model": "ohlora", "messages": USER, "stop": 5}, 400, "invalid_type"),
    ("five stops", {"model": "ohlora", "messages": USER, "stop": list("abcde")}, 400, "invalid_value"),
    ("seed a float", {"model": "ohlora", "messages": USER, "seed": 1.5}, 400, "invalid_type"),
    ("n = 2", {"model": "ohlora", "messages": USER, "n": 2}, 400, "invalid_value"),
    ("user a path", {"model": "ohlora", "messages": USER, "user": "../../etc"}, 400, "invalid_user"),
    ("user an object", {"model": "ohlora", "messages": USER, "user": {"id": 1}}, 400, "invalid_type"),
    ("metadata not strings", {"model": "ohlora", "messages": USER, "metadata": {"conversation_id": 5}}, 400,
     "invalid_type"),
    ("conversation not a number", {"model": "ohlora", "messages": USER, "metadata": {"conversation_id": "../x"}},
     400, "invalid_conversation"),
    ("unknown conversation", {"model": "ohlora", "messages": USER, "metadata": {"conversation_id": "99999"}}, 404,
     "conversation_not_found"),
    ("memory neither on nor off", {"model": "ohlora", "messages": USER, "metadata": {"memory": "maybe"}}, 400,
     "invalid_value"),
]


@pytest.mark.parametrize("name,body,status,code", BAD, ids=[b[0] for b in BAD])
def test_bad_input_gets_an_openai_error_body(fake_server, name, body, status, code):
    got, _, err = fake_server.http("POST", "/v1/chat/completions", body)
    assert got == status, err
    assert set(err) == {"error"} and set(err["error"]) == {"message", "type", "param", "code"}
    assert err["error"]["code"] == code and err["error"]["message"]
    assert "Traceback" not in err["error"]["message"]


def test_bad_headers_and_paths(fake_server):
    status, _, err = fake_server.chat("hi", headers={"X-Ohlora-User": "a/b"})
    assert status == 400 and err["error"]["param"] == "x-ohlora-user"
    status, _, err = fake_server.chat("hi", headers={"X-Ohlora-Conversation": "abc"})
    assert status == 400 and err["error"]["code"] == "invalid_conversation"
    assert fake_server.http("GET", "/v1/nothing")[2]["error"]["code"] == "not_found"
    assert fake_server.http("GET", "/v1/chat/completions")[2]["error"]["code"] == "method_not_allowed"
    assert fake_server.http("GET", "/v1/conversations/../../etc/passwd")[0] == 404
    assert fake_server.http("GET", "/v1/conversations/abc")[2]["error"]["code"] == "conversation_not_found"
    assert "Traceback" not in fake_server.log


def test_request_size_limit(start_server):
    server = start_server("--max-body", "4096")
    status, _, err = server.chat("가" * 3000)
    assert status == 413 and err["error"]["code"] == "request_too_large"
    assert server.chat("small")[0] == 200


# -- kill -9 mid-stream -----------------------------------------------------------------------
def test_kill_9_mid_stream_loses_nothing_saved(start_server):
    server = start_server(env={"OHLORA_FAKE_DELAY": "0.02"}, memory=True)
    c = server.client()
    saved = []
    for user, text in (("ivy", "나 부산 살아"), ("jon", "첫째"), (None, "주인의 말")):
        r = c.chat.completions.create(model="ohlora", messages=[{"role": "user", "content": text}], user=user)
        saved.append((user, r.ohlora["conversation_id"], text, r.choices[0].message.content))
    stream, it, _ = _open_stream(c, words(300), user="ivy")
    next(it)
    server.kill9()
    stream.close()

    data = server.home / "data"
    for db in (data / "ohlora.db", data / "serve.db", data / "memory.db", data / "users" / "ivy" / "memory.db"):
        assert integrity(db) == "ok", db
    server.start()
    for user, cid, text, reply in saved:
        headers = {"X-Ohlora-User": user} if user else {}
        status, _, body = server.http("GET", f"/v1/conversations/{cid}", headers=headers)
        assert status == 200 and [m["content"] for m in body["messages"]] == [text, reply]
    contents = [r[0] for r in db_rows(server.home, "SELECT content FROM messages")]
    assert words(300) in contents  # the interrupted request's user row was committed before the model ran
    r = c.__class__(base_url=server.url, api_key="none", max_retries=0).chat.completions.create(
        model="ohlora", messages=[{"role": "user", "content": "다시 왔어"}], user="ivy")
    assert r.choices[0].message.content == "heard: 다시 왔어"


def test_the_load_bench_runs_and_checks_the_store():
    import json
    import os
    import subprocess
    import sys

    from tests.serve.server_helpers import REPO

    proc = subprocess.run([sys.executable, "bench/serve_load.py", "--backend", "fake", "--clients", "1,3",
                           "--requests", "3", "--max-tokens", "8"], capture_output=True, text=True, cwd=REPO,
                          timeout=300, env={**os.environ, "OHLORA_FAKE_DELAY": "0.005", "OHLORA_MEMORY": "0"})
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    one, three = out["runs"]
    assert (one["ok"], three["ok"]) == (3, 9) and not one["errors"] and not three["errors"]
    for run in (one, three):
        assert run["store_check"] == {"checked": run["ok"], "lost": 0, "mixed": 0, "visible_to_another_user": 0}
        assert run["ttft_s"]["p50"] is not None and run["tokens_per_s"] > 0
    assert "3" in out["tokens_per_s_vs_one_client"]
