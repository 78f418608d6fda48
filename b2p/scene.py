"""Who a beat refers back to without naming: pronouns, "the girl", "the monk", "the two women".

A beat sheet is a scene's running outline, so "she rows out…" almost always means the most
recent woman on stage. We carry exactly the entry each reference most plausibly points to —
matching pronouns, or a role noun found in the entry's own lore — not everyone seen lately.
Pronouns an entry takes are inferred from its lore at ingest (``infer_pronouns``).
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right, insort
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import accumulate

from b2p.models import LoreEntry

_TOKEN = re.compile(r"[A-Za-z][A-Za-z'-]*|[.!?;:,]")
_PRONOUNS = {
    "he": {"he", "him", "his", "himself"},
    "she": {"she", "her", "hers", "herself"},
    "they": {"they", "them", "their", "theirs", "themselves", "themself"},
}
_PRONOUN_OF = {w: p for p, words in _PRONOUNS.items() for w in words}
_ROLE = {"he": "subject", "she": "subject", "they": "subject", "him": "object", "them": "object",
         "his": "possessive", "their": "possessive", "hers": "possessive", "theirs": "possessive",
         "himself": "reflexive", "herself": "reflexive", "themselves": "reflexive", "themself": "reflexive"}
# After "her", these words mean "her" is an object ("tells her to…"), not a possessive ("her suit").
_FUNCTION = {"a", "an", "the", "to", "in", "on", "at", "for", "with", "from", "of", "and", "but", "or", "that",
             "about", "into", "out", "off", "back", "up", "down", "away", "over", "through", "toward", "towards",
             "before", "after", "as", "if", "when", "while", "until", "so", "this", "what", "how", "why", "where"}
PERSON_KINDS = {"character", "person", "people", "npc", "cast"}
_GENDERED = {
    "she": {"girl", "woman", "women", "lady", "mother", "sister", "daughter", "queen", "princess", "wife", "widow",
            "aunt", "niece", "grandmother", "matron", "abbess", "nun", "priestess", "heiress", "mistress", "maid", "duchess"},
    "he": {"boy", "man", "men", "gentleman", "father", "brother", "son", "king", "prince", "husband", "widower",
           "uncle", "nephew", "grandfather", "monk", "abbot", "priest", "lord", "duke", "lad", "fellow"},
}
_IRREGULAR = {"women": "woman", "men": "man", "children": "child", "people": "person"}
_GROUP = {"pair", "two", "both", "duo", "trio", "three", "siblings", "twins", "partners", "friends"}
_NUMBER = {"two": 2, "both": 2, "pair": 2, "duo": 2, "twins": 2, "siblings": 2, "partners": 2, "friends": 2, "three": 3, "trio": 3}
# Object nouns too vague to look up in an entry's lore: they mean "the item everyone is talking about".
_VAGUE_OBJECTS = {"find", "discovery", "thing", "object", "item", "prize"}
_OBJECT_NOUNS = {"object", "find", "discovery", "thing", "device", "artifact", "artefact", "relic", "stone",
                 "weapon", "item", "box", "book", "key", "map", "machine", "signal", "gem", "orb", "shard", "prize"}
_SKIP_NOUNS = {"same", "other", "rest", "first", "last", "next", "end", "way", "time", "day", "night", "moment",
               "chapter", "scene", "story", "beat", "reader", "world", "morning", "evening", "sun", "air", "water"}
_DETERMINER = re.compile(r"\b(the|that|this|a|an)\s+", re.IGNORECASE)
_WORDS = re.compile(r"[A-Za-z][A-Za-z'’-]*")
# Generic person nouns: resolved only against who is on stage, never by searching the bible.
_GENERIC = {"girl", "woman", "women", "lady", "boy", "man", "men", "gentleman", "lad", "fellow", "child", "kid",
            "stranger", "youth", "person", "figure"}

def infer_pronouns(text: str) -> str | None:
    """he / she / they from how an entry's lore refers to its subject; None when it is unclear."""
    counts = {p: 0 for p in _PRONOUNS}
    for w in re.findall(r"[a-z]+", text.lower()):
        if w in _PRONOUN_OF:
            counts[_PRONOUN_OF[w]] += 1
    best = max(counts, key=counts.__getitem__)
    rest = sum(counts.values()) - counts[best]
    if counts[best] >= 2 and counts[best] >= 2 * rest:
        return best
    return None


