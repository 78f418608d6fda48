"""Ingest speed on synthetic bibles: the real ingest against the limit of this machine, a bare encode.

For each size (``--sizes``, default 1000,10000 entries; a 10k bible is ~18k chunks and takes about
an hour on 2 busy cores, so ``--sizes 1000`` is the quick run), in a fresh child process:

1. ``ingest_bible`` (what ``b2p ingest`` runs) into an empty store: model load, validation,
   chunking, embedding, Chroma writes. → ``ingest_s``, ``entries_per_s``, ``chunks_per_s``,
   ``peak_rss_mb`` (the child's ``ru_maxrss`` when the ingest returns);
2. in the same process, the limit: load a bare ``SentenceTransformer`` and ``encode`` exactly the
   chunk texts the ingest stored (read back from the store). → ``bare_s``;
   ``ratio`` = ingest_s / bare_s (target ≤ 0.6×: ingest embeds with the ONNX twin), also in CPU seconds (``ratio_cpu``, which other
   work on a shared machine disturbs less);
3. re-ingest of the unchanged bible, as ``b2p ingest`` from a new process (target: seconds), and once
   more in a probe process that reports whether any embedding code was even imported.

``--reingest-only`` skips steps 1–2 and times re-ingests of the stores already in the cache (the
10k one takes an hour to make): the unchanged shortcut (files, sizes and times as recorded:
nothing parsed), and a re-ingest after every file was touched (each file parsed and diffed against
the store, nothing embedded: what editing one entry costs, less that entry's embedding).

Imports (torch, chromadb) are done before either timing. The ONNX twin of the model, exported once
per machine, is made beforehand (by ingesting the sample bible) so no timing includes it.
Generated bibles are cached (``--cache``, the layout ``lore_latency.py`` uses); when the cache has
no ingested store of a size yet, the one made here is kept there for the other benchmarks.

    python benchmarks/ingest.py --sizes 1000
    python benchmarks/ingest.py --sizes 1000,10000 --reingest-only
    nice -n 10 python benchmarks/ingest.py --sizes 1000,10000 --cache /tmp/b2p-bench
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import b2p_command, default_cache, log, sample_store, synthetic, synthetic_cached, use_cache  # noqa: E402

NAME = "ingest"
TARGETS = {"ratio": 0.6, "reingest_s": "seconds, no embedding"}


def child(root: Path, store: Path) -> None:
    """Steps 1 and 2 in this (fresh) process; prints one JSON object."""
    import sentence_transformers  # noqa: F401 - import cost is not what we measure
    import torch  # noqa: F401

    import chromadb  # noqa: F401
    from b2p.embeddings import _offline, resolve_model_path
    from b2p.settings import load_settings
    from b2p.store import Store
    from ingest.pipeline import ingest_bible

    settings = load_settings(None, store=store)
    w, c = time.perf_counter(), time.process_time()
    report = ingest_bible(root, settings)
    ingest_s, ingest_cpu = time.perf_counter() - w, time.process_time() - c
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux

    with Store.open(settings) as st:
        texts = [c.text for c in st.chunk_vectors(root.resolve().name)]
    assert len(texts) == report.chunks, (len(texts), report.chunks)

    _offline()
    from sentence_transformers import SentenceTransformer

    w, c = time.perf_counter(), time.process_time()
    model = SentenceTransformer(resolve_model_path(settings.embed_model), device="cpu")
    load_s = time.perf_counter() - w
    model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    bare_s, bare_cpu = time.perf_counter() - w, time.process_time() - c
    print(json.dumps({"entries": report.entries, "chunks": report.chunks, "ingest_s": ingest_s, "ingest_cpu_s": ingest_cpu,
                      "peak_rss_mb": peak, "bare_s": bare_s, "bare_load_s": load_s, "bare_cpu_s": bare_cpu,
                      "chunk_chars_mean": sum(map(len, texts)) / max(1, len(texts))}))


def probe(root: Path, store: Path) -> None:
    """Re-ingest in this process and say whether embedding code was imported at all."""
    from b2p.settings import load_settings
    from ingest.pipeline import ingest_bible

    w = time.perf_counter()
    report = ingest_bible(root, load_settings(None, store=store))
    print(json.dumps({"seconds": time.perf_counter() - w, "added": report.added, "updated": report.updated, "removed": report.removed,
                      "torch_imported": "torch" in sys.modules, "sentence_transformers_imported": "sentence_transformers" in sys.modules}))


def run_json(cmd: list[str]) -> tuple[dict, float, float]:
    """Run cmd; (its JSON stdout, wall seconds, peak RSS in MB from wait4)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t
        out.seek(0)
        err.seek(0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"{' '.join(cmd)} failed: {err.read().decode(errors='replace')[-3000:]}")
        return json.loads(out.read().decode().strip().splitlines()[-1]), wall, usage.ru_maxrss / 1024


