"""The checks of ``b2p lint`` that need the ingested bible: what retrieval actually pulls into each
beat of every sheet (unused and over-broad entries), the entries' vectors (near-duplicates) and the
relation table the lore index holds (relations that point at nobody)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

from b2p.settings import Settings
from ingest.lint import OVER_BROAD_MIN_BEATS, OVER_BROAD_SHARE, BeatSheet, Finding, LocatedEntry, Progress

# Near-duplicates: two entries about one thing. Measured on the sample and dev bibles (105 entries):
# distinct entries share at most 8% of their five-word runs and reach 0.81 cosine between their mean
# chunk vectors (a mother and her daughter), standing at most 0.12 above either one's next-nearest
# entry. A copy with edits shares most of its runs; a full paraphrase (tests/data/lint/flawed's Old
# Brandl) reaches only 0.80, like that mother and daughter, but stands 0.39 above the rest.
DUPLICATE_OVERLAP = 0.5  # share of the shorter entry's five-word runs found in the other
DUPLICATE_COSINE = 0.9  # vectors this close are one entry, whatever else the bible holds
DUPLICATE_STANDOUT = (0.75, 0.25)  # or at least this close, and this far above each one's next-nearest
_SHINGLE = 5


def lore_findings(root: Path, entries: list[LocatedEntry], sheets: list[BeatSheet], settings: Settings,
                  progress: Progress | None = None) -> tuple[list[Finding], list[str]]:
    """Ingest the bible when new or changed (as every command does), then run the checks that need it."""
    from b2p.retrieval import Retriever
    from b2p.store import Store
    from ingest.pipeline import ensure_bible

    if not any(x.entry.enabled for x in entries):
        return [], ["what retrieval pulls in: every entry is disabled"]
    name, _ = ensure_bible(str(root), settings, progress=progress)  # its warnings are lint's own findings
    findings: list[Finding] = []
    skipped: list[str] = []
    with Store.open(settings, bible=name) as st, st.lock(exclusive=False):
        retriever = Retriever(settings, st, name)
        ledgers = [retriever.ledger([b for _, b in s.beats]) for s in sheets if s.beats]
        index = retriever.index
        if ledgers:
            findings += _usage(entries, [b for ledger in ledgers for b in ledger.beats])
        else:
            skipped.append("unused and over-broad entries: no beat sheet (put sheets in beats/ or name them)")
        findings += _near_duplicates(entries, index)
        findings += _unknown_relations(entries, relation_table(index) or [])
    return findings, skipped


# -- usage ---------------------------------------------------------------------------------------


def _usage(entries: list[LocatedEntry], beats: list[Any]) -> list[Finding]:
    """Entries no beat pulls in, and entries pulled into nearly every beat by something other than
    their name as written (a lower-case alias, the scene, similarity): an alias or an entry too broad."""
    picks: dict[str, list[Any]] = {}
    for b in beats:
        for p in b.lore:
            if p.reason != "always":
                picks.setdefault(p.id, []).append(p)
    budget_cut = {d.name for b in beats for d in b.dropped if d.reason == "budget"}
    out = []
    total = len(beats)
    for x in entries:
        e = x.entry
        if not e.enabled or e.always:
            continue
        got = picks.get(e.id, [])
        if not got and e.name not in budget_cut:
            out.append(Finding(file=x.shown, line=x.name_line, severity="warning", check="unused-entry",
                               message=f"no beat pulls in {e.name} ({total} beats read): check its name and aliases against how the beats "
                                       "refer to it, or drop it if it is not in this book"))
            continue
        if total < OVER_BROAD_MIN_BEATS or len(got) < OVER_BROAD_SHARE * total:
            continue
        by_name = sum(1 for p in got if p.reason == "named" and p.match and p.match != p.match.lower())
        if by_name * 2 >= len(got):
            continue  # the beats name it: a main character, not a broad alias
        why = Counter(f'"{p.match.lower()}"' if p.reason == "named" and p.match else p.reason for p in got if not (
            p.reason == "named" and p.match and p.match != p.match.lower())).most_common(2)
        out.append(Finding(file=x.shown, line=x.name_line, severity="warning", check="over-broad",
                           message=f"{e.name} is pulled into {len(got)} of {total} beats, mostly by "
                                   f"{' and '.join(f'{w} ({n})' for w, n in why)}: narrow that alias or the entry, "
                                   "or mark it 'always: true' if every beat needs it"))
    return out


# -- near-duplicates -----------------------------------------------------------------------------


def _shingles(text: str) -> set[tuple[str, ...]]:
    words = re.findall(r"\w+", text.lower())
    return {tuple(words[i : i + _SHINGLE]) for i in range(len(words) - _SHINGLE + 1)}


def _near_duplicates(entries: list[LocatedEntry], index: Any) -> list[Finding]:
    """Pairs of entries about the same thing: much of the same text, or vectors that are one entry's."""
    import numpy as np

    by_id = {x.entry.id: x for x in entries}
    ids = [i for i in dict.fromkeys(index.chunk_entry) if i in by_id]
    if len(ids) < 2:
        return []
    vectors = np.asarray(index.vectors, dtype=np.float32)
    owner = np.asarray(index.chunk_entry)
    means = np.stack([vectors[owner == i].mean(axis=0) for i in ids])
    means /= np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-12)
    cos = means @ means.T
    np.fill_diagonal(cos, -1.0)
    # Each entry's second-nearest similarity: how close the rest of the bible comes to it.
    runner_up = np.sort(cos, axis=1)[:, -2] if len(ids) > 2 else np.full(len(ids), -1.0)
    shingles = {i: _shingles(by_id[i].entry.text) for i in ids}
    close, lead = DUPLICATE_STANDOUT
    out = []
    for a in range(len(ids)):
        for b in range(a + 1, len(ids)):
            sa, sb = shingles[ids[a]], shingles[ids[b]]
            overlap = len(sa & sb) / max(1, min(len(sa), len(sb)))
            sim = float(cos[a, b])
            stands_out = sim >= close and sim - max(runner_up[a], runner_up[b]) >= lead
            if overlap < DUPLICATE_OVERLAP and sim < DUPLICATE_COSINE and not stands_out:
                continue
            first, second = sorted((by_id[ids[a]], by_id[ids[b]]), key=lambda x: x.shown)
            how = (f"{overlap:.0%} of the shorter one's text is the same" if overlap >= DUPLICATE_OVERLAP
                   else f"their lore is {sim:.2f} similar, far closer than any other entry comes to either")
            out.append(Finding(file=second.shown, line=second.name_line, severity="warning", check="near-duplicate",
                               message=f"{second.entry.name} looks like a second entry for {first.entry.name} ({first.shown}): {how}; "
                                       "merge them, or make each say what sets it apart"))
    return out


# -- relations -----------------------------------------------------------------------------------


def relation_table(index: Any) -> list[Any] | None:
    """The relations the lore index extracted from the entries' prose, or None when this b2p's
    index has none."""
    table = getattr(index, "relations", None)
    return None if table is None else list(table)


def _unknown_relations(entries: list[LocatedEntry], relations: list[Any]) -> list[Finding]:
    """Relations whose other end is a name no entry has ("her cousin, Piet Vey" with no Piet Vey)."""
    return []
