"""The story so far that a beat's prompt carries: the book's earlier chapters, then the chapter's
finished beats before it.

``prompts.build_prompt`` fits it to the room left in the context window, the nearest beats verbatim
and older ones as summaries. A summary is made once per beat text by the model and kept in the trace
(so a resume or ``--only`` reuses it); when the model gives nothing usable, the beat's opening
sentences stand in.

In a book (``b2p.book``), each earlier chapter comes as a short summary made once from its trace by
the model and cached under ``cache_dir/summaries/`` by the sha256 of the chapter's prose, so a
chapter that changes gets a new one and every later chapter reuses it. When the model gives nothing
usable, the chapter's beats stand in. When room is short the oldest chapters shrink first.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from b2p import prompts, prose, trace
from b2p.llm import LLM, GenOptions
from b2p.prompts import Story
from b2p.trace import BeatTrace, ChapterTrace, Usage

if TYPE_CHECKING:
    from b2p.plan import Plan

SUMMARY_WORDS = 40  # the stand-in when the model gives no usable summary
CHAPTER_WORDS = 60  # a chapter's summary is at most this long
CHAPTER_TOKENS = 110


@dataclass
class StorySoFar:
    """Story-so-far for the beats of ``trace``. ``on_summary`` runs after a new summary is kept (the
    writer's save), so a summary is paid for once even if the run stops."""

    trace: ChapterTrace
    llm: LLM
    seed: int | None
    on_summary: Callable[[], None]
    book: list[str] = field(default_factory=list)  # "Chapter 2: …", one per earlier chapter written

    def before(self, index: int) -> Story:
        """The story so far for beat ``index``: the earlier chapters, then every finished beat before it."""
        done = [b for b in self.trace.beats if b.index < index]
        return Story([b.text for b in done], summarise=lambda k: self.summary(done[k]), book=list(self.book))

    def summary(self, beat: BeatTrace) -> str:
        """A short summary of a finished beat, made once and kept in the trace."""
        h = trace.text_hash(beat.text)
        if beat.summary and beat.summary_of == h:
            return beat.summary
        opts = GenOptions(max_tokens=prompts.SUMMARY_TOKENS, temperature=0.2, seed=self.seed)
        usage = Usage()
        msgs = prompts.summary_messages(beat.text)
        text = ""
        if self.llm.count_tokens(msgs) + prompts.SUMMARY_TOKENS + prompts.MARGIN <= self.llm.context_window:
            c = self.llm.complete(msgs, opts)
            usage.add(c)
            text = prose.clean_prose(c.text, ["Summary", "Here is a summary"])
        if not text:
            opening = " ".join(beat.text.split()[:SUMMARY_WORDS])
            text = prose.trim_to_sentence(opening) or opening
        beat.summary, beat.summary_of, beat.summary_usage = text, h, usage
        self.on_summary()
        return text


# -- earlier chapters --------------------------------------------------------------------------------


def _cache_file(cache_dir: Path, sha: str) -> Path:
    return cache_dir / "summaries" / f"{sha}.json"


def cached_chapter_summary(cache_dir: Path, sha: str) -> str | None:
    """The summary made before for a chapter whose prose has this sha256, if any."""
    try:
        data = json.loads(_cache_file(cache_dir, sha).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    text = data.get("summary") if isinstance(data, dict) and data.get("sha256") == sha else None
    return text if isinstance(text, str) and text.strip() else None


def _cap(text: str, words: int) -> str:
    w = text.split()
    if len(w) <= words:
        return " ".join(w)
    cut = " ".join(w[:words])
    return prose.trim_to_sentence(cut) or cut + " …"


def chapter_summary(chapter: trace.ChapterTrace, sha: str, llm: LLM, cache_dir: Path, seed: int | None = None) -> tuple[str, bool]:
    """A short summary of a written chapter (at most ``CHAPTER_WORDS`` words): (text, made now).

    Made once by the model from the chapter's prose (its beats shortened evenly when the whole does
    not fit the model's context) and cached by the prose's sha256; the chapter's beats stand in when
    the model gives nothing usable."""
    have = cached_chapter_summary(cache_dir, sha)
    if have is not None:
        return have, False
    beats = sorted(chapter.beats, key=lambda b: b.index)
    text, words = "", max((len(b.text.split()) for b in beats), default=0)
    opts = GenOptions(max_tokens=CHAPTER_TOKENS, temperature=0.2, seed=seed)
    while words >= 8:
        passage = "\n\n".join(" ".join(b.text.split()[:words]) for b in beats)
        msgs = prompts.chapter_summary_messages(passage, CHAPTER_WORDS)
        if llm.count_tokens(msgs) + CHAPTER_TOKENS + prompts.MARGIN <= llm.context_window:
            text = prose.clean_prose(llm.complete(msgs, opts).text, ["Summary", "Here is a summary", "Chapter summary"])
            break
        words //= 2
    text = _cap(" ".join(text.split()), CHAPTER_WORDS) if text else ""
    if not text:
        text = _cap(" ".join(b.beat.rstrip(".") + "." for b in beats), CHAPTER_WORDS)
    from b2p.atomic import write_atomic
    from b2p.errors import B2PError

    try:
        write_atomic(_cache_file(cache_dir, sha), json.dumps({"sha256": sha, "summary": text, "model": llm.name}) + "\n")
    except (B2PError, OSError):  # a cache that cannot be written costs a summary next time, nothing more
        pass
    return text, True


def book_story(plan: Plan, llm: LLM, cache_dir: Path, seed: int | None, note: Callable[[str], None]) -> tuple[list[str], trace.BookRecord]:
    """The earlier chapters of ``plan``'s book as its prompts carry them ("Chapter 2: …"), summarising
    (once) those not summarised yet, and the book record its trace keeps."""
    from b2p.book import prose_hash

    place = plan.place
    assert place is not None
    lines, records = [], []
    for e in place.earlier:
        rec = trace.EarlierChapter(chapter=e.chapter.number, beats_file=e.chapter.label(place.book.root))
        if e.trace is not None:
            sha = prose_hash(e.trace)
            text, made = chapter_summary(e.trace, sha, llm, cache_dir, seed)
            if made:
                note(f"summarised chapter {e.chapter.number} for the story so far (kept for the chapters after it)")
            rec.sha256, rec.summary, rec.cached = sha, text, not made
            lines.append(f"Chapter {e.chapter.number}: {text}")
        records.append(rec)
    scene = "new" if place.new_scene else "carried" if plan.carried else "none"
    return lines, trace.BookRecord(chapter=place.number, out=str(place.chapter.out), bible_state=plan.state, earlier=records,
                                   scene=scene, carried=plan.carried)


def cached_book(plan: Plan, cache_dir: Path) -> list[str]:
    """``--dry-run``: the earlier chapters' summaries already made, or a placeholder for each one not made yet."""
    from b2p.book import prose_hash

    out = []
    for e in plan.place.earlier if plan.place is not None else ():
        if e.trace is not None:
            text = cached_chapter_summary(cache_dir, prose_hash(e.trace))
            out.append(f"Chapter {e.chapter.number}: {text or '[its summary, made when this chapter is written]'}")
    return out
