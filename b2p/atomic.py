"""Atomic writes: a reader (or a crash) sees the old file or the new one, never half of either.

Every write goes to a hidden temp file beside the target (same folder, so the rename cannot cross
file systems), is flushed and fsynced, then renamed over the target; the folder is fsynced so the
rename itself survives a power cut. Temp files are named ``.<name>.<pid>.<random>.tmp`` and removed on
any failure, Ctrl-C included; one a ``kill -9`` left behind (its process is gone) is removed by the
next write of the same file. A failure is one ``error`` line naming the file.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from b2p.errors import B2PError

FILE_MODE = 0o644  # what a writer's editor would give a new file; an existing file keeps its own mode


def _fsync_folder(folder: Path) -> None:
    with contextlib.suppress(OSError):  # some file systems refuse to open or fsync a folder
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _temp_beside(target: Path, data: bytes) -> Path:
    """``data`` written and fsynced to a new temp file in ``target``'s folder (created if missing)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp")
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            mode = target.stat().st_mode & 0o7777
        except OSError:
            mode = FILE_MODE
        os.chmod(tmp, mode)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def _encode(data: str | bytes) -> bytes:
    return data.encode("utf-8") if isinstance(data, str) else data


def write_atomic(path: Path, data: str | bytes, error: type[B2PError] = B2PError) -> None:
    """Write ``data`` (text is UTF-8) to ``path`` atomically; ``error`` is raised with one line on failure."""
    write_all_atomic([(Path(path), data)], error)


def write_all_atomic(files: Iterable[tuple[Path, str | bytes]], error: type[B2PError] = B2PError) -> None:
    """Write several files: every temp file first, then every rename, so a failure while writing
    (disk full, permission) leaves all targets untouched. The renames themselves are one per file."""
    temps: list[tuple[Path, Path]] = []
    target = Path()
    try:
        for target, data in files:
            temps.append((_temp_beside(target, _encode(data)), target))
        for tmp, target in temps:
            os.replace(tmp, target)
        for folder in dict.fromkeys(t.parent for _, t in temps):
            _fsync_folder(folder)
    except OSError as err:
        raise error(f"{target}: cannot write: {err.strerror or err}") from None
    finally:  # also on Ctrl-C between a write and its rename
        for tmp, _ in temps:
            tmp.unlink(missing_ok=True)
    for _, target in temps:
        _sweep(target)


def _sweep(target: Path) -> None:
    """Remove the temp files of ``target`` that a killed process left (a ``kill -9`` skips every ``finally``)."""
    prefix = f".{target.name}."
    with contextlib.suppress(OSError):
        for entry in os.scandir(target.parent):
            pid = entry.name[len(prefix):].split(".", 1)[0]
            if not (entry.name.startswith(prefix) and entry.name.endswith(".tmp") and pid.isdigit()) or int(pid) == os.getpid():
                continue
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
            except OSError:
                pass  # alive (another user's process), or unknowable: leave it


@contextlib.contextmanager
def atomic_folder(target: Path, replace: bool = False) -> Iterator[Path]:
    """Fill a temp folder beside ``target`` inside the ``with``; on success its files are fsynced and it
    is renamed to ``target``. ``replace``: an existing ``target`` is swapped out (and removed) rather
    than kept, in which case the new folder is dropped (another process saved it first). Raises
    OSError; the temp folder never outlives the block."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    old = tmp.with_name(tmp.name + "-old")
    try:
        yield tmp
        for f in tmp.rglob("*"):
            if f.is_file():
                with open(f, "rb") as fh:
                    os.fsync(fh.fileno())
        _fsync_folder(tmp)
        if target.exists() and replace:
            os.rename(target, old)
        if not target.exists():
            os.rename(tmp, target)
            _fsync_folder(target.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
