"""Import SillyTavern World Info, character-card lorebooks and NovelAI lorebooks into a bible.

Each source entry becomes one Markdown file under ``<bible>/lore/`` (NovelAI categories get a
subfolder each: ``lore/<category>/``); the lorebook's own top-level fields (book settings, NovelAI
categories, a card's name) and its entry order are kept once, in ``lore/<source>.book.yaml``, for
``b2p export``. The whole import is planned in memory first; a malformed file raises
``BibleError`` before anything is written, and the files are then written atomically.

Re-importing the same file is recognised by ``imported.format`` / ``source`` / ``uid`` in the
files already there: such entries are skipped unless ``force`` (then overwritten in place). Every
other clash is resolved without touching existing files: ``name`` gets " (2)", the file ``-2``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from b2p.atomic import write_all_atomic
from b2p.errors import BibleError
from ingest import lorebook_files as lfiles
from ingest import lorebooks as lb
from ingest.bible import MAX_ENTRY_BYTES, _entry_files, parse_entry, read_record
from ingest.lorebook_formats import CARD, FORMATS
from ingest.yamldoc import dump_yaml, render_entry

__all__ = ["ImportReport", "detect_format", "import_lorebook"]


class ImportedEntry(BaseModel):
    name: str
    file: str = Field(description="Path of the written file, relative to the bible folder.")
    aliases: list[str]
    always: bool
    enabled: bool


class SkippedEntry(BaseModel):
    name: str
    reason: str


class ImportWarning(BaseModel):
    name: str
    message: str


class ImportReport(BaseModel):
    """What ``b2p import --json`` prints."""

    source: str
    format: str
    into: str
    record: str | None = Field(None, description="The file keeping the lorebook's own fields, relative to the bible folder.")
    imported: list[ImportedEntry] = Field(default_factory=list)
    skipped: list[SkippedEntry] = Field(default_factory=list)
    warnings: list[ImportWarning] = Field(default_factory=list)
    dry_run: bool = False


def _parse(path: Path, fmt: str | None) -> tuple[str, Any]:
    """(format, parsed JSON document); every failure is a one-line BibleError."""
    shown = str(path)
    if fmt is not None and fmt not in FORMATS:
        raise BibleError(f"{shown}: unknown format '{fmt}'; use one of: {', '.join(FORMATS)}")
    raw, is_png = lfiles.read_source(path)
    if is_png:
        if fmt not in (None, CARD):
            raise BibleError(f"{shown}: a PNG can only hold a character card, not a {fmt} lorebook; use format {CARD}")
        return CARD, lfiles.png_card(raw, shown)
    data = lfiles.load_json(raw, shown)
    detected = lfiles.detect(data)
    if fmt is None and detected is None:
        raise lfiles.unknown_format(shown)
    return fmt or detected, data  # type: ignore[return-value]


def detect_format(path: Path) -> str:
    """'sillytavern' | 'character-card' | 'novelai', from the file's content (PNG → card)."""
    return _parse(Path(path), None)[0]


def _read(path: Path, fmt: str | None) -> tuple[str, lb.Read]:
    chosen, data = _parse(path, fmt)
    try:
        return chosen, lb.READERS[chosen](data, str(path), path.name)
    except BibleError as err:
        detected = lfiles.detect(data)
        if fmt is not None and detected not in (None, fmt):
            raise BibleError(f"{err} (the file looks like {detected}; try without a format)") from None
        raise


# ---------------------------------------------------------------- planning


@dataclass
class _Existing:
    names: dict[str, str]  # casefolded name → file (relative)
    origins: dict[tuple[str, str, str], str]  # (format, source, uid) → file (relative)
    records: dict[tuple[str, str], str]  # (format, source) → its record file (relative)


def _scan(into: Path) -> _Existing:
    found = _Existing({}, {}, {})
    if not into.is_dir():
        return found
    for path in _entry_files(into):
        try:
            entry = parse_entry(path, into, allow_outside_links=True)
        except BibleError:
            continue  # ingest reports it; the importer only needs names and origins
        found.names.setdefault(entry.name.casefold(), entry.path)
        imp = entry.imported or {}
        if "format" in imp and "uid" in imp:
            found.origins.setdefault((str(imp["format"]), str(imp.get("source")), str(imp["uid"])), entry.path)
    for path in _entry_files(into, lb.RECORD_SUFFIX):
        try:
            data = read_record(path).data
        except BibleError:
            continue  # export reports it
        if isinstance(data, dict):
            found.records.setdefault((str(data.get("format")), str(data.get("source"))), path.relative_to(into).as_posix())
    return found


