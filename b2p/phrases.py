"""Noun phrases as a reader finds them, in beats and in lore: "the only coach", "Josiah's saddle
scabbard", "Schedule C", "bed nine"; and the heads of what a defining sentence says its subject
*is* ("the driver, the whip, of …" → driver, whip). Used by ``parts`` (things) and ``describe``
(people); ``nouns`` reads people's roles with ``is_heads``.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import accumulate

from b2p.lexicon import (
    CLAUSE_BREAKS,
    FUNCTION_WORDS,
    NP_MODIFIERS,
    NUMBER_WORDS,
    PHRASE_ENDERS,
    PREPOSITIONS,
    singular,
)

_TOKEN = re.compile(r"[A-Za-z][A-Za-z'’-]*|\d+[a-z]*|[^\sA-Za-z\d]")
DETERMINERS = frozenset({"the", "a", "an", "its", "this", "that", "his", "her", "their"})
STOPS = FUNCTION_WORDS | PREPOSITIONS | CLAUSE_BREAKS | PHRASE_ENDERS
_COPULA = re.compile(r"\b(?:is|was|are|were)\s+")


@dataclass(frozen=True)
class Phrase:
    """A noun phrase: where it is, what opens it ('' for none), its words, the entry a possessive
    name before it ties it to, if any, and whether it is a term ("Schedule C", "bed nine")."""

    start: int
    end: int
    det: str
    words: tuple[str, ...]
    owner: str | None = None
    term: bool = False
    at: int = -1  # where its opener (determiner or possessive) starts
    named: tuple[str, ...] = ()  # entries a name right before it gives ("the railroad man")
    def keys(self) -> list[str]:
        """What the phrase is looked up by, most specific first: its last two words, then its head
        (a term: itself, then its word: "Resus Two" → "resus two", "resus")."""
        words = [norm(w) for w in self.words]
        if self.term:
            return [f"{words[0]} {words[1]}", words[0]]
        out = []
        if len(words) >= 2:
            out.append(f"{words[-2]} {words[-1]}")
        out.append(words[-1])
        return out

    @property
    def compound(self) -> bool:
        """A term, a phrase in capitals ("the Skerries") or a compound of lower-case words ("the fire escape")."""
        if self.term or (len(self.words) == 1 and self.words[0][:1].isupper()):
            return True
        return len(self.words) >= 2 and self.words[-2].islower() and self.words[-1].islower()



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

def norm(word: str) -> str:
    w = word.lower().replace("’", "'")
    if w.endswith("'s"):
        w = w[:-2]
    return singular(w.rstrip("'"))


# In lore, "that" is mostly relative and "to" mostly opens a verb ("tried to whip up the mules").
_LORE_OPENERS = (DETERMINERS - {"this", "that"}) | (PREPOSITIONS - {"to"}) | {"and", "or"}


def noun_phrases(text: str, mentions: Sequence[tuple[int, int, tuple[str, ...]]] = (), beat: bool = False) -> list[Phrase]:
    """Noun phrases of a text: up to four words after a determiner or a possessive ("Josiah's saddle
    scabbard", "tonight's eastbound coach"), cut at a function word, a preposition, punctuation or a
    name. In lore, a preposition or "and" opens one too ("of heavy rag paper", "and fire escapes").
    In a beat, a trailing "-s" word after a noun is the verb ("the deed says"). ``mentions``:
    (start, end, entry ids) of the names in the text."""
    tokens = list(_TOKEN.finditer(text))
    named = {s: (e, ids) for s, e, ids in mentions}
    openers = DETERMINERS if beat else _LORE_OPENERS
    out: list[Phrase] = []
    n = 0
    while n < len(tokens):
        t = tokens[n]
        low = t.group().lower()
        det, owner, after, at = None, None, t.end(), t.start()
        if t.start() in named:
            end, ids = named[t.start()]
            n = next((k for k in range(n, len(tokens)) if tokens[k].start() >= end), len(tokens))
            if text[t.start() : end].endswith(("'s", "’s", "'", "’")):
                det, owner, after = text[t.start() : end], (ids[0] if len(ids) == 1 else None), end
            else:
                continue
        elif low in openers or low.endswith(("'s", "’s")):
            det, n = low, n + 1
        else:
            n += 1
            continue
        words: list[re.Match[str]] = []
        while n < len(tokens) and len(words) < 4:
            w = tokens[n]
            if text[after : w.start()].strip() or not w.group()[0].isalnum() or w.start() in named:
                break
            if w.group().lower() in NP_MODIFIERS:
                after, n = w.end(), n + 1
                continue  # "the only coach"
            if w.group().lower() in STOPS:
                break
            after = w.end()
            if w.group().endswith(("'s", "’s")):
                break  # "the pilot's watch": the possessive opens the next phrase
            words.append(w)
            n += 1
        if words:
            # "the deed says", "the bottling room opens": a noun, then its verb. A beat is cut there;
            # lore keeps both readings ("the fire escapes" may be a plural).
            verb = next((i for i in range(1, len(words)) if words[i].group().endswith("s") and words[i].group().islower()
                         and not words[i - 1].group().endswith("s")), None)
            if verb and not beat:
                out.append(Phrase(words[0].start(), words[verb - 1].end(), det, tuple(w.group() for w in words[:verb]), owner, at=at))
            elif verb:
                words = words[:verb]
            if len(words) > 1 and re.search(r"[^e]ed$|ing$", words[-1].group()) and len(words[-1].group()) > 5 and words[-1].group().islower():
                words.pop()  # "the artifact uncovered", "an inlet lying below"
            out.append(Phrase(words[0].start(), words[-1].end(), det, tuple(w.group() for w in words), owner, at=at))
    return out


def capitalised_terms(text: str, masked: Sequence[tuple[int, int]] = (), beat: bool = False) -> list[Phrase]:
    """"Schedule C", "Bed nine", "Resus Two": a word and a number or a letter, without a determiner.
    In lore the word has its capital; a beat may write it in lower case ("bed nine")."""
    out = []
    inside = covered_by(masked)
    for m in re.finditer(r"\b([A-Za-z][a-z]+)\s+(?=([A-Z]\b|\d+\b|[A-Za-z]+\b))", text):
        if inside(m.start()) or not (beat or m.group(1)[0].isupper()):
            continue
        first, tail = m.group(1), m.group(2)
        if tail.lower() in NUMBER_WORDS or tail.isdigit() or (len(tail) == 1 and tail.isupper()):
            if first.lower() in STOPS or first.lower() in DETERMINERS or first.lower() in NUMBER_WORDS:
                continue
            out.append(Phrase(m.start(), m.end() + len(tail), "", (first, tail), term=True, at=m.start()))
    return out


def is_heads(first: str, mentions: Sequence[tuple[int, int, tuple[str, ...]]] = (), event: bool = False, person: bool = False) -> set[str]:
    """What a defining sentence says its subject is: the heads of the complement's first noun phrase
    and of the appositions after it ("the spring at …, the only reliable sweet water …" → spring,
    water); for an event, also what it befell ("the sinking of the Inishcarra ferry" → ferry).
    For a ``person``, an apposition counts only right after a noun ("the driver, the whip, of …"):
    after a name it is the name's ("the proprietress of the Gilded Elk, the saloon on …")."""
    cop = _COPULA.search(first)
    if cop is None:
        return set()
    out = set()
    # Appositions follow a comma or a dash ("…, the only coach …", "…, and the ground …"); a bare "and"
    # may open a new clause ("… and the river carried him").
    seps = [m for m in re.finditer(r",\s*(?:and\s+)?|\s+[—–]\s+", first) if m.start() >= cop.end()]
    starts = [cop.end()] + [m.end() for m in seps]
    ends = [m.start() for m in seps] + [len(first)]
    for n, (a, b) in enumerate(zip(starts, ends, strict=False)):
        seg = first[a:b]
        phrases = noun_phrases(seg, [(s - a, e - a, ids) for s, e, ids in mentions if a <= s and e <= b])
        if not phrases or seg[: phrases[0].at].strip():
            if n == 0 and (m := re.match(r"([a-z][\w-]*)\s+of\b", seg)):  # "is chair of …": a role without an article
                out.add(norm(m.group(1)))
            continue
        p = phrases[0]
        k = 0
        while k + 1 < len(phrases) and re.fullmatch(r"\s+(?:and|or)\s+", seg[p.end : phrases[k + 1].start]):
            k += 1  # "a trauma and vascular surgeon": the noun comes after the coordination
            p = phrases[k]
        if person and n > 0 and not re.search(r"\b[a-z][\w-]*$", first[starts[n - 1] : ends[n - 1]]):
            break
        if any(w[:1].islower() for w in p.words) or p.det in ("a", "an"):  # "the Union Pacific" is a name, "a Sharps …" a make
            out.add(head(p))
        if event and n == 0 and len(phrases) > 1 and re.fullmatch(r"\s+of\s+", seg[p.end : phrases[1].at]):
            out.add(head(phrases[1]))
    return {h for h in out if h}


def head(p: Phrase) -> str:
    """The head noun: the last lower-case word; a phrase all in capitals is a name ("a Sharps New Model 1859" → sharps)."""
    low = [w for w in p.words if w[:1].islower()]
    if low:
        return norm(low[-1])
    return norm(p.words[0])
