"""``b2p eval``: measure a generated chapter, beat by beat and as a whole.

:func:`evaluate_chapter` reads the chapter, the trace beside it (the prose of each beat, the lore it
was given, the writer's decisions) and the bible's lore index (names and aliases), and returns a
:class:`ChapterEval`; :func:`evaluate_beat` is the same for one beat's prose, on plain text. The
measures themselves live in ``b2p.measures``; the judge's rubric in ``b2p.judge``; thresholds and
the plain-text report in ``b2p.eval_report``.

The trace is the source of the prose: a chapter edited by hand since (or a trace made for another
chapter) is refused, since its figures would describe text that is not on the page.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from b2p import measures
from b2p.errors import ConfigError
from b2p.measures import Debris, LoreUse
from b2p.models import BeatLore, LorePick
from b2p.settings import Settings
from b2p.chapterfile import changed_beats, parse_chapter, saved_hash
from b2p.trace import BeatTrace, ChapterTrace, Feedback, Figures, Judgement, text_hash, trace_path, write_atomic
from b2p.userfiles import decode_user_text, read_user_file
from b2p.writer import render_chapter

COPY_LIMIT = measures.COPY_LIMIT  # a beat repeating more than this share of its 6-grams from earlier beats counts as copied


class BeatEval(BaseModel):
    """The figures of one beat. Coverage, similarity, length and lore use are taken on the prose without its
    debris lines; repetition, debris and the mid-sentence check on the prose as it is on the page."""

    index: int
    beat: str
    words: int
    length: float | None = Field(None, description="words / words_per_beat")
    coverage: float | None = None
    missing: list[str] = Field(default_factory=list, description="Beat words the prose never uses.")
    similarity: float | None = None
    closest_beat: int | None = Field(None, description="The beat of the chapter its prose is most similar to.")
    repeat: float = Field(0.0, description="Share of its word 6-grams already in earlier beats.")
    loops: float = Field(0.0, description="Share of its word 6-grams repeated within the beat.")
    lore_copy: float = Field(0.0, description="Share of its word 6-grams copied from its lore's text.")
    debris: list[Debris] = Field(default_factory=list)
    mid_sentence: bool = False
    lore: LoreUse = Field(default_factory=LoreUse)
    judge: Judgement | None = None
    feedback: list[Feedback] = Field(default_factory=list)
    feedback_recorded: bool = Field(False, description="False when the decisions were inferred from an interactive beat's drafts.")


class ChapterFigures(BaseModel):
    beats: int
    beats_total: int
    words: int
    coverage: float | None = Field(None, description="Median beat coverage.")
    similarity: float | None = Field(None, description="Median beat ↔ prose similarity.")
    repeat: float = Field(0.0, description="Highest beat repeat share.")
    copied_beats: int = Field(0, description=f"Beats repeating more than {COPY_LIMIT:.0%} of their 6-grams from earlier beats.")
    loops: float = Field(0.0, description="Highest loop share.")
    lore_copy: float = Field(0.0, description="Highest lore-copy share.")
    debris: int = Field(0, description="Debris lines in the chapter.")
    mid_sentence: int = Field(0, description="Beats ending mid-sentence.")
    length: float | None = Field(None, description="Median words / words_per_beat.")
    lore: float | None = Field(None, description="Share of the beats' lore picks their prose names.")
    unpicked: int = Field(0, description="Bible entries named in prose that their beat's lore did not include.")
    judge: float | None = Field(None, description="Mean judge score, 1–5.")
    judged: int = 0
    decisions: dict[str, int] = Field(default_factory=dict)
    rating: float | None = Field(None, description="Mean writer rating, 1–5.")


class ChapterEval(BaseModel):
    """What ``b2p eval --json`` prints (with ``failed``)."""

    chapter: str
    trace: str
    bible: str
    model: str
    mode: str
    words_per_beat: int | None
    beats: list[BeatEval]
    figures: ChapterFigures
    failed: list[str] = Field(default_factory=list)


# -- one beat, plain text ------------------------------------------------------------------------------


def evaluate_beat(
    index: int,
    beat: str,
    prose: str,
    *,
    earlier: Sequence[str] = (),
    beats: Sequence[str] = (),
    words_per_beat: int | None = None,
    picks: Sequence[LorePick] = (),
    lore_texts: Sequence[str] = (),
    find: Callable[[str], Any] | None = None,
    names: Callable[[str], str | None] = lambda _id: None,
    embed: measures.Embed | None = None,
) -> BeatEval:
    """Every text measure of one beat's ``prose``: ``earlier`` is the chapter's prose before it, ``beats``
    the sheet's beat lines (for echoes), ``find``/``names`` the bible's name matcher (for lore use) and
    ``embed`` the embedding model (for similarity; skipped when None)."""
    found = measures.debris(prose, beats or [beat])
    clean = measures.without_debris(prose, found)
    cov = measures.coverage(beat, clean)
    return BeatEval(
        index=index,
        beat=beat,
        words=len(clean.split()),
        length=measures.length_ratio(clean, words_per_beat),
        coverage=cov.score,
        missing=cov.missing,
        similarity=measures.similarity(beat, clean, embed) if embed is not None else None,
        repeat=measures.repeat_share(prose, earlier),
        loops=measures.loop_share(prose),
        lore_copy=measures.repeat_share(prose, lore_texts),
        debris=found,
        mid_sentence=measures.ends_mid_sentence(prose),
        lore=measures.lore_use(clean, picks, find, names) if find is not None else LoreUse(),
    )


# -- reading a chapter and its trace ---------------------------------------------------------------------


def _norm(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


def _flat(text: str) -> str:
    return " ".join(text.split())


def load_chapter(chapter: Path) -> ChapterTrace:
    """The chapter's trace, checked against the chapter on disk; one ConfigError line (exit 2) otherwise."""
    text = decode_user_text(read_user_file(chapter, "chapter", "a chapter written by 'b2p generate -o'", error=ConfigError),
                            str(chapter), "a Markdown chapter", error=ConfigError)
    path = trace_path(chapter)
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{chapter}: no trace beside it ({path.name}); eval needs the trace 'b2p generate -o' writes with the chapter") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot read the trace: {err}") from None
    try:
        trace = ChapterTrace.model_validate(json.loads(raw))
    except (json.JSONDecodeError, ValidationError) as err:
        kind = "not JSON" if isinstance(err, json.JSONDecodeError) else "not a b2p chapter trace"
        raise ConfigError(f"{path}: {kind}; eval needs the trace 'b2p generate -o' writes with the chapter") from None
    if not trace.beats:
        raise ConfigError(f"{path}: no finished beats to evaluate; run 'b2p generate … -o {chapter} --resume'")
    doc = parse_chapter(text, str(chapter))  # markers damaged: one line that says how to recover
    if doc.marked:  # each beat between its markers (b2p.chapterfile); the writer's own text around them is not measured
        if trace.pending:
            raise ConfigError(f"{chapter}: holds prose its trace does not (a run stopped while saving); finish it with 'b2p generate … -o {chapter} --resume'")
        if not set(doc.beats) & {b.index for b in trace.beats}:
            raise ConfigError(f"{path}: made for another chapter: none of its {len(trace.beats)} beats is in {chapter}")
        edits = changed_beats(doc, {b.index: b.saved_sha256 or saved_hash(b.text) for b in trace.beats}, {}, str(chapter))
        if edits:
            raise ConfigError(f"{chapter}: edited by hand since its trace was written (beat {min(edits)} differs); eval measures the prose "
                              f"the trace holds: restore the beat, or rewrite it with 'b2p generate … --only {min(edits)} --force'")
        return trace
    page, expected = _norm(text), _norm(render_chapter(trace))  # a chapter from before beats were marked
    if page != expected:
        flat = _flat(text)
        on_page = [b for b in trace.beats if _flat(b.text) in flat]
        if page.startswith(expected):
            raise ConfigError(f"{chapter}: holds prose its trace does not (a run stopped while saving); finish it with 'b2p generate … -o {chapter} --resume'")
        if not on_page:
            raise ConfigError(f"{path}: made for another chapter: none of its {len(trace.beats)} beats is in {chapter}")
        first = next(b.index for b in trace.beats if b not in on_page) if len(on_page) < len(trace.beats) else None
        where = f"beat {first} differs" if first is not None else "text outside the beats differs"
        raise ConfigError(f"{chapter}: edited by hand since its trace was written ({where}); eval measures the prose the trace "
                          f"holds: restore the chapter, or rewrite the beat with 'b2p generate … --only N'")
    return trace


