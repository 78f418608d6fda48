"""Retrieval quality on the labelled sample beat sheets: b2p versus two baselines.

For every ``story_bibles/*/beats/*.labels.yaml`` (required / acceptable / forbidden entries per
beat), compare what each method pulls in. ``always`` entries are in every beat by design and are
left out of the scores.

- b2p:      the real ledger (names ∪ scene ∪ similar, within the default budget)
- keyword:  lorebook-style activation: names and aliases as whole words, case-insensitive
- vector:   top-k entries by their best chunk's cosine similarity to the beat (k = 3)

``benchmarks/dev/`` holds bibles labelled blind by helpers who never read b2p's code, open for
tuning; ``benchmarks/heldout/`` holds more, never read and never tuned on: ``--bibles DIR`` scores
one folder of bibles (``--errors`` is refused for held-out sets: aggregate figures only).

Figures are given in total and per set (bible), for b2p and both baselines on the same beats, with
a breakdown by class: misses by how the beat refers to the entry (the labels' ``how:`` — relation,
part, event, title, description, pronoun, scene, other — or ``named`` when a keyword names it) and
false hits by what made them tempting (``forbidden_why:`` — common-phrase, demonym, title,
relation, topic, other — or ``extra`` for a pick that is merely not labelled).

With ``--answers DIR`` b2p runs with ``resolver = "model"`` against a *replay* model: each question
b2p asks (one a beat, b2p/resolver.py) is looked up by its hash in ``DIR/answers/<hash>.txt``; a
question with no answer yet is written to ``DIR/prompts/<hash>.txt`` and that beat keeps the rules'
choice. Answering the prompts (by any model, or a reader) and running again scores b2p with that model.

Run: ``python benchmarks/retrieval_eval.py [--bibles DIR] [--store DIR] [--errors] [--answers DIR]``; prints one JSON object.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import tempfile
import time
from pathlib import Path

import yaml
from pydantic import Field

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from b2p.beats import read_beats  # noqa: E402
from b2p.llm import LLM, BackendOptions, Completion  # noqa: E402
from b2p.retrieval import Retriever  # noqa: E402
from b2p.settings import load_settings  # noqa: E402
from b2p.store import Store  # noqa: E402
from ingest.pipeline import ingest_bible  # noqa: E402

VECTOR_K = 3


class Replay(LLM):
    """A model whose answers are files: ``<folder>/answers/<hash of the messages>.txt``. A question with
    no answer is written to ``<folder>/prompts/`` and answered with nothing (the rules' choice stands)."""

    backend = "replay"
    name = "replay"
    context_window = 1_000_000

    class Options(BackendOptions):
        folder: str = Field("", description="Where prompts/ and answers/ are.")

    asked = answered = 0

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @classmethod
    def from_settings(cls, settings):  # noqa: ANN001, ANN206
        return cls(Path(settings.backend_options("replay").folder))

    def count_tokens(self, messages) -> int:  # noqa: ANN001
        return sum(len(m["content"]) // 4 for m in messages)

    def complete(self, messages, options, on_text=None) -> Completion:  # noqa: ANN001
        key = hashlib.sha256(json.dumps(messages, ensure_ascii=False, sort_keys=True).encode()).hexdigest()[:24]
        Replay.asked += 1
        answer = self.folder / "answers" / f"{key}.txt"
        if answer.exists():
            Replay.answered += 1
            return Completion(text=answer.read_text(encoding="utf-8"))
        (self.folder / "prompts").mkdir(parents=True, exist_ok=True)
        (self.folder / "prompts" / f"{key}.txt").write_text("\n\n".join(m["content"] for m in messages), encoding="utf-8")
        return Completion(text="", finish_reason="length")  # not cached: asked again once answered


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


METHODS = ("b2p", "keyword", "vector")
# How a beat refers to a required entry it does not name (labels' ``how:``); 'named' when it names it.
MISS_CLASSES = ("named", "relation", "part", "event", "title", "description", "pronoun", "scene", "other")
# What makes a wrong pick tempting (labels' ``forbidden_why:``); 'extra' for a pick merely not labelled.
FALSE_CLASSES = ("common-phrase", "demonym", "title", "relation", "topic", "other", "extra")


class Breakdown:
    """Misses and false hits of every method, by class."""

    def __init__(self) -> None:
        self.misses = {c: dict.fromkeys(METHODS, 0) | {"total": 0} for c in MISS_CLASSES}
        self.false = {c: dict.fromkeys(METHODS, 0) for c in FALSE_CLASSES}

    def add(self, method: str, pred: set[str], item: dict, named: set[str]) -> None:
        req, acc, forb = (set(item.get(k) or []) for k in ("required", "acceptable", "forbidden"))
        how, why = item.get("how") or {}, item.get("forbidden_why") or {}
        for name in req:
            c = how.get(name) or ("named" if name in named else "other")
            c = c if c in MISS_CLASSES else "other"
            if method == "b2p":
                self.misses[c]["total"] += 1
            if name not in pred:
                self.misses[c][method] += 1
        for name in pred - req - acc:
            c = (why.get(name) or "other") if name in forb else "extra"
            self.false[c if c in FALSE_CLASSES else "other"][method] += 1

    def figures(self) -> dict:
        return {"misses": {c: v for c, v in self.misses.items() if v["total"]},
                "false_hits": {c: v for c, v in self.false.items() if any(v.values())}}


def evaluate(store_dir: Path, show_errors: bool = False, bibles: Path = ROOT / "story_bibles", answers: Path | None = None) -> dict:
    settings = load_settings(None, store=store_dir)
    if answers is not None:  # the model's choice, replayed from files (see the module docstring)
        settings = load_settings(None, store=store_dir, resolver="model", llm="replay", cache_dir=store_dir.parent / "cache",
                                 folder=str(answers.resolve()))
    total = {m: Score() for m in METHODS}
    per_set: dict[str, dict[str, Score]] = {}
    breakdown = Breakdown()
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
            scores = per_set.setdefault(bible_dir.name, {m: Score() for m in METHODS})
            for item in yaml.safe_load(labels.read_text())["beats"]:
                i = item["index"]
                req, acc, forb = (set(item.get(k) or []) for k in ("required", "acceptable", "forbidden"))
                beat = beats[i - 1]
                lore = ledger.beats[i - 1].lore
                named = keyword_baseline(retriever, beat)
                preds = {"b2p": {p.name for p in lore} - always, "keyword": named, "vector": vector_baseline(retriever, beat)}
                for m in METHODS:
                    for s in (total[m], scores[m]):
                        s.add(preds[m], req, acc, forb)
                    breakdown.add(m, preds[m], item, named)
                beats_total += 1
                pred = preds["b2p"]
                wrong = (req - pred) | (pred - req - acc)
                if wrong and show_errors:
                    how = item.get("how") or {}
                    errors.append({
                        "sheet": f"{bible_dir.name}/{sheet.name}", "beat": i, "text": beat,
                        "missed": sorted(f"{n} ({how.get(n, 'named' if n in named else 'other')})" for n in req - pred),
                        "extra": sorted(pred - req - acc),
                        "forbidden": sorted(pred & forb),
                        "picks": [f"{p.name}:{p.reason}:{p.score:.2f}:{p.match}" for p in lore if p.name not in always],
                    })
    result = {
        "beats": beats_total,
        "sheets": len(sheets),
        "bibles": len(per_set),
        "seconds": round(time.perf_counter() - started, 2),
        **{m: s.figures() for m, s in total.items()},
        "f1_over_keyword": round(total["b2p"].figures()["f1"] - total["keyword"].figures()["f1"], 4),
        "sets": {name: {m: s.figures() for m, s in scores.items()} for name, scores in per_set.items()},
        "by_class": breakdown.figures(),
    }
    if answers is not None:
        result["resolver"] = {"asked": Replay.asked, "answered": Replay.answered}
    if show_errors:
        result["errors"] = errors
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bibles", type=Path, default=ROOT / "story_bibles", help="folder of bibles with labelled sheets (default story_bibles)")
    ap.add_argument("--store", type=Path, help="store folder to (re)use; default: a temporary one")
    ap.add_argument("--errors", action="store_true", help="list every beat where b2p missed or added an entry")
    ap.add_argument("--answers", type=Path, help="run b2p with resolver = 'model', replaying answers from DIR/answers (see above)")
    args = ap.parse_args()
    if args.errors and "heldout" in args.bibles.resolve().parts:
        ap.error("held-out sets are the judge: their per-beat errors are never printed (aggregate figures only)")
    if args.store:
        print(json.dumps(evaluate(args.store, args.errors, args.bibles, args.answers), indent=2))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps(evaluate(Path(tmp) / ".b2p", args.errors, args.bibles, args.answers), indent=2))


if __name__ == "__main__":
    main()
