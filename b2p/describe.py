"""People described, not named: "the lanky doctor with the fair beard", "a railroad agent", "the
doctor from Halyard", "the preacher at the Methodist chapel".

A reader matches a description to the one person whose lore it fits. The rule b2p uses: a noun
phrase whose head is a person noun (the bible's roles, or "man", "girl"…) and that carries
descriptive words — its modifiers, and a qualifier after it ("with …", "from …", "of …", "at …",
"who …") — is scored against every person:

- each descriptive word the person's lore uses, and few other people's lore does, counts (a word
  only one person's lore has counts 1, shared by two ½, …: "lanky", "fair beard", "white-bearded");
- a name in the description that the person's defining sentence names counts 1 ("from Halyard",
  "a railroad man" for the railroad's agent);
- the head noun counts ½ when the person *is* one (alias, defining sentence, tag: "doctor"), or
  when their lore, and few others', uses it or its verb ("preaches" for "the preacher");
- being on stage counts ¼.

The best person is taken when it scores at least 1, with evidence from the description itself,
and at least 1.5 times the next; otherwise nobody (two that fit equally are refused). The words
each person's lore uses rarely and the names its defining sentence gives are read at ingest
(plain data in the lore index).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from b2p.lexicon import (
    CLAUSE_BREAKS,
    FUNCTION_WORDS,
    GENDER_OF_NOUN,
    GENERIC_PERSONS,
    GROUP_WORDS,
    NUMBER_WORDS,
    PREPOSITIONS,
    sentences,
    singular,
    stem,
)
from b2p.models import LoreEntry

Find = Callable[[str], list[Any]]
RARE = 3  # a word in the lore of at most this many people describes them
_WORD = re.compile(r"[A-Za-z][a-z]+")
_QUALIFIER = re.compile(r"\s+(with|from|of|at|in|on|who|whose|wearing|holding)\s+")
_STOP = FUNCTION_WORDS | PREPOSITIONS | CLAUSE_BREAKS


_UNITS = "one two three four five six seven eight nine".split()
_TENS_WORDS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
_AGE = re.compile(r"(?:[,:]\s*|\bis\s+|\baged\s+|\bat\s+)((?:%s)(?:-(?:%s))?|\d{2})(?=\s*[,.;]|\s+years?\s+old|\s+(?:the|and|he|she|they)\b)" % ("|".join(_TENS_WORDS), "|".join(_UNITS)))


def lore_age(text: str) -> int | None:
    """The age a person's lore opens with: "Declan Vance is Nora Vance's father: seventy-three, …" → 73."""
    m = _AGE.search(text)
    if m is None:
        return None
    said = m.group(1)
    if said.isdigit():
        return int(said)
    tens, _, unit = said.partition("-")
    return 10 * (_TENS_WORDS.index(tens) + 2) + (_UNITS.index(unit) + 1 if unit else 0)


def _stems(text: str) -> set[str]:
    return {stem(w) for w in _WORD.findall(text) if w.lower() not in _STOP and len(w) > 2}


