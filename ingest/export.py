"""``b2p export``: a bible folder written back as a SillyTavern World Info file or a NovelAI lorebook.

The inverse of ``b2p import``. An entry imported from the same format is restored from its
``imported:`` record: every source field as it was, the text from the bible body (with the ends and
line breaks the source had). The import's mapping is run again on that record to learn what the
import made of it, and each b2p field the writer has changed since (name, aliases, always,
case_sensitive, enabled) is mapped back onto the source fields it came from; unchanged ones are
left exactly as they were. The lorebook's own top-level fields come from the record the import kept
(``lore/<source>.book.yaml``). Every other entry (written in b2p, or imported from another format)
is written from its b2p fields: name and aliases as keys, ``always`` as constant / forceActivation,
``enabled: false`` as disabled, ``case_sensitive`` as SillyTavern's caseSensitive or NovelAI's
``/Word/`` keys; for NovelAI its kind becomes a category.

The bible folder is read, not the store: no ingest is needed. Output is checked against the
format's shape (``lorebook_formats``) before it is written, atomically.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from b2p.atomic import write_atomic
from b2p.errors import BibleError
from b2p.models import LoreEntry
from ingest import lorebooks as lb
from ingest.bible import _entry_files, read_bible, read_front_matter, read_record
from ingest.lorebook_formats import CARD, NOVELAI, SILLYTAVERN, CardEntry, NaiBook, NaiEntry, STBook, STEntry, check

TARGETS = (SILLYTAVERN, NOVELAI)
_NS = uuid.UUID("6f1d4a52-b2b0-4e6f-9d1c-7a4f0b2e3c11")  # b2p's namespace for the ids it makes up


class ExportReport(BaseModel):
    """What ``b2p export --json`` prints."""

    bible: str
    format: str
    output: str
    entries: int = Field(description="Entries written.")
    restored: int = Field(description="Entries restored from an import of this format.")
    converted: int = Field(0, description="Character-card entries converted to SillyTavern's fields, as SillyTavern converts a card's book.")
    written: int = Field(description="Entries written from their b2p fields.")
    warnings: list[str] = Field(default_factory=list)


# ---------------------------------------------------------------- records of imported lorebooks


def _records(root: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """(format, source) → the record ``b2p import`` kept of that lorebook's own fields."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for path in _entry_files(root, lb.RECORD_SUFFIX):
        shown = str(path)
        doc = read_record(path)
        data = doc.data
        if not isinstance(data, dict) or not isinstance(data.get("source"), str) or not isinstance(data.get("format"), str):
            raise BibleError(f"{shown}:1: not a lorebook record: expected 'format', 'source' and 'book' keys (b2p import writes it)")
        for key, kind, what in (("book", dict, "a mapping"), ("entry_order", list, "a list"), ("entries_at", int, "a number")):
            if data.get(key) is not None and not isinstance(data[key], kind):
                raise BibleError(f"{shown}:{doc.line(key)}: '{key}' must be {what}")
        out.setdefault((data["format"], data["source"]), data)
    return out


def _legacy_record(entries: list[LoreEntry]) -> dict[str, Any]:
    """The record of a lorebook imported before records existed: each entry carried the book."""
    imp = entries[0].imported or {}
    book = dict(imp.get("book") or {})
    cats = [e.imported["book_category"] for e in entries if isinstance((e.imported or {}).get("book_category"), dict)]
    if cats:
        book["categories"] = list({json.dumps(c, sort_keys=True): c for c in cats}.values())
    return {"book": book}


# ---------------------------------------------------------------- restoring an imported entry


def _source_fields(e: LoreEntry, keep_uid: bool) -> dict[str, Any]:
    return {k: v for k, v in (e.imported or {}).items() if k not in lb.PROVENANCE or (keep_uid and k == "uid")}


def _with(raw: dict[str, Any], key: str, value: Any, after: tuple[str, ...]) -> dict[str, Any]:
    """``raw`` with ``key`` placed after the first of ``after`` it has (at the front if none)."""
    anchor = next((a for a in after if a in raw), None)
    out: dict[str, Any] = {} if anchor else {key: value}
    for k, v in raw.items():
        out[k] = v
        if k == anchor:
            out[key] = value
    return out


