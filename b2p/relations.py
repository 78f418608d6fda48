"""Who is whose relative, read from the bible's own prose at ingest: "her stepmother" in a beat is
the stepmother the possessor's lore (or the stepmother's) says she is.

A reader's rules, applied to every sentence of every person's entry with the name matcher:

- a kinship noun has a *possessor* (whose relative: "Lenka's", "his", "of Tomas Brandl", "to Nell")
  and a *referent* (who the relative is: the sentence's subject when a copula leads to it — "Lenka is
  Tomas's older sister", "which makes him Josiah's brother-in-law" —, a name in apposition — "her
  cousin, Piet Vey", "Sheriff Lockhart, Adelaide's brother, …" — or a name after "is": "their son is
  Wesley");
- "married"/"widow of" name spouses;
- every fact is kept in both directions ("X is Y's sister" also makes Y X's brother or sister, by Y's
  pronouns), with the entry it was read from; in-laws and step-relations only where stated.

A beat's "her stepmother" is then: resolve "her" (scene.py), look up that person's step-parents of
the noun's gender; exactly one → that entry; several → refused, and said so in ``--explain``.
The table is plain data (``to_data``/``from_data``) saved in the lore index.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from b2p.lexicon import ABSENCE, APPOSITION_ADVERBS, KIN_CONVERSE, KINSHIP, PRONOUN_OF, REMARRIAGE, STOP_WORDS, kin_noun, sentences
from b2p.models import LoreEntry
from b2p.phrases import covered_by

_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*")
# What may stand between a possessor and its kinship noun: "Josiah's second wife", "her late mother".
_MODIFIER = re.compile(r"^(?:\s+(?:[a-z]+(?:-[a-z]+)?|\d+(?:st|nd|rd|th)?))?(?:\s+(?:[a-z]+(?:-[a-z]+)?))?\s*$")
_COPULA = re.compile(r"\b(?:is|was|are|were|becomes|became|remains|remained|makes (?:him|her|them)|made (?:him|her|them))\b")

Find = Callable[[str], list[Any]]  # NameMatcher.find: text → mentions (start, end, text, entry_ids)


class Relations:
    """entry id → [(relation, relative id, source entry id)]: "the relative is the entry's <relation>".

    ``links`` are the facts the lore states (both directions); ``derived`` the ones a reader works out
    from two of them (``_derive``), kept apart so that a view of the bible at a chapter can work them
    out again from the facts true then."""

    def __init__(self, links: dict[str, list[tuple[str, str, str]]], derived: dict[str, list[tuple[str, str, str]]] | None = None) -> None:
        self.links = links
        self.derived = derived or {}

    # -- plain data --------------------------------------------------------------------------------

    def to_data(self) -> dict[str, Any]:
        return {"links": {i: [list(t) for t in ts] for i, ts in self.links.items()},
                "derived": {i: [list(t) for t in ts] for i, ts in self.derived.items()}}

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Relations:
        return cls({i: [tuple(t) for t in ts] for i, ts in data.get("links", {}).items()},  # type: ignore[misc]
                   {i: [tuple(t) for t in ts] for i, ts in data.get("derived", {}).items()})  # type: ignore[misc]

    # -- building (at ingest) ----------------------------------------------------------------------

    @classmethod
    def build(cls, entries: Iterable[LoreEntry], texts: Mapping[str, str], find: Find, is_person: Callable[[LoreEntry], bool]) -> Relations:
        entries = list(entries)
        people = {e.id: e for e in entries if is_person(e)}
        links: dict[str, list[tuple[str, str, str]]] = {}

        def add(rel: str, referent: str, possessor: str, source: str) -> None:
            if referent == possessor or referent not in people or possessor not in people:
                return
            for owner, r, other in ((possessor, rel, referent), (referent, KIN_CONVERSE[rel], possessor)):
                have = links.setdefault(owner, [])
                if all((x[0], x[1]) != (r, other) for x in have):
                    have.append((r, other, source))

        for e in people.values():
            for sentence in sentences(texts.get(e.id) or e.text):
                for rel, referent, possessor in _read_sentence(sentence, e, people, find):
                    add(rel, referent, possessor, e.id)
        return cls(links, derive(links, people, texts))

    # -- asking (per beat) -------------------------------------------------------------------------

    def relatives(self, possessor: str, noun: str, pronouns: Callable[[str], str | None]) -> list[tuple[str, str]]:
        """The entries that are ``possessor``'s ``noun`` ("stepmother"): (entry id, source entry id)."""
        rel, gender = KINSHIP[noun]
        out: list[tuple[str, str]] = []
        for r, other, source in [*self.links.get(possessor, ()), *self.derived.get(possessor, ())]:
            same = r == rel or (rel == "sibling" and r == "half-sibling")  # "her brother" may be a half-brother
            if same and (gender is None or pronouns(other) in (gender, None)) and all(o != other for o, _ in out):
                out.append((other, source))
        return out


