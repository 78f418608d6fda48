"""Read other tools' lorebooks into format-neutral ``Draft`` entries (nothing is written here).

- SillyTavern World Info JSON: ``{"entries": {"<uid>": {key, keysecondary, comment, content, ...}}}``
- Character cards V2/V3 (``chara_card_v2`` / ``chara_card_v3``, JSON or PNG with the card as base64
  JSON in a ``chara`` / ``ccv3`` tEXt, zTXt or iTXt chunk) and standalone ``lorebook_v3`` files:
  ``data.character_book.entries[]`` with ``keys``, ``secondary_keys``, ``content``, ``enabled``, ...
- NovelAI ``.lorebook``: ``{"lorebookVersion", "entries": [{displayName, text, keys, ...}], "categories": [...]}``

Every malformed input raises ``BibleError("<file>: <what is wrong>")``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from b2p.errors import BibleError
from b2p.userfiles import read_user_file

SILLYTAVERN, CARD, NOVELAI = "sillytavern", "character-card", "novelai"
FORMATS = (SILLYTAVERN, CARD, NOVELAI)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_INPUT_BYTES = 64_000_000
_CARD_CHUNKS = ("ccv3", "chara")  # V3 first: a V3 card also carries a V2 copy under 'chara'
_REGEX_KEY = re.compile(r"^/(.+)/([a-z]*)$", re.S)
# SillyTavern's world_info_logic: how secondary keys combine with the primary ones.
_ST_LOGIC = {0: "AND ANY", 1: "NOT ALL", 2: "NOT ANY", 3: "AND ALL"}


@dataclass
class Draft:
    """One source entry, mapped to b2p's fields but not yet named, placed or written."""

    name: str
    keys: list[str]  # primary activation keys, verbatim (regex keys included)
    regex_keys: list[str]
    always: bool
    case_sensitive: bool
    enabled: bool
    body: str
    imported: dict[str, Any]
    uid: str
    folder: str = "lore"
    tags: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def aliases(self, final_name: str) -> list[str]:
        """Plain keys minus the name itself, first spelling of each kept."""
        seen = {final_name.casefold()}
        out: list[str] = []
        for k in self.keys:
            if k not in self.regex_keys and k.casefold() not in seen:
                seen.add(k.casefold())
                out.append(k)
        return out


def is_regex_key(key: str) -> bool:
    """SillyTavern and NovelAI both write regex keys as ``/pattern/flags``."""
    return bool(_REGEX_KEY.match(key))


# ---------------------------------------------------------------- reading and detection


def read_source(path: Path) -> tuple[bytes, bool]:
    """(raw bytes, is_png)."""
    raw = read_user_file(path, "file", "the lorebook file (.json, .png or .lorebook)", max_bytes=MAX_INPUT_BYTES,
                         too_big="file is {mb:.0f} MB; a lorebook this large is not supported")
    return raw, raw.startswith(PNG_SIGNATURE)


def load_json(raw: bytes, shown: str, what: str = "") -> Any:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BibleError(f"{shown}: {what}not UTF-8 JSON text (is this a lorebook file?)") from None
    if not text.strip():
        raise BibleError(f"{shown}: {what}is empty")
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise BibleError(f"{shown}: {what}not valid JSON (line {err.lineno}, column {err.colno}: {err.msg})") from None


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


# ---------------------------------------------------------------- field helpers


def _strs(value: Any, what: str, where: str, split_commas: bool = False) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = value.split(",") if split_commas else [value]
    if not isinstance(value, list):
        raise BibleError(f"{where}: '{what}' must be a list of strings, not {type(value).__name__}")
    out: list[str] = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, (str, int, float)):
            raise BibleError(f"{where}: '{what}' must be a list of strings, but holds {json.dumps(v)[:40]}")
        if str(v).strip():
            out.append(str(v).strip())
    return out


