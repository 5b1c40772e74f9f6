"""The `ohlora` command as a user runs it: ask, --json, persona list, and every bad input."""

import json

import pytest

from tests.conftest import run_cli


def test_help_teaches():
    """`ohlora --help` names every command and teaches by example (its speed: bench/cli_help.py)."""
    proc = run_cli("--help")
    assert proc.returncode == 0
    for word in ("ask", "chat", "persona", "examples:", "OHLORA_HOME"):
        assert word in proc.stdout


def test_persona_list():
    proc = run_cli("persona", "list")
    assert proc.returncode == 0
    assert "ohlora" in proc.stdout and "ironman" in proc.stdout and "오로라" in proc.stdout


@pytest.mark.slow
def test_ask_streams_an_answer_from_gemma():
    proc = run_cli("ask", "--persona", "ironman", "--no-memory", "--max-tokens", "16", "안녕?")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip()
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_ask_json_object(smollm2_gguf):
    proc = run_cli("ask", "--json", "--no-memory", "--max-tokens", "8", "--base", str(smollm2_gguf), "Hi!")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert set(data) == {"text", "prompt_tokens", "completion_tokens", "tokens_per_s", "stop_reason"}
    assert data["stop_reason"] in ("end_of_turn", "stop_string", "max_tokens")
    assert 1 <= data["completion_tokens"] <= 8 and data["prompt_tokens"] > 0


def _one_line_error(proc, *fragments):
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    err = proc.stderr.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    assert "Traceback" not in proc.stderr
    for f in fragments:
        assert f in err, err


def test_unknown_persona_lists_known_ones():
    _one_line_error(run_cli("ask", "--persona", "nobody", "hi"), "unknown persona 'nobody'", "ironman", "ohlora")


def test_empty_text():
    _one_line_error(run_cli("ask", "--no-memory", "  \n\t "), "empty message")


def test_missing_model_file(tmp_path):
    _one_line_error(run_cli("ask", "--base", str(tmp_path / "nope.gguf"), "hi"), "not found", "nope.gguf")


def test_corrupt_model_file(tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a model at all")
    _one_line_error(run_cli("ask", "--no-memory", "--base", str(bad), "hi"), "bad.gguf", "not a GGUF")


def test_truncated_model_file(tmp_path, gemma_gguf):
    cut = tmp_path / "cut.gguf"
    with open(gemma_gguf, "rb") as src:
        cut.write_bytes(src.read(2_000_000))
    _one_line_error(run_cli("ask", "--no-memory", "--base", str(cut), "hi"), "cut.gguf")


def test_malformed_persona_file(ohlora_home):
    d = ohlora_home / "data" / "personas" / "broken"
    d.mkdir(parents=True)
    (d / "persona.toml").write_text('id = "broken"\nname = "B"\nlanguage = "ko"\n', encoding="utf-8")
    _one_line_error(run_cli("ask", "--persona", "broken", "hi"), "persona.toml", "missing field 'system_prompt'")


def test_model_without_chat_template(tmp_path):
    """A llama-architecture GGUF with no tokenizer.chat_template is refused before loading."""
    import gguf

    path = tmp_path / "notemplate.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(1)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    _one_line_error(run_cli("ask", "--no-memory", "--base", str(path), "hi"), "no chat template")


@pytest.mark.slow
def test_ask_on_another_base_skips_the_persona_adapter(smollm2_gguf):
    """The shipped ohlora adapter is for Gemma: on SmolLM2 the persona answers without it, and says so."""
    proc = run_cli("ask", "--persona", "ohlora", "--no-memory", "--max-tokens", "8", "--base", str(smollm2_gguf), "Hi!")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip()
    assert "note: ohlora's adapter was trained on another base" in proc.stderr
