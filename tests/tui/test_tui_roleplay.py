"""Roleplay tools in the real chat app (fast tier, scripted engine): swipes, edit, continue, fork
and search, each driven by keys through Textual's pilot. Every test reads the rows back from
the real SQLite file with its own connection (`tui_helpers.rows`), not only the screen."""

from __future__ import annotations

from tests.tui.tui_helpers import SIZE, engine, make_fake_app, rows, type_and_send, wait_for
from textual.widgets import Input, TextArea

from ohlora.tui.screens import EditScreen, HitItem, SearchScreen, SettingsScreen
from ohlora.tui.widgets import MessageView

WAIT = 30  # seconds; a quiet run needs well under one for each step


def _views(app, role=None):
    return [v for v in app.query(MessageView) if (role is None or v.role == role) and not v.has_class("greeting")]


def _swipe_label(view) -> str:
    return str(view.query_one(".swipes").render())


async def _idle(pilot, app) -> None:
    await wait_for(pilot, lambda: not app.generating, timeout=WAIT)
    await pilot.pause()


async def _start(pilot, app) -> None:
    await wait_for(pilot, app.model_ready.is_set, timeout=WAIT)


async def _edit(pilot, app, new_text: str) -> None:
    """Press e on the focused message, replace its text, Ctrl+S."""
    await pilot.press("e")
    await wait_for(pilot, lambda: isinstance(app.screen, EditScreen), timeout=WAIT)
    app.screen.query_one("#edit-text", TextArea).load_text(new_text)
    await pilot.press("ctrl+s")
    await wait_for(pilot, lambda: not isinstance(app.screen, EditScreen), timeout=WAIT)
    await pilot.pause()


# -- swipes ----------------------------------------------------------------------------
async def test_swipes_write_alternatives_browse_them_and_keep_the_chosen_one(monkeypatch, tmp_path):
    app = make_fake_app(monkeypatch, tmp_path, ["첫 답", "다른 답", "셋째 답", "다음 답"])
    async with app.run_test(size=SIZE) as pilot:
        await _start(pilot, app)
        await type_and_send(pilot, "안녕")
        await _idle(pilot, app)
        (reply,) = _views(app, "assistant")
        mid = reply.db_id
        assert rows("SELECT count(*) FROM swipes") == [(0,)] and rows("SELECT swipe FROM messages WHERE id = ?", (mid,)) == [(None,)]

        await pilot.press("up")  # from the empty input to the last reply
        assert app.focused is reply
        await pilot.press("right")  # past the last alternative: write a new one
        await _idle(pilot, app)
        assert reply.text == "다른 답" and reply.swipe == (1, 2) and "2/2" in _swipe_label(reply)
        # the alternative was written after the history the reply had, not after the reply itself
        assert "안녕" in engine(app).prompts[-1] and "첫 답" not in engine(app).prompts[-1]
        assert rows("SELECT position, content, shown FROM swipes WHERE message_id = ? ORDER BY position", (mid,)) == [
            (0, "첫 답", 1), (1, "다른 답", 1)]
        assert rows("SELECT content, swipe FROM messages WHERE id = ?", (mid,)) == [("다른 답", 1)]

        await pilot.press("left")
        assert reply.text == "첫 답" and reply.swipe == (0, 2) and "1/2" in _swipe_label(reply)
        assert rows("SELECT content, swipe FROM messages WHERE id = ?", (mid,)) == [("첫 답", 0)]
        await pilot.press("left")  # the first one: nothing changes
        assert rows("SELECT content, swipe FROM messages WHERE id = ?", (mid,)) == [("첫 답", 0)]

        prompts = len(engine(app).prompts)
        await pilot.press("right")  # an alternative that exists: shown, not written again
        await pilot.pause()
        assert len(engine(app).prompts) == prompts and reply.text == "다른 답"
        await pilot.press("right")  # past the last: a third one
        await _idle(pilot, app)
        assert reply.text == "셋째 답" and reply.swipe == (2, 3) and "3/3" in _swipe_label(reply)
        await pilot.press("left")  # go on with the second one
        assert rows("SELECT content, swipe FROM messages WHERE id = ?", (mid,)) == [("다른 답", 1)]
        assert rows("SELECT position, content FROM swipes WHERE message_id = ? ORDER BY position", (mid,)) == [
            (0, "첫 답"), (1, "다른 답"), (2, "셋째 답")]

        await pilot.press("escape")  # back to the input; the next message sees the chosen reply
        await type_and_send(pilot, "그래서?")
        await _idle(pilot, app)
        last = engine(app).prompts[-1]
        assert "다른 답" in last and "첫 답" not in last and "셋째 답" not in last
    assert rows("SELECT role, content FROM messages ORDER BY id") == [
        ("user", "안녕"), ("assistant", "다른 답"), ("user", "그래서?"), ("assistant", "다음 답")]


