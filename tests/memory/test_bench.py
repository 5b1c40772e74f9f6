"""`ohlora memory bench` on dialogues (LongMemEval-style categories) and on labelled messages (extraction P/R)."""

from __future__ import annotations

import json

import pytest

from memory.bench import bench_kind, judge, run_dialogues, run_extraction
from ohlora.errors import UserError

DIALOGUES = [
    {"id": "x1", "category": "extraction",
     "sessions": [{"date": "2026-09-14T22:30", "messages": ["하 비 엄청 온다", "참고로 나 오른쪽 귀가 잘 안 들려"]}],
     "ask": {"date": "2026-10-03T14:00", "text": "시끄러운 술집에서 나 어느 쪽에 앉는 게 나을까?"},
     "expect_any": ["오른쪽 귀"], "forbid": []},
    {"id": "x2", "category": "update",
     "sessions": [{"date": "2026-03-02T20:00", "messages": ["나 지금 신림동 살아"]},
                  {"date": "2026-06-10T21:00", "messages": ["이사 끝! 이제 해운대 살아"]}],
     "ask": {"date": "2026-07-01T19:00", "text": "우리 동네 맛집 추천해줘, 나 어디 살지?"},
     "expect_any": ["해운대"], "forbid": ["신림동"]},
    {"id": "x3", "category": "temporal",
     "sessions": [{"date": "2026-11-16T20:00", "messages": ["나 다음 주 금요일에 면접 있어"]}],
     "ask": {"date": "2026-11-24T09:00", "text": "면접 언제라고 했지?"},
     "expect_any": ["2026-11-27", "면접"], "forbid": []},
    {"id": "x4", "category": "abstention",  # scored (the told fact must not be in the prompt), not asserted
     "sessions": [{"date": "2026-03-10T21:00", "messages": ["나 매일 아침 한강에서 달리기 해"]}],
     "ask": {"date": "2026-04-01T20:00", "text": "우리 집 고양이 이름 뭐였지?"},
     "expect_any": [], "forbid": ["한강"]},
]
LABELS = [
    {"text": "나 유당불내증 있어서 우유 마시면 바로 배 아파", "store": True, "facts": ["유당불내증"], "kind": "fact-health"},
    {"text": "I work night shifts as a nurse", "store": True, "facts": ["nurse"], "kind": "fact-job"},
    {"text": "오늘 날씨 어때?", "store": False, "facts": [], "kind": "question"},
    {"text": "안녕!", "store": False, "facts": [], "kind": "greeting"},
]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_the_judge():
    row = {"expect_any": ["2026-11-27", "면접"], "forbid": ["서울"]}
    assert judge("temporal", ["다음 주 금요일(2026-11-27)에 면접 있어"], row)
    assert not judge("temporal", ["면접 있어"], row)  # the date is missing
    assert not judge("temporal", ["다음 주 금요일(2026-11-27)에 면접, 서울에서"], row)  # a forbidden string
    multi = {"expect_any": ["제주도", "속초"], "expect_all": ["제주도", "속초"], "forbid": []}
    assert judge("multi-session", ["제주도 다녀왔어", "속초 다녀옴"], multi)
    assert not judge("multi-session", ["제주도 다녀왔어"], multi)
    assert judge("abstention", [], {"expect_any": [], "forbid": ["초코"]})
    # the user's words match with or without the date observe wrote in
    moved = {"expect_any": ["내년 3월"], "forbid": ["10월 17일"]}
    assert judge("update", ["결혼식 내년(2027) 3월로 미룸"], moved)
    assert not judge("update", ["결혼식 10월 17일(2026-10-17)", "결혼식 내년(2027) 3월로 미룸"], moved)


@pytest.mark.slow
def test_dialogues_through_the_store(tmp_path, embedder):
    path = write_jsonl(tmp_path / "d.jsonl", DIALOGUES)
    assert bench_kind(path) == "dialogues"
    result = run_dialogues(path, embedder=embedder, k=3, details=True)
    assert set(result["by_category"]) == {"extraction", "update", "temporal", "abstention"}
    assert result["n_rows"] == 4 and result["update_superseded_recalled"] == 0
    by = {c: v["accuracy"] for c, v in result["by_category"].items()}
    assert by["extraction"] == by["update"] == by["temporal"] == 1.0, result["rows"]
    recalled = next(r for r in result["rows"] if r["id"] == "x3")["recalled"]
    assert "(2026-11-27)" in recalled[0]["text"]  # "다음 주 금요일", told on 2026-11-16


def test_extraction_precision_and_recall(tmp_path):
    path = write_jsonl(tmp_path / "e.jsonl", LABELS)
    assert bench_kind(path) == "extraction"
    result = run_extraction(path, details=True)
    assert (result["precision"], result["recall"], result["tp"], result["tn"]) == (1.0, 1.0, 2, 2)
    assert result["fact_recall"] == 1.0 and result["wrong"] == []


def test_the_shipped_label_file_is_read(tmp_path):
    from pathlib import Path

    import memory

    result = run_extraction(Path(memory.__file__).parent / "bench" / "extract_labels.jsonl")
    assert result["n"] == 320 and 0 <= result["precision"] <= 1


def test_bad_jsonl(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "x", "store": true}\n{"text": oops}\n')
    with pytest.raises(UserError, match="line 2"):
        run_extraction(bad)
    odd = write_jsonl(tmp_path / "odd.jsonl", [{"foo": 1}])
    with pytest.raises(UserError, match="JSONL rows need"):
        bench_kind(odd)
    with pytest.raises(UserError, match="needs 'text'"):
        run_extraction(write_jsonl(tmp_path / "nolabel.jsonl", [{"text": "x", "store": "yes"}]))
