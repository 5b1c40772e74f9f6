"""CHARX: a zip holding `card.json` (V3) and the card's assets under `assets/`.

Reading is defensive: entry names must stay inside the archive's folder (no absolute paths,
no `..`, no drive letters or backslashes, no links); the number of entries, each entry's
size, the total and the compression ratio are bounded before anything is decompressed,
and the bytes read are counted again while reading (a header can lie).
"""

from __future__ import annotations

import io
import stat
import zipfile
import zlib
from pathlib import PurePosixPath

from ohlora.cards.spec import MAX_CARD_BYTES, V3, Card, CardError, loads

MAX_ENTRIES = 2_000
MAX_ENTRY_BYTES = 4 << 30  # one asset (an adapter for a large base can be GBs)
MAX_TOTAL_BYTES = 8 << 30
MAX_RATIO = 200  # uncompressed / compressed, for entries over 1 MiB (zip bombs reach 1000+)
EMBED = "embeded://"  # sic: the V3 spec's spelling


def safe_name(name: str, source: str) -> str:
    """An archive entry name that stays inside the folder it is extracted to."""
    bad = (not name or name.startswith(("/", "\\")) or "\\" in name or "\0" in name
           or (len(name) > 1 and name[1] == ":"))
    parts = PurePosixPath(name).parts
    if bad or any(p in ("..", "") for p in parts):
        raise CardError(f"{source}: refusing entry {name!r}: its path leaves the card's folder")
    return name


def read_charx(blob: bytes, source: str, *, max_entry: int = MAX_ENTRY_BYTES,
               max_total: int = MAX_TOTAL_BYTES) -> tuple[Card, dict[str, bytes]]:
    """The card and its assets ({"assets/...": bytes}); CardError for an unsafe or bad archive."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(blob))
    except (zipfile.BadZipFile, ValueError) as exc:
        raise CardError(f"{source}: not a CHARX (zip) file ({exc})") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_ENTRIES:
            raise CardError(f"{source}: the archive has {len(infos)} entries; the limit is {MAX_ENTRIES}")
        total = 0
        for info in infos:
            safe_name(info.filename, source)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise CardError(f"{source}: refusing entry {info.filename!r}: it is a link")
            if info.flag_bits & 0x1:
                raise CardError(f"{source}: entry {info.filename!r} is encrypted")
            if info.file_size > max_entry:
                raise CardError(f"{source}: entry {info.filename!r} unpacks to {info.file_size:,} bytes; "
                                f"the limit is {max_entry:,} (a zip bomb?)")
            if info.file_size > (1 << 20) and info.file_size > MAX_RATIO * max(info.compress_size, 1):
                raise CardError(f"{source}: entry {info.filename!r} is compressed {info.file_size // max(info.compress_size, 1):,}"
                                f" to 1; refusing it as a zip bomb")
            total += info.file_size
        if total > max_total:
            raise CardError(f"{source}: the archive unpacks to {total:,} bytes; the limit is {max_total:,} (a zip bomb?)")
        names = {i.filename for i in infos}
        if "card.json" not in names:
            raise CardError(f"{source}: no card.json at the top of the CHARX")
        files: dict[str, bytes] = {}
        for info in infos:
            if info.is_dir():
                continue
            limit = MAX_CARD_BYTES if info.filename == "card.json" else max_entry
            files[info.filename] = _read(zf, info, limit, source)
    card = loads(files.pop("card.json"), f"{source} (card.json)")
    if card.spec != V3:
        raise CardError(f"{source}: wrong spec {card.spec!r} in card.json: a CHARX holds a '{V3}' card")
    card.source = source
    return card, {k: v for k, v in files.items() if k.startswith("assets/") or k.startswith("module")}


def _read(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int, source: str) -> bytes:
    out = bytearray()
    try:
        with zf.open(info) as fh:
            while chunk := fh.read(1 << 20):
                out += chunk
                if len(out) > limit or len(out) > info.file_size:
                    raise CardError(f"{source}: entry {info.filename!r} unpacks past its stated size; refusing it")
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        raise CardError(f"{source}: entry {info.filename!r} is damaged ({exc})") from None
    return bytes(out)


def write_charx(card: Card, assets: dict[str, bytes]) -> bytes:
    """A CHARX: card.json first, then each asset (already-compressed ones stored as they are)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("card.json", card.to_json().encode("utf-8"))
        for name, data in sorted(assets.items()):
            safe_name(name, "asset")
            packed = name.rsplit(".", 1)[-1].lower() in ("png", "jpg", "jpeg", "webp", "zip", "mp3", "ogg")
            zf.writestr(name, data, compress_type=zipfile.ZIP_STORED if packed else zipfile.ZIP_DEFLATED)
    return buf.getvalue()


def asset_path(uri: str) -> str | None:
    """'embeded://assets/icon/main.png' -> 'assets/icon/main.png' (None for other URIs)."""
    return uri[len(EMBED):] if uri.startswith(EMBED) else None