def is_person(e: LoreEntry) -> bool:
    kind = e.kind.lower()
    return kind in PERSON_KINDS or (e.pronouns is not None and kind not in {"place", "item", "faction", "note", "lore"})


def is_item(e: LoreEntry) -> bool:
    return e.kind.lower() in {"item", "object", "artifact", "artefact", "weapon", "device"}


@dataclass(frozen=True)
class Carry:
    """One scene pick: the entry, the words that pointed at it, and how many beats back it was seen."""

    entry_id: str
    cue: str
    distance: int


@dataclass(frozen=True)
class Cue:
    kind: str  # "he" | "she" | "they" | "noun"
    role: str  # subject | object | possessive | reflexive | noun
    word: str
    pos: int
    count: int = 1


def covered_by(spans: Sequence[tuple[int, int]]) -> Callable[[int], bool]:
    """``inside(pos)``: is ``pos`` within one of the ``(start, end)`` spans? A bisection per question,
    so a long beat's thousands of names cost n log n, not n²."""
    ordered = sorted(spans)
    starts = [s for s, _ in ordered]
    reach = list(accumulate((e for _, e in ordered), max))  # the furthest end among spans starting up to here

    def inside(pos: int) -> bool:
        k = bisect_right(starts, pos) - 1
        return k >= 0 and reach[k] > pos

    return inside


def find_cues(text: str, masked: Sequence[tuple[int, int]]) -> list[Cue]:
    """Pronouns and definite descriptions in a beat, outside the spans already matched as names."""
    inside = covered_by(masked)

    def free(pos: int) -> bool:
        return not inside(pos)

    cues: list[Cue] = []
    tokens = list(_TOKEN.finditer(text))
    for n, m in enumerate(tokens):
        w = m.group().lower()
        if w not in _PRONOUN_OF or not free(m.start()):
            continue
        role = _ROLE.get(w, "subject")
        if w == "her":
            nxt = tokens[n + 1].group().lower() if n + 1 < len(tokens) else "."
            role = "object" if (nxt in _FUNCTION or not nxt[0].isalpha()) else "possessive"
        elif role == "subject":
            prev = tokens[n - 1].group() if n else "."
            role = "opening" if prev in ".!?;:" else "subject"
        cues.append(Cue(_PRONOUN_OF[w], role, w, m.start()))
    for m in _DETERMINER.finditer(text):
        det = m.group(1).lower()
        words, spans = [], []
        for w in _WORDS.finditer(text, m.end()):
            gap = text[(spans[-1][1] if spans else m.end()) : w.start()]
            if len(words) == 4 or gap.strip() or w.group().lower() in _FUNCTION:
                break  # "the importance of the discovery": the phrase ends at "of"
            words.append(w.group().lower())
            spans.append((w.start(), w.end()))
        if not words:
            continue
        stems = [w[:-2] if w.endswith(("'s", "’s")) else w.rstrip("'’") for w in words]
        # The head noun: the last known person/object noun ("the two women" → women), else a group word.
        pick = next((n for n in reversed(range(len(stems))) if _singular(stems[n]) in _KNOWN), None)
        if pick is None:
            pick = next((n for n, w in enumerate(stems) if w in _GROUP), None)
        if pick is None:
            if det in ("a", "an"):
                continue  # "a wren", "a lull": only known nouns are read after an indefinite article
            pick = 0
        offset = spans[pick][0]
        noun = stems[pick]
        if not free(offset) or noun in _SKIP_NOUNS or noun in _PRONOUN_OF or (det in ("a", "an") and _singular(noun) not in _OBJECT_NOUNS):
            continue
        count = max([_NUMBER.get(x, 0) for x in stems[: pick + 1]] + [1])
        singular = _singular(noun)
        if noun != singular and count == 1:
            count = 2
        cues.append(Cue("noun", "indefinite" if det in ("a", "an") else "noun", noun if noun in _GROUP else singular, offset, count))
    return sorted(cues, key=lambda c: c.pos)


