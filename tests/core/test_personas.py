"""Persona validation: each bad field is named with its file."""

import pytest

from ohlora.errors import UserError
from ohlora.personas import list_personas, load_persona, parse_persona

GOOD = '''id = "tester"
name = "Tester"
language = "ko"
system_prompt = "너는 테스터야."
greeting = "안녕"
stop = ["<end_of_turn>"]

[[examples]]
user = "hi"
assistant = "hello"

[generation]
temperature = 0.5
max_tokens = 32
'''


def write(tmp_path, text, folder="tester"):
    d = tmp_path / folder
    d.mkdir(parents=True, exist_ok=True)
    (d / "persona.toml").write_text(text, encoding="utf-8")
    return d / "persona.toml"


def test_shipped_personas_load():
    ids = {p.id for p in list_personas()}
    assert {"ohlora", "ironman"} <= ids
    p = load_persona("ohlora")
    assert p.language == "ko" and p.greeting and p.system_prompt


def test_good_file_parses(tmp_path):
    p = parse_persona(write(tmp_path, GOOD))
    assert p.generation.temperature == 0.5 and p.generation.max_tokens == 32
    assert p.examples[0].assistant == "hello"


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda t: t.replace('name = "Tester"\n', ""), "missing field 'name'"),
        (lambda t: t.replace('greeting = "안녕"', "greeting = 3"), "field 'greeting' must be str"),
        (lambda t: t.replace('language = "ko"', 'language = "fr"'), "field 'language' must be one of"),
        (lambda t: t.replace('id = "tester"', 'id = "Bad Id"'), "field 'id' must be lowercase"),
        (lambda t: t.replace('id = "tester"', 'id = "other"'), "but the folder is named"),
        (lambda t: t.replace('system_prompt = "너는 테스터야."', 'system_prompt = " "'), "'system_prompt' must not be empty"),
        (lambda t: t.replace('stop = ["<end_of_turn>"]', 'stop = [""]'), "field 'stop' must be a list"),
        (lambda t: t.replace("temperature = 0.5", "temperature = 9.0"), "'temperature' must be between"),
        (lambda t: t.replace("temperature = 0.5", 'temperature = "hot"'), "field 'temperature' must be float"),
        (lambda t: t.replace("max_tokens = 32", "max_tokens = 0"), "'max_tokens' must be at least 1"),
        (lambda t: t.replace("max_tokens = 32", "max_tokenz = 3"), "generation: unknown field 'max_tokenz'"),
        (lambda t: t.replace('assistant = "hello"', ""), "examples[0]: missing field 'assistant'"),
        (lambda t: t + "\nfoo = 1\n", "unknown field 'foo'"),
        (lambda t: t.replace('name = "Tester"', "name = "), "invalid TOML"),
    ],
)
def test_bad_field_is_named(tmp_path, change, message):
    path = write(tmp_path, change(GOOD))
    with pytest.raises(UserError) as err:
        parse_persona(path)
    assert str(path) in str(err.value)
    assert message in str(err.value)


def test_unknown_persona_lists_known():
    with pytest.raises(UserError, match=r"unknown persona 'nobody' \(known: .*ironman.*ohlora"):
        load_persona("nobody")


def test_user_persona_overrides_shipped(ohlora_home):
    from ohlora.config import get_paths

    d = get_paths().user_personas_dir
    write(d, GOOD.replace('"tester"', '"ohlora"').replace('name = "Tester"', 'name = "내 오로라"'), "ohlora")
    assert load_persona("ohlora").name == "내 오로라"
