"""The keep head (memory/keep.py) on the built-in embedder: what no rule keeps, it may."""

from __future__ import annotations

from datetime import datetime

from memory.embed import HashEmbedder
from memory.extract import extract
from memory.keep import KeepHead, keep_judge
from memory.store import MemoryStore

NOW = datetime(2026, 3, 4, 21, 0)


def test_the_shipped_head_fits_the_built_in_embedder(embedder):
    head = KeepHead.load()
    assert head is not None and head.embedder_name == embedder.name and head.w.shape == (embedder.dim,)
    assert keep_judge(HashEmbedder()) is None  # another embedder's vectors mean nothing to it


def test_facts_no_rule_knows_are_kept_and_todays_log_is_not(embedder):
    keep = keep_judge(embedder)
    for told in ("월수금은 수영 가", "Sam just got promoted to charge nurse!", "sold my old car and got a Tesla Model 3",
                 "집주인이 월세 올렸어 이제 72만원"):
        assert extract(told, NOW) == [], told  # the rules alone keep nothing of these
        assert [f.text for f in extract(told, NOW, keep=keep)] == [told], told
    for said in ("오늘 점심 라면 먹음", "방금 샤워함", "비 오네"):
        assert extract(said, NOW, keep=keep) == [], said


def test_observe_asks_the_head(tmp_path, embedder):
    with MemoryStore(tmp_path / "m.db", embedder) as store:
        assert [m.text for m in store.observe("월수금은 수영 가", persona=None, conversation_id=1, now=NOW)] == ["월수금은 수영 가"]
        assert store.observe("오늘 점심 라면 먹음", persona=None, conversation_id=1, now=NOW) == []
        assert [r.memory.text for r in store.recall("평일 저녁에 나 뭐 하지?", k=3)] == ["월수금은 수영 가"]
    with MemoryStore(tmp_path / "h.db", HashEmbedder()) as store:  # no head for this embedder: rules only
        assert store.observe("월수금은 수영 가", persona=None, conversation_id=1, now=NOW) == []
