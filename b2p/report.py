"""The chapter report: one self-contained HTML file with each beat's prose beside the lore it was given.

``b2p report CHAPTER.md`` reads the chapter's trace (what every beat was given, what was left out,
what it cost, eval figures where ``b2p eval`` has run) and the bible's lore index (every entry's
names, aliases and lead), and renders them with Jinja2. Names of bible entries are highlighted in
the prose, with the entry's lead shown on hover or focus; a name the beat's lore did not include
is marked differently (a retrieval miss, or the model's invention: both worth a look).

The page needs nothing but itself: inline CSS, no script at all, no fonts or images to fetch, and
a Content-Security-Policy that forbids loading anything. Every string from the bible, the beats
or the model is autoescaped by Jinja2 and has its control characters made visible, so a beat that
contains ``<script>`` shows as that text.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from b2p.display import visible
from b2p.errors import ConfigError
from b2p.settings import Settings
from b2p.trace import BeatTrace, ChapterTrace

TEMPLATE = "report.html.j2"


@dataclass
class EntryInfo:
    """What the report shows of a bible entry when its name is pointed at."""

    id: str
    name: str
    kind: str
    lead: str


@dataclass
class Span:
    """A run of prose: plain text, or a mention of an entry (``entry`` set)."""

    text: str
    entry: EntryInfo | None = None
    in_lore: bool = True


@dataclass
class BeatView:
    index: int
    beat: str
    written: bool
    paragraphs: list[list[Span]] = field(default_factory=list)
    trace: BeatTrace | None = None
    words: int = 0
    unlisted: list[EntryInfo] = field(default_factory=list)  # entries the prose names outside its lore
    figures: list[tuple[str, str]] = field(default_factory=list)  # eval figures, label → value


@dataclass
class ReportData:
    trace: ChapterTrace
    chapter: Path
    beats: list[BeatView]
    entries_known: bool  # False when the bible's store could not be read: names are not highlighted
    note: str | None = None
    made: str = ""


class _Names:
    """The bible's entries and name matcher, read from the lore index (or absent)."""

    def __init__(self, entries: dict[str, EntryInfo], matcher: Any) -> None:
        self.entries = entries
        self.matcher = matcher

    def spans(self, text: str, lore_ids: set[str]) -> tuple[list[Span], set[str]]:
        """``text`` cut into plain runs and entry mentions; also the ids it names outside ``lore_ids``."""
        if self.matcher is None:
            return [Span(text)], set()
        out, last, outside = [], 0, set()
        for m in self.matcher.find(text):
            ids = [i for i in m.entry_ids if i in self.entries]
            if not ids:
                continue
            # A shared alias names whichever claimant the beat's lore has, else the first.
            chosen = next((i for i in ids if i in lore_ids), ids[0])
            if m.start > last:
                out.append(Span(text[last : m.start]))
            inside = chosen in lore_ids
            out.append(Span(text[m.start : m.end], self.entries[chosen], inside))
            if not inside:
                outside.add(chosen)
            last = m.end
        if last < len(text):
            out.append(Span(text[last:]))
        return out, outside


def _load_names(settings: Settings, bible: str) -> _Names | None:
    """The bible's lore index, when the store holds the bible; None otherwise (the report says so)."""
    from b2p.errors import B2PError
    from b2p.index import open_index
    from b2p.store import Store

    try:
        with Store.open(settings, bible=bible) as st, st.lock(exclusive=False):
            index = open_index(settings, st, bible)
            table, matcher = index.entries, index.matcher  # read under the lock
    except B2PError:
        return None
    entries = {}
    for i in table:
        e = table[i]
        entries[i] = EntryInfo(id=e.id, name=e.name, kind=e.kind, lead=e.lead or "")
    return _Names(entries, matcher)


def _figures(b: BeatTrace) -> list[tuple[str, str]]:
    """Eval figures kept in the trace for this beat, as label → shown value (empty when none)."""
    ev = getattr(b, "eval", None)
    if ev is None:
        return []
    data = ev if isinstance(ev, dict) else ev.model_dump()
    out = []
    for key, value in data.items():
        if value is None or isinstance(value, (dict, list)):
            continue
        label = key.replace("_", " ")
        shown = f"{value:.2f}" if isinstance(value, float) else str(value)
        out.append((label, shown))
    return out


def build_report(chapter: Path, settings: Settings) -> ReportData:
    """Everything the page shows, from the chapter's trace and (when it can be read) the bible's store."""
    from b2p import trace as tr
    from b2p.resume import current_trace

    saved = current_trace(chapter)  # the chapter file is the truth: the writer's edits are what the page shows
    if saved is None:
        raise ConfigError(f"{chapter}: no trace beside it ({tr.trace_path(chapter)}); a report needs a chapter written by 'b2p generate -o'")
    names = _load_names(settings, saved.bible)
    done = saved.done()
    sheet = _sheet_beats(saved)
    views = []
    for index in range(1, saved.totals.beats + 1):
        b = done.get(index)
        if b is None:
            views.append(BeatView(index=index, beat=sheet.get(index, ""), written=False))
            continue
        lore_ids = {p.id for p in b.lore}
        paragraphs, outside = [], set()
        for para in [p for p in b.text.split("\n\n") if p.strip()]:
            spans, out = names.spans(para.strip(), lore_ids) if names else ([Span(para.strip())], set())
            paragraphs.append(spans)
            outside |= out
        unlisted = sorted((names.entries[i] for i in outside), key=lambda e: e.name) if names else []
        views.append(BeatView(index=index, beat=b.beat, written=True, paragraphs=paragraphs, trace=b,
                              words=len(b.text.split()), unlisted=unlisted, figures=_figures(b)))
    note = None if names else f"the bible '{saved.bible}' is not in the store at {settings.chroma_url or settings.store}: names are not highlighted"
    return ReportData(trace=saved, chapter=chapter, beats=views, entries_known=names is not None, note=note,
                      made=_dt.datetime.now().strftime("%Y-%m-%d %H:%M"))


def _sheet_beats(saved: ChapterTrace) -> dict[int, str]:
    """The beat lines of beats not yet written, read from the sheet the trace names when it still matches."""
    from b2p.beats import parse_beats

    try:
        beats = parse_beats(Path(saved.beats_file).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return {}
    from b2p.trace import sheet_hash

    return {i: t for i, t in enumerate(beats, start=1)} if sheet_hash(beats) == saved.beats_sha256 else {}


def render_report(data: ReportData) -> str:
    """The page as one HTML string."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("b2p", "templates"),
        autoescape=True,  # every {{ }} is escaped: bible, beats and model text are data
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["visible"] = visible
    return env.get_template(TEMPLATE).render(r=data, t=data.trace)


def report_path(chapter: Path) -> Path:
    """chapter.md → chapter.report.html, beside it."""
    return chapter.with_name(chapter.stem + ".report.html")


def write_report(chapter: Path, settings: Settings, out: Path | None = None) -> Path:
    """Build and write the report (atomically); returns where it went."""
    from b2p.trace import write_atomic

    target = out or report_path(chapter)
    write_atomic(target, render_report(build_report(chapter, settings)))
    return target
