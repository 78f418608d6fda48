"""``ingest_bible`` against a real embedded Chroma and the real embedding model.

Counts on first run / unchanged re-run / edit / delete / add, what the store holds afterwards
(read back from Chroma alone), the refusal to mix embedding models, and that a refused ingest
leaves an existing store byte-for-byte as it was.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from b2p.embeddings import DEFAULT_EMBED_MODEL, ENGINE, Embedder, OnnxEmbedder, model_identity, onnx_file, query_embedder, resolve_model_path
from b2p.errors import BibleError, ModelError, StoreError
from b2p.settings import Settings, load_settings
from b2p.store import Store, chunk_id, collection_name, parse_chunk_id
from ingest.bible import read_bible
from ingest import pipeline
from ingest.chunking import chunker_version
from ingest.pipeline import content_hash, ingest_bible

BIBLES = Path(__file__).resolve().parent.parent / "story_bibles"

LONG_BODY = "\n\n".join(
    " ".join(
        f"Outpost Meridian's {part} ring was built in year {n} of the charter, and its {part} crews still argue "
        f"about whether the {part} seals were ever rated for a full lunar night."
        for n in range(k, k + 6)
    )
    for k, part in ((1, "north"), (10, "south"), (20, "east"), (30, "west"))
)

ENTRIES = {
    "characters/jack.md": "---\nname: Jack Halloran\naliases: [Jack, Dusty]\ntags: [miner]\n---\nJack cuts regolith out of Varro Crater and reads rock by feel.\n",
    "characters/selene.md": "---\nname: Dr. Selene Thorne\naliases: [Selene, the doc]\ncase_sensitive: true\n---\nA planetary geologist who catalogues seismic anomalies.\n",
    "places/meridian.md": f"---\nname: Outpost Meridian\naliases: [Meridian, the base]\n---\n{LONG_BODY}\n",
    "notes/style.md": "---\nname: Style\nalways: true\n---\nTerse dialogue; dread from silence and vacuum.\n",
    "history.md": "---\nname: The Long Night\n---\nThe fourteen-day lunar night that nearly killed the first crew.\n",
}


def make_bible(root: Path, entries: dict[str, str] = ENTRIES) -> Path:
    for rel, text in entries.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


@pytest.fixture()
def bible(tmp_path: Path) -> Path:
    return make_bible(tmp_path / "moonbase")


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    return load_settings(None, store=tmp_path / "store")


def records(settings: Settings, bible: str) -> dict[str, dict[str, Any]]:
    """Every record of a bible's collection, straight from Chroma: id → document, metadata, vector."""
    with Store.open(settings) as store:
        col = store.collection(bible)
        got = col.get(include=["documents", "metadatas", "embeddings"])
    return {
        rid: {"doc": doc, "meta": meta, "vec": np.asarray(vec, dtype=np.float32)}
        for rid, doc, meta, vec in zip(got["ids"], got["documents"], got["metadatas"], got["embeddings"], strict=True)
    }


def chunk_records(recs: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in recs.items() if v["meta"]["type"] == "chunk"}


def entry_records(recs: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in recs.items() if v["meta"]["type"] == "entry"}


def assert_consistent(recs: dict[str, dict[str, Any]], bible_dir: Path) -> None:
    """Exactly one entry record per entry, and exactly its current chunks (no stale hash, no gap)."""
    parsed = read_bible(bible_dir).entries
    entries = entry_records(recs)
    assert sorted(entries) == sorted(f"e:{e.id}" for e in parsed)
    want_chunks: set[str] = set()
    for e in parsed:
        meta = entries[f"e:{e.id}"]["meta"]
        assert meta["hash"] == content_hash(e)
        want_chunks |= {chunk_id(e.id, meta["hash"], i) for i in range(meta["chunks"])}
    assert set(chunk_records(recs)) == want_chunks


