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
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

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


def prose_hash(trace: ChapterTrace) -> str:
    """Identifies what a written chapter says: its beats' prose, in order (a summary is made per hash)."""
    import hashlib

    return hashlib.sha256("\n\n".join(b.text for b in sorted(trace.beats, key=lambda b: b.index)).encode("utf-8")).hexdigest()


@dataclass
class Earlier:
    """An earlier chapter as it is on disk now: its trace, or None when it is not written."""

    chapter: Chapter
    trace: ChapterTrace | None
    problem: str | None = None  # why it does not count as written (no file, unreadable trace)


@dataclass
class Place:
    """A chapter's place in its book when it is written: the chapters before it and how its scene opens."""

    book: Book
    chapter: Chapter
    earlier: list[Earlier]
    new_scene: bool  # the sheet opens with '# scene:': nothing carries over

    @property
    def number(self) -> int:
        return self.chapter.number

    def previous(self) -> Earlier | None:
        return self.earlier[-1] if self.earlier else None

    def carried(self, depth: int) -> list[list[str]]:
        """The cast at the end of the previous chapter, unless this one opens a new scene."""
        prev = self.previous()
        if self.new_scene or prev is None or prev.trace is None:
            return []
        return closing_cast(prev.trace, depth)

    def notes(self) -> list[str]:
        """What the writer should know: earlier chapters not (fully) written."""
        return [f"chapter {e.chapter.number} ({e.chapter.label(self.book.root)}) {e.problem}; chapter {self.number} goes on without it"
                for e in self.earlier if e.problem]


def place_of(book: Book, chapter: Chapter, strict: bool = False, sheet: Path | None = None) -> Place:
    """Read the earlier chapters' traces. ``strict``: an earlier chapter not written in full is an error.
    ``sheet``: the beat sheet being read as this chapter (default: the chapter's own)."""
    from b2p import trace as traces

    earlier = []
    for c in book.chapters[: chapter.number - 1]:
        problem = None
        try:
            t = traces.load(c.out)
        except ConfigError as err:
            t, problem = None, f"cannot be read ({str(err).split(': ', 1)[-1]})"
        if t is None and problem is None:
            problem = f"is not written yet (no {c.out})"
        elif t is not None and not t.beats:
            t, problem = None, "has no finished beat yet"
        elif t is not None and not t.complete:
            problem = f"is unfinished ({len(t.beats)} of {t.totals.beats} beats)"
        if problem and strict:
            raise ConfigError(f"chapter {c.number} ({c.label(book.root)}) {problem}; write it first (b2p generate {c.beats}), "
                              "or leave out --strict to go on without it")
        earlier.append(Earlier(c, t, problem))
    return Place(book, chapter, earlier, new_scene(sheet or chapter.beats))


def find_book(bible: str | Path, settings: object, read_meta: object = None) -> Book | None:
    """The book of ``bible``: a folder (``read_meta(folder)`` reads its bible.yaml), or an ingested
    bible's name (its folder and bible.yaml as the store recorded them at its last ingest)."""
    import json

    from b2p.store import Store
    from b2p.store_names import held_name, sources

    folder = Path(bible)
    if folder.is_dir():
        return Book.of(folder, read_meta(folder)) if read_meta is not None else None  # type: ignore[operator]
    catalog = Store.catalog(settings)  # type: ignore[arg-type]
    have = (catalog or {}).get(held_name(str(bible), sources(catalog or {})))
    if have is None:
        with Store.open(settings, bible=str(bible)) as st:  # type: ignore[arg-type]
            have = st.meta(str(bible))
    source, meta = have.get("source"), have.get("bible_meta")
    if not source or not Path(source).is_dir():
        return None
    return Book.of(Path(source), BibleMeta(**json.loads(meta)) if meta else BibleMeta())


# -- b2p book ----------------------------------------------------------------------------------------------


class ChapterStatus(BaseModel):
    """One chapter as ``b2p book`` shows it."""

    chapter: int
    beats_file: str
    out: str
    written: Literal["no", "partly", "yes"]
    beats: int = Field(0, description="Beats in its sheet (0 when the sheet is missing).")
    beats_done: int = 0
    words: int = 0
    stale: bool = Field(False, description="Written, but the bible, its sheet or an earlier chapter changed since.")
    why: list[str] = Field(default_factory=list, description="What changed since it was written.")


class BookStatus(BaseModel):
    """What ``b2p book --json`` prints."""

    bible: str
    root: str
    declared: bool = Field(description="The chapters are listed in bible.yaml (else found in beats/).")
    chapters: list[ChapterStatus]


def status(book: Book, bible: str, state: str) -> BookStatus:
    """Each chapter: written or not, words, and why it is stale (``state``: the bible's content state now)."""
    from b2p import trace as traces
    from b2p.beats import read_beats
    from b2p.errors import B2PError

    rows: list[ChapterStatus] = []
    now: dict[int, str | None] = {}  # chapter → sha256 of its prose now (None: not written)
    for c in book.chapters:
        row = ChapterStatus(chapter=c.number, beats_file=c.label(book.root), out=_shown(c.out, book.root), written="no")
        try:
            sheet = read_beats(c.beats)
            row.beats = len(sheet)
        except B2PError:
            sheet = None
        try:
            t = traces.load(c.out)
        except B2PError as err:
            t = None
            row.why.append(str(err))
        now[c.number] = prose_hash(t) if t is not None and t.beats else None
        if t is not None and t.beats:
            row.written = "yes" if t.complete else "partly"
            row.beats_done, row.words = len(t.beats), sum(len(b.text.split()) for b in t.beats)
            row.why += _changes(t, c, sheet, state, now)
            row.stale = bool(row.why)
        rows.append(row)
    return BookStatus(bible=bible, root=str(book.root), declared=book.declared, chapters=rows)


def _changes(t: ChapterTrace, c: Chapter, sheet: list[str] | None, state: str, now: dict[int, str | None]) -> list[str]:
    from b2p import trace as traces

    why = []
    rec = t.book
    if sheet is None:
        why.append("its beat sheet is missing")
    elif traces.sheet_hash(sheet) != t.beats_sha256:
        why.append("its beat sheet changed")
    if rec is None:
        return why + ["written outside the book (its trace has no book record)"]
    if rec.chapter != c.number:
        why.append(f"it was written as chapter {rec.chapter}")
    if rec.bible_state != state:
        why.append("the bible changed")
    then = {e.chapter: e.sha256 for e in rec.earlier}
    for k in range(1, c.number):
        before, after = then.get(k), now.get(k)
        if before != after:
            why.append(f"chapter {k} " + ("was written since" if before is None else "is gone" if after is None else "changed"))
    return why


def _shown(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)
