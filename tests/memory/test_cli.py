"""`ohlora memory ...` through ohlora.memory_cli: register(), handlers, UserError on bad input."""

from __future__ import annotations

import argparse
import json

import pytest

from ohlora.memory_cli import register
from ohlora.errors import UserError

pytestmark = pytest.mark.slow


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="ohlora")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["memory", *argv])
    return args.func(args)


SMALL = {
    "memories": [
        {"id": "a", "text": "나 땅콩 알레르기 있어"},
        {"id": "b", "text": "우리 집 고양이 이름은 나비야"},
        {"id": "c", "text": "I work night shifts as a nurse"},
        {"id": "d", "text": "다음 달에 이직 면접이 있어"},
    ],
    "queries": [
        {"text": "견과류 들어간 과자 먹어도 될까?", "relevant": ["a"]},
        {"text": "반려묘 장난감 사야겠다", "relevant": ["b"]},
        {"text": "I'm exhausted after working all night at the hospital", "relevant": ["c"]},
    ],
}


def test_bench_dialogues_and_extraction_files(tmp_path, capsys, embedder, ohlora_home):
    rows = [{"id": "a", "category": "extraction",
             "sessions": [{"date": "2026-09-14T22:30", "messages": ["참고로 나 오른쪽 귀가 잘 안 들려"]}],
             "ask": {"date": "2026-10-03T14:00", "text": "시끄러운 데서 나 어느 쪽에 앉을까?"},
             "expect_any": ["오른쪽 귀"], "forbid": []}]
    d = tmp_path / "d.jsonl"
    d.write_text(json.dumps(rows[0], ensure_ascii=False) + "\n", encoding="utf-8")
    assert run("bench", str(d), "--json") == 0
    out = json.loads(capsys.readouterr().out)
    assert out["kind"] == "dialogues" and out["by_category"]["extraction"] == {"n": 1, "accuracy": 1.0} and out["k"] == 3
    e = tmp_path / "e.jsonl"
    e.write_text('{"text": "나 서울 살아", "store": true, "facts": ["서울"]}\n{"text": "안녕!", "store": false, "facts": []}\n')
    assert run("bench", str(e)) == 0
    assert "precision 1.000  recall 1.000" in capsys.readouterr().out


def test_bench_on_a_small_file(tmp_path, capsys, embedder, ohlora_home):
    f = tmp_path / "small.json"
    f.write_text(json.dumps(SMALL, ensure_ascii=False))
    assert run("bench", str(f), "--k", "1,3", "--json") == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("recall@1", "recall@3", "mrr", "latency_ms_p50", "latency_ms_p95", "n_queries"):
        assert key in out
    assert "recall@5" not in out and out["n_queries"] == 3
    assert 0 <= out["recall@1"] <= out["recall@3"] <= 1 and out["recall@3"] >= 2 / 3
    assert not (ohlora_home / "data" / "memory.db").exists()  # a temp store, never the user's
    assert run("bench", str(f), "--retriever", "hybrid") == 0
    assert "recall@5" in capsys.readouterr().out


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"memories": [\n  {"id": "a", "text": "x"},\n  {"id": "b" "text": "y"}\n]}', "line 3 column 14"),
        ("", "line 1 column 1"),
        ('{"memories": [], "queries": []}', "'memories' must be a non-empty list"),
        ('{"memories": [{"id": "a", "text": "x"}], "queries": [{"text": "q", "relevant": ["z"]}]}',
         r"queries\[0\]: unknown memory id 'z'"),
    ],
)
def test_bench_bad_files(tmp_path, content, message):
    f = tmp_path / "bad.json"
    f.write_text(content)
    with pytest.raises(UserError, match=message):
        run("bench", str(f))
    with pytest.raises(UserError, match="not found"):
        run("bench", str(tmp_path / "missing.json"))
    with pytest.raises(UserError, match="--k"):
        run("bench", str(f), "--k", "0,x")


def test_add_list_search_forget_export_import(tmp_path, capsys, embedder, ohlora_home):
    assert run("add", "나", "땅콩", "알레르기", "있어") == 0
    assert "remembered #1" in capsys.readouterr().out
    assert run("list") == 0
    assert "#1" in capsys.readouterr().out
    assert run("search", "견과류 먹어도 돼?", "--json", "--all") == 0
    found = json.loads(capsys.readouterr().out)
    assert found[0]["id"] == 1 and found[0]["why"] == "dense" and {"score", "cosine", "bm25"} <= set(found[0])
    assert run("search", "땅콩", "들어간", "과자") == 0
    shown = capsys.readouterr().out.splitlines()
    assert shown[0].startswith("retriever hybrid, embedder e5-small-q4") and "cosine >= -0.05" in shown[0]  # the query adapter's threshold
    assert "dense+bm25" in shown[2] and "#1" in shown[2]
    out = tmp_path / "mem.json"
    assert run("export", str(out)) == 0
    assert run("forget", "1") == 0
    with pytest.raises(UserError, match="no memory with ID 1"):
        run("forget", "1")
    assert run("import", str(out)) == 0
    assert "imported 1" in capsys.readouterr().out.splitlines()[-1]
    assert (ohlora_home / "data" / "memory.db").exists()
    with pytest.raises(UserError, match="empty"):
        run("add", " ")


def test_a_fact_told_in_one_ask_is_in_the_prompt_of_the_next(embedder, ohlora_home):
    """Two `ohlora ask` processes sharing a home: the second prompt carries the first one's fact."""
    from ohlora.prompt import MEMORY_HEADER
    from tests.conftest import run_cli

    first = run_cli("ask", "--persona", "ohlora", "--max-tokens", "8", "나 땅콩 알레르기 있어. 그리고 다음 주 금요일에 엄마 생신이야")
    assert first.returncode == 0, first.stderr[-2000:]
    second = run_cli("ask", "--persona", "ohlora", "--max-tokens", "8", "--show-prompt", "견과류 들어간 과자 먹어도 될까?")
    assert second.returncode == 0, second.stderr[-2000:]
    prompt = second.stderr.split("--- prompt ---", 1)[1]
    memory_block = prompt.split(MEMORY_HEADER, 1)[1]
    assert "땅콩 알레르기" in memory_block.split("<end_of_turn>")[0]