def tree_hash(root: Path) -> dict[str, str]:
    """sha256 of every file below root, by relative path."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def model_copy(tmp_path: Path) -> Path:
    """The shipped model under another path: the same weights, another model identity."""
    src = Path(resolve_model_path(DEFAULT_EMBED_MODEL))
    dst = tmp_path / "other-model"
    dst.mkdir()
    for item in src.iterdir():
        (dst / item.name).symlink_to(item, target_is_directory=item.is_dir())
    return dst


# ---------------------------------------------------------------- counts


def test_first_run_counts(bible: Path, settings: Settings) -> None:
    report = ingest_bible(bible, settings)
    assert report.model_dump() == {
        "bible": "moonbase", "entries": 5, "added": 5, "updated": 0, "removed": 0, "unchanged": 0, "chunks": report.chunks,
    }
    recs = records(settings, "moonbase")
    assert report.chunks == len(chunk_records(recs))
    assert report.chunks > 5  # the long entry is split
    assert entry_records(recs)["e:places/meridian"]["meta"]["chunks"] >= 2
    assert_consistent(recs, bible)


def test_unchanged_rerun_embeds_nothing(bible: Path, settings: Settings) -> None:
    first = ingest_bible(bible, settings)
    before = records(settings, "moonbase")
    calls: list[tuple[int, int]] = []
    again = ingest_bible(bible, settings, progress=lambda done, total: calls.append((done, total)))
    assert (again.entries, again.added, again.updated, again.removed, again.unchanged) == (5, 0, 0, 0, 5)
    assert again.chunks == first.chunks
    assert calls == []  # the embedder was never asked for a vector
    after = records(settings, "moonbase")
    assert sorted(after) == sorted(before)
    for rid, rec in before.items():
        assert after[rid]["doc"] == rec["doc"] and after[rid]["meta"] == rec["meta"]
        assert np.array_equal(after[rid]["vec"], rec["vec"])


def test_edit_one_entry_replaces_its_chunks(bible: Path, settings: Settings) -> None:
    ingest_bible(bible, settings)
    before = records(settings, "moonbase")
    meridian = bible / "places/meridian.md"
    meridian.write_text(meridian.read_text().replace("lunar night", "lunar winter"))
    calls: list[tuple[int, int]] = []
    report = ingest_bible(bible, settings, progress=lambda done, total: calls.append((done, total)))
    assert (report.added, report.updated, report.removed, report.unchanged) == (0, 1, 0, 4)
    after = records(settings, "moonbase")
    assert report.chunks == len(chunk_records(after))
    old = {k for k in chunk_records(before) if parse_chunk_id(k)[0] == "places/meridian"}
    new = {k for k in chunk_records(after) if parse_chunk_id(k)[0] == "places/meridian"}
    assert old and new and not (old & new)  # every old chunk replaced, no leftovers
    assert all("lunar winter" in after[k]["doc"] or "lunar" not in after[k]["doc"] for k in new)
    assert calls[-1][1] == len(new)  # only the edited entry's chunks were embedded
    # the other entries were not touched
    for rid, rec in before.items():
        if rid not in old and rid != "e:places/meridian":
            assert np.array_equal(after[rid]["vec"], rec["vec"]) and after[rid]["meta"] == rec["meta"]
    assert_consistent(after, bible)


def test_metadata_only_edit_updates_the_store(bible: Path, settings: Settings) -> None:
    ingest_bible(bible, settings)
    jack = bible / "characters/jack.md"
    jack.write_text(jack.read_text().replace("aliases: [Jack, Dusty]", "aliases: [Jack, Dusty, Hal]\nalways: true"))
    report = ingest_bible(bible, settings)
    assert (report.updated, report.unchanged) == (1, 4)
    meta = records(settings, "moonbase")["e:characters/jack"]["meta"]
    assert json.loads(meta["aliases"]) == ["Jack", "Dusty", "Hal"] and meta["always"] is True


def test_delete_and_add_files(bible: Path, settings: Settings) -> None:
    first = ingest_bible(bible, settings)
    (bible / "places/meridian.md").unlink()
    report = ingest_bible(bible, settings)
    assert (report.entries, report.added, report.updated, report.removed, report.unchanged) == (4, 0, 0, 1, 4)
    recs = records(settings, "moonbase")
    assert report.chunks == len(chunk_records(recs)) < first.chunks
    assert not any(parse_chunk_id(k)[0] == "places/meridian" for k in chunk_records(recs))
    assert_consistent(recs, bible)

    make_bible(bible, {"items/lantern.md": "---\nname: The Lantern\naliases: [the artifact]\n---\nA warm blue stone.\n"})
    report = ingest_bible(bible, settings)
    assert (report.entries, report.added, report.updated, report.removed, report.unchanged) == (5, 1, 0, 0, 4)
    recs = records(settings, "moonbase")
    assert report.chunks == len(chunk_records(recs))
    assert recs["e:items/lantern"]["meta"]["kind"] == "item"
    assert_consistent(recs, bible)


def test_rename_is_remove_plus_add(bible: Path, settings: Settings) -> None:
    ingest_bible(bible, settings)
    (bible / "characters/jack.md").rename(bible / "characters/jack_halloran.md")
    report = ingest_bible(bible, settings)
    assert (report.added, report.removed, report.unchanged) == (1, 1, 4)
    assert_consistent(records(settings, "moonbase"), bible)


# ---------------------------------------------------------------- what the store holds


def test_metadata_readable_from_the_store_alone(sample_store: Settings) -> None:
    """Everything retrieval's alias index needs is in Chroma: checked with a bare chromadb client."""
    import chromadb

    for name in ("lunar_mining", "drowned_archive"):
        parsed = {e.id: e for e in read_bible(BIBLES / name).entries}
        client = chromadb.PersistentClient(path=str(sample_store.store))
        try:
            col = client.get_collection(collection_name(name))
            got = col.get(where={"type": "entry"}, include=["metadatas", "documents"])
            chunks = col.get(where={"type": "chunk"}, include=["metadatas"])
        finally:
            client.close()
        assert sorted(m["entry_id"] for m in got["metadatas"]) == sorted(parsed)
        for meta, doc in zip(got["metadatas"], got["documents"], strict=True):
            e = parsed[meta["entry_id"]]
            assert meta["name"] == e.name
            assert meta["kind"] == e.kind
            assert json.loads(meta["aliases"]) == e.aliases
            assert json.loads(meta["tags"]) == e.tags
            assert meta["always"] is e.always
            assert meta["case_sensitive"] is e.case_sensitive
            assert meta["hash"] == content_hash(e)
            assert doc == e.text
        per_entry = {m["entry_id"]: m["chunks"] for m in got["metadatas"]}
        assert len(chunks["ids"]) == sum(per_entry.values())
        for cid, meta in zip(chunks["ids"], chunks["metadatas"], strict=True):
            entry_id, h16, index = parse_chunk_id(cid)
            assert (meta["entry_id"], meta["hash"], meta["index"]) == (entry_id, h16, index)
            assert h16 == content_hash(parsed[entry_id])[:16]
            assert index < per_entry[entry_id]
    # the flags the samples rely on really made it in
    with Store.open(sample_store) as store:
        lunar = store.scan("lunar_mining").entries
        drowned = store.scan("drowned_archive").entries
        title = store.bible_meta("lunar_mining").title
    assert {e.entry.name for e in lunar.values() if e.entry.always} == {"Genre", "Style"}
    assert any(e.entry.case_sensitive for e in drowned.values())
    assert title == read_bible(BIBLES / "lunar_mining").meta.title


