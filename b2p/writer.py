"""The writer: the chapter file and its trace on disk, saved after every finished beat.

The chapter Markdown is rendered from the trace and written first, then the trace, each atomically
(temp file, fsync, rename). So the chapter always holds every beat the trace records: a kill between
the two leaves at most one beat in the chapter that the trace does not yet hold, which a resume
writes again and then re-renders the chapter from the trace. Without ``-o`` nothing is written and
the caller prints ``render_chapter(trace)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from b2p.events import Events
from b2p.trace import BeatTrace, ChapterTrace, trace_path, write_atomic


def render_chapter(trace: ChapterTrace) -> str:
    """The chapter Markdown: the title, then each finished beat's prose in order."""
    parts = [f"# {trace.title}"] if trace.title else []
    parts += [b.text.strip() for b in trace.beats if b.text.strip()]
    return "\n\n".join(parts) + "\n"


def save(trace: ChapterTrace, chapter: Path, on_trace_saved: Callable[[], None] | None = None) -> None:
    """The chapter rendered from the trace first, then the trace, each atomically. ``on_trace_saved``
    runs once the trace is written: from then on its beats are saved."""
    trace.retotal()
    write_atomic(chapter, render_chapter(trace))
    write_atomic(trace_path(chapter), trace.model_dump_json(indent=2) + "\n")
    if on_trace_saved is not None:
        on_trace_saved()


@dataclass
class ChapterWriter:
    """Keeps ``trace`` and, with ``out``, the chapter and trace files in step, one finished beat at a time."""

    trace: ChapterTrace
    out: Path | None
    events: Events = field(default_factory=Events)
    written: list[int] = field(default_factory=list)  # beats this run finished, in order

    def start(self) -> None:
        """Before the first new beat: re-render a resumed chapter from its trace (the file may predate a crash)."""
        if self.out is not None and self.trace.beats:
            self.save()

    def save(self) -> None:
        """Save the chapter and the trace as they are now (totals only, without ``out``)."""
        if self.out is None:
            self.trace.retotal()
            return
        done = len(self.trace.beats)
        save(self.trace, self.out, on_trace_saved=lambda: self.events.chapter_saved(done))

    def finish(self, beat: BeatTrace) -> None:
        """Add or replace a finished beat, save at once, and report it."""
        self.trace.put(beat)
        self.save()
        self.written.append(beat.index)
        self.events.beat_finished(beat, self.trace.totals.beats)
