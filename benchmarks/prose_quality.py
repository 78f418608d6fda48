"""Prose quality: the sample chapter written by the embedded model, measured by ``b2p eval``.

For each seed, ``b2p generate`` writes ``story_bibles/lunar_mining/beats/chapter1.txt`` (14 beats)
with the embedded SmolLM2-135M and the default settings, into ``<out>/seed-<N>/chapter.md``; then
``b2p.evaluate.evaluate_chapter`` measures it. Reported per seed and as the median over seeds:

- ``scaffold_lines``: debris lines (headings, labels, markup, list numbers, notes, comments, echoes);
- ``mid_sentence``: beats ending mid-sentence;
- ``copied_beats``: beats repeating more than 20 % of their word 6-grams from earlier beats;
- ``coverage``: the chapter's median beat coverage; ``similarity``: its median beat ↔ prose similarity;
- and, to read them by: highest repeat share, lore named, entries named but not picked, median
  length against ``words_per_beat``, beats stopped by the token limit, words, model seconds;
- what the generation guards did (from the trace): beats drafted again, drafts in all, beats kept
  flagged, the first drafts' problems by kind (what the model wrote before any guard), and cuts by kind.

``--prompt-shape`` and ``--redrafts`` set those settings for the run (``B2P_PROMPT_SHAPE``,
``B2P_REDRAFTS``), so prompt shapes can be compared on the same seeds; ``--label`` keeps each
variant's chapters apart.

A chapter already written there (a complete trace) is measured again without being rewritten, so
an interrupted run continues where it stopped (``--fresh`` writes every chapter anew). Slow: about
a minute a beat on two busy cores; run it in the background with ``nice``.

    python benchmarks/prose_quality.py [--seeds 1,2,3] [--label before] [--words 150] [--fresh] [--threads 1]
                                       [--prompt-shape auto|full|short] [--redrafts N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import ROOT, SAMPLE_BIBLE, b2p_command, default_cache, log, median, sample_store, use_cache  # noqa: E402

NAME = "prose_quality"
SHEET = SAMPLE_BIBLE / "beats" / "chapter1.txt"
FIGURES = ("scaffold_lines", "mid_sentence", "copied_beats", "coverage", "similarity", "highest_repeat", "lore_named", "unpicked",
           "length", "capped_beats", "words", "model_seconds", "redrafted_beats", "drafts", "flagged_beats")


def revision() -> str:
    proc = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return proc.stdout.strip() or "unknown"


def write_chapter(store: Path, out: Path, seed: int, words: int, fresh: bool, threads: int | None, extra_env: dict[str, str]) -> float:
    """Generate (or finish) one seed's chapter; the wall seconds it took (0 when it was already complete)."""
    if fresh and out.parent.exists():
        shutil.rmtree(out.parent)
    trace = out.with_name("chapter.trace.json")
    if trace.is_file() and json.loads(trace.read_text()).get("complete"):
        return 0.0
    out.parent.mkdir(parents=True, exist_ok=True)
    (out.parent / "REV").write_text(revision() + "\n")
    cmd = [*b2p_command(), "generate", str(SHEET), "--bible", SAMPLE_BIBLE.name, "--store", str(store), "-o", str(out),
           "--no-stream", "--seed", str(seed), "--words-per-beat", str(words), *(["--resume"] if trace.is_file() else [])]
    t = time.perf_counter()
    env = {**os.environ, **({"B2P_N_THREADS": str(threads)} if threads else {}), **extra_env}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"b2p generate failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return round(time.perf_counter() - t, 1)