def test_store_records_model_and_chunking(sample_store: Settings) -> None:
    with Store.open(sample_store) as store:
        col = store.collection("lunar_mining")
        meta = store.meta("lunar_mining")
        assert meta["embed_model"] == "all-MiniLM-L6-v2"
        assert meta["chunking"] == f"sentence:{sample_store.chunk_size}/{sample_store.chunk_overlap}"
        assert meta["chunker"] == f"llama-index-core {importlib.metadata.version('llama-index-core')}"
        assert meta["embed_engine"] == ENGINE
        store.check_space("lunar_mining")  # cosine: a chunk's own vector scores ~1.0 against itself
        one = col.get(where={"type": "chunk"}, limit=1, include=["embeddings"])
        got = col.query(query_embeddings=[one["embeddings"][0]], n_results=1, include=["distances"])
    assert 1.0 - got["distances"][0][0] == pytest.approx(1.0, abs=1e-4)


def test_two_bibles_share_a_store(sample_store: Settings) -> None:
    with Store.open(sample_store) as store:
        assert store.bibles() == ["drowned_archive", "lunar_mining"]
        counts = {b: store.scan(b) for b in store.bibles()}
    assert len(counts["lunar_mining"].entries) == 17
    assert len(counts["drowned_archive"].entries) == len(read_bible(BIBLES / "drowned_archive").entries)


