"""The lore index: the read side of one bible's collection, derived from the store and kept beside it.

Chroma is the store of record: ingest writes there, crash-safely. But answering "what lore does
this beat pull in?" from Chroma alone means, in every new process, importing chromadb (~1.2 s),
reading every entry record (seconds at 10k entries) and rebuilding the name matcher (~1 s).
So the index keeps, per collection *state*, what retrieval reads, as data only — nothing in it
is ever unpickled, so a store folder handed over by someone else cannot run code:

- named plain-data tables (``TABLES``), one JSON file each, read on first use: the enabled
  entries' metadata (without their text), their texts, every entry record (disabled ones too)
  for ``b2p entries``, the ``always`` entries, the case-sensitive name words, the name matcher's
  keys (its automata are rebuilt from them), the scene's noun tables, the relation table read
  from the lore, what each thing is and has (``parts``), the words and links that describe each
  person (``descriptions``), each chunk's entry, hash and snippet, and the ``gating`` table (the
  entries whose lore unfolds by chapter, the chunk rows that unlock later: ``b2p.gating``, read by
  ``at_chapter(n)``, the view at a chapter). Adding a table is one line in
  ``TABLES``; ``LoreIndex.table(name)`` reads it;
- every current chunk's vector as one float32 matrix (``vectors.npy``, memory-mapped, loaded
  with ``allow_pickle=False``), so the similarity search is an exact cosine scan: a few
  milliseconds at 10k entries (17k chunks), no HNSW approximation. It does not use Chroma's HNSW
  index at all: in chromadb 1.5.9 a ``kill -9`` during a write can leave records that ``get``
  returns but a query never finds again, even after reopening (6 of 12 kills in our stress run;
  chroma#7758 reports the same after deletes and upserts). The vectors read back from Chroma's
  SQLite are always whole;
- ``index.json``: which bible, state, model and engine the rest belongs to.

The state is a hash of the collection's entries (ids and content hashes), how they were embedded
and the bible's notes; ingest blanks it before writing and sets it when done, so an interrupted
ingest never leaves an index that looks current. An index is saved only for a clean state and is
keyed by it and by the code that built it, so editing the bible or upgrading b2p makes a new one
(and an index of an older format is never opened, only deleted). Anything unreadable is rebuilt
from the store; deleting the folder loses nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from b2p.errors import StoreError
from b2p import gating
from b2p.matcher import NameMatcher
from b2p.models import BibleMeta, LoreEntry
from b2p.describe import Descriptions
from b2p.nouns import Describers, entry_pronouns, is_person
from b2p.parts import Parts
from b2p.relations import Relations
from b2p.settings import Settings
from b2p.store import Store, StoredEntry, chunk_header

INDEX_DIR = "b2p-index"  # inside an embedded store's folder
HEAD = "index.json"
VECTORS = "vectors.npy"
_FORMAT = 2  # 1 was pickles: a folder of that format has another code key, so it is never opened
_CODE = ("index.py", "matcher.py", "scene.py", "nouns.py", "models.py", "lexicon.py", "relations.py", "parts.py", "describe.py", "phrases.py",
         "dates.py", "gating.py")  # what the saved tables are built by
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")


@dataclass
class Source:
    """What the tables are built from: one read of the collection."""

    enabled: list[LoreEntry]  # with their texts
    stored: list[StoredEntry]  # every entry record, disabled ones too
    chunk_entry: list[str]  # per current chunk of an enabled entry, in the order of the vectors
    chunk_hash: list[str]
    chunk_snippet: list[str]
    chunk_from: list[int] = field(default_factory=list)  # the chapter each chunk unlocks at (b2p.gating; 0: always)

    @cached_property
    def matcher(self) -> NameMatcher:
        return NameMatcher(self.enabled)

    @cached_property
    def find(self) -> Callable[[str], list[Any]]:
        """The matcher's ``find``, remembered per sentence: relations, parts and descriptions read the same lore."""
        from functools import lru_cache

        return lru_cache(maxsize=None)(self.matcher.find)

    @cached_property
    def texts(self) -> dict[str, str]:
        return {e.id: e.text for e in self.enabled}


def _row(e: LoreEntry) -> dict[str, Any]:
    return e.model_dump(mode="json", exclude={"text"}) | {"text": ""}