def _unique_name(name: str, taken: set[str]) -> str:
    candidate, n = name, 1
    while candidate.casefold() in taken:
        n += 1
        candidate = f"{name} ({n})"
    taken.add(candidate.casefold())
    return candidate


def _unique_file(into: Path, folder: str, stem: str, claimed: set[str], suffix: str = ".md") -> str:
    n = 1
    while True:
        rel = f"{folder}/{stem if n == 1 else f'{stem}-{n}'}{suffix}"
        if rel.casefold() not in claimed and not (into / rel).exists():
            claimed.add(rel.casefold())
            return rel
        n += 1


def _slug_source(d: lb.Draft) -> str:
    return d.name if not lb.is_regex_key(d.name) else next((k for k in d.keys if k not in d.regex_keys), d.name)


def _front(d: lb.Draft, name: str, aliases: list[str]) -> dict[str, Any]:
    front: dict[str, Any] = {"name": name}
    if aliases:
        front["aliases"] = aliases
    if d.tags:
        front["tags"] = d.tags
    if d.always:
        front["always"] = True
    if d.case_sensitive:
        front["case_sensitive"] = True
    if not d.enabled:
        front["enabled"] = False
    front["imported"] = d.imported
    return front


def import_lorebook(
    path: Path, into: Path, fmt: str | None = None, dry_run: bool = False, force: bool = False
) -> ImportReport:
    """Import one lorebook file into the bible folder ``into``; see the module docstring."""
    path, into = Path(path), Path(into)
    fmt, read = _read(path, fmt)
    drafts = read.drafts
    if into.exists() and not into.is_dir():
        raise BibleError(f"{into}: is a file; pass the bible's folder")
    report = ImportReport(source=str(path), format=fmt, into=str(into), dry_run=dry_run)
    if not drafts:
        report.warnings.append(ImportWarning(name=path.name, message="the lorebook has no entries; nothing to import"))
        return report
    existing = _scan(into)

    # Pass 1: skip what cannot be imported; find earlier imports of the same entries.
    todo: list[tuple[lb.Draft, str | None]] = []  # (draft, existing file to overwrite)
    replacing: set[str] = set()
    for d in drafts:
        if not d.body:
            report.skipped.append(SkippedEntry(name=d.name, reason="empty content"))
            continue
        earlier = existing.origins.get((fmt, path.name, d.uid))
        if earlier is not None and earlier in replacing:
            earlier = None  # two source entries share a uid: the second becomes a new file
        if earlier is not None and not force:
            report.skipped.append(SkippedEntry(name=d.name, reason=f"already imported as {earlier}; use --force to overwrite it"))
            continue
        if earlier is not None:
            replacing.add(earlier)
        todo.append((d, earlier))

    # Pass 2: final names and files, rendered in memory.
    taken = {n for n, rel in existing.names.items() if rel not in replacing}
    claimed = {rel.casefold() for rel in replacing}
    planned: list[tuple[Path, str]] = []
    for d, earlier in todo:
        name = _unique_name(d.name, taken)
        rel = earlier or _unique_file(into, d.folder, lb.slugify(_slug_source(d)), claimed)
        aliases = d.aliases(name)
        text = render_entry(_front(d, name, aliases), d.body)
        if len(text.encode("utf-8")) > MAX_ENTRY_BYTES:
            taken.discard(name.casefold())
            report.skipped.append(SkippedEntry(name=d.name, reason=f"content too long for one bible entry (over {MAX_ENTRY_BYTES // 1_000_000} MB)"))
            continue
        if name != d.name:
            d.warnings.insert(0, f"the name {d.name!r} is already used in the bible; imported as {name!r}")
        planned.append((into / rel, text))
        report.imported.append(ImportedEntry(name=name, file=rel, aliases=aliases, always=d.always, enabled=d.enabled))
        report.warnings.extend(ImportWarning(name=name, message=m) for m in d.warnings)

    # The lorebook's own fields, once: rewritten with its entries, never beside another source's.
    earlier_record = existing.records.get((fmt, path.name))
    if earlier_record is None or (force and planned):
        report.record = earlier_record or _unique_file(into, "lore", lb.slugify(path.name), claimed, lb.RECORD_SUFFIX)
        planned.append((into / report.record, RECORD_HEADER + dump_yaml(read.record)))
    if not dry_run and (report.imported or report.record):
        write_all_atomic(planned, BibleError)
    return report


RECORD_HEADER = "# The lorebook's own fields, kept once by 'b2p import' for 'b2p export' (its entries are the .md files).\n"
