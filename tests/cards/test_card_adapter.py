"""A CHARX that carries the persona's adapter: written with the base fingerprint, chat template and
report; imported where the base matches (adapter installed) or not (card kept, adapter left out,
said in a note). Fast tier: stand-in base files; the real Gemma run is in test_card_adapter_gemma.py."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from ohlora.cards import charx
from ohlora.cards.files import ADAPTER_ASSET, MANIFEST_ASSET, REPORT_ASSET, export_persona, import_file
from ohlora.config import get_paths
from ohlora.models import BaseModel
from ohlora.personas import load_persona
from training.fingerprint import base_fingerprint


def fake_base(tmp_path: Path, name: str, seed: bytes) -> BaseModel:
    path = tmp_path / f"{name}.gguf"
    path.write_bytes(hashlib.sha256(seed).digest() * 4096)
    return BaseModel(name=name, kind="gguf", path=path, arch="gemma3")


def make_persona(base: BaseModel) -> Path:
    folder = get_paths().user_personas_dir / "tester"
    (folder / "adapter").mkdir(parents=True)
    (folder / "persona.toml").write_text(
        'id = "tester"\nname = "테스터"\nlanguage = "ko"\ngreeting = "안녕!"\nsystem_prompt = "너는 테스터야."\n',
        encoding="utf-8")
    (folder / "adapter.gguf").write_bytes(os.urandom(50_000))
    (folder / "adapter" / "adapter_config.json").write_text("{}", encoding="utf-8")
    (folder / "adapter" / "ohlora_base.json").write_text(json.dumps(base_fingerprint(base)), encoding="utf-8")
    (folder / "adapter" / "report.json").write_text(json.dumps({"eval": {"loss": 1.23}}), encoding="utf-8")
    return folder


def test_charx_carries_adapter_fingerprint_template_and_report(tmp_path):
    base = fake_base(tmp_path, "gemma-3-270m", b"a")
    folder = make_persona(base)
    out, notes = export_persona("tester", "charx", tmp_path / "tester.charx")
    card, assets = charx.read_charx(out.read_bytes(), "tester")
    assert assets[ADAPTER_ASSET] == (folder / "adapter.gguf").read_bytes()
    manifest = json.loads(assets[MANIFEST_ASSET])
    assert manifest["base"] == base_fingerprint(base) and manifest["chat_template"] == "gemma"
    assert manifest["adapter_sha256"] == hashlib.sha256(assets[ADAPTER_ASSET]).hexdigest()
    assert json.loads(assets[REPORT_ASSET]) == {"eval": {"loss": 1.23}}
    listed = {a["uri"] for a in card.data["assets"] if a["type"] == "x_ohlora"}
    assert listed == {f"embeded://{n}" for n in (ADAPTER_ASSET, MANIFEST_ASSET, REPORT_ASSET)}
    assert any("adapter: 0.0 MiB, trained on gemma-3-270m" in n for n in notes)

    # the same base elsewhere: installed; export again gives the same card and adapter
    done = import_file(out, pid="tester2", base_model=base)
    assert done.adapter and "adapter: installed" in done.notes[0]
    p = load_persona("tester2")
    assert p.adapter_gguf_path.read_bytes() == assets[ADAPTER_ASSET]
    assert p.system_prompt == "너는 테스터야." and p.greeting == "안녕!"
    again, _ = export_persona("tester2", "charx", tmp_path / "again.charx")
    card2, assets2 = charx.read_charx(again.read_bytes(), "again")
    assert card2.raw == card.raw and assets2[ADAPTER_ASSET] == assets[ADAPTER_ASSET]
    assert json.loads(assets2[MANIFEST_ASSET])["base"] == manifest["base"]


def test_another_base_keeps_the_card_and_says_the_adapter_does_not_fit(tmp_path):
    make_persona(fake_base(tmp_path, "gemma-3-270m", b"a"))
    out, _ = export_persona("tester", "charx", tmp_path / "tester.charx")
    other = fake_base(tmp_path, "smollm2-135m", b"b")
    done = import_file(out, pid="elsewhere", base_model=other)
    assert not done.adapter
    (note,) = [n for n in done.notes if n.startswith("adapter")]
    assert "does not fit this persona's base smollm2-135m" in note and "prompt alone" in note
    p = load_persona("elsewhere")
    assert p.adapter_gguf_path is None and p.name == "테스터"  # the card is kept, without the adapter
    assert not (p.folder / "adapter.json").exists()


def test_a_damaged_adapter_is_left_out(tmp_path):
    import io
    import zipfile

    base = fake_base(tmp_path, "gemma-3-270m", b"a")
    make_persona(base)
    out, _ = export_persona("tester", "charx", tmp_path / "tester.charx")
    src = zipfile.ZipFile(out)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for info in src.infolist():
            data = src.read(info)
            zf.writestr(info.filename, data[:-1] + b"X" if info.filename == ADAPTER_ASSET else data)
    (tmp_path / "bad.charx").write_bytes(buf.getvalue())
    done = import_file(tmp_path / "bad.charx", pid="damaged", base_model=base)
    assert not done.adapter and "does not match its recorded sha256" in done.notes[0]
