"""`ohlora export-chat ID` on a real saved conversation."""

import json

from tests.conftest import run_cli

from ohlora.config import get_paths
from ohlora.store import ChatStore


def _saved() -> int:
    store = ChatStore(get_paths().db_file)
    cid = store.new_conversation("ohlora")
    store.add_message(cid, "user", "비 오는 날 좋아해? ☔", "ohlora")
    store.add_message(cid, "assistant", "응, 빗소리 최고야!", "ohlora", completion_tokens=6, stop_reason="end_of_turn")
    store.close()
    return cid


def test_export_markdown_to_stdout_and_json_to_file(tmp_path):
    cid = _saved()
    proc = run_cli("export-chat", str(cid))
    assert proc.returncode == 0, proc.stderr
    assert "## You" in proc.stdout and "## 오로라" in proc.stdout and "응, 빗소리 최고야!" in proc.stdout
    out = tmp_path / "chat.json"
    proc = run_cli("export-chat", "last", "--format", "json", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(out)
    data = json.loads(out.read_text(encoding="utf-8"))
    assert [m["content"] for m in data["messages"]] == ["비 오는 날 좋아해? ☔", "응, 빗소리 최고야!"]


def test_export_errors_are_one_line():
    proc = run_cli("export-chat", "1")
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and "no saved conversations" in proc.stderr
    _saved()
    for arg, msg in (("42", "no conversation with id 42"), ("abc", "must be a number or 'last'")):
        proc = run_cli("export-chat", arg)
        assert proc.returncode == 2 and msg in proc.stderr and "Traceback" not in proc.stderr
