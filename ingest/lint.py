"""``b2p lint``: what a careful editor would flag in a story bible and its beat sheets.

Every rule reads its facts from the bible and the beat sheets themselves, never from an English
word list: a capitalised word is an ordinary word when the same text also uses it in lower case; an
alias is a common word when the prose uses it in lower case in another sense; an entry is unused
or over-broad by what b2p's own retrieval pulls into each beat of every sheet.

A finding is ``file:line: severity: message [check]``. Errors are what certainly costs a beat its
lore or stops ingest (a file that does not validate, an empty entry, a name misspelt in a beat);
warnings are what an editor would query. Bad input (no such folder, an unreadable sheet) is a
``BibleError``: one line, exit 2.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from b2p.errors import BibleError, closest, did_you_mean
from b2p.models import LoreEntry
from b2p.settings import Settings

Severity = Literal["error", "warning"]
# An unknown name this close to a known one (difflib ratio) is taken for a misspelling: an error.
MISSPELT = 0.8
# Over-broad: an entry pulled into at least this share of all beats, when most of those picks come
# from something other than its capitalised name (a lower-case alias, the scene, similarity).
OVER_BROAD_SHARE = 0.75
OVER_BROAD_MIN_BEATS = 8


class Finding(BaseModel):
    """One thing to look at, at one place."""

    file: str
    line: int
    severity: Severity
    check: str = Field(description="unknown-name, shared-alias, common-word-alias, unused-entry, over-broad, "
                                   "no-pronouns, unknown-relation, empty-entry, near-duplicate, invalid")
    message: str

    def line_text(self) -> str:
        return f"{self.file}:{self.line}: {self.severity}: {self.message} [{self.check}]"


class LintReport(BaseModel):
    """What ``b2p lint --json`` prints."""

    bible: str
    sheets: list[str] = Field(description="The beat sheets read: the bible's beats/ folder, then those given.")
    beats: int
    findings: list[Finding]
    errors: int
    warnings: int
    skipped: list[str] = Field(default_factory=list, description="Checks that could not run, and why.")


@dataclass
class _Sheet:
    path: Path
    shown: str
    beats: list[tuple[int, str]]  # (file line, beat text)


@dataclass
class _Entry:
    """A parsed entry and where its fields sit in its file."""

    entry: LoreEntry
    shown: str
    lines: dict[str, int] = field(default_factory=dict)  # front-matter key → file line
    alias_lines: dict[str, int] = field(default_factory=dict)  # alias → file line
    body_line: int = 1

    @property
    def name_line(self) -> int:
        return self.lines.get("name", 1)

    def alias_line(self, alias: str) -> int:
        return self.alias_lines.get(alias, self.lines.get("aliases", self.name_line))


Progress = Callable[[int, int], None]


# -- the run -------------------------------------------------------------------------------------


def lint_bible(root: Path, sheets: Iterable[Path], settings: Settings, progress: Progress | None = None) -> LintReport:
    """Lint a bible folder with the beat sheets under its ``beats/`` folder and ``sheets``.

    Raises ``BibleError`` (exit 2) only for bad input: no such folder, an unreadable sheet. A bible
    that does not validate is reported as findings (errors), and the other checks wait until it does.
    """
    from ingest.bible import bible_name, read_bible

    if not root.exists():
        raise BibleError(f"{root}: no such folder")
    if not root.is_dir():
        raise BibleError(f"{root}: is a file; pass the bible's folder (the one holding characters/, places/, …)")
    read = [_read_sheet(p, shown) for p, shown in _sheet_paths(root, sheets)]
    findings = [Finding(file=s.shown, line=1, severity="warning", check="empty-sheet", message="no beats: write one plot point per line")
                for s in read if not s.beats]
    try:
        bible = read_bible(root)
    except BibleError as err:
        if not any(_LOCATED.match(p) for p in err.problems):
            raise  # not a bible at all (an empty folder): bad input
        findings += [_invalid(p) for p in err.problems]
        return _report(bible_name(root), read, findings, ["every other check: the bible must validate first"])
    entries = [_locate(root, e) for e in bible.entries]
    live = [x for x in entries if x.entry.enabled]
    texts = _texts(entries, read)
    findings += _empty_entries(entries)
    findings += _unknown_names(read, live, texts)
    findings += _shared_aliases(live)
    findings += _common_word_aliases(live, texts)
    findings += _unclear_pronouns(live)
    from ingest.lint_lore import lore_findings

    more, skipped = lore_findings(root, entries, read, settings, progress)
    return _report(bible.name, read, findings + more, skipped)


def _report(bible: str, sheets: list[_Sheet], findings: list[Finding], skipped: list[str]) -> LintReport:
    findings = sorted(findings, key=lambda f: (f.severity != "error", f.file, f.line, f.check, f.message))
    errors = sum(f.severity == "error" for f in findings)
    return LintReport(bible=bible, sheets=[s.shown for s in sheets], beats=sum(len(s.beats) for s in sheets),
                      findings=findings, errors=errors, warnings=len(findings) - errors, skipped=skipped)


_LOCATED = re.compile(r"^(?P<file>.+?):(?P<line>\d+): (?P<message>.*)$", re.S)


def _invalid(problem: str) -> Finding:
    """A validation problem (``path:line: message``) as an error finding."""
    m = _LOCATED.match(problem)
    assert m is not None
    return Finding(file=m["file"], line=int(m["line"]), severity="error", check="invalid", message=m["message"])


# -- reading -------------------------------------------------------------------------------------


def _sheet_paths(root: Path, given: Iterable[Path]) -> list[tuple[Path, str]]:
    """Every ``*.txt`` under the bible's ``beats/`` folder (hidden ones skipped), then the sheets given."""
    from ingest.bible import BEATS_DIR

    found = sorted(p for p in (root / BEATS_DIR).rglob("*.txt") if not any(part.startswith(".") for part in p.relative_to(root).parts))
    out: dict[Path, tuple[Path, str]] = {}
    for p in [*found, *given]:
        out.setdefault(p.resolve(), (p, str(p)))
    return list(out.values())