def measure(chapter: Path, settings) -> dict:  # noqa: ANN001
    from b2p.evaluate import evaluate_chapter

    report = evaluate_chapter(chapter, settings)
    trace = json.loads(chapter.with_name("chapter.trace.json").read_text())
    f = report.figures
    kinds: dict[str, int] = {}
    for b in report.beats:
        for d in b.debris:
            kinds[d.kind] = kinds.get(d.kind, 0) + 1
    guarded = [b.get("guard") or {} for b in trace["beats"]]
    first: dict[str, int] = {}
    cuts: dict[str, int] = {}
    for g in guarded:
        for p in (g.get("drafts") or [{}])[0].get("problems", []):
            first[p.split(":")[0]] = first.get(p.split(":")[0], 0) + 1
        for c in g.get("cut", []):
            cuts[c["kind"]] = cuts.get(c["kind"], 0) + 1
    return {
        "scaffold_lines": f.debris, "mid_sentence": f.mid_sentence, "copied_beats": f.copied_beats, "coverage": f.coverage,
        "similarity": f.similarity, "highest_repeat": f.repeat, "lore_named": f.lore, "unpicked": f.unpicked, "length": f.length,
        "capped_beats": sum(b["finish_reason"] == "length" for b in trace["beats"]), "words": f.words,
        "model_seconds": round(trace["totals"]["seconds"], 1), "debris_kinds": kinds,
        "redrafted_beats": sum(len(g.get("drafts", [])) > 1 for g in guarded), "drafts": sum(len(g.get("drafts", [])) for g in guarded),
        "flagged_beats": sum(bool(g.get("flagged")) for g in guarded), "first_draft_problems": first, "cuts": cuts,
        "prompt_shape": trace["options"].get("prompt_shape", "full"),
        "repeat_per_beat": [b.repeat for b in report.beats], "coverage_per_beat": [b.coverage for b in report.beats],
        "generated_by": (chapter.parent / "REV").read_text().strip() if (chapter.parent / "REV").is_file() else "unknown",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", default="1,2,3", help="comma-separated seeds [1,2,3]")
    ap.add_argument("--label", default="current", help="folder name for this generator's chapters [current]")
    ap.add_argument("--words", type=int, default=150, help="--words-per-beat [150, the default]")
    ap.add_argument("--fresh", action="store_true", help="write every chapter anew")
    ap.add_argument("--prompt-shape", choices=("auto", "full", "short"), default=None, help="B2P_PROMPT_SHAPE for the run [the default]")
    ap.add_argument("--redrafts", type=int, default=None, help="B2P_REDRAFTS for the run [the default]")
    ap.add_argument("--threads", type=int, default=None, help="llama.cpp threads (B2P_N_THREADS); 1 runs far faster on a busy machine")
    ap.add_argument("--cache", type=Path, default=default_cache(), help="where the sample store and chapters are kept [$B2P_BENCH_CACHE or <tmp>/b2p-bench]")
    args = ap.parse_args()
    cache = use_cache(args.cache)
    store = sample_store(cache)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]

    from b2p.settings import load_settings

    settings = load_settings(None, store=store)
    per_seed = {}
    for seed in seeds:
        chapter = cache / NAME / args.label / f"seed-{seed}" / "chapter.md"
        log(NAME, f"seed {seed}: writing {chapter}")
        extra = {k: str(v) for k, v in (("B2P_PROMPT_SHAPE", args.prompt_shape), ("B2P_REDRAFTS", args.redrafts)) if v is not None}
        wall = write_chapter(store, chapter, seed, args.words, args.fresh, args.threads, extra)
        per_seed[seed] = {"wall_s": wall, **measure(chapter, settings)}
        log(NAME, f"seed {seed}: " + ", ".join(f"{k} {per_seed[seed][k]}" for k in FIGURES[:5]))
    medians = {k: median([v[k] for v in per_seed.values() if v[k] is not None]) if any(v[k] is not None for v in per_seed.values()) else None
               for k in FIGURES}
    print(json.dumps({"sheet": str(SHEET.relative_to(ROOT)), "label": args.label, "revision": revision(), "words_per_beat": args.words,
                      "threads": args.threads, "prompt_shape": args.prompt_shape, "redrafts": args.redrafts,
                      "seeds": seeds, "median": medians, "per_seed": per_seed}, indent=2))


if __name__ == "__main__":
    main()
