"""Both engines generate from the real packaged models; stop strings and stop reasons."""

from dataclasses import replace
from datetime import datetime

import pytest

from ohlora.backends.base import StopMatcher
from ohlora.chat import ChatSession
from ohlora.config import Settings
from ohlora.models import resolve_base
from ohlora.personas import load_persona


def test_stop_matcher_holds_back_partial_stop():
    m = StopMatcher(["<end_of_turn>"])
    assert m.feed("hello <end") == "hello "
    assert m.feed("_of") == ""
    assert m.feed("_turn> tail") == ""
    assert m.hit


def test_stop_matcher_releases_false_alarm():
    m = StopMatcher(["\n사용자:"])
    assert m.feed("좋아\n") == "좋아"
    assert m.feed("오늘") == "\n오늘"
    assert not m.hit and m.flush() == ""


def _short(persona_id: str, n: int = 12, **gen):
    p = load_persona(persona_id)
    return replace(p, generation=replace(p.generation, max_tokens=n, seed=7, **gen))


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["llamacpp", "hf"])
def test_gemma_generates_on_both_backends(backend):
    session = ChatSession(Settings(backend=backend, memory=False, n_ctx=1024, guard=False, lines=False), _short("ironman"))
    pieces = list(session.send("안녕?"))
    result = session.last
    assert "".join(pieces).strip() == result.text
    assert result.completion_tokens >= 1 and result.prompt_tokens > 50
    assert result.stop_reason in ("end_of_turn", "stop_string", "max_tokens")
    assert session.engine().base.arch == "gemma3"
    assert session.history[-1] == {"role": "assistant", "content": result.text}


@pytest.mark.slow
def test_smollm2_generates_through_same_code(smollm2_gguf):
    session = ChatSession(Settings(memory=False, n_ctx=2048, guard=False, lines=False), _short("ironman"), base_override="smollm2")
    text = "".join(session.send("Hello, who are you?"))
    assert text.strip() and session.last.completion_tokens >= 1
    assert "<|im_start|>assistant\n" in session.last_prompt  # the tokenizer's ChatML template
    assert session.engine().base.arch == "llama"


@pytest.mark.slow
def test_max_tokens_stop_reason():
    session = ChatSession(Settings(memory=False, n_ctx=1024, guard=False, lines=False), _short("ohlora", n=3, temperature=0.0))
    list(session.send("오늘 날씨 어때? 길게 얘기해줘"))
    # the limit was hit (exactly 3 tokens), or the model ended its turn first: either way a stop
    # reason that agrees with the count (the scripted engine tests the limit itself, in test_fakes.py)
    r = session.last
    assert 1 <= r.completion_tokens <= 3
    hit_limit = r.completion_tokens == 3 and r.stop_reason == "max_tokens"
    assert hit_limit or r.stop_reason in ("end_of_turn", "stop_string"), r


@pytest.mark.slow
def test_persona_stop_string_ends_reply(monkeypatch):
    import ohlora.chat

    # the prompt carries the clock: on a busy machine the two replies can straddle a minute
    frozen = datetime(2026, 12, 6, 19, 30)
    monkeypatch.setattr(ohlora.chat, "datetime", type("Frozen", (datetime,), {"now": classmethod(lambda cls, tz=None: frozen)}))
    p = _short("ohlora", n=40, temperature=0.0)
    session = ChatSession(Settings(memory=False, n_ctx=1024, guard=False, lines=False), p)
    free = "".join(session.send("하나 둘 셋 넷 다섯 여섯 일곱 여덟 아홉 열 세어봐"))
    words = free.split()
    if len(words) < 3:
        pytest.skip("greedy answer too short to plant a stop string")
    session = ChatSession(Settings(memory=False, n_ctx=1024, guard=False, lines=False), replace(p, stop=(words[1],)))
    cut = "".join(session.send("하나 둘 셋 넷 다섯 여섯 일곱 여덟 아홉 열 세어봐"))
    assert session.last.stop_reason == "stop_string"
    assert words[1] not in cut and free.startswith(cut.strip())


