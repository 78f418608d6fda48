"""Lore that unfolds by chapter: which entries, sections and aliases are true at chapter N.

An entry says when it is true for the story (chapter numbers are 1-based positions in the book's
order, ``b2p.book``):

- front matter ``from: 5``: the entry does not exist before chapter 5; ``until: 9``: it stops
  being true after chapter 9 (a character dies, a city falls);
- front matter ``aliases_from: {12: [the lost heir]}``: aliases that match only from chapter 12 on;
- a Markdown heading line ``## From chapter 12`` in its body: the text under it, up to the next
  heading of the same or higher level, reaches prompts only from chapter 12 on (a gated section
  inside another unlocks when both have).

Ingest keeps the front matter in ``LoreEntry.gating`` (``{"from", "until", "aliases_from"}``) and
what each version of the text measures in ``LoreEntry.chapter_sizes``; chunks never straddle a
gate (``runs``), and a gated chunk's text says its chapter (``chunk_prefix``). The lore index keeps
the ``gating`` table (``gating_table``: the gated entries, and the chunk rows that unlock later).

``at_chapter(index, n)`` is the one filter point: a ``ChapterView`` of the lore index as the story
stands at chapter ``n``, which retrieval reads exactly as it reads the index — entries, matcher,
scene nouns, relations (read again from the visible text, so a relation stated only in gated text
is gated too), similarity over the visible chunks only, the budget with each entry's visible size.
What it holds back is listed in ``held_back``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from b2p.models import HeldBack, LoreEntry

_HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
GATE = re.compile(r"^from\s+chapter\s+(\d+)$", re.IGNORECASE)
LOOKS_LIKE_GATE = re.compile(r"^from\s+chapter\b", re.IGNORECASE)  # "From chapter twelve": a gate with no number
_PREFIX = "(from chapter {n}) "
_PREFIX_RE = re.compile(r"\(from chapter (\d+)\) ")


# -- reading an entry's body ----------------------------------------------------------------------


@dataclass(frozen=True)
class Heading:
    """A heading line of an entry's body: its 1-based line, level (number of #), title and gate."""

    line: int
    level: int
    title: str
    gate: int | None  # the N of "From chapter N", else None


def headings(text: str) -> list[Heading]:
    """The body's Markdown headings, in order (not those inside fenced code blocks)."""
    out: list[Heading] = []
    fence: str | None = None
    for n, line in enumerate(text.split("\n"), start=1):
        f = _FENCE.match(line)
        if f:
            if fence is None:
                fence = f.group(1)[0] * 3
            elif f.group(1).startswith(fence):
                fence = None
            continue
        if fence is not None:
            continue
        m = _HEADING.match(line)
        if m:
            title = (m.group(2) or "").strip()
            g = GATE.match(title)
            out.append(Heading(n, len(m.group(1)), title, int(g.group(1)) if g else None))
    return out


def _line_gates(text: str) -> list[tuple[str, int, bool]]:
    """Every line of the body with the chapter it unlocks at (0: always) and whether it is a gate heading."""
    by_line = {h.line: h for h in headings(text)}
    open_: list[tuple[int, int]] = []  # (level, gate) of the headings whose sections are open
    out = []
    for n, line in enumerate(text.split("\n"), start=1):
        h = by_line.get(n)
        if h is not None:
            open_ = [(lv, g) for lv, g in open_ if lv < h.level]  # the same or a higher level closes a section
            open_.append((h.level, h.gate or 0))
        out.append((line, max((g for _, g in open_), default=0), h is not None and h.gate is not None))
    return out


def gates(text: str) -> list[int]:
    """The chapters at which some section of the body unlocks, in order (none for an ungated body)."""
    return sorted({h.gate for h in headings(text) if h.gate is not None})


def _tidy(lines: Iterable[str]) -> str:
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def text_at(text: str, chapter: int) -> str:
    """The body as it reads at ``chapter``: sections gated later cut out, gate headings themselves dropped.
    An ungated body is returned unchanged."""
    if not gates(text):
        return text
    return _tidy(line for line, gate, is_gate in _line_gates(text) if gate <= chapter and not is_gate)


