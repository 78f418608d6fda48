"""Beat sheet → chapter + trace: the resume state, a drafting strategy and the writer, run together.

- ``b2p.resume``   what is already written, and which beats this run writes
- ``b2p.drafting`` how the targets are drafted: ``sequential``, ``oneshot``, ``interactive``; ``--n K``
                   drafts K candidates and keeps the one the judge scores best
- ``b2p.writer``   the chapter and its trace, saved after every finished beat
- ``b2p.story``    the story so far each prompt carries

Every finished beat is saved at once (chapter, then trace, each atomically), so a crash or Ctrl-C
leaves a valid partial chapter that ``--resume`` continues without redoing any beat.
``b2p.jobs.write_chapter`` is the whole job (sheet, checks, bible, plan, model, this); this module is
the part that runs once the plan and the model are in hand.
"""

from __future__ import annotations

from b2p import prompts, trace
from b2p.drafting import ChapterContext, strategy_for
from b2p.events import Events
from b2p.interactive import Interaction
from b2p.llm import LLM
from b2p.plan import Plan
from b2p.resume import ResumeState
from b2p.settings import Settings
from b2p.story import StorySoFar, book_story
from b2p.trace import ChapterTrace, Totals
from b2p.writer import ChapterWriter


def new_trace(settings: Settings, plan: Plan, llm: LLM, state: ResumeState) -> ChapterTrace:
    """This run's trace: its settings, and the beats already saved (kept until rewritten)."""
    from b2p.beats import read_heading

    s = settings
    return ChapterTrace(
        bible=plan.bible,
        title=read_heading(state.beats_file) or plan.meta.title,  # '# Chapter 1 — Title' atop the sheet, else the bible's
        beats_file=str(state.beats_file),
        beats_sha256=trace.sheet_hash(state.beats),
        mode=s.mode,
        model=llm.name,
        llm=s.llm,
        options={"temperature": s.temperature, "seed": s.seed, "words_per_beat": s.words_per_beat, "n": s.n,
                 "context_window": llm.context_window, "budget": s.budget, "stream": s.stream,
                 "prompt_shape": prompts.choose_shape(s.prompt_shape, llm), "redrafts": s.redrafts, "coverage_floor": s.coverage_floor,
                 "resolver": s.resolver},
        beats=list(state.saved.beats) if state.saved is not None else [],
        totals=Totals(beats=len(state.beats), beats_done=0),
        bible_dir=str(state.bible_dir.resolve()) if state.bible_dir is not None else None,
    )


def generate_chapter(settings: Settings, plan: Plan, llm: LLM, state: ResumeState, *, events: Events | None = None,
                     interaction: Interaction | None = None) -> ChapterTrace:
    """Write ``state.targets`` with ``llm``, saving after every beat; returns the trace.

    On an error or Ctrl-C the finished beats are already saved; ``events.chapter_started`` handed out
    the live trace, which holds them.
    """
    events = events or Events()
    state.check_bible(plan.bible)
    chapter = new_trace(settings, plan, llm, state)
    writer = ChapterWriter(chapter, state.out, events, doc=state.disk.doc, on_disk=dict(state.disk.hashes), fresh=state.fresh)
    story = StorySoFar(chapter, llm, settings.seed, on_summary=writer.save)
    strategy = strategy_for(ChapterContext(settings, plan, state.beats, llm, story, writer, events), interaction)
    for message in state.notes() + (plan.place.notes() if plan.place is not None else []):
        events.note(message)
    if plan.place is not None:  # a chapter of a book: the earlier chapters' summaries, made once (b2p.story)
        story.book, chapter.book = book_story(plan, llm, settings.cache_dir, settings.seed, events.note)
    events.chapter_started(chapter, state.targets)
    writer.start()
    listening, llm.on_note = llm.on_note, events.note  # retries and their waits, as they happen
    try:
        if state.targets and not strategy.write(state.targets):
            events.stopped(len(chapter.beats), len(state.beats))
    finally:
        llm.on_note = listening
    chapter.retotal()
    return chapter
