"""Character cards in and out (fast tier): V2 PNG, V3 PNG, JSON and CHARX round trips with every
field compared as JSON, the persona they become, macros, and bad cards refused in one line."""

from __future__ import annotations

import base64
import io
import json
import zipfile
from pathlib import Path

import pytest

from ohlora.cards import charx, png
from ohlora.cards.convert import parse_examples
from ohlora.cards.files import export_persona, import_file
from ohlora.cards.macros import expand
from ohlora.cards.spec import MAX_FIELD_CHARS, CardError
from ohlora.cli import main
from ohlora.personas import load_persona


def b64(obj) -> str:
    return base64.b64encode(json.dumps(obj, ensure_ascii=False).encode("utf-8")).decode("ascii")


def png_card(path: Path, **chunks) -> Path:
    """A PNG with these tEXt chunks (values: card objects or raw strings)."""
    texts = {k: v if isinstance(v, str) else b64(v) for k, v in chunks.items()}
    path.write_bytes(png.write_png(png.avatar("test"), texts))
    return path


def charx_file(path: Path, card, assets: dict[str, bytes] | None = None) -> Path:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("card.json", json.dumps(card, ensure_ascii=False))
        for name, data in (assets or {}).items():
            zf.writestr(name, data)
    path.write_bytes(buf.getvalue())
    return path


def card_chunks(blob: bytes) -> dict[str, dict]:
    out = {}
    for kind, data in png.chunks(blob, "test"):
        if kind == b"tEXt":
            key, _, value = data.partition(b"\0")
            out[key.decode()] = json.loads(base64.b64decode(value))
    return out


# -- round trips ------------------------------------------------------------------
def test_v2_png_round_trip_keeps_every_field(tmp_path, v2_card):
    done = import_file(png_card(tmp_path / "sera.png", chara=v2_card))
    assert done.pid == "seraphina" and done.name == "Seraphina"
    assert any("lorebook: 2 entries" in n for n in done.notes)
    out, _ = export_persona("seraphina", "png", tmp_path / "out.png")
    assert card_chunks(out.read_bytes()) == {"chara": v2_card}  # V2 stays V2, nothing lost or added
    js, _ = export_persona("seraphina", "json", tmp_path / "out.json")
    assert json.loads(js.read_text(encoding="utf-8")) == v2_card
    again = png.read_png(out.read_bytes(), "out")[0]
    assert again.raw == v2_card


def test_v3_png_round_trip_writes_ccv3_and_a_v2_chara_for_older_apps(tmp_path, v3_card):
    from ohlora.cards.spec import to_v2, Card

    src = png_card(tmp_path / "mina.png", chara=to_v2(Card(v3_card)).raw, ccv3=v3_card)
    done = import_file(src, pid="mina")
    out, _ = export_persona("mina", "png", tmp_path / "mina-out.png")
    got = card_chunks(out.read_bytes())
    assert got["ccv3"] == v3_card
    assert got["chara"]["spec"] == "chara_card_v2" and got["chara"]["data"]["name"] == "미나"
    assert "nickname" not in got["chara"]["data"]
    image = [c for c in png.chunks(src.read_bytes(), "s") if c[0] == b"IDAT"]
    assert [c for c in png.chunks(out.read_bytes(), "o") if c[0] == b"IDAT"] == image  # the picture is kept
    assert (done.folder / "avatar.png").is_file()


def test_json_card_round_trip(tmp_path, v3_card):
    src = tmp_path / "mina.json"
    src.write_text(json.dumps(v3_card, ensure_ascii=False), encoding="utf-8")
    import_file(src, pid="mina")
    out, _ = export_persona("mina", "json", tmp_path / "again.json")
    assert json.loads(out.read_text(encoding="utf-8")) == v3_card