def _text(value: Any, what: str, where: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BibleError(f"{where}: '{what}' must be text, not {type(value).__name__}")
    return value.replace("\r\n", "\n").replace("\r", "\n")


def _flag(value: Any, default: bool, what: str, where: str) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise BibleError(f"{where}: '{what}' must be true or false, not {json.dumps(value)[:40]}")


def _clean_name(*candidates: Any) -> str:
    for c in candidates:
        if isinstance(c, (str, int, float)) and not isinstance(c, bool) and str(c).strip():
            return " ".join(str(c).split())
    return ""


def _draft(keys: list[str], regex: list[str], title: Any, uid: str, **kw: Any) -> Draft:
    plain = [k for k in keys if k not in regex]
    name = _clean_name(title, *plain, *regex)
    d = Draft(name=name or f"Entry {uid}", keys=keys, regex_keys=regex, uid=uid, **kw)
    for k in regex:
        d.warnings.append(f"regex key {k!r} is kept under imported but not matched: b2p matches plain names; add the words it should catch to aliases")
    if not name:
        d.warnings.append(f"no title and no keys: named {d.name!r}; rename it and add aliases so beats can name it")
    elif not plain and not d.always:
        d.warnings.append(f"no plain activation keys: b2p will pull it in only by its name {name!r} or by similarity")
    return d


def _warn_secondary(d: Draft, secondary: list[str], logic: str) -> None:
    if secondary:
        regex = " (regex keys among them)" if any(is_regex_key(k) for k in secondary) else ""
        d.warnings.append(f"secondary keys {secondary}{regex} with logic {logic} are kept under imported but not honoured: its primary keys alone pull it in")


def _warn_probability(d: Draft, probability: Any, use: Any) -> None:
    if isinstance(probability, (int, float)) and not isinstance(probability, bool) and probability < 100 and use is not False:
        d.warnings.append(f"probability {probability:g}% is kept under imported but not honoured: it is used whenever it is pulled in")


def _imported(fmt: str, source: str, uid: Any, entry: dict[str, Any], body_field: str, **extra: Any) -> dict[str, Any]:
    """b2p's provenance keys first, then every field of the original entry except its body text."""
    out: dict[str, Any] = {"format": fmt, "source": source, "uid": uid}
    out.update((k, v) for k, v in extra.items() if v is not None)
    out.update((k, v) for k, v in entry.items() if k != body_field)
    return out


# ---------------------------------------------------------------- the three formats


def sillytavern(data: Any, shown: str, source: str) -> list[Draft]:
    entries = data.get("entries") if isinstance(data, dict) else None
    if isinstance(entries, dict):
        items = list(entries.items())
    elif isinstance(entries, list):
        items = [(str(i), e) for i, e in enumerate(entries)]
    else:
        raise BibleError(f"{shown}: SillyTavern World Info needs an 'entries' object keyed by uid")
    # 'originalData' is SillyTavern's cached copy of a file it once converted; the entries carry it.
    book = {k: v for k, v in data.items() if k not in ("entries", "originalData")} or None
    drafts = []
    for slot, e in items:
        where = f"{shown}: entry '{slot}'"
        if not isinstance(e, dict):
            raise BibleError(f"{where} is not an object")
        uid = e.get("uid", int(slot) if slot.isdigit() else slot)
        keys = _strs(e.get("key"), "key", where, split_commas=True)
        secondary = _strs(e.get("keysecondary"), "keysecondary", where, split_commas=True)
        d = _draft(
            keys, [k for k in keys if is_regex_key(k)], _text(e.get("comment"), "comment", where), str(uid),
            always=_flag(e.get("constant"), False, "constant", where),
            case_sensitive=_flag(e.get("caseSensitive"), False, "caseSensitive", where),  # null = global default (off)
            enabled=not _flag(e.get("disable"), False, "disable", where),
            body=_text(e.get("content"), "content", where),
            imported=_imported(SILLYTAVERN, source, uid, e, "content", book=book),
        )
        if e.get("selective", True) is not False:  # SillyTavern ignores secondary keys when not selective
            _warn_secondary(d, secondary, _ST_LOGIC.get(e.get("selectiveLogic", 0), f"logic {e.get('selectiveLogic')}"))
        _warn_probability(d, e.get("probability"), e.get("useProbability"))
        drafts.append(d)
    return drafts


def _card_book(data: Any, shown: str) -> tuple[dict[str, Any], str | None]:
    inner = data.get("data") if isinstance(data, dict) else None
    character = None
    if isinstance(data, dict) and data.get("spec") == "lorebook_v3":
        book = inner
    elif isinstance(inner, dict):
        book, character = inner.get("character_book"), _clean_name(inner.get("name")) or None
    elif isinstance(data, dict) and ("character_book" in data or "first_mes" in data):  # V1 / flattened card
        book, character = data.get("character_book"), _clean_name(data.get("name")) or None
    elif isinstance(data, dict) and isinstance(data.get("entries"), list):
        book = data
    else:
        raise BibleError(f"{shown}: not a character card: expected 'spec': 'chara_card_v2' or 'chara_card_v3' with data.character_book")
    if not book:
        who = f"'{character}' " if character else ""
        raise BibleError(f"{shown}: character card {who}has no lorebook (data.character_book is missing or empty)")
    if not isinstance(book, dict) or not isinstance(book.get("entries"), list):
        raise BibleError(f"{shown}: data.character_book.entries must be a list of entries")
    return book, character


def character_card(data: Any, shown: str, source: str) -> list[Draft]:
    book, character = _card_book(data, shown)
    meta = {k: v for k, v in book.items() if k != "entries"} or None
    drafts = []
    for i, e in enumerate(book["entries"]):
        where = f"{shown}: character_book entry {i + 1}"
        if not isinstance(e, dict):
            raise BibleError(f"{where} is not an object")
        uid = e.get("id", i)
        keys = _strs(e.get("keys"), "keys", where)
        secondary = _strs(e.get("secondary_keys"), "secondary_keys", where)
        use_regex = _flag(e.get("use_regex"), False, "use_regex", where)
        ext = e.get("extensions") if isinstance(e.get("extensions"), dict) else {}
        d = _draft(
            keys, list(keys) if use_regex else [k for k in keys if is_regex_key(k)],
            _clean_name(e.get("name"), e.get("comment")), str(uid),
            always=_flag(e.get("constant"), False, "constant", where),
            case_sensitive=_flag(e.get("case_sensitive"), False, "case_sensitive", where),
            enabled=_flag(e.get("enabled"), True, "enabled", where),
            body=_text(e.get("content"), "content", where),
            imported=_imported(CARD, source, uid, e, "content", character=character, book=meta),
        )
        if e.get("selective", bool(secondary)) is not False:
            _warn_secondary(d, secondary, _ST_LOGIC.get(ext.get("selectiveLogic", 0), "AND ANY"))
        _warn_probability(d, ext.get("probability"), ext.get("useProbability"))
        drafts.append(d)
    return drafts


def novelai(data: Any, shown: str, source: str) -> list[Draft]:
    entries = data.get("entries") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise BibleError(f"{shown}: NovelAI lorebook needs an 'entries' list")
    cats = data.get("categories") or []
    if not isinstance(cats, list) or not all(isinstance(c, dict) for c in cats):
        raise BibleError(f"{shown}: NovelAI 'categories' must be a list of objects")
    categories = {str(c.get("id")): c for c in cats if c.get("id") is not None}
    book = {k: v for k, v in data.items() if k not in ("entries", "categories")} or None
    drafts = []
    for i, e in enumerate(entries):
        where = f"{shown}: entry {i + 1}"
        if not isinstance(e, dict):
            raise BibleError(f"{where} is not an object")
        uid = e.get("id", i)
        keys = _strs(e.get("keys"), "keys", where)
        cat = categories.get(str(e.get("category"))) if e.get("category") is not None else None
        cat_name = _clean_name(cat.get("name")) if cat else ""
        cat_enabled = cat is None or cat.get("enabled") is not False
        d = _draft(
            keys, [k for k in keys if is_regex_key(k)], _clean_name(e.get("displayName")), str(uid),
            always=_flag(e.get("forceActivation"), False, "forceActivation", where),
            case_sensitive=False,  # NovelAI keys are case-insensitive unless written as a regex
            enabled=_flag(e.get("enabled"), True, "enabled", where) and cat_enabled,
            body=_text(e.get("text"), "text", where),
            imported=_imported(NOVELAI, source, uid, e, "text", book=book, book_category=cat),
            tags=[cat_name] if cat_name else [],
        )
        if cat_name:
            d.folder = f"lore/{slugify(cat_name)}"
        if not cat_enabled:
            d.warnings.append(f"its category {cat_name!r} is disabled in NovelAI, so it is imported disabled")
        drafts.append(d)
    return drafts


READERS = {SILLYTAVERN: sillytavern, CARD: character_card, NOVELAI: novelai}

_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}


def slugify(text: str, limit: int = 60) -> str:
    """A readable, portable file-name stem: lower case, words joined by '-', any script kept."""
    s = re.sub(r"[\W_]+", "-", text.casefold()).strip("-")[:limit].rstrip("-")
    if s in _RESERVED:
        s += "-entry"
    return s or "entry"
