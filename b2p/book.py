"""A book: a bible's chapters in order, where each is written, and what each written one left behind.

The chapters are ``chapters:`` in ``bible.yaml`` (each a beat sheet, or ``{beats: …, out: …}``
with the chapter file's path), else every ``beats/*.txt`` in natural name order (``ch2`` before
``ch10``). Paths are relative to the bible folder; a chapter is written beside its sheet
(``beats/ch03.txt`` → ``beats/ch03.md``, trace ``beats/ch03.trace.json``) unless ``out`` says
otherwise. Chapter N is the N-th (1-based): the number ``from:``/``until:``/``## From chapter N``
speak of.

``Place`` is what a chapter takes from the book when it is written: the view of the bible at its
number (``b2p.gating``), the earlier chapters' summaries (``b2p.chapters``) and the cast on stage
at the end of the chapter before, unless its sheet opens with a ``# scene:`` line (a new scene).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from b2p.errors import ConfigError
from b2p.models import BibleMeta, ChapterRef

if TYPE_CHECKING:
    from b2p.trace import ChapterTrace

BEATS_DIR = "beats"
SHEET_SUFFIX = ".txt"
NEW_SCENE = re.compile(r"^#\s*scene\s*:", re.IGNORECASE)


def natural_key(name: str) -> list[object]:
    """'ch2' before 'ch10': digits compare as numbers."""
    return [int(p) if p.isdigit() else p.casefold() for p in re.split(r"(\d+)", name)]


def default_out(beats: str) -> str:
    """Where a chapter is written when ``out`` is not given: beside its beat sheet, as Markdown."""
    return str(Path(beats).with_suffix(".md"))


@dataclass(frozen=True)
class Chapter:
    """One chapter of a book: its number, beat sheet and chapter file (absolute paths)."""

    number: int
    beats: Path
    out: Path

    def label(self, root: Path) -> str:
        try:
            return self.beats.relative_to(root).as_posix()
        except ValueError:
            return str(self.beats)


@dataclass
class Book:
    """A bible folder's chapters, in order."""

    root: Path
    chapters: list[Chapter] = field(default_factory=list)
    declared: bool = False  # listed in bible.yaml (else found in beats/)

    @classmethod
    def of(cls, root: Path, meta: BibleMeta) -> Book:
        """The book of the bible in ``root``: ``meta.chapters`` (bible.yaml), else beats/*.txt."""
        root = root.resolve()
        refs = meta.chapters
        declared = refs is not None
        if refs is None:
            folder = root / BEATS_DIR
            sheets = sorted((p.name for p in folder.glob(f"*{SHEET_SUFFIX}") if p.is_file()), key=natural_key) if folder.is_dir() else []
            refs = [ChapterRef(beats=f"{BEATS_DIR}/{name}") for name in sheets]
        chapters = [Chapter(n, (root / r.beats).resolve(), (root / (r.out or default_out(r.beats))).resolve())
                    for n, r in enumerate(refs, start=1)]
        return cls(root, chapters, declared)

    def __len__(self) -> int:
        return len(self.chapters)

    def chapter(self, number: int) -> Chapter:
        """Chapter ``number`` (1-based), or one line saying how many there are."""
        if not 1 <= number <= len(self.chapters):
            have = f"chapters 1–{len(self.chapters)}" if self.chapters else "no chapters (list them under 'chapters:' in bible.yaml, or put beat sheets in beats/)"
            raise ConfigError(f"--chapter {number}: the book in {self.root} has {have}")
        return self.chapters[number - 1]

    def chapter_of(self, sheet: Path) -> Chapter | None:
        """The chapter whose beat sheet ``sheet`` is, if any."""
        want = sheet.resolve()
        return next((c for c in self.chapters if c.beats == want), None)


def new_scene(sheet: Path) -> bool:
    """Does the sheet open a new scene: a ``# scene:`` comment line before its first beat?"""
    try:
        text = sheet.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if not line.startswith("#"):
            return False
        if NEW_SCENE.match(line):
            return True
    return False


def closing_cast(trace: ChapterTrace, depth: int) -> list[list[str]]:
    """Who is on stage at the end of a written chapter: the entries each of its last ``depth`` beats
    involved (not the ``always`` ones), oldest first — as a sheet's own earlier beats carry its scene."""
    beats = sorted(trace.beats, key=lambda b: b.index)[-depth:] if depth > 0 else []
    return [[p.id for p in b.lore if p.reason != "always"] for b in beats]