def test_charx_round_trip_keeps_card_and_assets(tmp_path, v3_card):
    icon = png.avatar("mina", 32)
    v3_card["data"]["assets"] = [
        {"type": "icon", "uri": "embeded://assets/icon/images/main.png", "name": "main", "ext": "png"},
        {"type": "emotion", "uri": "embeded://assets/emotion/images/happy.png", "name": "happy", "ext": "png"}]
    assets = {"assets/icon/images/main.png": icon, "assets/emotion/images/happy.png": png.avatar("happy", 16)}
    import_file(charx_file(tmp_path / "mina.charx", v3_card, assets), pid="mina")
    out, notes = export_persona("mina", "charx", tmp_path / "again.charx")
    card, got = charx.read_charx(out.read_bytes(), "again")
    assert card.raw == v3_card and got == assets
    assert notes == ["adapter: none (this persona has no adapter.gguf)"]
    assert load_persona("mina").folder.joinpath("avatar.png").read_bytes() == icon


def test_a_persona_that_was_never_a_card_comes_back_the_same(tmp_path):
    out, _ = export_persona("ironman", "json", tmp_path / "ironman.json")
    card = json.loads(out.read_text(encoding="utf-8"))
    assert card["spec"] == "chara_card_v3" and card["data"]["name"] == "아이언맨"
    import_file(out, pid="ironman2")
    a, b = load_persona("ironman"), load_persona("ironman2")
    for field in ("name", "language", "system_prompt", "greeting", "examples", "stop", "generation", "description"):
        assert getattr(a, field) == getattr(b, field), field
    js, _ = export_persona("ironman2", "json", tmp_path / "again.json")
    assert json.loads(js.read_text(encoding="utf-8")) == card


def test_card_fields_become_the_persona(tmp_path, v2_card):
    import_file(png_card(tmp_path / "sera.png", chara=v2_card))
    p = load_persona("seraphina")
    assert p.language == "en" and p.greeting == v2_card["data"]["first_mes"]
    assert p.system_prompt.startswith("You are {{char}}.") and "Write one short paragraph." in p.system_prompt
    for part in ("A forest guardian", "{{char}}'s personality: kind, protective", "Scenario: {{user}} wakes up",
                 "Stay gentle."):
        assert part in p.system_prompt
    assert [(e.user, e.assistant) for e in p.examples] == [
        ("Who are you?", "I am {{char}}, keeper of this forest."), ("Is it safe?", "Here, yes.\nStay close to me.")]
    assert p.description == "A test card with every field."
    with pytest.raises(Exception, match="exists already"):
        import_file(tmp_path / "sera.png")
    assert import_file(tmp_path / "sera.png", replace=True).pid == "seraphina"


def test_macros_expand_when_the_persona_is_used(tmp_path, v2_card, monkeypatch):
    from ohlora.backends import EnginePool
    from ohlora.backends.fake import FakeBackend
    from ohlora.chat import ChatSession
    from ohlora.config import Settings

    import_file(png_card(tmp_path / "sera.png", chara=v2_card))
    s = Settings(backend="fake", memory=False, user_name="민준", guard=False, lines=False)
    pool = EnginePool(s, "fake")
    engine = FakeBackend(script=["hi"])
    pool.engines[("fake", str(engine.base.path))] = engine
    session = ChatSession(s, "seraphina", pool=pool)
    assert session.greeting.startswith("*Seraphina smiles* You're awake, 민준. ")
    assert session.greeting.endswith(("Welcome!", "Hello!"))
    assert session.greeting == session.greeting  # drawn once per session
    list(session.send("안녕"))
    prompt = engine.prompts[-1]
    assert "You are Seraphina." in prompt and "speaks softly to 민준" in prompt and "{{" not in prompt


def test_macro_forms():
    import random

    assert expand("{{char}} & {{User}} <USER> <BOT>", "A", "B") == "A & B B A"
    assert expand("{{random:x,y}}", "A", "B", random.Random(1)) in ("x", "y")
    assert expand("{{random::a, b::c}}", "A", "B", random.Random(2)) in ("a, b", "c")
    assert expand("{{// note}}x{{noop}}{{newline}}{{unknown}}", "A", "B") == "x\n{{unknown}}"
    assert parse_examples("<START>\nUser: hi\nMina: yo\n", "Mina", ("User",)) == [{"user": "hi", "assistant": "yo"}]


def test_v1_card_reads_as_v2(tmp_path):
    src = tmp_path / "old.json"
    src.write_text(json.dumps({"name": "Old", "description": "d", "personality": "p", "scenario": "s",
                               "first_mes": "hi", "mes_example": ""}), encoding="utf-8")
    done = import_file(src)
    card = json.loads((done.folder / "card.json").read_text(encoding="utf-8"))
    assert card["spec"] == "chara_card_v2" and card["data"]["first_mes"] == "hi"


