"""Generation speed: the embedded model through b2p against raw ``llama_cpp`` on the same prompts.

The prompts are the ones ``b2p generate --dry-run`` builds for the first ``--beats`` beats of a
sample chapter (lunar_mining, chapter 1: lore, outline, task; ~1.6k prompt tokens each). Each is sent, with the same token limit, stop strings, sampling
options and seed, to

- **raw**: ``llama_cpp.Llama.create_chat_completion`` on the embedded GGUF, nothing around it;
- **b2p**: ``load_llm(settings)`` (``b2p.llm_local.LocalLLM``) ``.complete(...)``, which renders the
  chat template, counts the prompt, streams and re-tokenizes the reply;

in alternating order, ``--reps`` times, in one process with the same thread count. Speed is
completion tokens per wall second; the figure is raw tokens/s ÷ b2p tokens/s (target ≤ 1.1×), the
median over every (prompt, round) of the two calls made back to back, so a shift in the machine's
load between rounds cancels out. With equal seeds both usually write the very same text
(``same_text``), so the two sides do the same work.

``--e2e`` also runs ``b2p generate`` on those beats (a new process: model load, retrieval, every
beat, summaries, saves) and reports its trace's tokens/s and its wall time.

    python benchmarks/generation.py [--beats 4] [--reps 3] [--words 150] [--e2e]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import SAMPLE_BIBLE, b2p_command, default_cache, log, median, sample_store, use_cache  # noqa: E402

NAME = "generation"
TARGET_RATIO = 1.1
SHEET = SAMPLE_BIBLE / "beats" / "chapter1.txt"


def build_prompts(settings, llm, beats: list[str]) -> list:  # noqa: ANN001
    """The requests ``b2p generate`` would send for these beats (sequential mode)."""
    from b2p.plan import dry_run, plan_chapter

    plan = plan_chapter(settings, SAMPLE_BIBLE.name, beats)
    return [d.prompt for d in dry_run(settings, plan, beats, llm)]


def raw_call(llama, prompt, seed: int, temperature: float, sampling: dict) -> tuple[str, int, float]:  # noqa: ANN001
    t = time.perf_counter()
    resp = llama.create_chat_completion(messages=prompt.messages, max_tokens=prompt.max_tokens, temperature=temperature, seed=seed,
                                        stop=list(prompt.stop) or None, **sampling)
    wall = time.perf_counter() - t
    return resp["choices"][0]["message"]["content"] or "", int(resp["usage"]["completion_tokens"]), wall


def b2p_call(llm, prompt, seed: int, temperature: float) -> tuple[str, int, float]:  # noqa: ANN001
    from b2p.llm import GenOptions

    t = time.perf_counter()
    c = llm.complete(prompt.messages, GenOptions(max_tokens=prompt.max_tokens, temperature=temperature, seed=seed, stop=list(prompt.stop)))
    wall = time.perf_counter() - t
    return c.text, c.completion_tokens, wall


def end_to_end(store: Path, beats: list[str], words: int, seed: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="b2p-gen-") as tmp:
        out = Path(tmp) / "chapter.md"
        sheet = Path(tmp) / "beats.txt"
        sheet.write_text("\n".join(beats) + "\n")
        cmd = [*b2p_command(), "generate", str(sheet), "--bible", SAMPLE_BIBLE.name, "--store", str(store), "-o", str(out),
               "--no-stream", "--seed", str(seed), "--words-per-beat", str(words)]
        t = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - t
        if proc.returncode != 0:
            raise SystemExit(f"b2p generate failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
        trace = json.loads(out.with_name("chapter.trace.json").read_text())
    totals = trace["totals"]
    return {"wall_s": round(wall, 2), "beats": totals.get("beats"), "completion_tokens": totals.get("completion_tokens"),
            "prompt_tokens": totals.get("prompt_tokens"), "model_seconds": round(totals.get("seconds") or 0, 2),
            "trace_tokens_per_s": totals.get("tokens_per_second"),
            "wall_tokens_per_s": round(totals.get("completion_tokens", 0) / wall, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=3, help="rounds over the prompts [3]")
    ap.add_argument("--beats", type=int, default=4, help="the first N beats of the sample chapter (14 in all) [4]")
    ap.add_argument("--words", type=int, default=150, help="--words-per-beat, which sets each reply's token limit [150]")
    ap.add_argument("--temperature", type=float, default=0.8)
    ap.add_argument("--e2e", action="store_true", help="also time a whole 'b2p generate' run of the chapter")
    ap.add_argument("--cache", type=Path, default=default_cache(), help="where the sample store is kept [$B2P_BENCH_CACHE or <tmp>/b2p-bench]")
    args = ap.parse_args()
    cache = use_cache(args.cache)
    store = sample_store(cache)

    from llama_cpp import Llama

    from b2p.llm import load_llm
    from b2p.llm_local import embedded_model_path
    from b2p.settings import load_settings

    settings = load_settings(None, store=store, words_per_beat=args.words, temperature=args.temperature)
    llm = load_llm(settings)
    threads = llm._llama.n_threads  # noqa: SLF001 - give raw llama.cpp exactly b2p's threads
    raw = Llama(model_path=str(embedded_model_path()), n_ctx=settings.backend_options("local").n_ctx, n_threads=threads, n_threads_batch=threads, verbose=False)
    sampling = dict(type(llm).sampling)
    from b2p.beats import read_beats

    beats = read_beats(SHEET)[: args.beats]
    prompts = build_prompts(settings, llm, beats)
    log(NAME, f"{len(prompts)} prompts of {[p.prompt_tokens for p in prompts]} tokens, limits {[p.max_tokens for p in prompts]}; "
              f"{threads} threads; {args.reps} rounds")

    # Warm both (first-call allocations) on the first prompt, untimed.
    raw_call(raw, prompts[0], 0, args.temperature, sampling)
    b2p_call(llm, prompts[0], 0, args.temperature)
    rounds = []
    pairs: list[float] = []  # raw/b2p speed of one prompt, the two calls back to back: load shifts between rounds cancel
    same = total = 0
    for r in range(args.reps):
        tok = {"raw": 0, "b2p": 0}
        sec = {"raw": 0.0, "b2p": 0.0}
        for i, p in enumerate(prompts):
            seed = 1000 * r + i
            sides = ["raw", "b2p"] if (r + i) % 2 == 0 else ["b2p", "raw"]
            texts, pair = {}, {}
            for side in sides:
                text, n, wall = raw_call(raw, p, seed, args.temperature, sampling) if side == "raw" else b2p_call(llm, p, seed, args.temperature)
                tok[side] += n
                sec[side] += wall
                texts[side] = text
                pair[side] = n / wall
            same += texts["raw"].strip() == texts["b2p"].strip()
            total += 1
            pairs.append(pair["raw"] / pair["b2p"])
        tps = {s: tok[s] / sec[s] for s in tok}
        rounds.append({"raw_tokens": tok["raw"], "b2p_tokens": tok["b2p"], "raw_tps": round(tps["raw"], 2), "b2p_tps": round(tps["b2p"], 2),
                       "ratio": round(tps["raw"] / tps["b2p"], 3)})
        log(NAME, f"round {r + 1}: {rounds[-1]}")
    llm.close()
    raw.close()
    ratio = round(median(pairs), 3)
    out: dict = {
        "model": embedded_model_path().name,
        "threads": threads,
        "prompts": len(prompts),
        "prompt_tokens": [p.prompt_tokens for p in prompts],
        "max_tokens": [p.max_tokens for p in prompts],
        "raw_tokens_per_s": round(median([x["raw_tps"] for x in rounds]), 2),
        "b2p_tokens_per_s": round(median([x["b2p_tps"] for x in rounds]), 2),
        "ratio_raw_over_b2p": ratio,  # median over prompts × rounds of the back-to-back pairs
        "pair_ratios": [round(x, 3) for x in pairs],
        "target_ratio": TARGET_RATIO,
        "meets_target": ratio <= TARGET_RATIO,
        "same_text": f"{same}/{total}",
        "rounds": rounds,
    }
    if args.e2e:
        log(NAME, "whole 'b2p generate' of the chapter")
        out["b2p_generate"] = end_to_end(store, beats, args.words, seed=1)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
