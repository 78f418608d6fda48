"""Each lorebook format's entries mapped to b2p's fields, as format-neutral ``Draft`` entries.

The same mapping serves both directions: ``b2p import`` turns every source entry into a Draft and a
bible file; ``b2p export`` re-reads the source entry kept under ``imported:`` to learn what the import
made of it, so the fields the writer has changed since (and only those) are mapped back.

A reader returns the drafts and the lorebook's *record*: its top-level fields (book settings, NovelAI
categories, a card's name), kept once per imported file rather than in every entry.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from b2p.errors import BibleError
from ingest.bible import strip_invisible
from ingest.lorebook_formats import (
    CARD,
    NOVELAI,
    SILLYTAVERN,
    ST_LOGIC,
    CardBook,
    CardEntry,
    CardExtensions,
    NaiBook,
    NaiCategory,
    NaiEntry,
    STBook,
    STEntry,
    check,
    field_path,
)

_REGEX_KEY = re.compile(r"^/(.+)/([a-z]*)$", re.S)
_JS_SPECIAL = "\\^$.*+?()[]{}|/"
RECORD_SUFFIX = ".book.yaml"  # lore/<source>.book.yaml: an imported lorebook's own fields, kept once
# b2p's own keys under imported: (every other key there is the source entry's own)
PROVENANCE = ("format", "source", "uid", "body_edges", "body_crlf", "book", "character", "book_category")


@dataclass
class Draft:
    """One source entry, mapped to b2p's fields but not yet named, placed or written."""

    name: str
    keys: list[str]  # activation keys as b2p reads them: plain words, and regex keys verbatim
    regex_keys: list[str]
    always: bool
    case_sensitive: bool
    enabled: bool
    body: str  # the text, newlines normalised and ends trimmed as the bible file will hold it
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
            if k not in self.regex_keys and k.casefold() not in seen and strip_invisible(k):
                seen.add(k.casefold())
                out.append(k)
        return out


@dataclass
class Read:
    drafts: list[Draft]
    record: dict[str, Any]  # {"format", "source", "book", "entries_at", "entry_order", ["character"]}


def is_regex_key(key: str) -> bool:
    """SillyTavern and NovelAI both write regex keys as ``/pattern/flags``."""
    return bool(_REGEX_KEY.match(key))


def literal_key(key: str) -> tuple[str, bool] | None:
    """A regex key that only spells out words (``/Wren/``, ``/St\\. Ives/i``) as (the words, case-sensitive),
    else None. NovelAI has no case-sensitivity setting: such a key is how one is written there."""
    m = _REGEX_KEY.match(key)
    if not m or set(m.group(2)) - set("gimsu"):
        return None
    out, pattern, i = [], m.group(1), 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern) and pattern[i + 1] in _JS_SPECIAL:
            out.append(pattern[i + 1])
            i += 2
            continue
        if c in _JS_SPECIAL:
            return None
        out.append(c)
        i += 1
    text = "".join(out).strip()
    return (text, "i" not in m.group(2)) if text else None


def as_literal_key(word: str) -> str:
    """The case-sensitive regex key that matches exactly ``word`` (the inverse of ``literal_key``)."""
    return "/" + "".join("\\" + c if c in _JS_SPECIAL else c for c in word) + "/"


def slugify(text: str, limit: int = 60) -> str:
    """A readable, portable file-name stem: lower case, words joined by '-', any script kept."""
    s = re.sub(r"[\W_]+", "-", text.casefold()).strip("-")[:limit].rstrip("-")
    if s in _RESERVED:
        s += "-entry"
    return s or "entry"


_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


# ---------------------------------------------------------------- shared pieces


def _clean_name(*candidates: Any) -> str:
    for c in candidates:
        if isinstance(c, (str, int, float)) and not isinstance(c, bool) and strip_invisible(str(c)):
            return " ".join(str(c).split())
    return ""


def _body(raw: str | None) -> tuple[str, dict[str, Any]]:
    """(the text as a bible file holds it, what restores the original exactly: its ends, CRLF line breaks)."""
    raw = raw or ""
    core = raw.strip()
    keep: dict[str, Any] = {}
    if core and raw != core:
        keep["body_edges"] = [raw[: len(raw) - len(raw.lstrip())], raw[len(raw.rstrip()) :]]
    if "\r\n" in core and not re.search(r"\r(?!\n)|(?<!\r)\n", core):
        keep["body_crlf"] = True
    return core.replace("\r\n", "\n").replace("\r", "\n"), keep