def _where(root: Path, e: LoreEntry) -> Any:
    def where(loc: tuple[Any, ...]) -> tuple[str, str | None]:
        path = root / e.path
        line = read_front_matter(path)[0].line("imported", *loc)
        return f"{path}:{line}", "imported." + lb.field_path(loc) if loc else None

    return where


def _changed(e: LoreEntry, d: lb.Draft) -> dict[str, bool]:
    """Which b2p fields differ from what the import made of the record."""
    name = lb.nfc(d.name)
    same_name = e.name == name or bool(re.fullmatch(re.escape(name) + r" \(\d+\)", e.name))  # the import's own clash rename
    return {
        "name": not same_name,
        "aliases": [lb.nfc(a) for a in d.aliases(e.name)] != e.aliases,
        "always": e.always != d.always,
        "case_sensitive": e.case_sensitive != d.case_sensitive,
        "enabled": e.enabled != d.enabled,
    }


def _keys(e: LoreEntry, d: lb.Draft | None, literal: bool = False) -> list[str]:
    """Activation keys for b2p's name and aliases: the name too unless the source kept it out of its
    keys; the source's regex keys after them; ``literal``: as NovelAI's case-sensitive ``/Word/`` keys."""
    names = {e.name.casefold(), d.name.casefold()} if d else set()
    with_name = d is None or any(k.casefold() in names for k in d.keys if k not in d.regex_keys)
    words: list[str] = []
    for k in [*([e.name] if with_name else []), *e.aliases]:
        if k.casefold() not in {w.casefold() for w in words}:
            words.append(k)
    return [lb.as_literal_key(k) if literal else k for k in words] + (d.regex_keys if d else [])


def _restore_st(root: Path, e: LoreEntry) -> tuple[dict[str, Any], Any]:
    """A SillyTavern entry from one imported from SillyTavern, or from a character card (converted)."""
    imp = e.imported or {}
    source = str(imp.get("source"))
    if imp.get("format") == CARD:
        card = _with(_source_fields(e, keep_uid=False), "content", lb.restore_body(e.text, imp), ("keys",))
        d = lb.card_draft(check(CardEntry, card, _where(root, e), written=True), card, 0, source)
        raw = _card_to_st(card, imp.get("uid"))
    else:
        raw = _with({"uid": imp.get("uid"), **_source_fields(e, keep_uid=True)}, "content", lb.restore_body(e.text, imp),
                    ("comment", "keysecondary", "key", "uid"))  # a uid first, as SillyTavern writes it (the import took the slot's)
        d = lb.st_draft(check(STEntry, raw, _where(root, e), written=True), raw, "0", source)
    uid = raw.get("uid", imp.get("uid"))
    ch = _changed(e, d)
    if ch["name"]:
        raw["comment"] = e.name
        raw["addMemo"] = True
    if ch["name"] or ch["aliases"]:
        raw["key"] = _keys(e, d)
    if ch["always"]:
        raw["constant"] = e.always
    if ch["case_sensitive"]:
        raw["caseSensitive"] = e.case_sensitive
    if ch["enabled"]:
        raw["disable"] = not e.enabled
    return raw, uid


# A card entry's SillyTavern settings live in its 'extensions' under these names (SillyTavern writes
# them there when it puts a world into a card, and reads them back the same way).
_CARD_EXTENSIONS = {
    "excludeRecursion": ("exclude_recursion", False), "preventRecursion": ("prevent_recursion", False),
    "delayUntilRecursion": ("delay_until_recursion", False), "probability": ("probability", 100),
    "useProbability": ("useProbability", True), "depth": ("depth", 4), "selectiveLogic": ("selectiveLogic", 0),
    "outletName": ("outlet_name", ""), "group": ("group", ""), "groupOverride": ("group_override", False),
    "groupWeight": ("group_weight", 100), "scanDepth": ("scan_depth", None), "caseSensitive": ("case_sensitive", None),
    "matchWholeWords": ("match_whole_words", None), "useGroupScoring": ("use_group_scoring", None),
    "automationId": ("automation_id", ""), "role": ("role", 0), "vectorized": ("vectorized", False),
    "sticky": ("sticky", None), "cooldown": ("cooldown", None), "delay": ("delay", None),
    "matchPersonaDescription": ("match_persona_description", False), "matchCharacterDescription": ("match_character_description", False),
    "matchCharacterPersonality": ("match_character_personality", False), "matchCharacterDepthPrompt": ("match_character_depth_prompt", False),
    "matchScenario": ("match_scenario", False), "matchCreatorNotes": ("match_creator_notes", False),
    "triggers": ("triggers", []), "ignoreBudget": ("ignore_budget", False),
}


