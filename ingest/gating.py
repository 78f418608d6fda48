"""The book at ingest: ``chapters:`` in ``bible.yaml``, and when each entry's lore is true.

``read_chapters`` checks ``chapters:`` (each item a beat sheet, or ``{beats: …, out: …}``);
``read_gating`` checks an entry's ``from``/``until``/``aliases_from`` and its ``## From chapter N``
headings against the book's length. Every problem is one line naming the file and line: an unknown
chapter, ``from`` after ``until``, a gated section or alias that never unlocks, a gate heading
without a number. ``chapter_sizes`` measures each version of a gated body (tokens and lead at each
chapter it changes), so the view at a chapter has its sizes without a tokenizer.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from b2p import gating
from b2p.book import BEATS_DIR, default_out
from b2p.models import ChapterRef, LoreEntry
from ingest.yamldoc import YamlDoc

GATING_FIELDS = ("from", "until", "aliases_from")
_CHAPTER_KEYS = ("beats", "out")


def _is_number(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def read_chapters(value: Any, doc: YamlDoc, shown: str, root: Path) -> tuple[list[ChapterRef] | None, list[str]]:
    """``chapters:`` as ChapterRefs, and the problems with it (one line each)."""
    problems: list[str] = []
    if value is None:
        return None, problems
    if not isinstance(value, list):
        return None, [f"{shown}:{doc.line('chapters')}: 'chapters' must be a list of beat sheets, e.g. chapters: [beats/ch01.txt, beats/ch02.txt]"]
    refs: list[ChapterRef] = []
    seen: dict[str, int] = {}
    outs: dict[str, int] = {}
    for n, item in enumerate(value, start=1):
        where = f"{shown}:{doc.line('chapters', n - 1)}: chapter {n}"
        if isinstance(item, dict):
            unknown = [str(k) for k in item if k not in _CHAPTER_KEYS]
            if unknown or not isinstance(item.get("beats"), str) or not (item.get("out") is None or isinstance(item.get("out"), str)):
                problems.append(f"{where}: write a beat sheet path, or {{beats: beats/ch{n:02d}.txt, out: PATH.md}}"
                                + (f" (unknown key '{unknown[0]}')" if unknown else ""))
                continue
            ref = ChapterRef(beats=item["beats"].strip(), out=(item.get("out") or "").strip() or None)
        elif isinstance(item, str) and item.strip():
            ref = ChapterRef(beats=item.strip())
        else:
            problems.append(f"{where}: write a beat sheet path (e.g. beats/ch{n:02d}.txt)")
            continue
        sheet = (root / ref.beats).resolve()
        if str(sheet) in seen:
            problems.append(f"{where}: {ref.beats} is already chapter {seen[str(sheet)]}")
            continue
        seen[str(sheet)] = n
        out = (root / (ref.out or default_out(ref.beats))).resolve()
        if out == sheet:
            problems.append(f"{where}: the chapter would overwrite its beat sheet {ref.beats}; give it an 'out:' ending in .md")
        elif str(out) in outs:
            problems.append(f"{where}: its chapter file {out} is already chapter {outs[str(out)]}'s; give it another 'out:'")
        elif _read_as_entry(out, root):
            problems.append(f"{where}: its chapter file {out.relative_to(root.resolve()).as_posix()} would be read as a bible entry; "
                            f"put it under {BEATS_DIR}/ or outside the bible ('out:')")
        outs[str(out)] = n
        refs.append(ref)
    return refs, problems


def _read_as_entry(path: Path, root: Path) -> bool:
    """Would ingest read this file as an entry (a *.md below the bible, outside beats/ and hidden folders)?"""
    try:
        rel = path.relative_to(root.resolve())
    except ValueError:
        return False
    hidden = any(p.startswith(".") for p in rel.parts)
    return path.suffix == ".md" and not hidden and not (len(rel.parts) > 1 and rel.parts[0] == BEATS_DIR)


def book_length(root: Path, refs: list[ChapterRef] | None) -> int:
    """How many chapters the book has: the ``chapters:`` list, else the sheets in beats/."""
    if refs is not None:
        return len(refs)
    folder = root / BEATS_DIR
    return sum(1 for p in folder.glob("*.txt") if p.is_file()) if folder.is_dir() else 0


def _unknown(n: int, chapters: int | None) -> str | None:
    if chapters is None:  # read outside a bible folder's own check (one file on its own)
        return None
    if chapters == 0:
        return f"chapter {n}: the book has no chapters; list them under 'chapters:' in bible.yaml, or put beat sheets in {BEATS_DIR}/"
    if not 1 <= n <= chapters:
        return f"chapter {n} is not in the book (chapters 1–{chapters})"
    return None


def read_gating(data: dict[str, Any], doc: YamlDoc, shown: str, body: str, body_line: int, chapters: int | None) -> tuple[dict[str, Any] | None, list[str]]:
    """An entry's ``from``/``until``/``aliases_from`` (None when it has none) and every problem with
    them or with its ``## From chapter N`` headings, against a book of ``chapters`` chapters."""
    problems: list[str] = []
    out: dict[str, Any] = {}
    for key in ("from", "until"):
        if key not in data or data[key] is None:
            continue
        value = data[key]
        where = f"{shown}:{doc.line(key)}"
        if not _is_number(value) or value < 1:
            problems.append(f"{where}: '{key}' must be a chapter number (1, 2, …), not {value!r}")
            continue
        if (bad := _unknown(value, chapters)) is not None:
            problems.append(f"{where}: '{key}: {value}': {bad}")
            continue
        out[key] = value
    lo, hi = out.get("from"), out.get("until")
    if lo is not None and hi is not None and lo > hi:
        problems.append(f"{shown}:{doc.line('from')}: 'from: {lo}' is after 'until: {hi}': the entry would never be true")
    later = data.get("aliases_from")
    if later is not None:
        where = f"{shown}:{doc.line('aliases_from')}"
        if not isinstance(later, dict):
            problems.append(f"{where}: 'aliases_from' must map a chapter to aliases, e.g. aliases_from: {{12: [the lost heir]}}")
        else:
            opened: dict[str, list[str]] = {}
            for k, als in later.items():
                at = f"{shown}:{doc.line('aliases_from', str(k))}"
                if not _is_number(k) or k < 1:
                    problems.append(f"{at}: 'aliases_from' keys are chapter numbers, not {k!r}")
                    continue
                if not isinstance(als, list) or not als or not all(isinstance(a, (str, int, float)) and not isinstance(a, bool) and str(a).strip() for a in als):
                    problems.append(f"{at}: 'aliases_from: {k}' must be a list of aliases, e.g. {{{k}: [the lost heir]}}")
                    continue
                if (bad := _unknown(k, chapters)) is not None:
                    problems.append(f"{at}: 'aliases_from: {k}': {bad}")
                elif hi is not None and k > hi:
                    problems.append(f"{at}: 'aliases_from: {k}' never unlocks: the entry stops being true after chapter {hi} ('until')")
                else:
                    opened[str(k)] = [_nfc(str(a)) for a in als]
            if opened:
                out["aliases_from"] = opened
    for h in gating.headings(body):
        at = f"{shown}:{body_line + h.line - 1}"
        if h.gate is None:
            if gating.LOOKS_LIKE_GATE.match(h.title):
                problems.append(f"{at}: '{'#' * h.level} {h.title}': write the chapter as a number, e.g. '{'#' * h.level} From chapter 12'")
            continue
        if (bad := _unknown(h.gate, chapters)) is not None:
            problems.append(f"{at}: '{'#' * h.level} {h.title}': {bad}")
        elif hi is not None and h.gate > hi:
            problems.append(f"{at}: '{'#' * h.level} {h.title}' never unlocks: the entry stops being true after chapter {hi} ('until')")
    return (out or None), problems


def is_gated(e: LoreEntry) -> bool:
    """Front matter gating, or a '## From chapter N' section: chunked and hashed as a gated entry."""
    return gating.is_gated(e)


def _nfc(value: str) -> str:
    import unicodedata

    return unicodedata.normalize("NFC", value.strip())


def chapter_sizes(e: LoreEntry, tokenize: Callable[[str], list[int]], lead_of: Callable[[str, Callable[[str], list[int]]], str]) -> list[list[Any]]:
    """[first chapter, tokens, lead, lead tokens] of each version of a gated body; [] for an ungated one."""
    if not gating.gates(e.text):
        return []
    out = []
    for start in gating.variant_starts(e.text):
        text = gating.text_at(e.text, start)
        lead = lead_of(text, tokenize)
        out.append([start, len(tokenize(f"{e.name}: {text}")), lead, len(tokenize(f"{e.name}: {lead}"))])
    return out