def _read_sheet(path: Path, shown: str) -> _Sheet:
    """A beat sheet with each beat's line number (the same parser ``b2p lore`` uses)."""
    from b2p.beats import parse_beats
    from b2p.userfiles import decode_user_text, read_user_file

    data = read_user_file(path, "beat sheet", "a beat-sheet text file (one beat per line)", shown=shown)
    text = decode_user_text(data, shown, "a beat sheet (expected text, one beat per line)")
    return _Sheet(path, shown, [(n, b) for n, line in enumerate(text.split("\n"), start=1) for b in parse_beats(line)])


_KEY = re.compile(r"^([A-Za-z_][\w-]*)\s*:")


def _locate(root: Path, e: LoreEntry) -> _Entry:
    """Where the entry's front-matter keys, aliases and body start in its (already validated) file."""
    x = _Entry(e, str(root / e.path))
    try:
        text = (root / e.path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return x  # changed under us: findings point at line 1
    lines = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    end = next((i for i in range(1, len(lines)) if lines[i].strip() in ("---", "...")), 0)
    for i in range(1, end):
        if m := _KEY.match(lines[i]):
            x.lines.setdefault(m.group(1), i + 1)
    if "aliases" in x.lines:
        start = x.lines["aliases"] - 1
        stop = min([n - 1 for n in x.lines.values() if n - 1 > start] + [end])
        for alias in e.aliases:
            x.alias_lines[alias] = next((i + 1 for i in range(start, stop) if alias in lines[i]), start + 1)
    x.body_line = next((i + 1 for i in range(end + 1, len(lines)) if lines[i].strip()), end + 2)
    return x


@dataclass(frozen=True)
class _Text:
    """A piece of the bible's prose (an entry's body, or one beat) and where it sits."""

    shown: str
    line: int  # file line of the text's first character
    text: str
    entry_id: str | None  # whose lore it is (None for a beat)

    def where(self, pos: int) -> str:
        return f"{self.shown}:{self.line + self.text.count(chr(10), 0, pos)}"


def _texts(entries: list[_Entry], sheets: list[_Sheet]) -> list[_Text]:
    return [_Text(x.shown, x.body_line, x.entry.text, x.entry.id) for x in entries] + [
        _Text(s.shown, n, b, None) for s in sheets for n, b in s.beats]


# -- words ---------------------------------------------------------------------------------------

_WORD = re.compile(r"[^\W\d_](?:[^\W\d_]|['’-](?=[^\W\d_]))*")
_POSSESSIVE = re.compile(r"['’]s$")
_SUFFIXES = ("ing", "ed", "es", "s", "ly")


def _base(word: str) -> str:
    """The word without a possessive ending: "Fenn's" → "Fenn"."""
    return _POSSESSIVE.sub("", word)


def _stem(word: str) -> str:
    """A crude stem, so "Emphasize" meets "emphasizing" and "Hint" meets "hints"."""
    w = _base(word).lower()
    for suffix in _SUFFIXES:
        if w.endswith(suffix) and len(w) - len(suffix) >= 3:
            w = w[: -len(suffix)]
            break
    if len(w) > 3 and w[-1] == w[-2]:
        w = w[:-1]  # "stopp(ed)"
    return w.removesuffix("e") if len(w) > 3 else w


def _opens_sentence(text: str, start: int) -> bool:
    """Does the word at ``start`` open a sentence (or a quotation)? Not after "Dr." or an initial."""
    before = text[:start].rstrip()
    if before.endswith(("\"", "“", "'", "‘", "(", "[")):
        return True
    if not before or before[-1] in "!?…:;":
        return not before or before[-1] in "!?…"
    if before[-1] != ".":
        return False
    prev = before[:-1].rsplit(None, 1)[-1] if before[:-1].strip() else ""
    # "Dr. Thorne", "St. Ives", "J. Smith": a short capitalised word before the full stop is an abbreviation.
    return not (prev[:1].isupper() and len(prev) <= 3 and prev.isalpha())


class _Corpus:
    """What the bible's prose and its beat sheets say about words: which are used in lower case (so
    are ordinary words), which are written capitalised inside a sentence (so are names)."""

    def __init__(self, texts: Iterable[_Text]) -> None:
        self.lower: set[str] = set()
        self.mid_caps: set[str] = set()
        for t in texts:
            for m in _WORD.finditer(t.text):
                w = m.group()
                if w[0].islower():
                    self.lower.add(_stem(w))
                elif w[0].isupper() and not _opens_sentence(t.text, m.start()):
                    self.mid_caps.add(_base(w))


# -- names in beats ------------------------------------------------------------------------------


def _unknown_names(sheets: list[_Sheet], entries: list[_Entry], texts: list[_Text]) -> list[Finding]:
    """Capitalised words and runs in beats that no entry is called and no entry's lore mentions."""
    from b2p.matcher import NameMatcher

    matcher = NameMatcher(x.entry for x in entries)
    keys = list(dict.fromkeys(k for x in entries for k in x.entry.keys()))
    corpus = _Corpus(texts)
    # The bible knows a name its entries are called, or its lore mentions ("Earth", "Hesper Kell").
    known = {_base(w) for t in texts if t.entry_id is not None for w in _WORD.findall(t.text) if w[0].isupper()}
    known |= {w for k in keys for w in _WORD.findall(k)}
    out: list[Finding] = []
    for sheet in sheets:
        for line, beat in sheet.beats:
            seen: set[str] = set()
            for run in _runs(beat, [(m.start, m.end) for m in matcher.find(beat)]):
                first = run[0]
                if _opens_sentence(beat, first.start()):
                    w = first.group()
                    name_like = _POSSESSIVE.search(w) or len(run) > 1 or _base(w) in corpus.mid_caps
                    if _stem(w) in corpus.lower or not name_like:
                        run = run[1:]  # "Meanwhile …", "Describe …": an ordinary word opening the sentence
                if not run or all(_base(m.group()) in known for m in run):
                    continue
                name = _base(beat[run[0].start() : run[-1].end()])
                if name in seen:
                    continue
                seen.add(name)
                close = closest(name, keys, cutoff=MISSPELT)
                if close:
                    out.append(Finding(file=sheet.shown, line=line, severity="error", check="unknown-name",
                                       message=f'"{name}" is not a name the bible knows (did you mean "{close}"?): this beat gets none of that entry\'s lore'))
                else:
                    out.append(Finding(file=sheet.shown, line=line, severity="warning", check="unknown-name",
                                       message=f'"{name}" is not a name the bible knows: no entry is called that and no lore mentions it{did_you_mean(name, keys)}'))
    return out


def _runs(text: str, masked: list[tuple[int, int]]) -> list[list[re.Match[str]]]:
    """Capitalised words outside the matched names, grouped into runs ("Hesper Kell") of words
    separated by nothing but a space."""
    runs: list[list[re.Match[str]]] = []
    last_end = -1
    for m in _WORD.finditer(text):
        w = _base(m.group())
        if any(s <= m.start() < e for s, e in masked) or not w[0].isupper() or len(w) < 2:
            last_end = -1
            continue
        if runs and last_end >= 0 and text[last_end : m.start()] in (" ", "' ", "’ "):  # "Ladies' Aid Association"
            runs[-1].append(m)
        else:
            runs.append([m])
        last_end = m.end()
    return runs


# -- aliases -------------------------------------------------------------------------------------


def _occurrences(key: str, text: str, exact: bool) -> list[tuple[int, int, str]]:
    """Whole-word uses of a key in text, with a plural or possessive ending: (start, end, ending).
    ``exact``: as written; else in lower case only."""
    k = key if exact else key.lower()
    pat = re.compile(rf"(?<![\w'’-]){re.escape(k)}(?P<suffix>['’]s|s['’]|es['’]|es|s|['’])?(?![\w'’-])")
    return [(m.start(), m.end(), m["suffix"] or "") for m in pat.finditer(text)]


def _inside_longer_key(x: _Entry, key: str, text: str, start: int, end: int) -> bool:
    """Is this use part of a longer name of the same entry ("mule" inside "old mule")?"""
    for other in x.entry.keys():
        if len(other) > len(key) and key.lower() in other.lower():
            lo = text.lower()
            for s, e, _ in _occurrences(other.lower(), lo, exact=True):
                if s <= start and end <= e:
                    return True
    return False


def _shared_aliases(entries: list[_Entry]) -> list[Finding]:
    """A key claimed by two entries. Not flagged: a title the lore gives to each claimant ("she is
    simply the Chief", "his people call him the Chief"), which the bible itself says they share."""
    claimed: dict[str, list[_Entry]] = {}
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
                                 for s, e, _ in _occurrences(written[x.entry.id], x.entry.text, exact=True)) for x in owners}
        if not named and all(calls.values()):
            continue
        suspects = [x for x in owners if x not in named and (named or not calls[x.entry.id])] or owners[1:]
        for x in suspects:
            key = written[x.entry.id]
            others = ", ".join(f"{o.entry.name} ({o.shown})" for o in owners if o is not x)
            why = (f"it is the name of {named[0].entry.name}" if named else "and this entry's lore never calls it that")
            out.append(Finding(file=x.shown, line=x.alias_line(key), severity="warning", check="shared-alias",
                               message=f'alias "{key}" is also claimed by {others}, {why}: a beat saying "{key}" pulls in '
                                       "whichever is on stage, or all of them"))
    return out


