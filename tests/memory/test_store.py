"""MemoryStore on real parts: the built-in embedder (e5 + USE) and a real SQLite file."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import datetime
from pathlib import Path

import pytest

from memory import Memory, MemoryStore, Recalled
from ohlora.errors import UserError

pytestmark = pytest.mark.slow
MONDAY = datetime(2026, 11, 23, 17, 0)


def test_observe_korean_and_english_then_recall(store):
    changed = store.observe("안녕! 나 땅콩 알레르기 있어. 오늘 뭐 먹을까?", persona="ohlora", conversation_id=1, now=MONDAY)
    assert [m.text for m in changed] == ["나 땅콩 알레르기 있어"]
    assert changed[0].persona == "ohlora" and changed[0].conversation_id == 1
    store.observe("My dog Max is a golden retriever", persona="ironman", conversation_id=2, now=MONDAY)
    store.observe("I work night shifts as a nurse", persona=None, conversation_id=2, now=MONDAY)
    assert len(store.list()) == 3
    top = store.recall("견과류 들어간 과자 먹어도 될까?", k=1)
    assert isinstance(top[0], Recalled) and "땅콩" in top[0].memory.text
    assert store.recall("Can you recommend a toy for my dog?", k=1)[0].memory.text.startswith("My dog Max")
    # persona filter: own memories plus shared ones, not another persona's
    assert all(r.memory.persona in (None, "ohlora") for r in store.recall("dog", k=3, persona="ohlora", min_cosine=-2))


def test_questions_and_greetings_store_nothing(store):
    assert store.observe("안녕하세요! 오늘 날씨 어때?", persona=None, conversation_id=None) == []
    assert store.observe("", persona=None, conversation_id=None) == []
    assert store.list() == []


def test_near_duplicates_update_instead_of_piling_up(store):
    first = store.observe("나 오이 진짜 싫어해", persona=None, conversation_id=1)[0]
    again = store.observe("오이 싫어해 ㅠㅠ", persona=None, conversation_id=2)[0]
    assert again.id == first.id and again.text == "오이 싫어해"
    a = store.add("나는 매일 아침 한강에서 달리기를 해")
    b = store.add("나는 매일 아침 한강에서 달리기를 해")
    assert a.id == b.id
    assert len(store.list()) == 2


def test_contradicting_fact_supersedes_the_old_one(store):
    seoul = store.observe("나 서울 살아", persona=None, conversation_id=1)[0]
    busan = store.observe("이사했어, 이제 부산 살아", persona=None, conversation_id=2)[0]
    assert busan.id != seoul.id and busan.replaced == [seoul.id]
    assert store.get(seoul.id).superseded_by == busan.id
    assert [m.id for m in store.list()] == [busan.id]
    assert {m.id for m in store.list(include_superseded=True)} == {seoul.id, busan.id}
    found = store.recall("우리 동네 날씨 어때?", k=3, min_cosine=-2)
    assert [r.memory.id for r in found] == [busan.id]
    liked = store.observe("I love sushi", persona=None, conversation_id=3)[0]
    hated = store.observe("I hate sushi now", persona=None, conversation_id=4)[0]
    assert hated.replaced == [liked.id]


def test_relative_dates_are_stored_absolute(store):
    (m,) = store.observe("다음 주 금요일에 엄마 생신이야", persona=None, conversation_id=1, now=MONDAY)
    assert m.event_date == "2026-12-04" and "(2026-12-04)" in m.text
    e = store.add("dentist appointment next Thursday", now=MONDAY)
    assert e.event_date == "2026-12-03"


def test_forget_and_unknown_ids(store):
    m = store.add("제일 좋아하는 가수는 아이유야")
    assert store.recall("콘서트 누구 공연 갈까?", k=1, min_cosine=-2)[0].memory.id == m.id
    assert store.forget(m.id).id == m.id
    with pytest.raises(UserError, match=f"no memory with ID {m.id}"):
        store.get(m.id)
    assert store.recall("콘서트 누구 공연 갈까?", k=1, min_cosine=-2) == []
    with pytest.raises(UserError, match="no memory with ID 999"):
        store.forget(999)
    with pytest.raises(UserError, match="must be a number"):
        store.forget("abc")


def test_forgetting_the_new_fact_does_not_bring_back_the_old(store):
    store.observe("I live in Boston", persona=None, conversation_id=1)
    (new,) = store.observe("I moved to Denver last year", persona=None, conversation_id=2)
    store.forget(new.id)
    assert store.list(include_superseded=True) == []


def test_bad_input(store):
    with pytest.raises(UserError, match="empty"):
        store.add("   ")
    with pytest.raises(UserError, match="too long"):
        store.add("가" * 50_000)
    huge = ("나 서울 살아. " * 7000)[:50_000]
    changed = store.observe(huge, persona=None, conversation_id=1)
    assert len(store.list()) == 1 and len(changed) >= 1  # one fact, updated, not 5000 copies
    assert store.observe("x" * 50_000, persona=None, conversation_id=1) == []
    assert store.recall("", k=3) == []


def test_export_import_roundtrip(store, tmp_path, embedder):
    store.add("I'm allergic to shellfish")
    store.add("고양이 이름은 나비야")
    out = tmp_path / "export.json"
    assert store.export_json(out) == 2
    with MemoryStore(tmp_path / "other.db", embedder) as other:
        assert other.import_json(out) == 2
        assert other.import_json(out) == 0  # already known
        assert sorted(m.text for m in other.list()) == sorted(m.text for m in store.list())
    bad = tmp_path / "bad.json"
    bad.write_text('{"memories": [\n  {"text": "a"},\n  oops\n]}')
    with pytest.raises(UserError, match="line 3 column 3"):
        store.import_json(bad)


def test_persistence_across_processes(tmp_path, embedder):
    """A memory written by another process is recalled here (vectors come from SQLite)."""
    db = tmp_path / "shared.db"
    code = textwrap.dedent(
        f"""
        import json
        from pathlib import Path
        from memory import MemoryStore
        from memory.embed import E5Embedder
        s = MemoryStore(Path({str(db)!r}), E5Embedder())
        print(json.dumps([m.id for m in s.observe("우리 집 고양이 이름은 나비야", persona="ohlora", conversation_id=7)]))
        """
    )
    env = {"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1", "OHLORA_HOME": str(tmp_path / "home")}
    cwd = Path(__file__).resolve().parents[2]
    w = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=cwd, timeout=300)
    assert w.returncode == 0, w.stderr[-2000:]
    (mid,) = json.loads(w.stdout.strip().splitlines()[-1])
    with MemoryStore(db, embedder) as again:
        found = again.recall("반려묘 장난감 사야겠다", k=1)
        assert [(r.memory.id, r.memory.text) for r in found] == [(mid, "우리 집 고양이 이름은 나비야")]
        assert isinstance(again.get(mid), Memory) and again.get(mid).persona == "ohlora"
        assert again.get(mid).conversation_id == 7


def test_recall_says_why(store):
    store.add("나 땅콩 알레르기 있어")
    store.add("우리 집 고양이 이름은 나비야")
    (top,) = store.recall("땅콩 들어간 과자 먹어도 돼?", k=1)
    assert "땅콩" in top.memory.text
    assert top.why == "dense+bm25" and top.lexical > 0 and store.embedder.min_cosine <= top.cosine <= 1.0
    (other,) = store.recall("견과류 들어간 과자 먹어도 돼?", k=1)
    assert other.why == "dense" and other.lexical == 0  # no shared word: the embedding alone found it


def test_a_question_naming_a_period_prefers_what_was_said_then(store):
    store.observe("나 요즘 기타 배우고 있어", persona=None, conversation_id=1, now=datetime(2026, 11, 2, 20, 0))
    store.observe("나 요즘 요가 배우고 있어", persona=None, conversation_id=2, now=MONDAY)
    ask = datetime(2026, 11, 30, 20, 0)  # the Monday after MONDAY's week
    (top,) = store.recall("지난주에 배운다고 한 거 뭐였지?", k=1, now=ask)
    assert "요가" in top.memory.text and top.why.endswith("+date")
    (plan,) = store.observe("다음 주 금요일에 치과 예약 있어", persona=None, conversation_id=3, now=MONDAY)
    found = store.recall("12월 4일에 뭐 있었지?", k=3, now=MONDAY)
    assert found[0].memory.id == plan.id


def test_a_stated_update_supersedes_the_close_old_fact(store):
    old = store.observe("결혼식 날짜 5월 16일로 잡았어", persona=None, conversation_id=1, now=MONDAY)[0]
    new = store.observe("식장 사정으로 결혼식 6월 20일로 미뤄졌어", persona=None, conversation_id=2, now=MONDAY)[0]
    assert new.replaced == [old.id] and store.get(old.id).superseded_by == new.id
    assert [r.memory.id for r in store.recall("내 결혼식 언제라고 했지?", k=3)] == [new.id]
    # a new fact on another topic, even with "이제", supersedes nothing
    other = store.observe("이제 매일 아침 수영 다녀", persona=None, conversation_id=3, now=MONDAY)[0]
    assert other.replaced == [] and len(store.list()) == 2


def test_a_job_change_supersedes_the_old_workplace(store):
    # cosine 0.75 with a shared content word (회사) and "이제": an update, not a second job
    old = store.observe("나 물류회사 다니는데 연초라 정신없어", persona=None, conversation_id=1, now=MONDAY)[0]
    new = store.observe("드디어 이직했어, 이제 게임회사 QA야", persona=None, conversation_id=2, now=MONDAY)[0]
    assert new.replaced == [old.id]
    assert "물류회사" not in " ".join(r.memory.text for r in store.recall("나 다니는 회사 어디였지?", k=3))


def test_switching_phones_supersedes_the_old_phone(store):
    # no content word shared, but both name a phone (memory.about); "갈아탔" says it changed
    old = store.observe("폰 갤럭시 S24 쓰는데 배터리가 좀 약해", persona=None, conversation_id=1, now=MONDAY)[0]
    new = store.observe("아이폰16으로 갈아탔음", persona=None, conversation_id=2, now=MONDAY)[0]
    assert new.replaced == [old.id]


def test_lexical_terms_are_kept_and_filled_in_for_older_rows(tmp_path, embedder):
    import sqlite3

    db = tmp_path / "m.db"
    with MemoryStore(db, embedder) as s:
        s.add("나 땅콩 알레르기 있어")
        s.add("I work night shifts as a nurse")
    con = sqlite3.connect(db)
    assert [r[0] for r in con.execute("SELECT terms FROM memories ORDER BY id")] == ["땅콩 알레르기", "work night shift nurse"]
    con.execute("UPDATE memories SET terms = NULL")  # as a store written before the column existed
    con.commit()
    con.close()
    with MemoryStore(db, embedder) as s:
        (top,) = s.recall("땅콩 과자 먹어도 돼?", k=1)
        assert "땅콩" in top.memory.text and top.lexical > 0
    con = sqlite3.connect(db)
    assert con.execute("SELECT COUNT(*) FROM memories WHERE terms IS NULL").fetchone()[0] == 0
    con.close()


def test_a_store_made_with_another_embedder_is_re_embedded_on_open(tmp_path, embedder):
    from memory.embed import HashEmbedder

    db = tmp_path / "m.db"
    with MemoryStore(db, HashEmbedder()) as old:
        old.add("나 땅콩 알레르기 있어")
        old.add("I work night shifts as a nurse")
    with MemoryStore(db, embedder) as new:
        (top,) = new.recall("견과류 들어간 과자 먹어도 돼?", k=1)
        assert "땅콩" in top.memory.text
    import sqlite3

    con = sqlite3.connect(db)
    assert {r for r in con.execute("SELECT model, dim FROM vectors")} == {(embedder.name, embedder.dim)}
    con.close()


def test_a_later_day_change_leaves_the_older_fact_out_of_recall(store):
    # observe did not link them (no shared word, below the update cosine); at recall both answer
    # the question, and the later one says it changed ("그만두고", "이제")
    old = store.observe("필라테스 다닌 지 세 달 됐어", persona=None, conversation_id=1, now=datetime(2026, 10, 5, 20, 0))
    new = store.observe("운동 바꿨어 이제 주말마다 클라이밍 해", persona=None, conversation_id=2, now=MONDAY)
    assert old and new and new[0].replaced == []
    texts = [r.memory.text for r in store.recall("나 요즘 무슨 운동 한다고 했지?", k=3, now=MONDAY)]
    assert any("클라이밍" in t for t in texts) and not any("필라테스" in t for t in texts)


def test_facts_said_the_same_day_are_both_recalled(store):
    store.observe("필라테스 다닌 지 세 달 됐어", persona=None, conversation_id=1, now=MONDAY)
    store.observe("운동 바꿨어 이제 주말마다 클라이밍 해", persona=None, conversation_id=1, now=MONDAY)
    texts = " ".join(r.memory.text for r in store.recall("나 요즘 무슨 운동 한다고 했지?", k=3, now=MONDAY))
    assert "클라이밍" in texts and "필라테스" in texts
