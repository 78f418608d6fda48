"""Beat sheets: one beat per non-empty line; list markers stripped; ``#`` lines are comments."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

from b2p.errors import BibleError
from b2p.userfiles import decode_user_text, read_user_file

_MARKER = re.compile(r"^\s*(?:\(?\d+[.)]|[-*•+])\s+")


def parse_beats(text: str) -> list[str]:
    """The beats in file order (beat 1 is the first)."""
    beats = []
    for line in text.splitlines():
        line = unicodedata.normalize("NFC", line.strip())  # one spelling of "Zoë", as bible names are
        if not line or line.startswith("#"):
            continue
        beat = _MARKER.sub("", line + " ", count=1).strip()  # the space: a lone "-" or "1." is a marker, not a beat
        if beat:
            beats.append(beat)
    return beats


def read_beats(path: Path) -> list[str]:
    """Read a beat sheet, or raise one clear line naming the file."""
    data = read_user_file(path, "beat sheet", "a beat-sheet text file (one beat per line)")
    text = decode_user_text(data, str(path), "a beat sheet (expected text, one beat per line)")
    beats = parse_beats(text)
    if not beats:
        raise BibleError(f"{path}: no beats: write one plot point per line")
    return beats
