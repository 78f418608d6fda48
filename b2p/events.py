"""What a job reports as it goes: ingest progress, beats started and finished, streamed prose, saves.

The defaults do nothing. The CLI overrides them to draw on the terminal; a library user overrides the
ones they care about (a log, a progress bar, a UI). Every hook is called from the job's own thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from b2p.models import IngestReport
    from b2p.trace import BeatTrace, ChapterTrace


class Events:
    """Progress of ``ingest_bible``/``lore_for``/``write_chapter``. Subclass it and override what you need."""

    # -- a bible folder named by --bible is checked, and ingested when it changed --
    def ingesting(self, folder: Path) -> None:
        """The folder is being checked (and ingested if it changed)."""

    def ingest_progress(self, done: int, total: int) -> None:
        """Chunks embedded so far while ingesting."""

    def ingested(self, report: IngestReport) -> None:
        """The folder's store is up to date; ``report`` says what changed (often nothing)."""

    # -- a chapter --
    def chapter_started(self, trace: ChapterTrace, targets: Sequence[int]) -> None:
        """Writing begins. ``trace`` is the live trace (it always holds every finished beat, so it is
        what to show after an error); ``targets`` are the beats this run writes."""

    def beat_started(self, index: int, total: int, beat: str) -> None:
        """A beat (or, in one-shot mode, a group of beats) is being drafted."""

    def draft_started(self, index: int, k: int, n: int) -> None:
        """Candidate ``k`` of ``n`` (``--n``) of beat ``index`` is being drafted."""

    def text(self, piece: str) -> None:
        """A piece of prose as the model writes it (only with ``stream``)."""

    def beat_finished(self, beat: BeatTrace, total: int) -> None:
        """A beat is done and saved."""

    def chapter_saved(self, beats: int) -> None:
        """The chapter file and its trace on disk now hold ``beats`` finished beats."""

    def stopped(self, done: int, total: int) -> None:
        """The author quit an interactive session with ``done`` of ``total`` beats written."""

    def note(self, message: str) -> None:
        """Something the writer should know (one line)."""

    # -- evaluating a chapter --
    def judged(self, done: int, total: int) -> None:
        """The judge has graded ``done`` of ``total`` beats (``evaluate(..., judge=True)``)."""
