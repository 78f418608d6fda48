"""What can go wrong under the store, said in one line: the faults of Chroma's files and server.

``Store`` (``b2p/store.py``) reaches Chroma only through ``Guarded`` objects, so every call it makes
turns a fault below it into one ``StoreError`` line instead of a traceback:

- a damaged ``chroma.sqlite3`` (garbage, truncated, malformed pages) → ``DamagedStore``, which says
  how to rebuild it (``b2p ingest BIBLE_DIR --store DIR --rebuild`` moves the damaged folder aside);
- a full disk, a read-only store;
- a Chroma server that went away mid-call, or that accepts connections and never answers (every
  server call has a deadline: the ``chroma_timeout`` setting).

Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import sqlite3
import struct
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable
from typing import Any

from b2p.errors import StoreError

DB_FILE = "chroma.sqlite3"


class DamagedStore(StoreError):
    """The store's database cannot be read. The message names the rebuild command; ingest fills in
    the bible folder it was given (``with_bible``)."""

    def __init__(self, store: Path, reason: str, bible_dir: str = "BIBLE_DIR") -> None:
        self.store, self.reason = store, reason
        aside = aside_path(store)
        super().__init__(
            f"{store / DB_FILE}: the store is damaged ({reason}); rebuild it with "
            f"'b2p ingest {bible_dir} --store {store} --rebuild' (the damaged store is moved to {aside})"
        )

    def with_bible(self, bible_dir: Path | str) -> DamagedStore:
        return DamagedStore(self.store, self.reason, str(bible_dir))


def aside_path(store: Path) -> Path:
    """Where ``--rebuild`` moves a damaged store: ``<store>.damaged``, numbered if that is taken."""
    aside = store.with_name(store.name + ".damaged")
    n = 1
    while aside.exists():
        n += 1
        aside = store.with_name(f"{store.name}.damaged-{n}")
    return aside


def set_aside(store: Path) -> Path:
    """Move a damaged embedded store out of the way (``<store>.damaged``) for ``ingest --rebuild``."""
    import sys

    aside = aside_path(store)
    try:
        store.rename(aside)
    except OSError as err:
        raise StoreError(f"{store}: cannot move the damaged store aside: {err.strerror}") from None
    print(f"moved the damaged store {store} to {aside}; building a new one", file=sys.stderr)
    return aside


def read_copy(store: Path) -> tuple[Any, Path]:
    """A temporary copy of a read-only store to open Chroma on (opening writes); the lore index and
    the lock file are left out. Returns the TemporaryDirectory (clean it up) and the copy's path."""
    import shutil
    import tempfile

    tmp = tempfile.TemporaryDirectory(prefix="b2p-readonly-")
    path = Path(tmp.name) / "store"
    shutil.copytree(store, path, ignore=shutil.ignore_patterns("b2p-index", ".b2p.lock"))
    return tmp, path


def check_db(store: Path) -> None:
    """Refuse a ``chroma.sqlite3`` that is not a whole SQLite database, cheaply (its header, and one
    read of the catalog): Chroma's own bindings fail on one with an AttributeError."""
    db = store / DB_FILE
    try:
        with open(db, "rb") as fh:
            header = fh.read(100)
        size = db.stat().st_size
    except OSError:
        return  # unreadable: the caller's open says why
    if len(header) < 100 or not header.startswith(b"SQLite format 3\x00"):
        raise DamagedStore(store, "file is not a database" if header else "the file is empty")
    page = struct.unpack(">H", header[16:18])[0]
    page = 65536 if page == 1 else page
    pages, change, valid_for = struct.unpack(">I", header[28:32])[0], header[24:28], header[92:96]
    if pages and change == valid_for and pages * page > size:
        raise DamagedStore(store, f"the file is cut short: {size:,} of {pages * page:,} bytes")
    try:
        con = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=10)
        try:
            con.execute("SELECT count(*) FROM collections").fetchone()
        finally:
            con.close()
    except sqlite3.OperationalError:
        return  # locked, or another layout: Chroma decides
    except sqlite3.DatabaseError as err:
        raise DamagedStore(store, str(err)) from None


