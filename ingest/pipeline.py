"""``b2p ingest``: diff a bible against its collection, embed only what changed, write crash-safely."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from b2p.embeddings import ENGINE, Embedder, ensure_onnx, model_identity
from b2p.errors import BibleError, StoreError
from b2p.index import LoreIndex, collection_state, index_root
from b2p.models import IngestReport, LoreEntry
from b2p.scene import entry_pronouns
from b2p.settings import Settings
from b2p.store import EntryChunks, Store, StoreScan
from b2p.store_guard import DamagedStore, ReadOnlyStore, set_aside
from b2p.store_names import held_name, sources
from ingest.chunking import chunk_entry, chunk_signature, chunker_version, lead_of, make_splitter
from ingest.gating import chapter_sizes, is_gated

if TYPE_CHECKING:
    from ingest.bible import Bible

Progress = Callable[[int, int], None]  # (done, total) chunks embedded


def content_hash(e: LoreEntry) -> str:
    """Hash of everything about an entry that reaches the store."""
    payload = e.model_dump(include={"id", "name", "aliases", "kind", "tags", "always", "case_sensitive", "enabled", "imported", "text", "path"})
    if is_gated(e):  # only then: an ungated entry keeps the hash (and the vectors) it had before gating existed
        payload["gating"] = e.gating or {}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _built_with(settings: Settings) -> dict[str, str]:
    """What the vectors depend on, recorded in the store (and part of its state)."""
    return {
        "embed_model": model_identity(settings.embed_model),
        "embed_engine": ENGINE,
        "chunking": chunk_signature(settings.chunk_size, settings.chunk_overlap),
        "chunker": chunker_version(),
    }


# Stores made before b2p recorded these were all built so.
_RECORDED_LATER = {"embed_engine": ENGINE}


def _refuse_mismatch(have: dict[str, Any], want: dict[str, str], name: str) -> None:
    """Vectors of another model, engine or chunking cannot be mixed in. (Another chunker version is
    not refused: ingest splits again and embeds what changed.)"""
    for key, label in (("embed_model", "embedding model"), ("embed_engine", "embedding engine"), ("chunking", "chunking")):
        got = have.get(key) or _RECORDED_LATER.get(key)
        if got != want[key]:
            raise StoreError(
                f"the store's '{name}' was built with {label} '{got}', not '{want[key]}'; "
                "vectors cannot be mixed: re-ingest with --rebuild (or use the same settings)"
            )


def _open_collection(store: Store, bible: Bible, settings: Settings, embedder: Embedder, rebuild: bool) -> None:
    """The bible's collection, created if new; refuses one built by another model or chunking."""
    want = _built_with(settings)
    exists = store.has(bible.name)
    if not exists or rebuild:
        # Load the model before creating (or dropping) anything: a typo in --embed-model must not leave a
        # collection recorded as built by a model that does not exist, nor cost the user their collection.
        embedder.load()
        if exists:
            store.drop(bible.name)
        store.create(bible.name, want)
        return
    have = store.meta(bible.name)
    _refuse_mismatch(have, want, store.name(bible.name))
    _refuse_other_source(have, bible.root, store.name(bible.name), settings)
    store.check_space(bible.name)


def _refuse_other_source(have: dict[str, Any], root: Path, name: str, settings: Settings) -> None:
    """Two folders of one name share a collection name: the second is refused while the first,
    recorded as its source, is still there (a bible that moved is simply ingested from its new place,
    and a store copied along with its bible, a project copied whole, belongs to the copy)."""
    source = have.get("source")
    if not settings.chroma_url and have.get("store_path") != _store_path(settings):
        return
    if source and Path(source) != root.resolve() and Path(source).is_dir():
        raise StoreError(
            f"{root}: the store already holds a bible '{root.resolve().name}' (collection '{name}') ingested from {source}; "
            "rename one of the folders, use another --store, or replace it with --rebuild"
        )


def ingest_bible(root: Path, settings: Settings, rebuild: bool = False, progress: Progress | None = None) -> IngestReport:
    """Ingest one bible folder into the store. Validates every file before touching the store. A
    damaged embedded store is refused with the command that rebuilds it (``--rebuild`` moves it aside)."""
    try:
        return _ingest(root, settings, rebuild, progress)
    except DamagedStore as err:
        if not rebuild or settings.chroma_url:
            raise err.with_bible(root) from None
    set_aside(settings.store)
    return _ingest(root, settings, rebuild, progress)