async def test_an_alternative_is_written_in_the_background_and_shown_on_right(monkeypatch, tmp_path):
    app = make_fake_app(monkeypatch, tmp_path, ["첫 답", "미리 쓴 답"], swipes_ahead=1)
    async with app.run_test(size=SIZE) as pilot:
        await _start(pilot, app)
        await type_and_send(pilot, "안녕")
        await _idle(pilot, app)
        (reply,) = _views(app, "assistant")
        mid = reply.db_id
        await wait_for(pilot, lambda: rows("SELECT count(*) FROM swipes") == [(2,)] and app.swipes.mid is None,
                       timeout=WAIT)
        await pilot.pause()
        # kept, but not seen: it is no rejected example yet, and the reply still shows the first one
        assert rows("SELECT position, content, shown FROM swipes WHERE message_id = ? ORDER BY position", (mid,)) == [
            (0, "첫 답", 1), (1, "미리 쓴 답", 0)]
        assert rows("SELECT content, swipe FROM messages WHERE id = ?", (mid,)) == [("첫 답", 0)]
        assert reply.text == "첫 답" and "1/2" in _swipe_label(reply)
        prompts = len(engine(app).prompts)
        await pilot.press("up", "right")
        await pilot.pause()
        assert len(engine(app).prompts) == prompts  # shown at once: nothing written now
        assert reply.text == "미리 쓴 답" and "2/2" in _swipe_label(reply)
        assert rows("SELECT position, shown FROM swipes WHERE message_id = ? ORDER BY position", (mid,)) == [(0, 1), (1, 1)]
        assert rows("SELECT content, swipe FROM messages WHERE id = ?", (mid,)) == [("미리 쓴 답", 1)]


async def test_right_while_the_background_alternative_is_written_shows_it_when_done(monkeypatch, tmp_path):
    import threading

    app = make_fake_app(monkeypatch, tmp_path, [], swipes_ahead=1)
    gate = threading.Event()
    calls: list[str] = []

    def script(prompt: str) -> str:  # the background alternative (second call) waits for the gate
        calls.append(prompt)
        if len(calls) == 2:
            assert gate.wait(WAIT)
            return "기다린 답"
        return "첫 답"

    async with app.run_test(size=SIZE) as pilot:
        await _start(pilot, app)
        engine(app).script = script
        await type_and_send(pilot, "안녕")
        await _idle(pilot, app)
        (reply,) = _views(app, "assistant")
        await wait_for(pilot, lambda: len(calls) == 2 and app.swipes.mid == reply.db_id, timeout=WAIT)
        await pilot.press("up", "right")
        await pilot.pause()
        assert reply.text == "첫 답" and "writing alternative 2" in _swipe_label(reply)
        assert not app.generating  # nothing new was started: the background one is awaited
        gate.set()
        await wait_for(pilot, lambda: reply.text == "기다린 답", timeout=WAIT)
        await pilot.pause()
        assert len(calls) == 2 and "2/2" in _swipe_label(reply) and "writing" not in _swipe_label(reply)
    assert rows("SELECT position, content, shown FROM swipes ORDER BY position") == [(0, "첫 답", 1), (1, "기다린 답", 1)]
    assert rows("SELECT content, swipe FROM messages WHERE role = 'assistant'") == [("기다린 답", 1)]


