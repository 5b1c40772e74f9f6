"""Config: XDG/OHLORA_HOME paths, TOML errors naming file and key, env overrides."""

import pytest

from ohlora.config import get_paths, load_settings
from ohlora.errors import UserError
from tests.conftest import run_cli


def write_config(text: str):
    path = get_paths().config_file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_paths_follow_ohlora_home(ohlora_home):
    paths = get_paths()
    assert paths.db_file == ohlora_home / "data" / "ohlora.db"
    assert paths.config_file == ohlora_home / "config" / "config.toml"


def test_defaults_without_file():
    s = load_settings()
    assert s.persona == "ohlora" and s.backend == "llamacpp"


def test_file_and_env_override(monkeypatch):
    write_config('persona = "ironman"\nn_ctx = 2048\n')
    assert load_settings().persona == "ironman"
    monkeypatch.setenv("OHLORA_N_CTX", "1024")
    monkeypatch.setenv("OHLORA_MEMORY", "off")
    s = load_settings()
    assert s.n_ctx == 1024 and s.memory is False


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("persona = \n", "invalid TOML"),
        ("colour = 'red'\n", "unknown key 'colour'"),
        ("n_ctx = 'big'\n", "key 'n_ctx' must be an integer"),
        ("backend = 'vllm'\n", "key 'backend' must be one of"),
    ],
)
def test_bad_config_names_file_and_key(text, fragment):
    path = write_config(text)
    with pytest.raises(UserError) as err:
        load_settings()
    assert str(path) in str(err.value) and fragment in str(err.value)


def test_bad_config_through_cli_is_one_line_exit_2():
    path = write_config("colour = 'red'\n")
    proc = run_cli("ask", "안녕")
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert str(path) in proc.stderr and "colour" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_env_value():
    import os

    os.environ["OHLORA_BACKEND"] = "nope"
    try:
        with pytest.raises(UserError, match="OHLORA_BACKEND"):
            load_settings()
    finally:
        del os.environ["OHLORA_BACKEND"]
