"""Fault suite: ``kill -9`` of a real ``b2p ingest`` at random moments, and concurrent ingests.

After every kill the next ingest must repair the store so it holds exactly the bible's chunks:
no duplicate, none missing, one entry record per entry. "Exactly" is checked against the chunk ids
and texts a clean ingest produces (computed with the pipeline's own chunker), and once, at the end,
against a real clean ingest into a fresh store (ids, texts and vectors).

The write phase of an ingest is short (a fraction of a second after many seconds of model loading),
so most kills are aimed at it: the test watches ``chroma.sqlite3`` and kills at a random offset after
the first write that follows the opening burst. Others are uniformly random over the run.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from b2p.embeddings import Embedder
from b2p.index import open_index
from b2p.settings import Settings, load_settings
from b2p.store import Store, chunk_id, parse_chunk_id
from tests.lore_bibles import assert_index_matches_store
from ingest.bible import read_bible
from ingest.chunking import chunk_entry, make_splitter
from ingest.pipeline import content_hash, ingest_bible

pytestmark = pytest.mark.slow

FIRST = "Ada Bram Cora Dov Edda Fitz Gale Hale Ines Jori Kael Lio Mara Nico Orla Pell Quin Rhea Sol Tam".split()
LAST = "Vance Okoro Lund Marr Petrov Quell Rask Sato Thane Ulm Varga Wick Yarrow Zeller Abbot Brisk Crane Dunmore Ebb Falk".split()
WORDS = (
    "crater dust hauler seam vein relay oxygen airlock quota shift rover drill core sample signal ridge shadow "
    "basalt helium ledger foreman contract habitat module lamp suit visor tether cable winch spur claim survey beacon"
).split()
KINDS = ("characters", "places", "factions", "items")


# ---------------------------------------------------------------- a synthetic bible


def entry_path(root: Path, i: int) -> Path:
    return root / KINDS[i % len(KINDS)] / f"e{i:04d}.md"


def write_entry(root: Path, i: int, version: int) -> None:
    """Entry ``i`` at ``version``: 1–3 paragraphs (one or two chunks), deterministic."""
    rng = random.Random(i * 1000 + version)
    name = f"{FIRST[i % 20]} {LAST[(i // 20) % 20]} {i}"

    def sentence() -> str:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 18))).capitalize() + "."

    paras = rng.choice([1, 1, 2, 3])
    body = "\n\n".join(" ".join(sentence() for _ in range(rng.randint(3, 6))) for _ in range(paras))
    path = entry_path(root, i)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"---\nname: {name}\naliases: [\"{FIRST[i % 20]}{i}\"]\ntags: [v{version}]\n---\n{body}\n", encoding="utf-8")


@dataclass
class Synthetic:
    root: Path
    rng: random.Random
    present: set[int]
    version: dict[int, int]
    next_id: int

    @classmethod
    def make(cls, root: Path, n: int, seed: int) -> Synthetic:
        for i in range(n):
            write_entry(root, i, 0)
        return cls(root, random.Random(seed), set(range(n)), dict.fromkeys(range(n), 0), n)

    def edit(self, k: int) -> None:
        for i in self.rng.sample(sorted(self.present), k):
            self.version[i] += 1
            write_entry(self.root, i, self.version[i])

    def add(self, k: int) -> list[int]:
        new = list(range(self.next_id, self.next_id + k))
        for i in new:
            self.version[i] = 0
            write_entry(self.root, i, 0)
            self.present.add(i)
        self.next_id += k
        return new

    def delete(self, k: int) -> list[int]:
        gone = self.rng.sample(sorted(self.present), k)
        for i in gone:
            entry_path(self.root, i).unlink()
            self.present.discard(i)
        return gone

    def restore(self, ids: list[int]) -> None:
        for i in ids:
            write_entry(self.root, i, self.version[i])
            self.present.add(i)


# ---------------------------------------------------------------- what a clean ingest produces


def expected(root: Path, settings: Settings) -> tuple[dict[str, str], dict[str, str]]:
    """(entry id → content hash, chunk id → chunk text) of a clean ingest of the bible as it is now."""
    bible = read_bible(root)
    splitter = make_splitter(settings.chunk_size, settings.chunk_overlap, Embedder(settings.embed_model).tokenizer())
    entries, chunks = {}, {}
    for e in bible.entries:
        e.hash = content_hash(e)
        entries[e.id] = e.hash
        for n, text in enumerate(chunk_entry(e, splitter)):
            chunks[chunk_id(e.id, e.hash, n)] = text
    return entries, chunks


def assert_exact(settings: Settings, bible: str, root: Path) -> None:
    """The store holds exactly the bible: entry records, chunk ids and texts; and the similarity search
    b2p runs finds every chunk by its own vector."""
    want_entries, want_chunks = expected(root, settings)
    with Store.open(settings) as store:
        col = store.collection(bible)
        got = col.get(include=["metadatas", "documents", "embeddings"])
        total = col.count()
        index = open_index(settings, store, bible)
    ids = got["ids"]
    assert len(ids) == len(set(ids)) == total
    entries = {m["entry_id"]: m for m, t in ((m, m["type"]) for m in got["metadatas"]) if t == "entry"}
    assert {k: m["hash"] for k, m in entries.items()} == want_entries
    docs = {i: d for i, d, m in zip(ids, got["documents"], got["metadatas"], strict=True) if m["type"] == "chunk"}
    missing, extra = set(want_chunks) - set(docs), set(docs) - set(want_chunks)
    assert not missing and not extra, f"{len(missing)} chunks missing, {len(extra)} extra"
    assert docs == want_chunks
    per_entry: dict[str, int] = {}
    for c in want_chunks:
        per_entry[parse_chunk_id(c)[0]] = per_entry.get(parse_chunk_id(c)[0], 0) + 1
    assert {e: m["chunks"] for e, m in entries.items()} == per_entry
    # Every chunk is found by its own vector, as the best hit of its own entry. (b2p searches its index's
    # exact matrix, never Chroma's HNSW index: in chromadb 1.5.9 a kill during a write can leave records
    # that a query never finds again, which this test used to catch now and then.)
    chunks = [(i, v) for i, v, m in zip(ids, got["embeddings"], got["metadatas"], strict=True) if m["type"] == "chunk"]
    for (cid, _), found in zip(chunks, index.nearest([v for _, v in chunks], 1), strict=True):
        assert found and found[0][0] == parse_chunk_id(cid)[0] and found[0][1] == pytest.approx(1.0, abs=1e-3), (cid, found)


# ---------------------------------------------------------------- killing a real process


def _db_signature(db: Path) -> tuple[int, int] | None:
    try:
        st = db.stat()
    except FileNotFoundError:
        return None
    return st.st_mtime_ns, st.st_size


@dataclass
class Kill:
    mode: str
    at: float  # seconds after start
    killed: bool  # False if it had already exited
    opened: float | None = None  # seconds after start when the store was first written


def run_and_kill(cmd: list[str], store: Path, mode: str, rng: random.Random, log: Path, horizon: float = 30.0,
                 window: float = 0.8) -> Kill:
    """Start ``cmd``; SIGKILL it at a random moment chosen by ``mode``.

    - ``write``: a random 0–0.4 s after the first store write that follows the open burst (Chroma writes
      on open; ingest writes again only once the vectors are ready).
    - ``early``: a random 0–``window`` s after the store is opened (scans and deletes happen here).
    - ``anytime``: uniformly within ``horizon`` seconds of the start.
    - ``never``: let it finish (a calibration run: how long this kind of ingest takes on this machine).
    """
    db = store / "chroma.sqlite3"
    with open(log, "ab") as out:
        started = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=out, stderr=out)
        try:
            deadline = None if mode != "anytime" else started + rng.uniform(0.0, horizon)
            last, opened, quiet_since = _db_signature(db), None, None
            while proc.poll() is None:
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    break
                sig = _db_signature(db)
                if sig != last:
                    if opened is None:
                        opened = now
                        if mode == "early":
                            deadline = now + rng.uniform(0.0, window)
                    elif mode == "write" and deadline is None and quiet_since is not None and now - quiet_since > 0.5:
                        deadline = now + rng.uniform(0.0, 0.4)
                    quiet_since = now
                    last = sig
                if now - started > 300:
                    raise AssertionError(f"{cmd} ran for 5 minutes")
                time.sleep(0.002)
            at = time.monotonic() - started
            alive = proc.poll() is None
            if alive:
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
            return Kill(mode, at, alive, None if opened is None else opened - started)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def ingest_cmd(root: Path, store: Path) -> list[str]:
    return ["b2p", "ingest", str(root), "--store", str(store), "--json"]


# ---------------------------------------------------------------- the suites


def test_kill_9_at_random_moments_then_reingest_repairs(tmp_path: Path) -> None:
    started = time.monotonic()
    rng = random.Random(int(os.environ.get("B2P_CRASH_SEED", "20240611")))
    syn = Synthetic.make(tmp_path / "bigbible", 160, seed=rng.randrange(1 << 30))
    settings = load_settings(None, store=tmp_path / "store")
    log = tmp_path / "ingest.log"
    kills: list[Kill] = []

    def kill_then_repair(mode: str, horizon: float = 30.0, window: float = 0.8) -> None:
        kills.append(run_and_kill(ingest_cmd(syn.root, settings.store), settings.store, mode, rng, log, horizon, window))
        if (settings.store / "chroma.sqlite3").exists():
            assert_index_matches_store(settings, "bigbible")  # a kill never leaves an index that looks current but is not
        report = ingest_bible(syn.root, settings)  # the next ingest repairs whatever the kill left
        assert report.entries == len(syn.present)
        assert_exact(settings, "bigbible", syn.root)
        again = ingest_bible(syn.root, settings)  # and then it is settled
        assert (again.added, again.updated, again.removed) == (0, 0, 0)
        assert_index_matches_store(settings, "bigbible")

    # a kill during the very first ingest, into a store that does not exist yet
    kill_then_repair("write")
    # kills aimed at the write phase of incremental ingests: edits, additions and deletions all pending
    for _ in range(4):
        syn.edit(20)
        syn.add(3)
        syn.delete(3)
        kill_then_repair("write")
    # deletion-only ingests (no model to load): kills during the scan and the deletes, within the time such an
    # ingest takes on this machine after it opens the store (measured, so a faster ingest is still hit)
    gone = syn.delete(30)
    timed = run_and_kill(ingest_cmd(syn.root, settings.store), settings.store, "never", rng, log)
    syn.restore(gone)
    ingest_bible(syn.root, settings)
    window = 0.9 * (timed.at - (timed.opened or 0.0))
    for _ in range(4):
        gone = syn.delete(30)
        kill_then_repair("early", window=window)
        syn.restore(gone)
        ingest_bible(syn.root, settings)
    # and a few kills at truly arbitrary moments of an ingest with work to do (within the time it takes here)
    syn.edit(10)
    timed = run_and_kill(ingest_cmd(syn.root, settings.store), settings.store, "never", rng, log)
    for _ in range(3):
        syn.edit(10)
        kill_then_repair("anytime", horizon=0.95 * timed.at)

    seen = ", ".join(f"{k.mode}@{k.at:.1f}s{'' if k.killed else '(done)'}" for k in kills)
    assert len(kills) >= 12
    assert sum(k.killed for k in kills) >= 10, seen  # most kills hit a running ingest

    # finally: the repaired store equals a clean ingest of the same bible, vectors included
    clean = load_settings(None, store=tmp_path / "clean")
    ingest_bible(syn.root, clean)
    with Store.open(settings) as a, Store.open(clean) as b:
        got_a = a.collection("bigbible").get(include=["embeddings", "documents", "metadatas"])
        got_b = b.collection("bigbible").get(include=["embeddings", "documents", "metadatas"])
    by_a = {i: (d, m, v) for i, d, m, v in zip(got_a["ids"], got_a["documents"], got_a["metadatas"], got_a["embeddings"], strict=True)}
    by_b = {i: (d, m, v) for i, d, m, v in zip(got_b["ids"], got_b["documents"], got_b["metadatas"], got_b["embeddings"], strict=True)}
    assert sorted(by_a) == sorted(by_b)
    for i, (doc, meta, vec) in by_b.items():
        assert by_a[i][0] == doc and by_a[i][1] == meta
        assert float(np.dot(by_a[i][2], vec)) == pytest.approx(1.0, abs=1e-4)
    print(f"\n{len(kills)} kills ({sum(k.killed for k in kills)} hit a running ingest) in {time.monotonic() - started:.0f} s:", seen)


def _json_or_clear_failure(proc: subprocess.CompletedProcess[str]) -> dict | None:
    """A finished ingest prints one JSON object; a refused one prints one clear line and no traceback."""
    assert "Traceback" not in proc.stderr, proc.stderr
    if proc.returncode == 0:
        (line,) = proc.stdout.strip().splitlines()
        return json.loads(line)
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and proc.stdout == "", proc.stderr
    return None


def _start(cmd: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(proc: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    out, err = proc.communicate(timeout=600)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_two_concurrent_ingests_one_store(tmp_path: Path) -> None:
    syn = Synthetic.make(tmp_path / "shared", 40, seed=7)
    settings = load_settings(None, store=tmp_path / "store")
    cmd = ingest_cmd(syn.root, settings.store)

    # 1. both at once into a store that does not exist yet (both create it)
    a, b = _start(cmd), _start(cmd)
    reports = [r for r in (_json_or_clear_failure(_finish(a)), _json_or_clear_failure(_finish(b))) if r]
    assert reports, "neither concurrent ingest finished"
    assert all(r["entries"] == 40 and r["removed"] == 0 for r in reports)
    assert sum(r["added"] for r in reports) == 40  # the second found the first's work done
    assert_exact(settings, "shared", syn.root)

    # 2. both with pending edits, staggered, plus a reader listing entries meanwhile
    syn.edit(6)
    gone = syn.delete(2)
    a = _start(cmd)
    time.sleep(0.5)
    b = _start(cmd)
    reader = _start(["b2p", "entries", "--bible", "shared", "--store", str(settings.store), "--json"])
    reports = [r for r in (_json_or_clear_failure(_finish(a)), _json_or_clear_failure(_finish(b))) if r]
    assert reports
    assert sum(r["updated"] for r in reports) == 6 and sum(r["removed"] for r in reports) == 2
    listed = _finish(reader)
    assert listed.returncode == 0 and "Traceback" not in listed.stderr, listed.stderr
    names = json.loads(listed.stdout)["entries"]
    assert len(names) in (38, 40)  # before or after the ingest, never in between
    assert all(n["chunks"] >= 1 for n in names)
    assert_exact(settings, "shared", syn.root)
    assert gone
