"""One writer per bible on a Chroma server: a lock record kept in Chroma itself, with a lease.

An embedded store is locked with ``flock`` on a file beside it; a server has no such file, and two
ingests of one bible (from two machines, or two terminals) would interleave their writes. So a
writer takes the bible's lock *collection* (``b2plock-<hash>``): creating a collection is atomic on
the server (a second create of the same name fails), which makes it a test-and-set. Its metadata
names the holder and when its lease ends; the holder renews the lease from a background thread
while it works and deletes the record when done. A waiter finds a lease that has run out (its
holder was killed) and takes it over by renaming that record out of the way *by its id* (so two
waiters never remove a fresh lock) and creating its own. Before it marks its work done the holder
checks the record is still its own.

Readers do not take the lock; they wait while it is held (``wait_unlocked``), and the lore index
they build is only saved when the collection's state did not change while they read it.

Leases are compared with the waiter's clock: the machines sharing a server must agree on the time
to within the lease (60 s). A record taken on this machine (its owner names the host and process)
whose process has died is taken over at once, so an ingest killed or cut off from the server does
not keep the next one waiting for its lease.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
import hashlib
import os
import socket
import sys
import threading
import time
import uuid
from typing import Any

from b2p.errors import StoreError

LOCK_PREFIX = "b2plock-"
LEASE_SECONDS = 60.0
POLL_SECONDS = 0.25


def lock_name(collection: str) -> str:
    return LOCK_PREFIX + hashlib.sha256(collection.encode()).hexdigest()[:24]


def is_lock(name: str) -> bool:
    return name.startswith(LOCK_PREFIX)


def _live(col: Any) -> bool:
    """Whether a lock record's holder may still be at work: its lease has not run out, and when it
    was taken on this machine, its process is still running (so a killed ingest does not keep the next
    one waiting for its lease)."""
    meta = getattr(col, "metadata", None) or {}
    if float(meta.get("b2p_expires", 0)) <= time.time():
        return False
    host, _, rest = str(meta.get("b2p_owner", "")).partition(":")
    pid = rest.partition(":")[0]
    if host == socket.gethostname() and pid.isdigit():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return False
        except OSError:
            return True
    return True


class ServerLock:
    """The lock of one collection on a Chroma server (see the module's notes)."""

    def __init__(self, client: Any, collection: str, url: str, wait_seconds: float) -> None:
        self.client, self.collection, self.url, self.wait_seconds = client, collection, url, wait_seconds
        self.name = lock_name(collection)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._col: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _meta(self) -> dict[str, Any]:
        return {"b2p_lock": self.collection, "b2p_owner": self.owner, "b2p_expires": time.time() + LEASE_SECONDS}

    def _find(self) -> Any:
        try:
            return self.client.get_collection(self.name, embedding_function=None)
        except StoreError:
            raise
        except Exception:  # noqa: BLE001 - not found (its error type moved between chromadb releases)
            return None

    def acquire(self) -> None:
        deadline = time.monotonic() + self.wait_seconds
        told = False
        while True:
            try:
                self._col = self.client.create_collection(self.name, metadata=self._meta(), embedding_function=None)
                break
            except StoreError:
                raise
            except Exception as err:  # noqa: BLE001 - "already exists" (chromadb's error types vary)
                if "exist" not in str(err).lower():
                    raise
            held = self._find()
            if held is not None and not _live(held):
                with contextlib.suppress(Exception):  # the holder died: move its record away, by id, then drop it
                    stale = f"{LOCK_PREFIX}stale-{uuid.uuid4().hex[:16]}"
                    held.modify(name=stale)
                    self.client.delete_collection(stale)
                continue
            if not told:
                holder = ((held.metadata or {}).get("b2p_owner") if held is not None else None) or "another b2p process"
                print(f"waiting for {holder} writing '{self.collection}' on {self.url} …", file=sys.stderr)
                told = True
            if time.monotonic() > deadline:
                raise StoreError(f"'{self.collection}' on {self.url} is still being written by another b2p process after "
                                 f"{self.wait_seconds:.0f} s; run again when it is done")
            time.sleep(POLL_SECONDS)
        self._thread = threading.Thread(target=self._renew, name="b2p-lease", daemon=True)
        self._thread.start()

    def _renew(self) -> None:
        while not self._stop.wait(LEASE_SECONDS / 4):
            with contextlib.suppress(Exception):  # a dead server fails the writer's own next call
                self._col.modify(metadata=self._meta())

    def check(self) -> None:
        """Refuse to mark work done under a lock that is no longer ours (a lease that ran out)."""
        held = self._find()
        if held is None or held.id != self._col.id:
            raise StoreError(f"lost the write lock of '{self.collection}' on {self.url} (the lease ran out); run the ingest again")

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with contextlib.suppress(Exception):
            held = self._find()
            if held is not None and held.id == self._col.id:
                self.client.delete_collection(self.name)


def wait_unlocked(client: Any, collection: str, url: str, wait_seconds: float) -> None:
    """For a reader: wait while a live writer holds the collection's lock."""
    probe = ServerLock(client, collection, url, wait_seconds)
    deadline = time.monotonic() + wait_seconds
    told = False
    while (held := probe._find()) is not None and _live(held):
        if not told:
            print(f"waiting for the ingest writing '{collection}' on {url} …", file=sys.stderr)
            told = True
        if time.monotonic() > deadline:
            raise StoreError(f"'{collection}' on {url} is still being written after {wait_seconds:.0f} s; run again when it is done")
        time.sleep(POLL_SECONDS)


@contextlib.contextmanager
def server_lock(client: Any, collection: str | None, url: str, exclusive: bool, wait_seconds: float) -> Iterator[ServerLock | None]:
    """A writer holds the collection's lock (yielding it); a reader waits while one is held."""
    if collection is None:
        yield None
        return
    if not exclusive:
        wait_unlocked(client, collection, url, wait_seconds)
        yield None
        return
    lock = ServerLock(client, collection, url, wait_seconds)
    lock.acquire()
    try:
        yield lock
    finally:
        lock.release()
