"""``b2p eval``'s thresholds (``--fail-under``) and its plain-text report.

The report is plain text a writer can read: one row of figures per beat, then what is worth a look
(debris lines, missing beat words, copied text, lore not named, the judge's reason), then the
chapter's figures. This module makes the rows and lines; ``cli.py`` draws them (a table at the
terminal's width, tab-separated when piped; text from the model shown as written, control characters
made visible).
"""

from __future__ import annotations

from b2p.errors import ConfigError, did_you_mean
from b2p.evaluate import COPY_LIMIT, BeatEval, ChapterEval

# key → (ChapterFigures field, direction, what it checks). 'min': fails when the figure is below the
# value; 'max': fails when it is above. A figure that could not be measured fails too.
CHECKS: dict[str, tuple[str, str, str]] = {
    "coverage": ("coverage", "min", "median share of a beat's content words its prose uses (0–1)"),
    "similarity": ("similarity", "min", "median beat ↔ prose similarity (cosine, -1–1)"),
    "lore": ("lore", "min", "share of the beats' lore picks their prose names (0–1)"),
    "length": ("length", "min", "median words per beat / words_per_beat"),
    "judge": ("judge", "min", "mean judge score (1–5; needs --judge)"),
    "rating": ("rating", "min", "mean writer rating (1–5)"),
    "repeat": ("repeat", "max", "highest share of a beat's word 6-grams already in earlier beats (0–1)"),
    "copied": ("copied_beats", "max", f"beats repeating more than {COPY_LIMIT:.0%} of their 6-grams"),
    "loops": ("loops", "max", "highest share of a beat's 6-grams repeated within it (0–1)"),
    "debris": ("debris", "max", "debris lines (scaffolding, markup, comments) in the chapter"),
    "mid_sentence": ("mid_sentence", "max", "beats that end mid-sentence"),
    "unpicked": ("unpicked", "max", "bible entries named in prose that their beat's lore left out"),
}


def parse_checks(spec: str) -> dict[str, float]:
    """'coverage=0.5,repeat=0.2' → {'coverage': 0.5, 'repeat': 0.2}; one ConfigError line otherwise."""
    out: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        key, eq, value = part.partition("=")
        key = key.strip().replace("-", "_")
        if key not in CHECKS:
            raise ConfigError(f"--fail-under: unknown figure '{key}'{did_you_mean(key, CHECKS)}; use {', '.join(CHECKS)}")
        try:
            out[key] = float(value)
        except ValueError:
            raise ConfigError(f"--fail-under: '{part}' needs a number, e.g. {key}=0.5") from None
        if not eq:
            raise ConfigError(f"--fail-under: '{part}' needs a number, e.g. {key}=0.5")
    if not out:
        raise ConfigError("--fail-under: give at least one figure, e.g. coverage=0.5,repeat=0.2")
    return out


def failures(report: ChapterEval, checks: dict[str, float]) -> list[str]:
    """One line per figure that fails its check."""
    out = []
    for key, limit in checks.items():
        field, direction, _ = CHECKS[key]
        value = getattr(report.figures, field)
        if value is None:
            out.append(f"{key}: not measured (needs {'--judge' if key == 'judge' else 'values to measure'}), limit {limit:g}")
        elif (direction == "min" and value < limit) or (direction == "max" and value > limit):
            out.append(f"{key}: {value:g} is {'below' if direction == 'min' else 'above'} {limit:g}")
    return out


# -- the plain report: cli.py draws the table and lines (text shown as written, control characters visible) --

COLUMNS = ["beat", "words", "cover", "sim", "repeat", "loops", "debris", "end", "lore", "judge", "beat text"]
NUMERIC = ("beat", "words", "cover", "sim", "repeat", "loops", "debris", "judge")


def _f(value: float | None, fmt: str = "{:.2f}") -> str:
    return "–" if value is None else fmt.format(value)


def _pct(value: float) -> str:
    return f"{value:.0%}"