_IS_A = re.compile(r"\b(?:is|was|works as|serves as)\s+(?:a|an|the)\s+((?:[A-Za-z][\w-]*\s+){0,3}[A-Za-z][\w-]*)")
_SENTENCE = re.compile(r"(?<!\bDr)(?<!\bMr)(?<!\bMrs)(?<!\bMs)(?<!\bSt)(?<!\bLt)(?<!\bCapt)(?<!\bProf)(?<!\bSgt)(?<=[.!?])\s")
_RELATIVE = {"who", "whom", "whose", "which", "that", "with", "and", "of", "in", "on", "at", "for", "from", "to", "by"}


def _is_a_heads(first_sentence: str) -> list[str]:
    """Head nouns of what the sentence says its subject *is*: "a second-generation lunar miner who…" → miner."""
    heads = []
    for m in _IS_A.finditer(first_sentence):
        phrase = []
        for w in m.group(1).lower().split():
            if w in _RELATIVE:
                break
            phrase.append(w)
        if phrase:
            heads.append(phrase[-1])
    return heads


def _singular(noun: str) -> str:
    if noun in _IRREGULAR:
        return _IRREGULAR[noun]
    if noun.endswith("s") and not noun.endswith("ss") and len(noun) > 3 and noun not in _GROUP:
        return noun[:-1]
    return noun


def _says(e: LoreEntry, word: str, strict: bool = False) -> bool:
    """Does the entry's lore describe it with this word? ``strict``: only its aliases and what its
    first sentence says it *is* ("Quill is an old copyist…") — for nouns we cannot tell are people."""
    pat = re.compile(rf"\b{re.escape(word)}(?:s|es)?\b", re.IGNORECASE)
    lead = e.lead or e.text[:400]
    if strict:
        lead = " ".join(_is_a_heads(_SENTENCE.split(lead, maxsplit=1)[0]))
    tags = e.tags if (not strict or word in _ROLE_NOUNS) else ()  # tags say roles, but also moods and places
    return any(pat.search(k) for k in (*e.aliases, *tags)) or bool(pat.search(lead))


class Describers:
    """Which entries describe themselves with a noun: the lookups behind "the bible's only monk"
    and "its only stone", as word → entry tables built once per bible, so they cost the same at
    10 entries or 10k. They read exactly what ``_says`` reads (strict for people, loose for items)."""

    def __init__(self, entries: Iterable[LoreEntry]) -> None:
        self.people: dict[str, set[str]] = {}  # aliases and what the first sentence says the entry *is*
        self.people_tags: dict[str, set[str]] = {}  # tags: read for role nouns only
        self.items: dict[str, set[str]] = {}  # aliases, tags and lead
        for e in entries:
            lead = e.lead or e.text[:400]
            if is_person(e):
                heads = _is_a_heads(_SENTENCE.split(lead, maxsplit=1)[0])
                self._add(self.people, e.id, *e.aliases, *heads)
                self._add(self.people_tags, e.id, *e.tags)
            elif is_item(e):
                self._add(self.items, e.id, *e.aliases, *e.tags, lead)

    @staticmethod
    def _add(table: dict[str, set[str]], entry_id: str, *texts: str) -> None:
        for w in set(_PIECES.findall(" ".join(texts).lower())):
            table.setdefault(w, set()).add(entry_id)

    def find(self, noun: str, people: bool) -> set[str] | None:
        """Entries described by ``noun`` (or its plural); None for a noun these tables cannot look up."""
        if not _PIECES.fullmatch(noun):
            return None  # "ex-miner": only the regex in _says reads it as written
        forms = (noun, noun + "s", noun + "es")
        tables = [self.people] + ([self.people_tags] if noun in _ROLE_NOUNS else []) if people else [self.items]
        return {i for t in tables for f in forms for i in t.get(f, ())}


_PIECES = re.compile(r"\w+")  # the words between the \b boundaries _says matches at


def _bible_only(noun: str, entries: dict[str, LoreEntry], here: set[str], describers: Describers | None, people: bool) -> str | None:
    """The one person (strictly) or item in the whole bible that this noun describes, if exactly one."""
    found = describers.find(noun, people) if describers is not None else None
    if found is None:
        test = is_person if people else is_item
        found = {e.id for e in entries.values() if test(e) and _says(e, noun, strict=people)}
    found = {i for i in found if i in entries and i not in here}
    return next(iter(found)) if len(found) == 1 else None


