"""Who a beat refers back to without naming: pronouns, "the girl", "the monk", "the two women".

A beat sheet is a scene's running outline, so "she rows out…" almost always means the most
recent woman on stage. We carry exactly the entry each reference most plausibly points to —
matching pronouns, or a role noun found in the entry's own lore — not everyone seen lately.
Pronouns an entry takes are inferred from its lore at ingest (``infer_pronouns``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from b2p.lexicon import (
    CLAUSE_BREAKS,
    PREPOSITIONS,
    GENDER_OF_NOUN,
    GENDERED,
    GENERIC_PERSONS,
    GROUP_COUNT,
    GROUP_WORDS,
    ITEM_KINDS,
    NOT_REFERENCES,
    PERSON_KINDS,
    PHRASE_ENDERS,
    PLACE_KINDS,
    PRONOUN_OF,
    PRONOUN_ROLE,
    PRONOUNS,
    VAGUE_THINGS,
    GROUP_KINDS,
    EVENT_KINDS,
    NOTE_KINDS,
    kin_noun,
    sentences,
    singular,
)
from b2p.models import LoreEntry
from b2p.relations import Relations

_TOKEN = re.compile(r"[A-Za-z][A-Za-z'-]*|[.!?;:,]")
_DETERMINER = re.compile(r"\b(the|that|this|a|an)\s+", re.IGNORECASE)
_WORDS = re.compile(r"[A-Za-z][A-Za-z'’-]*")


def infer_pronouns(text: str) -> str | None:
    """he / she / they from how an entry's lore refers to its subject; None when it is unclear."""
    counts = {p: 0 for p in PRONOUNS}
    for w in re.findall(r"[a-z]+", text.lower()):
        if w in PRONOUN_OF:
            counts[PRONOUN_OF[w]] += 1
    best = max(counts, key=counts.__getitem__)
    rest = sum(counts.values()) - counts[best]
    if counts[best] >= 2 and counts[best] >= 2 * rest:
        return best
    return None


def entry_pronouns(e: LoreEntry) -> str | None:
    """The pronouns an entry takes, read at ingest: any entry that is not a thing (a place, item,
    group or event) may be a person — whatever its kind is called ("cast", "npc", an imported "lore")."""
    return None if e.kind in _THINGS else infer_pronouns(e.text)


_THINGS = PLACE_KINDS | ITEM_KINDS | GROUP_KINDS | EVENT_KINDS


def is_person(e: LoreEntry) -> bool:
    """A person kind; or a kind b2p does not know whose lore calls it he, she or they; or a note written as he/she."""
    if e.kind in PERSON_KINDS:
        return True
    if e.kind in _THINGS:
        return False
    return e.pronouns in ("he", "she") if e.kind in NOTE_KINDS else e.pronouns is not None


def is_item(e: LoreEntry) -> bool:
    return e.kind in ITEM_KINDS


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


def find_cues(text: str, masked: Sequence[tuple[int, int]], vocab: Describers) -> list[Cue]:
    """Pronouns and definite descriptions in a beat, outside the spans already matched as names.
    ``vocab``: the bible's nouns for its people and things (what its entries say they *are*)."""

    def free(pos: int) -> bool:
        return all(not (s <= pos < e) for s, e in masked)

    cues: list[Cue] = []
    tokens = list(_TOKEN.finditer(text))
    for n, m in enumerate(tokens):
        w = m.group().lower()
        if w not in PRONOUN_OF or not free(m.start()):
            continue
        role = PRONOUN_ROLE.get(w, "subject")
        if w == "her":
            nxt = tokens[n + 1].group().lower() if n + 1 < len(tokens) else "."
            role = "object" if (nxt in PHRASE_ENDERS or not nxt[0].isalpha()) else "possessive"
        elif role == "subject":
            prev = tokens[n - 1].group() if n else "."
            role = "opening" if prev in ".!?;:" else "subject"
        cues.append(Cue(PRONOUN_OF[w], role, w, m.start()))
    known = vocab.roles | vocab.objects
    for m in _DETERMINER.finditer(text):
        det = m.group(1).lower()
        words, spans = [], []
        for w in _WORDS.finditer(text, m.end()):
            gap = text[(spans[-1][1] if spans else m.end()) : w.start()]
            if len(words) == 4 or gap.strip() or w.group().lower() in PHRASE_ENDERS or not free(w.start()):
                break  # "the importance of the discovery": the phrase ends at "of"; a name ends it too
            words.append(w.group().lower())
            spans.append((w.start(), w.end()))
        if not words:
            continue
        stems = [w[:-2] if w.endswith(("'s", "’s")) else w.rstrip("'’") for w in words]
        # The head noun: the last known person/object noun ("the two women" → women), else a group word.
        pick = next((n for n in reversed(range(len(stems))) if singular(stems[n]) in known), None)
        if pick is None:
            pick = next((n for n, w in enumerate(stems) if w in GROUP_WORDS), None)
        if pick is None:
            if det in ("a", "an"):
                continue  # "a wren", "a lull": only known nouns are read after an indefinite article
            pick = 0
        offset = spans[pick][0]
        noun = stems[pick]
        if text[offset].islower() and noun in vocab.case_words:
            continue  # "under the ivy": the ordinary word, not the person named Ivy
        if text[offset].isupper() and noun in vocab.name_words:
            continue  # "the Queen went onto the rocks": a word of some entry's name, not "the queen" on stage
        one = singular(noun)
        if not free(offset) or noun in NOT_REFERENCES or noun in PRONOUN_OF or (det in ("a", "an") and one not in vocab.objects):
            continue
        count = max([GROUP_COUNT.get(x, 0) for x in stems[: pick + 1]] + [1])
        if noun != one and count == 1:
            count = 2
        cues.append(Cue("noun", "indefinite" if det in ("a", "an") else "noun", noun if noun in GROUP_WORDS else one, offset, count))
    return sorted(cues, key=lambda c: c.pos)