def _common_word_aliases(entries: list[_Entry], texts: list[_Text]) -> list[Finding]:
    """A capitalised name or alias that the prose also uses in lower case in another sense ("a lull
    in the rain", "no weeping woman"), on an entry that is not ``case_sensitive``.

    A bare definite singular ("the moon", "the company's founder") refers to the one such thing, so it
    is the entry itself; an indefinite, bare, plural or possessed use, or "the captain of …", is the
    ordinary word."""
    out = []
    for x in entries:
        if x.entry.case_sensitive:
            continue
        uses: list[tuple[str, str, str]] = []  # (key, quoted use, where)
        for key in x.entry.keys():
            if key == key.lower():
                continue  # written in lower case on purpose: a description ("the doc")
            for t in texts:
                for s, e, suffix in _occurrences(key, t.text, exact=False):
                    if t.text[s:e] != t.text[s:e].lower() or _inside_longer_key(x, key, t.text, s, e):
                        continue
                    definite = key.lower().startswith("the ") or re.search(r"(?:^|[^\w'’-])the\s+$", t.text[:s], re.IGNORECASE)
                    plural = suffix.rstrip("'’") in ("s", "es")
                    described = re.match(r"\s+of\b", t.text[e:])
                    if definite and not plural and not described:
                        continue
                    uses.append((key, _quote(t.text, s, e), t.where(s)))
        if uses:
            keys = list(dict.fromkeys(k for k, _, _ in uses))
            key, quoted, where = uses[0]
            said = " / ".join(f'"{k}"' for k in keys)
            more = f", and {len(uses) - 1} more" if len(uses) > 1 else ""
            out.append(Finding(file=x.shown, line=x.alias_line(key) if key != x.entry.name else x.name_line,
                               severity="warning", check="common-word-alias",
                               message=f"{said} is also an ordinary word here (\"{quoted}\", {where}{more}): "
                                       f"a beat using it that way pulls in {x.entry.name}; add \"case_sensitive: true\""))
    return out