# -- bad cards: one line each -------------------------------------------------------
def bad(tmp_path: Path, name: str, blob: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(blob)
    return p


def refused(path: Path, match: str) -> str:
    with pytest.raises(CardError, match=match) as info:
        import_file(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    return message


def test_bad_pngs(tmp_path, v2_card):
    refused(bad(tmp_path, "plain.png", png.avatar("x")), "no character card in this PNG")
    refused(png_card(tmp_path / "b64.png", chara="!!!not base64!!!"), "'chara' chunk is not valid base64")
    refused(png_card(tmp_path / "spec.png", chara={"spec": "chara_card_v9", "data": {"name": "x"}}), "wrong spec")
    refused(png_card(tmp_path / "v2in3.png", ccv3=v2_card), "wrong spec 'chara_card_v2' in the 'ccv3' chunk")
    good = png_card(tmp_path / "good.png", chara=v2_card).read_bytes()
    refused(bad(tmp_path, "cut.png", good[:-30]), "truncated")
    broken = bytearray(good)
    broken[40] ^= 0xFF
    refused(bad(tmp_path, "crc.png", bytes(broken)), "damaged|truncated")
    refused(bad(tmp_path, "text.json", b"hello"), "not a PNG, CHARX or JSON card")
    refused(bad(tmp_path, "list.json", b"[1, 2]"), "a card is a JSON object")
    refused(bad(tmp_path, "noname.json", json.dumps({"spec": "chara_card_v2", "data": {}}).encode()),
            "'data.name' is missing")


def test_huge_fields_and_nesting(tmp_path, v2_card):
    v2_card["data"]["description"] = "가" * (MAX_FIELD_CHARS + 1)
    msg = refused(png_card(tmp_path / "huge.png", chara=v2_card), "field 'data.description' is 200,001 characters")
    assert "limit is 200,000" in msg
    deep: dict = {}
    cur = deep
    for _ in range(40):
        cur["x"] = {}
        cur = cur["x"]
    card = {"spec": "chara_card_v2", "data": {"name": "d", "extensions": deep}}
    refused(bad(tmp_path, "deep.json", json.dumps(card).encode()), "nested deeper")


def test_zip_bombs_and_paths_leaving_the_folder(tmp_path, v3_card):
    refused(charx_file(tmp_path / "bomb.charx", v3_card, {"assets/other/zeros.bin": b"\0" * (60 << 20)}),
            "compressed .* to 1; refusing it as a zip bomb")
    for name in ("../evil.txt", "/etc/evil", "assets/../../evil", "assets\\..\\evil", "C:/evil"):
        refused(charx_file(tmp_path / "escape.charx", v3_card, {name: b"x"}), "its path leaves the card's folder")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("readme.txt", "no card here")
    refused(bad(tmp_path, "nocard.charx", buf.getvalue()), "no card.json")
    link = zipfile.ZipInfo("assets/link")
    link.external_attr = (0o120777 << 16)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("card.json", json.dumps(v3_card))
        zf.writestr(link, "/etc/passwd")
    refused(bad(tmp_path, "link.charx", buf.getvalue()), "it is a link")
    with pytest.raises(CardError, match="unpacks to"):
        charx.read_charx(charx_file(tmp_path / "big.charx", v3_card, {"assets/a.bin": b"x" * 4096}).read_bytes(),
                         "big", max_entry=1024)


def test_cli_import_export_and_a_bad_card_is_one_line(tmp_path, v2_card, capsys):
    src = png_card(tmp_path / "sera.png", chara=v2_card)
    assert main(["persona", "import", str(src), "--id", "sera"]) == 0
    out = capsys.readouterr().out
    assert "imported Seraphina as persona 'sera'" in out and "ohlora chat --persona sera" in out
    assert main(["persona", "export", "sera", "-f", "json", "-o", str(tmp_path)]) == 0
    assert json.loads((tmp_path / "sera.json").read_text(encoding="utf-8")) == v2_card
    assert main(["persona", "import", str(bad(tmp_path, "plain.png", png.avatar("x")))]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "no character card" in err
