"""What comes back from the model, made into prose by trimming only.

Scaffolding a model echoes (our headings, beat labels, lore headings, chat preambles, outline lines)
is dropped from the start and end of a reply, and the text is cut back to its last complete
sentence. Nothing in the middle is rewritten. A multi-beat reply is split back into beats at its
"### Beat N" markers, or shared out by paragraphs when the markers are missing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from b2p.display import strip_controls
from b2p.lexicon import ABBREVIATIONS, sentences
from b2p.models import LorePick
from b2p.prompts import HEADINGS

# -- trimming -----------------------------------------------------------------------------------

_ENDS = ".!?…"
_CLOSERS = "\"'”’)]*_"
_LABEL_RE = r"^\s*(?:#{1,6}\s*)?(?:\*\*|__)?\s*(?:%s)\s*(\d+)(?:\s*of\s*\d+)?\s*(?:\*\*|__)?\s*[:.\-–—)]?\s*(?:\*\*|__)?\s*"
_LABEL = re.compile(_LABEL_RE % "beat|part|section|chapter", re.I)  # any numbered label
# A oneshot section marker: "### Beat 2", "Beat 2:", "**Part 2**", or a heading/bold number "### 2." / "**2."
_MARK = re.compile(
    r"^\s*(?:(?:#{1,6}|\*\*|__)\s*(?:(?:beat|part|section)\s*)?|(?:beat|part|section)\s*)(\d+)(?:\s*of\s*\d+)?"
    r"\s*(?:\*\*|__)?\s*[:.\-–—)]?\s*(?:\*\*|__)?\s*",
    re.I,
)
_PREAMBLE = ("here is", "here's", "here are", "sure", "certainly", "of course", "okay", "ok,")
_AFTERWORD = ("word count", "(word count", "i hope", "let me know", "note:", "(note", "this passage", "this part", "the end")


def _norm(line: str) -> str:
    return line.strip().strip("#*_>`\"'“”-–—=~•· ").rstrip(":").strip().lower()


def _is_scaffold(line: str, known: Sequence[str], at_start: bool) -> bool:
    """True for a line that is prompt scaffolding or chat filler rather than prose."""
    n = _norm(line)
    if not n or line.lstrip().startswith("#"):
        return True  # blank, a rule (---), a fence (```), a lone quote mark; a Markdown heading is never prose
    words = len(n.split())
    for h in HEADINGS:  # "The story so far:", "Lore for this beat (continued)"; not "The story so far: Jack ran."
        if n.startswith(h.lower()):
            rest = n[len(h) :].strip(" :*_")
            if not rest or rest.startswith("(") or (len(rest.split()) <= 4 and not rest.endswith(tuple(_ENDS))):
                return True
    if _LABEL.match(line):  # "Beat 3", "**Part 2: The Find**"; a label with prose after it is not a whole-line label
        rest = _LABEL.sub("", line, count=1).strip()
        if len(rest.split()) <= 8 and not rest.rstrip("\"'”’*_ ").endswith(tuple(_ENDS)):
            return True
    echo = re.sub(r"^(?:>>\s*)?\d+[.)]\s*", "", n).rstrip("… .")  # an outline line: ">> 2. Jack digs …"
    if n in known or (len(echo) >= 8 and echo != n and any(k.startswith(echo) for k in known)):
        return True
    bare = line.strip().strip("*_ ")
    if bare[:1] in "([" and bare[-1:] in ")]":  # a stage note such as "(back to your prompt)" or "[Beat 2]"
        return True
    if at_start:
        return n.startswith(_PREAMBLE) and (line.rstrip().endswith(":") or words <= 15)
    return n.startswith(_AFTERWORD) and words <= 25


def _strip_prefix(line: str) -> str:
    """'Beat 3: Jack ran.' → 'Jack ran.'; 'The story so far: Jack ran.' → 'Jack ran.'"""
    m = _LABEL.match(line)
    if m and m.end() < len(line) and any(ch in m.group(0) for ch in ":.-–—)*_"):  # "Beat 3: …", not "Part 2 of the plan"
        return line[m.end() :]
    low = line.lstrip("#*_ ").lower()
    for h in HEADINGS:
        if low.startswith(h.lower() + ":"):
            return line.lstrip("#*_ ")[len(h) + 1 :].lstrip(" *_")
    return line


def strip_scaffolding(text: str, known: Sequence[str] = ()) -> str:
    """Drop scaffolding lines (our headings, beat labels, lore headings, chat preambles) from the start and end only."""
    known_n = {_norm(k) for k in known if _norm(k)}
    lines = text.strip().splitlines()
    while lines and _is_scaffold(lines[0], known_n, at_start=True):
        lines.pop(0)
    if lines:
        lines[0] = _strip_prefix(lines[0])
    while lines and _is_scaffold(lines[-1], known_n, at_start=False):
        lines.pop()
    return "\n".join(lines).strip()


def sentence_end(text: str) -> int:
    """Index just past the last complete sentence in ``text`` (0 when there is none)."""
    i = len(text) - 1
    while i >= 0:
        if text[i] in _ENDS:
            j = i + 1
            while j < len(text) and text[j] in _CLOSERS:
                j += 1
            word = text[:i].rsplit(None, 1)[-1].lower().lstrip("\"'“(") if text[:i].strip() else ""
            nxt = text[j : j + 1]
            listed = text[:i].strip().isdigit()  # "3." opening a list line is no sentence
            if (not nxt or nxt.isspace()) and not (text[i] == "." and (word in ABBREVIATIONS or listed)):
                return j
        i -= 1
    return 0


def trim_to_sentence(text: str) -> str:
    """Cut ``text`` back to its last complete sentence ('' when it has none)."""
    return text[: sentence_end(text)].rstrip()


def clean_prose(text: str, known: Sequence[str] = ()) -> str:
    """Scaffolding off both ends, then back to the last complete sentence. ``known``: lines to treat as
    scaffolding when echoed whole (the beats, lore headings, the title). Control characters are never
    prose: they go first."""
    text = strip_scaffolding(strip_controls(text), known)
    text = trim_to_sentence(text)
    return strip_scaffolding(text, known)  # trimming can expose a trailing label line


def known_lines(beats: Sequence[str], picks: Sequence[LorePick], title: str | None) -> list[str]:
    """The lines that are scaffolding when a model echoes them whole."""
    out = list(beats) + [p.name for p in picks] + [f"{p.name} ({p.kind})" for p in picks]
    return out + ([title] if title else [])


# -- splitting a oneshot chapter ----------------------------------------------------------------


def _balanced(units: list[str], groups: int) -> list[list[str]]:
    """Contiguous groups of ``units`` with roughly equal word counts, none empty while units last."""
    sizes = [max(1, len(u.split())) for u in units]
    total = sum(sizes)
    out: list[list[str]] = [[] for _ in range(groups)]
    done, g = 0, 0
    for k, (u, s) in enumerate(zip(units, sizes, strict=True)):
        left = len(units) - k
        while g < groups - 1 and out[g] and (done + s / 2 > total * (g + 1) / groups or left <= groups - 1 - g):
            g += 1
        out[g].append(u)
        done += s
    return out


def split_sections(text: str, targets: Sequence[int], known: Sequence[str] = ()) -> tuple[dict[int, str], str]:
    """Split a multi-beat reply into {beat: prose} and say how: 'markers', 'paragraphs' or 'sentences'.

    The reply was asked to open each part with "### Beat N". When every target's marker is there,
    in order, they decide (a section may come back empty); otherwise the prose is shared out in
    order by paragraphs (or sentences), balanced by length.
    """
    sections: dict[int, list[str]] = {}
    current: int | None = None
    loose: list[str] = []
    for line in text.splitlines():
        m = _MARK.match(line)
        if m and int(m.group(1)) in targets and int(m.group(1)) not in sections and (current is None or int(m.group(1)) > current):
            current = int(m.group(1))
            sections[current] = []
            rest = line[m.end() :].strip()
            if len(rest.split()) > 8:  # prose on the label's line; a short rest is a title
                sections[current].append(rest)
            continue
        (sections[current] if current is not None else loose).append(line)
    if len(sections) == len(targets):  # an empty section stays empty: the caller writes that beat on its own
        sections[targets[0]][:0] = loose  # prose before the first marker belongs to it (filler is trimmed)
        return {i: clean_prose("\n".join(sections[i]), known) for i in targets}, "markers"
    # A marker line still ends a paragraph when the markers cannot decide the split.
    body = ["" if _MARK.match(ln) and len(_MARK.sub("", ln, count=1).split()) <= 8 else ln for ln in text.splitlines()]
    prose = clean_prose("\n".join(body), known)
    units = [p.strip() for p in re.split(r"\n\s*\n", prose) if p.strip()]
    how = "paragraphs"
    if len(units) < len(targets):
        units = sentences(" ".join(prose.split()))
        how = "sentences"
    groups = _balanced(units, len(targets)) if units else [[] for _ in targets]
    joiner = "\n\n" if how == "paragraphs" else " "
    return {i: clean_prose(joiner.join(g), known) for i, g in zip(targets, groups, strict=True)}, how