class Descriptions:
    """``rare``: stem → the people whose lore uses it (at most ``RARE``); ``links``: person → the
    entries its defining sentence names."""

    def __init__(self, rare: dict[str, list[str]], links: dict[str, list[str]], tagged: dict[str, list[str]] | None = None,
                 ages: dict[str, int] | None = None, link_words: dict[str, list[str]] | None = None) -> None:
        self.rare = rare
        self.links = links
        self.link_words = link_words or {}  # a word a linked entry goes by ("railroad") → the people linked to it
        self._linked_to: dict[str, list[str]] | None = None
        self.tagged = tagged or {}  # a tag only people carry is a noun for them ("doctor"): tag → people
        self.ages = ages or {}  # the age a person's lore opens with ("…, seventy-three, a retired pilot")

    def to_data(self) -> dict[str, Any]:
        return {"rare": self.rare, "links": self.links, "tagged": self.tagged, "ages": self.ages, "link_words": self.link_words}

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Descriptions:
        return cls(dict(data.get("rare", {})), dict(data.get("links", {})), dict(data.get("tagged", {})), dict(data.get("ages", {})),
                   dict(data.get("link_words", {})))

    def linked_to(self, entry_id: str) -> list[str]:
        """The people whose defining sentence names this entry."""
        if self._linked_to is None:
            self._linked_to = {}
            for i, linked in self.links.items():
                for x in linked:
                    self._linked_to.setdefault(x, []).append(i)
        return self._linked_to.get(entry_id, [])

    @classmethod
    def build(cls, entries: Iterable[LoreEntry], texts: Mapping[str, str], find: Find, is_person: Callable[[LoreEntry], bool]) -> Descriptions:
        entries = list(entries)
        people = [e for e in entries if is_person(e) and not e.always]
        users: dict[str, list[str]] = {}
        links: dict[str, list[str]] = {}
        ages: dict[str, int] = {}
        for e in people:
            text = texts.get(e.id) or e.text
            for s in _stems(text):
                users.setdefault(s, []).append(e.id)
            first = next(iter(sentences(text)), "")
            age = lore_age(" ".join(sentences(text)[:2]))
            if age is not None:
                ages[e.id] = age
            linked = [i for m in find(first) if len(m.entry_ids) == 1 for i in m.entry_ids if i != e.id]
            if linked:
                links[e.id] = sorted(set(linked))
        rare = {s: sorted(ids) for s, ids in users.items() if len(ids) <= RARE}
        thing_tags = {t.lower() for e in entries if not is_person(e) for t in e.tags}
        tagged: dict[str, list[str]] = {}
        for e in people:
            for t in e.tags:
                if t.isalpha() and t.lower() not in thing_tags:
                    tagged.setdefault(t.lower(), []).append(e.id)
        keys = {e.id: e.keys() for e in entries}
        link_words: dict[str, set[str]] = {}
        for i, linked in links.items():
            for x in linked:
                for k in keys.get(x, ()):
                    if " " not in k.removeprefix("the ").removeprefix("The "):  # "the railroad", "Halyard": one word
                        link_words.setdefault(k.lower().removeprefix("the "), set()).add(i)
        return cls(rare, links, tagged, ages, {w: sorted(ids) for w, ids in link_words.items()})


