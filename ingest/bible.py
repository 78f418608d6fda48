"""Read a story-bible folder into validated ``LoreEntry`` objects.

Every file is checked before anything is written; all problems are reported at once as
``path:line: message`` so the writer can fix a whole bible in one pass.
"""

from __future__ import annotations

import os
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from b2p.errors import BibleError, did_you_mean
from b2p.lexicon import norm_kind
from b2p.models import BibleMeta, LoreEntry
from b2p.userfiles import decode_user_text, read_user_file
from ingest.gating import GATING_FIELDS, book_length, read_chapters, read_gating
from ingest.yamldoc import YamlDoc, load_yaml

BIBLE_FILE = "bible.yaml"
BEATS_DIR = "beats"
MAX_ENTRY_BYTES = 1_000_000  # a longer entry would swamp any prompt budget; ask for a split
MAX_RECORD_BYTES = 64_000_000  # an imported lorebook's own fields: as large as the lorebooks import reads
FIELDS = ("name", "aliases", "kind", "tags", "always", "case_sensitive", "id", "enabled", "imported", *GATING_FIELDS)
OUTSIDE_LINKS = "allow_outside_links"  # bible.yaml: read *.md symlinks that point outside the bible
# Characters that show nothing on their own: controls, format characters (zero-width space and
# joiners, the BOM, soft hyphen), separators, lone combining marks, and the letters that render blank.
_INVISIBLE_CATEGORIES = {"Cc", "Cf", "Zs", "Zl", "Zp", "Mn", "Me"}
_BLANK_LETTERS = {"\u115f", "\u1160", "\u3164", "\uffa0", "\u2800"}


@dataclass
class Bible:
    """A parsed bible folder."""

    root: Path
    name: str
    meta: BibleMeta
    entries: list[LoreEntry]
    warnings: list[str] = field(default_factory=list)


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _entry_files(root: Path, suffix: str = ".md") -> list[Path]:
    """Every ``*.md`` (or ``*<suffix>``) below root, skipping the top-level ``beats/`` and hidden folders.

    ``os.walk`` without ``followlinks`` never enters a symlinked folder, so a symlink loop
    cannot hang us; symlinked *files* are read like any other.
    """
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        dirnames[:] = sorted(
            d for d in dirnames if not d.startswith(".") and not (here == root and d == BEATS_DIR)
        )
        found.extend(here / f for f in sorted(filenames) if f.endswith(suffix) and not f.startswith("."))
    return found


def _read_text(path: Path, shown: str) -> str:
    """The file as UTF-8 text, or a BibleError naming the line that is not."""
    data = read_user_file(path, "file", "a Markdown text file", shown=f"{shown}:1", max_bytes=MAX_ENTRY_BYTES,
                          too_big=f"entry is {{mb:.1f}} MB; split it into entries under {MAX_ENTRY_BYTES // 1_000_000} MB")
    return decode_user_text(data, shown, "Markdown text")

def _split_front_matter(text: str, shown: str) -> tuple[str, str, int]:
    """(front matter, body, line number where the body starts)."""
    lines = text.split("\n")
    if not lines or lines[0].strip() != "---":
        raise BibleError(f"{shown}:1: missing YAML front matter: the file must start with a '---' line, then 'name: ...', then '---'")
    for i in range(1, len(lines)):
        if lines[i].strip() in ("---", "..."):
            return "\n".join(lines[1:i]), "\n".join(lines[i + 1 :]), i + 2
    raise BibleError(f"{shown}:1: front matter is never closed: add a '---' line after it")


def read_record(path: Path) -> YamlDoc:
    """A YAML file b2p keeps inside a bible (an imported lorebook's record), read as safely as an entry."""
    shown = str(path)
    data = read_user_file(path, "file", "a YAML file", shown=f"{shown}:1", max_bytes=MAX_RECORD_BYTES,
                          too_big=f"file is {{mb:.0f}} MB; a lorebook record is at most {MAX_RECORD_BYTES // 1_000_000} MB")
    return load_yaml(decode_user_text(data, shown, "YAML text"), shown)


def read_front_matter(path: Path) -> tuple[YamlDoc, str, int]:
    """An entry file's parsed front matter (with its keys' lines), its body, and the body's first line."""
    shown = str(path)
    front, body, body_line = _split_front_matter(_read_text(path, shown), shown)
    doc = load_yaml(front, shown, first_line=2, label="bad YAML in front matter")
    if doc.data is None:
        doc.data = {}
    return doc, body, body_line


def strip_invisible(text: str) -> str:
    """``text`` without the characters that show nothing (see ``_INVISIBLE_CATEGORIES``)."""
    return "".join(c for c in text if unicodedata.category(c) not in _INVISIBLE_CATEGORIES and c not in _BLANK_LETTERS)