def _store_path(settings: Settings) -> str:
    """Where the store is, as ingest records it ("" for a server)."""
    return "" if settings.chroma_url else str(settings.store.resolve())


def _ingest(root: Path, settings: Settings, rebuild: bool, progress: Progress | None) -> IngestReport:
    from ingest.bible import bible_fingerprint, read_bible  # yaml: not for `b2p lore --bible NAME`

    started = time.perf_counter()
    if not rebuild and (same := _unchanged(root, settings)) is not None:
        same.seconds = time.perf_counter() - started
        return same
    files = bible_fingerprint(root) if root.is_dir() else ""  # taken before reading: an edit during the run shows next time
    bible = read_bible(root)  # raises BibleError before anything is written
    for e in bible.entries:
        e.hash = content_hash(e)
    embedder = Embedder(settings.embed_model, settings.cache_dir)
    # Chroma writes to its database whenever it opens one, so refusals come before opening it: a
    # mismatched model, or (for a new collection, when the model is needed anyway) a model that will
    # not load. Either way the store stays byte-for-byte as it was.
    catalog = Store.catalog(settings)
    if catalog is not None:
        held = held_name(bible.name, sources(catalog))
        have = catalog.get(held)
        if have is not None and not rebuild:
            _refuse_mismatch(have, _built_with(settings), held)
            _refuse_other_source(have, bible.root, held, settings)
        if have is None or rebuild:
            embedder.load()
    elif not settings.chroma_url:
        embedder.load()  # a new store
    name = bible.name
    bible_meta = bible.meta.model_dump_json()
    state = collection_state(((e.id, e.hash) for e in bible.entries), _built_with(settings), bible_meta)
    try:
        opened = Store.open(settings, create=True)
    except ReadOnlyStore:
        have = catalog.get(held_name(name, sources(catalog))) if catalog is not None else None
        if rebuild or not have or have.get("state") != state:
            raise
        return _same(have, name, started)  # a read-only store that holds this very bible: nothing to write
    with opened as store, store.lock(exclusive=True, bible=bible.name):
        _open_collection(store, bible, settings, embedder, rebuild)
        meta = store.meta(name)
        if meta.get("state") != state:
            # until every write below is done, no lore index may look current; the generation makes a new index key
            store.set_meta(name, {"state": "", "generation": uuid.uuid4().hex[:12]})
        rechunk = meta.get("chunker") != _built_with(settings)["chunker"]
        report = _apply(store, bible, store.scan(name), embedder, settings, progress, rechunk)
        store.set_meta(name, {
            **_built_with(settings), "bible_meta": bible_meta, "source": str(bible.root.resolve()), "store_path": _store_path(settings),
            "state": state, "files": files,
            "entries": len(bible.entries), "chunks": report.chunks, "warnings": json.dumps(bible.warnings),
        })
        if LoreIndex.load(index_root(settings), store.name(name), store.state(name)) is None:  # missing, or unreadable
            LoreIndex.build(store, name, settings).save(index_root(settings), replace=True)
    # Also after an unchanged run: an export interrupted last time is retried here.
    ensure_onnx(embedder, settings.cache_dir)
    report.warnings = bible.warnings
    report.seconds = time.perf_counter() - started
    return report


def _unchanged(root: Path, settings: Settings) -> IngestReport | None:
    """The report of a no-op ingest, when the store says this very folder was ingested complete
    with these settings and no file has changed since (path, size, time): no parsing, no Chroma."""
    from ingest.bible import bible_fingerprint, bible_name

    catalog = Store.catalog(settings)
    have = catalog.get(held_name(bible_name(root), sources(catalog))) if catalog is not None and root.is_dir() else None
    if not have or have.get("source") != str(root.resolve()) or not have.get("state") or not have.get("files") or any(have.get(k) != v for k, v in _built_with(settings).items()):
        return None
    if have["files"] != bible_fingerprint(root):
        return None
    ensure_onnx(Embedder(settings.embed_model), settings.cache_dir)  # an export interrupted last time is retried
    return _same(have, bible_name(root))