@pytest.mark.slow
def test_llamacpp_cancel_from_the_consumer():
    session = ChatSession(Settings(memory=False, n_ctx=1024, guard=False, lines=False), _short("ohlora", n=64))
    got = []
    for piece in session.send("긴 이야기를 해줘"):
        got.append(piece)
        session.cancel()
    assert session.last.stop_reason in ("cancelled", "end_of_turn", "stop_string")
    assert session.last.completion_tokens <= 3


@pytest.mark.slow
def test_read_ahead_leaves_less_to_read_and_the_same_reply(monkeypatch):
    """warm_next reads the next turn's start between turns: the next reply is the same (greedy)
    and the engine reads fewer new tokens for it."""
    import llama_cpp

    import ohlora.chat

    frozen = datetime(2026, 12, 6, 19, 30)
    monkeypatch.setattr(ohlora.chat, "datetime", type("Frozen", (datetime,), {"now": classmethod(lambda cls, tz=None: frozen)}))
    read: list[int] = []
    real_eval = llama_cpp.Llama.eval
    monkeypatch.setattr(llama_cpp.Llama, "eval", lambda self, tokens: (read.append(len(tokens)), real_eval(self, tokens))[1])

    def two_turns(read_ahead: bool) -> tuple[str, int]:
        session = ChatSession(Settings(memory=False, n_ctx=1024, guard=False, lines=False), _short("ohlora", n=16, temperature=0.0))
        "".join(session.send("안녕! 나 민지야"))
        if read_ahead:
            session.warm_next()
        read.clear()
        reply = "".join(session.send("오늘 점심 뭐 먹지?"))
        return reply, read[0]

    plain, plain_read = two_turns(False)
    ahead, ahead_read = two_turns(True)
    assert ahead == plain
    assert ahead_read < plain_read - 10


def test_a_typed_draft_is_read_before_it_is_sent(monkeypatch):
    """warm_draft reads the prompt for what the user has typed: sending that text then reads a
    token or two and gives the same reply (greedy); sending other text is answered as usual."""
    import llama_cpp

    import ohlora.chat

    frozen = datetime(2026, 12, 6, 19, 30)
    monkeypatch.setattr(ohlora.chat, "datetime", type("Frozen", (datetime,), {"now": classmethod(lambda cls, tz=None: frozen)}))
    read: list[int] = []
    real_eval = llama_cpp.Llama.eval
    monkeypatch.setattr(llama_cpp.Llama, "eval", lambda self, tokens: (read.append(len(tokens)), real_eval(self, tokens))[1])

    def second_turn(draft: str | None) -> tuple[str, int]:
        session = ChatSession(Settings(memory=False, n_ctx=1024, guard=False, lines=False), _short("ohlora", n=16, temperature=0.0))
        "".join(session.send("안녕! 나 민지야"))
        if draft is not None:
            session.warm_draft(draft)
        read.clear()
        reply = "".join(session.send("오늘 점심 뭐 먹지?"))
        return reply, sum(read[:1])

    plain, plain_read = second_turn(None)
    drafted, drafted_read = second_turn("오늘 점심 뭐 먹지?")
    assert drafted == plain and drafted_read <= 2 < plain_read
    changed, _ = second_turn("오늘 저녁 뭐 먹지?")  # the user typed on: the message sent is answered, not the draft
    assert changed == plain


@pytest.mark.slow
def test_loading_an_adapter_writes_nothing_to_the_terminal(capfd):
    # llama.cpp warned once per layer it could not repack ("lora for 'blk.0...' cannot use buft"): noise under `ohlora ask`
    session = ChatSession(Settings(memory=False, n_ctx=1024, guard=False, lines=False), _short("ohlora", n=4))
    for _ in session.send("안녕"):
        pass
    assert session.engine().active_adapter == "ohlora"
    out, err = capfd.readouterr()
    assert "lora" not in err.lower() and "buft" not in err
