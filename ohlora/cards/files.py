"""`ohlora persona import FILE` and `ohlora persona export ID --format png|json|charx`.

An imported card becomes a user persona folder (`<data>/personas/<id>/`):

    persona.toml      the persona ohlora runs (see ohlora.cards.convert)
    card.json         the card exactly as read (every field, for export)
    avatar.png        the card's picture (PNG cards; a CHARX's main icon)
    card-assets/...   a CHARX's other assets, at their paths, for export
    adapter.gguf      a CHARX's LoRA adapter, only when it fits the persona's base
    adapter.json      what the adapter was trained on: base fingerprint, chat template, report

A CHARX written by ohlora carries the persona's `adapter.gguf` under `assets/ohlora/` with
`adapter.json` (the base fingerprint, the chat template name, the adapter's sha256) and the
training / eval `report.json`. On import the fingerprint is compared with the base the
persona will run on; an adapter for another base is left out, the card kept, and the note
says so (the persona then answers with its prompt alone, never with a mismatched adapter).

A standalone World Info JSON is attached to a persona (`--into ID`) under
`<data>/lorebooks/<id>/`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ohlora.cards import charx as charx_mod
from ohlora.cards import png as png_mod
from ohlora.cards.convert import card_from_persona, persona_fields, persona_toml, slug
from ohlora.cards.lorebook import is_world_info, lore_dir, parse_book
from ohlora.cards.spec import V2, V3, Card, CardError, from_object, loads, parse_json, to_v2, to_v3
from ohlora.errors import UserError

if TYPE_CHECKING:
    from ohlora.models import BaseModel
    from ohlora.personas import Persona

OHLORA_ASSETS = "assets/ohlora/"
ADAPTER_ASSET = OHLORA_ASSETS + "adapter.gguf"
MANIFEST_ASSET = OHLORA_ASSETS + "adapter.json"
REPORT_ASSET = OHLORA_ASSETS + "report.json"
ASSET_TYPE = "x_ohlora"  # the card's asset list names ohlora's files with this type
MAX_JSON_BYTES = 32 << 20


@dataclass
class Imported:
    pid: str
    folder: Path
    name: str
    notes: list[str] = field(default_factory=list)
    adapter: bool = False


# -- reading any card file ------------------------------------------------------------
def read_card_file(path: Path) -> tuple[Card, bytes | None, dict[str, bytes]]:
    """(card, picture PNG or None, CHARX assets) from a PNG, JSON or CHARX file."""
    src = str(path)
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(8)
    except FileNotFoundError:
        raise CardError(f"{src}: file not found") from None
    except OSError as exc:
        raise CardError(f"{src}: cannot read ({exc.strerror})") from None
    if head.startswith(png_mod.SIGNATURE):
        if size > png_mod.MAX_PNG_BYTES:
            raise CardError(f"{src}: the PNG is {size >> 20} MiB; the limit is {png_mod.MAX_PNG_BYTES >> 20} MiB")
        card, image = png_mod.read_png(path.read_bytes(), src)
        return card, image, {}
    if head.startswith(b"PK"):
        if size > charx_mod.MAX_TOTAL_BYTES:
            raise CardError(f"{src}: the CHARX is {size >> 20} MiB; too large")
        card, assets = charx_mod.read_charx(path.read_bytes(), src)
        return card, _icon(card, assets), assets
    if size > MAX_JSON_BYTES:
        raise CardError(f"{src}: the JSON is {size >> 20} MiB; the limit is {MAX_JSON_BYTES >> 20} MiB")
    blob = path.read_bytes()
    try:
        obj = json.loads(blob)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CardError(f"{src}: not a PNG, CHARX or JSON card ({exc})") from None
    if is_world_info(obj):
        raise CardError(f"{src}: this is a lorebook (World Info), not a card: attach it with --into PERSONA")
    return from_object(obj, src), None, {}


def _icon(card: Card, assets: dict[str, bytes]) -> bytes | None:
    for a in card.data.get("assets", []):
        if a.get("type") == "icon" and isinstance(a.get("uri"), str):
            rel = charx_mod.asset_path(a["uri"])
            if rel and assets.get(rel, b"").startswith(png_mod.SIGNATURE):
                return assets[rel]
    return None


# -- import -------------------------------------------------------------------------
def import_file(path: Path, *, pid: str | None = None, replace: bool = False, into: str | None = None,
                base: str | None = None, base_model: "BaseModel | None" = None) -> Imported:
    """Import a card (PNG / JSON / CHARX) as a user persona, or a World Info file into one."""
    path = Path(path).expanduser()
    if into is not None:
        return _import_lorebook(path, into)
    card, image, assets = read_card_file(path)
    from ohlora.config import get_paths
    from ohlora.personas import _ID_RE, _folders, parse_persona

    own = card.extensions.get("ohlora", {})
    own_id = own.get("persona", {}).get("id") if isinstance(own, dict) and isinstance(own.get("persona"), dict) else None
    pid = pid or (own_id if isinstance(own_id, str) and own_id not in _folders() else None) or slug(card.name)
    if not _ID_RE.match(pid):
        raise UserError(f"--id {pid!r}: use lowercase letters, digits, '-' or '_' (up to 40)")
    root = get_paths().user_personas_dir
    target = root / pid
    if (pid in _folders() or target.exists()) and not replace:
        raise UserError(f"persona '{pid}' exists already: pick another id with --id NEW, or --replace it")
    manifest, adapter, report = _ohlora_assets(card, assets)
    card = _without_ohlora_assets(card)
    fields = persona_fields(card, pid, base)
    notes: list[str] = []
    fits = False
    if adapter is not None:
        fits, why = _adapter_fits(manifest, adapter, fields["base"], base_model)
        notes.append(why)
    work = root / f".import-{pid}-{os.getpid()}"  # built here, checked, then moved in place
    tmp = work / pid
    shutil.rmtree(work, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        (tmp / "persona.toml").write_text(persona_toml(fields), encoding="utf-8")
        (tmp / "card.json").write_text(json.dumps(card.raw, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        if image is not None:
            (tmp / "avatar.png").write_bytes(image)
        for name, blob in assets.items():
            if name.startswith(OHLORA_ASSETS):
                continue
            dest = tmp / "card-assets" / charx_mod.safe_name(name, str(path))
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(blob)
        if fits and adapter is not None:
            (tmp / "adapter.gguf").write_bytes(adapter)
            (tmp / "adapter.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
            if report is not None:
                (tmp / "report.json").write_bytes(report)
        persona = parse_persona(tmp / "persona.toml")  # a bad field fails here, before anything is replaced
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    book = card.data.get("character_book")
    if isinstance(book, dict):
        n = len(parse_book(book, str(path)).entries)
        notes.append(f"lorebook: {n} entries (see /lore in the chat)")
    return Imported(pid, target, persona.name, notes, fits)


def _import_lorebook(path: Path, into: str) -> Imported:
    from ohlora.personas import load_persona

    persona = load_persona(into)
    try:
        blob = path.read_bytes()
    except FileNotFoundError:
        raise CardError(f"{path}: file not found") from None
    obj = parse_json(blob, str(path), "lorebook", MAX_JSON_BYTES)
    if isinstance(obj, dict) and isinstance(obj.get("data"), dict) and isinstance(obj["data"].get("character_book"), dict):
        obj = obj["data"]["character_book"]
    book = parse_book(obj, str(path))
    folder = lore_dir(persona.id)
    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / (slug(path.stem) + ".json")
    dest.write_text(json.dumps(obj, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return Imported(persona.id, dest, persona.name, [f"lorebook: {len(book.entries)} entries attached to {persona.id}"])


def _ohlora_assets(card: Card, assets: dict[str, bytes]) -> tuple[dict, bytes | None, bytes | None]:
    if ADAPTER_ASSET not in assets:
        return {}, None, None
    try:
        manifest = json.loads(assets.get(MANIFEST_ASSET, b"{}"))
    except json.JSONDecodeError:
        raise CardError(f"{card.source}: {MANIFEST_ASSET} is not valid JSON") from None
    if not isinstance(manifest, dict):
        raise CardError(f"{card.source}: {MANIFEST_ASSET} must be a JSON object")
    return manifest, assets[ADAPTER_ASSET], assets.get(REPORT_ASSET)


def _without_ohlora_assets(card: Card) -> Card:
    if not any(a.get("type") == ASSET_TYPE for a in card.data.get("assets", [])):
        return card
    out = card.copy()
    out.data["assets"] = [a for a in out.data["assets"] if a.get("type") != ASSET_TYPE]
    return out


def _adapter_fits(manifest: dict, adapter: bytes, base_spec: str,
                  base_model: "BaseModel | None") -> tuple[bool, str]:
    """Does the card's adapter fit the base the persona runs on? (and a note saying so)"""
    from training.fingerprint import base_fingerprint, same_base

    want = manifest.get("adapter_sha256")
    if want and hashlib.sha256(adapter).hexdigest() != want:
        return False, "adapter: left out: adapter.gguf does not match its recorded sha256 (damaged)"
    recorded = manifest.get("base")
    if base_model is None:
        from ohlora.models import resolve_base

        base_model = resolve_base(base_spec)
    info = base_fingerprint(base_model)
    if not isinstance(recorded, dict):
        return False, "adapter: left out: the card does not say which base it was trained on"
    if not same_base(recorded, info):
        return False, (f"adapter: left out: it was trained on {recorded.get('name')} ({recorded.get('arch')}, "
                       f"{recorded.get('sha')}) and does not fit this persona's base {info['name']} "
                       f"({info['arch']}, {info['sha']}); the persona answers with its prompt alone")
    return True, f"adapter: installed (trained on {info['name']}, chat template {manifest.get('chat_template', '?')})"