def test_collection_named_after_folder_slug(tmp_path: Path, settings: Settings) -> None:
    root = make_bible(tmp_path / "My Moon Bible!", {"a.md": "---\nname: A\n---\nA body.\n"})
    report = ingest_bible(root, settings)
    assert report.bible == "My Moon Bible!"
    with Store.open(settings) as store:
        (name,) = store.bibles()
        assert store.collection("My Moon Bible!").name == name == collection_name("My Moon Bible!")
    # its slug, plus a hash of the name (so "My Moon Bible?" is another collection); a name that is
    # already a valid collection name is kept as it is
    assert re.fullmatch(r"my-moon-bible-[0-9a-f]{10}", name) and name != collection_name("My Moon Bible?")
    assert collection_name("my_moon.bible-2") == "my_moon.bible-2"


# ---------------------------------------------------------------- repairs of interrupted writes


def test_repairs_chunks_written_without_their_entry_record(bible: Path, settings: Settings) -> None:
    """The state a kill between 'chunks written' and 'entry record written' leaves behind."""
    ingest_bible(bible, settings)
    before = records(settings, "moonbase")
    jack = bible / "characters/jack.md"
    jack.write_text(jack.read_text().replace("by feel", "by ear"))
    ingest_bible(bible, settings)
    after_edit = records(settings, "moonbase")
    new_chunks = {k: v for k, v in chunk_records(after_edit).items() if parse_chunk_id(k)[0] == "characters/jack"}
    # rewind: the old entry record and old chunks back, the new chunks present as well
    with Store.open(settings) as store:
        col = store.collection("moonbase")
        old = [k for k in before if k == "e:characters/jack" or (k.startswith("c:") and parse_chunk_id(k)[0] == "characters/jack")]
        col.upsert(ids=old, embeddings=[before[k]["vec"] for k in old], documents=[before[k]["doc"] for k in old], metadatas=[before[k]["meta"] for k in old])
    calls: list[tuple[int, int]] = []
    report = ingest_bible(bible, settings, progress=lambda d, t: calls.append((d, t)))
    assert (report.updated, report.unchanged) == (1, 4)
    assert calls == []  # the new chunks were already there: reused, not re-embedded
    recs = records(settings, "moonbase")
    assert_consistent(recs, bible)
    assert set(new_chunks) <= set(recs)


def test_repairs_stale_chunks_and_orphans(bible: Path, settings: Settings) -> None:
    """Stale chunks (kill before the old ones were deleted) and chunks of a deleted entry go away."""
    ingest_bible(bible, settings)
    recs = records(settings, "moonbase")
    some = next(iter(chunk_records(recs).values()))
    with Store.open(settings) as store:
        col = store.collection("moonbase")
        col.upsert(
            ids=[chunk_id("characters/jack", "0" * 64, 0), chunk_id("characters/ghost", "f" * 64, 0)],
            embeddings=[some["vec"], some["vec"]],
            documents=["stale", "orphan"],
            metadatas=[
                {"type": "chunk", "entry_id": "characters/jack", "hash": "0" * 16, "index": 0, "enabled": True},
                {"type": "chunk", "entry_id": "characters/ghost", "hash": "f" * 16, "index": 0, "enabled": True},
            ],
        )
    report = ingest_bible(bible, settings)
    assert (report.added, report.updated, report.removed, report.unchanged) == (0, 0, 0, 5)
    after = records(settings, "moonbase")
    assert report.chunks == len(chunk_records(after)) == len(chunk_records(recs))
    assert_consistent(after, bible)