async def test_a_new_message_stops_the_background_alternative_and_keeps_nothing_of_it(monkeypatch, tmp_path):
    long = " ".join(f"단어{i}" for i in range(40))  # 40 words at 0.2 s: 8 s if nobody stops it
    app = make_fake_app(monkeypatch, tmp_path, ["첫 답", long, "둘째 답"], delay=0.2, swipes_ahead=1)
    async with app.run_test(size=SIZE) as pilot:
        await _start(pilot, app)
        await type_and_send(pilot, "안녕")
        await _idle(pilot, app)
        await wait_for(pilot, lambda: len(engine(app).prompts) == 2 and app.swipes.mid is not None, timeout=WAIT)
        await type_and_send(pilot, "다음 얘기")
        await _idle(pilot, app)
        assert _views(app, "assistant")[-1].text == "둘째 답"
        first = _views(app, "assistant")[0].db_id
        await wait_for(pilot, lambda: app.swipes.mid is None, timeout=WAIT)  # the second reply's is written
    # the stopped background alternative of the first reply is not kept, not even in part
    assert rows("SELECT count(*) FROM swipes WHERE message_id = ?", (first,)) == [(0,)]
    assert rows("SELECT content, swipe FROM messages WHERE id = ?", (first,)) == [("첫 답", None)]
    assert rows("SELECT role, content FROM messages ORDER BY id") == [
        ("user", "안녕"), ("assistant", "첫 답"), ("user", "다음 얘기"), ("assistant", "둘째 답")]


# -- edit and continue ---------------------------------------------------------------------
async def test_edit_your_message_and_the_reply_then_go_on_from_there(monkeypatch, tmp_path):
    app = make_fake_app(monkeypatch, tmp_path, ["첫 답", "고친 말에 답", " 그리고 더", "다음 답"])
    async with app.run_test(size=SIZE) as pilot:
        await _start(pilot, app)
        await type_and_send(pilot, "안녕 나는 민수야")
        await _idle(pilot, app)
        (user,) = _views(app, "user")
        uid = user.db_id

        await pilot.press("up", "up")  # the reply, then your message
        assert app.focused is user
        await _edit(pilot, app, "안녕 나는 지수야")
        await _idle(pilot, app)  # its reply answered the old text: a new one is written
        assert user.text == "안녕 나는 지수야"
        assert "지수야" in engine(app).prompts[-1] and "민수야" not in engine(app).prompts[-1]
        (reply,) = _views(app, "assistant")
        rid = reply.db_id
        assert reply.text == "고친 말에 답"
        saved = rows("SELECT id, role, content, original, edited_at IS NOT NULL FROM messages ORDER BY id")
        assert saved == [(uid, "user", "안녕 나는 지수야", "안녕 나는 민수야", 1), (rid, "assistant", "고친 말에 답", None, 0)]

        await pilot.press("down")  # your message -> the reply
        assert app.focused is reply
        await _edit(pilot, app, "내가 고친 답")
        assert not app.generating  # an edited reply is the chat's text: nothing is written
        assert reply.text == "내가 고친 답" and "edited" in reply.note
        assert rows("SELECT content, original, edited_at IS NOT NULL FROM messages WHERE id = ?", (rid,)) == [
            ("내가 고친 답", "고친 말에 답", 1)]

        await pilot.press("ctrl+g")  # continue from the edited text
        await _idle(pilot, app)
        assert engine(app).prompts[-1].endswith("내가 고친 답")  # the model goes on from the user's text
        assert reply.text == "내가 고친 답 그리고 더"
        assert rows("SELECT content, original FROM messages WHERE id = ?", (rid,)) == [("내가 고친 답 그리고 더", "고친 말에 답")]

        await pilot.press("escape")
        await type_and_send(pilot, "그다음은?")
        await _idle(pilot, app)
        last = engine(app).prompts[-1]
        assert "내가 고친 답 그리고 더" in last and "고친 말에 답" not in last and "민수야" not in last
    assert rows("SELECT role, content FROM messages ORDER BY id") == [
        ("user", "안녕 나는 지수야"), ("assistant", "내가 고친 답 그리고 더"), ("user", "그다음은?"), ("assistant", "다음 답")]


