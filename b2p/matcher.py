"""Which entries a beat names: one Aho-Corasick automaton over every name and alias in the bible.

Rules: whole words only ("Quill" never inside "Quillon"); case-insensitive unless the entry is
``case_sensitive``; possessives ("Fenn's", "the Tidewardens'") and regular plurals ("Tidewardens")
count; where matches overlap, the longest wins ("Captain Brisk" beats "the Captain").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from b2p.models import LoreEntry

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'"})
# What may follow a key and still be the same word: plural, possessive, plural possessive.
_SUFFIXES = ("'s", "'", "es'", "s'", "es", "s", "")


def _fold(text: str) -> str:
    """Lower-case without changing the length, so offsets map back to the original text."""
    return "".join(c if len(low := c.lower()) != 1 else low for c in text.translate(_APOSTROPHES))


def _norm_key(key: str) -> str:
    return " ".join(key.translate(_APOSTROPHES).split())


@dataclass(frozen=True)
class Mention:
    """A span of the beat that names one or more entries (several when an alias is shared)."""

    start: int
    end: int
    text: str
    entry_ids: tuple[str, ...]


class NameMatcher:
    """Built once per bible; ``find`` costs one pass over the beat whatever the bible's size."""

    def __init__(self, entries: Iterable[LoreEntry]) -> None:
        import ahocorasick

        keys: dict[tuple[bool, str], list[str]] = {}
        for e in entries:
            for key in e.keys():
                k = _norm_key(key)
                if not k:
                    continue
                slot = keys.setdefault((e.case_sensitive, k if e.case_sensitive else _fold(k)), [])
                if e.id not in slot:
                    slot.append(e.id)
        self._automata = {}
        for sensitive in (False, True):
            auto = ahocorasick.Automaton()
            for (s, k), ids in keys.items():
                if s == sensitive:
                    auto.add_word(k, (k, tuple(ids)))
            if len(auto):
                auto.make_automaton()
                self._automata[sensitive] = auto

    def find(self, text: str) -> list[Mention]:
        """Non-overlapping mentions in text order, longest match winning overlaps."""
        norm = text.translate(_APOSTROPHES)
        folded = _fold(text)
        candidates: list[tuple[int, int, tuple[str, ...]]] = []
        for sensitive, auto in self._automata.items():
            hay = norm if sensitive else folded
            for last, (key, ids) in auto.iter(hay):
                start = last - len(key) + 1
                end = _word_end(hay, last + 1)
                if end is not None and (start == 0 or not hay[start - 1].isalnum()):
                    candidates.append((start, end, ids))
        # Longest first; ties keep the earlier start. Then drop anything overlapping a kept span.
        candidates.sort(key=lambda c: (-(c[1] - c[0]), c[0]))
        kept: list[tuple[int, int, tuple[str, ...]]] = []
        for c in candidates:
            if all(c[1] <= k[0] or c[0] >= k[1] for k in kept):
                kept.append(c)
        merged: dict[tuple[int, int], tuple[str, ...]] = {}
        for s, e, ids in kept:
            merged[(s, e)] = tuple(dict.fromkeys(merged.get((s, e), ()) + ids))
        return [Mention(s, e, text[s:e], ids) for (s, e), ids in sorted(merged.items())]


def _word_end(hay: str, end: int) -> int | None:
    """Where the word that starts with a key ends (after an allowed suffix), or None mid-word."""
    for suffix in _SUFFIXES:
        stop = end + len(suffix)
        if hay[end:stop].lower() == suffix and (stop >= len(hay) or not hay[stop].isalnum()):
            return stop
    return None
