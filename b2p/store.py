"""The Chroma store: one collection per bible, holding chunk records and one entry record per entry.

Record layout (everything retrieval needs lives in Chroma itself, so a Chroma server works too):

- entry record  id ``e:<entry id>``  — document: the entry's full text; metadata: name, kind,
  aliases (JSON), tags (JSON), always, case_sensitive, enabled, hash, chunks, tokens, pronouns,
  path, gating (JSON: ``{"gating", "chapter_sizes"}``, see ``b2p/gating.py``; "" when ungated); embedding: the normalised mean of its chunks.
- chunk record  id ``c:<hash16>:<n>:<entry id>`` — document: the chunk text; metadata: entry_id,
  hash, index, enabled.

Ingest writes an entry's chunks first, then its entry record (the commit marker), then deletes the
old chunks; a ``kill -9`` anywhere in between leaves state the next ingest can repair without
duplicates, and retrieval ignores chunks whose hash is not their entry record's.

The embedded store is not process-safe, so writers hold an exclusive ``flock`` and readers a shared one.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from b2p.errors import StoreError
from b2p.models import BibleMeta, LoreEntry
from b2p.settings import Settings

LOCK_FILE = ".b2p.lock"
META_PREFIX = "b2p_"
LOCK_WAIT_SECONDS = 600.0


def collection_name(bible: str) -> str:
    """A bible's folder name as a valid Chroma collection name (3–63 chars of [a-z0-9._-])."""
    slug = re.sub(r"[^a-z0-9._-]+", "-", bible.strip().lower()).strip("-._")
    if len(slug) < 3:
        slug = f"bible-{slug}".strip("-")
    return slug[:63].rstrip("-._")


def chunk_header(e: LoreEntry) -> str:
    """Each chunk is stored as '<header><text>' so it reads (and embeds) in isolation."""
    return f"{e.name} ({e.kind}): "


def chunk_id(entry_id: str, content_hash: str, index: int) -> str:
    return f"c:{content_hash[:16]}:{index}:{entry_id}"


def parse_chunk_id(cid: str) -> tuple[str, str, int]:
    """(entry id, hash16, index) from a chunk id."""
    _, h, n, entry_id = cid.split(":", 3)
    return entry_id, h, int(n)


def entry_id_of(record_id: str) -> str:
    return record_id[2:]


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


def entry_metadata(e: LoreEntry, chunks: int) -> dict[str, Any]:
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


