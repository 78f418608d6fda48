"""The writer: the chapter file and its trace on disk, saved after every finished beat.

The chapter file is the writer's (``b2p.chapterfile``): each save re-reads it, adopts any beat they
changed since the last save, and splices in only the beats b2p wrote, so the writer's edits and the
text they added around the beats stay byte for byte. Each file is written atomically (temp file,
fsync, rename), the trace first as a journal:

1. the trace with the new beats and ``pending`` (what the file held for each beat about to change),
2. the chapter,
3. the trace with ``pending`` cleared.

A kill anywhere leaves a chapter and a trace that ``b2p.resume`` reads back without losing a word: a
beat whose file text is still the ``pending`` one is not taken for an edit, and a resume writes it
again from the trace. Ctrl-C waits for a save under way to finish (a few milliseconds). Without ``-o`` nothing is written and the caller prints ``render_chapter(trace)``.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from b2p.chapterfile import ChapterFile, changed_beats, legacy_text, new_chapter, parse_chapter, saved_hash
from b2p.errors import ConfigError
from b2p.events import Events
from b2p.trace import BeatTrace, ChapterTrace, trace_path, write_atomic


def render_chapter(trace: ChapterTrace) -> str:
    """The chapter as printed to stdout (no ``-o``): the title, then each finished beat's prose. No markers:
    nothing reads it back."""
    return legacy_text(trace.title, [b.text for b in trace.beats])


@contextlib.contextmanager
def _whole() -> Iterator[None]:
    """Ctrl-C during a save is held until the save is done, then raised: a save is never cut in the
    middle by the writer's own Ctrl-C (a kill -9 can be; the journal covers that)."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield
        return
    held: list[int] = []
    signal.signal(signal.SIGINT, lambda signum, frame: held.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if held:
        raise KeyboardInterrupt


def save(trace: ChapterTrace, chapter: Path) -> None:
    """Write ``trace``'s chapter afresh at ``chapter`` (with its markers) and the trace beside it, as a new run would."""
    ChapterWriter(trace, chapter).save()


def _dump(trace: ChapterTrace) -> str:
    return trace.model_dump_json(indent=2) + "\n"


@dataclass
class ChapterWriter:
    """Keeps ``trace`` and, with ``out``, the chapter and trace files in step, one finished beat at a time."""

    trace: ChapterTrace
    out: Path | None
    events: Events = field(default_factory=Events)
    written: list[int] = field(default_factory=list)  # beats this run finished, in order
    doc: ChapterFile | None = None  # the chapter file as last read or written (None: write it afresh)
    on_disk: dict[int, str] = field(default_factory=dict)  # beat → hash of its text in that file
    fresh: bool = False  # the first save replaces whatever is at ``out`` (--force)
    _last: str | None = None  # the file's text as last read or written

    def start(self) -> None:
        """Before the first new beat: bring a resumed chapter up to date with its trace (the file may predate
        a crash, or have no markers yet) and record the writer's edits found on load."""
        if self.out is not None and self.trace.beats:
            self.save()

    def save(self) -> None:
        """Save the chapter and the trace as they are now (totals only, without ``out``)."""
        self.trace.retotal()
        if self.out is None:
            return
        if self.fresh:
            self._clear()
        else:
            self._reread()
        texts = {b.index: b.text for b in self.trace.beats}
        changing = {k for k, t in texts.items() if self.on_disk.get(k) != saved_hash(t)}
        doc = (self.doc or new_chapter(self.trace.title, {})).with_beats(texts, changing)
        for b in self.trace.beats:
            b.saved_sha256 = saved_hash(b.text)
        text, tpath = doc.dumps(), trace_path(self.out)
        with _whole():
            if changing:
                self.trace.pending = {k: self.on_disk.get(k, "") for k in sorted(changing)}
                write_atomic(tpath, _dump(self.trace))
            if text != self._last:
                write_atomic(self.out, text)
            self.trace.pending = None
            write_atomic(tpath, _dump(self.trace))
            self.doc, self.on_disk, self._last = doc, doc.hashes(), text
            self.events.chapter_saved(len(self.trace.beats))

    def _clear(self) -> None:
        """--force over something that is not this sheet's chapter: remove it (and its trace) at the first save."""
        for path in (self.out, trace_path(self.out)):  # type: ignore[arg-type]
            try:
                path.unlink(missing_ok=True)
            except OSError as err:
                raise ConfigError(f"{path}: cannot replace it: {err.strerror}") from None
        self.fresh, self.doc, self.on_disk, self._last = False, None, {}, None

    def _reread(self) -> None:
        """The file as it is now: the writer may have edited it while b2p worked. Their edits are adopted."""
        if self.doc is None or self.out is None:
            return
        from b2p.userfiles import read_user_file

        if not self.out.exists():
            self.doc, self.on_disk, self._last = None, {}, None  # deleted: written afresh from the trace
            return
        raw = read_user_file(self.out, "chapter", "a chapter file written by 'b2p generate -o'", error=ConfigError)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ConfigError(f"{self.out}: no longer UTF-8 text; re-save the chapter as UTF-8 and run with --resume") from None
        if text == self._last:
            return
        doc = parse_chapter(text, str(self.out))
        edits = changed_beats(doc, self.on_disk, {}, str(self.out))
        for index, mine in edits.items():
            self.trace.adopt(index, mine)
            self.events.note(f"kept your edit to beat {index} in {self.out}")
        self.doc, self.on_disk, self._last = doc, doc.hashes(), text

    def finish(self, beat: BeatTrace) -> None:
        """Add or replace a finished beat, save at once, and report it."""
        self.trace.put(beat)
        self.save()
        self.written.append(beat.index)
        self.events.beat_finished(beat, self.trace.totals.beats)