# What an entry *is*: "X is a second-generation lunar miner", "X is the K-Bar's oldest hand".
_IS_A = re.compile(
    r"\b(?:is|was|works as|serves as)\s+(?:(a|an|the|his|her|their|its)\s+)?((?:[A-Z][\w.-]*\s+){0,3}[A-Z][\w.-]*['’]s?\s+)?"
    r"((?:[A-Za-z][\w-]*\s+){0,5}[A-Za-z][\w-]*)"
)
# A noun phrase in a defining sentence: a determiner, up to three modifiers, and the noun that ends it.
_NOUN_PHRASE = re.compile(r"\b(?:a|an|the)\s+((?:[A-Za-z][\w-]*\s+){0,3}[A-Za-z][\w-]*)")
_RELATIVE = CLAUSE_BREAKS | PREPOSITIONS


def _head(phrase: str, after: str, lists: bool = False) -> str | None:
    """The noun that ends a phrase: cut at the first relative word or preposition; a phrase that runs
    on with no break has no head we can be sure of. A trailing participle is not the head ("the
    artifact uncovered by" → artifact)."""
    words = phrase.split()
    kept: list[str] = []
    for w in words:
        if w.lower() in ("and", "or") and kept:
            kept = []  # "a trauma and vascular surgeon": the noun comes after the coordination
            continue
        if w.lower() in _RELATIVE:
            break
        kept.append(w.lower())
    if not kept or (len(kept) == len(words) and (after[:1].isspace() or (not lists and re.match(r",\s*[a-z]", after)))):
        return None  # runs on, or "a warm, steady blue": a list of adjectives, not a noun
    if len(kept) > 1 and kept[-1].endswith("ed"):
        kept.pop()
    return None if kept[-1][0].isdigit() else kept[-1]


def _is_a_heads(first_sentence: str) -> list[str]:
    """Head nouns of what the sentence says its subject *is*: "a second-generation lunar miner who…" → miner."""
    heads = []
    for m in _IS_A.finditer(first_sentence):
        if m.group(1) or m.group(2) or m.group(3)[0].isupper():  # "is a …", "is Josiah's …", "is Chief of …"
            h = _head(m.group(3), first_sentence[m.end(3) :], lists=True)  # "is a copyist, book-restorer and …"
            if h:
                heads.append(h)
    return heads


def _thing_nouns(first_sentence: str) -> set[str]:
    """Every noun phrase head in a thing's defining sentence: "the holy relic of Saint Ysolde, …, a smooth
    oval stone about the size…" → relic, stone, size. A thing is called by any of them ("the stone")."""
    out = set()
    for m in _NOUN_PHRASE.finditer(first_sentence):
        h = _head(m.group(1), first_sentence[m.end(1) :])
        if h:
            out.add(h)
    return out


def _first_sentence(text: str) -> str:
    return next(iter(sentences(text)), "")


