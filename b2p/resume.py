"""The resume state: what of a chapter is already written, and which beats a run writes.

It checks what ``-o`` names (``b2p.destination``: only a chapter of this beat sheet is replaced without
``--force``), loads the trace saved beside it, checks that it was made from this beat sheet (and, once
the store is open, this bible), reads the chapter file (``b2p.chapterfile``) and adopts the writer's
hand edits into the trace: the file is the truth. Then it decides the targets: with ``--resume`` every
unfinished beat; with ``--only``, those beats (plus the unfinished ones with ``--resume``); a plain run
over a chapter of this sheet rewrites every beat in place. A beat the writer edited is replaced only
with ``--force`` (or their yes on a terminal). It needs no store and no model, so its refusals come
before either is touched.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from b2p import destination, trace
from b2p.chapterfile import ChapterFile, changed_beats, legacy_text, normalise, read_chapter, saved_hash
from b2p.errors import ConfigError
from b2p.trace import ChapterTrace

Confirm = Callable[[str], bool]  # asks the writer a yes/no question (on a terminal); True to go ahead


def parse_only(value: str) -> list[int]:
    """'5' or '5,7' → [5, 7]; anything else is one clear ConfigError."""
    out = []
    for part in value.split(","):
        part = part.strip()
        if not part.isdigit() or int(part) < 1:
            raise ConfigError(f"--only {value!r}: '{part}' is not a beat number; write e.g. --only 5 or --only 5,7")
        out.append(int(part))
    return sorted(set(out))


def same_sheet(saved: ChapterTrace, beats: Sequence[str]) -> bool:
    return saved.beats_sha256 == trace.sheet_hash(beats) and saved.totals.beats == len(beats) and all(
        1 <= b.index <= len(beats) and b.beat == beats[b.index - 1] for b in saved.beats)


def check_sheet(saved: ChapterTrace, chapter: Path, beats: Sequence[str], beats_file: Path) -> None:
    """Refuse to continue a trace made from another beat sheet."""
    path = trace.trace_path(chapter)
    if saved.beats_sha256 != trace.sheet_hash(beats) or saved.totals.beats != len(beats):
        raise ConfigError(
            f"{path}: made from a different beat sheet ({saved.beats_file}, {saved.totals.beats} beats) than {beats_file} "
            f"({len(beats)} beats); pick another -o, or delete the trace to start over"
        )
    for b in saved.beats:
        if not 1 <= b.index <= len(beats) or b.beat != beats[b.index - 1]:
            raise ConfigError(f"{path}: beat {b.index} does not match {beats_file}; pick another -o, or delete the trace to start over")


@dataclass
class OnDisk:
    """The chapter file as the writer left it: parsed, with their edits found (and adopted into the trace)."""

    doc: ChapterFile | None = None  # None: no file, or a chapter from before beats were marked (written afresh)
    hashes: dict[int, str] = field(default_factory=dict)  # beat → hash of its text in the file
    edited: list[int] = field(default_factory=list)  # beats the writer changed since b2p saved them


def read_on_disk(out: Path, saved: ChapterTrace) -> OnDisk:
    """Read the chapter at ``out`` against its trace and adopt the writer's edits into ``saved``. Refuses
    (one line that says how to recover, nothing written) a file whose markers were damaged, and a file
    without markers unless it is exactly the old rendering of its trace."""
    if not out.exists() and not out.is_symlink():
        return OnDisk()  # deleted, or a first save cut short: written afresh from the trace
    doc = read_chapter(out)
    if not doc.marked:
        if normalise(doc.between[0]) == normalise(legacy_text(saved.title, [b.text for b in saved.beats])):
            return OnDisk()
        raise ConfigError(
            f"{out}: has no b2p beat markers and differs from its trace (edited before b2p marked beats, or the markers "
            "were removed); nothing was written: move the file aside, run with --resume to rebuild it from the trace "
            "with markers, then copy your changes into it")
    known = {b.index: b.saved_sha256 or saved_hash(b.text) for b in saved.beats}
    edits = changed_beats(doc, known, saved.pending or {}, str(out))
    for index, text in edits.items():
        saved.adopt(index, text)
    return OnDisk(doc, doc.hashes(), sorted(edits))


def current_trace(chapter: Path | str) -> ChapterTrace | None:
    """The chapter's trace with the writer's hand edits in the chapter file adopted (in memory: nothing
    is written), or None when it has no trace. What ``b2p report`` and ``b2p eval`` read: the file is the truth."""
    saved = trace.load(Path(chapter))
    if saved is not None:
        read_on_disk(Path(chapter), saved)
    return saved


def _beats(indexes: Sequence[int]) -> str:
    return ("beat " if len(indexes) == 1 else "beats ") + ", ".join(map(str, indexes))


@dataclass
class ResumeState:
    """A chapter's saved state and this run's targets. Build it with ``load``."""

    beats: list[str]
    beats_file: Path
    out: Path | None
    resume: bool
    only: list[int]
    saved: ChapterTrace | None  # the trace on disk, checked against the sheet, with the writer's edits adopted
    targets: list[int]
    force: bool = False
    fresh: bool = False  # the first save replaces whatever is at -o (--force over something else)
    disk: OnDisk = field(default_factory=OnDisk)
    replacing: list[int] = field(default_factory=list)  # hand-edited beats this run replaces (--force, or the writer said yes)
    bible_dir: Path | None = None  # the bible folder, when --bible named one (recorded in the trace)

    @classmethod
    def load(cls, beats: Sequence[str], beats_file: Path, out: Path | None = None, *, resume: bool = False,
             only: Sequence[int] | None = None, force: bool = False, bible_dir: Path | None = None,
             confirm: Confirm | None = None) -> ResumeState:
        """Check the flags and ``-o`` against the sheet, read the saved trace and the chapter file, and
        decide which beats to write. Raises ConfigError (one line) for anything that cannot work."""
        n, only = len(beats), sorted(set(only or []))
        if (resume or only) and out is None:
            flag = "--resume" if resume else "--only"
            raise ConfigError(f"{flag} needs -o CHAPTER.md: the chapter and trace it continues from")
        for i in only:
            if not 1 <= i <= n:
                raise ConfigError(f"--only {i}: the beat sheet {beats_file} has {n} beats (1–{n})")
        every = list(range(1, n + 1))
        if out is None:
            return cls(list(beats), beats_file, out, resume, only, None, every, force, bible_dir=bible_dir)
        kind = destination.kind_of(out)
        destination.check_trace_path(out)
        tpath = trace.trace_path(out)
        has_trace = tpath.exists() or tpath.is_symlink()
        if (resume or only) and not has_trace:
            raise destination.no_trace(out, "--resume" if resume else "--only")
        fresh = False
        if resume or only:
            if kind == "link" and not force:
                raise ConfigError(f"-o {out}: {destination.foreign(out, kind, True, beats_file, None)}; or add --force to replace the link")
            saved = trace.load(out)
            if saved is None:
                raise destination.no_trace(out, "--resume" if resume else "--only")
            check_sheet(saved, out, beats, beats_file)
        else:
            try:
                saved = trace.load(out) if has_trace else None
            except ConfigError:
                if not force:
                    raise
                saved = None
            ours = None if saved is None else same_sheet(saved, beats)
            why = destination.foreign(out, kind, ours, beats_file, bible_dir, saved.beats_file if saved else None)
            if why is not None:
                if not force:
                    raise ConfigError(f"-o {out}: {why}; pick another -o, or add --force to replace it")
                saved, fresh = None, True
        disk = read_on_disk(out, saved) if saved is not None else OnDisk()
        done = saved.done() if saved is not None else {}
        missing = {i for i in every if i not in done}
        wanted = (set(only) | (missing if resume else set())) if only else missing if resume else set(every)
        hand = [i for i in sorted(wanted) if i in done and done[i].edited]
        if hand and not force:
            question = f"{out}: {_beats(hand)} {'was' if len(hand) == 1 else 'were'} edited by hand; replace your text? [y/N] "
            if confirm is None or not confirm(question):
                how = f"--only {','.join(map(str, only))}" if only else "a new run of the whole chapter"
                raise ConfigError(f"{out}: {_beats(hand)} {'was' if len(hand) == 1 else 'were'} edited by hand and {how} would "
                                  "replace your text; add --force to replace it, or rewrite other beats with --only N")
        return cls(list(beats), beats_file, out, resume, only, saved, sorted(wanted), force, fresh, disk, hand, bible_dir)

    def check_bible(self, bible: str) -> None:
        """Refuse to continue a trace made with another bible (known once the store is open); a plain run
        with ``--force`` starts the chapter over instead."""
        if self.saved is None or self.saved.bible == bible:
            return
        if self.force and not (self.resume or self.only):
            self.saved, self.fresh, self.disk, self.replacing = None, True, OnDisk(), []
            return
        path = trace.trace_path(self.out)  # type: ignore[arg-type]  # a saved trace implies -o
        over = "" if self.resume or self.only else ", or add --force to start it over"
        raise ConfigError(f"{path}: made with bible '{self.saved.bible}', not '{bible}'; pass --bible {self.saved.bible} or pick another -o{over}")

    def notes(self) -> list[str]:
        """What the writer should be told about the state before anything is written."""
        out = []
        if self.disk.edited:
            out.append(f"kept your edits to {_beats(self.disk.edited)} of {self.out} (the trace records them as edited)")
        if self.replacing:
            out.append(f"replacing your edited {_beats(self.replacing)} of {self.out}")
        if self.fresh:
            out.append(f"replacing {self.out} (--force)")
        if not self.targets:
            out.append("every beat is already written; nothing to do (use --only N to rewrite a beat)")
        return out
