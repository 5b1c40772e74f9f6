"""Cards inside PNG files: `tEXt` chunks `chara` (V2) and `ccv3` (V3), base64 of the card JSON.

Reading walks the chunks itself (no image library): length, type, data, CRC, each checked, so
a truncated or doctored file is one clear line, not a crash. Writing keeps the image's own
chunks and replaces the card chunks just before `IEND`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
import zlib

from ohlora.cards.spec import MAX_CARD_BYTES, V2, V3, Card, CardError, loads, to_v2

SIGNATURE = b"\x89PNG\r\n\x1a\n"
CARD_KEYS = ("chara", "ccv3")
MAX_PNG_BYTES = 64 << 20


def chunks(blob: bytes, source: str) -> list[tuple[bytes, bytes]]:
    """[(type, data)] of a PNG; CardError for anything that is not a whole PNG."""
    if not blob.startswith(SIGNATURE):
        raise CardError(f"{source}: not a PNG file (no PNG signature)")
    out: list[tuple[bytes, bytes]] = []
    pos = len(SIGNATURE)
    while pos < len(blob):
        if pos + 8 > len(blob):
            raise CardError(f"{source}: the PNG is truncated (a chunk header is cut off)")
        length, kind = struct.unpack(">I4s", blob[pos:pos + 8])
        end = pos + 8 + length + 4
        if end > len(blob):
            raise CardError(f"{source}: the PNG is truncated (chunk {kind!r} says {length:,} bytes, the file ends first)")
        data = blob[pos + 8:pos + 8 + length]
        crc = struct.unpack(">I", blob[end - 4:end])[0]
        if zlib.crc32(kind + data) & 0xFFFFFFFF != crc:
            raise CardError(f"{source}: the PNG is damaged (bad checksum in chunk {kind.decode('latin-1')!r})")
        out.append((kind, data))
        pos = end
        if kind == b"IEND":
            break
    if not out or out[-1][0] != b"IEND":
        raise CardError(f"{source}: the PNG is truncated (no IEND chunk)")
    return out


def _text(kind: bytes, data: bytes) -> tuple[str, bytes] | None:
    """(keyword, value bytes) of a tEXt chunk or an uncompressed iTXt chunk."""
    if kind == b"tEXt":
        key, sep, value = data.partition(b"\0")
        return (key.decode("latin-1"), value) if sep else None
    if kind == b"iTXt":
        key, sep, rest = data.partition(b"\0")
        if not sep or len(rest) < 2 or rest[0] != 0:  # compressed iTXt: no card writer uses it
            return None
        _lang, _, rest = rest[2:].partition(b"\0")
        _tkey, _, value = rest.partition(b"\0")
        return key.decode("latin-1"), value
    return None


def read_png(blob: bytes, source: str) -> tuple[Card, bytes]:
    """The card in a PNG (`ccv3` preferred over `chara`) and the image without card chunks."""
    if len(blob) > MAX_PNG_BYTES:
        raise CardError(f"{source}: the PNG is {len(blob) >> 20} MiB; the limit is {MAX_PNG_BYTES >> 20} MiB")
    found: dict[str, bytes] = {}
    for kind, data in chunks(blob, source):
        text = _text(kind, data)
        if text and text[0].lower() in CARD_KEYS:
            found[text[0].lower()] = text[1]
    key = "ccv3" if "ccv3" in found else "chara" if "chara" in found else None
    if key is None:
        raise CardError(f"{source}: no character card in this PNG (no 'chara' or 'ccv3' text chunk)")
    payload = found[key]
    if len(payload) > MAX_CARD_BYTES * 4 // 3 + 4:
        raise CardError(f"{source}: the '{key}' chunk is {len(payload) >> 20} MiB; the limit is {MAX_CARD_BYTES >> 20} MiB")
    try:
        raw = base64.b64decode(payload.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise CardError(f"{source}: the '{key}' chunk is not valid base64") from None
    card = loads(raw, f"{source} ('{key}' chunk)")
    if key == "ccv3" and card.spec != V3:
        raise CardError(f"{source}: wrong spec {card.spec!r} in the 'ccv3' chunk: expected '{V3}'")
    card.source = source
    return card, write_png(blob, {}, source)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def write_png(image: bytes, texts: dict[str, str], source: str = "image") -> bytes:
    """The image with its card chunks replaced by `texts` (keyword -> ASCII text)."""
    out = [SIGNATURE]
    for kind, data in chunks(image, source):
        text = _text(kind, data)
        if text and text[0].lower() in CARD_KEYS:
            continue
        if kind == b"IEND":
            for key, value in texts.items():
                out.append(_chunk(b"tEXt", key.encode("latin-1") + b"\0" + value.encode("ascii")))
        out.append(_chunk(kind, data))
    return b"".join(out)


def card_png(card: Card, image: bytes) -> bytes:
    """A card PNG: V3 writes `ccv3` and, for older apps, a V2 `chara`; V2 writes `chara` only."""
    b64 = lambda c: base64.b64encode(c.to_json().encode("utf-8")).decode("ascii")  # noqa: E731
    texts = {"chara": b64(to_v2(card))}
    if card.spec == V3:
        texts["ccv3"] = b64(card)
    elif card.spec != V2:
        raise CardError(f"cannot write spec {card.spec!r} into a PNG")
    return write_png(image, texts)


def avatar(name: str, size: int = 96) -> bytes:
    """A plain square PNG in a colour taken from the name (for personas without a picture)."""
    h = hashlib.sha256(name.encode("utf-8")).digest()
    top = bytes((64 + h[0] % 160, 64 + h[1] % 160, 64 + h[2] % 160))
    bottom = bytes(max(0, c - 48) for c in top)
    rows = b"".join(b"\0" + (top if y < size * 2 // 3 else bottom) * size for y in range(size))
    ihdr = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return SIGNATURE + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(rows, 9)) + _chunk(b"IEND", b"")