def test_repairs_a_partial_chunk_set(bible: Path, settings: Settings) -> None:
    """A kill in the middle of a chunk batch: some chunks of the new hash exist, the entry record doesn't."""
    ingest_bible(bible, settings)
    recs = records(settings, "moonbase")
    meridian = [k for k in chunk_records(recs) if parse_chunk_id(k)[0] == "places/meridian"]
    with Store.open(settings) as store:
        col = store.collection("moonbase")
        col.delete(ids=["e:places/meridian", *sorted(meridian)[1:]])
    report = ingest_bible(bible, settings)
    assert (report.updated, report.unchanged) == (1, 4)
    assert_consistent(records(settings, "moonbase"), bible)


# ---------------------------------------------------------------- refusals


def test_model_mismatch_refused_until_rebuild(tmp_path: Path, bible: Path, settings: Settings) -> None:
    first = ingest_bible(bible, settings)
    other = model_copy(tmp_path)
    other_settings = settings.model_copy(update={"embed_model": str(other)})
    assert model_identity(str(other)) != model_identity(DEFAULT_EMBED_MODEL)
    before = tree_hash(settings.store)
    with pytest.raises(StoreError) as info:
        ingest_bible(bible, other_settings)
    msg = str(info.value)
    assert "--rebuild" in msg and "all-MiniLM-L6-v2" in msg and str(other) in msg
    assert "\n" not in msg
    assert tree_hash(settings.store) == before, "a refused ingest changed the store"

    report = ingest_bible(bible, other_settings, rebuild=True)
    assert (report.added, report.updated, report.removed, report.unchanged) == (5, 0, 0, 0)
    assert report.chunks == first.chunks
    with Store.open(settings) as store:
        assert store.meta("moonbase")["embed_model"] == model_identity(str(other))
    assert_consistent(records(settings, "moonbase"), bible)
    # and the way back needs --rebuild too
    with pytest.raises(StoreError, match="--rebuild"):
        ingest_bible(bible, settings)


def test_model_that_will_not_load_writes_nothing(tmp_path: Path, bible: Path, settings: Settings) -> None:
    """A typo in the model name must not create a store, a collection built by 'nothing', or drop one on --rebuild."""
    missing = settings.model_copy(update={"embed_model": str(tmp_path / "no-such-model")})
    with pytest.raises(ModelError, match="cannot load embedding model"):
        ingest_bible(bible, missing)
    assert not settings.store.exists()

    ingest_bible(bible, settings)
    before = tree_hash(settings.store)
    other = make_bible(tmp_path / "second", {"a.md": "---\nname: A\n---\nA body.\n"})
    with pytest.raises(ModelError):
        ingest_bible(other, missing)  # a new collection in an existing store
    with pytest.raises(ModelError):
        ingest_bible(bible, missing, rebuild=True)  # --rebuild: the old collection must survive
    assert tree_hash(settings.store) == before
    with Store.open(settings) as store:
        assert store.bibles() == ["moonbase"]
        assert len(store.scan("moonbase").entries) == 5


