"""How fast does a writer learn what lore a beat pulls in? Synthetic bibles of 1k and 10k entries.

Figures, per bible size (printed as one JSON object on stdout; progress on stderr):

- ``matcher_build_ms``: building the name matcher (the Aho-Corasick alias index) from the entries;
- ``index_build_s``: building the lore index from the store (entry records, chunk vectors, matcher,
  noun tables): paid once per bible state, by the ingest that changed it;
- ``retriever_open_ms``: opening a bible for retrieval from its saved lore index;
- ``match_ms`` p50/p95: ``NameMatcher.find`` alone, per beat;
- ``embed_ms`` p50/p95: the query-time embedding of one beat (the ONNX twin when ingest made one);
- ``beat_ms`` p50/p95: ``Retriever.ledger([beat])`` once warm: names, scene, similarity, budget;
- ``cold_cli_s``: wall time of ``b2p lore --beat "…" --bible NAME --store …`` from a fresh
  process (median of ``--cold-runs``), next to ``python -c pass`` measured in the same run.

Targets (issue 3): beat_ms p50 ≤ 25 at 10k entries, match_ms ≤ 5, cold ``b2p lore --beat`` ≤ 2 s.

Embedding 10k entries takes a while on 2 cores, so generated bibles and their ingested stores
are kept under ``--cache DIR`` (default: a temporary folder, removed afterwards) and reused.

    python benchmarks/lore_latency.py --sizes 1000,10000 --cache ~/.cache/b2p-bench
    python benchmarks/lore_latency.py --matcher-only --sizes 10000     # no store, matching only
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.synthetic import GENERATOR_VERSION, SyntheticBible, make_beats, make_bible  # noqa: E402

TARGETS = {"beat_ms_p50_at_10k": 25.0, "match_ms_p50": 5.0, "cold_cli_s": 2.0}


def log(msg: str) -> None:
    print(f"[lore_latency] {msg}", file=sys.stderr, flush=True)


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return round(s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))], 3)


def summary(values: list[float]) -> dict[str, float]:
    return {"p50": pct(values, 0.5), "p95": pct(values, 0.95), "max": round(max(values), 3), "n": len(values)}


def prepare(cache: Path, n: int, seed: int, ingest: bool) -> tuple[SyntheticBible, Path]:
    """The generated bible (and its ingested store), made once per (n, seed, generator version)."""
    folder = cache / f"synth-{n}-s{seed}-g{GENERATOR_VERSION}"
    root = folder / f"synth{n}"
    done = folder / "generated.ok"
    if not done.exists():
        shutil.rmtree(folder, ignore_errors=True)
        log(f"generating a {n}-entry bible in {root}")
        make_bible(root, n, seed)
        done.write_text("ok\n")
    bible = make_bible(root, n, seed, write=False)  # the same description, without rewriting the files
    store = folder / ".b2p"
    if ingest and (folder / "ingested.ok").exists():
        from b2p.settings import load_settings
        from ingest.pipeline import ingest_bible

        # A no-op when the store is current; a store from an older b2p gets its state and lore index.
        ingest_bible(root, load_settings(None, store=store))
    if ingest and not (folder / "ingested.ok").exists():
        from b2p.settings import load_settings
        from ingest.pipeline import ingest_bible

        settings = load_settings(None, store=store)
        started = time.perf_counter()
        last = [0.0]

        def progress(done_: int, total: int) -> None:
            now = time.perf_counter()
            if now - last[0] > 10 or done_ == total:
                last[0] = now
                rate = done_ / max(now - started, 1e-9)
                log(f"  embedded {done_}/{total} chunks ({rate:.1f}/s, ~{(total - done_) / max(rate, 1e-9) / 60:.1f} min left)")

        log(f"ingesting {n} entries into {store} (first run only; reused from --cache afterwards)")
        report = ingest_bible(root, settings, progress=progress)
        log(f"  ingested: {report.entries} entries, {report.chunks} chunks, {report.seconds:.0f} s")
        (folder / "ingested.ok").write_text(json.dumps({"chunks": report.chunks, "seconds": round(report.seconds, 1)}) + "\n")
    return bible, store


def matcher_figures(bible: SyntheticBible, beats: list[str]) -> dict:
    from b2p.matcher import NameMatcher
    from ingest.bible import read_bible

    entries = read_bible(bible.root).entries
    builds = []
    for _ in range(3):
        t = time.perf_counter()
        matcher = NameMatcher(entries)
        builds.append((time.perf_counter() - t) * 1000)
    keys = sum(len(e.keys()) for e in entries)
    for b in beats[:20]:
        matcher.find(b)
    times = []
    for b in beats:
        t = time.perf_counter()
        matcher.find(b)
        times.append((time.perf_counter() - t) * 1000)
    return {"entries": len(entries), "names_and_aliases": keys, "matcher_build_ms": round(statistics.median(builds), 1), "match_ms": summary(times)}


def retrieval_figures(bible: SyntheticBible, store: Path, beats: list[str]) -> dict:
    from b2p.index import LoreIndex, index_root
    from b2p.matcher import NameMatcher
    from b2p.retrieval import Retriever
    from b2p.settings import load_settings
    from b2p.store import Store

    settings = load_settings(None, store=store)
    with Store.open(settings) as st:
        t = time.perf_counter()
        index = LoreIndex.build(st, bible.name, settings)
        index_build_s = time.perf_counter() - t
        index.save(index_root(settings))  # as ingest does: the open below reads it
    with Store.open(settings) as st:
        t = time.perf_counter()
        r = Retriever(settings, st, bible.name)
        open_ms = (time.perf_counter() - t) * 1000
        builds = []
        for _ in range(3):
            t = time.perf_counter()
            NameMatcher(r.entries.values())
            builds.append((time.perf_counter() - t) * 1000)
        keys = sum(len(e.keys()) for e in r.entries.values())
        for b in beats[:5]:  # warm: the ONNX session, the vector matrix paged in
            r.ledger([b])
        match, embed, beat_ms, picks = [], [], [], []
        for b in beats:
            t = time.perf_counter()
            r.matcher.find(b)
            match.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            r._embed([b])
            embed.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            ledger = r.ledger([b])
            beat_ms.append((time.perf_counter() - t) * 1000)
            picks.append(len(ledger.beats[0].lore))
        embedder = type(r._embedder).__name__
    return {
        "entries": len(r.entries),
        "names_and_aliases": keys,
        "matcher_build_ms": round(statistics.median(builds), 1),
        "index_build_s": round(index_build_s, 2),
        "retriever_open_ms": round(open_ms, 1),
        "query_embedder": embedder,
        "match_ms": summary(match),
        "embed_ms": summary(embed),
        "beat_ms": summary(beat_ms),
        "mean_picks_per_beat": round(statistics.mean(picks), 2),
    }


def _b2p_command() -> list[str]:
    # The console script beside this interpreter: a pyenv shim on PATH would add its own start-up to the figure.
    exe = Path(sys.executable).with_name("b2p")
    if exe.is_file():
        return [str(exe)]
    found = shutil.which("b2p")
    return [found] if found else [sys.executable, str(ROOT / "cli.py")]


def cold_figures(bible: SyntheticBible, store: Path, beat: str, runs: int) -> dict:
    env = dict(os.environ)
    cmd = [*_b2p_command(), "lore", "--beat", beat, "--bible", bible.name, "--store", str(store), "--json"]
    walls, baseline = [], []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True, env=env)
        baseline.append(time.perf_counter() - t)
        t = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        walls.append(time.perf_counter() - t)
        if proc.returncode != 0:
            raise SystemExit(f"b2p lore failed ({proc.returncode}): {proc.stderr.strip()}")
        json.loads(proc.stdout)  # one JSON object, or this benchmark is measuring a failure
    return {"cold_cli_s": round(statistics.median(walls), 3), "cold_cli_s_all": [round(w, 3) for w in walls],
            "python_pass_s": round(statistics.median(baseline), 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="1000,10000", help="comma-separated entry counts [1000,10000]")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--beats", type=int, default=300, help="distinct single beats timed per size")
    ap.add_argument("--cold-runs", type=int, default=5)
    ap.add_argument("--cache", type=Path, help="keep generated bibles and stores here and reuse them [default: a temp dir]")
    ap.add_argument("--matcher-only", action="store_true", help="time the alias index and name matching only (no store, no embedding)")
    args = ap.parse_args()
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    temp = None
    if args.cache is None:
        temp = tempfile.TemporaryDirectory(prefix="b2p-latency-")
        cache = Path(temp.name)
    else:
        cache = args.cache.expanduser().resolve()
        cache.mkdir(parents=True, exist_ok=True)
    # The ONNX twin lives with the cached stores, so a cold process finds the one ingest made.
    os.environ.setdefault("B2P_CACHE_DIR", str(cache / "model-cache"))
    out: dict = {"targets": TARGETS, "sizes": {}}
    try:
        for n in (int(x) for x in args.sizes.split(",")):
            bible, store = prepare(cache, n, args.seed, ingest=not args.matcher_only)
            beats = make_beats(bible, args.beats, seed=args.seed + n)
            log(f"{n} entries: timing {len(beats)} beats")
            if args.matcher_only:
                fig = matcher_figures(bible, beats)
            else:
                fig = retrieval_figures(bible, store, beats)
                log(f"{n} entries: cold 'b2p lore --beat' x{args.cold_runs}")
                fig.update(cold_figures(bible, store, beats[1], args.cold_runs))
            out["sizes"][str(n)] = fig
            log(f"{n} entries: {json.dumps(fig)}")
    finally:
        if temp is not None:
            temp.cleanup()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
