"""Lorebook files on disk: read the bytes, find the card inside a PNG, parse the JSON, name the format.

Every malformed file raises ``BibleError("<file>: <what is wrong>")``; documents deeper or larger
than a bible entry can hold (``ingest.yamldoc``'s limits) are refused here, before any entry is made.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import sys
import zlib
from pathlib import Path
from typing import Any

from b2p.errors import BibleError
from b2p.userfiles import read_user_file
from ingest.lorebook_formats import CARD, NOVELAI, SILLYTAVERN
from ingest.yamldoc import MAX_DEPTH, shape_problem

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_INPUT_BYTES = 64_000_000
_CARD_CHUNKS = ("ccv3", "chara")  # V3 first: a V3 card also carries a V2 copy under 'chara'


def read_source(path: Path) -> tuple[bytes, bool]:
    """(raw bytes, is_png)."""
    raw = read_user_file(path, "file", "the lorebook file (.json, .png or .lorebook)", max_bytes=MAX_INPUT_BYTES,
                         too_big="file is {mb:.0f} MB; a lorebook this large is not supported")
    return raw, raw.startswith(PNG_SIGNATURE)


def load_json(raw: bytes, shown: str, what: str = "") -> Any:
    """The parsed document, within the limits a bible entry can hold (``shape_problem``)."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BibleError(f"{shown}: {what}not UTF-8 JSON text (is this a lorebook file?)") from None
    if not text.strip():
        raise BibleError(f"{shown}: {what}is empty")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise BibleError(f"{shown}: {what}not valid JSON (line {err.lineno}, column {err.colno}: {err.msg})") from None
    except RecursionError:  # the C parser gives up past the interpreter's recursion limit (~1,000 levels)
        problem: str | None = f"nested more than {MAX_DEPTH} levels deep"
    except ValueError:  # an integer past Python's int-from-text limit
        long = re.search(rf"\d{{{sys.get_int_max_str_digits() + 1},}}", text)
        where = f" (line {text.count(chr(10), 0, long.start()) + 1})" if long else ""
        problem = f"holds a number longer than {sys.get_int_max_str_digits():,} digits{where}"
    else:
        problem = shape_problem(data)
    if problem:
        part = what.removesuffix("is ").rstrip() + ": " if what else ""  # "PNG chunk 'ccv3': …"
        raise BibleError(f"{shown}: {part}{problem}; b2p cannot keep it in a bible entry")
    return data


def _inflate(data: bytes, shown: str, key: str) -> bytes:
    d = zlib.decompressobj()
    try:
        out = d.decompress(data, MAX_INPUT_BYTES)
    except zlib.error:
        raise BibleError(f"{shown}: PNG chunk '{key}' is corrupt (bad compressed data)") from None
    if d.unconsumed_tail:
        raise BibleError(f"{shown}: PNG chunk '{key}' inflates past {MAX_INPUT_BYTES // 1_000_000} MB")
    return out


def _text_chunk(ctype: bytes, data: bytes, shown: str) -> tuple[str, str]:
    """(keyword, text) of a tEXt / zTXt / iTXt chunk."""
    kw_raw, _, rest = data.partition(b"\0")
    kw = kw_raw.decode("latin-1")
    if ctype == b"tEXt":
        return kw, rest.decode("latin-1")
    if ctype == b"zTXt":
        return kw, _inflate(rest[1:], shown, kw).decode("latin-1")
    compressed = rest[:1] == b"\x01"
    _lang, _, rest = rest[2:].partition(b"\0")
    _translated, _, text = rest.partition(b"\0")
    if compressed:
        text = _inflate(text, shown, kw)
    try:
        return kw, text.decode("utf-8")
    except UnicodeDecodeError:
        raise BibleError(f"{shown}: PNG chunk '{kw}' is not UTF-8 text") from None


def png_card(raw: bytes, shown: str) -> Any:
    """The character-card JSON embedded in a PNG."""
    found: dict[str, str] = {}
    pos = len(PNG_SIGNATURE)
    while pos + 8 <= len(raw):
        length = int.from_bytes(raw[pos : pos + 4], "big")
        ctype = raw[pos + 4 : pos + 8]
        data = raw[pos + 8 : pos + 8 + length]
        if len(data) < length:
            raise BibleError(f"{shown}: truncated PNG (chunk {ctype.decode('latin-1')!r} runs past the end of the file)")
        pos += 12 + length
        if ctype in (b"tEXt", b"zTXt", b"iTXt"):
            kw = data.partition(b"\0")[0].decode("latin-1").lower()
            if kw in _CARD_CHUNKS and kw not in found:
                found[kw] = _text_chunk(ctype, data, shown)[1]
        elif ctype == b"IEND":
            break
    keys = [k for k in _CARD_CHUNKS if k in found]
    if not keys:
        raise BibleError(f"{shown}: PNG has no character card in it (no 'chara' or 'ccv3' text chunk)")
    first_error: BibleError | None = None
    for key in keys:
        text = found[key].strip()
        try:
            if text.startswith("{"):  # a few tools store the JSON itself, not base64
                return load_json(text.encode("utf-8"), shown, f"PNG chunk '{key}' is ")
            try:
                decoded = base64.b64decode(text, validate=True)
            except (binascii.Error, ValueError):
                raise BibleError(f"{shown}: PNG chunk '{key}' is not base64-encoded card JSON") from None
            return load_json(decoded, shown, f"PNG chunk '{key}' is ")
        except BibleError as err:
            first_error = first_error or err
    assert first_error is not None
    raise first_error


def detect(data: Any) -> str | None:
    """The format a parsed JSON document is in, or None."""
    if not isinstance(data, dict):
        return None
    inner = data.get("data")
    if "lorebookVersion" in data:
        return NOVELAI
    if data.get("spec") in ("chara_card_v2", "chara_card_v3", "lorebook_v3") or "character_book" in data:
        return CARD
    if isinstance(inner, dict) and ("character_book" in inner or "first_mes" in inner):
        return CARD
    entries = data.get("entries")
    if isinstance(entries, dict):
        return SILLYTAVERN
    if isinstance(entries, list):
        first = next((e for e in entries if isinstance(e, dict)), {})
        if "displayName" in first or ("text" in first and "content" not in first):
            return NOVELAI
        if "keys" in first:
            return CARD  # a bare character_book
        if "key" in first:
            return SILLYTAVERN
    if "first_mes" in data:
        return CARD  # a V1 card: no lorebook, reported as such by the card reader
    return None


def unknown_format(shown: str) -> BibleError:
    return BibleError(
        f"{shown}: not a lorebook b2p can read: expected SillyTavern World Info (an 'entries' object), "
        "a character card (data.character_book) or a NovelAI lorebook (lorebookVersion)"
    )