async def test_continue_extends_a_reply_cut_by_the_length_limit(monkeypatch, tmp_path):
    app = make_fake_app(monkeypatch, tmp_path, ["하나 둘 셋 넷 다섯", " 여섯 일곱"],
                        generation_overrides={"max_tokens": 3})
    async with app.run_test(size=SIZE) as pilot:
        await _start(pilot, app)
        await type_and_send(pilot, "세어 봐")
        await _idle(pilot, app)
        (reply,) = _views(app, "assistant")
        rid = reply.db_id
        assert rows("SELECT content, stop_reason, completion_tokens FROM messages WHERE id = ?", (rid,)) == [
            ("하나 둘 셋", "max_tokens", 3)]
        assert "length limit" in reply.note
        await pilot.press("ctrl+g")
        await _idle(pilot, app)
        assert engine(app).prompts[-1].endswith("<start_of_turn>model\n하나 둘 셋")
        assert reply.text == "하나 둘 셋 여섯 일곱" and "5 tokens" in reply.note and "length limit" not in reply.note
        assert _views(app, "assistant") == [reply]  # the same message grew; no new one
    assert rows("SELECT role, content, stop_reason, completion_tokens FROM messages ORDER BY id") == [
        ("user", "세어 봐", None, None), ("assistant", "하나 둘 셋 여섯 일곱", "end_of_turn", 5)]


async def test_continue_refuses_when_the_last_message_is_not_a_reply(monkeypatch, tmp_path):
    app = make_fake_app(monkeypatch, tmp_path, ["첫 답"])
    async with app.run_test(size=SIZE) as pilot:
        await _start(pilot, app)
        await pilot.press("ctrl+g")
        await pilot.pause()
        assert not app.generating and engine(app).prompts == []
    assert not rows("SELECT name FROM sqlite_master WHERE name = 'messages'") or rows("SELECT count(*) FROM messages") == [(0,)]


# -- fork -------------------------------------------------------------------------------------
async def test_fork_from_a_reply_and_from_your_message(monkeypatch, tmp_path):
    app = make_fake_app(monkeypatch, tmp_path, ["첫 답", "둘째 답", "포크 답", "포크의 포크 답"])
    async with app.run_test(size=SIZE) as pilot:
        await _start(pilot, app)
        await type_and_send(pilot, "하나")
        await _idle(pilot, app)
        await type_and_send(pilot, "둘")
        await _idle(pilot, app)
        old = app.conversation_id
        first_reply = _views(app, "assistant")[0]
        fid = first_reply.db_id
        await pilot.press("up", "up", "up")  # 둘째 답 -> 둘 -> 첫 답
        assert app.focused is first_reply
        await pilot.press("f")
        await pilot.pause()
        new = app.conversation_id
        assert new != old
        assert [v.text for v in _views(app) if v.role != "system"] == ["하나", "첫 답"]
        assert rows("SELECT parent_id, forked_from FROM conversations WHERE id = ?", (new,)) == [(old, fid)]
        assert rows("SELECT role, content FROM messages WHERE conversation_id = ? ORDER BY id", (new,)) == [
            ("user", "하나"), ("assistant", "첫 답")]
        assert rows("SELECT content FROM messages WHERE conversation_id = ? ORDER BY id", (old,)) == [
            ("하나",), ("첫 답",), ("둘",), ("둘째 답",)]  # the old one stays as it was

        await pilot.press("escape")
        await type_and_send(pilot, "다른 길")
        await _idle(pilot, app)
        last = engine(app).prompts[-1]
        assert "첫 답" in last and "둘째 답" not in last  # the fork's history ends where it was cut
        assert rows("SELECT content FROM messages WHERE conversation_id = ? ORDER BY id", (new,)) == [
            ("하나",), ("첫 답",), ("다른 길",), ("포크 답",)]

        mine = _views(app, "user")[-1]
        await pilot.press("up", "up")  # 포크 답 -> 다른 길
        assert app.focused is mine
        await pilot.press("f")  # a fork that ends with your message: it is answered at once
        await _idle(pilot, app)
        third = app.conversation_id
        assert third not in (old, new)
        assert rows("SELECT parent_id, forked_from FROM conversations WHERE id = ?", (third,)) == [(new, mine.db_id)]
        assert rows("SELECT role, content FROM messages WHERE conversation_id = ? ORDER BY id", (third,)) == [
            ("user", "하나"), ("assistant", "첫 답"), ("user", "다른 길"), ("assistant", "포크의 포크 답")]
        assert _views(app, "assistant")[-1].text == "포크의 포크 답"
    assert rows("SELECT count(*) FROM conversations") == [(3,)]