def _nfc(value: str) -> str:
    """One spelling per name: "Zoë" typed as one character or as e + combining diaeresis is the same key."""
    return unicodedata.normalize("NFC", value.strip())


def _string_list(value: Any, key: str, shown: str, line: int) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, (str, int, float)) and not isinstance(v, bool) and strip_invisible(str(v)) for v in value):
        example = f"{key}: [{value!r}]" if isinstance(value, str) else f"{key}: [first, second]"
        raise BibleError(f"{shown}:{line}: '{key}' must be a list of non-empty strings, e.g. {example}")
    return [_nfc(str(v)) for v in value]


def _default_kind(rel: Path) -> str:
    if len(rel.parts) == 1:
        return "lore"
    top = rel.parts[0]
    return top[:-1] if top.endswith("s") and len(top) > 1 else top


def _outside(path: Path, root: Path) -> Path | None:
    """Where a symlinked entry really is, when that is outside the bible folder."""
    if not path.is_symlink():
        return None
    real = path.resolve()
    return None if real.is_relative_to(root.resolve()) else real


def parse_entry(path: Path, root: Path, allow_outside_links: bool = False) -> LoreEntry:
    """One ``*.md`` file → a validated ``LoreEntry`` (hash/tokens/pronouns filled in later)."""
    return _parse_entry(path, root, allow_outside_links)[0]


def _parse_entry(path: Path, root: Path, allow_outside_links: bool = False, chapters: int | None = None) -> tuple[LoreEntry, int]:
    """(the entry, the file line of its name). ``chapters``: the book's length, to check chapter references against."""
    shown = str(path)
    doc, body, body_line = read_front_matter(path)
    real = None if allow_outside_links else _outside(path, root)
    if real is not None:
        raise BibleError(f"{shown}:1: a link to {real}, outside the bible; copy the file in, or set '{OUTSIDE_LINKS}: true' in {BIBLE_FILE}")
    data = doc.data
    if not isinstance(data, dict):
        raise BibleError(f"{shown}:2: front matter must be 'key: value' lines, e.g. 'name: Jack Harlan'")
    problems: list[str] = []
    for key in data:
        if str(key) not in FIELDS:
            problems.append(f"{shown}:{doc.line(str(key))}: unknown field '{key}'{did_you_mean(str(key), FIELDS)}")
    if problems:
        raise BibleError(problems)
    line = doc.line

    name = data.get("name")
    if name is None or (isinstance(name, str) and not name.strip()):
        raise BibleError(f"{shown}:{line('name') if 'name' in data else 1}: missing 'name': add 'name: <the entry's name>' to the front matter")
    if not isinstance(name, (str, int, float)) or isinstance(name, bool):
        raise BibleError(f"{shown}:{line('name')}: 'name' must be a string")
    if not strip_invisible(str(name)):
        raise BibleError(f"{shown}:{line('name')}: 'name' has only invisible characters ({_codepoints(str(name))}); write the entry's name")
    for key in ("always", "case_sensitive", "enabled"):
        if key in data and not isinstance(data[key], bool):
            raise BibleError(f"{shown}:{line(key)}: '{key}' must be true or false, not {data[key]!r}")
    for key in ("kind", "id"):
        if key in data and (not isinstance(data[key], str) or not data[key].strip()):
            raise BibleError(f"{shown}:{line(key)}: '{key}' must be a non-empty string")
    imported = data.get("imported")
    if imported is not None and not isinstance(imported, dict):
        raise BibleError(f"{shown}:{line('imported')}: 'imported' must be a mapping of the original tool's fields")
    if not body.strip():
        raise BibleError(f"{shown}:{body_line}: empty body: write the entry's lore below the front matter")
    text_line = body_line + body[: len(body) - len(body.lstrip())].count("\n")  # the file line the entry's text starts on
    gating, problems = read_gating(data, doc, shown, body.strip(), text_line, chapters)
    if problems:
        raise BibleError(problems)
    rel = path.relative_to(root)
    entry = LoreEntry(
        id=(data.get("id") or rel.with_suffix("").as_posix()).strip(),
        name=_nfc(str(name)),
        aliases=_string_list(data.get("aliases"), "aliases", shown, line("aliases")),
        kind=norm_kind(data.get("kind") or _default_kind(rel)),
        tags=_string_list(data.get("tags"), "tags", shown, line("tags")),
        always=data.get("always", False),
        case_sensitive=data.get("case_sensitive", False),
        enabled=data.get("enabled", True),
        imported=imported,
        text=body.strip(),
        path=rel.as_posix(),
        gating=gating,
    )
    return entry, line("name")


def _codepoints(text: str) -> str:
    return " ".join(f"U+{ord(c):04X}" for c in text[:8]) + (" …" if len(text) > 8 else "")


def parse_meta(root: Path) -> BibleMeta:
    return _parse_meta(root)[0]