def test_relative_model_path_identity_is_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """'--embed-model ./m' names a folder: the store must not record a path that means another model elsewhere."""
    other = model_copy(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert model_identity("other-model") == str(other.resolve())
    assert model_identity("./other-model/") == str(other.resolve())
    assert model_identity(DEFAULT_EMBED_MODEL) == DEFAULT_EMBED_MODEL


def test_chunking_mismatch_refused(bible: Path, settings: Settings) -> None:
    ingest_bible(bible, settings)
    before = tree_hash(settings.store)
    with pytest.raises(StoreError, match="--rebuild"):
        ingest_bible(bible, settings.model_copy(update={"chunk_size": 100}))
    assert tree_hash(settings.store) == before


def set_recorded(settings: Settings, bible: str, **values: str | None) -> None:
    """Rewrite what the store records as having built a collection (None: not recorded at all)."""
    with Store.open(settings) as store, store.lock(exclusive=True):
        col = store.collection(bible)
        meta = {k: v for k, v in col.metadata.items() if not k.startswith("hnsw:")}
        for key, value in values.items():
            meta.pop(f"b2p_{key}", None)
            if value is not None:
                meta[f"b2p_{key}"] = value
        col.modify(metadata=meta)


def test_another_engine_is_refused(bible: Path, settings: Settings) -> None:
    ingest_bible(bible, settings)
    set_recorded(settings, "moonbase", embed_engine="int8")
    before = tree_hash(settings.store)
    with pytest.raises(StoreError, match="embedding engine 'int8'.*--rebuild"):
        ingest_bible(bible, settings)
    assert tree_hash(settings.store) == before
    assert ingest_bible(bible, settings, rebuild=True).added == 5


def test_a_store_from_before_engines_and_chunkers_were_recorded_needs_no_rebuild(bible: Path, settings: Settings) -> None:
    """Its vectors were made by sentence-transformers (full precision) with this chunking: the next
    ingest splits every entry again, finds the same chunks, embeds nothing and records both."""
    first = ingest_bible(bible, settings)
    set_recorded(settings, "moonbase", embed_engine=None, chunker=None)
    calls: list[tuple[int, int]] = []
    report = ingest_bible(bible, settings, progress=lambda d, t: calls.append((d, t)))
    assert (report.unchanged, report.chunks, calls) == (5, first.chunks, [])
    with Store.open(settings) as store:
        meta = store.meta("moonbase")
    assert (meta["embed_engine"], meta["chunker"]) == (ENGINE, chunker_version())


def test_a_new_chunker_embeds_only_the_entries_it_splits_differently(bible: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """After a llama-index upgrade that splits one entry otherwise, only that entry is embedded
    again, and none of its old chunks is left behind."""
    ingest_bible(bible, settings)
    before = records(settings, "moonbase")
    set_recorded(settings, "moonbase", chunker="llama-index-core 0.0.1")
    real = pipeline.chunk_entry

    def split_meridian_finer(entry, splitter):  # noqa: ANN001, ANN202
        chunks = real(entry, splitter)
        if entry.id != "places/meridian":
            return chunks
        return [half for c in chunks for half in (c[: len(c) // 2], c[len(c) // 2 :])]

    monkeypatch.setattr(pipeline, "chunk_entry", split_meridian_finer)
    calls: list[tuple[int, int]] = []
    report = ingest_bible(bible, settings, progress=lambda d, t: calls.append((d, t)))
    assert (report.updated, report.unchanged) == (1, 4)
    after = records(settings, "moonbase")
    meridian = {k: v for k, v in chunk_records(after).items() if parse_chunk_id(k)[0] == "places/meridian"}
    assert calls[-1][0] == calls[-1][1] == len(meridian) == 2 * len([k for k in chunk_records(before) if parse_chunk_id(k)[0] == "places/meridian"])
    assert entry_records(after)["e:places/meridian"]["meta"]["chunks"] == len(meridian)
    assert_consistent(after, bible)
    others = {k: v["doc"] for k, v in chunk_records(before).items() if parse_chunk_id(k)[0] != "places/meridian"}
    assert {k: after[k]["doc"] for k in others} == others  # the other entries' chunks untouched


@pytest.mark.parametrize(
    "breakage",
    ["bad_yaml", "missing_name", "binary", "unknown_field", "deleted_and_broken"],
)
def test_bad_bible_leaves_store_untouched(bible: Path, settings: Settings, breakage: str) -> None:
    ingest_bible(bible, settings)
    before = tree_hash(settings.store)
    jack = bible / "characters/jack.md"
    if breakage == "bad_yaml":
        jack.write_text("---\nname: Jack\naliases: [Jack\n---\nBody.\n")
    elif breakage == "missing_name":
        jack.write_text("---\naliases: [Jack]\n---\nBody.\n")
    elif breakage == "binary":
        jack.write_bytes(b"\x00\x01\x02")
    elif breakage == "unknown_field":
        jack.write_text(jack.read_text().replace("tags:", "tagz:"))
    else:  # other entries changed or deleted too: still nothing may be written
        (bible / "history.md").unlink()
        (bible / "places/meridian.md").write_text("---\nname: Outpost Meridian\n---\nRewritten.\n")
        jack.write_text("---\nname: Jack\n")
    with pytest.raises(BibleError) as info:
        ingest_bible(bible, settings)
    assert all(p.startswith(f"{jack}:") for p in info.value.problems)
    with pytest.raises(BibleError):
        ingest_bible(bible, settings, rebuild=True)  # not even --rebuild drops the collection first
    assert tree_hash(settings.store) == before


def test_bad_bible_creates_no_store(bible: Path, settings: Settings) -> None:
    (bible / "history.md").write_text("no front matter\n")
    with pytest.raises(BibleError):
        ingest_bible(bible, settings)
    assert not settings.store.exists()


def test_store_path_that_is_a_file(bible: Path, tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    with pytest.raises(StoreError, match="is a file"):
        ingest_bible(bible, load_settings(None, store=tmp_path / "afile"))
    assert (tmp_path / "afile").read_text() == "x"


# ---------------------------------------------------------------- the query-time twin


def test_onnx_twin_matches_sentence_transformers(sample_store: Settings) -> None:
    """Ingest exported the ONNX twin; its vectors match sentence-transformers' for the same texts."""
    twin = query_embedder(DEFAULT_EMBED_MODEL, sample_store.cache_dir)
    assert isinstance(twin, OnnxEmbedder)
    texts = [
        "Jack and Xander find an alien artifact at the bottom of the dig.",
        "They call Dr. Selene Thorne.",
        "x",
        "",
        "Ünïcödé — «quotes» and emoji 🌑 on the lunar surface",
        textwrap.fill("A very long beat that keeps going past the model's window. " * 80),  # truncated by both
    ]
    ours = twin.encode(texts)
    theirs = Embedder(DEFAULT_EMBED_MODEL).torch_encode(texts)
    assert ours.shape == theirs.shape == (len(texts), 384)
    cos = np.sum(ours * theirs, axis=1)
    assert np.all(np.abs(cos - 1.0) < 1e-3), cos
    assert np.allclose(ours, theirs, atol=2e-3)
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-4)


def test_onnx_export_happens_once(sample_store: Settings, tmp_path: Path) -> None:
    """Later ingests with the same model reuse the exported twin instead of exporting again."""
    files = list((sample_store.cache_dir / "onnx").rglob("*"))
    assert any(f.name == "model.onnx" for f in files)
    stamp = {f: f.stat().st_mtime_ns for f in files}
    root = make_bible(tmp_path / "tiny", {"a.md": "---\nname: A\n---\nA body.\n"})
    ingest_bible(root, load_settings(None, store=tmp_path / "s", cache_dir=sample_store.cache_dir))
    assert {f: f.stat().st_mtime_ns for f in (sample_store.cache_dir / "onnx").rglob("*")} == stamp


def test_ingest_embeds_with_the_twin_not_torch(sample_store: Settings, tmp_path: Path) -> None:
    """Once the twin exists, a fresh ingest embeds with it (one engine for ingest and queries): it
    never imports torch or sentence-transformers, and its vectors are the ones a query gets."""
    root = make_bible(tmp_path / "moonbase")
    code = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from b2p.settings import load_settings\nfrom ingest.pipeline import ingest_bible\n"
        f"s = load_settings(None, store=Path({str(tmp_path / 'store')!r}), cache_dir=Path({str(sample_store.cache_dir)!r}))\n"
        f"r = ingest_bible(Path({str(root)!r}), s)\n"
        "print(json.dumps({'added': r.added, 'heavy': [m for m in ('torch', 'sentence_transformers') if m in sys.modules]}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, cwd=Path(__file__).resolve().parent.parent)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"added": 5, "heavy": []}
    recs = chunk_records(records(load_settings(None, store=tmp_path / "store"), "moonbase"))
    twin = query_embedder(DEFAULT_EMBED_MODEL, sample_store.cache_dir)
    stored = np.stack([r["vec"] for r in recs.values()])
    assert np.allclose(twin.encode([r["doc"] for r in recs.values()]), stored, atol=1e-5)


@pytest.mark.slow
def test_a_twin_whose_weights_file_was_deleted_is_made_again(sample_store: Settings, tmp_path: Path) -> None:
    """Part of the model cache deleted by hand: queries still embed (with sentence-transformers,
    the same vectors), and the next ingest makes the twin whole again."""
    import shutil

    cache = tmp_path / "cache"
    src = onnx_file(sample_store.cache_dir, resolve_model_path(DEFAULT_EMBED_MODEL))
    assert src.with_suffix(".data").is_file()  # the weights live beside the model file
    mine = onnx_file(cache, resolve_model_path(DEFAULT_EMBED_MODEL))
    mine.parent.mkdir(parents=True)
    shutil.copy(src, mine)  # the model file alone
    fallback = query_embedder(DEFAULT_EMBED_MODEL, cache)
    assert not isinstance(fallback, OnnxEmbedder)
    texts = ["Jack cuts regolith out of Varro Crater.", "The old monk lifts his lamp."]
    assert np.allclose(fallback.encode(texts), query_embedder(DEFAULT_EMBED_MODEL, sample_store.cache_dir).encode(texts), atol=2e-3)
    ingest_bible(make_bible(tmp_path / "moonbase"), load_settings(None, store=tmp_path / "store", cache_dir=cache))
    assert mine.with_suffix(".data").is_file()
    assert isinstance(query_embedder(DEFAULT_EMBED_MODEL, cache), OnnxEmbedder)


def test_a_twin_exported_by_an_older_b2p_is_used_and_converted_without_torch(sample_store: Settings, tmp_path: Path) -> None:
    """Older releases kept the twin as one file with its weights inside: queries use it as it is,
    and the next ingest moves its weights beside it without loading torch."""
    import onnx

    cache = tmp_path / "cache"
    twin = onnx_file(cache, resolve_model_path(DEFAULT_EMBED_MODEL))
    legacy = twin.parent.with_suffix(".onnx")
    legacy.parent.mkdir(parents=True)
    onnx.save_model(onnx.load(str(onnx_file(sample_store.cache_dir, resolve_model_path(DEFAULT_EMBED_MODEL)))), str(legacy))
    texts = ["Jack cuts regolith out of Varro Crater.", "The old monk lifts his lamp."]
    want = query_embedder(DEFAULT_EMBED_MODEL, sample_store.cache_dir).encode(texts)
    old = query_embedder(DEFAULT_EMBED_MODEL, cache)
    assert isinstance(old, OnnxEmbedder) and np.allclose(old.encode(texts), want, atol=1e-5)
    root = make_bible(tmp_path / "moonbase")
    code = (
        "import json, sys\nfrom pathlib import Path\n"
        "from b2p.settings import load_settings\nfrom ingest.pipeline import ingest_bible\n"
        f"ingest_bible(Path({str(root)!r}), load_settings(None, store=Path({str(tmp_path / 'store')!r}), cache_dir=Path({str(cache)!r})))\n"
        "print(json.dumps([m for m in ('torch', 'sentence_transformers') if m in sys.modules]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, cwd=Path(__file__).resolve().parent.parent)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []
    assert twin.is_file() and twin.with_suffix(".data").is_file() and not legacy.exists()
    assert np.allclose(query_embedder(DEFAULT_EMBED_MODEL, cache).encode(texts), want, atol=1e-5)
