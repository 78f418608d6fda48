"""Which entries a beat names: one Aho-Corasick automaton over every name and alias in the bible.

Rules: whole words only ("Quill" never inside "Quillon"); case-insensitive unless the entry is
``case_sensitive``; possessives ("Fenn's", "the Tidewardens'") and regular plurals ("Tidewardens")
count; where matches overlap, the longest wins ("Captain Brisk" beats "the Captain").

Two derived kinds of key widen recall without guessing:
- an alias "the Company" (a capitalised title) also matches "Company" alone, with its capital;
- a place/item/faction's head noun that no other entry shares ("Crater" of "Varro Crater")
  matches as a definite description, "the crater" — a *partial* mention, scored lower.
A lower-case alias used as "the base of the …" is a description, not the name, and does not match.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from b2p.models import LoreEntry

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'"})
# What may follow a key and still be the same word: plural, possessive, plural possessive.
_SUFFIXES = ("'s", "'", "es'", "s'", "es", "s", "")
_PARTIAL_KINDS = {"place", "item", "faction", "location", "object", "organization", "organisation", "ship", "vehicle"}
_STOP = {"the", "of", "and", "a", "an", "in", "on", "at", "to", "for", "old", "new", "great", "high", "low", "first", "last"}
# "the base of the crater wall" describes; "the wall of Brinehold" names (a proper name follows).
_OF_AFTER = re.compile(r"\s+of\s+(?:(?:the|a|an|its|his|her|their)\s+)?[a-z]")


def _fold(text: str) -> str:
    """Lower-case without changing the length, so offsets map back to the original text."""
    text = text.translate(_APOSTROPHES)
    low = text.lower()
    if len(low) == len(text):  # the usual case; "İ" lower-cases to two characters
        return low
    return "".join(c if len(low := c.lower()) != 1 else low for c in text)


def _norm_key(key: str) -> str:
    return " ".join(key.translate(_APOSTROPHES).split())


@dataclass(frozen=True)
class Mention:
    """A span of the beat that names one or more entries (several when an alias is shared)."""

    start: int
    end: int
    text: str
    entry_ids: tuple[str, ...]
    partial: bool = False  # a definite description ("the crater"), not a name


class _Key(NamedTuple):  # a tuple: an index of 50k keys pickles and loads fast
    key: str
    ids: tuple[str, ...]
    descriptive: bool  # all lower-case: "the base", "the doc"
    partial: bool
    derived: bool = False  # "Company" from the alias "the Company"


class NameMatcher:
    """Built once per bible; ``find`` costs one pass over the beat whatever the bible's size."""

    def __init__(self, entries: Iterable[LoreEntry]) -> None:
        import ahocorasick

        entries = list(entries)
        keys: dict[tuple[bool, str], dict[str, bool]] = {}  # (case-sensitive, key) → {entry id: partial}
        derived: set[tuple[bool, str]] = set()

        def add(sensitive: bool, key: str, entry_id: str, partial: bool = False) -> None:
            slot = keys.setdefault((sensitive, key if sensitive else _fold(key)), {})
            slot[entry_id] = slot.get(entry_id, True) and partial

        for e in entries:
            for raw in e.keys():
                k = _norm_key(raw)
                if not k:
                    continue
                add(e.case_sensitive, k, e.id)
                if e.case_sensitive and k[0].islower():  # "the Archivist" also opens a sentence
                    add(True, k[0].upper() + k[1:], e.id)
                words = k.split(" ", 1)
                if len(words) == 2 and words[0].lower() == "the" and words[1][:1].isupper():
                    add(True, words[1], e.id)  # "the Company" → "Company rules"
                    derived.add((True, words[1]))
        for word, owner in _unique_name_words(entries).items():
            if (False, _fold(f"the {word}")) not in keys:
                add(False, f"the {word}", owner, partial=True)
        # The automata store integers (indices into _keys): they pickle compactly for the lore index.
        self._keys: list[_Key] = []
        self._automata = {}
        for sensitive in (False, True):
            auto = ahocorasick.Automaton(ahocorasick.STORE_INTS)
            for (s, k), ids in keys.items():
                if s == sensitive:
                    partial = all(ids.values())
                    auto.add_word(k, len(self._keys))
                    self._keys.append(_Key(k, tuple(i for i, p in ids.items() if p == partial or not partial), k == k.lower(), partial,
                                           (s, k) in derived and len(ids) == 1 and (False, _fold(k)) not in keys))
            if len(auto):
                auto.make_automaton()
                self._automata[sensitive] = auto

    def find(self, text: str) -> list[Mention]:
        """Non-overlapping mentions in text order, longest match winning overlaps."""
        norm = text.translate(_APOSTROPHES)
        folded = _fold(text)
        candidates: list[tuple[int, int, _Key]] = []
        for sensitive, auto in self._automata.items():
            hay = norm if sensitive else folded
            for last, slot in auto.iter(hay):
                key = self._keys[slot]
                start = last - len(key.key) + 1
                end = _word_end(hay, last + 1)
                if end is None or (start > 0 and hay[start - 1].isalnum()):
                    continue
                said = text[start + 1 : end]  # the first letter may be capitalised by a sentence start
                if (key.descriptive or key.partial) and said == said.lower() and _OF_AFTER.match(text, end):
                    continue  # "the base of the crater wall": a description, not the outpost
                candidates.append((start, end, key))
        # Longest first (names before partial descriptions); identical spans merge; overlaps lose.
        candidates.sort(key=lambda c: (c[2].partial, -(c[1] - c[0]), c[0]))
        kept: dict[tuple[int, int], list[_Key]] = {}
        starts: list[int] = []  # the kept spans, which never overlap, in order: a bisection finds a clash
        ends: list[int] = []
        for s, e, key in candidates:
            if (s, e) in kept:
                kept[(s, e)].append(key)
                continue
            k = bisect_left(starts, s)
            if (k > 0 and ends[k - 1] > s) or (k < len(starts) and starts[k] < e):
                continue
            kept[(s, e)] = [key]
            starts.insert(k, s)
            ends.insert(k, e)
        spans = sorted(kept.items())
        out = []
        for n, ((s, e), ks) in enumerate(spans):
            nxt = spans[n + 1][0][0] if n + 1 < len(spans) else None
            if all(k.derived for k in ks) and nxt is not None and text[e:nxt].strip() == "":
                continue  # "Captain Brisk": a title before another entry's name belongs to that name
            ids = tuple(dict.fromkeys(i for k in ks for i in k.ids))
            out.append(Mention(s, e, text[s:e], ids, partial=all(k.partial for k in ks)))
        return out


def _unique_name_words(entries: list[LoreEntry]) -> dict[str, str]:
    """Name words of places/items/factions that belong to exactly one entry: word → entry id."""
    owners: dict[str, set[str]] = {}
    for e in entries:
        for key in e.keys():
            for w in re.findall(r"[A-Za-z][A-Za-z'-]+", key):
                owners.setdefault(w.lower(), set()).add(e.id)
    out = {}
    for e in entries:
        if e.kind.lower() not in _PARTIAL_KINDS or e.case_sensitive:
            continue
        words = re.findall(r"[A-Za-z][A-Za-z'-]+", e.name)
        if len(words) < 2:
            continue
        low = words[-1].lower()  # the head noun: "Varro Crater" → "the crater" (not "the varro")
        if len(low) >= 4 and low not in _STOP and owners.get(low) == {e.id}:
            out[low] = e.id
    return out


def _word_end(hay: str, end: int) -> int | None:
    """Where the word that starts with a key ends (after an allowed suffix), or None mid-word."""
    for suffix in _SUFFIXES:
        stop = end + len(suffix)
        if hay[end:stop].lower() == suffix and (stop >= len(hay) or not hay[stop].isalnum()):
            return stop
    return None
