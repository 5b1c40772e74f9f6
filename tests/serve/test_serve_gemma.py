"""`ohlora serve` on the real model (slow tier): the packaged Gemma 3 270M on llama.cpp with both
personas' adapters, driven by the real openai client. Memory uses the hash embedder (the chat
model is the real one; the memory embedder is not what these tests are about)."""

from __future__ import annotations

import threading
import time

import openai
import pytest

from tests.serve.server_helpers import Server, db_rows, integrity
from tests.serve.test_serve_fake import BAD

pytestmark = pytest.mark.slow
LONG = "Tell me a very long story about every suit you ever built, one by one, in great detail."


def _stream(client, model="ironman", text=LONG, **kw):
    return client.chat.completions.create(model=model, messages=[{"role": "user", "content": text}], stream=True,
                                          max_tokens=kw.pop("max_tokens", 200), **kw)


def test_models_list_and_a_streamed_reply(gemma_server):
    c = gemma_server.client()
    ids = {m.id for m in c.models.list().data}
    assert {"ohlora", "ironman", "ohlora@gemma-3-270m", "ironman@smollm2-135m"} <= ids
    chunks = list(_stream(c, text="Who are you?", max_tokens=24, seed=3, temperature=0.7,
                          stream_options={"include_usage": True}))
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    finish = [ch.choices[0].finish_reason for ch in chunks if ch.choices and ch.choices[0].finish_reason]
    usage = chunks[-1].usage
    assert text.strip() and finish and finish[0] in ("stop", "length")
    assert 1 <= usage.completion_tokens <= 24 and usage.prompt_tokens > 50
    info = next(ch.ohlora for ch in chunks if ch.choices and ch.choices[0].finish_reason)
    stored = db_rows(gemma_server.home, "SELECT content, persona, completion_tokens FROM messages WHERE id = ?",
                     (info["message_id"],))
    assert stored == [(text.strip(), "ironman", usage.completion_tokens)]


def test_persona_switch_between_requests_on_the_one_base(gemma_server):
    c = gemma_server.client()
    seen = []
    for model in ("ohlora", "ironman", "ohlora"):
        r = c.chat.completions.create(model=model, messages=[{"role": "user", "content": "안녕, 너는 누구야?"}],
                                      max_tokens=12)
        assert r.choices[0].message.content.strip()
        seen.append((r.ohlora["persona"], r.ohlora["adapter"], r.ohlora["base"]))
    assert seen == [("ohlora", "ohlora", "gemma-3-270m"), ("ironman", "ironman", "gemma-3-270m"),
                    ("ohlora", "ohlora", "gemma-3-270m")]
    r = c.chat.completions.create(model="ironman@smollm2-135m", messages=[{"role": "user", "content": "Hi!"}],
                                  max_tokens=8)  # another base: the prompt alone (the adapter is Gemma's)
    assert r.ohlora["base"] == "smollm2-135m" and r.ohlora["adapter"] is None
    assert r.choices[0].finish_reason in ("stop", "length")


def test_max_tokens_gives_length(gemma_server):
    r = gemma_server.client().chat.completions.create(
        model="ironman", messages=[{"role": "user", "content": LONG}], max_tokens=4)
    assert r.choices[0].finish_reason == "length" and r.usage.completion_tokens == 4


def test_a_fact_told_by_a_is_recalled_for_a_and_never_for_b(gemma_server):
    c = gemma_server.client()
    c.chat.completions.create(model="ohlora", messages=[{"role": "user", "content": "나 고양이 키워. 이름은 나비야"}],
                              user="alice", max_tokens=8)
    ask = [{"role": "user", "content": "내 고양이 이름이 뭐였지?"}]
    for_a = c.chat.completions.create(model="ohlora", messages=ask, user="alice", max_tokens=16)
    for_b = c.chat.completions.create(model="ohlora", messages=ask, user="bob", max_tokens=16)
    assert any("고양이" in m for m in for_a.ohlora["memories"]), for_a.ohlora
    assert for_b.ohlora["memories"] == []


