"""Beat sheets: one beat per non-empty line; list markers stripped; ``#`` lines are comments.

A comment on the sheet's first line that is not a directive (``# scene:``: a lower-case word and a colon)
is the chapter's heading: ``# Chapter 1 — The Emerald Stair``.

A line may end with the writer's overrides of the lore b2p picks: ``+Name`` forces an entry in,
``-Name`` keeps one out (name or alias, case-insensitive), e.g.
``Corin waits at the gate. +Corin Marsh -Mercy``. Each override starts with a space, then ``+``
or ``-`` and a letter; they are taken off the beat's text, so they never reach the prose prompt.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

from b2p.errors import BibleError
from b2p.userfiles import decode_user_text, read_user_file

_TOO_LONG = "{where} is {n:,} characters long; a beat is one plot point: split it, or raise max_beat_chars (now {limit:,})"

_MARKER = re.compile(r"^\s*(?:\(?\d+[.)]|[-*•+])\s+")
_OVERRIDE = re.compile(r"\s(?=[+-][^\W\d_])")


class Beat(str):
    """A beat's text (the string itself) and the writer's overrides taken off its end:
    ``(("+", "Corin Marsh"), ("-", "Mercy"))``."""

    overrides: tuple[tuple[str, str], ...] = ()

    def __new__(cls, text: str, overrides: tuple[tuple[str, str], ...] = ()) -> Beat:
        beat = super().__new__(cls, text)
        beat.overrides = overrides
        return beat


def parse_beat(line: str) -> Beat:
    """One beat line: its text, and its trailing ``+Name`` / ``-Name`` overrides."""
    line = unicodedata.normalize("NFC", line)  # one spelling of "Zoë", as bible names are
    pieces = _OVERRIDE.split(line.strip())
    n = len(pieces)
    while n > 1 and pieces[n - 1][:1] in "+-":
        n -= 1
    text = " ".join(pieces[:n]).strip()
    overrides = tuple((p[0], " ".join(p[1:].split())) for p in pieces[n:] if p[1:].strip())
    return Beat(text, overrides) if text else Beat(line.strip())


def parse_beats(text: str) -> list[Beat]:
    """The beats in file order (beat 1 is the first)."""
    beats = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        beat = _MARKER.sub("", line + " ", count=1).strip()  # the space: a lone "-" or "1." is a marker, not a beat
        if beat:
            beats.append(parse_beat(beat))
    return beats


_DIRECTIVE = re.compile(r"^[a-z][a-z_-]*\s*:")


def parse_heading(text: str) -> str | None:
    """The chapter heading: the sheet's first non-empty line when it is a ``#`` comment and not a directive."""
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        heading = unicodedata.normalize("NFC", line.lstrip("#").strip()) if line.startswith("#") else ""
        return heading if heading and not _DIRECTIVE.match(heading) else None
    return None


def read_heading(path: Path) -> str | None:
    """The heading of the beat sheet at ``path`` (see ``parse_heading``); None when it has none."""
    data = read_user_file(path, "beat sheet", "a beat-sheet text file (one beat per line)")
    return parse_heading(decode_user_text(data, str(path), "a beat sheet (expected text, one beat per line)"))


def read_beats(path: Path, max_chars: int | None = None) -> list[Beat]:
    """Read a beat sheet, or raise one clear line naming the file (and the line of a beat longer than ``max_chars``)."""
    data = read_user_file(path, "beat sheet", "a beat-sheet text file (one beat per line)")
    text = decode_user_text(data, str(path), "a beat sheet (expected text, one beat per line)")
    beats = parse_beats(text)
    if not beats:
        raise BibleError(f"{path}: no beats: write one plot point per line")
    if max_chars is not None and any(len(b) > max_chars for b in beats):
        for n, line in enumerate(text.splitlines(), 1):
            beat = parse_beats(line) if len(line) > max_chars else []
            if beat and len(beat[0]) > max_chars:
                raise BibleError(_TOO_LONG.format(where=f"{path}:{n}: this beat", n=len(beat[0]), limit=max_chars))
    return beats


def check_beats(beats: list[str], max_chars: int) -> None:
    """Refuse a beat longer than ``max_chars`` (beats given as text, not in a sheet)."""
    for n, beat in enumerate(beats, 1):
        if len(beat) > max_chars:
            raise BibleError(_TOO_LONG.format(where="the beat" if len(beats) == 1 else f"beat {n}", n=len(beat), limit=max_chars))
