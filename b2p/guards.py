"""Generation guards: what may reach the page, judged by the same measures ``b2p eval`` reports.

Every draft is **cleaned**: the prompt scaffolding is trimmed from its ends and it is cut back to its last
complete sentence (``b2p.prose``), then every line the eval calls debris (``b2p.measures.debris``:
headings, labels, markup, list numbers, stage notes, comments on the writing, a beat written back) is
cut wherever it stands; a comment or markup sentence inside a line of prose goes alone. Cutting can make a
neighbour look like a title, so it is repeated until the measures find nothing. What is left is then
**checked**:

- **copied**: more than ``COPY_LIMIT`` of its word 6-grams are already in earlier beats;
- **off-beat**: its coverage of the beat's words is below the floor (``coverage_floor``), or below
  ``NORM_SHARE`` of the chapter's median so far;
- **empty**: nothing usable was left.

The drafter drafts a failing draft again (a new seed and a nudge in the prompt), at most ``redrafts``
times, and keeps the first that passes. When none does, the best is kept: a copied one first loses its
most-copied sentences, whole, until it is under the limit (when anything is left); whatever still fails
is flagged in the trace and said on screen. Nothing is ever rewritten, only cut.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

from b2p import lexicon, measures, prose
from b2p.display import strip_controls
from b2p.trace import Cut, Draft

COPY_LIMIT = measures.COPY_LIMIT
NORM_SHARE = 0.5  # a beat covered less than half as well as the chapter's median so far misses it
NORM_BEATS = 2  # earlier beats needed before the chapter has a norm
MAX_PASSES = 50


# -- cleaning -------------------------------------------------------------------------------------------


def _spans(line: str) -> list[tuple[int, int]]:
    """Character spans of the line's sentences (the lexicon's splitter)."""
    out, at = [], 0
    for s in lexicon.sentences(line):
        start = line.find(s, at)
        if start < 0:
            continue
        out.append((start, start + len(s)))
        at = start + len(s)
    return out


def _drop_spans(line: str, spans: Sequence[tuple[int, int]]) -> str:
    for start, end in sorted(spans, reverse=True):
        line = line[:start] + line[end:]
    return re.sub(r"[ \t]{2,}", " ", line).strip()


def _tidy(lines: list[str]) -> str:
    """Lines back into prose: no run of blank lines longer than one, none at the ends."""
    return re.sub(r"\n\s*\n(\s*\n)+", "\n\n", "\n".join(lines)).strip()


def _alone(sentence: str, kind: str) -> bool:
    """Is this sentence, on its own, debris of ``kind`` (a comment on the writing, or markup)?"""
    if kind == "meta":
        return measures.is_meta(sentence)
    return any(d.kind == kind for d in measures.debris(sentence))


def _cut_debris(text: str, found: Sequence[measures.Debris]) -> str:
    lines = text.splitlines()
    for d in found:
        line = lines[d.line - 1]
        if d.kind in ("meta", "markup"):  # a comment or a tag inside a line of prose: only its sentence goes
            spans = _spans(line)
            bad = [sp for sp in spans if _alone(line[sp[0] : sp[1]], d.kind)]
            if bad and len(bad) < len(spans):
                lines[d.line - 1] = _drop_spans(line, bad)
                continue
        lines[d.line - 1] = ""
    return _tidy(lines)


def clean(raw: str, known: Sequence[str], beats: Sequence[str]) -> str:
    """The draft with its scaffolding and debris cut and its unfinished end trimmed ('' when nothing is left).
    ``known``: lines that are scaffolding when echoed whole; ``beats``: the sheet's beat lines."""
    text = prose.clean_prose(raw, known)
    for _ in range(MAX_PASSES):
        found = measures.debris(text, beats)
        if not found:
            break
        text = prose.clean_prose(_cut_debris(text, found), known)
    return text


# -- copies ---------------------------------------------------------------------------------------------