# The index's tables: name → (the type of its plain data, how it is built from the collection).
# The data is JSON: dicts, lists, strings, numbers. Adding a table is one line here.
TABLES: dict[str, tuple[type, Callable[[Source], Any]]] = {
    "entries": (dict, lambda s: {e.id: _row(e) for e in s.enabled}),
    "texts": (dict, lambda s: {e.id: e.text for e in s.enabled}),
    "listing": (list, lambda s: [[_row(x.entry), x.chunks] for x in s.stored]),
    "always": (list, lambda s: [e.id for e in s.enabled if e.always]),
    "case_words": (dict, lambda s: {w: sorted(ids) for w, ids in _case_words(s.enabled).items()}),
    "matcher": (dict, lambda s: s.matcher.to_data()),
    "describers": (dict, lambda s: Describers(s.enabled).to_data()),
    "relations": (dict, lambda s: Relations.build(s.enabled, s.texts, s.find, is_person).to_data()),
    "parts": (dict, lambda s: Parts.build(s.enabled, s.texts, s.find, is_person).to_data()),
    "descriptions": (dict, lambda s: Descriptions.build(s.enabled, s.texts, s.find, is_person).to_data()),
    "chunks": (dict, lambda s: {"entry": s.chunk_entry, "hash": s.chunk_hash, "snippet": s.chunk_snippet}),
    "gating": (dict, lambda s: gating.gating_table(s.enabled, {e.id: e.text for e in s.enabled}, s.chunk_entry, s.chunk_from)),
}


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
    """One bible's entries, matcher, noun tables and chunk vectors, as retrieval reads them.

    Tables and vectors are read from the saved folder on first use. One that cannot be read
    (damaged, or not ours) is rebuilt from the store through ``recover``, set by ``open_index``."""

    def __init__(self, head: dict[str, Any], tables: dict[str, Any], vectors: Any, folder: Path | None) -> None:
        self.bible: str = head["bible"]
        self.state: str = head["state"]
        self.embed_model: str = head["embed_model"]
        self._head = head
        self._tables = tables
        self._vectors = vectors  # (chunks, dim) float32, L2-normalised; None until read
        self._folder = folder
        self._made: dict[str, Any] = {}
        self.recover: Callable[[], LoreIndex] | None = None

    # -- building ------------------------------------------------------------------------------

    @classmethod
    def build(cls, store: Store, bible: str, settings: Settings) -> LoreIndex:
        """Read the collection once: entry records, then every chunk's text and vector."""
        import numpy as np

        meta = store.meta(bible)
        key = store.state(bible)  # read again below: an index read while an ingest wrote is never saved
        scan = store.scan(bible, with_text=True, chunks=False)
        enabled = {i: s.entry for i, s in scan.entries.items() if s.entry.enabled}
        for e in enabled.values():  # read again by this code, so a store ingested before it agrees with it
            e.pronouns = entry_pronouns(e)
        src = Source(list(enabled.values()), list(scan.entries.values()), [], [], [])
        vecs = []
        for c in store.chunk_vectors(bible):
            e = enabled.get(c.entry_id)
            if e is None or e.hash[:16] != c.hash16:
                continue  # a disabled entry's chunk, or a stale one an interrupted ingest left
            src.chunk_entry.append(c.entry_id)
            src.chunk_hash.append(c.hash16)
            src.chunk_snippet.append(snippet(c.text, e))
            src.chunk_from.append(gating.chunk_chapter(c.text, chunk_header(e)))
            vecs.append(np.asarray(c.vector, dtype=np.float32))
        vectors = np.vstack(vecs) if vecs else np.zeros((0, 1), dtype=np.float32)
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        head = {
            "format": _FORMAT,
            "bible": store.name(bible),
            "state": key if key == store.state(bible) else "",
            "embed_model": meta.get("embed_model") or settings.embed_model,
            "bible_meta": meta.get("bible_meta") or "",
            "chunks": len(vectors),
        }
        return cls(head, {name: build(src) for name, (_, build) in TABLES.items()}, vectors, None)

    def save(self, root: Path, replace: bool = False) -> Path | None:
        """Write the index under ``root`` atomically (a temporary folder renamed into place).
        Only a clean state is saved. ``replace``: the saved one could not be read, so it is swapped
        out; otherwise a folder already there (another process saved it first) is kept."""
        if not self.state:
            return None
        import numpy as np

        from b2p.atomic import atomic_folder

        target = _folder(root, self.bible, self.state)
        if target.is_dir() and not replace:
            return target
        try:
            with atomic_folder(target, replace=replace) as tmp:
                tmp.chmod(0o755)  # as readable as the store around it
                for name in TABLES:
                    _write_json(tmp / f"{name}.json", self.table(name))
                np.save(tmp / VECTORS, np.ascontiguousarray(self.vectors, dtype=np.float32), allow_pickle=False)
                _write_json(tmp / HEAD, self._head)
        except OSError:
            return target if target.is_dir() else None  # a read-only store
        for old in target.parent.iterdir():  # earlier states or formats of this collection, leftovers of killed saves
            with contextlib.suppress(OSError):
                saving = old.name.endswith(".tmp") and time.time() - old.stat().st_mtime < 3600  # another process's, now
                if old != target and not saving:
                    shutil.rmtree(old, ignore_errors=True)
        self._folder = target
        return target

    # -- loading -------------------------------------------------------------------------------

    @classmethod
    def load(cls, root: Path, bible: str, state: str) -> LoreIndex | None:
        """The saved index of this collection state, or None (missing, from other code, unreadable).
        Only its head is read here; tables and vectors are read when first used."""
        folder = _folder(root, bible, state)
        try:
            head = _read_json(folder / HEAD)
            ok = (isinstance(head, dict) and head.get("format") == _FORMAT and head.get("state") == state
                  and all(isinstance(head.get(k), str) for k in ("bible", "embed_model", "bible_meta"))
                  and isinstance(head.get("chunks"), int))
        except (OSError, ValueError, RecursionError):  # RecursionError: JSON nested to no end
            return None
        return cls(head, {}, None, folder) if ok else None

    # -- reading -------------------------------------------------------------------------------

    def table(self, name: str) -> Any:
        """One of ``TABLES``, as plain data."""
        if name not in self._tables:
            try:
                data = _read_json(self._folder / f"{name}.json")  # type: ignore[operator]
                _check(name, data)
            except (OSError, ValueError, RecursionError):
                self._recover()
                return self._tables[name]
            self._tables[name] = data
        return self._tables[name]

    @property
    def vectors(self) -> Any:
        """Every current chunk's vector, L2-normalised: a (chunks, dim) float32 matrix."""
        if self._vectors is None:
            import numpy as np

            try:
                v = np.load(self._folder / VECTORS, mmap_mode="r", allow_pickle=False)  # type: ignore[operator]
                if v.dtype != np.float32 or v.ndim != 2 or len(v) != self._head["chunks"]:
                    raise ValueError("vectors do not fit the index")
            except (OSError, ValueError, EOFError):
                self._recover()
            else:
                self._vectors = v
        return self._vectors

    def _recover(self) -> None:
        """A table or the vectors could not be read: take everything from a fresh build."""
        if self.recover is None:
            raise StoreError(f"the lore index of '{self.bible}' is damaged; delete {self._folder} and run again")
        fresh = self.recover()
        self._head, self._tables, self._vectors, self._folder = fresh._head, fresh._tables, fresh.vectors, None

    def _object(self, name: str, make: Callable[[Any], Any]) -> Any:
        """A table made into the object retrieval uses (once); data it cannot be made from is rebuilt."""
        if name not in self._made:
            try:
                self._made[name] = make(self.table(name))
            except Exception:  # noqa: BLE001 - a damaged or foreign table is rebuilt, never trusted
                if self._folder is None:
                    raise  # built from the store just now: a real error
                self._recover()
                self._made[name] = make(self.table(name))
        return self._made[name]

    @property
    def bible_meta(self) -> BibleMeta:
        raw = self._head["bible_meta"]
        return BibleMeta(**json.loads(raw)) if raw else BibleMeta()

    @property
    def entries(self) -> EntryTable:
        return self._object("entries", _entry_table)

    @property
    def always(self) -> list[str]:
        return self.table("always")

    @property
    def case_words(self) -> dict[str, set[str]]:
        return self._object("case_words", lambda d: {w: set(ids) for w, ids in d.items()})

    @property
    def matcher(self) -> NameMatcher:
        return self._object("matcher", NameMatcher.from_data)

    @property
    def describers(self) -> Describers:
        return self._object("describers", Describers.from_data)

    @property
    def relations(self) -> Relations:
        return self._object("relations", Relations.from_data)

    @property
    def parts(self) -> Parts:
        return self._object("parts", Parts.from_data)

    @property
    def descriptions(self) -> Descriptions:
        return self._object("descriptions", Descriptions.from_data)

    def _chunk_lists(self, data: dict[str, Any]) -> tuple[list[str], list[str], list[str]]:
        lists = (data["entry"], data["hash"], data["snippet"])
        if not all(isinstance(x, list) and len(x) == self._head["chunks"] for x in lists):
            raise ValueError("chunks: do not fit the index")
        return lists

    @property
    def chunk_entry(self) -> list[str]:
        return self._object("chunks", self._chunk_lists)[0]

    @property
    def chunk_hash(self) -> list[str]:
        return self._object("chunks", self._chunk_lists)[1]

    @property
    def chunk_snippet(self) -> list[str]:
        return self._object("chunks", self._chunk_lists)[2]

    @property
    def gating(self) -> dict[str, Any]:
        """The ``gating`` table: which entries' lore unfolds by chapter, which chunk rows unlock later."""
        return self.table("gating")

    def at_chapter(self, chapter: int | None) -> Any:
        """The index as the story stands at ``chapter`` (``from``/``until``/``## From chapter N``/
        ``aliases_from``): itself when nothing is gated or no chapter is given. See ``b2p/gating.py``."""
        return gating.at_chapter(self, chapter)

    def texts(self) -> dict[str, str]:
        """Every enabled entry's full text, by id."""
        return self._object("texts", _texts)

    def listing(self) -> list[StoredEntry]:
        """Every entry record, disabled ones too (without their text), with its chunk count."""
        return self._object("listing", lambda rows: [StoredEntry(LoreEntry.model_construct(**row), int(n)) for row, n in rows])

    def nearest(self, vectors: Any, n: int) -> list[list[tuple[str, float, str]]]:
        """For each query vector (one matrix product for all), the ``n`` most similar chunks:
        (entry id, cosine, snippet), best first."""
        return scan(self, lambda: self.vectors, vectors, n, self.chunk_entry, self.chunk_snippet)