class _Stage:
    """The recent cast, most recent first, with how many beats back each was last seen."""

    def __init__(self, history: Sequence[Sequence[str]], entries: dict[str, LoreEntry], here: set[str], depth: int) -> None:
        self.depth = depth
        self.order: list[tuple[str, int]] = []
        self.salience: dict[str, float] = {}
        for d, cast in enumerate(history, start=1):
            for i in cast:
                if i in entries:
                    if i not in self.salience:
                        self.order.append((i, d))
                    # How often it was on stage, recency only breaking ties.
                    self.salience[i] = self.salience.get(i, 0.0) + 1.0 + 0.01 / d
        self.entries = entries
        self.here = here

    def people(self, pronouns: str | None = None, depth: int | None = None) -> list[tuple[str, int]]:
        """People on stage (within ``depth`` beats), most recent first."""
        depth = self.depth if depth is None else depth
        return [(i, d) for i, d in self.order if d <= depth and i not in self.here and is_person(self.entries[i])
                and (pronouns is None or self.entries[i].pronouns == pronouns)]

    def items(self) -> list[tuple[str, int]]:
        """Items seen anywhere earlier in the sheet, the most talked-about first."""
        got = [(i, d) for i, d in self.order if i not in self.here and is_item(self.entries[i])]
        return sorted(got, key=lambda x: -self.salience[x[0]])


def resolve(
    text: str,
    named: Sequence[tuple[str, int]],
    masked: Sequence[tuple[int, int]],
    history: Sequence[Sequence[str]],
    entries: dict[str, LoreEntry],
    depth: int = 3,
    describers: Describers | None = None,
) -> list[Carry]:
    """Entries the beat refers back to. ``named``: (entry id, position) named in this beat;
    ``history``: for every earlier beat, most recent first, the entries on stage in mention order.
    People are looked for within ``depth`` beats; items anywhere earlier in the sheet.
    ``describers``: the bible's noun tables (without them, the whole bible is scanned per noun)."""
    cues = find_cues(text, masked)
    if not cues:
        return []
    here = {i for i, _ in named}
    people_here = [(i, p) for i, p in named if i in entries and is_person(entries[i])]
    # The same people, counted and by pronoun (positions sorted): a long beat asks about them per cue.
    counts = Counter(i for i, _ in people_here)
    positions: dict[str | None, list[int]] = {}
    for i, p in people_here:
        insort(positions.setdefault(entries[i].pronouns, []), p)
    stage = _Stage(history, entries, here, depth)
    carried: dict[str, Carry] = {}

    def carry(i: str, cue: str, d: int) -> None:
        if i not in here and i not in carried:
            carried[i] = Carry(i, cue, d)
            if is_person(entries[i]):
                people_here.append((i, 10**6))
                counts[i] += 1
                insort(positions.setdefault(entries[i].pronouns, []), 10**6)

    first_person = min((p for _, p in people_here), default=-1)
    said: dict[tuple[str, str], bool] = {}

    def says(i: str, word: str) -> bool:
        if (i, word) not in said:
            said[i, word] = _says(entries[i], word)
        return said[i, word]

    chained: set[str] = set()  # genders already referred to by a subject/possessive pronoun in this beat
    for cue in cues:
        if cue.kind in ("he", "she") and cue.role != "object" and cue.kind in chained:
            continue  # "He admits he is…": the second "he" is the first one's person
        if cue.kind in ("he", "she"):
            if cue.role != "object":
                chained.add(cue.kind)
            same = positions.get(cue.kind, [])
            before = bisect_left(same, cue.pos)  # how many of them come before the cue
            resolved = {
                "opening": False,  # "He hesitates…" opens a sentence: it points back
                "subject": before > 0,
                "possessive": bool(same),
                "reflexive": bool(same),
                # "Jack cuts him off": not Jack, the beat's subject; "the Captain pockets Brisk's
                # bribe and warns her": Brisk, who is not the subject. (Sorted: the last one
                # before the cue is the first person only if they all are.)
                "object": before > 0 and same[before - 1] != first_person,
            }[cue.role]
            if not resolved and cue.role == "opening":
                # "He admits he is the Hermit": the man on stage may be named again in this very beat.
                last = next(((i, d) for i, d in stage.order if d <= stage.depth and is_person(entries[i]) and entries[i].pronouns == cue.kind), None)
                resolved = last is not None and last[0] in here
            if not resolved and (match := next(iter(stage.people(cue.kind)), None)):
                carry(match[0], cue.word, match[1])
        elif cue.kind == "they":
            if len(people_here) >= 2 or (people_here and cue.role not in ("opening", "object", "possessive")):
                continue
            singular = stage.people("they")
            recent = stage.people()
            if singular and recent and singular[0][1] == recent[0][1]:
                carry(singular[0][0], cue.word, singular[0][1])
            elif recent:
                last = recent[0][1]
                group = [(i, d) for i, d in recent if d == last]
                if len(group) >= 2:
                    for i, d in group:
                        carry(i, cue.word, d)
        else:
            _resolve_noun(cue, stage, entries, people_here, here, carry, describers, counts, says)
    return list(carried.values())