def restore_body(body: str, imported: dict[str, Any]) -> str:
    """The source format's text for a bible body: ``_body`` undone."""
    edges = imported.get("body_edges")
    text = body.replace("\n", "\r\n") if imported.get("body_crlf") is True else body
    if isinstance(edges, list) and len(edges) == 2 and all(isinstance(x, str) and not x.strip() for x in edges):
        text = f"{edges[0]}{text}{edges[1]}"
    return text


def _draft(keys: list[str], regex: list[str], title: Any, uid: Any, fmt: str, source: str, raw: dict[str, Any],
           body_field: str, **kw: Any) -> Draft:
    plain = [k for k in keys if k not in regex]
    name = _clean_name(title, *plain, *regex)
    body, keep = _body(raw.get(body_field))
    imported: dict[str, Any] = {"format": fmt, "source": source, "uid": uid, **keep}
    imported.update((k, v) for k, v in raw.items() if k != body_field)
    d = Draft(name=name or f"Entry {uid}", keys=keys, regex_keys=regex, uid=str(uid), body=body, imported=imported, **kw)
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
    if isinstance(probability, (int, float)) and probability < 100 and use is not False:
        d.warnings.append(f"probability {probability:g}% is kept under imported but not honoured: it is used whenever it is pulled in")


def _record(fmt: str, source: str, top: dict[str, Any], drop: tuple[str, ...], drafts: list[Draft], **extra: Any) -> dict[str, Any]:
    keys = list(top)
    book = {k: v for k, v in top.items() if k not in ("entries", *drop)}
    return {"format": fmt, "source": source, **extra, "book": book, "entries_at": keys.index("entries") if "entries" in keys else 0,
            "entry_order": [d.imported["uid"] for d in drafts]}


# ---------------------------------------------------------------- SillyTavern World Info


def st_draft(m: STEntry, raw: dict[str, Any], slot: str, source: str) -> Draft:
    uid = raw.get("uid", int(slot) if slot.isdigit() else slot)
    keys = m.key
    d = _draft(keys, [k for k in keys if is_regex_key(k)], m.comment, uid, SILLYTAVERN, source, raw, "content",
               always=bool(m.constant), case_sensitive=bool(m.caseSensitive),  # null = global default (off)
               enabled=not m.disable)
    if m.selective is not False:  # SillyTavern ignores secondary keys when not selective
        _warn_secondary(d, m.keysecondary, ST_LOGIC.get(m.selectiveLogic or 0, f"logic {m.selectiveLogic}"))
    _warn_probability(d, m.probability, m.useProbability)
    return d


def st_entries(data: Any, shown: str) -> dict[str, Any]:
    entries = data.get("entries") if isinstance(data, dict) else None
    if isinstance(entries, list):
        return {str(i): e for i, e in enumerate(entries)}
    if isinstance(entries, dict):
        return entries
    raise BibleError(f"{shown}: SillyTavern World Info needs an 'entries' object keyed by uid")


def st_where(shown: str) -> Any:
    def where(loc: tuple[Any, ...]) -> tuple[str, str | None]:
        if len(loc) >= 2 and loc[0] == "entries":
            return f"{shown}: entry '{loc[1]}'", field_path(loc[2:]) or None
        return shown, field_path(loc) or None

    return where


def sillytavern(data: Any, shown: str, source: str) -> Read:
    items = st_entries(data, shown)
    book = check(STBook, {**data, "entries": items}, st_where(shown))
    drafts = [st_draft(book.entries[slot], raw, slot, source) for slot, raw in items.items()]
    # 'originalData' is SillyTavern's cached copy of a card it once converted; not kept.
    return Read(drafts, _record(SILLYTAVERN, source, data, ("originalData",), drafts))


# ---------------------------------------------------------------- character-card lorebooks


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