@dataclass(frozen=True)
class Run:
    """A stretch of the body that unlocks at one chapter (0: always): what a chunk may not straddle."""

    gate: int
    text: str


def runs(text: str) -> list[Run]:
    """The body cut where its gate changes, gate headings dropped; one run for an ungated body."""
    if not gates(text):
        return [Run(0, text)]
    out: list[tuple[int, list[str]]] = []
    for line, gate, is_gate in _line_gates(text):
        if is_gate:
            out.append((gate, []))
            continue
        if not out or out[-1][0] != gate:
            out.append((gate, []))
        out[-1][1].append(line)
    return [Run(g, t) for g, lines in out if (t := _tidy(lines))]


def variant_starts(text: str) -> list[int]:
    """The chapters from which the body reads differently: 1, then each gate after it."""
    return sorted({1, *(g for g in gates(text) if g > 1)})


# -- chunks ----------------------------------------------------------------------------------------


def chunk_prefix(gate: int) -> str:
    """What a chunk of a gated run carries after its header, so the index knows when it unlocks."""
    return _PREFIX.format(n=gate) if gate > 1 else ""


def chunk_chapter(doc: str, header: str) -> int:
    """The chapter from which a stored chunk (``header`` + text) may be retrieved (0: always)."""
    if not doc.startswith(header):
        return 0
    m = _PREFIX_RE.match(doc, len(header))
    return int(m.group(1)) if m else 0


# -- an entry's front matter --------------------------------------------------------------------------


def first(g: Mapping[str, Any] | None) -> int | None:
    return (g or {}).get("from")


def last(g: Mapping[str, Any] | None) -> int | None:
    return (g or {}).get("until")


def later_aliases(g: Mapping[str, Any] | None) -> list[tuple[int, str]]:
    """(chapter, alias) for every alias ``aliases_from`` adds, in chapter order."""
    pairs = [(int(k), a) for k, als in ((g or {}).get("aliases_from") or {}).items() for a in als]
    return sorted(pairs, key=lambda p: p[0])


def exists_at(g: Mapping[str, Any] | None, chapter: int) -> bool:
    """Is the entry true for the story at ``chapter`` (its ``from``/``until``)?"""
    lo, hi = first(g), last(g)
    return (lo is None or chapter >= lo) and (hi is None or chapter <= hi)


def is_gated(e: LoreEntry) -> bool:
    return bool(e.gating) or bool(gates(e.text))


def gating_table(entries: Iterable[LoreEntry], texts: Mapping[str, str], chunk_entry: Sequence[str], chunk_from: Sequence[int]) -> dict[str, Any]:
    """The lore index's ``gating`` table, plain data: the ids of gated entries, and [row, chapter] for
    every chunk row (in the order of the index's vectors) that unlocks after chapter 1."""
    gated = [e.id for e in entries if e.gating or gates(texts.get(e.id, e.text))]
    return {"entries": sorted(gated), "chunks": [[r, c] for r, c in enumerate(chunk_from) if c > 1]}


# -- the view at a chapter ------------------------------------------------------------------------------


def _size_at(e: LoreEntry, chapter: int) -> tuple[int, str, int] | None:
    """(tokens, lead, lead tokens) of the entry's text at ``chapter``, as ingest measured it."""
    best = None
    for start, tokens, lead, lead_tokens in e.chapter_sizes or ():
        if start <= chapter:
            best = (int(tokens), str(lead), int(lead_tokens))
    return best


