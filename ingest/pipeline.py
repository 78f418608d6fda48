"""``b2p ingest``: diff a bible against its collection, embed only what changed, write crash-safely."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from b2p.embeddings import Embedder, ensure_onnx, model_identity
from b2p.errors import BibleError, StoreError
from b2p.index import LoreIndex, collection_state, index_root
from b2p.models import IngestReport, LoreEntry
from b2p.scene import entry_pronouns
from b2p.settings import Settings
from b2p.store import Store, chunk_id, collection_name, entry_metadata
from ingest.bible import Bible, bible_fingerprint, bible_name, read_bible
from ingest.chunking import chunk_entry, chunk_signature, lead_of, make_splitter
from ingest.gating import chapter_sizes, is_gated

Progress = Callable[[int, int], None]  # (done, total) chunks embedded


def content_hash(e: LoreEntry) -> str:
    """Hash of everything about an entry that reaches the store."""
    payload = e.model_dump(include={"id", "name", "aliases", "kind", "tags", "always", "case_sensitive", "enabled", "imported", "text", "path"})
    if is_gated(e):  # only then: an ungated entry keeps the hash (and the vectors) it had before gating existed
        payload["gating"] = e.gating or {}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _built_with(settings: Settings) -> dict[str, str]:
    return {"embed_model": model_identity(settings.embed_model), "chunking": chunk_signature(settings.chunk_size, settings.chunk_overlap)}


def _refuse_mismatch(have: dict[str, Any], want: dict[str, str], name: str) -> None:
    for key, label in (("embed_model", "embedding model"), ("chunking", "chunking")):
        if have.get(key) != want[key]:
            raise StoreError(
                f"the store's '{name}' was built with {label} '{have.get(key)}', not '{want[key]}'; "
                "vectors cannot be mixed: re-ingest with --rebuild (or use the same settings)"
            )


def _open_collection(store: Store, bible: Bible, settings: Settings, embedder: Embedder, rebuild: bool) -> Any:
    """The bible's collection, created if new; refuses one built by another model or chunking."""
    want = _built_with(settings)
    try:
        col = store.collection(bible.name)
    except StoreError:
        col = None
    if col is None or rebuild:
        # Load the model before creating (or dropping) anything: a typo in --embed-model must not leave a
        # collection recorded as built by a model that does not exist, nor cost the user their collection.
        embedder.model  # noqa: B018
        if col is not None:
            store.delete_collection(bible.name)
        return store.create_collection(bible.name, {f"b2p_{k}": v for k, v in want.items()})
    _refuse_mismatch(store.b2p_meta(col), want, col.name)
    store.check_space(col)
    return col


def ingest_bible(root: Path, settings: Settings, rebuild: bool = False, progress: Progress | None = None) -> IngestReport:
    """Ingest one bible folder into the store. Validates every file before touching the store."""
    started = time.perf_counter()
    if not rebuild and (same := _unchanged(root, settings)) is not None:
        same.seconds = time.perf_counter() - started
        return same
    files = bible_fingerprint(root) if root.is_dir() else ""  # taken before reading: an edit during the run shows next time
    bible = read_bible(root)  # raises BibleError before anything is written
    for e in bible.entries:
        e.hash = content_hash(e)
    embedder = Embedder(settings.embed_model)
    # Chroma writes to its database whenever it opens one, so refusals come before opening it: a
    # mismatched model, or (for a new collection, when the model is needed anyway) a model that will
    # not load. Either way the store stays byte-for-byte as it was.
    catalog = Store.catalog(settings)
    if catalog is not None:
        have = catalog.get(collection_name(bible.name))
        if have is not None and not rebuild:
            _refuse_mismatch(have, _built_with(settings), collection_name(bible.name))
        if have is None or rebuild:
            embedder.model  # noqa: B018
    elif not settings.chroma_url:
        embedder.model  # noqa: B018 - a new store
    with Store.open(settings, create=True) as store, store.lock(exclusive=True):
        col = _open_collection(store, bible, settings, embedder, rebuild)
        bible_meta = bible.meta.model_dump_json()
        state = collection_state(((e.id, e.hash) for e in bible.entries), _built_with(settings), bible_meta)
        if store.b2p_meta(col).get("state") != state:
            store.set_meta(col, {"state": ""})  # until every write below is done, no lore index may look current
        scan = store.scan(col)
        report = _apply(store, col, bible, scan, embedder, settings, progress)
        report.chunks = col.count() - len(bible.entries)
        store.set_meta(col, {
            "bible_meta": bible_meta, "source": str(bible.root.resolve()), "state": state, "files": files,
            "entries": len(bible.entries), "chunks": report.chunks, "warnings": json.dumps(bible.warnings),
        })
        if LoreIndex.load(index_root(settings), col.name, state) is None:  # missing, or unreadable
            LoreIndex.build(store, col, settings).save(index_root(settings), replace=True)
    # Also after an unchanged run: an export interrupted last time is retried here.
    ensure_onnx(embedder, settings.cache_dir)
    report.warnings = bible.warnings
    report.seconds = time.perf_counter() - started
    return report