# What a reader concludes from two stated facts: (a's R1 is b) and (b's R2 is c) → (a's R is c).
_COMPOSE = {
    ("parent", "child"): "sibling",  # my mother's son is my brother
    ("sibling", "parent"): "parent",  # my brother's mother is mine: only where the lore itself calls them siblings (see derive)
    ("parent", "parent"): "grandparent",
    ("child", "child"): "grandchild",
    ("parent", "sibling"): "uncle",  # my father's sister is my aunt
    ("sibling", "child"): "nephew",
    ("uncle", "child"): "cousin",
    ("spouse", "parent"): "parent-in-law",
    ("spouse", "sibling"): "sibling-in-law",  # my husband's sister
    ("sibling", "spouse"): "sibling-in-law",  # my brother's wife
    ("parent", "half-sibling"): "uncle",  # a half-sibling is kin as a sibling is, but shares only one parent
    ("half-sibling", "child"): "nephew",
    ("spouse", "half-sibling"): "sibling-in-law",
    ("half-sibling", "spouse"): "sibling-in-law",
    ("child", "spouse"): "child-in-law",
    ("parent", "spouse"): "parent",  # my mother's husband: my father, unless the lore says otherwise
}
_ROUNDS = 3  # a grandparent's other grandchild is a cousin after three steps: enough for any family a beat names


def derive(links: Mapping[str, list[tuple[str, str, str]]], people: Mapping[str, LoreEntry], texts: Mapping[str, str]) -> dict[str, list[tuple[str, str, str]]]:
    """Relations the lore implies but does not state, as a reader works them out: "Marta is the
    mother of Jonas and Ivy" makes Jonas Ivy's brother; Jonas married to Clara makes Ivy Clara's
    sister-in-law. Never over a relation already known between the same two people. A sibling's
    parent is one's own only when the lore calls them siblings (not half-siblings, not siblings worked
    out from one shared parent), no parent of that gender is known, and one's own lore does not speak
    of another ("Her mother died when she was born"). A mother's
    husband is the father only while the child has no other father and none of the three entries
    says, of one of them, that a family was made twice (``REMARRIAGE``); then he is a stepfather.
    Each fact in both directions, with the entry the first of its two facts was read from."""
    every = {a: list(ts) for a, ts in links.items()}
    known = {(a, o) for a, ts in every.items() for _, o, _ in ts}
    out: dict[str, list[tuple[str, str, str]]] = {}
    twice: dict[str, bool] = {}

    def remarried(i: str) -> bool:
        if i not in people:
            return False
        if i not in twice:
            e = people[i]
            said = [k.lower() for k in e.keys()] + [w for w in ("he", "she", "his", "her", "they", "their") if PRONOUN_OF.get(w) == e.pronouns]
            twice[i] = any(REMARRIAGE.search(s) and any(re.search(rf"\b{re.escape(k)}\b", s.lower()) for k in said)
                           for s in sentences(texts.get(i) or e.text))
        return twice[i]

    def speaks_of_another(child: str, spouse: str) -> bool:
        """The child's own lore speaks of another mother (or father) than the parent's spouse: one who
        died or left ("Her mother died when she was born"), or one it names ("her father, Abel Wragg")."""
        nouns = [n for n, (r, g) in KINSHIP.items() if r == "parent" and g == people[spouse].pronouns]
        if not nouns:
            return False
        keys = [k.lower() for k in people[spouse].keys()]
        noun = re.compile(rf"\b(?:{'|'.join(nouns)})\b(?!-in-law)(?:,?\s+([A-Z][\w'’-]+))?")
        for sentence in sentences(texts.get(child) or people[child].text):
            for m in noun.finditer(sentence):
                named = m.group(1)
                if named and not any(named.lower() in k.split() for k in keys) and named.lower() not in STOP_WORDS:
                    return True
                near = sentence[max(0, m.start() - 24) : m.end() + 40]  # "her late mother", "her mother died", "never knew his father"
                if ABSENCE.search(near) and not any(k in near.lower() for k in keys):
                    return True
        return False

    for _ in range(_ROUNDS):
        new = []
        for a, ts in list(every.items()):
            for r1, b, src in ts:
                for r2, c, _ in every.get(b, ()):
                    rel = _COMPOSE.get((r1, r2))
                    if rel is None or c == a or (a, c) in known or a not in people or b not in people or c not in people:
                        continue
                    if (r1, r2) == ("sibling", "parent") and (
                            (r1, b, src) not in links.get(a, ())  # stated, not worked out: a shared father does not share a mother
                            or any(r == "parent" and o in people and people[o].pronouns == people[c].pronouns for r, o, _ in every.get(a, ()))
                            or speaks_of_another(a, c)):
                        continue
                    if (r1, r2) == ("parent", "spouse"):
                        same = [o for r, o, _ in every.get(a, ()) if r == "parent" and o in people and people[o].pronouns == people[c].pronouns]
                        made_twice = (same and people[c].pronouns is not None) or any(remarried(i) for i in (a, b, c)) \
                            or speaks_of_another(a, c)
                        rel = "step-parent" if made_twice else "parent"
                    new.append((rel, c, a, src))
                    known |= {(a, c), (c, a)}
        if not new:
            break
        for rel, c, a, src in new:
            for owner, r, other in ((a, rel, c), (c, KIN_CONVERSE[rel], a)):
                every.setdefault(owner, []).append((r, other, src))
                out.setdefault(owner, []).append((r, other, src))
    return out