def _says(e: LoreEntry, word: str, strict: bool = False, roles: frozenset[str] | set[str] = frozenset()) -> bool:
    """Does the entry's lore describe it with this word? ``strict``: only its aliases and what its
    first sentence says it *is* ("Quill is an old copyist…") — for nouns we cannot tell are people."""
    pat = re.compile(rf"\b{re.escape(word)}(?:s|es)?\b", re.IGNORECASE)
    lead = e.lead or e.text[:400]
    if strict:
        lead = " ".join(_is_a_heads(_first_sentence(lead)))
    tags = e.tags if (not strict or word in roles) else ()  # tags say roles, but also moods and places
    aliases = [_descriptive(a) for a in e.aliases] if strict else e.aliases
    return any(pat.search(k) for k in (*aliases, *tags)) or bool(pat.search(lead))


def _descriptive(alias: str) -> str:
    """The words of an alias that describe rather than name: "the hired hand" → all of it; "Old
    Jubal" → none ("the old whip" is not Jubal by his nickname's adjective)."""
    return " ".join(w for w in alias.split() if not w[:1].isupper())


class Describers:
    """Which entries describe themselves with a noun: the lookups behind "the bible's only monk"
    and "its only stone", as word → entry tables built once per bible, so they cost the same at
    10 entries or 10k. They read exactly what ``_says`` reads (strict for people, loose for items).

    ``roles`` and ``objects`` are the bible's own nouns for its people and its things — what each
    entry's first sentence says it *is*, its aliases and its tags — so "the monk" is a person noun
    only in a bible that has a monk, and "a stone" an object only where an item is one."""

    def __init__(self, entries: Iterable[LoreEntry]) -> None:
        entries = list(entries)
        self.people: dict[str, set[str]] = {}  # aliases and what the first sentence says the entry *is*
        self.people_tags: dict[str, set[str]] = {}  # tags: read for role nouns only
        self.items: dict[str, set[str]] = {}  # aliases, tags and lead
        roles: set[str] = set().union(*GENDERED.values(), GENERIC_PERSONS)
        objects: set[str] = set(VAGUE_THINGS)
        for e in entries:
            lead = e.lead or e.text[:400]
            heads = _is_a_heads(_first_sentence(lead))
            if is_person(e):
                self._add(self.people, e.id, *map(_descriptive, e.aliases), *heads)
                self._add(self.people_tags, e.id, *e.tags)
                roles.update(heads)
            elif is_item(e):
                self._add(self.items, e.id, *e.aliases, *e.tags, lead)
                objects.update(heads, _thing_nouns(_first_sentence(lead)))
        self.roles = frozenset(roles)
        self.case_words = frozenset(w.lower() for e in entries if e.case_sensitive for k in e.keys() for w in re.findall(r"[A-Za-z]+", k))
        self.name_words = frozenset(w.lower() for e in entries for k in e.keys() for w in re.findall(r"[A-Z][a-z]+", k))
        self.objects = frozenset(objects - roles)

    @staticmethod
    def _add(table: dict[str, set[str]], entry_id: str, *texts: str) -> None:
        for w in set(_PIECES.findall(" ".join(texts).lower())):
            table.setdefault(w, set()).add(entry_id)

    def find(self, noun: str, people: bool) -> set[str] | None:
        """Entries described by ``noun`` (or its plural); None for a noun these tables cannot look up."""
        if not _PIECES.fullmatch(noun):
            return None  # "ex-miner": only the regex in _says reads it as written
        forms = (noun, noun + "s", noun + "es")
        tables = [self.people] + ([self.people_tags] if noun in self.roles else []) if people else [self.items]
        return {i for t in tables for f in forms for i in t.get(f, ())}


_PIECES = re.compile(r"\w+")  # the words between the \b boundaries _says matches at


