"""Prompt economy: the lore tokens b2p puts into each beat's prompt, against the whole bible in every prompt.

The seed write-up's starting point was "put the whole bible into every prompt". b2p instead picks,
per beat, the entries the beat names, those still on stage, and those it describes, within a
token budget. This measures both on synthetic bibles of growing size and a realistic beat sheet
whose every beat names one to three entries (by name or alias), run as one sheet so the scene
carries from beat to beat.

Figures per size (one JSON object on stdout; progress on stderr):

- ``whole_bible_tokens``: every entry's tokens (what "the whole bible" adds to each prompt);
- ``b2p_tokens_per_beat``: mean / median / p95 / max lore tokens b2p chose for a beat;
- ``share_of_whole``: mean b2p tokens per beat / whole-bible tokens (target ≤ 3 % at 1k entries);
- ``named_recall``: share of the entries a beat names that b2p did include (a small prompt is only
  good if it keeps what the beat needs);
- ``flatness``: mean tokens per beat at each size / at the smallest size ≥ 100 (target: flat, ≈ 1).

Tokens are b2p's lore tokens (the embedding model's tokenizer, the unit of ``--budget``).

    python benchmarks/prompt_size.py                      # 10, 100, 1000 (+ 10000 if cached)
    python benchmarks/prompt_size.py --sizes 10,100,1000,10000 --cache /tmp/b2p-bench
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import default_cache, log, pct, synthetic, synthetic_cached, use_cache  # noqa: E402

NAME = "prompt_size"
TARGETS = {"share_of_whole_at_1000": 0.03, "flatness": "≈ 1 as the bible grows (bounded by --budget)"}

# Beats as writers write them: one plot point, naming one to three entries.
ONE = [
    "{c1} wakes before dawn and checks the locks twice.",
    "Rain hammers the roofs of {p1} all night, and nobody sleeps.",
    "{c1} finally admits the letter was never delivered.",
    "The bells of {p1} ring out of turn, and the market empties.",
    "{c1} counts what is left of the money and does not like the sum.",
]
TWO = [
    "{c1} finds {c2} waiting at the gate with bad news.",
    "{c1} confronts {c2} about the missing ledger.",
    "{c1} rows into {p1} at dusk, soaked and hungry.",
    "Word comes from {f1} that {c1} is no longer welcome.",
    "{c1} turns {i1} over in the lamplight, looking for a maker's mark.",
    "{c1} and {c2} share a bottle and say nothing about the war.",
]
THREE = [
    "At {p1}, {c1} sells {i1} to {c2} for half its worth.",
    "{c1} and {c2} argue over whether to trust {f1}.",
    "{c1} hides {i1} under the floorboards before {c2} arrives.",
    "{c1} follows {c2} through the back streets of {p1}.",
]


def beat_sheet(bible, n_beats: int, seed: int) -> tuple[list[str], list[set[str]]]:  # noqa: ANN001 - SyntheticBible
    """(beats, the entry ids each beat names). Names are written as the name or one of the aliases."""
    rng = random.Random(seed)
    by_kind: dict[str, list] = {}
    for e in bible.entries:
        if e.kind != "note" and not e.case_sensitive:
            by_kind.setdefault(e.kind, []).append(e)
    # A scene keeps a small cast for a few beats, as chapters do; then the story moves on.
    beats, named = [], []
    cast: list = []
    for i in range(n_beats):
        if i % 4 == 0 or not cast:
            cast = rng.sample(by_kind["character"], min(3, len(by_kind["character"])))
        template = rng.choice(rng.choice([ONE, TWO, TWO, THREE]))
        pick: dict[str, object] = {}
        people = list(cast) if rng.random() < 0.7 else rng.sample(by_kind["character"], 2)
        rng.shuffle(people)
        for slot, pool in (("c1", people), ("c2", people[1:] or people), ("p1", by_kind.get("place")), ("i1", by_kind.get("item")),
                           ("f1", by_kind.get("faction"))):
            if "{" + slot + "}" in template:
                pick[slot] = pool[0] if slot in ("c1", "c2") else rng.choice(pool or by_kind["character"])
        text = template.format(**{k: call(e, rng) for k, e in pick.items()})
        beats.append(text[0].upper() + text[1:])
        named.append({e.id for e in pick.values()})
    return beats, named


def call(e, rng: random.Random) -> str:  # noqa: ANN001
    """How a writer refers to an entry: usually its name, sometimes a unique alias."""
    own = [a for a in e.aliases if not a.lower().startswith("the ") or e.kind != "character"]
    return rng.choice(own) if own and rng.random() < 0.35 else e.name


def measure(bible, store: Path, n_beats: int, seed: int) -> dict:  # noqa: ANN001
    from b2p.retrieval import Retriever
    from b2p.settings import load_settings
    from b2p.store import Store

    settings = load_settings(None, store=store)
    beats, named = beat_sheet(bible, n_beats, seed)
    with Store.open(settings) as st, st.lock(exclusive=False):
        r = Retriever(settings, st, bible.name)
        ledger = r.ledger(beats)
        whole = sum(e.tokens for e in r.entries.values())
    per_beat = [sum(p.tokens for p in b.lore) for b in ledger.beats]
    picks = [len(b.lore) for b in ledger.beats]
    hit = sum(len(want & {p.id for p in b.lore}) for want, b in zip(named, ledger.beats, strict=True))
    want = sum(len(w) for w in named)
    mean = statistics.mean(per_beat)
    return {
        "entries": len(r.entries),
        "beats": len(beats),
        "whole_bible_tokens": whole,
        "b2p_tokens_per_beat": {"mean": round(mean, 1), "median": statistics.median(per_beat), "p95": pct(per_beat, 0.95),
                                "max": max(per_beat)},
        "share_of_whole": round(mean / whole, 5),
        "entries_per_beat": round(statistics.mean(picks), 2),
        "named_per_beat": round(want / len(beats), 2),
        "named_recall": round(hit / want, 4),
        "dropped_for_budget_per_beat": round(statistics.mean(sum(d.reason == "budget" for d in b.dropped) for b in ledger.beats), 2),
        "budget": settings.budget,
        "example": {"beat": beats[1], "lore": [f"{p.name} ({p.reason}, {p.tokens})" for p in ledger.beats[1].lore]},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", help="comma-separated entry counts [10,100,1000, and 10000 when its store is cached]")
    ap.add_argument("--beats", type=int, default=120, help="beats in the sheet [120]")
    ap.add_argument("--seed", type=int, default=7, help="bible seed (7 shares lore_latency.py's cached bibles) [7]")
    ap.add_argument("--cache", type=Path, default=default_cache(), help="generated bibles and stores, reused [$B2P_BENCH_CACHE or <tmp>/b2p-bench]")
    args = ap.parse_args()
    cache = use_cache(args.cache)
    sizes = [int(x) for x in args.sizes.split(",")] if args.sizes else [10, 100, 1000]
    if not args.sizes and synthetic_cached(cache, 10_000, args.seed):
        sizes.append(10_000)
    out: dict = {"targets": TARGETS, "sizes": {}}
    for n in sizes:
        if not synthetic_cached(cache, n, args.seed):
            log(NAME, f"{n} entries: generating and ingesting (first run only{'; ~1 h at 10k' if n >= 10_000 else ''})")
        bible, store = synthetic(cache, n, args.seed)
        fig = measure(bible, store, args.beats, seed=1000 + n)
        out["sizes"][str(n)] = fig
        log(NAME, f"{n} entries: {fig['b2p_tokens_per_beat']['mean']} tokens/beat of {fig['whole_bible_tokens']} ({fig['share_of_whole']:.2%})")
    base_n = min((n for n in sizes if n >= 100), default=min(sizes))
    base = out["sizes"][str(base_n)]["b2p_tokens_per_beat"]["mean"]
    out["flatness"] = {"relative_to": base_n, **{k: round(v["b2p_tokens_per_beat"]["mean"] / base, 3) for k, v in out["sizes"].items()}}
    if "1000" in out["sizes"]:
        out["share_of_whole_at_1000"] = out["sizes"]["1000"]["share_of_whole"]
        out["meets_target"] = out["share_of_whole_at_1000"] <= TARGETS["share_of_whole_at_1000"]
    print(json.dumps(out, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