def _copied_per_sentence(text: str, seen: set[tuple[str, ...]]) -> list[tuple[int, int, int, int]]:
    """(copied 6-grams starting in it, line, start, end) for each sentence of ``text``."""
    lines = text.splitlines()
    units: list[tuple[int, int, int]] = []  # (line, start, end)
    for n, line in enumerate(lines):
        units += [(n, a, b) for a, b in _spans(line)]
    words: list[tuple[str, int]] = []  # (word, unit) in reading order
    for u, (n, a, b) in enumerate(units):
        words += [(w.lower().replace("’", "'"), u) for w in measures.words(lines[n][a:b])]
    counts = [0] * len(units)
    k = measures.NGRAM
    for i in range(len(words) - k + 1):
        if tuple(w for w, _ in words[i : i + k]) in seen:
            counts[words[i][1]] += 1
    return [(c, *u) for c, u in zip(counts, units, strict=True)]


def cut_copies(text: str, earlier: Sequence[str], known: Sequence[str] = (), beats: Sequence[str] = (),
               limit: float = COPY_LIMIT) -> tuple[str, list[str]]:
    """Cut whole sentences, most copied first, until no more than ``limit`` of the prose's 6-grams are
    in ``earlier``; returns the prose left ('' when every sentence was a copy) and the sentences cut."""
    seen = {g for t in earlier for g in measures.ngrams(t)}
    cut: list[str] = []
    while text and measures.repeat_share(text, earlier) > limit:
        worst = max(_copied_per_sentence(text, seen), key=lambda u: u[0], default=None)
        if worst is None or worst[0] == 0:
            break  # the shared 6-grams straddle sentences; no one sentence is a copy
        _, n, a, b = worst
        lines = text.splitlines()
        cut.append(lines[n][a:b])
        lines[n] = _drop_spans(lines[n], [(a, b)])
        text = clean(_tidy(lines), known, beats)
    return text, cut


# -- checking -------------------------------------------------------------------------------------------


@dataclass
class Verdict:
    """A cleaned draft's figures and what is wrong with it (``problems`` start with their kind)."""

    text: str
    coverage: float | None
    repeat: float
    missing: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def has(self, kind: str) -> bool:
        return any(p.startswith(kind + ":") for p in self.problems)

    def rank(self) -> tuple[int, float, float]:
        """Smaller is better: fewer problems, then more of the beat, then less copied."""
        return len(self.problems), -(self.coverage or 0.0), self.repeat


def norm(covered: Sequence[float | None]) -> float | None:
    """The chapter's coverage norm so far: the median of its earlier beats' coverage (None: too few yet)."""
    got = [c for c in covered if c is not None]
    return statistics.median(got) if len(got) >= NORM_BEATS else None


def check(text: str, beat: str, earlier: Sequence[str], chapter_norm: float | None, floor: float) -> Verdict:
    """What the guards find wrong with a cleaned draft of ``beat`` (see the module doc)."""
    rep = measures.repeat_share(text, earlier)
    cov = measures.coverage(beat, text)
    v = Verdict(text=text, coverage=cov.score, repeat=rep, missing=cov.missing)
    if not text.strip():
        v.problems.append("empty: nothing usable was left once its debris was cut")
        return v
    if rep > COPY_LIMIT:
        v.problems.append(f"copied: {rep:.0%} of its 6-grams are in earlier beats (the limit is {COPY_LIMIT:.0%})")
    if cov.score is not None:
        if cov.score < floor:
            v.problems.append(f"off-beat: it uses {cov.score:.0%} of the beat's words (the floor is {floor:.0%})")
        elif chapter_norm is not None and cov.score < NORM_SHARE * chapter_norm:
            v.problems.append(f"off-beat: it uses {cov.score:.0%} of the beat's words, far below the chapter's {chapter_norm:.0%} so far")
    return v


def nudge(v: Verdict, beat: str) -> str:
    """What the prompt adds when a draft is written again for ``v``'s problems."""
    parts = []
    if v.has("copied"):
        parts.append("Write new sentences; do not repeat any sentence of the story so far.")
    if v.has("off-beat"):
        words = ", ".join(v.missing[:6])
        parts.append(f"This part must show: {beat}" + (f" (use: {words})." if words else ""))
    if v.has("empty"):
        parts.append("Write the story's prose itself, in full sentences.")
    return " ".join(parts)