def measure(cache: Path, n: int, seed: int, keep: bool) -> dict:
    bible, cached_store = synthetic(cache, n, seed, ingest=False)
    root = bible.root.resolve()
    store = Path(tempfile.mkdtemp(prefix=f"ingest-bench-{n}-", dir=cache)) / ".b2p"
    me = str(Path(__file__).resolve())
    try:
        log(NAME, f"{n} entries: ingest + bare encode in a child process (10k: about an hour on 2 busy cores)")
        fig, child_wall, child_rss = run_json([sys.executable, me, "--child", str(root), str(store)])
        log(NAME, f"{n} entries: {json.dumps(fig)}")
        cli, cli_wall, _ = run_json([*b2p_command(), "ingest", str(root), "--store", str(store), "--json"])
        probed, _, _ = run_json([sys.executable, me, "--probe", str(root), str(store)])
        unchanged = cli["added"] == cli["updated"] == cli["removed"] == 0
        out = {
            "entries": fig["entries"],
            "chunks": fig["chunks"],
            "ingest_s": round(fig["ingest_s"], 1),
            "entries_per_s": round(fig["entries"] / fig["ingest_s"], 2),
            "chunks_per_s": round(fig["chunks"] / fig["ingest_s"], 2),
            "bare_encode_s": round(fig["bare_s"], 1),
            "bare_model_load_s": round(fig["bare_load_s"], 1),
            "ratio": round(fig["ingest_s"] / fig["bare_s"], 3),
            "ratio_cpu": round(fig["ingest_cpu_s"] / fig["bare_cpu_s"], 3),
            "peak_rss_mb": round(fig["peak_rss_mb"]),
            "child_peak_rss_mb": round(child_rss),
            "reingest_cli_s": round(cli_wall, 2),
            "reingest_in_process_s": round(probed["seconds"], 2),
            "reingest_unchanged": unchanged,
            "reingest_imported_torch": probed["torch_imported"] or probed["sentence_transformers_imported"],
            "chunk_chars_mean": round(fig["chunk_chars_mean"]),
        }
        if keep and not cached_store.exists():  # never touch a store another run may still be writing
            shutil.move(str(store), cached_store)
            (cached_store.parent / "ingested.ok").write_text(json.dumps({"chunks": fig["chunks"], "seconds": round(fig["ingest_s"], 1)}) + "\n")
            log(NAME, f"{n} entries: kept the store as {cached_store} for the other benchmarks")
        return out
    finally:
        shutil.rmtree(store.parent, ignore_errors=True)


def reingest_only(cache: Path, n: int, seed: int, runs: int = 5) -> dict:
    """Re-ingest timings on the cached store of an ``n``-entry bible (made by a full run or lore_latency.py)."""
    import statistics

    bible, store = synthetic(cache, n, seed, ingest=False)
    if not synthetic_cached(cache, n, seed):
        raise SystemExit(f"no cached {n}-entry store in {cache}: run 'python benchmarks/ingest.py --sizes {n}' first")
    root = bible.root.resolve()
    cmd = [*b2p_command(), "ingest", str(root), "--store", str(store), "--json"]
    run_json(cmd)  # settle: a store from an older b2p records its state and lore index here
    walls = []
    for _ in range(runs):
        got, wall, _ = run_json(cmd)
        assert got["added"] == got["updated"] == got["removed"] == 0, got
        walls.append(wall)
    probed, _, _ = run_json([sys.executable, str(Path(__file__).resolve()), "--probe", str(root), str(store)])
    past = time.time() - 60  # every file touched (new times, same bytes): the bible must be read again
    for f in root.rglob("*"):
        os.utime(f, (past, past))
    full, full_wall, full_rss = run_json(cmd)
    assert full["added"] == full["updated"] == full["removed"] == 0, full
    base = [run_json([sys.executable, "-c", "import json; print(json.dumps({}))"])[1] for _ in range(runs)]
    return {
        "entries": full["entries"], "chunks": full["chunks"],
        "reingest_cli_s": round(statistics.median(walls), 2), "reingest_cli_s_all": [round(w, 2) for w in walls],
        "reingest_imported_torch": probed["torch_imported"] or probed["sentence_transformers_imported"],
        "reingest_touched_s": round(full_wall, 2), "reingest_touched_peak_rss_mb": round(full_rss),
        "python_start_s": round(statistics.median(base), 3),
    }


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] in ("--child", "--probe"):
        (child if sys.argv[1] == "--child" else probe)(Path(sys.argv[2]), Path(sys.argv[3]))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="1000,10000", help="comma-separated entry counts [1000,10000]")
    ap.add_argument("--seed", type=int, default=7, help="bible seed (7 shares lore_latency.py's cached bibles) [7]")
    ap.add_argument("--cache", type=Path, default=default_cache(), help="generated bibles (and kept stores) [$B2P_BENCH_CACHE or <tmp>/b2p-bench]")
    ap.add_argument("--no-keep", action="store_true", help="never keep the store made here in the cache")
    ap.add_argument("--reingest-only", action="store_true", help="only time re-ingests of the stores already cached")
    args = ap.parse_args()
    cache = use_cache(args.cache)
    if args.reingest_only:
        out = {"targets": TARGETS, "sizes": {str(n): reingest_only(cache, n, args.seed) for n in (int(x) for x in args.sizes.split(","))}}
        print(json.dumps(out, indent=2))
        return
    log(NAME, "making sure the ONNX twin exists (ingests the sample bible once per cache)")
    sample_store(cache)
    out: dict = {"targets": TARGETS, "cpus": len(os.sched_getaffinity(0)), "sizes": {}}
    for n in (int(x) for x in args.sizes.split(",")):
        out["sizes"][str(n)] = measure(cache, n, args.seed, keep=not args.no_keep)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
