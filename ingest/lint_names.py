"""``b2p lint``'s checks of names: capitalised names in beats that the bible does not know, and
aliases that two entries claim or that the prose also uses as ordinary words.

Facts come from the bible's prose and its beat sheets, never from an English word list: a word the
text also writes in lower case is an ordinary word; a word written capitalised inside a sentence is
a name.
"""

from __future__ import annotations

import re
from collections.abc import Container, Iterable
from typing import Any

from b2p.errors import closest, did_you_mean
from b2p.lexicon import NAME_ENDINGS, stem
from ingest.lint import MISSPELT, BeatSheet, Finding, LocatedEntry, Prose

# -- words ---------------------------------------------------------------------------------------

_WORD = re.compile(r"[^\W\d_](?:[^\W\d_]|['’-](?=[^\W\d_]))*")
_POSSESSIVE = re.compile(r"['’]s$")


def _base(word: str) -> str:
    """The word without a possessive ending: "Fenn's" → "Fenn"."""
    return _POSSESSIVE.sub("", word)


def _opens_sentence(text: str, start: int) -> bool:
    """Does the word at ``start`` open a sentence (or a quotation)? Not after "Dr." or an initial."""
    before = text[max(0, start - 40) : start].rstrip()  # what decides is just before the word
    if before.endswith(("“", "‘", "(", "[")):
        return True
    if before.endswith(("\"", "'", "”", "’")):
        if before[-1] in "\"'" and (len(before) == 1 or before[-2].isspace()):
            return True  # a straight quote opening a quotation: « he says, "Never…" »
        before = before[:-1].rstrip()  # a closing quote: what came before it decides
    if not before:
        return True
    if before[-1] in "!?…":
        return True
    if before[-1] != ".":
        return False
    prev = before[:-1].rsplit(None, 1)[-1] if before[:-1].strip() else ""
    return not _abbreviation(prev)  # "Dr. Thorne", "St. Ives", "J. Smith"


class _Corpus:
    """What the bible's prose and its beat sheets say about words: which are used in lower case (so
    are ordinary words), which are written capitalised inside a sentence (so are names)."""

    def __init__(self, texts: Iterable[Prose]) -> None:
        lower: set[str] = set()
        self.mid_caps: set[str] = set()
        for t in texts:
            for m in _WORD.finditer(t.text):
                w = m.group()
                if w[0].islower():
                    lower.add(w)
                elif w[0].isupper() and not _opens_sentence(t.text, m.start()):
                    self.mid_caps.add(_base(w))
        self.lower = {stem(w) for w in lower}


# -- names in beats ------------------------------------------------------------------------------


def unknown_names(sheets: list[BeatSheet], entries: list[LocatedEntry], texts: list[Prose]) -> list[Finding]:
    """Capitalised words and runs in beats that no entry is called and no entry's lore mentions."""
    from b2p.matcher import NameMatcher

    matcher = NameMatcher(x.entry for x in entries)
    keys = list(dict.fromkeys(k for x in entries for k in x.entry.keys()))
    corpus = _Corpus(texts)
    # The bible knows a name its entries are called, or its lore mentions ("Earth", "Hesper Kell").
    known = {_base(w) for t in texts if t.entry_id is not None for w in _WORD.findall(t.text) if w[0].isupper()}
    known |= {w for k in keys for w in _WORD.findall(k)}
    ids = {x.entry.id for x in entries}
    out: list[Finding] = []
    for sheet in sheets:
        for line, beat in sheet.beats:
            for sign, said in getattr(beat, "overrides", ()):
                if not override_resolves(said, matcher, ids):
                    out.append(Finding(file=sheet.shown, line=line, severity="error", check="unknown-override",
                                       message=f'"{sign}{said}" names no entry{did_you_mean(said, _candidates(said, keys, 0.6))}: '
                                               "b2p refuses the beat until it does (write the entry's name or an alias)"))
            masked = [(m.start, m.end) for m in matcher.find(beat)]
            names = [_unknown(beat, run, masked, corpus, keys, known) for run in _runs(beat, masked)]
            for name in dict.fromkeys(n for n in names if n):
                close = _near_miss(name, keys)
                if close:
                    out.append(Finding(file=sheet.shown, line=line, severity="error", check="unknown-name",
                                       message=f'"{name}" is not a name the bible knows (did you mean "{close}"?): this beat gets none of that entry\'s lore'))
                else:
                    out.append(Finding(file=sheet.shown, line=line, severity="warning", check="unknown-name",
                                       message=f'"{name}" is not a name the bible knows: no entry is called that and no lore mentions it{did_you_mean(name, _candidates(name, keys, 0.6))}'))
    return out


