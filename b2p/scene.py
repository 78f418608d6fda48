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
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

from b2p.lexicon import (
    FUNCTION_WORDS,
    NUMBER_WORDS,
    AGE_WORDS,
    GENDER_OF_NOUN,
    GENERIC_PERSONS,
    GROUP_COUNT,
    GROUP_WORDS,
    NOT_REFERENCES,
    PHRASE_ENDERS,
    PRONOUN_OF,
    PRONOUN_ROLE,
    VAGUE_THINGS,
    singular,
)
from b2p.models import LoreEntry
from b2p.phrases import covered_by
from b2p.nouns import (  # noqa: F401 - re-exported: the scene's vocabulary
    Describers,
    _bible_only,
    _says,
    calls_itself,
    entry_pronouns,
    infer_pronouns,
    is_item,
    is_person,
)
from b2p.relations import Relations, kin_phrases, resolve_kin

_CLAUSE_BREAK = re.compile(r"[;:.!?]\s|,\s+(?:and|but|then|so)\s|\s+(?:and|but|while|when|then)\s+(?=[a-z])")
# After a description of someone, what says who it is: "… on the trolley is her father", "… is Danny".
_SAME_AS = re.compile(r"[^,;:.]{0,40}?\b(?:is|was)\s+(?:his|her|their|[A-Z][\w'’]*)\b")
# An indefinite person introduced by a relative clause: "a night porter who won't say where he got it".
_SOMEONE_NEW = re.compile(r"\b(?:a|an)\s+(?:[\w-]+\s+){0,3}?[\w-]+\s+who\b")
_TOKEN = re.compile(r"[A-Za-z][A-Za-z'-]*|[.!?;:,]")
_DETERMINER = re.compile(r"\b(the|that|this|a|an)\s+", re.IGNORECASE)
_WORDS = re.compile(r"[A-Za-z][A-Za-z'’-]*")


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
    mods: tuple[str, ...] = ()  # the words before the noun: "the old man" → ("old",)


def find_cues(text: str, masked: Sequence[tuple[int, int]], vocab: Describers) -> list[Cue]:
    """Pronouns and definite descriptions in a beat, outside the spans already matched as names.
    ``vocab``: the bible's nouns for its people and things (what its entries say they *are*)."""
    inside = covered_by(masked)

    def free(pos: int) -> bool:
        return not inside(pos)

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
            if pick is not None and pick + 1 < len(stems) and (stems[pick] in NUMBER_WORDS or stems[pick] in FUNCTION_WORDS):
                continue  # "the two outfits": two of something that is no one in this bible ("the siblings" are people)
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
        if one in GENERIC_PERSONS and _SAME_AS.match(text, spans[-1][1]):
            continue  # "the man on the trolley is her father": the relative, read as such
        cues.append(Cue("noun", "indefinite" if det in ("a", "an") else "noun", noun if noun in GROUP_WORDS else one, offset, count,
                        tuple(stems[:pick])))
    return sorted(cues, key=lambda c: c.pos)


# What an entry *is*: "X is a second-generation lunar miner", "X is the K-Bar's oldest hand".
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


