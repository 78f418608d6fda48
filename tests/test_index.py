"""The lore index beside the store: what `b2p lore` reads instead of asking Chroma on every run.

It must never be stale (an edit, an interrupted ingest, a damaged file, an upgrade of b2p), and
answers from it must be the answers Chroma gives. Real ingest, real Chroma, real model.
"""

from __future__ import annotations

import json
import os
import pickle
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from b2p.index import LoreIndex, index_root, open_index
from b2p.retrieval import Retriever
from b2p.settings import Settings, load_settings
from b2p.store import Store, parse_chunk_id
from ingest import pipeline
from ingest.bible import bible_fingerprint
from ingest.pipeline import ingest_bible
from tests.lore_bibles import assert_index_matches_store, copy_ingested

REPO = Path(__file__).resolve().parent.parent
SHEETS = [REPO / "story_bibles" / b / "beats" / f"chapter{n}.txt" for b in ("lunar_mining", "drowned_archive") for n in (1, 2)]


def b2p_command() -> list[str]:
    exe = shutil.which("b2p")
    return [exe] if exe else [sys.executable, "-c", "import cli; cli.main()"]


def saved_indexes(settings: Settings, bible: str) -> list[Path]:
    folder = index_root(settings) / bible
    return sorted(p for p in folder.iterdir() if not p.name.startswith(".")) if folder.is_dir() else []


def ledger_json(settings: Settings, bible: str, beats: list[str]) -> list[dict]:
    with Store.open(settings) as st, st.lock(exclusive=False):
        return json.loads(Retriever(settings, st, bible).ledger(beats, explain=True).model_dump_json())["beats"]


def age(root: Path, seconds: float = 60.0) -> None:
    """Date every file of a bible back, as if written a while ago (a fresh edit is never trusted)."""
    past = time.time() - seconds
    for p in root.rglob("*"):
        os.utime(p, (past, past))