def override_resolves(said: str, matcher: Any, ids: Container[str]) -> bool:
    """Does a beat's ``+Name`` / ``-Name`` name an entry, as retrieval reads it (a whole name or
    alias, or an entry id)?"""
    return said in ids or any((m.start, m.end) == (0, len(said)) for m in matcher.find(said))


def _unknown(beat: str, run: list[re.Match[str]], masked: list[tuple[int, int]], corpus: _Corpus, keys: list[str], known: set[str]) -> str | None:
    """The name a run of capitalised words spells, when the bible does not know it; else None."""
    # A title or abbreviation on a known name is part of it: "Captain Hanna", "Dr. Hanna".
    while run and any(s == _skip_to(beat, run[-1].end()) for s, _ in masked) and (
            stem(run[-1].group()) in corpus.lower or _abbreviation(run[-1].group())):
        run = run[:-1]
    if run and _opens_sentence(beat, run[0].start()):
        w = run[0].group()
        # A name at a sentence start shows itself elsewhere: possessive, followed by another capitalised
        # word, written capitalised mid-sentence, or a near-miss of a known name.
        ordinary = stem(w) in corpus.lower
        if ordinary or not (_POSSESSIVE.search(w) or len(run) > 1 or _base(w) in corpus.mid_caps or _near_miss(_base(w), keys)):
            run = run[1:]  # "Meanwhile …", "Describe …": an ordinary word opening the sentence
    if not run or all(_base(m.group()) in known for m in run):
        return None
    return _base(beat[run[0].start() : run[-1].end()])


def _near_miss(word: str, keys: list[str]) -> str | None:
    """The known name or alias ``word`` most plausibly misspells (difflib ratio >= ``MISSPELT``).
    difflib's own quick filters narrow thousands of keys to a few before ``closest`` weighs them."""
    return closest(word, _candidates(word, keys, MISSPELT), cutoff=MISSPELT)


def _candidates(word: str, keys: list[str], cutoff: float) -> list[str]:
    import difflib

    return difflib.get_close_matches(word, keys, n=5, cutoff=cutoff)


def _abbreviation(word: str) -> bool:
    """A word that a full stop after does not end a sentence: "Dr", "St", or an initial ("J. Smith")."""
    from b2p.lexicon import is_abbreviation

    return is_abbreviation(word) or (len(word) == 1 and word.isupper())


def _skip_to(text: str, end: int) -> int:
    """Where the next word starts after ``end`` (past an abbreviation's full stop and spaces)."""
    rest = text[end:]
    return end + len(rest) - len(rest.lstrip(". "))


def _runs(text: str, masked: list[tuple[int, int]]) -> list[list[re.Match[str]]]:
    """Capitalised words outside the matched names, grouped into runs ("Hesper Kell") of words
    separated by nothing but a space (or the full stop of "Dr.")."""
    runs: list[list[re.Match[str]]] = []
    last_end = -1
    for m in _WORD.finditer(text):
        w = _base(m.group())
        if any(s <= m.start() < e for s, e in masked) or not w[0].isupper() or len(w) < 2:
            last_end = -1
            continue
        gap = text[last_end : m.start()] if runs and last_end >= 0 else None
        if gap in (" ", "' ", "’ ") or (gap == ". " and _abbreviation(runs[-1][-1].group())):  # "Ladies' Aid", "Dr. Tomas"
            runs[-1].append(m)
        else:
            runs.append([m])
        last_end = m.end()
    return runs


# -- aliases -------------------------------------------------------------------------------------


def _occurrences(key: str, text: str) -> list[tuple[int, int]]:
    """Whole-word uses of a key in text as written, plural or possessive endings included."""
    return [(m.start(), _ENDING.match(text, m.end()).end())  # type: ignore[union-attr]
            for m in re.finditer(rf"(?<![\w'’-]){re.escape(key)}(?=(?:{_ENDINGS})?(?![\w'’-]))", text)]


def _inside_longer_key(x: LocatedEntry, key: str, text: str, start: int, end: int) -> bool:
    """Is this use part of a longer name of the same entry ("mule" inside "old mule")?"""
    for other in x.entry.keys():
        if len(other) > len(key) and key.lower() in other.lower():
            lo = text.lower()
            for s, e in _occurrences(other.lower(), lo):
                if s <= start and end <= e:
                    return True
    return False