def _quote(text: str, start: int, end: int) -> str:
    """The use with a word either side: "no weeping woman,"."""
    before = text[:start].split()[-1:] if text[:start].strip() else []
    after = text[end:].split()[:1]
    return " ".join([*before, text[start:end], *after]).strip(" ,;:.")


# -- entries -------------------------------------------------------------------------------------


def _unclear_pronouns(entries: list[_Entry]) -> list[Finding]:
    """People whose lore does not say he, she or they clearly: "She …" in a beat cannot find them."""
    from b2p.scene import PERSON_KINDS, infer_pronouns

    return [Finding(file=x.shown, line=x.body_line, severity="warning", check="no-pronouns",
                    message=f"cannot tell {x.entry.name}'s pronouns from the lore: a beat's \"he\", \"she\" or \"they\" "
                            "will not find them; write the lore with their pronouns")
            for x in entries if x.entry.kind.lower() in PERSON_KINDS and infer_pronouns(x.entry.text) is None]


_MARKUP = re.compile(r"<!--.*?-->|[#>*_`~|\[\]()\-]", re.S)


def _empty_entries(entries: list[_Entry]) -> list[Finding]:
    """An entry whose body is only markup, comments or its own name: it gives a beat nothing."""
    out = []
    for x in entries:
        rest = _MARKUP.sub(" ", x.entry.text)
        for k in sorted(x.entry.keys(), key=len, reverse=True):
            rest = re.sub(re.escape(k), " ", rest, flags=re.IGNORECASE)
        if not _WORD.search(rest):
            out.append(Finding(file=x.shown, line=x.body_line, severity="error", check="empty-entry",
                               message=f"{x.entry.name} has no lore: its body holds nothing but its name or markup; write what a beat should know"))
    return out
