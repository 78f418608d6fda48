"""Things named by what they are or by a part of them: "the coach" for the bible's one stagecoach,
"the hearth" of the ranch on stage, "Schedule C" of a memorandum, "in town" for the only town.

A reader knows a thing by what its entry says it *is* and *has*. At ingest, every entry that is not
a person (a place, item, group, event, or a kind b2p does not know) is read for:

- what it **is**: the heads of its defining sentence's complement and appositions ("X is the
  Concord stagecoach of …, the only coach that …" → stagecoach, coach); for an event, also what
  it happened to ("the sinking of the Inishcarra ferry" → ferry);
- what it **has**: every noun phrase its own lore uses ("a big stone hearth", "the horse barn",
  "Schedule C"), and what other entries' lore gives it ("the fishing quay in Kilmaren Harbour",
  "the Lanyard Memorandum's Schedule C", "its pegs"). A phrase the lore ties to another named
  entry belongs to that entry, not to the one whose lore says it.

A beat's noun phrase is then matched, by its last two words or its head, singular: to a thing on
stage that is or has it (the most recent; two at the same distance are refused); failing that, to
the bible's only thing that *is* it, or the only one that has it under a compound or a capitalised
name ("the fire escape", "Schedule C"). A single common noun that some thing merely has ("the
door") names nothing unless that thing is on stage. A word alone after a preposition ("in town")
names the bible's only place that is one.

The table is plain data (``to_data``/``from_data``) saved in the lore index.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from b2p.dates import dates, is_bare_month
from b2p.lexicon import (
    EVENT_KINDS,
    GROUP_KINDS,
    NOTE_KINDS,
    PLACE_KINDS,
    POSITION_NOUNS,
    PREPOSITIONS,
    TIME_AND_TEXT_NOUNS,
    VAGUE_THINGS,
    sentences,
)
from b2p.models import LoreEntry
from b2p.nouns import calls_itself
from b2p.phrases import DETERMINERS, STOPS, Phrase, capitalised_terms, covered_by, head, is_heads, noun_phrases, norm

Find = Callable[[str], list[Any]]  # NameMatcher.find


class Parts:
    """What the bible's things are and have, by noun: ``is_`` (noun → entry ids whose defining
    sentence says they are one), ``has`` (key → entry ids whose lore gives them one) and
    ``defines`` (key → entry ids whose lore says what it is: "the Skerries, a low reef …")."""

    def __init__(self, is_: dict[str, list[str]], has: dict[str, list[str]], defines: dict[str, list[str]], places: list[str],
                 terms: list[str] = (), its: dict[str, list[str]] | None = None) -> None:  # type: ignore[assignment]
        self.its = its or {}  # what a thing's own lore gives it with "its": "Its tailgate is held shut"
        # date → events: by name/alias, by defining sentence (a year, a day), by a bare month the bible calls them by
        self.dates: dict[str, dict[str, list[str]]] = {"named": {}, "dated": {}, "bare": {}}
        self.is_ = is_
        self.has = has
        self.defines = defines
        self.places = set(places)
        self.terms = set(terms)  # the words lore writes terms with: "resus" of "Resus One"
        self.called: dict[str, list[str]] = {}  # the head noun of a thing's name or alias → those things ("the estate boat" → boat)
        self.nouns: set[str] = set()  # words the bible's lore uses as a noun (the head of a noun phrase: "near the river")

    def to_data(self) -> dict[str, Any]:
        return {"is": self.is_, "has": self.has, "defines": self.defines, "places": sorted(self.places), "terms": sorted(self.terms),
                "its": self.its, "dates": self.dates, "called": self.called, "nouns": sorted(self.nouns)}

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Parts:
        made = cls(dict(data.get("is", {})), dict(data.get("has", {})), dict(data.get("defines", {})), list(data.get("places", [])),
                   list(data.get("terms", [])), dict(data.get("its", {})))
        made.dates = {"named": {}, "dated": {}, "bare": {}, **dict(data.get("dates") or {})}
        made.called = dict(data.get("called") or {})
        made.nouns = set(data.get("nouns") or ())
        return made

    @classmethod
    def build(cls, entries: Iterable[LoreEntry], texts: Mapping[str, str], find: Find, is_person: Callable[[LoreEntry], bool]) -> Parts:
        entries = [e for e in entries if not e.always]
        things = {e.id for e in entries if not is_person(e) and e.kind not in NOTE_KINDS}
        tables: dict[str, dict[str, set[str]]] = {"is": {}, "has": {}, "defines": {}, "its": {}, "named_in": {}, "dated": {}, "bare": {}}
        events = {e.id for e in entries if e.kind in EVENT_KINDS}
        terms_seen: set[str] = set()
        nouns: set[str] = set()
        for e in entries:
            mine = e.id in things
            if e.kind in EVENT_KINDS:  # "the war of sixty-eight", "the 2011 strike"; "… on the night of 14 January"
                for _, _, w in (d for k in e.keys() for d in dates(k)):
                    tables["named_in"].setdefault(w, set()).add(e.id)
                for _, _, w in dates(next(iter(sentences(texts.get(e.id) or e.text)), "")):
                    if not is_bare_month(w):
                        tables["dated"].setdefault(w, set()).add(e.id)
            for n, sentence in enumerate(sentences(texts.get(e.id) or e.text)):
                ms = [(m.start, m.end, m.entry_ids) for m in find(sentence)]
                # A bare month the bible says in an event's own lore or beside its name: "last January the ferry went down".
                said = {e.id} & events | {ids[0] for _, _, ids in ms if len(ids) == 1 and ids[0] in events}
                for _, _, w in dates(sentence) if said else ():
                    if is_bare_month(w):
                        for i in said:
                            tables["bare"].setdefault(w, set()).add(i)
                heads = is_heads(sentence, ms, e.kind in EVENT_KINDS) if mine and n == 0 else set()
                for h in heads:
                    tables["is"].setdefault(h, set()).add(e.id)
                terms = capitalised_terms(sentence, [(s, t) for s, t, _ in ms])
                phrases = noun_phrases(sentence, ms)
                nouns.update(norm(p.words[-1]) for p in phrases if p.words[-1].isalpha() and p.words[-1].islower())
                for p in [*phrases, *terms]:
                    if head(p) in heads:
                        owner = e.id  # what the entry is, even "of the Bitter Wells and Laramie line"
                    else:
                        own = mine and p.det not in ("his", "her")  # "her husband" in a ship's lore is someone's
                        owner = p.owner or _of_name(sentence, p.end, ms) or (e.id if own else None)
                    if owner is not None and owner not in things and mine and e.kind in PLACE_KINDS:
                        owner = e.id  # "Parson Holloway's chapel" in a town's lore: his, and in the town
                    if owner is None or owner not in things:
                        continue
                    defined = owner == e.id and (_DEFINED.match(sentence, p.end) or p.term and _DEFINED_TERM.match(sentence, p.end))
                    table = "defines" if defined else "its" if owner == e.id and p.det == "its" else "has"
                    for k in p.keys():
                        tables[table].setdefault(k, set()).add(owner)
                        if table != "has":
                            tables["has"].setdefault(k, set()).add(owner)
                terms_seen.update(norm(p.words[0]) for p in terms)
        places = [e.id for e in entries if e.kind in PLACE_KINDS]
        out = {name: {k: sorted(v) for k, v in t.items()} for name, t in tables.items()}
        made = cls(out["is"], out["has"], out["defines"], places, sorted(terms_seen), out["its"])
        made.dates = {"named": out["named_in"], "dated": out["dated"], "bare": out["bare"]}
        called: dict[str, set[str]] = {}
        for e in entries:
            for k in e.keys() if e.id in things else ():
                words = k.split()
                if len(words) > 1 and words[-1].islower():  # "the estate boat": a boat, by what it is called
                    called.setdefault(norm(words[-1]), set()).add(e.id)
        made.called = {k: sorted(v) for k, v in called.items()}
        made.nouns = nouns
        return made

    def owners(self, phrase: Phrase) -> tuple[str, list[str], str]:
        """(key, the entries that are, define or have it, which of the three) for the phrase's most specific key found."""
        keys = phrase.keys()
        if phrase.term and keys[-1] not in self.terms:
            keys = keys[:-1]  # "falls two" is no term the lore uses
        for k in keys:
            if k in TIME_AND_TEXT_NOUNS or k in POSITION_NOUNS:
                return k, [], ""
            if k in self.is_:
                return k, list(self.is_[k]), "is"
            if len(self.defines.get(k, ())) == 1:
                return k, list(self.defines[k]), "defines"
            if k in self.has:
                return k, list(self.has[k]), "has"
        return "", [], ""