def _read_sentence(sentence: str, e: LoreEntry, people: Mapping[str, LoreEntry], find: Find) -> list[tuple[str, str, str]]:
    """(relation, referent, possessor) facts one sentence of ``e``'s lore states."""
    mentions = [(m.start, m.end, m.entry_ids[0]) for m in find(sentence) if len(m.entry_ids) == 1 and m.entry_ids[0] in people]
    subject = _subject(sentence, e, mentions)
    facts = []
    for w in _WORD.finditer(sentence):
        noun = kin_noun(w.group().lower().rstrip("'’"))
        if noun is None or w.group()[0].isupper() and w.start() > 0:
            continue  # "Brother Ossian", "Sister Lund": a title, not a relation
        rel = KINSHIP[noun][0]
        s, end = w.start(), w.end()
        possessors, head_start = _possessors(sentence, s, end, e, mentions, people)
        if not possessors:
            continue
        referent = _referent(sentence, head_start, end, e, mentions, subject, possessors)
        if referent is None:
            continue
        facts += [(rel, referent, p) for p in possessors]
    for m in re.finditer(r"\b(?:married|marries|wed|weds|wedded)\b", sentence):
        after = next((x for x in mentions if x[0] >= m.end() and not sentence[m.end() : x[0]].strip(" ,to")), None)
        if after and subject and after[2] != subject:
            facts.append(("spouse", after[2], subject))
    return facts


def _subject(sentence: str, e: LoreEntry, mentions: list[tuple[int, int, str]]) -> str | None:
    """Who the sentence is about: a name that opens it, or a pronoun of the entry that opens it."""
    first = next(iter(mentions), None)
    lead = sentence[: first[0]] if first else sentence
    lead = re.sub(r"^(?:[A-Z][\w.]*\s+)+$", "", lead)  # "Sheriff Ephraim Lockhart, …": a title before the name
    opener = next(iter(_WORD.findall(lead)), "").lower()
    if opener in PRONOUN_OF and PRONOUN_OF[opener] == e.pronouns:
        return e.id
    if first and not _WORD.search(lead):
        return first[2]
    if first is None or re.search(r"\b(?:he|she|they)\b", lead.lower()):
        return e.id if e.pronouns and re.search(rf"\b(?:{'|'.join(w for w, p in PRONOUN_OF.items() if p == e.pronouns)})\b", lead.lower()) else None
    return None