async def test_fork_keeps_a_replys_alternatives(monkeypatch, tmp_path):
    app = make_fake_app(monkeypatch, tmp_path, ["첫 답", "다른 답"])
    async with app.run_test(size=SIZE) as pilot:
        await _start(pilot, app)
        await type_and_send(pilot, "하나")
        await _idle(pilot, app)
        await pilot.press("up", "right")
        await _idle(pilot, app)
        await pilot.press("f")
        await pilot.pause()
        (reply,) = _views(app, "assistant")
        assert reply.text == "다른 답" and "2/2" in _swipe_label(reply)
        await pilot.press("up", "left")  # browse the copied alternatives in the fork
        await pilot.pause()
        assert reply.text == "첫 답"
        new = app.conversation_id
    assert rows("SELECT m.conversation_id, s.position, s.content FROM swipes s JOIN messages m ON m.id = s.message_id"
                " ORDER BY m.conversation_id, s.position") == [(1, 0, "첫 답"), (1, 1, "다른 답"), (new, 0, "첫 답"),
                                                              (new, 1, "다른 답")]
    assert rows("SELECT conversation_id, content, swipe FROM messages WHERE role = 'assistant' ORDER BY id") == [
        (1, "다른 답", 1), (new, "첫 답", 0)]  # choosing in the fork leaves the original alone


# -- search -------------------------------------------------------------------------------------
def _fts(word: str) -> list[int]:
    """Message ids the real file's full-text index finds for a word (as a prefix)."""
    return [r[0] for r in rows("SELECT rowid FROM messages_fts WHERE messages_fts MATCH ? ORDER BY rowid",
                               (f'"{word}"*',))]


async def _search(pilot, app, words: str) -> list[HitItem]:
    if not isinstance(app.screen, SearchScreen):
        await pilot.press("ctrl+f")
        await wait_for(pilot, lambda: isinstance(app.screen, SearchScreen), timeout=WAIT)
    app.screen.query_one("#search-input", Input).value = words
    await pilot.pause()
    await pilot.pause()
    return list(app.screen.query(HitItem))