def entry_at(e: LoreEntry, text: str, chapter: int) -> tuple[LoreEntry, str, list[HeldBack]]:
    """The entry as it stands at ``chapter`` (its text there, the aliases open by then, its size),
    with what of it is held back."""
    from b2p.nouns import entry_pronouns

    held: list[HeldBack] = []
    update: dict[str, Any] = {}
    later = later_aliases(e.gating)
    if later:
        opened = [a for c, a in later if c <= chapter and a not in e.aliases]
        update["aliases"] = [*e.aliases, *opened]
        held += [HeldBack(name=e.name, id=e.id, what="alias", detail=a, until=c) for c, a in later if c > chapter]
    now = text_at(text, chapter)
    if now != text:
        size = _size_at(e, chapter)
        if size is not None:
            update["tokens"], update["lead"], update["lead_tokens"] = size
        lines = _line_gates(text)
        for h in headings(text):
            if h.gate is not None and h.gate > chapter and lines[h.line - 1][1] == h.gate:
                body = _tidy(line for line, gate, is_gate in lines[h.line :] if gate == h.gate and not is_gate)
                held.append(HeldBack(name=e.name, id=e.id, what="section", detail=_words(body, 12), until=h.gate))
        update["pronouns"] = entry_pronouns(e.model_copy(update={"text": now}))
    update["text"] = now
    return e.model_copy(update=update), now, held


def _words(text: str, n: int) -> str:
    w = text.split()
    return " ".join(w[:n]) + (" …" if len(w) > n else "")


class ChapterView:
    """The lore index as the story stands at one chapter. Retrieval reads it as it reads the index:
    ``entries``, ``always``, ``case_words``, ``matcher``, ``describers``, ``relations``, ``parts``,
    ``descriptions``, ``texts()``, ``nearest()``, ``bible_meta``; ``held_back`` lists what it keeps out, and why."""

    def __init__(self, base: Any, chapter: int) -> None:
        from b2p.matcher import NameMatcher
        from b2p.nouns import Describers, is_person
        from b2p.relations import Relations

        self.base = base
        self.chapter = chapter
        self.bible: str = base.bible
        self.state: str = base.state
        self.embed_model: str = base.embed_model
        self.bible_meta = base.bible_meta
        table = _table(base)
        gated = set(table.get("entries") or ())
        full = base.texts()
        entries: dict[str, LoreEntry] = {}
        texts: dict[str, str] = {}
        held: list[HeldBack] = []
        for i in base.entries:
            e = base.entries[i]
            text = full.get(i, "")
            if i not in gated:
                entries[i], texts[i] = e.model_copy(update={"text": text}), text
                continue
            if not exists_at(e.gating, chapter):
                lo, hi = first(e.gating), last(e.gating)
                gone = hi is not None and chapter > hi
                held.append(HeldBack(name=e.name, id=e.id, what="entry", until=None if gone else lo, after=hi if gone else None))
                continue
            entries[i], texts[i], more = entry_at(e, text, chapter)
            held += more
        self.held_back = held
        self.entries = entries
        self._texts = texts
        # Nothing gated differs at this chapter (every entry shown, with its whole text and every alias):
        # the index's own tables hold; else the ones read from the lore are read again from the view.
        self._same = len(entries) == len(base.entries) and all(
            texts[i] == full.get(i, "") and entries[i].aliases == base.entries[i].aliases for i in entries)
        self.always: list[str] = [i for i in base.always if i in entries]
        self.case_words = _case_words(entries.values())
        self.matcher = NameMatcher(entries.values())
        self.describers = Describers(entries.values())
        self.relations = _relations(base.relations, entries, {i for i in gated if i in entries and texts[i] != full.get(i)},
                                    texts, self.matcher.find, is_person, Relations)
        locked = {int(r) for r, c in table.get("chunks") or () if int(c) > chapter}
        chunk_entry = base.chunk_entry
        self._rows = [r for r, i in enumerate(chunk_entry) if i in entries and r not in locked]
        self.chunk_entry = [chunk_entry[r] for r in self._rows]
        self.chunk_snippet = [base.chunk_snippet[r] for r in self._rows]

    def texts(self) -> dict[str, str]:
        """Every visible entry's text as it reads at this chapter, by id."""
        return self._texts

    @cached_property
    def parts(self) -> Any:
        """What each thing is and has, as the lore reads at this chapter (the index's own when nothing differs)."""
        from b2p.parts import Parts

        return self.base.parts if self._same else Parts.build(self.entries.values(), self._texts, self._find, _is_person)

    @cached_property
    def descriptions(self) -> Any:
        """The words and links that describe each person, as the lore reads at this chapter."""
        from b2p.describe import Descriptions

        return self.base.descriptions if self._same else Descriptions.build(self.entries.values(), self._texts, self._find, _is_person)

    @cached_property
    def _find(self) -> Any:
        from functools import lru_cache

        return lru_cache(maxsize=None)(self.matcher.find)

    def listing(self) -> Any:
        return self.base.listing()

    def nearest(self, vectors: Any, n: int) -> list[list[tuple[str, float, str]]]:
        """``LoreIndex.nearest`` over the chunks visible at this chapter only."""
        import numpy as np

        from b2p.index import scan

        return scan(self, lambda: self.base.vectors[np.asarray(self._rows)], vectors, n, self.chunk_entry, self.chunk_snippet)


