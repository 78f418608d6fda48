"""The lore index: the read side of one bible's collection, derived from the store and kept beside it.

Chroma is the store of record: ingest writes there, crash-safely. But answering "what lore does
this beat pull in?" from Chroma alone means, in every new process, importing chromadb (~1.2 s),
reading every entry record (seconds at 10k entries) and rebuilding the name matcher (~1 s).
So the index keeps, per collection *state*, what retrieval reads:

- the enabled entries' metadata (without their text), the name matcher's automaton, the scene's
  noun tables, the relation table read from the lore (``relations.Relations.to_data()``, plain
  data) and the case-sensitive name words, in ``index.pkl``;
- every current chunk's vector as one float32 matrix (``vectors.npy``, memory-mapped), so the
  similarity search is an exact cosine scan: a few milliseconds at 10k entries (17k chunks), no
  HNSW approximation. It does not use Chroma's HNSW index at all: in chromadb 1.5.9 a ``kill -9``
  during a write can leave records that ``get`` returns but a query never finds again, even after
  reopening (6 of 12 kills in our stress run; chroma#7758 reports the same after deletes and
  upserts). The vectors read back from Chroma's SQLite are always whole;
- the ``gating`` table (``b2p.gating.gating_table``): the entries whose lore unfolds by chapter and
  the chunk rows that unlock after chapter 1, read by ``at_chapter(n)``, the view at a chapter;
- the entries' full texts, loaded only when a prompt or a shared alias needs them (``texts.pkl``),
  and every entry record, disabled ones too, for ``b2p entries`` (``entries.pkl``).

The state is a hash of the collection's entries (ids and content hashes), how they were embedded
and the bible's notes; ingest blanks it before writing and sets it when done, so an interrupted
ingest never leaves an index that looks current. An index is saved only for a clean state and is
keyed by it and by the code that built it, so editing the bible or upgrading b2p makes a new one.
Anything unreadable is rebuilt from the store; deleting the folder loses nothing.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import os
import pickle
import re
import shutil
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from b2p import gating
from b2p.matcher import NameMatcher
from b2p.models import BibleMeta, LoreEntry
from b2p.relations import Relations
from b2p.scene import Describers, is_person
from b2p.settings import Settings
from b2p.store import Store, StoredEntry, chunk_header, collection_name, parse_chunk_id

INDEX_DIR = "b2p-index"  # inside an embedded store's folder
_FORMAT = 1
_CODE = ("index.py", "matcher.py", "scene.py", "nouns.py", "models.py", "lexicon.py", "relations.py", "gating.py")  # what the saved objects are built by
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")


def collection_state(entries: Iterable[tuple[str, str]], built_with: dict[str, str], bible_meta: str) -> str:
    """The identity of a collection's content: (entry id, content hash) pairs, model, chunking, notes."""
    payload = json.dumps({"entries": sorted(entries), "built_with": built_with, "meta": bible_meta}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def _code_key() -> str:
    here = Path(__file__).parent
    h = hashlib.sha256(str(_FORMAT).encode())
    for name in _CODE:
        h.update((here / name).read_bytes())
    return h.hexdigest()[:12]


def index_root(settings: Settings) -> Path:
    """Where a store's indexes live: inside an embedded store; per server URL in the cache otherwise."""
    if settings.chroma_url:
        return settings.cache_dir / "index" / hashlib.sha256(settings.chroma_url.rstrip("/").encode()).hexdigest()[:16]
    return settings.store / INDEX_DIR


class EntryTable(Mapping[str, LoreEntry]):
    """Entries by id, made into ``LoreEntry`` objects on first use: a beat touches a handful of 10k."""

    def __init__(self, rows: dict[str, dict[str, Any]]) -> None:
        self._rows = rows
        self._made: dict[str, LoreEntry] = {}

    def __getitem__(self, entry_id: str) -> LoreEntry:
        e = self._made.get(entry_id)
        if e is None:
            e = self._made[entry_id] = LoreEntry.model_construct(**self._rows[entry_id])
        return e

    def __iter__(self) -> Iterator[str]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, entry_id: object) -> bool:
        return entry_id in self._rows