def _same(have: dict[str, Any], name: str, started: float | None = None) -> IngestReport:
    """The report of an ingest that found the store holding the bible as it is."""
    n = int(have.get("entries") or 0)
    report = IngestReport(bible=name, entries=n, added=0, updated=0, removed=0, unchanged=n, chunks=int(have.get("chunks") or 0))
    report.warnings = json.loads(have.get("warnings") or "[]")
    if started is not None:
        report.seconds = time.perf_counter() - started
    return report


def _apply(store: Store, bible: Bible, scan: StoreScan, embedder: Embedder, settings: Settings, progress: Progress | None,
           rechunk: bool) -> IngestReport:
    """Write what changed. ``rechunk``: the chunker differs from the one that made the stored chunks,
    so every entry is split again; one whose chunks come out the same keeps its vectors."""
    report = IngestReport(bible=bible.name, entries=len(bible.entries), added=0, updated=0, removed=0, unchanged=0, chunks=0)
    todo: list[LoreEntry] = []
    counts: dict[str, int] = {}  # entry id → its chunks in the store after this run
    for e in bible.entries:
        rec = scan.entries.get(e.id)
        if rec and rec.entry.hash == e.hash and scan.chunk_ids.get(e.id, {}).get(e.hash[:16]) == set(range(rec.chunks)):
            counts[e.id] = rec.chunks
            if not rechunk:
                continue
        elif rec is None and e.id not in scan.chunk_ids:
            report.added += 1
        else:
            report.updated += 1
        todo.append(e)
    report.removed = len(set(scan.entries) - {e.id for e in bible.entries})
    if todo:
        written = _write_entries(store, bible.name, todo, scan, embedder, settings, progress, rechunk, set(counts))
        report.updated += sum(1 for i in written if i in counts)  # current entries the new chunker splits differently
        counts.update(written)
    report.unchanged = report.entries - report.added - report.updated
    report.chunks = sum(counts.values())
    # After the new records: old chunks, removed entries, leftovers of an interrupted ingest.
    store.delete_stale(bible.name, scan, {e.id: (e.hash, counts[e.id]) for e in bible.entries})
    return report


def _write_entries(store: Store, bible: str, todo: list[LoreEntry], scan: StoreScan, embedder: Embedder, settings: Settings,
                   progress: Progress | None, rechunk: bool = False, current: set[str] | None = None) -> dict[str, int]:
    """Chunk the entries; embed and write those whose chunks the store does not hold yet. ``current``:
    entries whose records are up to date, split again only because ``rechunk``: left alone when their
    chunks come out the same. Returns the chunk count of every entry written."""
    tokenize = embedder.tokenizer()
    splitter = make_splitter(settings.chunk_size, settings.chunk_overlap, tokenize)
    chunks = {e.id: chunk_entry(e, splitter) for e in todo}
    # Chunks already stored for an entry's content (a crash after writing them, or a new chunker
    # that splits it as the old one did) are reused without embedding them again.
    held = {e.id for e in todo if scan.chunk_ids.get(e.id, {}).get(e.hash[:16], set()) == set(range(len(chunks[e.id])))}
    if rechunk and held:
        stored = store.chunk_texts(bible, {i: (e.hash, len(chunks[i])) for e in todo if (i := e.id) in held})
        held = {i for i in held if stored.get(i) == chunks[i]}
    items: list[EntryChunks] = []
    for e in todo:
        if current and e.id in current and e.id in held:
            continue  # up to date, and the same chunks
        e.tokens = len(tokenize(f"{e.name}: {e.text}"))
        e.pronouns = entry_pronouns(e)
        e.lead = lead_of(e.text, tokenize)
        e.lead_tokens = len(tokenize(f"{e.name}: {e.lead}"))
        e.chapter_sizes = chapter_sizes(e, tokenize, lead_of)  # each version of a '## From chapter N' body (b2p.gating)
        items.append(EntryChunks(e, chunks[e.id]))
    need = [it for it in items if it.entry.id not in held]
    texts = [t for it in need for t in it.chunks]
    done = 0

    def step(n: int) -> None:
        nonlocal done
        done += n
        if progress:
            progress(done, len(texts))

    # All chunks already there: reuse them without loading the model at all.
    if texts:
        vectors = embedder.encode(texts, progress=step)
        row = 0
        for it in need:
            it.vectors = vectors[row : row + len(it.chunks)]
            row += len(it.chunks)
    store.write_entries(bible, items)
    return {it.entry.id: len(it.chunks) for it in items}


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