def title(report: ChapterEval) -> str:
    f = report.figures
    return (f"{report.chapter}: {f.beats} of {f.beats_total} beats, {f.words} words · {report.model} · {report.mode}"
            + (f" · {report.words_per_beat} words a beat" if report.words_per_beat else ""))


def row(b: BeatEval) -> list[str]:
    """One beat's cells, in COLUMNS order; lore is 'named/picks', '+N' entries named but not picked."""
    named = len(b.lore.used) + len(b.lore.unused)
    lore = f"{len(b.lore.used)}/{named}" + (f" +{len(b.lore.unpicked)}" if b.lore.unpicked else "")
    return [str(b.index), str(b.words), _f(b.coverage), _f(b.similarity), _pct(b.repeat), _pct(b.loops), str(len(b.debris)),
            "cut" if b.mid_sentence else "ok", lore, _f(b.judge.score if b.judge else None, "{:.1f}"), b.beat]


def notes(b: BeatEval, words_per_beat: int | None) -> list[str]:
    """What is worth a writer's look in one beat, one line each (empty when nothing is)."""
    out = [f"{d.kind} line {d.line}: {d.text}" for d in b.debris]
    if b.mid_sentence:
        out.append("ends mid-sentence")
    if b.repeat > COPY_LIMIT:
        out.append(f"repeats {_pct(b.repeat)} of its 6-grams from earlier beats")
    if b.loops > COPY_LIMIT:
        out.append(f"goes round: {_pct(b.loops)} of its 6-grams repeat within the beat")
    if b.lore_copy > COPY_LIMIT:
        out.append(f"copies {_pct(b.lore_copy)} of its 6-grams from its lore")
    if b.missing:
        out.append("beat words not in the prose: " + ", ".join(b.missing))
    if b.closest_beat is not None and b.closest_beat != b.index:
        out.append(f"the prose is closer to beat {b.closest_beat} than to its own")
    if b.length is not None and words_per_beat and not 0.5 <= b.length <= 2.0:
        out.append(f"{b.words} words for {words_per_beat} asked")
    if b.lore.unused:
        out.append("lore not named: " + ", ".join(b.lore.unused))
    if b.lore.unpicked:
        out.append("named but not in its lore: " + ", ".join(b.lore.unpicked))
    if b.judge is not None:
        grades = ", ".join(f"{k} {_f(getattr(b.judge, k), '{:g}')}" for k in ("follows", "lore", "prose"))
        out.append(f"judge {_f(b.judge.score, '{:.1f}')} ({grades})" + (f": {b.judge.reason}" if b.judge.reason else "")
                   + ("" if b.judge.parsed else " [answer not fully parsed]"))
    if b.feedback:
        ratings = [str(f.rating) for f in b.feedback if f.rating is not None]
        out.append("writer: " + ", ".join(f.decision for f in b.feedback) + (f"; rated {', '.join(ratings)}" if ratings else "")
                   + ("" if b.feedback_recorded else " (from its drafts)"))
    return out


def summary(report: ChapterEval) -> list[str]:
    """The chapter's figures as short phrases."""
    f = report.figures
    out = [f"coverage {_f(f.coverage)} (median)", f"similarity {_f(f.similarity)} (median)",
           f"{f.copied_beats} beats copied (> {COPY_LIMIT:.0%} repeated)", f"highest repeat {_pct(f.repeat)}",
           f"{f.debris} debris lines", f"{f.mid_sentence} mid-sentence endings", f"lore named {_f(f.lore)}",
           f"{f.unpicked} entries named but not picked", f"length {_f(f.length)} × asked (median)"]
    if f.judged:
        out.append(f"judge {_f(f.judge)} over {f.judged} beats")
    if f.decisions:
        out.append(", ".join(f"{v} {k}" for k, v in sorted(f.decisions.items())) + " (writer)")
    if f.rating is not None:
        out.append(f"writer rating {f.rating:.1f}")
    return out