class LoreIndex:
    """One bible's entries, matcher, noun tables and chunk vectors, as retrieval reads them."""

    def __init__(self, data: dict[str, Any], vectors: Any, folder: Path | None, side: dict[str, Any] | None = None) -> None:
        self.bible: str = data["bible"]
        self.state: str = data["state"]
        self.embed_model: str = data["embed_model"]
        self.bible_meta = BibleMeta(**json.loads(data["bible_meta"])) if data["bible_meta"] else BibleMeta()
        self.entries = EntryTable(data["entries"])
        self.always: list[str] = data["always"]
        self.case_words: dict[str, set[str]] = data["case_words"]
        self.matcher: NameMatcher = data["matcher"]
        self.describers: Describers = data["describers"]
        self.relations = Relations.from_data(data.get("relations") or {})
        self.gating: dict[str, Any] = data.get("gating") or {}  # b2p.gating.gating_table: what unlocks by chapter
        self.chunk_entry: list[str] = data["chunk_entry"]
        self.chunk_hash: list[str] = data["chunk_hash"]
        self.chunk_snippet: list[str] = data["chunk_snippet"]
        self.vectors = vectors  # (chunks, dim) float32, L2-normalised
        self._data = data
        self._folder = folder
        self._side: dict[str, Any] = side or {}  # texts, entries: read from the folder on first use

    # -- building ------------------------------------------------------------------------------

    @classmethod
    def build(cls, store: Store, col: Any, settings: Settings) -> LoreIndex:
        """Read the collection once: entry records, then every chunk's text and vector."""
        import numpy as np

        meta = store.b2p_meta(col)
        scan = store.scan(col, with_text=True, chunks=False)
        entries = {i: s.entry for i, s in scan.entries.items() if s.entry.enabled}
        rows, texts = {}, {}
        for i, e in entries.items():
            texts[i] = e.text
            rows[i] = e.model_dump(exclude={"text"}) | {"text": ""}
        chunk_entry, chunk_hash, snippets, vecs, chunk_from = [], [], [], [], []
        page = 5000
        offset = 0
        while True:
            got = col.get(where={"type": "chunk"}, include=["documents", "embeddings"], limit=page, offset=offset)
            for n, cid in enumerate(got["ids"]):
                entry_id, h16, _ = parse_chunk_id(cid)
                e = entries.get(entry_id)
                if e is None or e.hash[:16] != h16:
                    continue  # a disabled entry's chunk, or a stale one an interrupted ingest left
                chunk_entry.append(entry_id)
                chunk_hash.append(h16)
                snippets.append(snippet(got["documents"][n] or "", e))
                chunk_from.append(gating.chunk_chapter(got["documents"][n] or "", chunk_header(e)))
                vecs.append(np.asarray(got["embeddings"][n], dtype=np.float32))
            if len(got["ids"]) < page:
                break
            offset += page
        vectors = np.vstack(vecs) if vecs else np.zeros((0, 1), dtype=np.float32)
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        matcher = NameMatcher(entries.values())
        data = {
            "bible": col.name,
            "state": meta.get("state") or "",
            "embed_model": meta.get("embed_model") or settings.embed_model,
            "bible_meta": meta.get("bible_meta") or "",
            "entries": rows,
            "always": [i for i, e in entries.items() if e.always],
            "case_words": _case_words(entries.values()),
            "matcher": matcher,
            "describers": Describers(entries.values()),
            "relations": Relations.build(entries.values(), texts, matcher.find, is_person).to_data(),
            "chunk_entry": chunk_entry,
            "chunk_hash": chunk_hash,
            "chunk_snippet": snippets,
            "gating": gating.gating_table(entries.values(), texts, chunk_entry, chunk_from),
        }
        listing = [(s.entry.model_dump(exclude={"text"}), s.chunks) for s in scan.entries.values()]
        return cls(data, vectors, None, {"texts": texts, "entries": listing})

    def save(self, root: Path, replace: bool = False) -> Path | None:
        """Write the index under ``root`` atomically (a temporary folder renamed into place).
        Only a clean state is saved. ``replace``: the saved one could not be read, so it is swapped
        out; otherwise a folder already there (another process saved it first) is kept."""
        if not self.state:
            return None
        import numpy as np

        target = _folder(root, self.bible, self.state)
        if target.is_dir() and not replace:
            return target
        tmp = target.parent / f".tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            if target.is_dir():
                os.rename(target, tmp.with_name(tmp.name + "-damaged"))
            tmp.mkdir(parents=True)
            with open(tmp / "index.pkl", "wb") as fh:
                pickle.dump(self._data, fh, protocol=pickle.HIGHEST_PROTOCOL)
            np.save(tmp / "vectors.npy", np.ascontiguousarray(self.vectors, dtype=np.float32))
            for name in ("texts", "entries"):
                with open(tmp / f"{name}.pkl", "wb") as fh:
                    pickle.dump(self._load(name), fh, protocol=pickle.HIGHEST_PROTOCOL)
            for f in tmp.iterdir():
                with open(f, "rb") as fh:
                    os.fsync(fh.fileno())
            os.rename(tmp, target)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            return None if not target.is_dir() else target  # read-only store, or another process won
        for old in target.parent.iterdir():  # earlier states of this collection, leftovers of killed saves
            with contextlib.suppress(OSError):
                busy = old.name.startswith(".tmp-") and not old.name.endswith("-damaged") and time.time() - old.stat().st_mtime < 3600
                if old != target and not busy:
                    shutil.rmtree(old, ignore_errors=True)
        self._folder = target
        return target

    # -- loading -------------------------------------------------------------------------------

    @classmethod
    def load(cls, root: Path, bible: str, state: str) -> LoreIndex | None:
        """The saved index of this collection state, or None (missing, from other code, unreadable)."""
        folder = _folder(root, bible, state)
        try:
            with open(folder / "index.pkl", "rb") as fh:
                data = _unpickle(fh)
            import numpy as np

            vectors = np.load(folder / "vectors.npy", mmap_mode="r")
            if data["state"] != state or len(vectors) != len(data["chunk_entry"]):
                return None
        except FileNotFoundError:
            return None
        except Exception:  # noqa: BLE001 - a damaged cache is rebuilt, never trusted
            return None
        return cls(data, vectors, folder)

    # -- reading -------------------------------------------------------------------------------

    def at_chapter(self, chapter: int | None) -> Any:
        """The index as the story stands at ``chapter`` (``from``/``until``/``## From chapter N``/
        ``aliases_from``): itself when nothing is gated or no chapter is given. See ``b2p/gating.py``."""
        return gating.at_chapter(self, chapter)

    def texts(self) -> dict[str, str]:
        """Every enabled entry's full text, by id."""
        return self._load("texts")

    def listing(self) -> list[StoredEntry]:
        """Every entry record, disabled ones too (without their text), with its chunk count."""
        return [StoredEntry(LoreEntry.model_construct(**row), chunks) for row, chunks in self._load("entries")]

    def _load(self, name: str) -> Any:
        if name not in self._side:
            with open(self._folder / f"{name}.pkl", "rb") as fh:  # type: ignore[operator]
                self._side[name] = _unpickle(fh)
        return self._side[name]

    def nearest(self, vectors: Any, n: int) -> list[list[tuple[str, float, str]]]:
        """For each query vector (one matrix product for all), the ``n`` most similar chunks:
        (entry id, cosine, snippet), best first."""
        import numpy as np

        queries = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        if n <= 0 or not len(self.vectors):
            return [[] for _ in queries]
        sims = np.asarray(self.vectors @ queries.T).T  # (queries, chunks)
        n = min(n, sims.shape[1])
        out = []
        for row in sims:
            top = np.argpartition(-row, n - 1)[:n]
            top = top[np.argsort(-row[top], kind="stable")]
            out.append([(self.chunk_entry[r], float(row[r]), self.chunk_snippet[r]) for r in top])
        return out


