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

from b2p.lexicon import NAME_FILLERS, NOT_REFERENCES, NUMBER_WORDS, THING_KINDS
from b2p.models import LoreEntry

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'"})
# What may follow a key and still be the same word: plural, possessive, plural possessive.
_SUFFIXES = ("'s", "'", "es'", "s'", "es", "s", "")
# "the base of the crater wall" describes; "the wall of Brinehold" names (a proper name follows), and
# so does a date: "the holdup of seventy-three" is the one that year.
_OF_AFTER = re.compile(r"\s+of\s+(?:(?:the|a|an|its|his|her|their)\s+)?(?!(?:%s)\b)[a-z]" % "|".join(sorted(NUMBER_WORDS)))


_WORDS = re.compile(r"[A-Za-z][A-Za-z'-]*")
_SENTENCE_OPENS = re.compile(r"(?:^|[.!?:;]\s+|[\"“'‘(]\s*)$")  # where a sentence or a quotation begins
# A capitalised word (not opening a sentence) right before: the match is the tail of a longer name.
_LOOK_BACK = 80  # characters before a match these look at (the whole beat before it would cost n² on a long beat)
_CAPITALISED_BEFORE = re.compile(r"(?<![.!?:;]\s)(?<!^)\b[A-Z][\w'’-]*['’]?\s+$")


def _ordinary_words(entries: list[LoreEntry]) -> set[str]:
    """Words the bible's own prose writes in lower case: ordinary words, whatever names they also make."""
    out: set[str] = set()
    for e in entries:
        out.update(w for w in _WORDS.findall(e.text) if w.islower())
    return out


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
    # Other entries' full names written inside this one's ("Sir Orrin" in "the Death of Sir Orrin"):
    # (entry ids, start, end). The event is about him: he is named too.
    inner: tuple[tuple[tuple[str, ...], int, int], ...] = ()


class _Key(NamedTuple):  # a tuple: an index of 50k keys pickles and loads fast
    key: str
    ids: tuple[str, ...]
    descriptive: bool  # all lower-case: "the base", "the doc"
    partial: bool
    derived: bool = False  # "Company" from the alias "the Company"
    common: bool = False  # a capitalised name made of words the bible's prose uses in lower case ("Weeping Woman")


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
            said = set(e.keys())
            for raw in [*e.keys(), *prose_aliases(e.text)]:
                k = _norm_key(raw)
                if not k:
                    continue
                sensitive = e.case_sensitive or raw not in said  # a name from the prose keeps its capitals
                add(sensitive, k, e.id)
                if sensitive and k[0].islower():  # "the Archivist" also opens a sentence
                    add(True, k[0].upper() + k[1:], e.id)
                words = k.split(" ", 1)
                if len(words) == 2 and words[0].lower() == "the" and words[1][:1].isupper():
                    add(True, words[1], e.id)  # "the Company" → "Company rules"
                    derived.add((True, words[1]))
        ordinary = _ordinary_words(entries)
        common = {_fold(k) for e in entries for k in map(_norm_key, e.keys())
                  if k and not e.case_sensitive and k != k.lower() and all(w.lower() in ordinary for w in _WORDS.findall(k))}
        common -= {k for e in entries for k in map(_norm_key, e.keys()) if k == k.lower()}  # a lower-case alias says it may be written so
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
                                           (s, k) in derived and len(ids) == 1 and (False, _fold(k)) not in keys,
                                           not s and k in common))
            if len(auto):
                auto.make_automaton()
                self._automata[sensitive] = auto

    def find(self, text: str, ordinary: list[Mention] | None = None) -> list[Mention]:
        """Non-overlapping mentions in text order, longest match winning overlaps. ``ordinary``, if
        given, receives the names used as ordinary words ("no weeping woman"), so that retrieval can
        keep them out of the similarity search too."""
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
                # The first letter may be capitalised by a sentence start; elsewhere a capital says it is a name
                # ("Marta accuses Hedda of hiding …" is Hedda, not a description).
                said = text[start + 1 : end] if start == 0 or _SENTENCE_OPENS.search(text, max(0, start - _LOOK_BACK), start) else text[start:end]
                if (key.descriptive or key.partial) and said == said.lower() and _OF_AFTER.match(text, end):
                    continue  # "the base of the crater wall": a description, not the outpost
                if key.common and text[start:end] == text[start:end].lower() and not folded[max(0, start - 4) : start] == "the ":
                    if ordinary is not None:
                        ordinary.append(Mention(start, end, text[start:end], key.ids))
                    continue  # "no weeping woman": the words, not the pass named Weeping Woman ("the lunar surface" is still the place)
                if not key.partial and _in_compound(text, start, end):
                    if ordinary is not None:
                        ordinary.append(Mention(start, end, text[start:end], key.ids))
                    continue  # "they ran pell-mell": a word of a lower-case compound, not Pell
                if key.derived and _CAPITALISED_BEFORE.search(text, max(0, start - _LOOK_BACK), start):
                    continue  # "the Ladies' Aid Association": part of a larger name, not "the Association"
                candidates.append((start, end, key))
        # Longest first (names before partial descriptions); identical spans merge; overlaps lose.
        candidates.sort(key=lambda c: (c[2].partial, -(c[1] - c[0]), c[0]))
        kept: dict[tuple[int, int], list[_Key]] = {}
        starts: list[int] = []  # the kept spans, which never overlap, in order: a bisection finds a clash
        ends: list[int] = []
        inside: dict[int, list[tuple[tuple[str, ...], int, int]]] = {}  # kept span start → full names within it
        for s, e, key in candidates:
            if (s, e) in kept:
                kept[(s, e)].append(key)
                continue
            k = bisect_left(starts, s)
            if (k > 0 and ends[k - 1] > s) or (k < len(starts) and starts[k] < e):
                host = k - 1 if k > 0 and ends[k - 1] > s else k
                if starts[host] <= s and e <= ends[host] and _full_name(key, text[s:e]):
                    inside.setdefault(starts[host], []).append((key.ids, s, e))
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
            inner = tuple((i, a, b) for i, a, b in sorted(inside.get(s, []), key=lambda x: x[1]) if not set(i) & set(ids))
            out.append(Mention(s, e, text[s:e], ids, partial=all(k.partial for k in ks), inner=inner))
        return out

    # -- plain data, for the lore index (JSON: no pickle) ----------------------------------------

    def to_data(self) -> dict:
        """The keys and which automaton holds each, as JSON-able lists; ``from_data`` rebuilds the automata."""
        return {
            "keys": [[list(v) if isinstance(v, tuple) else v for v in k] for k in self._keys],
            "automata": {str(int(sensitive)): [slot for _, slot in auto.items()] for sensitive, auto in self._automata.items()},
        }

    @classmethod
    def from_data(cls, data: dict) -> NameMatcher:
        import ahocorasick

        self = cls.__new__(cls)
        self._keys = [_Key(row[0], tuple(row[1]), *row[2:]) for row in data["keys"]]  # (key, ids, flags…)
        self._automata = {}
        for sensitive, slots in data["automata"].items():
            auto = ahocorasick.Automaton(ahocorasick.STORE_INTS)
            for slot in slots:
                auto.add_word(self._keys[slot].key, slot)
            auto.make_automaton()
            self._automata[sensitive == "1"] = auto
        return self


