"""Who a beat refers back to without naming: pronouns, "the girl", "the monk", "the pair".

A beat sheet is a scene's running outline, so "she rows out…" almost always means the most
recent woman on stage. We carry exactly the entry each reference most plausibly points to
(matching pronouns, or a role noun found in the entry's own lore), not everyone seen lately.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from b2p.models import LoreEntry

_WORD = re.compile(r"[A-Za-z']+")
_PRONOUNS = {
    "he": {"he", "him", "his", "himself"},
    "she": {"she", "her", "hers", "herself"},
    "they": {"they", "them", "their", "theirs", "themselves", "themself"},
}
_PRONOUN_OF = {w: p for p, words in _PRONOUNS.items() for w in words}
PERSON_KINDS = {"character", "person", "people", "npc", "cast"}
# Role nouns that name a person; the gendered ones also imply pronouns.
_GENDERED = {
    "she": {"girl", "woman", "lady", "mother", "sister", "daughter", "queen", "princess", "wife", "widow",
             "aunt", "niece", "grandmother", "matron", "abbess", "nun", "priestess", "heiress", "mistress", "maid", "duchess"},
    "he": {"boy", "man", "gentleman", "father", "brother", "son", "king", "prince", "husband", "widower",
            "uncle", "nephew", "grandfather", "monk", "abbot", "priest", "lord", "duke", "lad", "fellow"},
}
_ROLE_NOUNS = set().union(*_GENDERED.values()) | {
    "captain", "chief", "commander", "doctor", "scientist", "miner", "pilot", "soldier", "guard", "child",
    "kid", "stranger", "thief", "boss", "sergeant", "officer", "engineer", "mechanic", "merchant",
    "smuggler", "archivist", "librarian", "keeper", "warden", "scholar", "apprentice", "novice",
    "elder", "teacher", "student", "youth", "veteran", "rookie", "partner", "leader", "healer",
    "physician", "professor", "director", "operator", "technician", "agent", "spy", "hermit",
    "sailor", "ferryman", "boatman", "mage", "wizard", "witch", "knight", "squire", "scribe", "clerk",
    "foreman", "overseer", "administrator", "ranger", "hunter", "orphan", "courier", "messenger",
}
_GROUP = {"pair", "two", "both", "duo", "trio", "three", "partners", "friends", "crew"}
_OBJECT_NOUNS = {"object", "find", "discovery", "thing", "device", "artifact", "artefact", "relic", "stone",
                 "weapon", "item", "box", "book", "key", "map", "machine", "signal", "gem", "orb", "shard"}
_DESCRIPTOR = re.compile(r"\b(?:the|that|this|our)\s+(?:(?:old|young|little|other|elder|younger|older|two|three)\s+)?([a-z][a-z'-]+)")


def infer_pronouns(text: str) -> str | None:
    """he / she / they from how an entry's lore refers to its subject; None when it is unclear."""
    counts = {p: 0 for p in _PRONOUNS}
    for w in _WORD.findall(text.lower()):
        if w in _PRONOUN_OF:
            counts[_PRONOUN_OF[w]] += 1
    best = max(counts, key=counts.__getitem__)
    rest = sum(counts.values()) - counts[best]
    if counts[best] >= 2 and counts[best] >= 2 * rest and (best != "they" or counts["he"] + counts["she"] == 0):
        return best
    return None


def is_person(e: LoreEntry) -> bool:
    return e.kind.lower() in PERSON_KINDS or (e.pronouns is not None and e.kind.lower() not in {"place", "item", "faction"})


@dataclass(frozen=True)
class Carry:
    """One scene pick: the entry, the words that pointed at it, and how many beats back it was seen."""

    entry_id: str
    cue: str
    distance: int


@dataclass
class Cue:
    kind: str  # "he" | "she" | "they" | "group" | "role" | "object"
    word: str
    pos: int


