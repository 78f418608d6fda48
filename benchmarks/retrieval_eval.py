"""Retrieval quality on the labelled sample beat sheets: b2p versus two baselines.

For every ``story_bibles/*/beats/*.labels.yaml`` (required / acceptable / forbidden entries per
beat), compare what each method pulls in. ``always`` entries are in every beat by design and are
left out of the scores.

- b2p:      the real ledger (names ∪ scene ∪ similar, within the default budget)
- keyword:  lorebook-style activation: names and aliases as whole words, case-insensitive
- vector:   top-k entries by their best chunk's cosine similarity to the beat (k = 3)

``benchmarks/heldout/`` holds a bible labelled blind, by a helper who never read b2p's code:
``--bibles benchmarks/heldout`` scores it alone.

Run: ``python benchmarks/retrieval_eval.py [--bibles DIR] [--store DIR] [--errors]``; prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from b2p.beats import read_beats  # noqa: E402
from b2p.retrieval import Retriever  # noqa: E402
from b2p.settings import load_settings  # noqa: E402
from b2p.store import Store  # noqa: E402
from ingest.pipeline import ingest_bible  # noqa: E402

VECTOR_K = 3


def labelled_sheets(bibles: Path) -> list[tuple[Path, Path, Path]]:
    """(bible folder, beat sheet, labels) for every labelled sheet."""
    out = []
    for labels in sorted(bibles.glob("*/beats/*.labels.yaml")):
        sheet = labels.with_name(labels.name.replace(".labels.yaml", ".txt"))
        out.append((labels.parent.parent, sheet, labels))
    return out


def keyword_baseline(retriever: Retriever, beat: str) -> set[str]:
    hits = set()
    for e in retriever.entries.values():
        if e.always:
            continue
        for key in e.keys():
            if re.search(rf"(?<!\w){re.escape(key)}(?!\w)", beat, re.IGNORECASE):
                hits.add(e.name)
                break
    return hits


def vector_baseline(retriever: Retriever, beat: str) -> set[str]:
    vec = retriever._embed([beat])[0]
    best: dict[str, float] = {}
    for entry_id, sim, _snippet in retriever.index.nearest([vec], 40)[0]:
        e = retriever.entries.get(entry_id)
        if e is not None and not e.always:
            best[e.name] = max(best.get(e.name, -1.0), sim)
    return {name for name, _ in sorted(best.items(), key=lambda kv: -kv[1])[:VECTOR_K]}


class Score:
    def __init__(self) -> None:
        self.tp = self.required = self.predicted = self.correct = self.forbidden = 0

    def add(self, pred: set[str], req: set[str], acc: set[str], forb: set[str]) -> None:
        self.tp += len(pred & req)
        self.required += len(req)
        self.predicted += len(pred)
        self.correct += len(pred & (req | acc))
        self.forbidden += len(pred & forb)

    def figures(self) -> dict[str, float]:
        recall = self.tp / self.required if self.required else 1.0
        precision = self.correct / self.predicted if self.predicted else 1.0
        f1 = 2 * recall * precision / (recall + precision) if recall + precision else 0.0
        return {"recall": round(recall, 4), "precision": round(precision, 4), "f1": round(f1, 4), "forbidden_hits": self.forbidden}


def evaluate(store_dir: Path, show_errors: bool = False, bibles: Path = ROOT / "story_bibles") -> dict:
    settings = load_settings(None, store=store_dir)
    scores = {"b2p": Score(), "keyword": Score(), "vector": Score()}
    beats_total = 0
    errors = []
    sheets = labelled_sheets(bibles)
    for bible_dir in sorted({b for b, _, _ in sheets}):
        ingest_bible(bible_dir, settings)
    started = time.perf_counter()
    with Store.open(settings) as store:
        for bible_dir, sheet, labels in sheets:
            retriever = Retriever(settings, store, bible_dir.name)
            always = {e.name for e in retriever.entries.values() if e.always}
            beats = read_beats(sheet)
            ledger = retriever.ledger(beats)
            for item in yaml.safe_load(labels.read_text())["beats"]:
                i = item["index"]
                req, acc, forb = (set(item.get(k) or []) for k in ("required", "acceptable", "forbidden"))
                beat = beats[i - 1]
                lore = ledger.beats[i - 1].lore
                pred = {p.name for p in lore} - always
                scores["b2p"].add(pred, req, acc, forb)
                scores["keyword"].add(keyword_baseline(retriever, beat), req, acc, forb)
                scores["vector"].add(vector_baseline(retriever, beat), req, acc, forb)
                beats_total += 1
                wrong = (req - pred) | (pred - req - acc)
                if wrong and show_errors:
                    errors.append({
                        "sheet": f"{bible_dir.name}/{sheet.name}", "beat": i, "text": beat,
                        "missed": sorted(req - pred), "extra": sorted(pred - req - acc),
                        "forbidden": sorted(pred & forb),
                        "picks": [f"{p.name}:{p.reason}:{p.score:.2f}" for p in lore if p.name not in always],
                    })
    result = {
        "beats": beats_total,
        "sheets": len(sheets),
        "bibles": len({b for b, _, _ in sheets}),
        "seconds": round(time.perf_counter() - started, 2),
        **{name: s.figures() for name, s in scores.items()},
    }
    if show_errors:
        result["errors"] = errors
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bibles", type=Path, default=ROOT / "story_bibles", help="folder of bibles with labelled sheets (default story_bibles)")
    ap.add_argument("--store", type=Path, help="store folder to (re)use; default: a temporary one")
    ap.add_argument("--errors", action="store_true", help="list every beat where b2p missed or added an entry")
    args = ap.parse_args()
    if args.store:
        print(json.dumps(evaluate(args.store, args.errors, args.bibles), indent=2))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps(evaluate(Path(tmp) / ".b2p", args.errors, args.bibles), indent=2))


if __name__ == "__main__":
    main()