def feedback_of(b: BeatTrace) -> tuple[list[Feedback], bool]:
    """The writer's decisions on a beat: as recorded, or (interactive beats written before they were
    recorded) read from its drafts: one 'regenerate' per re-roll, 'edit' when edited, then 'accept'."""
    if b.feedback:
        return list(b.feedback), True
    if b.mode != "interactive":
        return [], False
    out = [Feedback(decision="regenerate") for _ in b.candidates[1:]]
    if b.edited:
        out.append(Feedback(decision="edit"))
    return [*out, Feedback(decision="accept")], False


def _median(values: Sequence[float | None]) -> float | None:
    got = [v for v in values if v is not None]
    return round(statistics.median(got), 3) if got else None


def chapter_figures(beats: Sequence[BeatEval], total: int) -> ChapterFigures:
    named = sum(len(b.lore.used) + len(b.lore.unused) for b in beats)
    judged = [b.judge.score for b in beats if b.judge is not None and b.judge.score is not None]
    ratings = [f.rating for b in beats for f in b.feedback if f.rating is not None]
    decisions: dict[str, int] = {}
    for b in beats:
        for f in b.feedback:
            decisions[f.decision] = decisions.get(f.decision, 0) + 1
    return ChapterFigures(
        beats=len(beats),
        beats_total=total,
        words=sum(b.words for b in beats),
        coverage=_median([b.coverage for b in beats]),
        similarity=_median([b.similarity for b in beats]),
        repeat=max((b.repeat for b in beats), default=0.0),
        copied_beats=sum(b.repeat > COPY_LIMIT for b in beats),
        loops=max((b.loops for b in beats), default=0.0),
        lore_copy=max((b.lore_copy for b in beats), default=0.0),
        debris=sum(len(b.debris) for b in beats),
        mid_sentence=sum(b.mid_sentence for b in beats),
        length=_median([b.length for b in beats]),
        lore=round(sum(len(b.lore.used) for b in beats) / named, 3) if named else None,
        unpicked=len({n for b in beats for n in b.lore.unpicked}),
        judge=round(sum(judged) / len(judged), 2) if judged else None,
        judged=len(judged),
        decisions=decisions,
        rating=round(sum(ratings) / len(ratings), 2) if ratings else None,
    )