def _possessors(sentence: str, s: int, end: int, e: LoreEntry, mentions: list[tuple[int, int, str]],
                people: Mapping[str, LoreEntry]) -> tuple[list[str], int]:
    """Whose relative the noun at [s, end) names, and where its phrase starts."""
    before = sentence[:s]
    # "Josiah Kettering's second wife", "Silas and Hester Brannock's eldest son"
    prior = [x for x in mentions if x[1] <= s]
    if prior:
        ms, me, i = prior[-1]
        said = sentence[ms:me]
        rest = sentence[me:s]
        if not said.endswith(("'s", "’s", "'", "’")) and rest[:1] in ("'", "’"):
            rest = rest[2:] if rest[1:2] == "s" else rest[1:]
            said += "'s"
        if said.endswith(("'s", "’s", "'", "’")) and _MODIFIER.match(rest):
            got, start = [i], ms
            for ps, pe, pi in reversed(prior[:-1]):  # "Silas and Hester Brannock's": a bare first name
                if re.fullmatch(r"\s*(?:,|,?\s*and)\s*", sentence[pe:start]) and " " not in sentence[ps:pe]:
                    got.insert(0, pi)
                    start = ps
                else:
                    break
            return got, start
    # "his sister", "her late mother", "their son"
    m = re.search(r"\b(his|her|their)\b((?:\s+[a-z]+(?:-[a-z]+)?){0,2})\s*$", before, re.IGNORECASE)
    if m and _MODIFIER.match(m.group(2)):
        who = _pronoun_owner(m.group(1).lower(), m.start(), e, mentions, people)
        return ([who] if who else []), m.start()
    # "the daughter of Silas and Hester Brannock", "stepmother to her son Wesley", "widow of Frank"
    m = re.match(r"\s+(?:of|to)\s+", sentence[end:])
    if m:
        start = end + m.end()
        got = []
        for ms, me, i in mentions:
            if ms < start:
                continue
            gap = sentence[start:ms]
            if gap and not re.fullmatch(r"(?:,?\s*and\s+|,\s*)?(?:the\s+late\s+|the\s+|(?:his|her|their)\s+\w+,?\s+)?", gap):
                break
            if sentence[ms:me].endswith(("'s", "’s")):
                break  # "of Silas and Hester Brannock and Cole Brannock's younger sister"
            got.append(i)
            start = me
        head = re.search(r"\b(?:the|a|an)\s+(?:[a-z-]+\s+){0,2}$", before)
        return got, head.start() if head else s
    return [], s


def _pronoun_owner(word: str, pos: int, e: LoreEntry, mentions: list[tuple[int, int, str]], people: Mapping[str, LoreEntry]) -> str | None:
    """The person a possessive pronoun in ``e``'s lore means: the entry itself when it takes that
    pronoun, else the last person of that gender named before it in the sentence."""
    gender = PRONOUN_OF[word]
    if e.pronouns == gender or word == "their":  # "their son": the entry and whoever it shares him with
        return e.id
    earlier = [i for ms, _, i in mentions if ms < pos and people[i].pronouns == gender]
    return earlier[-1] if earlier else None