def _points_ahead(text: str, pos: int, name_at: int) -> bool:
    """A possessive before any name points ahead only across an opening phrase, to the subject of the
    clause that follows it ("Her hands shaking, Mara …"); otherwise it points back to the stage."""
    if name_at >= len(text):
        return False
    gap = text[pos:name_at]
    return bool(re.search(r"[,;:—–]\s*$", gap))


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
    ages: Mapping[str, int] | None = None,
    tagged: Mapping[str, Sequence[str]] | None = None,
    bystanders: set[str] | frozenset[str] = frozenset(),
    nouns: Collection[str] = frozenset(),
    subjects: Collection[str] = frozenset(),
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
    # The same people counted, and by pronoun as sorted (position, id): a long beat asks about them per cue.
    counts = Counter(i for i, _ in people_here)
    by_pronoun: dict[str | None, list[tuple[int, str]]] = {}
    for i, p in people_here:
        insort(by_pronoun.setdefault(entries[i].pronouns, []), (p, i))
    stage = _Stage(history, entries, here, depth)
    carried: dict[str, Carry] = {}

    def carry(i: str, cue: str, d: int, pos: int = 10**6) -> None:
        if i not in here and i not in carried:
            carried[i] = Carry(i, cue, d)
            if is_person(entries[i]):
                people_here.append((i, pos))
                counts[i] += 1
                insort(by_pronoun.setdefault(entries[i].pronouns, []), (pos, i))

    owners: dict[str, tuple[str, int]] = {}  # "his stepfather … his real father": one "his" throughout

    def owner(gender: str, pos: int, fits: Callable[[str], bool] | None = None) -> tuple[str, int] | None:
        """Whom a possessive pronoun means: whom the beat's earlier possessive of that gender meant;
        else the nearest person of its gender before it in the beat; else, across an opening phrase,
        the subject after it; else the people on stage in the most recent beat that had one; else the
        first after it. ``fits``: among people on stage equally recently, the one who has the
        relation the phrase names ("her stepmother": the one whose lore gives her one) is meant; it
        never passes over a nearer person."""
        if gender in owners:
            return owners[gender]
        same = by_pronoun.get(gender, [])
        before = bisect_left(same, (pos, ""))  # how many come before pos
        if before:
            found: tuple[str, int] | None = (same[before - 1][1], 0)
        elif same and _points_ahead(text, pos, same[0][0]):
            found = (same[0][1], 0)  # "Her hands shaking, Mara opens the door": Mara
        else:  # "Her stepmother suggests selling Queenie; Lena refuses": whoever was on stage
            # On stage, with those the beat goes on to name ("…; Lena refuses": Lena was on stage too).
            staged = [(i, d) for i, d in stage.order if d <= stage.depth and is_person(entries[i]) and entries[i].pronouns == gender]
            nearest = [c for c in staged if c[1] == staged[0][1]] if staged else []
            found = next((c for c in nearest if fits is None or fits(c[0])), nearest[0] if nearest else None)
            if found is None and same:
                found = (same[0][1], 0)
        if found is not None:
            owners[gender] = found
        return found

    said: dict[tuple[str, str], bool] = {}

    def says(i: str, word: str) -> bool:
        if (i, word) not in said:
            said[i, word] = _says(entries[i], word)
        return said[i, word]

    breaks: list[int] | None = None  # where each clause begins, found once for the beat

    def clause_subject(pos: int) -> int:
        """Where the subject of the pronoun's own clause is named: the first person named after the
        last clause break before it ("Wes storms out; Nell follows him": Nell), or -1."""
        nonlocal breaks
        if breaks is None:
            breaks = [m.end() for m in _CLAUSE_BREAK.finditer(text)]
        k = bisect_right(breaks, pos) - 1
        start = breaks[k] if k >= 0 else 0
        # "… than the last time she let herself look at him": a subject pronoun opens the clause too.
        start = max([start] + [c.pos for c in cues if c.kind in ("he", "she", "they") and c.role in ("subject", "opening") and c.pos < pos])
        return min((p for _, p in people_here if start <= p < pos), default=-1)

    chained: set[str] = set()  # genders already referred to by a subject/possessive pronoun in this beat
    for cue in cues:
        if cue.kind == "kin":
            resolve_kin(cue, owner, relations, entries, carry, refused, [i for i, p in people_here if p < cue.pos])  # type: ignore[arg-type]
            continue
        if cue.kind in ("he", "she") and cue.role != "object" and cue.kind in chained:
            continue  # "He admits he is…": the second "he" is the first one's person
        if cue.kind in ("he", "she") and _SOMEONE_NEW.search(text[max((m.end() for m in re.finditer(r"[.!?;]\s", text[: cue.pos])), default=0) : cue.pos]):
            continue  # "a night porter who won't say where he got it": he is the porter, no one in the bible
        if cue.kind in ("he", "she"):
            if cue.role != "object":
                chained.add(cue.kind)
            same = by_pronoun.get(cue.kind, [])
            before = bisect_left(same, (cue.pos, ""))  # how many of them come before the cue
            resolved = {
                # "He hesitates…" opening the beat points back; "Nora isn't there. She is…": Nora.
                "opening": before > 0,
                "subject": before > 0,
                "possessive": bool(same),
                "reflexive": bool(same),
                # "Jack cuts him off": not Jack, the beat's subject; "the Captain pockets Brisk's
                # bribe and warns her": Brisk, who is not the subject.
                "object": before > 0 and cue.role == "object" and any(p != subject for subject in [clause_subject(cue.pos)] for p, _ in same[:before]),
            }[cue.role]
            if not resolved and cue.role == "opening":
                # "He admits he is the Hermit": the man on stage may be named again in this very beat.
                last = next(((i, d) for i, d in stage.order if d <= stage.depth and is_person(entries[i]) and entries[i].pronouns == cue.kind), None)
                resolved = last is not None and last[0] in here
            if not resolved and (match := next(iter(stage.people(cue.kind)), None)):
                carry(match[0], cue.word, match[1], cue.pos)
        elif cue.kind == "they":
            before_it = [(i, p) for i, p in people_here if p < cue.pos]  # "Delphine tells them the railroad man …": them is not him
            if len(before_it) >= 2 or (before_it and cue.role not in ("opening", "object", "possessive")) \
                    or any(entries[i].pronouns == "they" for i, _ in before_it):
                continue  # "Vask unrolls their charts": Vask's
            singular = [(i, d) for i, d in stage.people("they") if not (d == 1 and i in bystanders)]
            recent = stage.people()
            if singular and recent and singular[0][1] == recent[0][1]:
                carry(singular[0][0], cue.word, singular[0][1])
            elif recent:
                last = recent[0][1]
                group = [(i, d) for i, d in recent if d == last]
                if len(group) > 2 and bystanders:  # "they": those the last beat was about, not the ones it mentioned
                    group = [(i, d) for i, d in group if i not in bystanders] or group
                about = [(i, d) for i, d in group if i in subjects]
                if len(group) > 2 and len(about) >= 2:  # "Marta shows Ida …; Jonas drags Oskar out": Marta and Jonas
                    group = about
                if len(group) >= 2:
                    for i, d in group:
                        carry(i, cue.word, d)
        else:
            _resolve_noun(cue, stage, entries, people_here, here, carry, describers, ages or {}, tagged or {}, counts, says, nouns)
    return list(carried.values())


