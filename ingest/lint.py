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

from b2p.errors import BibleError
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
                                   "no-pronouns, unknown-relation, unknown-override, empty-entry, near-duplicate, invalid, empty-sheet")
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
class BeatSheet:
    path: Path
    shown: str
    beats: list[tuple[int, str]]  # (file line, beat text)


@dataclass
class LocatedEntry:
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
    from ingest.lint_names import common_word_aliases, shared_aliases, unknown_names

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
        findings += [_invalid(p, root) for p in err.problems]
        return _report(bible_name(root), read, findings, ["every other check: the bible must validate first"])
    entries = [_locate(root, e) for e in bible.entries]
    live = [x for x in entries if x.entry.enabled]
    texts = _texts(entries, read)
    findings += _empty_entries(entries)
    findings += unknown_names(read, live, texts)
    findings += shared_aliases(live)
    findings += common_word_aliases(live, texts)
    findings += _unclear_pronouns(live)
    from ingest.lint_lore import lore_findings

    more, skipped = lore_findings(root, entries, read, settings, progress)
    return _report(bible.name, read, findings + more, skipped)


def _report(bible: str, sheets: list[BeatSheet], findings: list[Finding], skipped: list[str]) -> LintReport:
    findings = sorted(findings, key=lambda f: (f.severity != "error", f.file, f.line, f.check, f.message))
    errors = sum(f.severity == "error" for f in findings)
    return LintReport(bible=bible, sheets=[s.shown for s in sheets], beats=sum(len(s.beats) for s in sheets),
                      findings=findings, errors=errors, warnings=len(findings) - errors, skipped=skipped)


_LOCATED = re.compile(r"^(?P<file>.+?):(?P<line>\d+): (?P<message>.*)$", re.S)


def _invalid(problem: str, root: Path) -> Finding:
    """A validation problem (``path:line: message``) as an error finding."""
    m = _LOCATED.match(problem)
    file, line, message = (m["file"], int(m["line"]), m["message"]) if m else (str(root), 1, problem)
    return Finding(file=file, line=line, severity="error", check="invalid", message=message)


# -- reading -------------------------------------------------------------------------------------


def _sheet_paths(root: Path, given: Iterable[Path]) -> list[tuple[Path, str]]:
    """Every ``*.txt`` under the bible's ``beats/`` folder (hidden ones skipped), then the sheets given."""
    from ingest.bible import BEATS_DIR

    found = sorted(p for p in (root / BEATS_DIR).rglob("*.txt") if not any(part.startswith(".") for part in p.relative_to(root).parts))
    out: dict[Path, tuple[Path, str]] = {}
    for p in [*found, *given]:
        out.setdefault(p.resolve(), (p, str(p)))
    return list(out.values())


def _read_sheet(path: Path, shown: str) -> BeatSheet:
    """A beat sheet with each beat's line number (the same parser ``b2p lore`` uses)."""
    from b2p.beats import parse_beats
    from b2p.userfiles import decode_user_text, read_user_file

    data = read_user_file(path, "beat sheet", "a beat-sheet text file (one beat per line)", shown=shown)
    text = decode_user_text(data, shown, "a beat sheet (expected text, one beat per line)")
    return BeatSheet(path, shown, [(n, b) for n, line in enumerate(text.split("\n"), start=1) for b in parse_beats(line)])


def _locate(root: Path, e: LoreEntry) -> LocatedEntry:
    """Where the entry's front-matter keys, aliases and body start in its (already validated) file,
    read by the same front-matter reader as ingest."""
    from b2p.errors import B2PError
    from ingest.bible import read_front_matter

    x = LocatedEntry(e, str(root / e.path))
    try:
        doc, body, body_line = read_front_matter(root / e.path)
    except B2PError:
        return x  # changed under us since it validated: findings point at line 1
    if isinstance(doc.data, dict):
        x.lines = {str(k): doc.line(str(k)) for k in doc.data}
        if isinstance(doc.data.get("aliases"), list):
            x.alias_lines = {alias: doc.line("aliases", n) for n, alias in enumerate(e.aliases)}
    x.body_line = body_line + body[: len(body) - len(body.lstrip())].count("\n")  # the lore's first line, past blank ones
    return x


@dataclass(frozen=True)
class Prose:
    """A piece of the bible's prose (an entry's body, or one beat) and where it sits."""

    shown: str
    line: int  # file line of the text's first character
    text: str
    entry_id: str | None  # whose lore it is (None for a beat)

    def where(self, pos: int) -> str:
        return f"{self.shown}:{self.line + self.text.count(chr(10), 0, pos)}"


def _texts(entries: list[LocatedEntry], sheets: list[BeatSheet]) -> list[Prose]:
    return [Prose(x.shown, x.body_line, x.entry.text, x.entry.id) for x in entries] + [
        Prose(s.shown, n, b, None) for s in sheets for n, b in s.beats]


# -- entries -------------------------------------------------------------------------------------


def _unclear_pronouns(entries: list[LocatedEntry]) -> list[Finding]:
    """People whose lore does not say he, she or they clearly: "She …" in a beat cannot find them."""
    from b2p.lexicon import PERSON_KINDS
    from b2p.nouns import infer_pronouns

    return [Finding(file=x.shown, line=x.body_line, severity="warning", check="no-pronouns",
                    message=f"cannot tell {x.entry.name}'s pronouns from the lore: a beat's \"he\", \"she\" or \"they\" "
                            "will not find them; write the lore with their pronouns")
            for x in entries if x.entry.kind in PERSON_KINDS and infer_pronouns(x.entry.text, x.entry.name) is None]


_MARKUP = re.compile(r"<!--.*?-->|[#>*_`~|\[\]()\-]", re.S)
_LETTERS = re.compile(r"[^\W\d_]+")


def _empty_entries(entries: list[LocatedEntry]) -> list[Finding]:
    """An entry whose body is only markup, comments or its own name: it gives a beat nothing."""
    out = []
    for x in entries:
        said = set(_LETTERS.findall(_MARKUP.sub(" ", x.entry.text).lower()))
        if said <= {w for k in x.entry.keys() for w in _LETTERS.findall(k.lower())}:
            out.append(Finding(file=x.shown, line=x.body_line, severity="error", check="empty-entry",
                               message=f"{x.entry.name} has no lore: its body holds nothing but its name or markup; write what a beat should know"))
    return out