def _referent(sentence: str, head_start: int, end: int, e: LoreEntry, mentions: list[tuple[int, int, str]],
              subject: str | None, possessors: list[str]) -> str | None:
    """Who the relative is: a name in apposition after ("her cousin, Piet Vey"), after "is" ("their
    son is Wesley"), in apposition before ("Ephraim, Adelaide's brother, …"), the object of "makes"
    ("which makes Colette her stepmother"), else whoever a copula leads from ("She is the older
    sister of …", "Nell is their daughter", "which makes him …")."""
    for ms, _, i in mentions:
        if ms >= end and i not in possessors:
            if re.fullmatch(r"\s*,?\s*|\s+(?:is|was)\s+", sentence[end:ms]):
                return i
            break
    before = sentence[:head_start]
    prev = [x for x in mentions if x[1] <= head_start]
    last = prev[-1] if prev else None
    if last and last[2] not in possessors:
        gap = sentence[last[1] : head_start]
        # "Sheriff Lockhart, Adelaide's younger brother," / "Colette, now his wife"
        if re.fullmatch(r",\s*(?:[a-z]+\s+)?", gap) and gap.strip(" ,") in APPOSITION_ADVERBS:
            return last[2]
        # "which makes Colette her stepmother and Colette's son Danny Roche her stepbrother"
        made = [c for c in re.finditer(r"\b(?:makes|made|make)\b", before[: last[0]])]
        if not gap.strip() and made and not re.search(r"[,;]", before[made[-1].end() : last[0]]):
            return last[2]
    cop = None
    for c in _COPULA.finditer(before):
        cop = c
    if cop is None:
        return None
    between = before[cop.end() :]
    # The noun must head the copula's complement: "is the older …", "is X's eldest son and …".
    if not re.fullmatch(r"\s*(?:.*\band\s+)?(?:(?:the|a|an)\s+)?(?:[a-z]+(?:-[a-z]+)?\s+){0,2}", between) or re.search(r"[;:]", between):
        return None
    if cop.group().startswith(("makes", "made")):
        return e.id if PRONOUN_OF.get(cop.group().split()[1]) == e.pronouns else None
    ahead = [x for x in mentions if x[1] <= cop.start() and not sentence[x[1] : cop.start()].strip()]
    if ahead:
        return ahead[-1][2]  # "Nell Kettering is their daughter"
    return subject


# -- in a beat -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KinCue:
    """"her stepmother" in a beat: the kinship noun, where it is, and whose relative it names."""

    kind: str  # always "kin": scene.resolve handles it in turn with the other cues
    role: str  # "possessive" (his / her / their) or "name" ("Josiah's")
    word: str  # the kinship noun, singular
    pos: int
    owner: str = ""  # "he"/"she"/"they" for a pronoun; the entry id for a name
    phrase: str = ""


_TOKENS = re.compile(r"[A-Za-z][A-Za-z'’-]*")


def kin_phrases(text: str, masked: Sequence[tuple[int, int]], possessives: Sequence[tuple[str, int, int]]) -> list[KinCue]:
    """"her stepmother", "his real father", "Josiah's brother-in-law": a possessive, up to two modifiers,
    and a kinship noun. The rule a reader uses: a possessive plus a kinship noun names a relative of
    the possessor."""
    out = []

    inside = covered_by(masked)

    def free(pos: int) -> bool:
        return not inside(pos)

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


def resolve_kin(cue: KinCue, owner, relations: Relations, entries: dict[str, LoreEntry], carry,  # noqa: ANN001
                 refused: list[tuple[str, list[str]]] | None, group: Sequence[str] = ()) -> None:
    """Resolve the possessor first (a name, or the pronoun's person), then follow the relation.
    ``group``: the people the beat names before the cue, whom "their" may mean together."""
    if cue.role == "name":
        who, d, said = cue.owner, 0, None
    else:
        if cue.owner == "they":
            _resolve_shared(cue, relations, entries, carry, group)
            return
        found = owner(cue.owner, cue.pos, lambda who: bool(relations.relatives(who, cue.word, lambda i: entries[i].pronouns if i in entries else None)))
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


def _resolve_shared(cue: KinCue, relations: Relations, entries: dict[str, LoreEntry], carry, group: Sequence[str]) -> None:  # noqa: ANN001
    """"Marta and Hedda … their brother": the one relative all the people the beat has named share;
    with fewer than two, or none or several in common, no one can say whose."""
    group = list(dict.fromkeys(i for i in group if i in entries))
    if len(group) < 2:
        return
    found: list[dict[str, str]] = []
    for who in group:
        fits = relations.relatives(who, cue.word, lambda i: entries[i].pronouns if i in entries else None)
        found.append({i: src for i, src in fits if i in entries and i not in group})
    common = set(found[0]).intersection(*found[1:])
    if len(common) == 1:
        i = common.pop()
        names = " and ".join(entries[w].name for w in group)
        carry(i, f"{cue.phrase} (their = {names}; {cue.word}, from {entries[found[0][i]].name}'s entry)", 0, cue.pos)