# -- export -------------------------------------------------------------------------
def stored_card(persona: "Persona") -> Card | None:
    path = persona.folder / "card.json"
    return loads(path.read_bytes(), str(path)) if path.is_file() else None


def export_persona(pid: str, fmt: str, out: Path | None = None, *, spec: str | None = None,
                   with_adapter: bool = True) -> tuple[Path, list[str]]:
    """Write persona `pid` as a card; returns the file and notes."""
    from ohlora.personas import load_persona

    persona = load_persona(pid)
    card = card_from_persona(persona, stored_card(persona))
    if spec in ("v2", V2):
        card = to_v2(card)
    elif spec in ("v3", V3) or fmt == "charx":
        card = to_v3(card)
    if fmt == "charx" and card.spec != V3:
        raise UserError("a CHARX holds a V3 card: drop --spec v2")
    notes: list[str] = []
    out = Path(out).expanduser() if out else Path.cwd() / f"{pid}.{fmt}"
    if out.is_dir():
        out = out / f"{pid}.{fmt}"
    if fmt == "json":
        blob = (json.dumps(card.raw, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
    elif fmt == "png":
        picture = persona.folder / "avatar.png"
        image = picture.read_bytes() if picture.is_file() else png_mod.avatar(persona.name)
        blob = png_mod.card_png(card, image)
    elif fmt == "charx":
        assets = _card_assets(persona)
        if with_adapter and persona.adapter_gguf_path is not None:
            adapter = persona.adapter_gguf_path.read_bytes()
            manifest, report = _manifest(persona, adapter)
            assets[ADAPTER_ASSET] = adapter
            assets[MANIFEST_ASSET] = (json.dumps(manifest, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
            if report is not None:
                assets[REPORT_ASSET] = report
            card = card.copy()
            card.data.setdefault("assets", [])
            card.data["assets"] = [a for a in card.data["assets"] if a.get("type") != ASSET_TYPE] + [
                {"type": ASSET_TYPE, "uri": charx_mod.EMBED + name, "name": Path(name).stem, "ext": name.rsplit(".", 1)[1]}
                for name in (ADAPTER_ASSET, MANIFEST_ASSET, REPORT_ASSET) if name in assets]
            notes.append(f"adapter: {len(adapter) / 2**20:.1f} MiB, trained on {manifest['base'].get('name')}")
        elif with_adapter:
            notes.append("adapter: none (this persona has no adapter.gguf)")
        blob = charx_mod.write_charx(card, assets)
    else:
        raise UserError(f"unknown format {fmt!r}: use png, json or charx")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    try:
        tmp.write_bytes(blob)
        tmp.replace(out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise UserError(f"{out}: cannot write ({exc.strerror})") from None
    return out, notes


def _card_assets(persona: "Persona") -> dict[str, bytes]:
    folder = persona.folder / "card-assets"
    if not folder.is_dir():
        return {}
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _manifest(persona: "Persona", adapter: bytes) -> tuple[dict, bytes | None]:
    """What a CHARX says about its adapter: the base fingerprint, chat template, sha256, report."""
    kept = persona.folder / "adapter.json"
    manifest: dict[str, Any] = json.loads(kept.read_text(encoding="utf-8")) if kept.is_file() else {}
    report_path = next((p for p in (persona.folder / "report.json",
                                    persona.adapter_dir / "report.json" if persona.adapter_dir else None)
                        if p is not None and p.is_file()), None)
    if "base" not in manifest:
        from training.fingerprint import read_fingerprint

        recorded = read_fingerprint(persona.adapter_dir) if persona.adapter_dir is not None else None
        if recorded is None:
            from ohlora.models import resolve_base
            from training.fingerprint import base_fingerprint

            recorded = base_fingerprint(resolve_base(persona.base))
        manifest["base"] = recorded
    if "chat_template" not in manifest:
        manifest["chat_template"] = _template_name(persona, manifest["base"])
    manifest.update(format="ohlora-adapter", version=1, persona=persona.id,
                    adapter_sha256=hashlib.sha256(adapter).hexdigest(),
                    adapter_bytes=len(adapter))
    return manifest, report_path.read_bytes() if report_path else None


def _template_name(persona: "Persona", base: dict) -> str:
    if str(base.get("arch", "")).startswith("gemma"):
        return "gemma"
    from ohlora.models import resolve_base
    from ohlora.prompt import template_for

    t = template_for(resolve_base(persona.base))
    return f"{t.name} (end of turn {t.end_of_turn})"
