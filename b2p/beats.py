"""Beat sheets: one beat per non-empty line; list markers stripped; ``#`` lines are comments."""

from __future__ import annotations

import re
from pathlib import Path

from b2p.errors import BibleError
from b2p.userfiles import decode_user_text, read_user_file

_TOO_LONG = "{where} is {n:,} characters long; a beat is one plot point: split it, or raise max_beat_chars (now {limit:,})"

_MARKER = re.compile(r"^\s*(?:\(?\d+[.)]|[-*•+])\s+")


def parse_beats(text: str) -> list[str]:
    """The beats in file order (beat 1 is the first)."""
    beats = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        beat = _MARKER.sub("", line, count=1).strip()
        if beat:
            beats.append(beat)
    return beats


def read_beats(path: Path, max_chars: int | None = None) -> list[str]:
    """Read a beat sheet, or raise one clear line naming the file (and the line of a beat longer than ``max_chars``)."""
    data = read_user_file(path, "beat sheet", "a beat-sheet text file (one beat per line)")
    text = decode_user_text(data, str(path), "a beat sheet (expected text, one beat per line)")
    beats = parse_beats(text)
    if not beats:
        raise BibleError(f"{path}: no beats: write one plot point per line")
    if max_chars is not None and any(len(b) > max_chars for b in beats):
        for n, line in enumerate(text.splitlines(), 1):
            if len(line.strip()) > max_chars and not line.strip().startswith("#"):
                raise BibleError(_TOO_LONG.format(where=f"{path}:{n}: this beat", n=len(line.strip()), limit=max_chars))
    return beats


def check_beats(beats: list[str], max_chars: int) -> None:
    """Refuse a beat longer than ``max_chars`` (beats given as text, not in a sheet)."""
    for n, beat in enumerate(beats, 1):
        if len(beat) > max_chars:
            raise BibleError(_TOO_LONG.format(where="the beat" if len(beats) == 1 else f"beat {n}", n=len(beat), limit=max_chars))