def _is_person(e: LoreEntry) -> bool:
    from b2p.nouns import is_person

    return is_person(e)


def _relations(base: Any, entries: dict[str, LoreEntry], changed: set[str], texts: dict[str, str], find: Any, is_person: Any,
               relations: Any) -> Any:
    """The relation table at a chapter: the whole bible's, without what hidden entries state or are
    party to, and with the entries whose text reads differently now read again (their gated sections
    may state relations, which are not true yet). Reading only those keeps a view cheap."""
    links: dict[str, list[tuple[str, str, str]]] = {}
    for owner, ts in base.links.items():
        kept = [t for t in ts if t[1] in entries and t[2] in entries and t[2] not in changed] if owner in entries else []
        if kept:
            links[owner] = kept
    if changed:
        readers = [e if i in changed else e.model_copy(update={"text": ""}) for i, e in entries.items()]
        for owner, ts in relations.build(readers, {i: texts[i] for i in changed}, find, is_person).links.items():
            have = links.setdefault(owner, [])
            have += [t for t in ts if all((x[0], x[1]) != (t[0], t[1]) for x in have)]
    # What a reader works out follows from the facts true at this chapter: worked out again from them.
    from b2p.relations import derive

    people = {i: e for i, e in entries.items() if is_person(e)}
    return relations(links, derive(links, people, texts))


def _table(index: Any) -> dict[str, Any]:
    table = getattr(index, "gating", None)
    return table() if callable(table) else table or {}


def _case_words(entries: Iterable[LoreEntry]) -> dict[str, set[str]]:
    """Capitalised words of case-sensitive names ("Wren", "Mercy") → their entries (as the index keeps them)."""
    out: dict[str, set[str]] = {}
    for e in entries:
        if e.case_sensitive:
            for k in e.keys():
                for w in re.findall(r"[A-Za-z][A-Za-z'-]*", k):
                    if w[0].isupper():
                        out.setdefault(w.lower(), set()).add(e.id)
    return out


def at_chapter(index: Any, chapter: int | None) -> Any:
    """The index as the story stands at ``chapter``: the index itself when nothing in the bible is
    gated (or no chapter is given), else a ``ChapterView``."""
    if chapter is None or not (_table(index).get("entries")):
        return index
    return ChapterView(index, chapter)


def held_back(index: Any) -> list[HeldBack]:
    """What a view holds back (nothing for the index itself)."""
    return list(getattr(index, "held_back", []))


def held_mentions(full: Any, view: Any, beat: str) -> list[HeldBack]:
    """Names and aliases a beat uses that the view does not know yet (or any more): "Lisle" before
    Corwin Lisle's first chapter, "the lost heir" before its alias opens. Read with the whole bible's
    matcher, so the ledger can say why they found nothing."""
    if full is view:
        return []
    out: list[HeldBack] = []
    seen: set[tuple[str, str]] = set()
    by_id = {(h.id, h.what, h.detail): h for h in view.held_back}
    for m in full.matcher.find(beat):
        for i in m.entry_ids:
            h = by_id.get((i, "entry", None))
            if h is not None and (i, m.text) not in seen and not view.matcher.find(m.text):
                seen.add((i, m.text))
                out.append(h.model_copy(update={"detail": m.text}))
    low = beat.lower()
    for h in view.held_back:
        if h.what == "alias" and h.detail and re.search(rf"(?<!\w){re.escape(h.detail.lower())}(?!\w)", low) and (h.id, h.detail) not in seen:
            seen.add((h.id, h.detail))
            out.append(h)
    return out