def describe(
    text: str,
    mentions: Sequence[tuple[int, int, tuple[str, ...]]],
    here: set[str],
    stage: Mapping[str, int],
    entries: Mapping[str, LoreEntry],
    table: Descriptions,
    role_of: Callable[[str], set[str] | None],
    people_nouns: frozenset[str] | set[str],
    keys_of: Callable[[str], Iterable[str]],
    blocked: list[tuple[int, int]] | None = None,
) -> list[tuple[str, int, int, str]]:
    """The people the beat describes: (entry id, start, end of the description, cue). ``blocked``
    receives the spans of role phrases whose description fits none of the role's holders."""
    from b2p.phrases import Phrase, noun_phrases

    blocked = [] if blocked is None else blocked
    out: list[tuple[str, int, int, str]] = []
    taken = set(here)
    phrases = noun_phrases(text, mentions, beat=True)
    for s, e, ids in mentions:  # "the railroad man": a name, then a person noun — someone of that name's
        m = re.match(r"\s+([a-z]+)\b", text[e:])
        if m and singular(m.group(1)) in GENERIC_PERSONS and not text[s:e].endswith(("'s", "’s")):
            phrases.append(Phrase(e + m.start(1), e + m.end(1), "", (m.group(1),), at=s, named=tuple(ids)))
    for p in phrases:
        if p.owner is not None or p.det in ("his", "her", "their", "its"):
            continue
        head = singular(p.words[-1].lower())
        if (head not in people_nouns and head not in table.tagged) or p.words[-1][:1].isupper():
            continue
        mods = [w for w in p.words[:-1] if w.lower() not in GROUP_WORDS and w.lower() not in NUMBER_WORDS]
        end = p.end
        qual = _QUALIFIER.match(text, p.end)
        words = list(mods)
        named: set[str] = set(p.named)
        if qual:
            stop = re.search(r"[,;:.!?—]", text[qual.end() :])
            end = qual.end() + (stop.start() if stop else len(text) - qual.end())
            if qual.group(1) not in ("who", "whose"):  # "at the Methodist chapel", not "… chapel takes Naboth's vineyard"
                after = [x for x in noun_phrases(text[qual.end() : end], [(a - qual.end(), b - qual.end(), i) for a, b, i in mentions
                                                                           if qual.end() <= a and b <= end], beat=True) if x.at == 0 or x.start == 0]
                names = [b for a, b, _ in mentions if a == qual.end()]
                end = qual.end() + after[0].end if after else names[0] if names else end
            cut = list(_WORD.finditer(text, qual.end(), end))
            if len(cut) > 6:
                end = cut[5].end()
            words += _WORD.findall(text[qual.end() : end])
            named = {i for s, e, ids in mentions if qual.end() <= s < end for i in ids}
        if not words and not named:
            continue  # "the old man" with nothing else: the scene's business
        if p.words[-1].endswith("s") and head != p.words[-1].lower():
            continue  # "two preachers": several people, not one description
        gender = GENDER_OF_NOUN.get(head)
        stems = {stem(x) for w in words for x in _WORD.findall(w) if x.lower() not in _STOP and len(x) > 2}  # "one-armed" → arm
        scores: dict[str, float] = {}
        why: dict[str, list[str]] = {}

        def add(i: str, v: float, because: str) -> None:
            if i in entries and i not in taken and (gender is None or entries[i].pronouns in (gender, None)):
                scores[i] = scores.get(i, 0.0) + v
                why.setdefault(i, []).append(because)

        for s in stems:
            users = table.rare.get(s, ())
            for i in users:
                add(i, 1.0 / len(users), s)
        linked_by = {i for x in named for i in table.linked_to(x)}
        for i in linked_by:
            add(i, 1.0, "named with it")
        for w in mods:
            for i in table.link_words.get(w.lower(), ()):
                if i not in linked_by:
                    add(i, 1.0, f"its {w}")
        evidence = dict(scores)
        holders: set[str] = set()
        if head not in GENERIC_PERSONS:
            # The head noun: a person who *is* one (alias, defining sentence, tag), or whose lore rarely
            # uses its stem ("preaches" for "preacher").
            doers = {stem(head), stem(head.removesuffix("er"))} if head.endswith("er") else {stem(head)}  # a preacher preaches
            holders = (role_of(head) or set()) | set(table.tagged.get(head, ())) | {i for d in doers for i in table.rare.get(d, ())}
            for i in holders:
                add(i, 0.5, head)
            described = {i for s in stems for i in table.rare.get(s, ())}
            if described and holders and not described & holders:
                blocked.append((p.start, end))  # "the anaesthetic lead": not the due-diligence lead, whoever it is
        for i in list(scores):
            if i in stage and i in evidence:  # the stage breaks ties between descriptions that fit
                scores[i] += 0.25
        ranked = sorted(scores.items(), key=lambda kv: -kv[1])
        if not ranked:
            continue
        best, score = ranked[0]
        second = ranked[1][1] if len(ranked) > 1 else 0.0
        if score >= 1.0 and best in evidence and score >= 1.5 * second:
            taken.add(best)
            said = text[p.at if p.at >= 0 else p.start : end]
            out.append((best, p.start, end, f"{said} (described: {', '.join(why[best])})"))
        elif len([i for i in evidence if i in holders]) > 1 or (holders and evidence and score < 1.5 * second):
            blocked.append((p.start, end))  # two people fit the description: b2p does not guess
    return out
