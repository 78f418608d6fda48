"""What the bible's entries *are*, read from their own lore: pronouns, whether an entry is a person
or an item, and the nouns that describe each one ("the copyist", "the rifle").

An entry's defining first sentence says what it is ("Quill is an old copyist…", "X is Josiah's
rifle", "…, a smooth oval stone"); its descriptive aliases and tags say more. The ``Describers``
tables turn that into word → entry lookups, built once per bible at ingest, so "the bible's only
monk" costs the same at 10 entries or 10k.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from b2p.lexicon import (
    CLAUSE_BREAKS,
    EVENT_KINDS,
    GENDER_OF_NOUN,
    GENDERED,
    HONORIFICS,
    GENERIC_PERSONS,
    GROUP_KINDS,
    ITEM_KINDS,
    NOTE_KINDS,
    PERSON_KINDS,
    PLACE_KINDS,
    PREPOSITIONS,
    PRONOUN_OF,
    PRONOUNS,
    VAGUE_THINGS,
    sentences,
)
from b2p.models import LoreEntry


def infer_pronouns(text: str, name: str = "") -> str | None:
    """he / she / they from how an entry's lore refers to its subject; None when it is unclear.

    Every pronoun is a vote; one that opens a sentence ("She keeps the books.") is what the notes
    say of their subject and counts twice; so does a gendered noun in the defining sentence
    ("X is a widow of sixty", "X is Marta's son") or a gendered title in the name ("Lady Honoria").
    Two votes are needed, and twice as many as every other pronoun's together."""
    counts = {p: 0 for p in PRONOUNS}
    for w in re.findall(r"[a-z]+", text.lower()):
        if w in PRONOUN_OF:
            counts[PRONOUN_OF[w]] += 1
    said = sentences(text)
    for sentence in said:
        first = re.match(r"[\W_]*([A-Za-z]+)", sentence)
        if first and first.group(1).lower() in ("he", "she", "they"):
            counts[first.group(1).lower()] += 1
    copula = re.search(r"\b(?:is|was)\b", said[0]) if said else None  # "X is Marta's son", "X is …, a fussy man"
    clause = re.split(r"[;:]", said[0][copula.end() :])[0] if copula else ""
    nouns = _subject_nouns(clause)
    title = HONORIFICS.get(name.split()[0].lower().rstrip(".")) if name.split() else None
    gender = next((GENDER_OF_NOUN[w] for w in nouns if w in GENDER_OF_NOUN), title)
    if gender:
        counts[gender] += 2
    best = max(counts, key=counts.__getitem__)
    rest = sum(counts.values()) - counts[best]
    if counts[best] >= 2 and counts[best] >= 2 * rest:
        return best
    return None


_NOT_THE_SUBJECTS = frozenset({"his", "her", "their", "its", "my", "our", "your"}) | PREPOSITIONS


def _subject_nouns(clause: str) -> list[str]:
    """The words of a defining sentence's complement that may say what its subject is: "Marta's son",
    "the notary, a fussy man", "born in Leeds, a miner's son". A phrase after a possessive pronoun or
    a preposition is someone or something else ("loyal to her father", "raised by her grandfather"),
    up to the next comma; so is an apposition with "the" after it ("her father, the old king")."""
    out, skipping, after_comma, skipped = [], False, False, False
    for w in re.findall(r"[a-z]+|,", clause.lower()):
        if w == ",":
            skipping, after_comma, skipped = False, True, skipping
            continue
        if after_comma and w == "the" and skipped:
            skipping = True  # "her father, the old king": the skipped phrase's apposition
        after_comma = False
        if w in _NOT_THE_SUBJECTS:
            skipping = True
        elif not skipping:
            out.append(w)
    return out


def entry_pronouns(e: LoreEntry) -> str | None:
    """The pronouns an entry takes, read at ingest: any entry that is not a thing (a place, item,
    group or event) may be a person — whatever its kind is called ("cast", "npc", an imported "lore")."""
    return None if e.kind in _THINGS else infer_pronouns(e.text, e.name)


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


_IS_A = re.compile(
    r"\b(?:is|was|works as|serves as)\s+(?:(a|an|the|his|her|their|its)\s+)?((?:[A-Z][\w.-]*\s+){0,3}[A-Z][\w.-]*['’]s?\s+)?"
    r"((?:[A-Za-z][\w-]*\s+){0,5}[A-Za-z][\w-]*)"
)
# A noun phrase in a defining sentence: a determiner, up to three modifiers, and the noun that ends it.
_NOUN_PHRASE = re.compile(r"\b(?:a|an|the)\s+((?:[A-Za-z][\w-]*\s+){0,3}[A-Za-z][\w-]*)")
_RELATIVE = CLAUSE_BREAKS | PREPOSITIONS
_POSSESSED = re.compile(r"['’]s?\s+((?:[a-z][\w-]*\s+){0,3}[a-z][\w-]*)")  # what a possessive owns: "'s younger brother"


def _head(phrase: str, after: str, lists: bool = False) -> str | None:
    """The noun that ends a phrase: cut at the first relative word or preposition; a phrase that runs
    on with no break has no head we can be sure of. A trailing participle is not the head ("the
    artifact uncovered by" → artifact)."""
    words = phrase.split()
    kept: list[str] = []
    for n, w in enumerate(words):
        if w.lower() in ("and", "or") and kept and (words[n + 1] if n + 1 < len(words) else after.lstrip())[:1].isupper():
            break  # "eldest son and Ada Brenn's brother": a name opens the next phrase; the head came before
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
            phrase, after = m.group(3), first_sentence[m.end(3) :]
            while pos := _POSSESSED.match(after):
                # "the ferry's bookkeeper", "Mara Quist's younger brother": the word before "'s" owns the head, it is not it;
                # what came before a coordination is a head of its own ("X's second wife and the ferry's bookkeeper").
                before = re.split(r"\s+(?:and|or)\s+", phrase)
                if len(before) > 1 and before[-2].split()[-1].islower() and (h := _head(" ".join(before[:-1]), ".", lists=True)):
                    heads.append(h)
                phrase, after = pos.group(1), after[pos.end() :]
            h = _head(phrase, after, lists=True)  # "is a copyist, book-restorer and …"
            if h:
                heads.append(h)
    from b2p.phrases import is_heads  # appositions and roles without an article: "the driver, the whip, of …", "is chair of …"

    return heads + sorted(is_heads(first_sentence, person=True) - set(heads))


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


def calls_itself(e: LoreEntry | None, word: str) -> bool:
    """Does the entry's name, an alias or its defining sentence use this word? "the estate van" is the
    thing whose lore says "the estate's delivery van"; "the lake shore" is no shore whose lore never says lake."""
    if e is None:
        return False
    said = " ".join([*e.keys(), _first_sentence(e.lead or e.text)])
    return re.search(rf"\b{re.escape(word)}", said, re.IGNORECASE) is not None


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

    # -- plain data, for the lore index (JSON: no pickle) ----------------------------------------

    def to_data(self) -> dict[str, dict[str, list[str]] | list[str]]:
        """Every word table (word → entry ids) and word set, as JSON-able dicts and lists."""
        return {name: {w: sorted(ids) for w, ids in v.items()} if isinstance(v, dict) else sorted(v) for name, v in vars(self).items()}

    @classmethod
    def from_data(cls, data: dict[str, dict[str, list[str]] | list[str]]) -> Describers:
        self = cls.__new__(cls)
        for name, v in data.items():
            setattr(self, name, {w: set(ids) for w, ids in v.items()} if isinstance(v, dict) else frozenset(v))
        return self


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