@pytest.fixture()
def harbour_copy(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> tuple[Path, Settings]:
    root, store = copy_ingested(tmp_path_factory, tmp_path)
    return root, load_settings(None, store=store)


def test_ingest_saves_the_index_and_lore_then_needs_no_chroma(harbour_copy: tuple[Path, Settings]) -> None:
    root, settings = harbour_copy
    ingest_bible(root, settings)
    assert len(saved_indexes(settings, "harbour")) == 1
    code = (
        "import sys, json\n"
        "from b2p.settings import load_settings\nfrom b2p.store import Store\nfrom b2p.retrieval import Retriever\n"
        f"s = load_settings(None, store={str(settings.store)!r})\n"
        "with Store.open(s) as st, st.lock(exclusive=False):\n"
        "    led = Retriever(s, st, 'harbour').ledger(['Nell dives under the Kittiwake and she finds the warm stone.'])\n"
        "print(json.dumps({'chromadb': 'chromadb' in sys.modules, 'lore': [p.name for p in led.beats[0].lore]}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert got["chromadb"] is False  # a cold `b2p lore` does not pay chromadb's import (~1.2 s)
    assert "Nell Farrow" in got["lore"]


def test_the_index_search_equals_a_scan_of_every_vector_chroma_holds(sample_store: Settings) -> None:
    """For every sample beat, the index's nearest chunks are exactly those of a cosine scan over every
    chunk vector in the store: same entries, same order, same scores."""
    import numpy as np

    from b2p.beats import read_beats
    from b2p.embeddings import query_embedder

    embedder = query_embedder(sample_store.embed_model, sample_store.cache_dir)
    for sheet in SHEETS:
        bible = sheet.parent.parent.name
        with Store.open(sample_store) as st, st.lock(exclusive=False):
            index = open_index(sample_store, st, bible)
            got = st.collection(bible).get(where={"type": "chunk"}, include=["embeddings"])
        owners = [parse_chunk_id(c)[0] for c in got["ids"]]
        matrix = np.asarray(got["embeddings"], dtype=np.float64)
        matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
        queries = np.asarray(embedder.encode(read_beats(sheet)), dtype=np.float32)
        assert len(index.vectors) == len(owners)
        for query, hits in zip(queries, index.nearest(queries, 6), strict=True):
            sims = matrix @ query.astype(np.float64)
            best = np.argsort(-sims, kind="stable")[:6]
            assert [h[0] for h in hits] == [owners[b] for b in best]
            assert [h[1] for h in hits] == pytest.approx([float(sims[b]) for b in best], abs=1e-5)


def test_an_edit_makes_a_new_index_and_lore_sees_it(harbour_copy: tuple[Path, Settings]) -> None:
    root, settings = harbour_copy
    before = saved_indexes(settings, "harbour")
    nell = root / "characters" / "nell.md"
    nell.write_text(nell.read_text().replace('aliases: ["Nell"]', 'aliases: ["Nell", "Minnow"]'))
    report = ingest_bible(root, settings)
    assert report.updated == 1
    after = saved_indexes(settings, "harbour")
    assert len(after) == 1 and after != before  # the old state's index is gone, not left to be found
    (beat,) = ledger_json(settings, "harbour", ["Minnow surfaces with a grin."])
    assert {p["name"]: p["reason"] for p in beat["lore"]}.get("Nell Farrow") == "named"


def test_a_damaged_or_missing_index_is_rebuilt_from_the_store(harbour_copy: tuple[Path, Settings]) -> None:
    root, settings = harbour_copy
    ingest_bible(root, settings)
    beats = ["Nell swims down to the flooded shelves.", "The old monk lifts his lamp; she gasps."]
    want = ledger_json(settings, "harbour", beats)
    (folder,) = saved_indexes(settings, "harbour")
    (folder / "index.json").write_bytes(b"not json")
    assert ledger_json(settings, "harbour", beats) == want
    with Store.open(settings) as st:
        assert LoreIndex.load(index_root(settings), "harbour", st.state("harbour")) is not None  # repaired on disk
    assert saved_indexes(settings, "harbour") == [folder]
    for table, junk in (("matcher.json", "[" * 100_000), ("entries.json", "[]"), ("vectors.npy", "")):  # past the recursion limit; wrong shape; empty
        (folder / table).write_text(junk)
        assert ledger_json(settings, "harbour", beats) == want
    shutil.rmtree(index_root(settings))
    assert ledger_json(settings, "harbour", beats) == want
    assert len(saved_indexes(settings, "harbour")) == 1  # and saved again for the next run
    assert_index_matches_store(settings, "harbour")


def test_an_interrupted_ingest_leaves_no_index_that_looks_current(harbour_copy: tuple[Path, Settings], monkeypatch: pytest.MonkeyPatch) -> None:
    """An ingest that dies after writing some records: readers must see Chroma's content, not the
    previous index. (An exception raised mid-write leaves the store as a kill would.)"""
    root, settings = harbour_copy
    ingest_bible(root, settings)
    nell = root / "characters" / "nell.md"
    nell.write_text(nell.read_text().replace('aliases: ["Nell"]', 'aliases: ["Nell", "Minnow"]'))
    real_write = pipeline._write_entries

    def write_then_die(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        real_write(*args, **kwargs)
        raise KeyboardInterrupt("killed after writing")

    monkeypatch.setattr(pipeline, "_write_entries", write_then_die)
    with pytest.raises(KeyboardInterrupt):
        ingest_bible(root, settings)
    monkeypatch.undo()
    with Store.open(settings) as st:
        assert st.state("harbour") == ""  # blanked before the first write
    (beat,) = ledger_json(settings, "harbour", ["Minnow surfaces with a grin."])
    assert {p["name"]: p["reason"] for p in beat["lore"]}.get("Nell Farrow") == "named"  # what Chroma now holds
    report = ingest_bible(root, settings)
    assert (report.added, report.updated, report.removed) == (0, 0, 0)
    with Store.open(settings) as st:
        assert st.state("harbour")
    assert len(saved_indexes(settings, "harbour")) == 1
    assert_index_matches_store(settings, "harbour")


def test_an_unchanged_bible_is_not_even_read_again(harbour_copy: tuple[Path, Settings], monkeypatch: pytest.MonkeyPatch) -> None:
    root, settings = harbour_copy
    age(root)
    first = ingest_bible(root, settings)  # records the files' fingerprint
    monkeypatch.setattr("ingest.bible.read_bible", lambda *_: pytest.fail("an unchanged bible was parsed again"))
    again = ingest_bible(root, settings)
    assert (again.entries, again.unchanged, again.chunks) == (first.entries, first.entries, first.chunks)
    assert (again.added, again.updated, again.removed) == (0, 0, 0)
    assert again.warnings == first.warnings
    monkeypatch.undo()
    # an edit (new size and time) is seen; so is a new file
    agatha = root / "characters" / "agatha.md"
    agatha.write_text(agatha.read_text() + "\nShe keeps a parrot called Admiral.\n")
    age(root, 30)
    assert ingest_bible(root, settings).updated == 1
    (root / "characters" / "ruth.md").write_text("---\nname: Ruth Caddy\n---\nRuth Caddy mends nets on the quay.\n")
    age(root, 20)
    assert ingest_bible(root, settings).added == 1
    # --rebuild never takes the shortcut
    assert ingest_bible(root, settings, rebuild=True).added == first.entries + 1


def test_a_file_changed_moments_ago_is_never_vouched_for(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("---\nname: A\n---\nA.\n")
    assert bible_fingerprint(tmp_path) == ""  # within the clock's reach of a same-size edit
    age(tmp_path)
    first = bible_fingerprint(tmp_path)
    assert first
    past = time.time() - 10
    (tmp_path / "a.md").write_text("---\nname: B\n---\nB.\n")  # same size
    os.utime(tmp_path / "a.md", (past, past))
    assert bible_fingerprint(tmp_path) not in ("", first)


def test_entries_lists_every_record_the_store_holds_disabled_ones_too(harbour_copy: tuple[Path, Settings]) -> None:
    """`b2p entries` answers from the index too: exactly Chroma's entry records, chunk counts included."""
    from typer.testing import CliRunner

    from cli import app

    root, settings = harbour_copy
    ingest_bible(root, settings)
    result = CliRunner().invoke(app, ["entries", "--bible", "harbour", "--store", str(settings.store), "--json"])
    assert result.exit_code == 0, result.output
    listed = {e["name"]: e for e in json.loads(result.stdout)["entries"]}
    with Store.open(settings) as st:
        scan = st.scan("harbour")
    assert {s.entry.name: (s.entry.enabled, s.chunks, s.entry.tokens) for s in scan.entries.values()} == {
        n: (e["enabled"], e["chunks"], e["tokens"]) for n, e in listed.items()
    }
    assert any(not e["enabled"] for e in listed.values())  # the disabled entry is listed, not hidden


class _RunsCode:
    """Unpickling this runs a shell command that leaves a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (os.system, (f"touch {shlex.quote(str(self.marker))}",))


def test_a_crafted_pickle_in_the_index_folder_never_runs(harbour_copy: tuple[Path, Settings], tmp_path: Path) -> None:
    """A store folder handed over by someone else (a co-author, a downloaded sample) runs no code:
    pickles where the old index kept its files, in a folder of the old format and under the new
    names, are never unpickled; `b2p lore` and `b2p entries` still answer from the store."""
    root, settings = harbour_copy
    ingest_bible(root, settings)
    probe, marker = tmp_path / "probe", tmp_path / "pwned"
    pickle.loads(pickle.dumps(_RunsCode(probe)))
    assert probe.exists()  # the payload is live: unpickled, it runs
    payload = pickle.dumps(_RunsCode(marker))
    store = ["--bible", "harbour", "--store", str(settings.store), "--json"]
    commands = {
        "lore": [*b2p_command(), "lore", "--beat", "Nell dives under the Kittiwake and she finds the warm stone.", *store],
        "entries": [*b2p_command(), "entries", *store],
    }

    def run(cmd: list[str]) -> dict:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    want = {name: run(cmd) for name, cmd in commands.items()}
    for keep_head in (False, True):  # everything replaced; or the head left valid, so the tables are read
        for name, cmd in commands.items():
            (folder,) = saved_indexes(settings, "harbour")
            old = folder.with_name(folder.name.rsplit("-", 1)[0] + "-000000000000")  # as an older b2p names it
            old.mkdir()
            for target in (old, folder):
                for f in ("index.pkl", "entries.pkl", "texts.pkl", "vectors.npy"):
                    (target / f).write_bytes(payload)
            for f in folder.iterdir():
                if not (keep_head and f.name == "index.json"):
                    f.write_bytes(payload)
            assert run(cmd) == want[name]
            assert not marker.exists(), f"b2p {name} unpickled a file of the store"
            assert not any(p.suffix == ".pkl" for p in index_root(settings).rglob("*"))  # replaced, not kept
