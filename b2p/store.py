"""The Chroma store, and the only module that talks to Chroma: one collection per bible.

Everything else asks ``Store`` by bible name (entries, chunk vectors, state, catalog, writes) and
never holds a collection or imports chromadb. Record layout (everything the lore index is built
from lives in Chroma itself, so a Chroma server works too):

- entry record  id ``e:<entry id>`` — document: the entry's full text; metadata: name, kind,
  aliases (JSON), tags (JSON), always, case_sensitive, enabled, imported (JSON), hash, chunks,
  tokens, lead, lead_tokens, pronouns, path, gating (JSON ``{"gating", "chapter_sizes"}``, see
  ``b2p/gating.py``; "" when ungated); embedding: its first chunk's vector (Chroma wants one per
  record; nothing reads it).
- chunk record  id ``c:<hash16>:<n>:<entry id>`` — document: the chunk text; metadata: entry_id,
  hash, index, enabled; embedding: the chunk's vector.
- collection metadata, keys ``b2p_*``: what built it (model, engine, chunking), the bible's
  ``bible.yaml``, its state (see ``b2p/index.py``), source folder, file fingerprint, counts.

``write_entries`` writes chunks first, then the entry records (the commit markers);
``delete_stale`` then removes old chunks and removed entries. A ``kill -9`` anywhere in between
leaves state the next ingest repairs without duplicates, and readers ignore chunks whose hash is
not their entry record's.

The embedded store is not process-safe, so writers hold an exclusive ``flock`` and readers a shared one;
on a server, writers of a bible hold its lock record (``b2p/store_lock.py``). Every Chroma call goes
through ``b2p/store_guard.py``: a damaged file, a full disk, a read-only store, a lost or silent server
are one line.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from b2p.errors import StoreError
from b2p.models import BibleMeta, LoreEntry
from b2p.settings import Settings
from b2p.store_guard import DB_FILE, Guarded, ReadOnlyStore, Where, check_db, guard, read_copy
from b2p.store_lock import ServerLock, is_lock, server_lock
from b2p.store_names import catalog, collection_name, held_name, index_key, legacy_name, sources

LOCK_FILE = ".b2p.lock"
META_PREFIX = "b2p_"
LOCK_WAIT_SECONDS = 600.0
ENTRY_PREFIX = "e:"
PAGE = 5000  # records per read


def chunk_header(e: LoreEntry) -> str:
    """Each chunk is stored as '<header><text>' so it reads (and embeds) in isolation."""
    return f"{e.name} ({e.kind}): "


def chunk_id(entry_id: str, content_hash: str, index: int) -> str:
    return f"c:{content_hash[:16]}:{index}:{entry_id}"


def parse_chunk_id(cid: str) -> tuple[str, str, int]:
    """(entry id, hash16, index) from a chunk id."""
    _, h, n, entry_id = cid.split(":", 3)
    return entry_id, h, int(n)


@dataclass
class StoredEntry:
    """An entry record as read back from the store."""

    entry: LoreEntry
    chunks: int


@dataclass
class StoreScan:
    """What is in a collection, read from ids and entry metadata only (no vectors)."""

    entries: dict[str, StoredEntry] = field(default_factory=dict)
    chunk_ids: dict[str, dict[str, set[int]]] = field(default_factory=dict)  # entry id → hash16 → indices

    def chunk_count(self) -> int:
        return sum(len(ix) for by_hash in self.chunk_ids.values() for ix in by_hash.values())


@dataclass
class StoredChunk:
    """A chunk record as read back from the store."""

    entry_id: str
    hash16: str
    index: int
    text: str
    vector: Any  # the embedding, as Chroma returns it


@dataclass
class EntryChunks:
    """What ingest writes for one entry: the entry, its chunk texts in order, their vectors (one
    row per chunk; None when the store already holds these chunks)."""

    entry: LoreEntry
    chunks: list[str]
    vectors: Any = None


def _entry_metadata(e: LoreEntry, chunks: int) -> dict[str, Any]:
    return {
        "type": "entry",
        "entry_id": e.id,
        "name": e.name,
        "kind": e.kind,
        "aliases": json.dumps(e.aliases),
        "tags": json.dumps(e.tags),
        "always": e.always,
        "case_sensitive": e.case_sensitive,
        "enabled": e.enabled,
        "imported": json.dumps(e.imported) if e.imported else "",
        "hash": e.hash,
        "chunks": chunks,
        "tokens": e.tokens,
        "lead": e.lead,
        "lead_tokens": e.lead_tokens,
        "pronouns": e.pronouns or "",
        "path": e.path,
        "gating": json.dumps({"gating": e.gating, "chapter_sizes": e.chapter_sizes}) if e.gating or e.chapter_sizes else "",
    }


def _entry_from_record(meta: dict[str, Any], document: str | None) -> StoredEntry:
    entry = LoreEntry(
        id=meta["entry_id"],
        name=meta["name"],
        kind=meta["kind"],
        aliases=json.loads(meta.get("aliases") or "[]"),
        tags=json.loads(meta.get("tags") or "[]"),
        always=bool(meta.get("always")),
        case_sensitive=bool(meta.get("case_sensitive")),
        enabled=bool(meta.get("enabled", True)),
        imported=json.loads(meta["imported"]) if meta.get("imported") else None,
        text=document or "",
        path=meta.get("path", ""),
        hash=meta.get("hash", ""),
        tokens=int(meta.get("tokens", 0)),
        lead=meta.get("lead", ""),
        lead_tokens=int(meta.get("lead_tokens", 0)),
        pronouns=meta.get("pronouns") or None,
        **(json.loads(meta["gating"]) if meta.get("gating") else {}),  # b2p.gating: from/until/aliases_from, sizes
    )
    return StoredEntry(entry=entry, chunks=int(meta.get("chunks", 0)))


def _chroma_settings() -> Any:
    os.environ["ANONYMIZED_TELEMETRY"] = "False"
    from chromadb.config import Settings as ChromaSettings

    return ChromaSettings(anonymized_telemetry=False, allow_reset=False)


def _no_bible(bible: str, have: list[str], where: str) -> StoreError:
    from b2p.errors import did_you_mean

    listing = ", ".join(have) if have else "none"
    return StoreError(
        f"no bible '{bible}' in the store at {where}{did_you_mean(collection_name(bible), have)}; "
        f"bibles there: {listing}. Run 'b2p ingest BIBLE_DIR' or pass the bible's folder"
    )


class Store:
    """A Chroma client (embedded or server) plus the lock discipline around it."""

    def __init__(self, settings: Settings, client: Any, lock_path: Path | None, read_only: bool = False, bible: str | None = None) -> None:
        self.settings = settings
        self.where = Where(settings.store, settings.chroma_url, settings.chroma_timeout)
        self._client = Guarded(client, self.where) if client is not None else None
        self.lock_path = lock_path
        self.read_only = read_only  # a store we may not write: read through a copy of it
        self.bible = bible  # the bible it was opened for
        self._cols: dict[str, Any] = {}  # collection name → Chroma collection, fetched once
        self._names: dict[str, str] = {}  # bible → its collection's name
        self._copy: Any = None  # the temporary copy a read-only store is read through
        self._lease: ServerLock | None = None

    @property
    def client(self) -> Any:
        """The Chroma client. The embedded one is created on first use, i.e. after ``lock()`` is taken:
        Chroma writes to its database on every open, which must not race another process's ingest (and
        cannot be done to a read-only store, which is read through a temporary copy)."""
        if self._client is None:
            import chromadb

            path = self.settings.store
            if self.read_only:
                self._copy, path = read_copy(path)
            with guard(self.where):
                self._client = Guarded(chromadb.PersistentClient(path=str(path), settings=_chroma_settings()), self.where)
        return self._client

    # -- opening -----------------------------------------------------------------------------

    @classmethod
    def open(cls, settings: Settings, create: bool = False, bible: str | None = None) -> Store:
        """Open the store named by settings. ``create=False`` refuses to make a new embedded store.

        With ``bible``, an embedded store that does not hold it is refused before Chroma opens it, so the
        error leaves the store byte-for-byte unchanged.
        """
        if settings.chroma_url:
            from urllib.parse import urlparse

            import chromadb

            from b2p.store_guard import http_client

            bad = StoreError(f"--chroma-url '{settings.chroma_url}' is not a URL like http://127.0.0.1:8000")
            try:
                url = urlparse(settings.chroma_url)
                port = url.port or (443 if url.scheme == "https" else 80)
            except ValueError:  # a port out of range, an unclosed IPv6 bracket
                raise bad from None
            if url.scheme not in ("http", "https") or not url.hostname:
                raise bad
            client = http_client(settings.chroma_url, settings.chroma_timeout,
                                 lambda: chromadb.HttpClient(host=url.hostname, port=port, ssl=url.scheme == "https", settings=_chroma_settings()))
            return cls(settings, client, None, bible=bible)
        path = settings.store
        if path.exists() and not path.is_dir():
            raise StoreError(f"{path}: the store path is a file; pass a folder with --store")
        held = (path / DB_FILE).is_file()
        if not create and not held:
            raise StoreError(f"{path}: no b2p store here; run 'b2p ingest BIBLE_DIR' first (or pass --store)")
        if held:
            check_db(path)
        if bible is not None:
            catalog = cls.catalog(settings)
            if catalog is not None and held_name(bible, sources(catalog)) not in catalog:
                raise _no_bible(bible, sorted(catalog), str(path))
        try:
            path.mkdir(parents=True, exist_ok=True)
            (path / LOCK_FILE).touch(exist_ok=True)
        except OSError as err:
            if held and not create:  # a read-only store: reading it needs no write
                lock = path / LOCK_FILE
                return cls(settings, None, lock if lock.is_file() else None, read_only=True, bible=bible)
            if held:
                raise ReadOnlyStore(path) from None
            raise StoreError(f"{path}: cannot create the store: {err.strerror}") from None
        return cls(settings, None, path / LOCK_FILE, bible=bible)

    @staticmethod
    def catalog(settings: Settings) -> dict[str, dict[str, Any]] | None:
        """The collections of an embedded store and their b2p metadata, read without opening Chroma
        (see ``b2p.store_names.catalog``)."""
        return catalog(settings.store) if not settings.chroma_url else None

    def close(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()
        if self._copy is not None:
            self._copy.cleanup()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def lock(self, exclusive: bool, bible: str | None = None) -> Iterator[None]:
        """Writers exclusive, readers shared; waits (with a message) for another ingest to finish.
        On a server, a writer holds the bible's lock record (``b2p/store_lock.py``) and a reader waits
        while one is held."""
        if self.settings.chroma_url:
            name = self.name(bible or self.bible) if (bible or self.bible) else None
            with server_lock(self.client, name, self.settings.chroma_url, exclusive, LOCK_WAIT_SECONDS) as self._lease:
                try:
                    yield
                finally:
                    self._lease = None
            return
        if self.lock_path is None:
            yield
            return
        with open(self.lock_path, "rb" if self.read_only else "a+b") as fh:
            mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
            try:
                fcntl.flock(fh, mode | fcntl.LOCK_NB)
            except BlockingIOError:
                import sys

                print(f"waiting for another b2p process using {self.lock_path.parent} …", file=sys.stderr)
                deadline = time.monotonic() + LOCK_WAIT_SECONDS
                while True:
                    try:
                        fcntl.flock(fh, mode | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        if time.monotonic() > deadline:
                            raise StoreError(f"{self.lock_path.parent}: still locked by another b2p process after {LOCK_WAIT_SECONDS:.0f} s") from None
                        time.sleep(0.1)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    # -- collections --------------------------------------------------------------------------

    def name(self, bible: str) -> str:
        """The name of the collection holding ``bible`` (see ``held_name``)."""
        if bible not in self._names:
            name, old = collection_name(bible), legacy_name(bible)
            held: dict[str, str | None] = {}
            if name != old and self._get(name) is None and (col := self._get(old)) is not None:
                held[old] = (col.metadata or {}).get(META_PREFIX + "source")
            self._names[bible] = held_name(bible, held)
        return self._names[bible]

    def bibles(self) -> list[str]:
        """Names of the bibles in this store."""
        names = []
        for col in self.client.list_collections():
            name = col if isinstance(col, str) else col.name
            if not is_lock(name):
                names.append(name)
        return sorted(names)

    def collection(self, bible: str) -> Any:
        """An existing bible's raw Chroma collection, or a StoreError listing what the store holds.

        Only this module's methods use it (tests also reach for it to inspect or damage records)."""
        col = self._get(self.name(bible))
        if col is None:
            raise _no_bible(bible, self.bibles(), self.settings.chroma_url or str(self.settings.store))
        return col

    def _get(self, name: str) -> Any:
        if name not in self._cols:
            try:
                self._cols[name] = self.client.get_collection(name, embedding_function=None)
            except StoreError:
                raise
            except Exception:  # noqa: BLE001 - NotFoundError's module moved between chromadb releases
                return None
        return self._cols[name]

    def has(self, bible: str) -> bool:
        return self._get(self.name(bible)) is not None

    def create(self, bible: str, meta: dict[str, Any]) -> None:
        """A new, empty collection for the bible, recording ``meta`` (e.g. what builds its vectors)."""
        name = self._names[bible] = collection_name(bible)
        self._cols[name] = self.client.create_collection(
            name,
            embedding_function=None,
            metadata={"hnsw:space": "cosine", **{META_PREFIX + k: v for k, v in meta.items()}},
        )

    def drop(self, bible: str) -> None:
        name = self.name(bible)
        self._names.pop(bible, None)
        self._cols.pop(name, None)
        with contextlib.suppress(Exception):
            self.client.delete_collection(name)

    def meta(self, bible: str) -> dict[str, Any]:
        """The bible's b2p metadata (what built it, its state, its bible.yaml, counts)."""
        col = self.collection(bible)
        return {k[len(META_PREFIX) :]: v for k, v in (col.metadata or {}).items() if k.startswith(META_PREFIX)}

    def state(self, bible: str) -> str:
        """The key of the bible's lore index: its state ("" while an ingest is unfinished) and the
        generation every writing ingest gives it, so the key changes whenever the collection does. An
        embedded store's is read from Chroma's catalog, without importing chromadb."""
        catalog = self.catalog(self.settings)
        name = held_name(bible, sources(catalog)) if catalog is not None else ""
        meta = catalog[name] if catalog is not None and name in catalog else self.meta(bible)
        return index_key(meta)

    def check_space(self, bible: str) -> None:
        """Scores assume cosine distance; refuse a collection built with another space."""
        col = self.collection(bible)
        space = (col.metadata or {}).get("hnsw:space")
        conf = getattr(col, "configuration_json", None) or {}
        space = (conf.get("hnsw") or {}).get("space") or space
        if space not in (None, "cosine"):
            raise StoreError(f"collection '{col.name}' uses '{space}' distance, not cosine; re-ingest with --rebuild")

    def bible_meta(self, bible: str) -> BibleMeta:
        raw = self.meta(bible).get("bible_meta")
        return BibleMeta(**json.loads(raw)) if raw else BibleMeta()

    def set_meta(self, bible: str, values: dict[str, Any]) -> None:
        if self._lease is not None and values.get("state"):
            self._lease.check()  # marking the work done: only under a lock still ours
        col = self.collection(bible)
        meta = {k: v for k, v in (col.metadata or {}).items() if not k.startswith("hnsw:")}
        meta.update({META_PREFIX + k: v for k, v in values.items()})
        col.modify(metadata=meta)

    # -- reading ------------------------------------------------------------------------------

    def _pages(self, bible: str, kind: str, include: list[str]) -> Iterator[dict[str, Any]]:
        """Every record of one type ("entry" or "chunk"), a page at a time."""
        col = self.collection(bible)
        offset = 0
        while True:
            got = col.get(where={"type": kind}, include=include, limit=PAGE, offset=offset)
            yield got
            if len(got["ids"]) < PAGE:
                return
            offset += PAGE

    def scan(self, bible: str, with_text: bool = False, chunks: bool = True) -> StoreScan:
        """Every entry record's metadata and (``chunks``) every chunk id, paged (no vectors)."""
        out = StoreScan()
        for got in self._pages(bible, "entry", ["metadatas", "documents"] if with_text else ["metadatas"]):
            docs = got.get("documents") or [None] * len(got["ids"])
            for meta, doc in zip(got["metadatas"], docs, strict=True):
                stored = _entry_from_record(meta, doc)
                out.entries[stored.entry.id] = stored
        for got in self._pages(bible, "chunk", []) if chunks else ():
            for cid in got["ids"]:
                entry_id, h, n = parse_chunk_id(cid)
                out.chunk_ids.setdefault(entry_id, {}).setdefault(h, set()).add(n)
        return out

    def chunk_vectors(self, bible: str) -> Iterator[StoredChunk]:
        """Every chunk record with its text and vector (stale ones too: callers compare the hash)."""
        for got in self._pages(bible, "chunk", ["documents", "embeddings"]):
            for cid, doc, vec in zip(got["ids"], got["documents"], got["embeddings"], strict=True):
                entry_id, h16, n = parse_chunk_id(cid)
                yield StoredChunk(entry_id, h16, n, doc or "", vec)

    # -- writing (callers hold lock(exclusive=True)) -----------------------------------------

    def write_entries(self, bible: str, items: list[EntryChunks]) -> None:
        """Each entry's chunk records, then (the commit markers) its entry record, in store-sized batches.

        An item without vectors has its chunks in the store already (an ingest killed after writing
        them): only its entry record is written."""
        import numpy as np

        fresh = [it for it in items if it.vectors is not None]
        ids, vecs, docs, metas = [], [], [], []
        for it in fresh:
            e = it.entry
            ids += [chunk_id(e.id, e.hash, n) for n in range(len(it.chunks))]
            vecs.append(np.asarray(it.vectors, dtype=np.float32))
            docs += it.chunks
            metas += [{"type": "chunk", "entry_id": e.id, "hash": e.hash[:16], "index": n, "enabled": e.enabled} for n in range(len(it.chunks))]
        if fresh:
            self._upsert(bible, ids, np.concatenate(vecs), docs, metas)
        firsts = {it.entry.id: np.asarray(it.vectors[0], dtype=np.float32) for it in fresh if len(it.chunks)}
        firsts |= self._first_vectors(bible, [it.entry for it in items if it.entry.id not in firsts])
        missing = [it.entry.id for it in items if it.entry.id not in firsts]
        if missing:
            raise StoreError(f"no chunks stored for {', '.join(missing[:3])}; re-ingest with --rebuild")
        self._upsert(
            bible,
            [ENTRY_PREFIX + it.entry.id for it in items],
            np.stack([firsts[it.entry.id] for it in items]) if items else np.zeros((0, 1), dtype=np.float32),
            [it.entry.text for it in items],
            [_entry_metadata(it.entry, len(it.chunks)) for it in items],
        )

    def _first_vectors(self, bible: str, entries: list[LoreEntry]) -> dict[str, Any]:
        import numpy as np

        if not entries:
            return {}
        got = self.collection(bible).get(ids=[chunk_id(e.id, e.hash, 0) for e in entries], include=["embeddings"])
        return {parse_chunk_id(cid)[0]: np.asarray(v, dtype=np.float32) for cid, v in zip(got["ids"], got["embeddings"], strict=True)}

    def chunk_texts(self, bible: str, entries: dict[str, tuple[str, int]]) -> dict[str, list[str]]:
        """The stored chunk texts of each entry (id → (content hash, chunk count)), in order; an
        entry missing any of its chunks is left out."""
        ids = [chunk_id(i, h, n) for i, (h, count) in entries.items() for n in range(count)]
        col = self.collection(bible)
        found: dict[str, str] = {}
        step = self._max_batch()
        for s in range(0, len(ids), step):
            got = col.get(ids=ids[s : s + step], include=["documents"])
            found.update(zip(got["ids"], got["documents"], strict=True))
        out = {}
        for i, (h, count) in entries.items():
            texts = [found.get(chunk_id(i, h, n)) for n in range(count)]
            if all(t is not None for t in texts):
                out[i] = texts
        return out

    def delete_stale(self, bible: str, scan: StoreScan, current: dict[str, tuple[str, int]]) -> None:
        """Delete what ``scan`` saw that is not ``current`` (entry id → (content hash, chunk count)):
        records of removed entries, chunks of an older content, chunks past an entry's count."""
        ids = [ENTRY_PREFIX + i for i in scan.entries if i not in current]
        for entry_id, by_hash in scan.chunk_ids.items():
            keep, count = current.get(entry_id, ("", 0))
            ids += [chunk_id(entry_id, h, n) for h, ix in by_hash.items() for n in sorted(ix) if h != keep[:16] or n >= count]
        col = self.collection(bible)
        step = self._max_batch()
        for s in range(0, len(ids), step):
            col.delete(ids=ids[s : s + step])

    def _max_batch(self) -> int:
        try:
            return int(self.client.get_max_batch_size())
        except Exception:  # noqa: BLE001 - older servers lack the call
            return 1000

    def _upsert(self, bible: str, ids: list[str], embeddings: Any, documents: list[str], metadatas: list[dict[str, Any]]) -> None:
        col = self.collection(bible)
        step = self._max_batch()
        for s in range(0, len(ids), step):
            col.upsert(
                ids=ids[s : s + step],
                embeddings=embeddings[s : s + step],
                documents=documents[s : s + step],
                metadatas=metadatas[s : s + step],
            )