def scan(owner: Any, matrix: Callable[[], Any], vectors: Any, n: int, chunk_entry: Sequence[str],
         chunk_snippet: Sequence[str]) -> list[list[tuple[str, float, str]]]:
    """The exact similarity scan ``nearest`` runs over ``matrix()`` (chunks × dim, L2-normalised, read
    only when there is something to ask), on one BLAS thread: for each query, the ``n`` best chunks as
    (entry id, cosine, snippet). Shared by the index and a chapter's view of it."""
    import numpy as np

    queries = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
    if n <= 0 or not len(chunk_entry):
        return [[] for _ in queries]
    with one_thread(owner):
        sims = np.asarray(matrix() @ queries.T).T  # (queries, chunks)
    n = min(n, sims.shape[1])
    out = []
    for row in sims:
        top = np.argpartition(-row, n - 1)[:n]
        top = top[np.argsort(-row[top], kind="stable")]
        out.append([(chunk_entry[r], float(row[r]), chunk_snippet[r]) for r in top])
    return out


def one_thread(owner: Any) -> Any:
    """numpy's BLAS held to one thread for the similarity scan. A few queries against the chunk matrix
    take well under a millisecond on one core; woken on two, OpenBLAS's threads spin after the product
    and starve the embedding that follows (measured at 1k entries on a loaded 2-core machine: 98 ms a
    beat against 6.5 ms). The controller is made once per ``owner`` (an index or a chapter view)."""
    import contextlib

    pool = getattr(owner, "_blas", None)
    if pool is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # pragma: no cover - a dependency; without it the scan only runs unbounded
            return contextlib.nullcontext()
        pool = owner._blas = ThreadpoolController()
    return pool.limit(limits=1, user_api="blas")