def _unchanged(root: Path, settings: Settings) -> IngestReport | None:
    """The report of a no-op ingest, when the store says this very folder was ingested complete
    with these settings and no file has changed since (path, size, time): no parsing, no Chroma."""
    catalog = Store.catalog(settings)
    have = catalog.get(collection_name(bible_name(root))) if catalog is not None and root.is_dir() else None
    if not have or not have.get("state") or not have.get("files") or any(have.get(k) != v for k, v in _built_with(settings).items()):
        return None
    if have["files"] != bible_fingerprint(root):
        return None
    ensure_onnx(Embedder(settings.embed_model), settings.cache_dir)  # an export interrupted last time is retried
    n = int(have.get("entries") or 0)
    report = IngestReport(bible=bible_name(root), entries=n, added=0, updated=0, removed=0, unchanged=n, chunks=int(have.get("chunks") or 0))
    report.warnings = json.loads(have.get("warnings") or "[]")
    return report


def _apply(store: Store, col: Any, bible: Bible, scan, embedder: Embedder, settings: Settings, progress: Progress | None) -> IngestReport:  # noqa: ANN001
    report = IngestReport(bible=bible.name, entries=len(bible.entries), added=0, updated=0, removed=0, unchanged=0, chunks=0)
    todo: list[LoreEntry] = []
    repair: list[str] = []  # stale chunk ids of entries that are otherwise current
    for e in bible.entries:
        rec = scan.entries.get(e.id)
        have = scan.chunk_ids.get(e.id, {})
        h16 = e.hash[:16]
        if rec and rec.entry.hash == e.hash and have.get(h16) == set(range(rec.chunks)):
            report.unchanged += 1
            repair += [chunk_id(e.id, h, n) for h, ix in have.items() if h != h16 for n in ix]
        else:
            todo.append(e)
            if rec is None and not have:
                report.added += 1
            else:
                report.updated += 1
    gone = (set(scan.entries) | set(scan.chunk_ids)) - {e.id for e in bible.entries}
    report.removed = len(set(scan.entries) - {e.id for e in bible.entries})
    if todo:
        _write_entries(store, col, todo, scan, embedder, settings, progress)
    stale = repair + [f"e:{i}" for i in gone if i in scan.entries]
    stale += [chunk_id(i, h, n) for i in gone for h, ix in scan.chunk_ids.get(i, {}).items() for n in ix]
    store.delete(col, stale)
    return report


