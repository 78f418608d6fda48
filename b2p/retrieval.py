"""Where each beat's lore gets chosen: always ∪ named ∪ scene ∪ similar, within a token budget.

Priority is writer > always > named > scene > model > similar. Whatever does not fit the budget is reported as
dropped ('budget'); similar candidates under the threshold are reported with ``explain``.
Nothing is dropped silently.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

from b2p.errors import BibleError, StoreError
from b2p.gating import held_back, held_mentions
from b2p.index import open_index
from b2p.lexicon import CLAUSE_BREAKS, EVENT_KINDS, FUNCTION_WORDS, PREPOSITIONS, PRONOUNS, singular
from b2p.matcher import Mention
from b2p.mentions import bystanders, part_of_a_phrase, position, subjects
from b2p.models import BeatLore, BibleMeta, Dropped, Ledger, LoreEntry, LorePick
from b2p.describe import describe
from b2p.parts import resolve_parts
from b2p.phrases import covered_by
from b2p.scene import is_person, resolve
from b2p.settings import Settings
from b2p.store import Store

SIMILAR_POOL = 8  # chunks fetched per similar slot: enough to aggregate several hits per entry
MAX_CLAUSES = 4  # clauses of a beat embedded to settle its doubtful 'similar' candidates
CLAUSE_MARGIN = 1.5  # a clause is shorter than its beat, so it must win by this times the beat's margin
SHEET_MEMORY = 200  # earlier beats the scene looks back through for an item ("the artifact"): a long sheet stays linear


class Retriever:
    """The lore index of one bible: its entries, one name matcher, and the store for similarity."""

    def __init__(self, settings: Settings, store: Store, bible: str, chapter: int | None = None) -> None:
        self.settings = settings
        self.index = open_index(settings, store, bible)
        # book (issue 15): everything below reads the bible as it stands at ``chapter`` (b2p.gating).
        self.chapter, self.whole = chapter, self.index
        self.index = self.index.at_chapter(chapter)
        self.bible = self.index.bible
        self.embed_model = self.index.embed_model
        self.entries = self.index.entries
        if not self.entries:
            raise StoreError(f"bible '{self.bible}' has no entries; run 'b2p ingest' on its folder")
        self.matcher = self.index.matcher
        self.case_words = self.index.case_words
        self._embedder: Any = None
        self._events: dict[str, list[str]] | None = None
        self._resolver: Any = None  # resolver = 'model': b2p.resolver.ModelResolver, made on first use
        self.ask_model = True  # False (a dry run): resolver = 'model' reads the answers it has, asks nothing

    @property
    def meta(self) -> BibleMeta:
        return self.index.bible_meta

    def pick_texts(self, beat: BeatLore) -> dict[str, str]:
        """The exact lore text each pick of a beat puts into the prompt, by entry id.

        A pick whose ``tokens`` are below its entry's full size was cut to the entry's lead by the budget.
        """
        texts = self.index.texts()
        return {p.id: texts[p.id] if p.tokens >= self.entries[p.id].tokens else self.entries[p.id].lead for p in beat.lore}

    def _embed(self, texts: list[str]) -> Any:
        if self._embedder is None:
            from b2p.embeddings import query_embedder

            self._embedder = query_embedder(self.embed_model, self.settings.cache_dir)
        return self._embedder.encode(texts)

    # -- the ledger ----------------------------------------------------------------------------

    def ledger(self, beats: Sequence[str], explain: bool = False, carried: Sequence[Sequence[str]] = ()) -> Ledger:
        """The lore of every beat of one sheet (scene carry runs across the sheet in order). ``carried``:
        the cast of the beats before the sheet's first (the end of the previous chapter), oldest first."""
        common: list[list[Mention]] = [[] for _ in beats]
        mentions = [self.matcher.find(b, c) for b, c in zip(beats, common, strict=True)]
        ordinary = [self._ordinary_words(b, ms, c) for b, ms, c in zip(beats, mentions, common, strict=True)]
        queries = [_without(b, ms, words) for b, ms, (words, _) in zip(beats, mentions, ordinary, strict=True)]
        # With --explain and top-k 0 the candidates are still ranked, to say what was left out.
        want_similar = (self.settings.top_k > 0 or explain) and any(q.strip() for q in queries)
        vectors = self._embed(queries) if want_similar else [None] * len(beats)
        history: list[list[str]] = [list(c) for c in carried]  # per earlier beat, the people/items on stage in order
        shown = 0  # beats before each one the model is shown (resolver = 'model')
        opening: list[str] = []  # and, in a book, the cast the previous chapter ended with
        if self.settings.resolver == "model" and self._resolver is None:
            from b2p.resolver import EARLIER, ModelResolver

            self._resolver, shown = ModelResolver.from_settings(self.settings, ask=self.ask_model), EARLIER
            # A book's chapter opens on the cast the last one ended with: the model is told who they are.
            cast = [self.entries[i].name for i in dict.fromkeys(carried[-1] if carried else ()) if i in self.entries]
            opening = [f"(the previous chapter ended with {', '.join(cast)} on stage)"] if cast else []
        last: tuple[str, list[LorePick]] | None = None  # the previous beat and what it took in
        out = []
        rows = zip(beats, mentions, vectors, ordinary, queries, strict=True)
        try:
            for index, (beat, ms, vec, (_, not_named), query) in enumerate(rows, start=1):
                on_stage = history[: -SHEET_MEMORY - 1 : -1]  # the latest beats, most recent first
                writer = self._overrides(index, getattr(beat, "overrides", ()))
                earlier = [str(b) for b in beats[max(0, index - 1 - shown) : index - 1]] if shown else []
                if shown and index <= shown:
                    earlier = opening + earlier
                lore, considered = self._beat(index, beat, ms, vec, on_stage, explain, not_named, query, writer, last, earlier)
                last = (str(beat), considered)
                # On stage is everyone the beat involves, whether or not the budget let them into its prompt.
                # In the order the beat mentions them: a pronoun in the next beat means its subject first.
                history.append([p.id for p in sorted((p for p in considered if p.reason != "always"), key=lambda p: position(beat, p))])
                out.append(lore)
        finally:
            if self._resolver is not None:
                self._resolver.close()
                self._resolver = None
        if explain:  # book (issue 15): names and aliases the beat uses that are not true yet at this chapter
            for lore in out:
                lore.dropped += [Dropped(name=h.name, reason=h.reason, score=0.0) for h in held_mentions(self.whole, self.index, lore.text)]
        return Ledger(bible=self.bible, chapter=self.chapter, held_back=held_back(self.index), beats=out)

    def _beat(
        self,
        index: int,
        beat: str,
        mentions: list[Mention],
        vector: Any,
        on_stage: list[list[str]],
        explain: bool,
        not_named: set[str],
        query: str = "",
        writer: list[tuple[str, str, str]] = (),  # type: ignore[assignment]
        last: tuple[str, list[LorePick]] | None = None,
        earlier: Sequence[str] = (),
    ) -> tuple[BeatLore, list[LorePick]]:
        """The beat's ledger line, and every pick considered before the budget. ``writer``: the
        beat's overrides, (sign, entry id, as written): forced in first, or kept out whatever finds them."""
        stage = {i for cast in on_stage[: self.settings.scene_depth] for i in cast}
        picks: list[LorePick] = []
        kept_out = {i for sign, i, _ in writer if sign == "-"}
        taken: set[str] = set(kept_out)

        def add(e: LoreEntry, reason: str, score: float, match: str | None) -> None:
            if e.id not in taken:
                taken.add(e.id)
                picks.append(LorePick(name=e.name, id=e.id, kind=e.kind, reason=reason, score=round(score, 4), match=match, tokens=e.tokens))  # type: ignore[arg-type]

        for sign, i, said in writer:
            if sign == "+":
                add(self.entries[i], "writer", 1.0, f"+{said}")
        for i in self.index.always:
            add(self.entries[i], "always", 1.0, None)
        named: list[tuple[str, int]] = []
        mentions = [m for m in mentions if not (m.partial and self._qualified_elsewhere(m, beat)) and not part_of_a_phrase(m, beat)]
        memo: dict[str, Any] = {}  # what _disambiguate reads of the whole beat, read once
        for m in mentions:
            ids = self._disambiguate(m, mentions, beat, stage, memo) if len(m.entry_ids) > 1 else list(m.entry_ids)
            for i in ids:
                named.append((i, m.start))
                score = 0.8 if m.partial else 1.0 if len(ids) == 1 else 0.9
                add(self.entries[i], "named", score, m.text)
            for inner, start, end in m.inner:  # "the night Sir Orrin died", "Sir Orrin's will": Sir Orrin is named too
                if not (any(self.entries[i].kind in EVENT_KINDS for i in ids) or beat[start:end].endswith(("'s", "’s", "'", "’"))):
                    continue  # "the Mara Voss Library", "Mara Voss Jr.": named after her, not about her
                for i in inner:
                    named.append((i, start))
                    add(self.entries[i], "named", 1.0, beat[start:end])
        masked = [(m.start, m.end) for m in mentions]
        spans = [(m.start, m.end, m.entry_ids) for m in mentions]
        people_stage = {i: d for d, cast in reversed(list(enumerate(on_stage[: self.settings.scene_depth], start=1))) for i in cast}
        blocked: list[tuple[int, int]] = []
        described = describe(beat, spans, taken, people_stage, self.entries, self.index.descriptions,
                             lambda noun: self.index.describers.find(noun, people=True), self.index.describers.roles,
                             lambda i: self.entries[i].keys(), blocked)
        masked += blocked
        for i, start, end, cue in described:
            add(self.entries[i], "scene", 0.9, cue)
            named.append((i, start))
            masked.append((start, end))
        possessives = [(i, m.start, m.end) for m in mentions if m.text.endswith(("'s", "’s", "'", "’"))
                       for i in ([m.entry_ids[0]] if len(m.entry_ids) == 1 else [])]
        refused: list[tuple[str, list[str]]] = []
        for c in resolve(beat, named, masked, on_stage, self.entries, self.settings.scene_depth, self.index.describers,  # type: ignore[arg-type]
                         self.index.relations, possessives, refused, self.index.descriptions.ages, self.index.descriptions.tagged,
                         bystanders(*last) if last else frozenset(), self.index.parts.nouns, subjects(*last) if last else frozenset()):
            add(self.entries[c.entry_id], "scene", max(0.5, 0.95 - 0.1 * c.distance), c.cue)
        for i, cue, d in resolve_parts(beat, spans, taken, on_stage, self.entries, self.index.parts, self.index.describers.roles, is_person,
                                         self.index.describers.name_words, self.settings.scene_depth, refused):
            add(self.entries[i], "scene", max(0.5, 0.95 - 0.1 * d), cue)
        below: list[Dropped] = [Dropped(name=self.entries[i].name, reason=f"ambiguous: {phrase}", score=0.0)
                                for phrase, ids in refused for i in ids if i not in taken]
        if vector is not None:
            similar, unsure = self._similar(vector, taken | not_named, query, self._events_of(taken))
            below += unsure
            for e, score, match in similar:
                add(e, "similar", score, match)
        note = None
        if self._resolver is not None:
            picks, below, note = self._ask_model(beat, earlier, picks, below, vector, on_stage, kept_out)
        out = [Dropped(name=self.entries[i].name, reason="writer", score=1.0) for i in sorted(kept_out)]
        lore = self._fit(index, beat, picks, out + (below if explain else []))
        lore.resolver = note
        return lore, picks

    def _ask_model(self, beat: str, earlier: Sequence[str], picks: list[LorePick], below: list[Dropped], vector: Any,
                   on_stage: list[list[str]], kept_out: set[str]) -> tuple[list[LorePick], list[Dropped], str | None]:
        """resolver = 'model' (b2p/resolver.py): the model chooses everything but the writer's overrides and
        the always-entries (a name the beat uses in another sense, "from the Old Testament", is its call
        too); a rule's pick it agrees with keeps the rule's reason and cue, one it leaves out is reported
        ('the model left it out'); an answer that cannot be used leaves the rules' choice."""
        from b2p.resolver import CANDIDATES, CATALOGUE_MAX, heading, what

        live = [i for i in self.entries if not self.entries[i].always and i not in kept_out]
        if len(live) > CATALOGUE_MAX:
            near = [i for i, _, _ in self.index.nearest([vector], CANDIDATES * 3)[0]] if vector is not None else []
            stage = [i for cast in on_stage[: self.settings.scene_depth] for i in cast]
            wanted = dict.fromkeys([p.id for p in picks] + stage + near)
            live = [i for i in wanted if i in self.entries and not self.entries[i].always and i not in kept_out][: CANDIDATES + len(picks)]
        if not live:
            return picks, below, None  # nothing to choose from: no question to ask
        texts = self.index.texts()
        rows = [(e.name, heading(e.kind, e.aliases), what(texts.get(i) or e.lead)) for i in live for e in [self.entries[i]]]
        owners: dict[str, set[str]] = {}
        for i in live:
            for k in self.entries[i].keys():
                owners.setdefault(k.lower(), set()).add(i)
        names = {k: next(iter(ids)) for k, ids in owners.items() if len(ids) == 1}  # a shared alias names no one alone
        certain = [p for p in picks if p.reason in ("writer", "always")]  # the writer's word stands; the model judges the rest
        answer = self._resolver.ask(str(beat), earlier, rows, names, named=sum(1 for p in picks if p.reason == "named" and p.score >= 1.0))
        if answer.ids is None:
            return picks, below, answer.note
        chosen = dict(answer.ids)
        # A rule's pick the model named too stands, quoted or not: two readers agree on it. A name the beat
        # writes in full that the model leaves out is its call ("a psalm from the Old Testament"); when it
        # leaves out two or more, it did not read closely, and the names stand.
        vetoed = [p for p in picks if p.reason == "named" and p.score >= 1.0 and p.id not in chosen and p.id not in answer.unquoted]
        agreed = [p for p in picks if p not in certain and (p.id in chosen or p.id in answer.unquoted or (len(vetoed) > 1 and p in vetoed))]
        below += [Dropped(name=p.name, reason="the model left it out", score=p.score) for p in picks if p not in certain and p not in agreed]
        have = {p.id for p in certain + agreed}
        added = []
        for i, cue in answer.ids:
            if i not in have:
                e = self.entries[i]
                added.append(LorePick(name=e.name, id=e.id, kind=e.kind, reason="model", score=1.0, match=cue or None, tokens=e.tokens))
                have.add(i)
        # In the budget's order: the writer's, always, named, scene, the model's own, then similar.
        kept = certain + [p for p in agreed if p.reason != "similar"] + added + [p for p in agreed if p.reason == "similar"]
        below[:] = [d for d in below if d.name not in {self.entries[i].name for i in have}]
        return kept, below, None

    def _overrides(self, index: int, overrides: Sequence[tuple[str, str]]) -> list[tuple[str, str, str]]:
        """A beat's ``+Name`` / ``-Name`` as (sign, entry id, as written); a name no entry has is an error."""
        out = []
        for sign, said in overrides:
            ids = [i for m in self.matcher.find(said) if (m.start, m.end) == (0, len(said)) for i in m.entry_ids]
            ids = ids or ([said] if said in self.entries else [])
            if not ids:
                raise BibleError(f"beat {index}: '{sign}{said}' names no entry of bible '{self.bible}' (write its name or an alias)")
            out += [(sign, i, said) for i in ids]
        return out

    def _disambiguate(self, m: Mention, mentions: list[Mention], beat: str, stage: set[str], memo: dict[str, Any]) -> list[str]:
        """A shared alias ("the Chief"): whoever is on stage; else whoever the rest of the beat
        agrees with (pronouns after the mention, other entries it names that their lore links to);
        else every claimant, so nothing is silently lost."""
        ids = list(m.entry_ids)
        on_stage = [i for i in ids if i in stage]
        if on_stage:
            return on_stage
        if not memo:  # once per beat, not per shared alias: a long beat has thousands of mentions
            memo["named"] = Counter(i for o in mentions for i in o.entry_ids if i in self.entries)
            memo["last"] = {p: max((x.start() for x in re.finditer(rf"\b(?:{'|'.join(words)})\b", beat, re.IGNORECASE)), default=-1)
                            for p, words in PRONOUNS.items()}
            memo["links"], memo["lore"] = {}, {}
        others = memo["named"] - Counter(i for i in m.entry_ids if i in self.entries)  # what the beat's other mentions name
        links: dict[tuple[str, str], bool] = memo["links"]
        texts = self.index.texts()  # claimants' lore: read only when an alias is shared
        scores = {}
        for i in ids:
            e = self.entries[i]
            for o in others:
                if (i, o) not in links:
                    if i not in memo["lore"]:
                        memo["lore"][i] = texts.get(i, e.lead).lower()
                    links[i, o] = any(k.lower() in memo["lore"][i] for k in self.entries[o].keys())
            score = sum(n for o, n in others.items() if links[i, o])
            if e.pronouns and memo["last"].get(e.pronouns, -1) >= m.end:  # one of its pronouns comes after the mention
                score += 1
            scores[i] = score
        best = max(scores.values())
        winners = [i for i, v in scores.items() if v == best]
        return winners if len(winners) == 1 else ids

    def _qualified_elsewhere(self, m: Mention, beat: str) -> bool:
        """A description qualified by a name its entry's lore never mentions describes something
        else: "the war with Berdan's Sharpshooters" is not the bible's range war."""
        q = _QUALIFIER.match(beat, m.end)
        if q is None:
            return False
        texts = self.index.texts()
        words = [w for w in re.findall(r"[A-Z][\w-]+", q.group(1)) if w.lower() not in ("the", "of")]
        return not any(re.search(rf"\b{re.escape(w)}", texts.get(i, "")) for i in m.entry_ids for w in words)

    def _ordinary_words(self, beat: str, mentions: list[Mention], common: Sequence[Mention] = ()) -> tuple[set[str], set[str]]:
        """Lower-case uses of case-sensitive names ("a wren sings", "begs for mercy") and of names made
        of ordinary words ("no weeping woman", in ``common``): ordinary words.

        They are cut from the similarity query and their entries kept out of 'similar', so a name
        that is also a word cannot sneak in by meaning after the matcher rightly ignored it."""
        inside = covered_by([(m.start, m.end) for m in mentions])
        words: set[str] = {w for m in common for w in m.text.split()}
        entries: set[str] = {i for m in common for i in m.entry_ids}
        for m in re.finditer(r"[A-Za-z][A-Za-z'-]*", beat):
            if inside(m.start()):
                continue
            low = m.group().lower()
            owners = self.case_words.get(low) or self.case_words.get(singular(low))  # "sandhill cranes"
            if owners and m.group() != m.group().capitalize() or owners and m.start() == 0:
                words.add(m.group())
                entries |= owners
        return words, entries

    def _events_of(self, present: set[str]) -> dict[str, str]:
        """Events whose name names someone the beat involves ("The Death of Frank Denholm" when Frank
        is named or referred to): event id → that participant's id."""
        if self._events is None:
            self._events = {}
            for e in self.entries.values():
                if e.kind in EVENT_KINDS:  # its own name would hide the others: read it from each word on
                    words = e.name.split()
                    for k in range(1, len(words)):
                        found = {i for m in self.matcher.find(" ".join(words[k:])) if not m.partial for i in m.entry_ids} - {e.id}
                        for i in found:
                            self._events.setdefault(i, []).append(e.id)
                        if found:
                            break
        return {ev: p for p in present for ev in self._events.get(p, ())}

    def _similar(self, vector: Any, taken: set[str], query: str = "", linked: dict[str, str] | None = None) -> tuple[list[tuple[LoreEntry, float, str]], list[Dropped]]:
        """Entries the beat describes without naming: their best chunk must clear the threshold and
        stand ``margin`` above the beat's background (the median of the next candidates), so a beat
        that is merely 'about the setting' does not drag in whatever happens to be nearest.

        A long beat dilutes a short description ("dives into the flooded reading rooms beneath ..."),
        so a candidate that clears the threshold but not the margin is doubtful rather than out: the
        beat's clauses are queried on their own, and a doubtful candidate that some clause ranks
        first, clearly (``_clause_winners``), is kept too."""
        k = self.settings.top_k
        keep, below, doubtful = [], [], []
        standing = True  # every candidate ranked above stood out: one that did not sinks all below it
        for entry_id, (sim, margin, match) in self._ranked(self.index.nearest([vector], self._pool(taken))[0], taken).items():
            e = self.entries[entry_id]
            standing = standing and margin >= self.settings.margin
            # An event named after someone the beat involves needs only to be near, not to stand out:
            # "how his real father died" with the father resolved is his death, if the beat is about it.
            passes = (sim >= self.settings.threshold and standing) or (entry_id in (linked or {}) and sim >= self.settings.threshold - self.settings.margin)
            if passes and len(keep) < k:
                keep.append((e, sim, match))
                continue
            if not passes and sim >= self.settings.threshold:
                doubtful.append((e, sim, match))
            reason = "top_k" if passes else "threshold" if sim < self.settings.threshold else "margin"
            below.append(Dropped(name=e.name, reason=reason, score=round(sim, 4)))
        if doubtful and query and len(keep) < k:
            winners = self._clause_winners(query, taken)
            for e, sim, match in doubtful:
                if e.id in winners and len(keep) < k:
                    keep.append((e, sim, match))
                    below = [d for d in below if d.name != e.name]
        return keep, below

    def _ranked(self, hits: list[tuple[str, float, str]], taken: set[str]) -> dict[str, tuple[float, float, str]]:
        """Candidate entries among a query's nearest chunks, nearest first: entry id → (best chunk
        similarity, its lead over the median of the next candidates, that chunk's snippet)."""
        best: dict[str, tuple[float, str]] = {}
        for entry_id, sim, match in hits:
            if entry_id in taken or self.entries[entry_id].always:
                continue
            if entry_id not in best or sim > best[entry_id][0]:
                best[entry_id] = (sim, match)
        ranked = sorted(best.items(), key=lambda kv: -kv[1][0])
        sims = [s for _, (s, _) in ranked]
        out = {}
        for n, (entry_id, (sim, match)) in enumerate(ranked):
            rest = sims[n + 1 : n + 8]
            # The last candidate has nothing below it to stand out from: its floor is itself.
            floor = float(sorted(rest)[len(rest) // 2]) if rest else sim
            out[entry_id] = (sim, sim - floor, match)
        return out

    def _pool(self, taken: set[str]) -> int:
        """Chunks fetched per query: enough to aggregate several hits per entry after the taken ones."""
        return max(self.settings.top_k, 3) * SIMILAR_POOL + len(taken) * 2

    def _clause_winners(self, query: str, taken: set[str]) -> set[str]:
        """Entries that some clause of the beat, queried on its own, ranks first with at least the
        threshold and ``CLAUSE_MARGIN`` times the margin: a clause is short, so it needs a clearer
        win than the whole beat. One encode call and one search for all the clauses."""
        found = clauses(query)
        if not found:
            return set()
        winners = set()
        for hits in self.index.nearest(self._embed(found), self._pool(taken)):
            first = next(iter(self._ranked(hits, taken).items()), None)
            if first is None:
                continue
            entry_id, (sim, margin, _) = first
            if sim >= self.settings.threshold and margin >= CLAUSE_MARGIN * self.settings.margin:
                winners.add(entry_id)
        return winners

    def _fit(self, index: int, beat: str, picks: list[LorePick], below: list[Dropped]) -> BeatLore:
        """Fill the budget in priority order; everything that does not fit is reported.

        First every pick, in priority order, gets its lead (first chunk) if that fits; then, again in
        priority order, picks grow to the whole entry while room remains. So a long entry shrinks
        before a lower-priority one is dropped.
        """
        room = self.settings.budget
        kept, dropped = [], []
        for p in picks:
            e = self.entries[p.id]
            core = min(e.tokens, e.lead_tokens or e.tokens)
            if core <= room:
                kept.append(p.model_copy(update={"tokens": core, "shortened": core < e.tokens}))
                room -= core
            else:
                dropped.append(Dropped(name=p.name, reason="budget", score=p.score))
        for i, p in enumerate(kept):
            extra = self.entries[p.id].tokens - p.tokens
            if 0 < extra <= room:
                kept[i] = p.model_copy(update={"tokens": p.tokens + extra, "shortened": False})
                room -= extra
        return BeatLore(index=index, text=beat, lore=kept, dropped=dropped + below)

_QUALIFIER = re.compile(r"\s+(?:with|of|from|against|at|in|on)\s+(?:the\s+)?((?:[A-Z][\w'’-]*\s*)+)")


def _without(text: str, mentions: Sequence[Mention], words: set[str] = frozenset()) -> str:  # type: ignore[assignment]
    """The beat with its names (and name-words used as ordinary words) cut out: what is left
    describes lore the names did not catch."""
    out, last = [], 0
    for m in mentions:
        out.append(text[last : m.start])
        last = m.end
    out.append(text[last:])
    return " ".join(w for w in "".join(out).split() if w.strip(".,;:!?'\"") not in words)


_WORD_OR_STOP = re.compile(r"[A-Za-z0-9][A-Za-z0-9'’-]*|[,;:.!?()\[\]\"“”—–]")


def clauses(text: str, limit: int = MAX_CLAUSES) -> list[str]:
    """The beat's clauses, split at punctuation and conjunctions, with at least two content words
    each: at most ``limit`` of them (the wordiest, in beat order). None for a one-clause beat,
    whose only clause is the beat itself."""
    runs: list[list[re.Match[str]]] = [[]]
    for m in _WORD_OR_STOP.finditer(text):
        if not m.group()[0].isalnum() or m.group().lower() in CLAUSE_BREAKS:
            runs.append([])
        else:
            runs[-1].append(m)
    found: list[tuple[int, str]] = []
    for run in runs:
        while run and run[0].group().lower() in FUNCTION_WORDS:
            run = run[1:]
        while run and run[-1].group().lower() in FUNCTION_WORDS:
            run = run[:-1]
        content = sum(1 for m in run if m.group().lower() not in FUNCTION_WORDS | PREPOSITIONS)
        if content >= 2:
            found.append((content, text[run[0].start() : run[-1].end()]))
    if len(found) < 2:
        return []
    wordiest = sorted(range(len(found)), key=lambda i: -found[i][0])[:limit]
    return [found[i][1] for i in sorted(wordiest)]