# After a phrase, what says what it is: "the Skerries, a low reef …", "Bed nine is the corner cubicle".
_DEFINED = re.compile(r",\s+(?:a|an)\s+|\s+is\s+(?:a|an)\s+")
_DEFINED_TERM = re.compile(r"\s+is\s+the\s+")


def _of_name(sentence: str, end: int, mentions: Sequence[tuple[int, int, tuple[str, ...]]]) -> str | None:
    """The entry a phrase is "of"/"in" by name: "the fishing quay in Kilmaren Harbour" → the harbour."""
    m = re.match(r"\s+(?:of|in|on|at)\s+(?:the\s+)?", sentence[end:])
    if not m:
        return None
    at = end + m.end()
    for s, _, ids in mentions:
        if s == at or (s == end + m.end() - 4 and sentence[s : s + 4].lower() == "the "):
            return ids[0] if len(ids) == 1 else None
    return None


def resolve_parts(
    text: str,
    mentions: Sequence[tuple[int, int, tuple[str, ...]]],
    here: set[str],
    history: Sequence[Sequence[str]],
    entries: Mapping[str, LoreEntry],
    parts: Parts,
    people_nouns: frozenset[str] | set[str],
    is_person: Callable[[LoreEntry], bool],
    name_words: frozenset[str] | set[str] = frozenset(),
    depth: int = 3,
    refused: list[tuple[str, list[str]]] | None = None,
) -> list[tuple[str, str, int]]:
    """Things the beat names by what they are or have: (entry id, the words and why, beats back).
    ``refused`` receives the phrases two things on stage fit equally (phrase, their ids)."""
    stage: dict[str, int] = {}
    for d, cast in enumerate(history, start=1):
        for i in cast:
            if i in entries and i not in stage and not is_person(entries[i]):
                stage[i] = d
    # The setting: the last beat's things, else the most recent place within the scene's depth.
    setting = 1 if any(d == 1 for d in stage.values()) else 0
    if setting == 0:
        setting = min((d for i, d in stage.items() if i in parts.places and d <= depth), default=0)
    masked = [(s, e) for s, e, _ in mentions]
    name_starts = {s - 1 for s, _, _ in mentions}  # "the old Archivist": a phrase that runs into a name is the name's
    found: list[tuple[str, str, int]] = []
    taken = set(here)
    phrases = [p for p in noun_phrases(text, mentions, beat=True) if p.det not in ("his", "her", "their")]  # a person's X is theirs
    phrases += capitalised_terms(text, masked, beat=True)
    phrases += _bare_places(text, masked, parts)
    inside = covered_by(masked)
    for s, e, w in dates(text, beat=True):  # "sixty-eight all over again": the war the bible names by that year
        if inside(s):
            continue
        # A month alone is no date ("due in July"): only one the bible calls the event by.
        events = parts.dates["named"].get(w) or parts.dates["bare" if is_bare_month(w) else "dated"].get(w) or []
        if len(events) == 1 and events[0] not in taken and events[0] in entries:
            taken.add(events[0])
            found.append((events[0], f"{text[s:e]} (the date of {entries[events[0]].name})", 0))
    for p in sorted(phrases, key=lambda p: p.start):
        head = norm(p.words[-1])
        if p.owner is not None or head in people_nouns or head in VAGUE_THINGS or re.match(r"\s+of\b", text[p.end :]) or p.end in name_starts:
            continue  # "Josiah's saddle scabbard", "the base of the crater wall": whose it is is said; "the preacher": a person
        if p.words[-1][:1].isupper() and not p.term and head in name_words:
            continue  # "the Ketterings": a name, the matcher's business
        key, owners, how = parts.owners(p)
        if not owners or any(o in here for o in owners):
            continue  # "the hull of the Annie": the thing is named in the beat
        if (" " not in key and not p.term and len(p.words) >= 2 and p.words[-2].islower() and norm(p.words[-2]) in parts.nouns
                and not any(calls_itself(entries.get(o), p.words[-2]) for o in owners)):
            continue  # "the lake shore", "a ferry landing": a noun the thing's name and defining sentence never use makes it another one
        # A thing the beat's noun is, or names by a compound, may be anywhere earlier in the sheet;
        # a single noun it merely has ("the hearth") only the setting of the last beats has.
        named_by_compound = p.compound and (" " in key or p.words[-1][:1].isupper())
        reach = 10**6 if how in ("is", "defines") or named_by_compound else setting
        if how == "has" and not named_by_compound:  # the setting's furniture, or what an item's lore gives it with "its"
            owners = [o for o in owners if o in parts.places or o in parts.its.get(key, ())]
        # "a van", "a lantern": an indefinite noun brings in a new one, not the one on stage (of a group, one of its members).
        near = sorted((stage[o], o) for o in owners if o in stage and stage[o] <= reach
                      and (p.det not in ("a", "an") or entries[o].kind in GROUP_KINDS))
        called = [c for c in parts.called.get(key, ()) if c not in owners and c in entries] if " " not in key and how in ("is", "defines") else []
        if called:  # "the boat": the rival boat by its defining sentence, and another thing called "the estate boat"
            if refused is not None:
                refused.append((f"{text[p.start : p.end]} (what {entries[owners[0]].name} is, and what {entries[called[0]].name} is called)",
                                [*owners, *called]))
            continue
        pick = None
        if near and (len(near) == 1 or near[0][0] < near[1][0]):
            pick, d = near[0][1], near[0][0]
        elif near:
            tied = [o for dd, o in near if dd == near[0][0] and o not in taken]
            if refused is not None and len(tied) > 1:
                refused.append((f"{text[p.start : p.end]} ({len(tied)} on stage have {key})", tied))
            continue
        elif not near and len(owners) == 1:
            if p.det in ("a", "an"):  # "a Sharps": only the bible's one item that is one
                strong = how == "is" and _is_item(entries.get(owners[0]))
            else:
                strong = how in ("is", "defines") or named_by_compound
            pick, d = (owners[0], 0) if strong else (None, 0)
        if pick is None or pick in taken or pick not in entries:
            continue
        taken.add(pick)
        why = {"is": "", "defines": "as its lore defines it, ", "has": "of "}[how]
        found.append((pick, f"{text[p.start : p.end]} ({why}{key}, from {entries[pick].name}'s entry)", d))
    return found


def _is_item(e: LoreEntry | None) -> bool:
    from b2p.nouns import is_item

    return e is not None and is_item(e)


_BARE = re.compile(r"\b(?i:(%s))\s+([a-z]+)(?=\s*(?:[,.;:!?]|$)|\s+(?:%s)\b)" % ("|".join(sorted(PREPOSITIONS)), "|".join(sorted(STOPS))))


def _bare_places(text: str, masked: Sequence[tuple[int, int]], parts: Parts) -> list[Phrase]:
    """"in town", "out of town": a word alone after a preposition that the bible's only place of its kind *is*."""
    out = []
    inside = covered_by(masked)
    for m in _BARE.finditer(text):
        w = m.group(2)
        if w in STOPS or w in DETERMINERS or inside(m.start(2)):
            continue
        owners = [o for o in parts.is_.get(norm(w), []) if o in parts.places]
        if len(owners) == 1 and norm(w) == w:
            out.append(Phrase(m.start(2), m.end(2), m.group(1).lower(), (w,)))
    return out