def test_disconnect_mid_stream_frees_the_engine_and_keeps_the_partial(gemma_server):
    c = gemma_server.client()
    stream = _stream(c, max_tokens=300)
    got = []
    for ch in stream:
        if ch.choices and ch.choices[0].delta.content:
            got.append(ch.choices[0].delta.content)
        if len(got) == 3 or (ch.choices and ch.choices[0].finish_reason):
            break
    stream.close()
    assert len(got) == 3, "the model ended its reply before the test could leave"
    r = c.chat.completions.create(model="ohlora", messages=[{"role": "user", "content": "안녕"}], max_tokens=4)
    assert r.ohlora["queue_wait_s"] < 2  # the 300-token reply did not hold the engine
    (content, reason, ntok), = db_rows(
        gemma_server.home, "SELECT content, stop_reason, completion_tokens FROM messages WHERE role = 'assistant' "
        "AND id < ? ORDER BY id DESC LIMIT 1", (r.ohlora["message_id"],))
    assert reason == "cancelled" and content.startswith("".join(got).strip()[:10]) and ntok < 100


def test_full_queue_answers_429(gemma_server):  # the server runs with --queue-size 1
    c = gemma_server.client()
    running = _stream(c, max_tokens=300)
    it = iter(running)
    next(it)
    next(it)
    waiter = threading.Thread(target=lambda: c.chat.completions.create(
        model="ohlora", messages=[{"role": "user", "content": "기다릴게"}], max_tokens=4), daemon=True)
    waiter.start()
    gemma_server.wait_for(lambda: gemma_server.health()["queue"]["waiting"] == 1, timeout=60)
    with pytest.raises(openai.RateLimitError) as info:
        c.chat.completions.create(model="ohlora", messages=[{"role": "user", "content": "나도"}], max_tokens=4)
    assert int(info.value.response.headers["retry-after"]) >= 1
    running.close()
    waiter.join(60)
    assert not waiter.is_alive()


@pytest.mark.parametrize("name,body,status,code", BAD, ids=[b[0] for b in BAD])
def test_bad_input_on_the_real_model(gemma_server, name, body, status, code):
    got, _, err = gemma_server.http("POST", "/v1/chat/completions", body)
    assert (got, err["error"]["code"]) == (status, code), err
    assert "Traceback" not in err["error"]["message"]


def test_kill_9_mid_stream_then_restart(gemma_home):
    server = Server(gemma_home, timeout=600)
    try:
        c = server.client()
        saved = []
        for user, text in (("kim", "나 서울 살아"), (None, "Hello there")):
            r = c.chat.completions.create(model="ironman", messages=[{"role": "user", "content": text}],
                                          user=user, max_tokens=8)
            saved.append((user, r.ohlora["conversation_id"], [text, r.choices[0].message.content]))
        stream = _stream(c, max_tokens=300, user="kim")
        it = iter(stream)
        next(it)
        next(it)
        server.kill9()
        stream.close()
        data = gemma_home / "data"
        for db in (data / "ohlora.db", data / "serve.db", data / "memory.db", data / "users" / "kim" / "memory.db"):
            assert integrity(db) == "ok", db
        server.start(timeout=600)
        for user, cid, contents in saved:
            status, _, body = server.http("GET", f"/v1/conversations/{cid}",
                                          headers={"X-Ohlora-User": user} if user else {})
            assert status == 200 and [m["content"] for m in body["messages"]] == contents
        assert LONG in [r[0] for r in db_rows(gemma_home, "SELECT content FROM messages")]
        r = server.client().chat.completions.create(model="ohlora", messages=[{"role": "user", "content": "또 왔어"}],
                                                    user="kim", max_tokens=4)
        assert r.choices[0].message.content.strip()
    finally:
        server.stop()


def test_the_persona_kv_snapshot_restores_exactly_what_was_read(gemma_server):
    """A persona switch puts back the adapter's KV snapshot instead of re-reading the persona's prompt.
    The reply after switch-and-restore equals the reply with no switch at all (same KV, same
    prompt: llama.cpp's own prefix reuse), greedy, token for token."""
    c = gemma_server.client()

    def ask(model):
        r = c.chat.completions.create(model=model, messages=[{"role": "user", "content": "What is your name?"}],
                                      max_tokens=12, temperature=0, extra_headers={"X-Ohlora-Memory": "off"})
        return r.choices[0].message.content

    restored = gemma_server.health()["persona_cache"]["restored"]
    for _ in range(2):  # the prompt carries the clock: a new minute mid-test changes it, so try again
        minute = time.strftime("%H:%M")
        ask("ironman")
        ask("ohlora")  # switch away: the KV cache is cleared
        after_switch = ask("ironman")  # switch back: the snapshot of the first request
        no_switch = ask("ironman")  # same adapter: llama-cpp-python's prefix match on the live cache
        if time.strftime("%H:%M") == minute:
            break
    assert after_switch == no_switch
    assert gemma_server.health()["persona_cache"]["restored"] >= restored + 2