# What the lore says people call an entry: 'he is simply "the Chief"', 'refer to it as "the Code"'.
_CALLED = re.compile(r"(?:\b(?:call|calls|called)\s+(?:him|her|it|them)\s+|\bknown\s+as\s+|\bsimply\s+|"
                     r"\brefers?\s+to\s+(?:him|her|it|them)\s+as\s+)[\"“]([^\"”]{1,40}?)[,.]?[\"”]")


def prose_aliases(text: str) -> list[str]:
    """Names an entry's own lore says it goes by, in quotes after "called", "known as", "simply" or
    "refer to it as": a reader takes them as aliases. Only capitalised ones ("the Chief", not
    "that night"): a lower-case phrase is a manner of speaking, not a name."""
    return [m.group(1).strip() for m in _CALLED.finditer(text)
            if any(c.isupper() for c in m.group(1)) and len(m.group(1).split()) <= 5]


def _unique_name_words(entries: list[LoreEntry]) -> dict[str, str]:
    """Name words of places/items/factions that belong to exactly one entry: word → entry id."""
    owners: dict[str, set[str]] = {}
    for e in entries:
        for key in e.keys():
            for w in re.findall(r"[A-Za-z][A-Za-z'-]+", key):
                owners.setdefault(w.lower(), set()).add(e.id)
    out = {}
    for e in entries:
        if e.kind not in THING_KINDS or e.case_sensitive:
            continue
        # The head noun of its name, and of each alias of two words or more: "Varro Crater" → "the
        # crater" (not "the varro"); the alias "the Marra Queen" → "the Queen".
        for key in (e.name, *e.aliases):
            words = re.findall(r"[A-Za-z][A-Za-z'-]+", key)
            words = words[1:] if words and words[0].lower() == "the" else words
            if len(words) < 2:
                continue
            low = words[-1].lower()
            if len(low) >= 3 and low not in NAME_FILLERS and low not in NOT_REFERENCES and owners.get(low) == {e.id}:
                out[low] = e.id
    return out


def _in_compound(text: str, start: int, end: int) -> bool:
    """The span is written in lower case and joined by a hyphen to a word ("pell-mell", "hob-nailed"):
    part of a compound word, not a name (a name in a compound keeps its capital: "Vane-Tempest")."""
    said = text[start:end]
    if said != said.lower():
        return False
    before = start >= 2 and text[start - 1] == "-" and text[start - 2].isalpha()
    after = end + 1 < len(text) and text[end] == "-" and text[end + 1].isalpha()
    return before or after


def _full_name(key: _Key, said: str) -> bool:
    """A key that names its entry by itself wherever it stands: two words or more, written with capitals
    as a name, not a description, a derived title or words the bible's prose uses in lower case
    ("Sir Orrin", "Mara Voss"; not "Voss", "the crater" or "Company")."""
    return (not (key.partial or key.derived or key.common) and len(key.ids) == 1
            and len(_WORDS.findall(said)) >= 2 and said[:1].isupper())


def _word_end(hay: str, end: int) -> int | None:
    """Where the word that starts with a key ends (after an allowed suffix), or None mid-word."""
    for suffix in _SUFFIXES:
        stop = end + len(suffix)
        if hay[end:stop].lower() == suffix and (stop >= len(hay) or not hay[stop].isalnum()):
            return stop
    return None
