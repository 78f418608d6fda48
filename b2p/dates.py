"""Dates a text names an event by: a year ("1868", "2011", "sixty-eight"), a day of a month ("14
January", "the fourth of May", "July 9"), or a month alone where the bible itself says it so.

A reader who meets "whether it is to be sixty-eight all over again" thinks of the war the bible
calls "the war of sixty-eight"; "on the ninth of July", of the one event whose defining sentence
happened on July 9. A month alone is not a date: "the rent is due in July" is any July, not the
fire of July 9 — unless the bible itself calls the event by its bare month, in the event's own lore
or beside its name ('they just say "January"', "last January the ferry went down"). ``parts.Parts``
keeps, per date, the events whose name or alias gives it, those whose defining sentence does and
those the bible's lore calls by a bare month; a number that counts ("sixty-four pages") is no date.
"""

from __future__ import annotations

import re

from b2p.lexicon import FUNCTION_WORDS, MONTHS, ORDINAL_DAYS, PREPOSITIONS

_STOPS = FUNCTION_WORDS | PREPOSITIONS
_TENS = "twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety"
_DATE = re.compile(rf"\b(?:1[0-9]{{3}}|20[0-9]{{2}}|(?:{_TENS})-(?:one|two|three|four|five|six|seven|eight|nine)|[A-Z][a-z]+)\b", re.IGNORECASE)
_ORDINAL = "|".join(sorted(ORDINAL_DAYS, key=len, reverse=True))
_DAY_BEFORE = re.compile(rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?$|\b({_ORDINAL})\s+of\s+$", re.IGNORECASE)  # "14 January", "the fourth of May"
_DAY_AFTER = re.compile(r"\s+(\d{1,2})(?:st|nd|rd|th)?\b(?!\s*[:.]\d)")  # "July 9", "May 4th" (not "May 4:30")
_YEAR_AFTER = re.compile(r",?\s+(?:of\s+)?(?:1[0-9]{3}|20[0-9]{2}|['’][0-9]{2})\b|,?\s+(?:\d{1,2})(?:st|nd|rd|th)?,?\s+(?:1[0-9]{3}|20[0-9]{2})\b")


def dates(text: str, beat: bool = False) -> list[tuple[int, int, str]]:
    """Dates a text gives an event by: a year ("1868", "sixty-eight"), a month with its day ("july 9")
    or a bare month ("july"); a month with a year is left to the year. In a beat, a year right before
    a noun counts it ("sixty-four pages") and a month needs its capital."""
    out = []
    for m in _DATE.finditer(text):
        w = m.group().lower()
        if w.isalpha() and w not in MONTHS:
            continue
        if w in MONTHS and (not m.group()[0].isupper() or w in ("may", "march") and not re.search(r"\b(?:in|of|since|until|last|next|that|the)\s+$|\d\s+$", text[: m.start()])):
            continue
        if beat and not w.isalpha() and re.match(r"\s+[a-z][\w-]*", text[m.end() :]) and (nxt := text[m.end() :].split()[0].strip(",.;:").lower()) not in _STOPS:
            continue  # "sixty-four pages", "the 2011 ratios"
        if w in MONTHS:
            before, after = _DAY_BEFORE.search(text[: m.start()]), _DAY_AFTER.match(text, m.end())
            if before is None and after is None and _YEAR_AFTER.match(text, m.end()):
                continue  # "September 1994": the year says it
            if before:
                w = f"{w} {int(before.group(1)) if before.group(1) else ORDINAL_DAYS[before.group(2).lower()]}"
            elif after:
                w = f"{w} {int(after.group(1))}"
        out.append((m.start(), m.end(), w))
    return out


def is_bare_month(key: str) -> bool:
    """A month without its day ("july"), which names an event only where the bible says it so."""
    return key in MONTHS