def salvage(v: Verdict, beat: str, earlier: Sequence[str], chapter_norm: float | None, floor: float,
            known: Sequence[str], beats: Sequence[str]) -> tuple[Verdict, list[str]]:
    """A failed draft made the best it can be by cutting: a copied one loses its most-copied sentences
    (kept as it was when nothing would be left). Returns the verdict on what is left, and what was cut."""
    if not v.has("copied"):
        return v, []
    text, cut = cut_copies(v.text, earlier, known, beats)
    if not text:
        return v, []
    return check(text, beat, earlier, chapter_norm, floor), cut


def draft_record(v: Verdict, seed: int | None, extra: str | None) -> Draft:
    return Draft(seed=seed, nudge=extra, words=len(v.text.split()), coverage=v.coverage, repeat=v.repeat,
                 problems=list(v.problems))


# -- what was cut, said plainly -------------------------------------------------------------------------

_NOUNS = {"heading": ("a heading", "headings"), "label": ("a label", "labels"), "markup": ("a markup line", "markup lines"),
          "list": ("a list line", "list lines"), "note": ("a stage note", "stage notes"),
          "meta": ("a comment on the writing", "comments on the writing"), "echo": ("a beat line written back", "beat lines written back"),
          "copied": ("a copied sentence", "copied sentences"), "unfinished": ("an unfinished sentence", "unfinished sentences"),
          "scaffolding": ("a scaffolding line", "scaffolding lines")}


def cuts_between(raw: str, kept: str, beats: Sequence[str], copied: Sequence[str] = ()) -> list[Cut]:
    """What of ``raw`` (the draft as streamed) is not in ``kept``: whole lines by their debris kind, and the
    sentences of partly kept lines (comments on the writing, copies, an unfinished end)."""
    raw = strip_controls(raw).strip()
    kinds = {d.line: d.kind for d in measures.debris(raw, beats)}
    flat = " ".join(kept.split())
    copies = {" ".join(c.split()) for c in copied}
    out: list[Cut] = []
    lines = raw.splitlines()
    last = max((n for n, ln in enumerate(lines) if ln.strip()), default=-1)
    for n, line in enumerate(lines):
        s = line.strip()
        if not s or " ".join(s.split()) in flat:
            continue
        parts = [line[a:b] for a, b in _spans(line)]
        missing = [p for p in parts if " ".join(p.split()) not in flat]
        whole = len(missing) == len(parts) and not any(" ".join(p.split()) in copies for p in parts)
        if whole and (n + 1) in kinds:
            out.append(Cut(kind=kinds[n + 1], text=s))
            continue
        if whole and len(parts) <= 1 and n != last:
            out.append(Cut(kind="scaffolding", text=s))
            continue
        for p in missing:
            q = " ".join(p.split())
            if q in copies:
                kind = "copied"
            elif _alone(p, "meta"):
                kind = "meta"
            elif _alone(p, "markup"):
                kind = "markup"
            elif n == last and p is parts[-1] and prose.sentence_end(p.strip()) < len(p.strip()):
                kind = "unfinished"
            else:
                kind = kinds.get(n + 1, "scaffolding")
            out.append(Cut(kind=kind, text=p.strip()))
    return out


def describe(cuts: Sequence[Cut], raw: str, kept: str) -> str:
    """'kept 3 of 4 paragraphs; cut: a heading, 2 copied sentences' (words when no paragraph went whole)."""
    counts: dict[str, int] = {}
    for c in cuts:
        counts[c.kind] = counts.get(c.kind, 0) + 1
    said = ", ".join(_NOUNS.get(k, (k, k))[0] if n == 1 else f"{n} {_NOUNS.get(k, (k, k))[1]}" for k, n in counts.items())

    def paragraphs(t: str) -> int:
        return len([p for p in re.split(r"\n\s*\n", t) if p.strip()])

    total, left = paragraphs(strip_controls(raw)), paragraphs(kept)
    if left < total:
        head = f"kept {left} of {total} paragraphs"
    else:
        head = f"kept {len(kept.split())} of {len(strip_controls(raw).split())} words"
    return f"{head}; cut: {said}" if said else head