@dataclass
class Where:
    """What a guarded call talks to, for the message."""

    store: Path
    url: str | None
    timeout: float

    def fault(self, err: BaseException) -> StoreError | None:
        """The one line for a fault below the store, or None (a bug: let it through)."""
        text = f"{err.__class__.__name__}: {err}"
        low = text.lower()
        if self.url:
            import httpx

            if isinstance(err, httpx.TimeoutException) and not isinstance(err, httpx.ConnectTimeout):
                return StoreError(
                    f"the Chroma server at {self.url} did not answer within {self.timeout:g} s; check that it is "
                    "healthy, or raise chroma_timeout (B2P_CHROMA_TIMEOUT)"
                )
            if isinstance(err, httpx.TransportError):
                return StoreError(
                    f"lost the Chroma server at {self.url} ({err.__class__.__name__}); start it again and re-run "
                    "(an interrupted ingest is repaired by running it again)"
                )
        if "disk is full" in low or "no space left" in low or (
            self.url is None and err.__class__.__name__ == "InternalError" and _nearly_full(self.store)
        ):
            return StoreError(
                f"{self.where}: the disk is full; free some space and run the command again "
                "(an interrupted ingest is repaired by running it again)"
            )
        if "readonly database" in low or "read-only file system" in low or "read-only database" in low:
            return ReadOnlyStore(self.store)
        if self.url is None and ("malformed" in low or "not a database" in low or "'bindings'" in low):
            return DamagedStore(self.store, "Chroma cannot read it: " + str(err).splitlines()[0][:120])
        return None

    @property
    def where(self) -> str:
        return self.url or str(self.store)


def _nearly_full(store: Path) -> bool:
    """Whether the disk under the store has (almost) no room left: Chroma sometimes reports a write that
    failed for want of space only as "Error in compaction: Failed to apply logs to the metadata segment"."""
    import shutil

    try:
        return shutil.disk_usage(store).free < 1 << 20
    except OSError:
        return False


class ReadOnlyStore(StoreError):
    """The store cannot be written (a read-only mount, or no write permission); reading it works."""

    def __init__(self, store: Path) -> None:
        super().__init__(f"{store}: the store is read-only; ingest needs to write to it (b2p lore and b2p entries read it as it is)")


class Guarded:
    """A Chroma client or collection whose every call turns a fault below it into a ``StoreError``."""

    def __init__(self, obj: Any, where: Where) -> None:
        self._obj, self._where = obj, where

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._obj, name)
        if not callable(value):
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            with guard(self._where):
                out = value(*args, **kwargs)
            return Guarded(out, self._where) if hasattr(out, "upsert") and hasattr(out, "modify") else out

        return call

    def __repr__(self) -> str:
        return f"Guarded({self._obj!r})"


class guard:  # noqa: N801 - used as a context manager
    """``with guard(where): …`` re-raises a fault below the store as its one line."""

    def __init__(self, where: Where) -> None:
        self.where = where

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None, tb: Any) -> bool:
        if err is None or isinstance(err, StoreError) or not isinstance(err, Exception):
            return False
        line = self.where.fault(err)
        if line is None:
            return False
        raise line from None


def http_client(url: str, timeout: float, make: Callable[[], Any]) -> Any:
    """The Chroma ``HttpClient`` that ``make()`` builds (``b2p.store`` holds Chroma), with a deadline on
    every request. Chroma's own client waits forever (its httpx session has no timeout) and talks to the
    server while it is being made, so the server is asked for its heartbeat first, with the deadline,
    and the session gets the deadline after."""
    import httpx

    try:
        httpx.get(f"{url.rstrip('/')}/api/v2/heartbeat", timeout=timeout).raise_for_status()
        client = _within(timeout, make)
    except Exception as err:  # noqa: BLE001 - chromadb raises many types for a dead server
        if isinstance(err, httpx.TimeoutException) and not isinstance(err, httpx.ConnectTimeout):
            raise Where(Path("."), url, timeout).fault(err) from None  # type: ignore[misc]
        raise StoreError(
            f"cannot reach the Chroma server at {url} ({err.__class__.__name__}); "
            "start it with 'chroma run --path DIR --port PORT' or drop --chroma-url"
        ) from None
    if client is None:
        raise Where(Path("."), url, timeout).fault(httpx.ReadTimeout("no answer"))  # type: ignore[misc]
    server = getattr(client, "_server", None)
    session = getattr(server, "_session", None)
    if session is not None:
        session.timeout = httpx.Timeout(timeout)
    return client


def _within(seconds: float, make: Any) -> Any:
    """``make()``, or None when it takes longer than ``seconds`` (Chroma's client asks the server
    things while it is made, with no deadline of its own; the stuck thread dies with the process)."""
    import threading

    out: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            out.append(make())
        except BaseException as err:  # noqa: BLE001 - handed to the caller's thread
            errors.append(err)

    worker = threading.Thread(target=run, name="b2p-chroma-connect", daemon=True)
    worker.start()
    worker.join(seconds)
    if errors:
        raise errors[0]
    return out[0] if out else None
