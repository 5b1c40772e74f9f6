"""Importers: the chat JSONL format, CSV, Alpaca, LLaMA-Factory; good rows, bad rows with file:line, --strict."""

from __future__ import annotations

import json

import pytest

from ohlora.errors import UserError
from training.data import load_data, validate_messages, RowError



def write_jsonl(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in rows),
                    encoding="utf-8")
    return path


GOOD = {"messages": [{"role": "user", "content": "안녕"}, {"role": "assistant", "content": "안녕!"}]}


def test_chat_jsonl_good_and_bad_rows(tmp_path):
    f = write_jsonl(tmp_path / "d.jsonl", [
        GOOD,
        {"messages": [{"role": "system", "content": "짧게."}, *GOOD["messages"]], "memory": ["부산 여행"]},
        "{not json",
        {"messages": [{"role": "user", "content": "질문만"}]},
        {"messages": [{"role": "user", "content": "  "}, {"role": "assistant", "content": "x"}]},
        {"messages": [{"role": "assistant", "content": "먼저"}, {"role": "user", "content": "x"}]},
        {"messages": [{"role": "bot", "content": "x"}]},
        {"text": "no messages"},
        {"messages": GOOD["messages"], "memory": "not a list"},
        "",
        [1, 2],
    ])
    ds = load_data(f)
    assert ds.fmt == "chat" and len(ds.rows) == 2
    assert ds.rows[1].system == "짧게." and ds.rows[1].memory == ["부산 여행"]
    assert ds.rows[0].source == f"{f}:1"
    where = {p.source.rsplit(":", 1)[1]: p.reason for p in ds.problems}
    assert set(where) == {"3", "4", "5", "6", "7", "8", "9", "11"}  # line 10 is blank: ignored
    assert "invalid JSON" in where["3"]
    assert "last turn must be an assistant" in where["4"]
    assert "content is empty" in where["5"]
    assert "should be a user turn" in where["6"]
    assert "role must be one of" in where["7"]
    assert "missing field 'messages'" in where["8"]
    assert "'memory'" in where["9"]


def test_strict_fails_on_first_bad_row(tmp_path):
    f = write_jsonl(tmp_path / "d.jsonl", [GOOD, {"messages": []}])
    with pytest.raises(UserError, match=r"d\.jsonl:2: .*--strict"):
        load_data(f, strict=True)


def test_all_rows_bad_is_an_error(tmp_path):
    f = write_jsonl(tmp_path / "d.jsonl", ["{", "[]"])
    with pytest.raises(UserError, match="no usable conversations; first problem: .*:1: invalid JSON"):
        load_data(f)


def test_csv_with_column_flags(tmp_path):
    f = tmp_path / "qa.csv"
    f.write_text('q,a,sys\n안녕,"반가워, 친구",\n"여러 줄\n질문",답,짧게\n,빈 질문,\n질문,,\n이상한,행,x,y\n', encoding="utf-8")
    ds = load_data(f, question_col="q", answer_col="a", system_col="sys")
    assert ds.fmt == "csv"
    assert [r.messages for r in ds.rows] == [
        [{"role": "user", "content": "안녕"}, {"role": "assistant", "content": "반가워, 친구"}],
        [{"role": "system", "content": "짧게"}, {"role": "user", "content": "여러 줄\n질문"},
         {"role": "assistant", "content": "답"}],
    ]
    reasons = {p.source.rsplit(":", 1)[1]: p.reason for p in ds.problems}
    assert reasons == {
        "5": "messages[0].content is empty", "6": "messages[1].content is empty",
        "7": "more fields than the header has (3)",
    }


def test_csv_missing_column_names_the_flag(tmp_path):
    f = tmp_path / "qa.csv"
    f.write_text("question,reply\nhi,hello\n", encoding="utf-8")
    with pytest.raises(UserError, match="no column 'answer' .*--answer-col"):
        load_data(f)


