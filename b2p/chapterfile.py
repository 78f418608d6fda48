"""The chapter file as the writer has it: each beat's prose between two marker lines, and the writer's
own text around them.

    # The Lantern at Site Nine

    <!-- b2p beat 1 -->
    Jack and Xander worked the trench …
    <!-- /b2p beat 1 -->

    <!-- b2p beat 2 -->
    …
    <!-- /b2p beat 2 -->

The markers are HTML comments on lines of their own, so rendered Markdown never shows them. Inside a
beat, blank lines around the prose, trailing spaces and CRLF line ends (what editors add) are not
edits: a beat's text is compared *normalised* (``normalise``). Everything outside the markers — the
title, a scene break, notes before the first beat or after the last — is the writer's and is copied
through every rewrite byte for byte; so is every beat b2p is not rewriting.

``read_chapter`` / ``parse_chapter`` read a file (one ``ConfigError`` line naming the line that broke
the markers, and how to recover); ``ChapterFile.with_beats`` splices new prose in; ``dumps`` gives the
text to save. ``changed_beats`` compares a file with the hashes b2p saved (the trace keeps them).
This module reads and renders; ``b2p.resume`` and ``b2p.writer`` decide when.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from b2p.errors import ConfigError

_OPEN = re.compile(r"<!--\s*b2p\s+beat\s+(\d+)\s*-->", re.I)
_CLOSE = re.compile(r"<!--\s*/\s*b2p\s+beat\s+(\d+)\s*-->", re.I)
_ANY = re.compile(r"<!--\s*/?\s*b2p\s+beat\b", re.I)

RECOVER = ("nothing was written: put the markers back (each beat's prose between <!-- b2p beat N --> and "
           "<!-- /b2p beat N -->, in order), or move the file aside and run with --resume to rebuild it from its trace")


def open_marker(index: int) -> str:
    return f"<!-- b2p beat {index} -->"


def close_marker(index: int) -> str:
    return f"<!-- /b2p beat {index} -->"


def normalise(text: str) -> str:
    """A beat's text as compared: LF line ends, no trailing spaces, no blank lines around it."""
    lines = [ln.rstrip() for ln in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


def defuse(text: str) -> str:
    """A beat's text as b2p writes it between its markers: normalised, and with anything that looks like
    a b2p marker (a model could write one) made inert, so no text can break the chapter's structure."""
    return _ANY.sub(lambda m: "&lt;" + m.group(0)[1:], normalise(text))


def text_hash(text: str) -> str:
    """The hash the trace keeps of a beat's text as saved in the chapter (``saved_sha256``)."""
    return hashlib.sha256(normalise(text).encode("utf-8")).hexdigest()


def saved_hash(text: str) -> str:
    """The hash of ``text`` once written into a chapter by b2p."""
    return text_hash(defuse(text))


@dataclass
class Block:
    """One beat's lines in the file: its open marker, the prose, its close marker."""

    index: int
    lines: list[str]
    line: int  # 1-based line of the open marker (0 for a block not yet saved)

    @property
    def text(self) -> str:
        """The prose between the markers, normalised."""
        return normalise("\n".join(self.lines[1:-1]))

    @classmethod
    def of(cls, index: int, text: str) -> Block:
        return cls(index, [open_marker(index), *defuse(text).split("\n"), close_marker(index)], 0)


@dataclass
class ChapterFile:
    """A chapter file: ``gaps[0]``, ``blocks[0]``, ``gaps[1]``, …, ``blocks[-1]``, ``gaps[-1]`` (lines).

    ``marked`` is False for a file with no markers at all (written before b2p marked beats, or not by b2p)."""

    gaps: list[list[str]] = field(default_factory=lambda: [[""]])
    blocks: list[Block] = field(default_factory=list)
    crlf: bool = False
    bom: bool = False
    marked: bool = True

    @property
    def beats(self) -> dict[int, str]:
        """Each beat's prose as the file has it (normalised), by beat number."""
        return {b.index: b.text for b in self.blocks}

    @property
    def between(self) -> list[str]:
        """The writer's text around the beats: before the first, between each two, after the last."""
        return ["\n".join(g) for g in self.gaps]

    def hashes(self) -> dict[int, str]:
        return {b.index: text_hash(b.text) for b in self.blocks}

    def line_of(self, index: int) -> int:
        return next((b.line for b in self.blocks if b.index == index), 0)

    def with_beats(self, texts: Mapping[int, str], replace: set[int] | frozenset[int] = frozenset()) -> ChapterFile:
        """This file with ``texts`` spliced in: a beat not in the file is inserted after the beat before it
        (or before the first), a beat in ``replace`` gets the new text; every other line is kept as is."""
        gaps = [list(g) for g in self.gaps]
        blocks = [Block.of(b.index, texts[b.index]) if b.index in replace else b for b in self.blocks]
        for index in sorted(set(texts) - {b.index for b in blocks}):
            new = Block.of(index, texts[index])
            if not blocks:
                head = list(gaps[0])
                while head and not head[-1].strip():
                    head.pop()
                gaps, blocks = [[*head, ""] if head else [], [""]], [new]
                continue
            after = [k for k, b in enumerate(blocks) if b.index < index]
            if after:  # right after the beat before it; the writer's text that followed now follows the new beat
                k = after[-1] + 1
                blocks.insert(k, new)
                gaps.insert(k, [""])
            else:  # before the first beat, after the writer's text that precedes it
                blocks.insert(0, new)
                gaps.insert(1, [""])
        return ChapterFile(gaps, blocks, self.crlf, self.bom, True)

    def dumps(self) -> str:
        lines: list[str] = []
        for gap, block in zip(self.gaps, [*self.blocks, None], strict=True):
            lines += gap
            if block is not None:
                lines += block.lines
        text = "\n".join(lines)
        return ("\ufeff" if self.bom else "") + (text.replace("\n", "\r\n") if self.crlf else text)


def new_chapter(title: str | None, texts: Mapping[int, str]) -> ChapterFile:
    """A chapter b2p writes afresh: the title, then each beat, a blank line between."""
    head = ChapterFile([[f"# {title}", ""] if title else []], [])
    return head.with_beats(texts)


def legacy_text(title: str | None, texts: list[str]) -> str:
    """How b2p rendered a chapter before it marked beats (to recognise an unedited old chapter)."""
    parts = [f"# {title}"] if title else []
    parts += [t.strip() for t in texts if t.strip()]
    return "\n\n".join(parts) + "\n"


def _damaged(shown: str, line: int, problem: str) -> ConfigError:
    where = f"{shown}:{line}" if line else shown
    return ConfigError(f"{where}: {problem}; {RECOVER}")


def parse_chapter(text: str, shown: str) -> ChapterFile:
    """The chapter's beats and the writer's text around them. A ``ConfigError`` (one line, with the line
    number and how to recover) when markers are unclosed, mismatched, duplicated or out of order."""
    bom = text.startswith("\ufeff")
    text = text.removeprefix("\ufeff")
    crlf = "\r\n" in text
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    gaps: list[list[str]] = [[]]
    blocks: list[Block] = []
    seen: dict[int, int] = {}
    current: Block | None = None
    for n, line in enumerate(lines, start=1):
        bare = line.strip()
        opened, closed = _OPEN.fullmatch(bare), _CLOSE.fullmatch(bare)
        if opened:
            index = int(opened.group(1))
            if current is not None:
                raise _damaged(shown, n, f"beat {index} opens before beat {current.index} (line {current.line}) is closed")
            if index in seen:
                raise _damaged(shown, n, f"beat {index} appears twice (also at line {seen[index]})")
            if blocks and index < blocks[-1].index:
                raise _damaged(shown, n, f"beat {index} comes after beat {blocks[-1].index}")
            seen[index] = n
            current = Block(index, [line], n)
        elif closed:
            index = int(closed.group(1))
            if current is None:
                raise _damaged(shown, n, f"{close_marker(index)} closes a beat that was not opened")
            if index != current.index:
                raise _damaged(shown, n, f"{close_marker(index)} closes beat {current.index} (opened at line {current.line})")
            current.lines.append(line)
            blocks.append(current)
            gaps.append([])
            current = None
        elif _ANY.search(line):
            raise _damaged(shown, n, "a b2p marker must be on a line of its own")
        elif current is not None:
            current.lines.append(line)
        else:
            gaps[-1].append(line)
    if current is not None:
        raise _damaged(shown, current.line, f"beat {current.index} is never closed ({close_marker(current.index)} is missing)")
    return ChapterFile(gaps, blocks, crlf, bom, marked=bool(blocks))


def read_chapter(path: Path | str) -> ChapterFile:
    """Read and parse a chapter file (regular files only; UTF-8). One ``ConfigError`` line if it cannot be."""
    from b2p.userfiles import read_user_file

    path = Path(path)
    data = read_user_file(path, "chapter", "a chapter file written by 'b2p generate -o'", error=ConfigError)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise ConfigError(f"{path}:{line}: not UTF-8 text; re-save the chapter as UTF-8") from None
    return parse_chapter(text, str(path))


def changed_beats(doc: ChapterFile, saved: Mapping[int, str], stale: Mapping[int, str], shown: str) -> dict[int, str]:
    """The beats the writer changed, ``{beat: their text}``.

    ``saved[k]`` is the hash of beat k's text as b2p last saved it; ``stale[k]`` is what the file may still
    hold after a save that was interrupted (the hash of the previous text, or ``""``: no such beat yet), which
    is not an edit. A beat b2p saved whose markers are gone, or a beat in the file that b2p never saved, is a
    damaged file: a ``ConfigError`` that says how to recover."""
    for block in doc.blocks:
        if block.index not in saved:
            raise _damaged(shown, block.line, f"beat {block.index} is not in the chapter's trace")
    have = doc.hashes()
    edits = {}
    for index, h in saved.items():
        if index not in have:
            if stale.get(index) == "":
                continue
            raise _damaged(shown, 0, f"the markers of beat {index} are missing")
        if have[index] not in (h, stale.get(index)):
            edits[index] = doc.beats[index]
    return edits