def _card_to_st(card: dict[str, Any], uid: Any) -> dict[str, Any]:
    """A character-card book entry as a World Info entry, field for field as SillyTavern converts one."""
    ext = card.get("extensions") if isinstance(card.get("extensions"), dict) else {}
    out = _st_template(uid)
    for st, (key, default) in _CARD_EXTENSIONS.items():
        out[st] = ext.get(key, default)
    out.update(key=list(card.get("keys") or []), keysecondary=list(card.get("secondary_keys") or []), comment=card.get("comment") or "",
               content=card["content"], constant=bool(card.get("constant")), selective=bool(card.get("selective")),
               order=card.get("insertion_order"), position=ext.get("position", 0 if card.get("position") == "before_char" else 1),
               disable=card.get("enabled") is False, addMemo=bool(card.get("comment")), displayIndex=ext.get("display_index", uid),
               extensions=ext)
    return out


def _restore_nai(root: Path, e: LoreEntry, categories: dict[str, Any], warnings: list[str]) -> dict[str, Any]:
    raw = _with(_source_fields(e, keep_uid=False), "text", lb.restore_body(e.text, e.imported or {}), ())
    m = check(NaiEntry, raw, _where(root, e), written=True)
    d = lb.nai_draft(m, raw, 0, categories, str((e.imported or {}).get("source")))
    ch = _changed(e, d)
    if ch["name"]:
        raw["displayName"] = e.name
    if ch["name"] or ch["aliases"] or ch["case_sensitive"]:
        raw["keys"] = _keys(e, d, literal=e.case_sensitive)
    if ch["always"]:
        raw["forceActivation"] = e.always
    if ch["enabled"]:
        raw["enabled"] = e.enabled
        cat = categories.get(str(m.category)) if m.category else None
        if e.enabled and cat is not None and cat.enabled is False:
            warnings.append(f"{root / e.path}: enabled, but its NovelAI category {cat.name!r} is disabled, so NovelAI still leaves it out")
    return raw


# ---------------------------------------------------------------- entries written in b2p


def _st_template(uid: Any) -> dict[str, Any]:
    """A new SillyTavern entry: its template's defaults (``newWorldInfoEntryDefinition``), in its order."""
    return {
        "uid": uid, "key": [], "keysecondary": [], "comment": "", "content": "", "constant": False, "vectorized": False,
        "selective": True, "selectiveLogic": 0, "addMemo": False, "order": 100, "position": 0, "disable": False,
        "ignoreBudget": False, "excludeRecursion": False, "preventRecursion": False, "matchPersonaDescription": False,
        "matchCharacterDescription": False, "matchCharacterPersonality": False, "matchCharacterDepthPrompt": False,
        "matchScenario": False, "matchCreatorNotes": False, "delayUntilRecursion": 0, "probability": 100,
        "useProbability": True, "depth": 4, "outletName": "", "group": "", "groupOverride": False, "groupWeight": 100,
        "scanDepth": None, "caseSensitive": None, "matchWholeWords": None, "useGroupScoring": None, "automationId": "",
        "role": 0, "sticky": None, "cooldown": None, "delay": None, "triggers": [], "displayIndex": uid,
    }


def _new_st(e: LoreEntry, uid: int) -> dict[str, Any]:
    out = _st_template(uid)
    out.update(key=_keys(e, None), comment=e.name, content=e.text, constant=e.always, addMemo=True, disable=not e.enabled,
               caseSensitive=e.case_sensitive, matchWholeWords=True)  # b2p matches whole words
    return out