def _bible_only(noun: str, entries: dict[str, LoreEntry], here: set[str], describers: Describers | None, people: bool) -> str | None:
    """The one person (strictly) or item in the whole bible that this noun describes, if exactly one."""
    found = describers.find(noun, people) if describers is not None else None
    if found is None:
        test = is_person if people else is_item
        roles = describers.roles if describers is not None else frozenset()
        found = {e.id for e in entries.values() if test(e) and _says(e, noun, strict=people, roles=roles)}
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
    relations: Relations | None = None,
    possessives: Sequence[tuple[str, int, int]] = (),
    refused: list[tuple[str, list[str]]] | None = None,
) -> list[Carry]:
    """Entries the beat refers back to. ``named``: (entry id, position) named in this beat;
    ``history``: for every earlier beat, most recent first, the entries on stage in mention order.
    People are looked for within ``depth`` beats; items anywhere earlier in the sheet.
    ``describers``: the bible's noun tables (without them, the whole bible is scanned per noun).
    ``relations``: the bible's kinship table, for "her stepmother"; ``possessives``: (entry id, start,
    end) of the names the beat uses in the possessive ("Josiah's"). ``refused``: filled with the
    relations that more than one entry fits equally (phrase, candidates): b2p does not guess."""
    if describers is None:
        describers = Describers(entries.values())
    cues = find_cues(text, masked, describers)
    kin = kin_phrases(text, masked, possessives) if relations is not None else []
    if kin:  # "her stepmother" is a relation, not any woman on stage
        taken = {k.pos for k in kin}
        cues = sorted([c for c in cues if not (c.kind == "noun" and c.pos in taken)] + kin, key=lambda c: c.pos)
    if not cues:
        return []
    here = {i for i, _ in named}
    people_here = [(i, p) for i, p in named if i in entries and is_person(entries[i])]
    stage = _Stage(history, entries, here, depth)
    carried: dict[str, Carry] = {}

    def carry(i: str, cue: str, d: int, pos: int = 10**6) -> None:
        if i not in here and i not in carried:
            carried[i] = Carry(i, cue, d)
            if is_person(entries[i]):
                people_here.append((i, pos))

    def owner(gender: str, pos: int) -> tuple[str, int] | None:
        """Whom a possessive pronoun means: the nearest person of its gender before it in the beat,
        else the first after it, else the most recent one on stage."""
        same = sorted((p, i) for i, p in people_here if entries[i].pronouns == gender)
        before = [(p, i) for p, i in same if p < pos]
        if before:
            return before[-1][1], 0
        if same:
            return same[0][1], 0
        return next(iter(stage.people(gender)), None)

    first_person = min((p for _, p in people_here), default=-1)
    chained: set[str] = set()  # genders already referred to by a subject/possessive pronoun in this beat
    for cue in cues:
        if cue.kind == "kin":
            _resolve_kin(cue, owner, relations, entries, carry, refused)  # type: ignore[arg-type]
            continue
        if cue.kind in ("he", "she") and cue.role != "object" and cue.kind in chained:
            continue  # "He admits he is…": the second "he" is the first one's person
        if cue.kind in ("he", "she"):
            if cue.role != "object":
                chained.add(cue.kind)
            same = [p for i, p in people_here if entries[i].pronouns == cue.kind]
            before = [p for p in same if p < cue.pos]
            resolved = {
                "opening": False,  # "He hesitates…" opens a sentence: it points back
                "subject": bool(before),
                "possessive": bool(same),
                "reflexive": bool(same),
                # "Jack cuts him off": not Jack, the beat's subject; "the Captain pockets Brisk's
                # bribe and warns her": Brisk, who is not the subject.
                "object": any(p != first_person for p in before),
            }[cue.role]
            if not resolved and cue.role == "opening":
                # "He admits he is the Hermit": the man on stage may be named again in this very beat.
                last = next(((i, d) for i, d in stage.order if d <= stage.depth and is_person(entries[i]) and entries[i].pronouns == cue.kind), None)
                resolved = last is not None and last[0] in here
            if not resolved and (match := next(iter(stage.people(cue.kind)), None)):
                carry(match[0], cue.word, match[1], cue.pos)
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
            _resolve_noun(cue, stage, entries, people_here, here, carry, describers)
    return list(carried.values())


@dataclass(frozen=True)
class KinCue(Cue):
    owner: str = ""  # "he"/"she"/"they" for a pronoun; the entry id for a name ("Josiah's")
    phrase: str = ""


_TOKENS = re.compile(r"[A-Za-z][A-Za-z'’-]*")


