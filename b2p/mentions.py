"""How a beat uses what it mentions, read as a reader reads it: a lower-case description that is
only part of a longer phrase is not the entry; a possessor or someone in a "because" clause is
mentioned, not present; the stage keeps the order in which the beat mentions people.
"""

from __future__ import annotations

import re

from b2p.lexicon import STOP_WORDS
from b2p.matcher import Mention
from b2p.models import LorePick

_VERBISH = re.compile(r"(?:s|ed|ing)$")
_TWO_NOUNS = re.compile(r"\s+([a-z][a-z-]+)\s+([a-z][a-z-]+)(?=\s*[,.;:!?—]|\s*$|\s+(?:%s)\b)" % "|".join(sorted(STOP_WORDS)))


def part_of_a_phrase(m: Mention, beat: str) -> bool:
    """A lower-case description ("the spring", "the board") that is not the entry, as a reader sees:
    followed by two more nouns it only modifies ("the spring tally book: …"), or naming again a thing
    the beat has just called by a compound ending in it ("the theatre whiteboard … the top of the board")."""
    said = beat[m.start : m.end]
    if not said.startswith(("the ", "The ")) or said[4:] != said[4:].lower():
        return False
    nxt = _TWO_NOUNS.match(beat, m.end)
    if nxt and not any(w in STOP_WORDS or _VERBISH.search(w) for w in nxt.groups()):
        return True
    word = re.sub(r"['’]s?$", "", said[4:].split()[-1])
    return len(word) >= 3 and bool(re.search(rf"\b[a-z]+{re.escape(word)}\b", beat[: m.start]))


_SUBORDINATE = re.compile(r"\b(?:because|although|though|since|whether|if|unless)\b[^;:.]*$", re.IGNORECASE)


def bystanders(beat: str, picks: list[LorePick]) -> set[str]:
    """People a beat mentions without being about them: a possessor of something ("his mother's key")
    or someone in a clause that gives a reason ("because Cole swore …"). 'They' in the next beat is
    the others."""
    out = set()
    for p in picks:
        said = (p.match or "").split(" (")[0]
        at = beat.find(said) if said else -1
        if at < 0:
            continue
        owns = said.endswith(("'s", "’s")) or re.match(r"['’]s\b", beat[at + len(said) :])  # "Wes's hands", "his mother's key"
        if owns or _SUBORDINATE.search(beat[:at]):
            out.add(p.id)
    return out


def position(beat: str, pick: LorePick) -> int:
    """Where in the beat a pick was found (its match), for the order of the stage; unknown ones last."""
    said = (pick.match or "").split(" (")[0].lower()
    at = beat.lower().find(said) if said and pick.reason in ("named", "scene", "model") else -1
    return at if at >= 0 else 10**6


# Where a clause begins: the beat's start, a stop or a semicolon, ", and" / "; then" …; an opening phrase
# set off by a comma ("Later,", "At the farm,") is passed over.
_CLAUSE_START = re.compile(r"(?:^|[.;:!?—]\s*|,\s+(?:and|but|while|then|so)\s+|\s+(?:and|but|while|then)\s+(?=[A-Z]))"
                           r"(?:[A-Z][\w'’-]*(?:\s+[\w'’-]+){0,4},\s+)?$")
_JOINED = re.compile(r"(?:,\s*|\s+(?:and|&)\s+|,\s+and\s+)$")  # "Nell and Wes", "Nell, Wes and Ada"


def subjects(beat: str, picks: list[LorePick]) -> set[str]:
    """The people a beat is about: those it names as the subject of a clause ("Marta shows Ida …;
    Jonas drags Oskar out" → Marta, Jonas), with the names joined to them ("Nell and Wes
    ride …"). 'They' in the next beat, when the beat mentioned more, means them."""
    found: list[tuple[int, int, str]] = []
    for p in picks:
        said = (p.match or "").split(" (")[0]
        m = re.search(rf"(?<![\w'’]){re.escape(said)}(?![\w'’])", beat) if said else None
        if m is not None:
            found.append((m.start(), m.end(), p.id))
    found.sort()
    out: set[str] = set()
    last_end = -1
    for start, end, i in found:
        opens = _CLAUSE_START.search(beat, max(0, start - 120), start) is not None  # the clause's opening words only
        joined = last_end >= 0 and _JOINED.fullmatch(beat, last_end, start) is not None
        if opens or joined:
            out.add(i)
            last_end = end
        else:
            last_end = -1
    return out
