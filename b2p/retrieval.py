"""Where each beat's lore gets chosen: always ∪ named ∪ scene ∪ similar, within a token budget.

Priority is always > named > scene > similar. Whatever does not fit the budget is reported as
dropped ('budget'); similar candidates under the threshold are reported with ``explain``.
Nothing is dropped silently.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from b2p.errors import StoreError
from b2p.matcher import Mention, NameMatcher
from b2p.models import BeatLore, BibleMeta, Dropped, Ledger, LoreEntry, LorePick
from b2p.scene import resolve
from b2p.settings import Settings
from b2p.store import Store

SIMILAR_POOL = 8  # chunks fetched per similar slot: enough to aggregate several hits per entry


class Retriever:
    """The lore index of one bible: its entries, one name matcher, and the store for similarity."""

    def __init__(self, settings: Settings, store: Store, bible: str) -> None:
        self.settings = settings
        self.store = store
        self.col = store.collection(bible)
        store.check_space(self.col)
        self.bible = self.col.name
        meta = store.b2p_meta(self.col)
        self.embed_model: str = meta.get("embed_model") or settings.embed_model
        scan = store.scan(self.col)
        self.entries: dict[str, LoreEntry] = {i: s.entry for i, s in scan.entries.items() if s.entry.enabled}
        if not scan.entries:
            raise StoreError(f"bible '{self.bible}' has no entries; run 'b2p ingest' on its folder")
        self.matcher = NameMatcher(self.entries.values())
        self._embedder: Any = None

    @property
    def meta(self) -> BibleMeta:
        return self.store.bible_meta(self.col)

    def pick_texts(self, beat: BeatLore) -> dict[str, str]:
        """The exact lore text each pick of a beat puts into the prompt, by entry id."""
        return self.store.entry_texts(self.col, [p.id for p in beat.lore])

    def _embed(self, texts: list[str]) -> Any:
        if self._embedder is None:
            from b2p.embeddings import query_embedder

            self._embedder = query_embedder(self.embed_model, self.settings.cache_dir)
        return self._embedder.encode(texts)

    # -- the ledger ----------------------------------------------------------------------------

    def ledger(self, beats: Sequence[str], explain: bool = False) -> Ledger:
        """The lore of every beat of one sheet (scene carry runs across the sheet in order)."""
        mentions = [self.matcher.find(b) for b in beats]
        queries = [_without(b, ms) for b, ms in zip(beats, mentions, strict=True)]
        want_similar = self.settings.top_k > 0 and any(q.strip() for q in queries)
        vectors = self._embed(queries) if want_similar else [None] * len(beats)
        history: list[list[str]] = []  # per earlier beat, the people/items on stage in order
        out = []
        for index, (beat, ms, vec) in enumerate(zip(beats, mentions, vectors, strict=True), start=1):
            on_stage = list(reversed(history[-self.settings.scene_depth :])) if self.settings.scene_depth else []
            lore = self._beat(index, beat, ms, vec, on_stage, explain)
            history.append([p.id for p in lore.lore if p.reason in ("named", "scene") and p.kind.lower() != "place"])
            out.append(lore)
        return Ledger(bible=self.bible, beats=out)

    def _beat(self, index: int, beat: str, mentions: list[Mention], vector: Any, on_stage: list[list[str]], explain: bool) -> BeatLore:
        stage = {i for cast in on_stage for i in cast}
        picks: list[LorePick] = []
        taken: set[str] = set()

        def add(e: LoreEntry, reason: str, score: float, match: str | None) -> None:
            if e.id not in taken:
                taken.add(e.id)
                picks.append(LorePick(name=e.name, id=e.id, kind=e.kind, reason=reason, score=round(score, 4), match=match, tokens=e.tokens))  # type: ignore[arg-type]

        for e in self.entries.values():
            if e.always:
                add(e, "always", 1.0, None)
        named: list[tuple[str, int]] = []
        for m in mentions:
            ids = list(m.entry_ids)
            if len(ids) > 1:  # a shared alias: whoever is on stage, else every claimant
                ids = [i for i in ids if i in stage] or ids
            for i in ids:
                named.append((i, m.start))
                add(self.entries[i], "named", 1.0 if len(ids) == 1 else 0.9, m.text)
        for c in resolve(beat, named, [(m.start, m.end) for m in mentions], on_stage, self.entries):
            add(self.entries[c.entry_id], "scene", max(0.5, 0.95 - 0.1 * c.distance), c.cue)
        below: list[Dropped] = []
        if vector is not None:
            similar, below = self._similar(vector, taken)
            for e, score, match in similar:
                add(e, "similar", score, match)
        return self._fit(index, beat, picks, below if explain else [])

    def _similar(self, vector: Any, taken: set[str]) -> tuple[list[tuple[LoreEntry, float, str]], list[Dropped]]:
        k = self.settings.top_k
        hits = self.store.query_chunks(self.col, vector, n=k * SIMILAR_POOL + len(taken) * 2)
        best: dict[str, tuple[float, str]] = {}
        for entry_id, h16, sim, doc in hits:
            e = self.entries.get(entry_id)
            if e is None or e.hash[:16] != h16 or entry_id in taken or e.always:
                continue  # stale chunk from an interrupted ingest, a disabled entry, or already picked
            if entry_id not in best or sim > best[entry_id][0]:
                best[entry_id] = (sim, doc)
        ranked = sorted(best.items(), key=lambda kv: -kv[1][0])
        keep, below = [], []
        for entry_id, (sim, doc) in ranked:
            e = self.entries[entry_id]
            if sim >= self.settings.threshold and len(keep) < k:
                keep.append((e, sim, _snippet(doc, e)))
            else:
                below.append(Dropped(name=e.name, reason="threshold" if sim < self.settings.threshold else "top_k", score=round(sim, 4)))
        return keep, below

    def _fit(self, index: int, beat: str, picks: list[LorePick], below: list[Dropped]) -> BeatLore:
        """Fill the budget in priority order; everything that does not fit is reported."""
        room = self.settings.budget
        kept, dropped = [], []
        for p in picks:
            if p.tokens <= room:
                kept.append(p)
                room -= p.tokens
            else:
                dropped.append(Dropped(name=p.name, reason="budget", score=p.score))
        return BeatLore(index=index, text=beat, lore=kept, dropped=dropped + below)


def _without(text: str, mentions: Sequence[Mention]) -> str:
    """The beat with its names cut out: what is left describes lore the names did not catch."""
    out, last = [], 0
    for m in mentions:
        out.append(text[last : m.start])
        last = m.end
    out.append(text[last:])
    return " ".join("".join(out).split())


def _snippet(doc: str, e: LoreEntry) -> str:
    body = doc.split(": ", 1)[1] if doc.startswith(e.name) and ": " in doc else doc
    return body[:60].rsplit(" ", 1)[0] + "…" if len(body) > 60 else body