def _resolve_noun(cue: Cue, stage: _Stage, entries: dict[str, LoreEntry], people_here: list[tuple[str, int]], here: set[str], carry,  # noqa: ANN001
                  describers: Describers | None, counts: Counter[str] | None = None,
                  says: Callable[[str, str], bool] | None = None) -> None:
    """``counts``: how often each person in ``people_here`` is in it; ``says``: ``_says`` by entry id, remembered."""
    counts = counts if counts is not None else Counter(i for i, _ in people_here)
    says = says or (lambda i, word: _says(entries[i], word))
    noun = cue.word
    phrase = f"the {noun}"
    if noun in _GROUP:
        if len(people_here) >= cue.count:
            return
        recent = stage.people()
        if recent:
            last = recent[0][1]
            for i, d in [(i, d) for i, d in recent if d == last][: cue.count]:
                carry(i, phrase, d)
        return
    if noun in _OBJECT_NOUNS:
        if any(is_item(entries[i]) for i in here if i in entries):
            return
        items = stage.items()
        described = [] if noun in _VAGUE_OBJECTS else [(i, d) for i, d in items if _says(entries[i], noun)]
        match = None if cue.role == "indefinite" else next(iter(described or items), None)
        if match is None:  # "a stone on his desk glows…": the bible's only stone
            only = _bible_only(noun, entries, here, describers, people=False)
            match = (only, 0) if only else None
        if match:
            carry(match[0], f"{'a' if cue.role == 'indefinite' else 'the'} {noun}", match[1])
        return
    if cue.role == "indefinite":
        return
    gender = next((g for g, nouns in _GENDERED.items() if noun in nouns), None)
    need = cue.count
    need -= sum(n for i, n in counts.items() if says(i, noun) or (gender and entries[i].pronouns == gender and cue.count > 1))
    if need <= 0 or (cue.count > 1 and noun not in _ROLE_NOUNS):
        return  # "the divers": a crowd of extras, not the cast
    people = stage.people()
    # Who *is* a monk (alias, or "X is a monk…") beats who merely mentions monks; on stage first,
    # then the bible's only one; looser mentions and bare gender come last.
    found = [(i, d) for i, d in people if _says(entries[i], noun, strict=True)]
    if not found and noun not in _GENERIC:
        only = _bible_only(noun, entries, here, describers, people=True)
        found = [(only, 0)] if only else []
    if not found and noun in _ROLE_NOUNS:
        found = [(i, d) for i, d in people if _says(entries[i], noun)]
    if not found and gender:
        found = [(i, d) for i, d in people if entries[i].pronouns == gender]
    for i, d in found[:need]:
        carry(i, phrase, d)

_ROLE_NOUNS = set().union(*_GENDERED.values()) | {
    "captain", "chief", "commander", "doctor", "scientist", "miner", "pilot", "soldier", "guard", "child",
    "kid", "stranger", "thief", "boss", "sergeant", "officer", "engineer", "mechanic", "merchant",
    "smuggler", "archivist", "librarian", "keeper", "warden", "scholar", "apprentice", "novice",
    "elder", "teacher", "student", "youth", "veteran", "rookie", "partner", "leader", "healer",
    "physician", "professor", "director", "operator", "technician", "agent", "spy", "hermit",
    "sailor", "ferryman", "boatman", "mage", "wizard", "witch", "knight", "squire", "scribe", "clerk",
    "foreman", "overseer", "administrator", "ranger", "hunter", "orphan", "courier", "messenger", "copyist",
}
_KNOWN = _ROLE_NOUNS | _OBJECT_NOUNS
