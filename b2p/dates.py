"""Dates a text names an event by: a year ("1868", "2011", "sixty-eight") or a month ("January").

A reader who meets "whether it is to be sixty-eight all over again" thinks of the war the bible
calls "the war of sixty-eight"; "since January", of the one event whose defining sentence happened
in January. ``parts.Parts`` keeps, per date, the events whose name or alias gives it and those whose
defining sentence does; a number that counts ("sixty-four pages") is no date.
"""

from __future__ import annotations

import re

from b2p.lexicon import FUNCTION_WORDS, MONTHS, PREPOSITIONS

_STOPS = FUNCTION_WORDS | PREPOSITIONS
_TENS = "twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety"
_DATE = re.compile(rf"\b(?:1[0-9]{{3}}|20[0-9]{{2}}|(?:{_TENS})-(?:one|two|three|four|five|six|seven|eight|nine)|[A-Z][a-z]+)\b", re.IGNORECASE)


def dates(text: str, beat: bool = False) -> list[tuple[int, int, str]]:
    """Dates a text gives an event by: a year ("1868", "2011", "sixty-eight") or a month ("January").
    In a beat, a year right before a noun counts it ("sixty-four pages") and a month needs its capital."""
    out = []
    for m in _DATE.finditer(text):
        w = m.group().lower()
        if w.isalpha() and w not in MONTHS:
            continue
        if w in MONTHS and (not m.group()[0].isupper() or w in ("may", "march") and not re.search(r"\b(?:in|of|since|until|last|next|that)\s+$", text[: m.start()])):
            continue
        if beat and not w.isalpha() and re.match(r"\s+[a-z][\w-]*", text[m.end() :]) and (nxt := text[m.end() :].split()[0].strip(",.;:").lower()) not in _STOPS:
            continue  # "sixty-four pages", "the 2011 ratios"
        out.append((m.start(), m.end(), w))
    return out