async def test_search_finds_a_message_in_another_chat_and_jumps_to_it(monkeypatch, tmp_path):
    app = make_fake_app(monkeypatch, tmp_path, ["예쁜 이름이다", "우산 챙겨"])
    async with app.run_test(size=SIZE) as pilot:
        await _start(pilot, app)
        await type_and_send(pilot, "우리 고양이 이름은 나비야")
        await _idle(pilot, app)
        first = app.conversation_id
        cat = _views(app, "user")[0].db_id
        await pilot.press("ctrl+n")
        await type_and_send(pilot, "오늘 비가 와")
        await _idle(pilot, app)
        second = app.conversation_id
        assert second != first
        assert _fts("나비") == [cat]  # a prefix of 나비야, in the index of the real file

        hits = await _search(pilot, app, "나비")
        assert [(h.hit.conversation_id, h.hit.message_id) for h in hits] == [(first, cat)]
        assert "[나비야]" in hits[0].hit.snippet
        await pilot.press("down", "enter")  # to the results, jump
        await wait_for(pilot, lambda: not isinstance(app.screen, SearchScreen), timeout=WAIT)
        await pilot.pause()
        assert app.conversation_id == first
        assert isinstance(app.focused, MessageView) and app.focused.db_id == cat
        assert app.focused.text == "우리 고양이 이름은 나비야"

        hits = await _search(pilot, app, "우산")  # a reply's words, in the other chat
        assert [(h.hit.conversation_id, h.hit.role) for h in hits] == [(second, "assistant")]
        hits = await _search(pilot, app, "고양이 나비")  # every word must be there
        assert len(hits) == 1
        hits = await _search(pilot, app, "고양이 우산")
        assert hits == []
        await pilot.press("escape")
        await pilot.pause()
        assert app.conversation_id == first  # closing the search goes nowhere


async def test_search_follows_edits(monkeypatch, tmp_path):
    app = make_fake_app(monkeypatch, tmp_path, ["좋은 이름", "다음 답"])
    async with app.run_test(size=SIZE) as pilot:
        await _start(pilot, app)
        await type_and_send(pilot, "강아지 이름은 초코야")
        await _idle(pilot, app)
        reply = _views(app, "assistant")[0]
        await pilot.press("up")
        await _edit(pilot, app, "멋진 이름이네 바둑이")
        assert _fts("좋은") == [] and _fts("바둑이") == [reply.db_id]
        hits = await _search(pilot, app, "바둑")
        assert [h.hit.message_id for h in hits] == [reply.db_id]
        assert await _search(pilot, app, "좋은") == []


# -- per-chat generation settings -----------------------------------------------------------------
async def test_chat_settings_are_saved_with_the_chat_and_used(monkeypatch, tmp_path):
    import json

    long = "하나 둘 셋 넷 다섯 여섯"
    app = make_fake_app(monkeypatch, tmp_path, [long])
    async with app.run_test(size=SIZE) as pilot:
        await _start(pilot, app)
        await type_and_send(pilot, "세어 봐")
        await _idle(pilot, app)
        cid = app.conversation_id
        await pilot.press("f3")
        await wait_for(pilot, lambda: isinstance(app.screen, SettingsScreen), timeout=WAIT)
        app.screen.query_one("#set-max_tokens", Input).value = "2"
        app.screen.query_one("#set-temperature", Input).value = "0.3"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not isinstance(app.screen, SettingsScreen), timeout=WAIT)
        saved = rows("SELECT generation FROM conversations WHERE id = ?", (cid,))[0][0]
        assert json.loads(saved) == {"max_tokens": 2, "temperature": 0.3}
        await type_and_send(pilot, "또 세어 봐")
        await _idle(pilot, app)
        assert rows("SELECT content, stop_reason FROM messages WHERE role = 'assistant' ORDER BY id") == [
            (long, "end_of_turn"), ("하나 둘", "max_tokens")]  # this chat's max_tokens, not the persona's

        await pilot.press("ctrl+n")  # a new chat starts from the persona's settings ...
        await pilot.pause()
        assert app.conversation.overrides == {}
        app.open_conversation(cid)  # ... and the old one comes back with its own
        assert app.conversation.generation().max_tokens == 2 and app.conversation.generation().temperature == 0.3
        await type_and_send(pilot, "/set max_tokens default")
        await type_and_send(pilot, "/set temperature 9")  # out of range: refused, nothing saved
        await pilot.pause()
        assert any("temperature must be between" in v.text for v in _views(app, "system"))
    assert json.loads(rows("SELECT generation FROM conversations WHERE id = ?", (cid,))[0][0]) == {"temperature": 0.3}