def _nai_blank(ident: str, name: str) -> dict[str, Any]:
    """NovelAI's default lorebook entry (v6)."""
    return {
        "text": "",
        "contextConfig": {"prefix": "", "suffix": "\n", "tokenBudget": 1, "reservedTokens": 0, "budgetPriority": 400,
                          "trimDirection": "trimBottom", "insertionType": "newline", "maximumTrimType": "sentence",
                          "insertionPosition": -1},
        "lastUpdatedAt": 0, "displayName": name, "id": ident, "keys": [], "searchRange": 1000, "enabled": True,
        "forceActivation": False, "keyRelative": False, "nonStoryActivatable": False, "category": "",
        "loreBiasGroups": [{"phrases": [], "ensureSequenceFinish": False, "generateOnce": True, "bias": 0, "enabled": True,
                            "whenInactive": False}],
        "advancedConditions": [],
    }


def _nai_category(kind: str) -> dict[str, Any]:
    ident = str(uuid.uuid5(_NS, f"category:{kind}"))
    return {"name": kind, "id": ident, "enabled": True, "createSubcontext": False,
            "subcontextSettings": _nai_blank(str(uuid.uuid5(_NS, f"subcontext:{kind}")), "New Subcontext"),
            "useCategoryDefaults": False, "categoryDefaults": _nai_blank(str(uuid.uuid5(_NS, f"defaults:{kind}")), "New Lorebook Entry"),
            "categoryBiasGroups": []}


def _new_nai(root: Path, e: LoreEntry, category: str) -> dict[str, Any]:
    out = _nai_blank(str(uuid.uuid5(_NS, f"entry:{e.id}")), e.name)
    out.update(text=e.text, keys=_keys(e, None, literal=e.case_sensitive), enabled=e.enabled, forceActivation=e.always,
               category=category, lastUpdatedAt=int((root / e.path).stat().st_mtime * 1000))
    return out


# ---------------------------------------------------------------- the whole file


def _groups(entries: list[LoreEntry], formats: tuple[str, ...], records: dict[tuple[str, str], dict[str, Any]]
            ) -> tuple[list[tuple[str, str]], dict[tuple[str, str], list[LoreEntry]], list[LoreEntry]]:
    """(the (format, source) of each imported lorebook in ``formats``: the export's own format first, then the
    most entries; their entries in the source's order; every other entry, in bible order)."""
    by_source: dict[tuple[str, str], list[LoreEntry]] = {}
    others: list[LoreEntry] = []
    for e in entries:
        imp = e.imported or {}
        if imp.get("format") in formats and "uid" in imp:
            by_source.setdefault((str(imp["format"]), str(imp.get("source"))), []).append(e)
        else:
            others.append(e)
    for key, group in by_source.items():
        order = {json.dumps(u): i for i, u in enumerate((records.get(key) or {}).get("entry_order") or [])}
        group.sort(key=lambda e: (order.get(json.dumps((e.imported or {}).get("uid")), len(order)), e.path))
    keys = sorted(by_source, key=lambda k: (formats.index(k[0]), -len(by_source[k]), k[1]))
    return keys, by_source, others


def _top(book: dict[str, Any], entries: Any, at: int) -> dict[str, Any]:
    items = list(book.items())
    items.insert(min(max(at, 0), len(items)), ("entries", entries))
    return dict(items)


def _book(records: dict[tuple[str, str], dict[str, Any]], key: tuple[str, str], group: list[LoreEntry]) -> dict[str, Any]:
    return records.get(key) or _legacy_record(group)