# -- the chapter ---------------------------------------------------------------------------------------------


def evaluate_chapter(
    chapter: Path,
    settings: Settings,
    *,
    bible: str | None = None,
    judge: Any = None,
    on_judged: Callable[[int, int], None] | None = None,
) -> ChapterEval:
    """Measure every finished beat of ``chapter`` (see the module doc). ``bible``: the ingested bible to
    read names from (default: the trace's); ``judge``: an ``LLM`` that grades each beat, its grades
    saved into the trace (a beat already graded by that model, on the same text, is not asked again);
    ``on_judged(done, total)`` reports the judge's progress."""
    import numpy as np

    from b2p.embeddings import query_embedder
    from b2p.retrieval import Retriever
    from b2p.store import Store

    trace = load_chapter(chapter)
    name = bible or trace.bible
    with Store.open(settings, bible=name) as st, st.lock(exclusive=False):
        r = Retriever(settings, st, name)
        lore_texts = {b.index: r.pick_texts(BeatLore(index=b.index, text=b.beat, lore=b.lore)) for b in trace.beats}
    wpb = trace.options.get("words_per_beat")
    words_per_beat = int(wpb) if isinstance(wpb, int | float) else None
    sheet = [b.beat for b in trace.beats]

    def names(entry_id: str) -> str | None:
        e = r.entries.get(entry_id)
        return None if e is None or e.always else e.name

    out: list[BeatEval] = []
    for n, b in enumerate(trace.beats):
        ev = evaluate_beat(b.index, b.beat, b.text, earlier=[x.text for x in trace.beats[:n]], beats=sheet,
                           words_per_beat=words_per_beat, picks=b.lore, lore_texts=list(lore_texts[b.index].values()),
                           find=r.matcher.find, names=names)
        ev.feedback, ev.feedback_recorded = feedback_of(b)
        if b.judge is not None and b.judge.of == text_hash(b.text):
            ev.judge = b.judge
        out.append(ev)

    # Similarity: every beat and every beat's clean prose in one batch, so each prose also finds its closest beat.
    embedder = query_embedder(r.embed_model, settings.cache_dir)
    cleans = [measures.without_debris(b.text, ev.debris) for b, ev in zip(trace.beats, out, strict=True)]
    beat_vecs = np.vstack([measures.text_vector(embedder.encode, b) for b in sheet])
    for n, (ev, clean) in enumerate(zip(out, cleans, strict=True)):
        if clean.strip():
            sims = beat_vecs @ measures.text_vector(embedder.encode, clean)
            ev.similarity = round(float(sims[n]), 3)
            ev.closest_beat = trace.beats[int(np.argmax(sims))].index

    if judge is not None:
        _judge_all(chapter, trace, out, judge, lore_texts, r, settings.seed, on_judged)
    save_figures(chapter, {b.index: (text_hash(b.text), {"eval": figures_of(ev)}) for b, ev in zip(trace.beats, out, strict=True)})
    return ChapterEval(chapter=str(chapter), trace=str(trace_path(chapter)), bible=trace.bible, model=trace.model, mode=trace.mode,
                       words_per_beat=words_per_beat, beats=out, figures=chapter_figures(out, trace.totals.beats))