def _write_entries(store: Store, col: Any, todo: list[LoreEntry], scan, embedder: Embedder, settings: Settings, progress: Progress | None) -> None:  # noqa: ANN001
    import numpy as np

    tokenize = embedder.tokenizer()
    splitter = make_splitter(settings.chunk_size, settings.chunk_overlap, tokenize)
    chunks: dict[str, list[str]] = {}
    need: list[tuple[LoreEntry, int, str]] = []  # chunks to embed
    for e in todo:
        e.tokens = len(tokenize(f"{e.name}: {e.text}"))
        e.pronouns = entry_pronouns(e)
        chunks[e.id] = chunk_entry(e, splitter)
        e.lead = lead_of(e.text, tokenize)
        e.lead_tokens = len(tokenize(f"{e.name}: {e.lead}"))
        e.chapter_sizes = chapter_sizes(e, tokenize, lead_of)  # each version of a '## From chapter N' body (b2p.gating)
        have = scan.chunk_ids.get(e.id, {}).get(e.hash[:16], set())
        if have != set(range(len(chunks[e.id]))):  # a crash after writing chunks: reuse them
            need += [(e, i, t) for i, t in enumerate(chunks[e.id])]
    done = 0

    def step(n: int) -> None:
        nonlocal done
        done += n
        if progress:
            progress(done, len(need))

    # All chunks already there (a crash after writing them): reuse them without loading the model at all.
    vectors = embedder.encode([t for _, _, t in need], progress=step) if need else np.zeros((0, 0), dtype=np.float32)
    # Chunks first, in store-sized batches; the entry records (commit markers) after them.
    store.upsert(
        col,
        [chunk_id(e.id, e.hash, i) for e, i, _ in need],
        vectors,
        [t for _, _, t in need],
        [{"type": "chunk", "entry_id": e.id, "hash": e.hash[:16], "index": i, "enabled": e.enabled} for e, i, _ in need],
    )
    by_entry: dict[str, list[int]] = {}
    for row, (e, _, _) in enumerate(need):
        by_entry.setdefault(e.id, []).append(row)
    reuse = [e for e in todo if e.id not in by_entry]
    reused = _fetch_vectors(col, reuse)
    means = []
    for e in todo:
        vecs = vectors[by_entry[e.id]] if e.id in by_entry else reused[e.id]
        m = np.asarray(vecs, dtype=np.float32).mean(axis=0)
        means.append(m / max(float(np.linalg.norm(m)), 1e-12))
    store.upsert(
        col,
        [f"e:{e.id}" for e in todo],
        np.stack(means),
        [e.text for e in todo],
        [entry_metadata(e, len(chunks[e.id])) for e in todo],
    )
    stale = [chunk_id(e.id, h, n) for e in todo for h, ix in scan.chunk_ids.get(e.id, {}).items() if h != e.hash[:16] for n in ix]
    store.delete(col, stale)


def _fetch_vectors(col: Any, entries: list[LoreEntry]) -> dict[str, Any]:
    if not entries:
        return {}
    out: dict[str, list] = {}
    got = col.get(where={"entry_id": {"$in": [e.id for e in entries]}}, include=["embeddings", "metadatas"])
    want = {e.id: e.hash[:16] for e in entries}
    for meta, vec in zip(got["metadatas"], got["embeddings"], strict=True):
        if meta.get("type") == "chunk" and meta.get("hash") == want.get(meta["entry_id"]):
            out.setdefault(meta["entry_id"], []).append(vec)
    return out


def ensure_bible(bible: str, settings: Settings, progress: Progress | None = None) -> tuple[str, IngestReport | None]:
    """``--bible NAME_OR_DIR``: a folder is ingested first (a no-op when unchanged); a name is used as is."""
    path = Path(bible)
    if path.is_dir():
        report = ingest_bible(path, settings, progress=progress)
        return report.bible, report
    if path.exists():
        raise BibleError(f"{bible}: is a file; --bible takes an ingested bible's name or a bible folder")
    if "/" in bible or bible.startswith("."):
        raise BibleError(f"{bible}: no such bible folder")
    return bible, None