def test_alpaca_json_and_jsonl(tmp_path):
    rows = [
        {"instruction": "번역해", "input": "hello", "output": "안녕", "system": "번역가"},
        {"instruction": "계속", "output": "응", "history": [["처음", "그래"]]},
        {"instruction": "출력 없음"},
        {"instruction": "", "output": "x"},
        {"instruction": "x", "output": "y", "history": [["only one"]]},
        "text",
    ]
    f = tmp_path / "alpaca.json"
    f.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    ds = load_data(f)
    assert ds.fmt == "alpaca" and len(ds.rows) == 2
    assert ds.rows[0].messages == [
        {"role": "system", "content": "번역가"},
        {"role": "user", "content": "번역해\n\nhello"},
        {"role": "assistant", "content": "안녕"},
    ]
    assert [m["role"] for m in ds.rows[1].messages] == ["user", "assistant", "user", "assistant"]
    assert [p.source.rsplit(":", 1)[1] for p in ds.problems] == ["item 2", "item 3", "item 4", "item 5"]
    # the same rows as JSONL are detected as Alpaca and report lines
    g = write_jsonl(tmp_path / "alpaca.jsonl", rows[:3])
    ds2 = load_data(g)
    assert ds2.fmt == "alpaca" and len(ds2.rows) == 2 and ds2.problems[0].source.endswith(":3")


def test_llamafactory_alpaca_and_sharegpt(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps([{"q": "질문", "r": "답"}, {"q": "x"}]), encoding="utf-8")
    (tmp_path / "s.json").write_text(json.dumps([
        {"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}], "system": "be nice"},
        {"conversations": [{"from": "human", "value": "hi"}, {"from": "function_call", "value": "{}"}]},
        {"conversations": [{"from": "gpt", "value": "first"}, {"from": "human", "value": "x"}]},
    ]), encoding="utf-8")
    (tmp_path / "m.json").write_text(json.dumps([
        {"messages": [{"role": "user", "content": "u"}, {"role": "assistant", "content": "a"}]},
    ]), encoding="utf-8")
    info = tmp_path / "dataset_info.json"
    info.write_text(json.dumps({
        "alp": {"file_name": "a.json", "columns": {"prompt": "q", "response": "r"}},
        "sgpt": {"file_name": "s.json", "formatting": "sharegpt"},
        "oai": {"file_name": "m.json", "formatting": "sharegpt", "columns": {"messages": "messages"},
                "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"}},
        "hub": {"hf_hub_url": "someone/data"},
    }), encoding="utf-8")
    alp = load_data(f"{info}#alp")
    assert alp.rows[0].messages[-1] == {"role": "assistant", "content": "답"} and len(alp.problems) == 1
    sg = load_data(f"{info}#sgpt")
    assert sg.fmt == "sharegpt" and len(sg.rows) == 1
    assert sg.rows[0].messages[0] == {"role": "system", "content": "be nice"}
    assert "function_call" in sg.problems[0].reason and sg.problems[0].source.endswith("s.json:item 1")
    assert "should be a user turn" in sg.problems[1].reason
    assert load_data(f"{info}#oai").rows[0].messages[1]["content"] == "a"
    with pytest.raises(UserError, match="no dataset 'nope'"):
        load_data(f"{info}#nope")
    with pytest.raises(UserError, match="name the dataset"):
        load_data(info)
    with pytest.raises(UserError, match="'hub' has no 'file_name'"):
        load_data(f"{info}#hub")


@pytest.mark.parametrize("name,content,match", [
    ("notes.txt", "hello", "unknown data format '.txt'"),
    ("missing.jsonl", None, "data file not found"),
    ("bad.json", "[{", "bad.json:1: invalid JSON"),
    ("latin.jsonl", b"\xff\xfe\x00", "not UTF-8"),
])
def test_bad_files(tmp_path, name, content, match):
    f = tmp_path / name
    if isinstance(content, bytes):
        f.write_bytes(content)
    elif content is not None:
        f.write_text(content, encoding="utf-8")
    with pytest.raises(UserError, match=match):
        load_data(f)


def test_unknown_format_flag(tmp_path):
    with pytest.raises(UserError, match="unknown --format 'xml'"):
        load_data(tmp_path / "x.jsonl", fmt="xml")


def test_validate_messages_system_only_first():
    with pytest.raises(RowError, match="system turn may only come first"):
        validate_messages([{"role": "user", "content": "a"}, {"role": "system", "content": "b"}])
