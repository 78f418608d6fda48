"""Reading a file the writer named: a bible entry, a beat sheet, a lorebook, a config.

Every way it can go wrong is one line naming the file and what to pass instead, never a traceback,
and never a hang: a FIFO would block forever and /dev/zero never ends, so only regular files are read.
"""

from __future__ import annotations

import stat
from pathlib import Path

from b2p.errors import B2PError, BibleError


def read_user_file(
    path: Path,
    kind: str,
    expect: str,
    *,
    error: type[B2PError] = BibleError,
    shown: str | None = None,
    max_bytes: int | None = None,
    too_big: str = "",
) -> bytes:
    """The file's bytes. ``kind`` names it in messages ("beat sheet"), ``expect`` says what to pass
    instead ("a beat-sheet text file"); ``too_big`` is the message past ``max_bytes`` ({mb} = size in MB)."""
    shown = shown or str(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        if not path.is_symlink():
            raise error(f"{shown}: {kind} not found") from None
        raise error(f"{shown}: cannot read {kind}: No such file or directory (a dangling link)") from None
    except OSError as err:
        raise error(f"{shown}: cannot read {kind}: {err.strerror}") from None
    if stat.S_ISDIR(st.st_mode):
        raise error(f"{shown}: is a folder; pass {expect}")
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{shown}: not a regular file; pass {expect}")
    if max_bytes is not None and st.st_size > max_bytes:
        raise error(f"{shown}: " + too_big.format(mb=st.st_size / 1e6))
    try:
        return path.read_bytes()
    except OSError as err:
        raise error(f"{shown}: cannot read {kind}: {err.strerror}") from None


def decode_user_text(data: bytes, shown: str, what: str, error: type[B2PError] = BibleError) -> str:
    """UTF-8 text (BOM dropped, newlines normalised), or one line naming where it is not:
    ``what`` is the kind of file expected ("Markdown text", "a beat sheet")."""
    if b"\x00" in data:
        line = data[: data.index(b"\x00")].count(b"\n") + 1
        raise error(f"{shown}:{line}: binary file, not {what}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise error(f"{shown}:{line}: not UTF-8 text (byte 0x{data[err.start]:02x}); re-save the file as UTF-8") from None
    return text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