def figures_of(ev: BeatEval) -> Figures:
    """What the trace keeps of a beat's evaluation (and ``b2p report`` shows)."""
    return Figures(coverage=ev.coverage, similarity=ev.similarity, repeat=ev.repeat, loops=ev.loops, debris=len(ev.debris),
                   mid_sentence=ev.mid_sentence, length=ev.length, lore=ev.lore.share, judge=ev.judge.score if ev.judge else None)


def save_figures(chapter: Path, updates: dict[int, tuple[str, dict[str, Any]]]) -> bool:
    """Set fields of the saved trace's beats ({index: (sha256 of the text measured, {field: value})}),
    re-reading it first so a beat a running 'generate' saved meanwhile is kept; a beat whose text has
    changed since is left alone. Written (atomically) only when something changed; True then."""
    path = trace_path(chapter)
    try:
        fresh = ChapterTrace.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False  # the trace went away or broke meanwhile: the report stands, nothing is saved
    changed = False
    for b in fresh.beats:
        measured, fields = updates.get(b.index, ("", {}))
        if measured != text_hash(b.text):
            continue
        for key, value in fields.items():
            if getattr(b, key) != value:
                setattr(b, key, value)
                changed = True
    if changed:
        write_atomic(path, fresh.model_dump_json(indent=2) + "\n")
    return changed


def _judge_all(chapter: Path, trace: ChapterTrace, out: list[BeatEval], llm: Any, lore_texts: dict[int, dict[str, str]],
               r: Any, seed: int | None, on_judged: Callable[[int, int], None] | None) -> None:
    """Grade each beat not yet graded by this model on this text; save each grade as it comes."""
    from b2p.judge import judge_beat

    for done, (b, ev) in enumerate(zip(trace.beats, out, strict=True), start=1):
        j = b.judge
        if j is None or j.of != text_hash(b.text) or j.model != llm.name:
            lore = [(f"{r.entries[i].name} ({r.entries[i].kind})", t) for i, t in lore_texts[b.index].items()
                    if i in r.entries and not r.entries[i].always]
            j = judge_beat(llm, b.beat, lore, b.text, seed=0 if seed is None else seed)
            save_figures(chapter, {b.index: (text_hash(b.text), {"judge": j})})
        ev.judge = j
        if on_judged is not None:
            on_judged(done, len(trace.beats))