def _check(name: str, data: Any) -> None:
    """A table file of the wrong shape (damaged, or not ours) fails here and the index is rebuilt,
    rather than failing later inside retrieval."""
    kind = TABLES[name][0]
    if not isinstance(data, kind):
        raise ValueError(f"{name}: not a {kind.__name__}")


def _entry_table(rows: dict[str, Any]) -> EntryTable:
    if not all(isinstance(r, dict) and isinstance(r.get("name"), str) for r in rows.values()):
        raise ValueError("entries: not entry rows")
    return EntryTable(rows)


def _texts(texts: dict[str, Any]) -> dict[str, str]:
    if not all(isinstance(t, str) for t in texts.values()):
        raise ValueError("texts: not texts")
    return texts


def _read_json(path: Path) -> Any:
    with open(path, "rb") as fh:
        return json.loads(fh.read())


def _write_json(path: Path, data: Any) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(data, fh, ensure_ascii=False, separators=(",", ":"))


def _folder(root: Path, bible: str, state: str) -> Path:
    content, _, generation = state.partition(".")  # see Store.state
    return root / bible / f"{content[:24]}{'.' + generation if generation else ''}-{_code_key()}"


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


def open_index(settings: Settings, store: Store, bible: str) -> LoreIndex:
    """The bible's index: loaded when saved for its current state, else built from the store (and
    saved when the state is clean). A saved table found unreadable later is rebuilt the same way."""
    root = index_root(settings)

    def rebuild() -> LoreIndex:
        store.check_space(bible)
        index = LoreIndex.build(store, bible, settings)
        with contextlib.suppress(OSError):
            index.save(root, replace=True)  # missing, or there but unreadable
        return index

    state = store.state(bible)
    index = LoreIndex.load(root, store.name(bible), state) if state else None
    if index is None:
        index = rebuild()
    index.recover = rebuild
    return index
