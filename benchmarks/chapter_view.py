"""What reading a bible "as it stands at chapter N" costs (issue 15), on synthetic bibles of 1k and 10k entries.

A bible with any gated lore (``from``/``until``/``aliases_from``/``## From chapter N``) is read at a
chapter through ``b2p.gating.ChapterView``: the name matcher, the scene's noun tables and the
relation table are rebuilt from the text visible then, once per ``b2p lore`` / ``b2p generate``. A
bible with no gated lore pays nothing (``at_chapter`` returns the index itself).

Figures, per size (one JSON object on stdout), 1 % of the entries gated (half ``from: 3``, half
with a ``## From chapter 3`` section):

- ``view_s``: building the view at chapter 2 (median of ``--runs``);
- ``matcher_s``: building the name matcher alone from the same entries, the part of an index build
  the view repeats, measured in the same run: ``view_over_matcher`` is the ratio;
- ``ungated_s``: ``at_chapter`` on the same bible with nothing gated (expected ~0).

No store and no embedding: the view is built over the parsed entries and random unit vectors, which
is what it reads from a lore index.

    python benchmarks/chapter_view.py --sizes 1000,10000
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import default_cache, log, use_cache  # noqa: E402
from benchmarks.synthetic import GENERATOR_VERSION, make_bible  # noqa: E402


class _Index:
    """What ``ChapterView`` reads from a lore index, as plain data."""

    def __init__(self, entries: list[Any], gated: bool) -> None:
        import numpy as np

        from b2p import gating

        self.bible, self.state, self.embed_model, self.bible_meta = "synth", "s", "m", None
        self._texts = {e.id: e.text for e in entries}
        self.entries = {e.id: e.model_copy(update={"text": ""}) for e in entries}
        self.always = [e.id for e in entries if e.always]
        self.chunk_entry = [e.id for e in entries]
        self.chunk_snippet = [e.text[:60] for e in entries]
        rng = np.random.default_rng(0)
        v = rng.standard_normal((len(entries), 384)).astype(np.float32)
        self.vectors = v / np.linalg.norm(v, axis=1, keepdims=True)
        self.gating = gating.gating_table(entries, self._texts, self.chunk_entry, [0] * len(entries)) if gated else {}
        from b2p.matcher import NameMatcher
        from b2p.nouns import is_person
        from b2p.relations import Relations

        self.relations = Relations.build(entries, self._texts, NameMatcher(entries).find, is_person)  # the index holds it, built at ingest

    def texts(self) -> dict[str, str]:
        return self._texts


def entries_of(cache: Path, n: int) -> list[Any]:
    from ingest.bible import read_bible

    root = cache / f"synth-{n}-s7-g{GENERATOR_VERSION}" / f"synth{n}"
    if not (root.parent / "generated.ok").is_file():
        log("chapter_view", f"generating a {n}-entry bible in {root}")
        make_bible(root, n, 7)
        (root.parent / "generated.ok").write_text("ok\n")
    return read_bible(root).entries


def gate(entries: list[Any]) -> list[Any]:
    """Every 100th entry gated: alternately 'from: 3' and a '## From chapter 3' section."""
    out = []
    for k, e in enumerate(entries):
        if k % 200 == 0:
            e = e.model_copy(update={"gating": {"from": 3}})
        elif k % 200 == 100:
            e = e.model_copy(update={"text": e.text + "\n\n## From chapter 3\n\nA secret the story keeps until then."})
        out.append(e)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cache", type=Path, default=default_cache())
    args = parser.parse_args()
    cache = use_cache(args.cache)
    from b2p import gating
    from b2p.matcher import NameMatcher

    out: dict[str, Any] = {}
    for n in (int(s) for s in args.sizes.split(",")):
        entries = gate(entries_of(cache, n))
        gated, plain = _Index(entries, True), _Index(entries, False)
        views, matchers, ungated = [], [], []
        for _ in range(args.runs):
            t = time.perf_counter()
            NameMatcher(entries)
            matchers.append(time.perf_counter() - t)
            t = time.perf_counter()
            view = gating.at_chapter(gated, 2)
            views.append(time.perf_counter() - t)
            t = time.perf_counter()
            assert gating.at_chapter(plain, 2) is plain
            ungated.append(time.perf_counter() - t)
        assert len(view.entries) == n - len(range(0, n, 200))
        v, m = statistics.median(views), statistics.median(matchers)
        out[str(n)] = {"view_s": round(v, 3), "matcher_s": round(m, 3), "view_over_matcher": round(v / m, 2),
                       "ungated_s": round(statistics.median(ungated), 6), "held_back": len(view.held_back)}
        log("chapter_view", f"{n} entries: {out[str(n)]}")
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