def _unpickle(fh: Any) -> Any:
    """pickle.load without the cyclic GC: it would sweep again and again over the ~10^5 objects
    being created (2–3× the load time at 10k entries); they hold no cycles to collect."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        return pickle.load(fh)
    finally:
        if enabled:
            gc.enable()


def _folder(root: Path, bible: str, state: str) -> Path:
    return root / bible / f"{state[:24]}-{_code_key()}"


def _case_words(entries: Iterable[LoreEntry]) -> dict[str, set[str]]:
    """Capitalised words of case-sensitive names ("Wren", "Mercy") → their entries."""
    out: dict[str, set[str]] = {}
    for e in entries:
        if e.case_sensitive:
            for k in e.keys():
                for w in _WORD.findall(k):
                    if w[0].isupper():
                        out.setdefault(w.lower(), set()).add(e.id)
    return out


def snippet(doc: str, e: LoreEntry) -> str:
    """What a 'similar' pick shows as its match: the start of the chunk that matched."""
    body = doc.split(": ", 1)[1] if doc.startswith(e.name) and ": " in doc else doc
    return body[:60].rsplit(" ", 1)[0] + "…" if len(body) > 60 else body


def current_state(settings: Settings, store: Store, bible: str) -> tuple[str, Any]:
    """The collection's state ("" while an ingest is unfinished) and, when it had to be opened, the
    collection. An embedded store's state is read from Chroma's catalog without importing chromadb."""
    catalog = Store.catalog(settings)
    name = collection_name(bible)
    if catalog is not None and name in catalog:
        return catalog[name].get("state") or "", None
    col = store.collection(bible)
    return store.b2p_meta(col).get("state") or "", col


def open_index(settings: Settings, store: Store, bible: str) -> tuple[LoreIndex, Any]:
    """The bible's index: loaded when saved for its current state, else built from the store (and
    saved when the state is clean). Returns the collection too when it was opened on the way."""
    state, col = current_state(settings, store, bible)
    root = index_root(settings)
    if state and (index := LoreIndex.load(root, collection_name(bible), state)) is not None:
        return index, col
    if col is None:
        col = store.collection(bible)
    store.check_space(col)
    index = LoreIndex.build(store, col, settings)
    with contextlib.suppress(OSError):
        index.save(root, replace=True)  # missing, or there but unreadable
    return index, col

