"""The checks of ``b2p lint`` that need the ingested bible: what retrieval actually pulls into each
beat of every sheet (unused and over-broad entries), the entries' vectors (near-duplicates), and the
bible's relation reader (relatives the lore names who have no entry)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

from b2p.models import LoreEntry
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
_COMMON_RUN = 20  # a five-word run in more entries than this is the bible's boilerplate


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
        # A beat whose override names no entry is an error lint has reported; its other overrides still count.
        ledgers = [retriever.ledger([_resolvable(b, retriever) for _, b in s.beats]) for s in sheets if s.beats]
        index = retriever.index
        if ledgers:
            findings += _usage(entries, [b for ledger in ledgers for b in ledger.beats])
        else:
            skipped.append("unused and over-broad entries: no beat sheet (put sheets in beats/ or name them)")
        findings += _near_duplicates(entries, index)
        findings += _unknown_relations(entries, index)
    return findings, skipped


def _resolvable(beat: Any, retriever: Any) -> Any:
    """The beat with only the overrides that name an entry (the others would stop the ledger)."""
    from b2p.beats import Beat
    from ingest.lint_names import override_resolves

    overrides = getattr(beat, "overrides", ())
    keep = tuple(o for o in overrides if override_resolves(o[1], retriever.matcher, retriever.entries))
    return beat if keep == overrides else Beat(str(beat), keep)


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
        chosen = [p for p in got if p.reason == "writer" or (p.reason == "named" and p.match and p.match != p.match.lower())]
        if len(chosen) * 2 >= len(got):
            continue  # the beats name it, or the writer forces it in: a main character, not a broad alias
        why = Counter(f'"{p.match.lower()}"' if p.reason == "named" and p.match else p.reason for p in got if p not in chosen).most_common(2)
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
    by_id = {x.entry.id: x for x in entries}
    ids = [i for i in dict.fromkeys(index.chunk_entry) if i in by_id]
    if len(ids) < 2:
        return []
    pairs = {**_close_vectors(ids, index), **{k: (None, v) for k, v in _shared_text(ids, by_id).items()}}
    out = []
    for (a, b) in sorted(pairs):
        sim, overlap = pairs[(a, b)][0], pairs[(a, b)][1]
        first, second = sorted((by_id[ids[a]], by_id[ids[b]]), key=lambda x: x.shown)
        how = (f"{overlap:.0%} of the shorter one's text is the same" if overlap is not None
               else f"their lore is {sim:.2f} similar, far closer than any other entry comes to either")
        out.append(Finding(file=second.shown, line=second.name_line, severity="warning", check="near-duplicate",
                           message=f"{second.entry.name} looks like a second entry for {first.entry.name} ({first.shown}): {how}; "
                                   "merge them, or make each say what sets it apart"))
    return out


def _close_vectors(ids: list[str], index: Any) -> dict[tuple[int, int], tuple[float, None]]:
    """Pairs whose mean chunk vectors are one entry's: (a, b) → (cosine, None). A block of rows at a
    time, so 10k entries never hold a 10k × 10k matrix."""
    import numpy as np

    vectors = np.asarray(index.vectors, dtype=np.float32)
    row = {i: n for n, i in enumerate(ids)}
    owner = np.fromiter((row.get(i, -1) for i in index.chunk_entry), dtype=np.int64, count=len(index.chunk_entry))
    keep = owner >= 0
    means = np.zeros((len(ids), vectors.shape[1]), dtype=np.float32)
    np.add.at(means, owner[keep], vectors[keep])
    means /= np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-12)
    close, lead = DUPLICATE_STANDOUT
    found: list[tuple[int, int, float]] = []
    runner_up = np.full(len(ids), -1.0, dtype=np.float32)  # each entry's second-nearest similarity
    for start in range(0, len(ids), 1024):
        block = means[start : start + 1024] @ means.T
        block[np.arange(len(block)), np.arange(start, start + len(block))] = -1.0
        if len(ids) > 2:
            runner_up[start : start + len(block)] = np.partition(block, -2, axis=1)[:, -2]
        for r, c in zip(*np.nonzero(block >= min(close, DUPLICATE_COSINE)), strict=True):
            if start + r < c:
                found.append((start + int(r), int(c), float(block[r, c])))
    return {(a, b): (sim, None) for a, b, sim in found
            if sim >= DUPLICATE_COSINE or sim - max(runner_up[a], runner_up[b]) >= lead}


def _shared_text(ids: list[str], by_id: dict[str, LocatedEntry]) -> dict[tuple[int, int], float]:
    """Pairs sharing at least ``DUPLICATE_OVERLAP`` of the shorter one's five-word runs: (a, b) → share.
    Runs found in many entries (a bible's boilerplate) are not counted: they say nothing about a pair."""
    shingles = [_shingles(by_id[i].entry.text) for i in ids]
    postings: dict[tuple[str, ...], list[int]] = {}
    for n, runs in enumerate(shingles):
        for s in runs:
            postings.setdefault(s, []).append(n)
    shared: Counter[tuple[int, int]] = Counter()
    for holders in postings.values():
        if 1 < len(holders) <= _COMMON_RUN:
            shared.update((a, b) for k, a in enumerate(holders) for b in holders[k + 1 :])
    out = {}
    for (a, b), n in shared.items():
        share = n / max(1, min(len(shingles[a]), len(shingles[b])))
        if share >= DUPLICATE_OVERLAP:
            out[(a, b)] = share
    return out


# -- relations -----------------------------------------------------------------------------------


def _unknown_relations(entries: list[LocatedEntry], index: Any) -> list[Finding]:
    """Relatives the lore names who have no entry ("His sister Liesl Vey keeps house…" with no Liesl
    Vey): a beat's "his sister" finds nobody.

    The lore index's relation table links entries only, so the bible's own relation reader
    (``Relations.build``, the one ingest runs) reads the people's lore again, this time with a
    stand-in person for every capitalised name in it that no entry has; a relation it then finds to
    a stand-in points at nobody."""
    from b2p.matcher import Mention
    from b2p.nouns import is_person
    from b2p.relations import Relations

    texts = index.texts()
    people = [index.entries[i] for i in index.entries if is_person(index.entries[i])]
    strangers = _strangers(people, texts, index.matcher)
    if not strangers:
        return []
    stand_ins = {f"?{name}": LoreEntry.model_construct(id=f"?{name}", name=name, kind="character", aliases=[], tags=[], text="",
                                                       pronouns=None, always=False, case_sensitive=True, enabled=True)
                 for name in strangers}
    pattern = re.compile("|".join(rf"(?<![\w'’-]){re.escape(n)}(?![\w-])" for n in sorted(strangers, key=len, reverse=True)))

    def find(sentence: str) -> list[Any]:
        known = index.matcher.find(sentence)
        extra = [Mention(m.start(), m.end(), m.group(), (f"?{m.group()}",)) for m in pattern.finditer(sentence)
                 if all(m.end() + 1 < k.start or m.start() > k.end + 1 for k in known)]  # not part of a known name
        return sorted([*known, *extra], key=lambda m: m.start)

    table = Relations.build([*people, *stand_ins.values()], texts, find, lambda e: e.id in stand_ins or is_person(e))
    by_id = {x.entry.id: x for x in entries}
    out, seen = [], set()
    for owner, links in table.links.items():
        for relation, other, source in links:
            x = by_id.get(source)
            if owner in stand_ins or other not in stand_ins or x is None or (source, other) in seen:
                continue
            seen.add((source, other))
            name = stand_ins[other].name
            at = texts.get(source, "").find(name)
            line = x.body_line + texts.get(source, "").count("\n", 0, max(at, 0))
            who = index.entries[owner]
            out.append(Finding(file=x.shown, line=line, severity="warning", check="unknown-relation",
                               message=f'{who.name}\'s {relation.replace("-", " ")} "{name}" has no entry: a beat saying '
                                       f'"{_said(relation, who.pronouns)}" finds nobody; add an entry for them, or give one this name as an alias'))
    return out


def _said(relation: str, pronouns: str | None) -> str:
    """How a beat would say the relation: "his brother or sister", from the lexicon's kinship nouns."""
    from b2p.lexicon import KINSHIP, POSSESSIVE_PRONOUNS

    nouns = [n for n, (r, gender) in KINSHIP.items() if r == relation and gender][:2] or [relation]
    whose = next((w for w, p in POSSESSIVE_PRONOUNS.items() if p == pronouns), "their")
    return f"{whose} {' or '.join(nouns)}"


def _strangers(people: list[LoreEntry], texts: dict[str, str], matcher: Any) -> set[str]:
    """Capitalised names in people's lore that no entry is called. Not a sentence's opening word, and
    not a word written against a known name, which is part of it: "Sheriff Ephraim Lockhart",
    "Adelaide Denholm" (her maiden name)."""
    from ingest.lint_names import _base, _opens_sentence, _runs

    found: set[str] = set()
    for e in people:
        text = texts.get(e.id) or ""
        spans = [(m.start, m.end) for m in matcher.find(text)]
        starts, ends = {s for s, _ in spans}, {e for _, e in spans}
        for run in _runs(text, spans):
            if run[-1].end() + 1 in starts or run[0].start() - 1 in ends or run[-1].end() + 2 in starts and text[run[-1].end()] == ".":
                continue
            if _opens_sentence(text, run[0].start()):
                run = run[1:]  # "His sister …", "When …": a sentence's first word says nothing
            if run:
                found.add(_base(text[run[0].start() : run[-1].end()]))
    return found