def card_draft(m: CardEntry, raw: dict[str, Any], i: int, source: str) -> Draft:
    keys = m.keys
    ext = m.extensions or CardExtensions()
    d = _draft(keys, list(keys) if m.use_regex else [k for k in keys if is_regex_key(k)], _clean_name(m.name, m.comment),
               raw.get("id", i), CARD, source, raw, "content",
               always=bool(m.constant), case_sensitive=bool(m.case_sensitive), enabled=m.enabled is not False)
    if (m.selective if m.selective is not None else bool(m.secondary_keys)) is not False:
        _warn_secondary(d, m.secondary_keys, ST_LOGIC.get(ext.selectiveLogic or 0, "AND ANY"))
    _warn_probability(d, ext.probability, ext.useProbability)
    return d


def character_card(data: Any, shown: str, source: str) -> Read:
    raw_book, character = _card_book(data, shown)

    def where(loc: tuple[Any, ...]) -> tuple[str, str | None]:
        if len(loc) >= 2 and loc[0] == "entries":
            return f"{shown}: character_book entry {loc[1] + 1}", field_path(loc[2:]) or None
        return f"{shown}: character_book", field_path(loc) or None

    book = check(CardBook, raw_book, where)
    drafts = [card_draft(m, raw, i, source) for i, (m, raw) in enumerate(zip(book.entries, raw_book["entries"], strict=True))]
    extra = {"character": character} if character else {}
    return Read(drafts, _record(CARD, source, raw_book, (), drafts, **extra))


# ---------------------------------------------------------------- NovelAI


def nai_draft(m: NaiEntry, raw: dict[str, Any], i: int, categories: dict[str, NaiCategory], source: str) -> Draft:
    keys: list[str] = []
    regex: list[str] = []
    literal_cs: list[bool] = []
    for k in m.keys:
        lit = literal_key(k)
        if lit is not None:
            keys.append(lit[0])
            literal_cs.append(lit[1])
        else:
            keys.append(k)
            if is_regex_key(k):
                regex.append(k)
    plain_count = len(keys) - len(regex)
    # NovelAI matches plain keys regardless of case; keys written as /Word/ are how it says "with capitals".
    case_sensitive = bool(literal_cs) and len(literal_cs) == plain_count and all(literal_cs)
    cat = categories.get(str(m.category)) if m.category else None
    cat_name = _clean_name(cat.name) if cat else ""
    cat_enabled = cat is None or cat.enabled is not False
    d = _draft(keys, regex, _clean_name(m.displayName), raw.get("id", i), NOVELAI, source, raw, "text",
               always=bool(m.forceActivation), case_sensitive=case_sensitive,
               enabled=m.enabled is not False and cat_enabled, tags=[cat_name] if cat_name else [])
    if any(literal_cs) and not case_sensitive:
        d.warnings.append("some keys are case-sensitive (/Word/) and some are not: b2p matches them all regardless of case")
    if cat_name:
        d.folder = f"lore/{slugify(cat_name)}"
    if not cat_enabled:
        d.warnings.append(f"its category {cat_name!r} is disabled in NovelAI, so it is imported disabled")
    return d


def nai_categories(book: NaiBook) -> dict[str, NaiCategory]:
    return {str(c.id): c for c in book.categories or [] if c.id is not None}


def novelai(data: Any, shown: str, source: str) -> Read:
    entries = data.get("entries") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise BibleError(f"{shown}: NovelAI lorebook needs an 'entries' list")
    cats = data.get("categories")
    if cats is not None and (not isinstance(cats, list) or not all(isinstance(c, dict) for c in cats)):
        raise BibleError(f"{shown}: NovelAI 'categories' must be a list of objects")

    def where(loc: tuple[Any, ...]) -> tuple[str, str | None]:
        if len(loc) >= 2 and loc[0] in ("entries", "categories"):
            return f"{shown}: {'entry' if loc[0] == 'entries' else 'category'} {loc[1] + 1}", field_path(loc[2:]) or None
        return shown, field_path(loc) or None

    book = check(NaiBook, data, where)
    categories = nai_categories(book)
    drafts = [nai_draft(m, raw, i, categories, source) for i, (m, raw) in enumerate(zip(book.entries, entries, strict=True))]
    return Read(drafts, _record(NOVELAI, source, data, (), drafts))


READERS = {SILLYTAVERN: sillytavern, CARD: character_card, NOVELAI: novelai}