def shared_aliases(entries: list[LocatedEntry]) -> list[Finding]:
    """A key claimed by two entries. Not flagged: a title the lore gives to each claimant ("she is
    simply the Chief", "his people call him the Chief"), which the bible itself says they share."""
    claimed: dict[str, list[LocatedEntry]] = {}
    for x in entries:
        for k in dict.fromkeys(k.casefold() for k in x.entry.keys()):
            claimed.setdefault(k, []).append(x)
    out = []
    for folded, owners in claimed.items():
        if len(owners) < 2:
            continue
        written = {x.entry.id: next(k for k in x.entry.keys() if k.casefold() == folded) for x in owners}
        named = [x for x in owners if x.entry.name.casefold() == folded]
        calls = {x.entry.id: any(not _inside_longer_key(x, written[x.entry.id], x.entry.text, s, e)
                                 for s, e in _occurrences(written[x.entry.id], x.entry.text)) for x in owners}
        if not named and all(calls.values()):
            continue
        suspects = [x for x in owners if x not in named and (named or not calls[x.entry.id])] or owners[1:]
        for x in suspects:
            key = written[x.entry.id]
            rest = [f"{o.entry.name} ({o.shown})" for o in owners if o is not x]
            others = ", ".join(rest[:2]) + (f" and {len(rest) - 2} more" if len(rest) > 2 else "")
            why = (f"it is the name of {named[0].entry.name}" if named else "and this entry's lore never calls it that")
            out.append(Finding(file=x.shown, line=x.alias_line(key), severity="warning", check="shared-alias",
                               message=f'alias "{key}" is also claimed by {others}, {why}: a beat saying "{key}" pulls in '
                                       "whichever is on stage, or all of them"))
    return out


def common_word_aliases(entries: list[LocatedEntry], texts: list[Prose]) -> list[Finding]:
    """A capitalised name or alias that the prose also uses in lower case in another sense ("a lull
    in the rain", "no weeping woman"), on an entry that is not ``case_sensitive``.

    A bare definite singular ("the moon", "the company's founder") refers to the one such thing, so it
    is the entry itself; an indefinite, bare, plural or possessed use, or "the captain of …" in another
    entry's lore or a beat, is the ordinary word."""
    import ahocorasick

    holders: dict[str, set[str]] = {}  # key → the entries that claim it
    wanted: dict[str, list[tuple[LocatedEntry, str]]] = {}  # a capitalised key in lower case → (entry, key)
    for x in entries:
        for k in dict.fromkeys(x.entry.keys()):
            holders.setdefault(k.casefold(), set()).add(x.entry.id)
            if not x.entry.case_sensitive and k != k.lower():  # a key written in lower case ("the doc") is a description
                wanted.setdefault(k.lower(), []).append((x, k))
    if not wanted:
        return []
    auto = ahocorasick.Automaton()
    for low in wanted:
        auto.add_word(low, low)
    auto.make_automaton()
    uses: dict[str, list[tuple[str, str, str]]] = {}  # entry id → (key, quoted use, where)
    for t in texts:
        for last, low in auto.iter(t.text):  # the raw text: every hit is a use written in lower case
            s = last - len(low) + 1
            m = _ENDING.match(t.text, last + 1)
            if (s > 0 and _WORD_CHAR.match(t.text[s - 1])) or m is None:
                continue
            e, plural = m.end(), (m["suffix"] or "").rstrip("'’") in ("s", "es")
            definite = low.startswith("the ") or re.search(r"(?:^|[^\w'’-])the\s+$", t.text[:s], re.IGNORECASE)
            described = re.match(r"\s+of\b", t.text[e:])
            for x, key in wanted[low]:
                if definite and not plural and (not described or t.entry_id in holders[key.casefold()]):
                    continue  # "the moon"; in a holder's own lore, "X is the sergeant of the watch" is X
                if not _inside_longer_key(x, key, t.text, s, e):
                    uses.setdefault(x.entry.id, []).append((key, _quote(t.text, s, e), t.where(s)))
    out = []
    for x in entries:
        found = uses.get(x.entry.id)
        if not found:
            continue
        keys = list(dict.fromkeys(k for k, _, _ in found))
        key, quoted, where = found[0]
        said = " / ".join(f'"{k}"' for k in keys)
        more = f", and {len(found) - 1} more" if len(found) > 1 else ""
        out.append(Finding(file=x.shown, line=x.alias_line(key) if key != x.entry.name else x.name_line,
                           severity="warning", check="common-word-alias",
                           message=f"{said} is also an ordinary word here (\"{quoted}\", {where}{more}): "
                                   f"a beat using it that way pulls in {x.entry.name}; add \"case_sensitive: true\""))
    return out


# A name's ending (plural, possessive), then the end of the word.
_ENDINGS = "|".join(re.escape(e) for e in sorted(NAME_ENDINGS, key=len, reverse=True))
_ENDING = re.compile(rf"(?P<suffix>{_ENDINGS})?(?![\w'’-])")
_WORD_CHAR = re.compile(r"[\w'’-]")


def _quote(text: str, start: int, end: int) -> str:
    """The use with a word either side: "no weeping woman,"."""
    before = text[:start].split()[-1:] if text[:start].strip() else []
    after = text[end:].split()[:1]
    return " ".join([*before, text[start:end], *after]).strip(" ,;:.")