def find_cues(text: str, masked: Sequence[tuple[int, int]]) -> list[Cue]:
    """Pronouns and definite descriptions in a beat, outside the spans already matched as names."""
    def free(pos: int) -> bool:
        return all(not (s <= pos < e) for s, e in masked)

    cues: list[Cue] = []
    for m in re.finditer(r"[A-Za-z']+", text):
        w = m.group().lower()
        if w in _PRONOUN_OF and free(m.start()):
            cues.append(Cue(_PRONOUN_OF[w], w, m.start()))
    for m in _DESCRIPTOR.finditer(text):
        noun = m.group(1)
        if not free(m.start(1)):
            continue
        phrase = m.group(0)
        if noun in _GROUP or phrase.split()[1] in _GROUP:
            cues.append(Cue("group", phrase, m.start()))
        elif noun in _ROLE_NOUNS or (noun.endswith("s") and noun[:-1] in _ROLE_NOUNS):
            cues.append(Cue("role", noun, m.start()))
        elif noun in _OBJECT_NOUNS:
            cues.append(Cue("object", noun, m.start()))
    if re.search(r"\bboth\b", text, re.I):
        cues.append(Cue("group", "both", 0))
    return cues


def _mentions_word(e: LoreEntry, word: str) -> bool:
    pat = re.compile(rf"\b{re.escape(word)}s?\b", re.I)
    return any(pat.search(k) for k in e.aliases) or bool(pat.search(e.text[:600]))


def resolve(
    text: str,
    named: Sequence[tuple[str, int]],
    masked: Sequence[tuple[int, int]],
    history: Sequence[Sequence[str]],
    entries: dict[str, LoreEntry],
) -> list[Carry]:
    """Entries the beat refers back to. ``named``: (entry id, position) named in this beat;
    ``history``: for each earlier beat, most recent first, the entries on stage in mention order."""
    cues = find_cues(text, masked)
    if not cues:
        return []
    here = {i for i, _ in named}
    people_here = [(i, p) for i, p in named if i in entries and is_person(entries[i])]
    recent: list[tuple[str, int]] = []  # (entry id, distance) most recent first, no repeats
    seen: set[str] = set()
    for d, cast in enumerate(history, start=1):
        for i in cast:
            if i not in seen and i in entries:
                seen.add(i)
                recent.append((i, d))
    carried: dict[str, Carry] = {}

    def carry(i: str, cue: str, d: int) -> None:
        if i not in here and i not in carried:
            carried[i] = Carry(i, cue, d)

    people = [(i, d) for i, d in recent if is_person(entries[i])]
    for cue in cues:
        if cue.kind in ("he", "she"):
            # A pronoun after a matching name in the same beat most likely refers to that name.
            if any(entries[i].pronouns == cue.kind and p < cue.pos for i, p in people_here):
                continue
            match = next(((i, d) for i, d in people if entries[i].pronouns == cue.kind), None)
            if match:
                carry(match[0], cue.word, match[1])
        elif cue.kind == "they":
            if len(people_here) >= 2:
                continue
            match = next(((i, d) for i, d in people if entries[i].pronouns == "they"), None)
            if match and not people_here:
                carry(match[0], cue.word, match[1])
            elif people:
                last = people[0][1]
                for i, d in people:
                    if d == last:
                        carry(i, cue.word, d)
        elif cue.kind == "group":
            if len(people_here) >= 2 or not people:
                continue
            last = people[0][1]
            for i, d in people:
                if d == last:
                    carry(i, cue.word, d)
        elif cue.kind == "role":
            noun = cue.word[:-1] if cue.word.endswith("s") and cue.word[:-1] in _ROLE_NOUNS else cue.word
            if any(_mentions_word(entries[i], noun) for i in here if i in entries):
                continue
            match = next(((i, d) for i, d in people if _mentions_word(entries[i], noun)), None)
            if match is None:
                gender = next((g for g, nouns in _GENDERED.items() if noun in nouns), None)
                if gender and not any(entries[i].pronouns == gender for i, _ in people_here):
                    match = next(((i, d) for i, d in people if entries[i].pronouns == gender), None)
            if match:
                carry(match[0], f"the {cue.word}", match[1])
        elif cue.kind == "object":
            if any(not is_person(entries[i]) and entries[i].kind.lower() == "item" for i in here if i in entries):
                continue
            match = next(((i, d) for i, d in recent if entries[i].kind.lower() == "item"), None)
            if match:
                carry(match[0], f"the {cue.word}", match[1])
    return list(carried.values())