def entry_from_record(meta: dict[str, Any], document: str | None) -> StoredEntry:
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

    def __init__(self, settings: Settings, client: Any, lock_path: Path | None) -> None:
        self.settings = settings
        self._client = client
        self.lock_path = lock_path

    @property
    def client(self) -> Any:
        """The Chroma client. The embedded one is created on first use, i.e. after ``lock()`` is taken:
        Chroma writes to its database on every open, which must not race another process's ingest."""
        if self._client is None:
            import chromadb

            self._client = chromadb.PersistentClient(path=str(self.settings.store), settings=_chroma_settings())
        return self._client

    # -- opening -----------------------------------------------------------------------------

    @classmethod
    def open(cls, settings: Settings, create: bool = False, bible: str | None = None) -> Store:
        """Open the store named by settings. ``create=False`` refuses to make a new embedded store.

        With ``bible``, an embedded store that does not hold it is refused before Chroma opens it, so the
        error leaves the store byte-for-byte unchanged.
        """
        if settings.chroma_url:
            import chromadb
            from urllib.parse import urlparse

            url = urlparse(settings.chroma_url)
            if url.scheme not in ("http", "https") or not url.hostname:
                raise StoreError(f"--chroma-url '{settings.chroma_url}' is not a URL like http://127.0.0.1:8000")
            try:
                client = chromadb.HttpClient(
                    host=url.hostname,
                    port=url.port or (443 if url.scheme == "https" else 80),
                    ssl=url.scheme == "https",
                    settings=_chroma_settings(),
                )
                client.heartbeat()
            except Exception as err:  # noqa: BLE001 - chromadb raises many types for a dead server
                raise StoreError(
                    f"cannot reach the Chroma server at {settings.chroma_url} ({err.__class__.__name__}); "
                    "start it with 'chroma run --path DIR --port PORT' or drop --chroma-url"
                ) from None
            return cls(settings, client, None)
        path = settings.store
        if path.exists() and not path.is_dir():
            raise StoreError(f"{path}: the store path is a file; pass a folder with --store")
        if not create and not (path / "chroma.sqlite3").is_file():
            raise StoreError(f"{path}: no b2p store here; run 'b2p ingest BIBLE_DIR' first (or pass --store)")
        if bible is not None:
            catalog = cls.catalog(settings)
            if catalog is not None and collection_name(bible) not in catalog:
                raise _no_bible(bible, sorted(catalog), str(path))
        try:
            path.mkdir(parents=True, exist_ok=True)
            (path / LOCK_FILE).touch(exist_ok=True)
        except OSError as err:
            raise StoreError(f"{path}: cannot create the store: {err.strerror}") from None
        return cls(settings, None, path / LOCK_FILE)

    @staticmethod
    def catalog(settings: Settings) -> dict[str, dict[str, Any]] | None:
        """The collections of an embedded store and their b2p metadata, read without opening Chroma.

        Opening a ``PersistentClient`` always writes (Chroma logs each opener in ``acquire_write``), so
        checks that may refuse a command read Chroma's catalog read-only first. None when there is no
        embedded store, or its catalog is not laid out as expected (the checks after opening still run).
        """
        db = settings.store / "chroma.sqlite3"
        if settings.chroma_url or not db.is_file():
            return None
        import sqlite3

        try:
            con = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=10)
            try:
                names = [r[0] for r in con.execute("SELECT name FROM collections")]
                rows = con.execute(
                    "SELECT c.name, m.key, COALESCE(m.str_value, m.int_value, m.float_value, m.bool_value) "
                    "FROM collections c JOIN collection_metadata m ON m.collection_id = c.id"
                ).fetchall()
            finally:
                con.close()
        except sqlite3.Error:
            return None
        out: dict[str, dict[str, Any]] = {n: {} for n in names}
        for name, key, value in rows:
            if isinstance(key, str) and key.startswith(META_PREFIX) and name in out:
                out[name][key[len(META_PREFIX) :]] = value
        return out

    def close(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def lock(self, exclusive: bool) -> Iterator[None]:
        """Writers exclusive, readers shared; waits (with a message) for another ingest to finish."""
        if self.lock_path is None:
            yield
            return
        with open(self.lock_path, "a+b") as fh:
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

    def bibles(self) -> list[str]:
        """Names of the bibles in this store."""
        names = []
        for col in self.client.list_collections():
            name = col if isinstance(col, str) else col.name
            names.append(name)
        return sorted(names)

    def collection(self, bible: str) -> Any:
        """An existing bible's collection, or a StoreError listing what the store holds."""
        name = collection_name(bible)
        try:
            return self.client.get_collection(name, embedding_function=None)
        except Exception:  # noqa: BLE001 - NotFoundError's module moved between chromadb releases
            raise _no_bible(bible, self.bibles(), self.settings.chroma_url or str(self.settings.store)) from None

    def create_collection(self, bible: str, metadata: dict[str, Any]) -> Any:
        return self.client.create_collection(
            collection_name(bible),
            embedding_function=None,
            metadata={"hnsw:space": "cosine", **metadata},
        )

    def delete_collection(self, bible: str) -> None:
        with contextlib.suppress(Exception):
            self.client.delete_collection(collection_name(bible))

    @staticmethod
    def b2p_meta(col: Any) -> dict[str, Any]:
        return {k[len(META_PREFIX) :]: v for k, v in (col.metadata or {}).items() if k.startswith(META_PREFIX)}

    @staticmethod
    def check_space(col: Any) -> None:
        """Scores assume cosine distance; refuse a collection built with another space."""
        space = (col.metadata or {}).get("hnsw:space")
        conf = getattr(col, "configuration_json", None) or {}
        space = (conf.get("hnsw") or {}).get("space") or space
        if space not in (None, "cosine"):
            raise StoreError(f"collection '{col.name}' uses '{space}' distance, not cosine; re-ingest with --rebuild")

    @staticmethod
    def bible_meta(col: Any) -> BibleMeta:
        raw = Store.b2p_meta(col).get("bible_meta")
        return BibleMeta(**json.loads(raw)) if raw else BibleMeta()

    def set_meta(self, col: Any, values: dict[str, Any]) -> None:
        meta = {k: v for k, v in (col.metadata or {}).items() if not k.startswith("hnsw:")}
        meta.update({META_PREFIX + k: v for k, v in values.items()})
        col.modify(metadata=meta)

    # -- reading ------------------------------------------------------------------------------

    def scan(self, col: Any, with_text: bool = False, chunks: bool = True) -> StoreScan:
        """Every entry record's metadata and (``chunks``) every chunk id, paged (no vectors)."""
        out = StoreScan()
        page = 5000
        include = ["metadatas", "documents"] if with_text else ["metadatas"]
        offset = 0
        while True:
            got = col.get(where={"type": "entry"}, include=include, limit=page, offset=offset)
            docs = got.get("documents") or [None] * len(got["ids"])
            for meta, doc in zip(got["metadatas"], docs, strict=True):
                stored = entry_from_record(meta, doc)
                out.entries[stored.entry.id] = stored
            if len(got["ids"]) < page:
                break
            offset += page
        offset = 0
        while chunks:
            got = col.get(where={"type": "chunk"}, include=[], limit=page, offset=offset)
            for cid in got["ids"]:
                entry_id, h, n = parse_chunk_id(cid)
                out.chunk_ids.setdefault(entry_id, {}).setdefault(h, set()).add(n)
            if len(got["ids"]) < page:
                break
            offset += page
        return out

    # -- writing (callers hold lock(exclusive=True)) -----------------------------------------

    def max_batch(self) -> int:
        try:
            return int(self.client.get_max_batch_size())
        except Exception:  # noqa: BLE001 - older servers lack the call
            return 1000

    def upsert(self, col: Any, ids: list[str], embeddings: Any, documents: list[str], metadatas: list[dict[str, Any]]) -> None:
        step = self.max_batch()
        for s in range(0, len(ids), step):
            col.upsert(
                ids=ids[s : s + step],
                embeddings=embeddings[s : s + step],
                documents=documents[s : s + step],
                metadatas=metadatas[s : s + step],
            )

    def delete(self, col: Any, ids: list[str]) -> None:
        step = self.max_batch()
        for s in range(0, len(ids), step):
            col.delete(ids=ids[s : s + step])