def kin_phrases(text: str, masked: Sequence[tuple[int, int]], possessives: Sequence[tuple[str, int, int]]) -> list[KinCue]:
    """"her stepmother", "his real father", "Josiah's brother-in-law": a possessive, up to two modifiers,
    and a kinship noun. The rule a reader uses: a possessive plus a kinship noun names a relative of
    the possessor."""
    out = []

    def free(pos: int) -> bool:
        return all(not (s <= pos < e) for s, e in masked)

    def noun_after(end: int) -> tuple[str, int, int] | None:
        for n, w in enumerate(_TOKENS.finditer(text, end)):
            if n == 3 or not free(w.start()) or text[end : w.start()].strip(" ") or w.group()[0].isupper():
                return None
            noun = kin_noun(re.sub(r"['’]s?$", "", w.group().lower()))
            if noun:
                return noun, w.start(), w.end()
            end = w.end()
        return None

    for m in re.finditer(r"\b(his|her|their)\b", text, re.IGNORECASE):
        found = noun_after(m.end()) if free(m.start()) else None
        if found:
            noun, s, e = found
            out.append(KinCue("kin", "possessive", noun, s, owner=PRONOUN_OF[m.group(1).lower()], phrase=text[m.start() : e].rstrip("'’s")))
    for entry_id, start, end in possessives:
        found = noun_after(end)
        if found:
            noun, s, e = found
            out.append(KinCue("kin", "name", noun, s, owner=entry_id, phrase=text[start:e]))
    return out


def _resolve_kin(cue: KinCue, owner, relations: Relations, entries: dict[str, LoreEntry], carry,  # noqa: ANN001
                 refused: list[tuple[str, list[str]]] | None) -> None:
    """Resolve the possessor first (a name, or the pronoun's person), then follow the relation."""
    if cue.role == "name":
        who, d, said = cue.owner, 0, None
    else:
        if cue.owner == "they":
            return  # "their mother": whose, of the several on stage, no one can say
        found = owner(cue.owner, cue.pos)
        if found is None:
            return
        (who, d), said = found, cue.phrase.split()[0].lower()
    if who not in entries:
        return
    fits = relations.relatives(who, cue.word, lambda i: entries[i].pronouns if i in entries else None)
    fits = [(i, src) for i, src in fits if i in entries and i != who]
    path = f"{said} = {entries[who].name}; " if said else ""
    if len(fits) == 1:
        i, src = fits[0]
        carry(i, f"{cue.phrase} ({path}{cue.word}, from {entries[src].name}'s entry)", d, cue.pos)
    elif len(fits) > 1 and refused is not None:
        refused.append((f"{cue.phrase} ({path}{len(fits)} fit equally)", [i for i, _ in fits]))


def _resolve_noun(cue: Cue, stage: _Stage, entries: dict[str, LoreEntry], people_here: list[tuple[str, int]], here: set[str], carry,  # noqa: ANN001
                  describers: Describers) -> None:
    noun = cue.word
    phrase = f"the {noun}"
    if noun in GROUP_WORDS:
        if len(people_here) >= cue.count:
            return
        recent = stage.people()
        if recent:
            last = recent[0][1]
            for i, d in [(i, d) for i, d in recent if d == last][: cue.count]:
                carry(i, phrase, d)
        return
    if noun in describers.objects:
        if any(is_item(entries[i]) for i in here if i in entries):
            return
        items = stage.items()
        # "the discovery" is whatever item the sheet talks about most; "the rifle", only an item that says it is one.
        pool = items if noun in VAGUE_THINGS else [(i, d) for i, d in items if _says(entries[i], noun)]
        match = None if cue.role == "indefinite" else next(iter(pool), None)
        if match is None:  # "a stone on his desk glows…": the bible's only stone
            only = _bible_only(noun, entries, here, describers, people=False)
            match = (only, 0) if only else None
        if match:
            carry(match[0], f"{'a' if cue.role == 'indefinite' else 'the'} {noun}", match[1])
        return
    if cue.role == "indefinite":
        return
    gender = GENDER_OF_NOUN.get(noun)
    need = cue.count
    need -= sum(1 for i, _ in people_here if _says(entries[i], noun) or (gender and entries[i].pronouns == gender and cue.count > 1))
    if need <= 0 or (cue.count > 1 and noun not in describers.roles):
        return  # "the divers": a crowd of extras, not the cast
    people = stage.people()
    # Who *is* a monk (alias, or "X is a monk…") beats who merely mentions monks; on stage first,
    # then the bible's only one; looser mentions and bare gender come last.
    found = [(i, d) for i, d in people if _says(entries[i], noun, strict=True, roles=describers.roles)]
    if not found and noun not in GENERIC_PERSONS:
        only = _bible_only(noun, entries, here, describers, people=True)
        found = [(only, 0)] if only else []
    if not found and noun in describers.roles:
        found = [(i, d) for i, d in people if _says(entries[i], noun)]
    if not found and gender:
        found = [(i, d) for i, d in people if entries[i].pronouns == gender]
    for i, d in found[:need]:
        carry(i, phrase, d)