def _resolve_noun(cue: Cue, stage: _Stage, entries: dict[str, LoreEntry], people_here: list[tuple[str, int]], here: set[str], carry,  # noqa: ANN001
                  describers: Describers, ages: Mapping[str, int], tagged: Mapping[str, Sequence[str]],
                  counts: Counter[str] | None = None, says: Callable[[str, str], bool] | None = None, nouns: Collection[str] = frozenset()) -> None:
    """``counts``: how often each person is in ``people_here``; ``says``: ``_says`` by entry id, remembered;
    ``nouns``: the words the bible's lore uses as nouns (``Parts.nouns``)."""
    counts = counts if counts is not None else Counter(i for i, _ in people_here)
    says = says or (lambda i, word: _says(entries[i], word))
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
        if match and cue.mods and singular(cue.mods[-1]) in nouns and not calls_itself(entries.get(match[0]), cue.mods[-1]):
            match = None  # "the market van": a noun the van's name and defining sentence never use makes it another van
        if match:
            carry(match[0], f"{'a' if cue.role == 'indefinite' else 'the'} {noun}", match[1])
        return
    if cue.role == "indefinite":
        return
    gender = GENDER_OF_NOUN.get(noun)
    need = cue.count
    need -= sum(n for i, n in counts.items() if says(i, noun) or (gender and entries[i].pronouns == gender and cue.count > 1))
    if need <= 0 or (cue.count > 1 and noun not in describers.roles):
        return  # "the divers": a crowd of extras, not the cast
    people = stage.people()
    # Who *is* a monk (alias, or "X is a monk…") beats who merely mentions monks; on stage first,
    # then the bible's only one; looser mentions and bare gender come last.
    found = [(i, d) for i, d in people if _says(entries[i], noun, strict=True, roles=describers.roles)]
    if not found and noun not in GENERIC_PERSONS:
        only = _bible_only(noun, entries, here, describers, people=True)
        found = [(only, 0)] if only else []
    if not found and noun not in describers.roles and noun in tagged:  # "the patient": a tag only people carry
        holders = [i for i in tagged[noun] if i not in here]
        found = [(i, d) for i, d in people if i in holders] or ([(holders[0], 0)] if len(holders) == 1 else [])
    age = next((AGE_WORDS[m] for m in cue.mods if m in AGE_WORDS), None)
    if not found and gender and age is not None:
        found = _by_age(age, gender, people, entries, here, ages)
        if found:
            phrase = f"the {' '.join(cue.mods)} {noun} ({'oldest' if age > 0 else 'youngest'} by the ages the lore gives: {ages[found[0][0]]})"
    if not found and noun in describers.roles:
        found = [(i, d) for i, d in people if _says(entries[i], noun)]
    if not found and gender:
        found = [(i, d) for i, d in people if entries[i].pronouns == gender]
    for i, d in found[:need]:
        carry(i, phrase, d)


def _by_age(age: int, gender: str, people: list[tuple[str, int]], entries: dict[str, LoreEntry], here: set[str],
            ages: Mapping[str, int]) -> list[tuple[str, int]]:
    """"the old man": of the men on stage whose lore gives an age, the oldest; with none on stage, the
    bible's oldest man when he is clearly the oldest (five years or more). ``age`` +1 for old, -1 for young."""
    def pick(pool: list[tuple[str, int]], margin: int) -> list[tuple[str, int]]:
        aged = sorted(((age * ages[i], i, d) for i, d in pool if i in ages and entries[i].pronouns == gender), reverse=True)
        if aged and (len(aged) == 1 and margin == 0 or len(aged) > 1 and aged[0][0] - aged[1][0] >= max(margin, 1)):
            return [(aged[0][1], aged[0][2])]
        return []

    return pick(people, 0) or pick([(i, 0) for i in ages if i in entries and i not in here], 5)