def _parse_meta(root: Path) -> tuple[BibleMeta, bool]:
    """(``bible.yaml``'s writing defaults, whether it allows links outside the bible)."""
    path = root / BIBLE_FILE
    if not path.is_file():
        return BibleMeta(), False
    shown = str(path)
    doc = load_yaml(_read_text(path, shown), shown, first_line=1)
    data = {} if doc.data is None else doc.data
    if not isinstance(data, dict):
        raise BibleError(f"{shown}:1: expected 'key: value' lines (title, pov, tense, style)")
    fields = [*BibleMeta.model_fields, OUTSIDE_LINKS]
    problems = []
    chapters, problems = read_chapters(data.get("chapters"), doc, shown, root)
    for key, value in data.items():
        if key not in fields:
            problems.append(f"{shown}:{doc.line(str(key))}: unknown field '{key}'{did_you_mean(str(key), fields)}")
        elif key == OUTSIDE_LINKS and not isinstance(value, bool):
            problems.append(f"{shown}:{doc.line(key)}: '{key}' must be true or false, not {value!r}")
        elif key not in (OUTSIDE_LINKS, "chapters") and value is not None and not isinstance(value, str):
            problems.append(f"{shown}:{doc.line(str(key))}: '{key}' must be a string")
    if problems:
        raise BibleError(problems)
    allow = bool(data.pop(OUTSIDE_LINKS, False))
    return BibleMeta(**(data | {"chapters": chapters})), allow


def bible_name(root: Path) -> str:
    return root.resolve().name


def bible_fingerprint(root: Path, settle_seconds: float = 2.0) -> str:
    """Every file a bible is read from, by path, size and modification time, as one hash; "" when
    a file changed in the last ``settle_seconds`` (a later edit in the same clock tick could keep its
    size and time: such a fingerprint would vouch for content it never saw, as git's "racy" files)."""
    import hashlib
    import time

    root = root.resolve()
    h = hashlib.sha256(str(root).encode())
    newest = 0
    for path in [root / BIBLE_FILE, *_entry_files(root)]:
        try:
            st = path.stat()
        except OSError:
            h.update(f"{_rel(path, root)}\0missing\n".encode())
            continue
        newest = max(newest, st.st_mtime_ns)
        h.update(f"{_rel(path, root)}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}\n".encode())
    if time.time_ns() - newest < settle_seconds * 1e9:
        return ""
    return h.hexdigest()


def read_bible(root: Path) -> Bible:
    """Parse and validate a whole bible folder. Raises ``BibleError`` listing every problem."""
    if not root.exists():
        raise BibleError(f"{root}: no such folder")
    if not root.is_dir():
        raise BibleError(f"{root}: is a file; pass the bible's folder (the one holding characters/, places/, …)")
    problems: list[str] = []
    entries: list[LoreEntry] = []
    name_lines: dict[str, int] = {}
    try:
        meta, allow_outside = _parse_meta(root)
    except BibleError as err:
        problems.extend(err.problems)
        meta, allow_outside = BibleMeta(), False
    chapters = None if problems else book_length(root, meta.chapters)  # what from/until/'## From chapter N' may name
    for path in _entry_files(root):
        try:
            entry, name_lines[path.relative_to(root).as_posix()] = _parse_entry(path, root, allow_outside, chapters)
            entries.append(entry)
        except BibleError as err:
            problems.extend(err.problems)
    if not entries and not problems:
        raise BibleError(f"{root}: no entries: a bible needs at least one *.md file with front matter (see README, 'Story-bible format')")
    warnings = _check_unique(entries, root, problems, name_lines)
    if problems:
        raise BibleError(problems)
    return Bible(root=root, name=bible_name(root), meta=meta, entries=entries, warnings=warnings)


def _check_unique(entries: list[LoreEntry], root: Path, problems: list[str], name_lines: dict[str, int]) -> list[str]:
    by_name: dict[str, LoreEntry] = {}
    by_id: dict[str, LoreEntry] = {}
    for e in entries:
        shown = str(root / e.path)
        first = by_name.setdefault(e.name.casefold(), e)
        if first is not e:
            problems.append(f"{shown}:{name_lines[e.path]}: name '{e.name}' is already used by {root / first.path}; names must be unique")
        first = by_id.setdefault(e.id, e)
        if first is not e:
            problems.append(f"{shown}:1: id '{e.id}' is already used by {root / first.path}")
    warnings: list[str] = []
    claimed: dict[str, LoreEntry] = {}
    for e in entries:
        for key in dict.fromkeys(k.casefold() for k in e.keys()):
            other = claimed.setdefault(key, e)
            if other is not e:
                warnings.append(
                    f"alias '{key}' is claimed by both {root / other.path} and {root / e.path}; "
                    "a beat using it pulls in whichever is on stage, or both"
                )
    return warnings
