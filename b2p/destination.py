"""What ``-o`` names, and whether b2p may write a chapter there.

b2p only ever replaces a chapter it wrote from the same beat sheet (a file with its trace beside it).
Anything else at ``-o`` — a file b2p did not write, the beat sheet itself, a file of the bible, a
chapter of another sheet, a symbolic link — is refused unless ``--force``. A folder, a device, a FIFO
or a socket is refused always: b2p writes a chapter by replacing a regular file, and would never
replace ``/dev/full`` (or anything in ``/dev``) with one. ``-o -`` means stdout.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Literal

from b2p.errors import ConfigError, closest
from b2p.trace import trace_path

STDOUT = "-"
Kind = Literal["none", "file", "link"]


def output_path(out: Path | str | None) -> Path | None:
    """``-o``'s value as a path; None for stdout (no ``-o``, or ``-o -``)."""
    if out is None or str(out) == STDOUT:
        return None
    return Path(out)


def kind_of(out: Path) -> Kind:
    """What is at ``out`` now: nothing, a regular file, or a symbolic link to one. Refuses (whatever
    ``--force`` says) a folder, a device, a FIFO or a socket, and a path whose folder is a file."""
    try:
        st = out.stat()  # follows a link: a link to /dev/full is a device
    except FileNotFoundError:
        if out.is_symlink():
            return "link"  # dangling
        parent = next((p for p in out.parents if p.exists()), None)
        if parent is not None and not parent.is_dir():
            raise ConfigError(f"-o {out}: {parent} is a file, not a folder; pick another -o") from None
        return "none"
    except OSError as err:
        raise ConfigError(f"-o {out}: {err.strerror}; pick another -o") from None
    if stat.S_ISDIR(st.st_mode):
        raise ConfigError(f"-o {out}: is a folder; name the chapter file, e.g. -o {out / 'chapter.md'}")
    if not stat.S_ISREG(st.st_mode):
        what = "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else "a FIFO" if stat.S_ISFIFO(st.st_mode) else "not a regular file"
        raise ConfigError(f"-o {out}: is {what}; b2p writes chapters to regular files only (-o - or no -o prints the chapter)")
    return "link" if out.is_symlink() else "file"


def check_trace_path(out: Path) -> None:
    """The trace beside ``out`` is replaced too: refuse (always) when something other than a file is there."""
    path = trace_path(out)
    try:
        st = path.stat()
    except OSError:
        return  # nothing there (or a dangling link: replaced like a file)
    if not stat.S_ISREG(st.st_mode):
        what = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        raise ConfigError(f"-o {out}: b2p keeps the chapter's trace at {path}, and that is {what}; pick another -o")


def chapters_near(out: Path) -> list[Path]:
    """The chapters in ``out``'s folder: files with a trace beside them."""
    folder = out.parent
    try:
        names = sorted(p for p in folder.iterdir() if not p.name.endswith(".trace.json"))
    except OSError:
        return []
    return [p for p in names if p.is_file() and trace_path(p).is_file()]


def no_trace(out: Path, flag: str) -> ConfigError:
    """``--resume``/``--only`` on a path that has no chapter trace: a typo, most likely."""
    near = chapters_near(out)
    guess = closest(out.name, [p.name for p in near])
    hint = f' (did you mean "{out.parent / guess}"?)' if guess else ""
    start = "leave out --resume to start it" if flag == "--resume" else "generate the chapter first"
    return ConfigError(f"{flag}: {out} is not a chapter b2p wrote: there is no trace at {trace_path(out)}{hint}; {start}")


def _inside(path: Path, folder: Path) -> Path | None:
    try:
        return path.resolve().relative_to(folder.resolve())
    except ValueError:
        return None


def _would_be_entry(rel: Path) -> bool:
    """A path inside a bible that ingest reads as an entry (``*.md``, not under ``beats/`` or a hidden folder)."""
    parts = rel.parts
    return rel.suffix == ".md" and not (len(parts) > 1 and parts[0] == "beats") and not any(p.startswith(".") for p in parts)


def foreign(out: Path, kind: Kind, ours: bool | None, beats_file: Path, bible_dir: Path | None, other_sheet: str | None = None) -> str | None:
    """Why ``out`` is not a chapter of this beat sheet that b2p may replace (None when it is, or when
    nothing is there). ``ours``: a trace of this sheet is beside it (None: no trace at all)."""
    rel = _inside(out, bible_dir) if bible_dir is not None else None
    if kind == "link":
        return "is a symbolic link; b2p replaces files, not links (name the file it points to)"
    if kind == "file" and os.path.samefile(out, beats_file):
        return "is the beat sheet itself"
    if rel is not None and _would_be_entry(rel):
        if kind == "file":
            return f"is a file of the bible {bible_dir}"
        return f"is inside the bible {bible_dir}, where ingest would read the chapter as an entry"
    if ours is None:
        return f"exists and was not written by b2p (there is no trace {trace_path(out)} beside it)" if kind == "file" else None
    if not ours:
        return f"is a chapter of another beat sheet ({other_sheet})"
    return None