def _sillytavern(root: Path, entries: list[LoreEntry], records: dict[tuple[str, str], dict[str, Any]], warnings: list[str]) -> tuple[dict[str, Any], int, int]:
    keys, by_source, others = _groups(entries, (SILLYTAVERN, CARD), records)
    out: dict[int, dict[str, Any]] = {}
    later: list[tuple[LoreEntry, dict[str, Any] | None]] = []
    for key in keys:
        for e in by_source[key]:
            raw, uid = _restore_st(root, e)
            if isinstance(uid, int) and not isinstance(uid, bool) and uid not in out:
                out[uid] = raw
            else:
                later.append((e, raw))
                warnings.append(f"{root / e.path}: its uid {uid!r} is taken by another entry (or not a number); it gets a new one")
    later.extend((e, None) for e in others)
    free = max(out, default=-1) + 1
    for e, raw in later:
        out[free] = _new_st(e, free) if raw is None else {**raw, "uid": free, "displayIndex": free}
        free += 1
    own = [k for k in keys if k[0] == SILLYTAVERN]
    record = _book(records, own[0], by_source[own[0]]) if own else {}
    top = _top(record.get("book") or {}, {str(u): v for u, v in out.items()}, record.get("entries_at", 0))
    count = {f: sum(len(by_source[k]) for k in keys if k[0] == f) for f in (SILLYTAVERN, CARD)}
    return top, count[SILLYTAVERN], count[CARD]


def _novelai(root: Path, entries: list[LoreEntry], records: dict[tuple[str, str], dict[str, Any]], warnings: list[str]) -> tuple[dict[str, Any], int, int]:
    keys, by_source, others = _groups(entries, (NOVELAI,), records)
    books = [_book(records, k, by_source[k]) for k in keys]
    primary = books[0] if books else {"book": {"lorebookVersion": 6, "settings": {"orderByKeyLocations": False}, "categories": []}, "entries_at": 1}
    categories: dict[str, dict[str, Any]] = {}
    for b in books:
        for c in (b.get("book") or {}).get("categories") or []:
            if isinstance(c, dict):
                categories.setdefault(str(c.get("id")), c)
    for e in others:
        if e.kind != "lore":
            cat = _nai_category(e.kind)
            categories.setdefault(cat["id"], cat)
    shapes = lb.nai_categories(check(NaiBook, {"entries": [], "categories": list(categories.values())}, lambda loc: (f"{root}: categories", None)))
    out: list[dict[str, Any]] = []
    ids: set[str] = set()
    for key in keys:
        for e in by_source[key]:
            raw = _restore_nai(root, e, shapes, warnings)
            if raw.get("id") in ids:
                warnings.append(f"{root / e.path}: its id {raw.get('id')!r} is taken by another entry; it gets a new one")
                raw["id"] = str(uuid.uuid5(_NS, f"entry:{e.id}"))
            ids.add(raw["id"])
            out.append(raw)
    for e in others:
        out.append(_new_nai(root, e, "" if e.kind == "lore" else str(uuid.uuid5(_NS, f"category:{e.kind}"))))
    book = dict(primary.get("book") or {})
    if categories or "categories" in book:
        book["categories"] = list(categories.values())
    return _top(book, out, primary.get("entries_at", 1)), sum(len(g) for g in by_source.values()), 0


def export_bible(root: Path, fmt: str, output: Path) -> ExportReport:
    """Write the bible at ``root`` to ``output`` in format ``fmt`` (see the module docstring)."""
    root, output = Path(root), Path(output)
    if fmt not in TARGETS:
        raise BibleError(f"--format '{fmt}': b2p exports {' or '.join(TARGETS)}")
    if output.is_dir():
        raise BibleError(f"{output}: is a folder; pass the file to write, e.g. -o world.json")
    bible = read_bible(root)
    records = _records(root)
    warnings: list[str] = []
    build = _sillytavern if fmt == SILLYTAVERN else _novelai
    doc, restored, converted = build(root, bible.entries, records, warnings)
    carried = (fmt, CARD) if fmt == SILLYTAVERN else (fmt,)
    foreign = sorted({str(e.imported.get("format")) for e in bible.entries if e.imported and e.imported.get("format") not in (*carried, None)})
    if foreign:
        warnings.append(f"entries imported from {', '.join(foreign)} are written from their b2p fields; their other settings stay in the bible")
    check(STBook if fmt == SILLYTAVERN else NaiBook, doc, lambda loc: (f"{output}", lb.field_path(loc) or None), written=True)
    write_atomic(output, json.dumps(doc, ensure_ascii=False, indent=2) + "\n", BibleError)
    return ExportReport(bible=str(root), format=fmt, output=str(output), entries=len(bible.entries), restored=restored,
                        converted=converted, written=len(bible.entries) - restored - converted, warnings=warnings)
