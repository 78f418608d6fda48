"""The resume state: what of a chapter is already written, and which beats a run writes.

It loads the trace saved beside ``-o``, checks that it was made from this beat sheet (and, once the
store is open, this bible) and decides the targets: every unfinished beat; with ``--only``, those
beats (plus the unfinished ones with ``--resume``). It needs no store and no model, so its refusals
come before either is touched. What is on disk is read here and nowhere else: a chapter file that
the writer edited by hand is this module's to notice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from b2p import trace
from b2p.errors import ConfigError
from b2p.trace import ChapterTrace


def parse_only(value: str) -> list[int]:
    """'5' or '5,7' → [5, 7]; anything else is one clear ConfigError."""
    out = []
    for part in value.split(","):
        part = part.strip()
        if not part.isdigit() or int(part) < 1:
            raise ConfigError(f"--only {value!r}: '{part}' is not a beat number; write e.g. --only 5 or --only 5,7")
        out.append(int(part))
    return sorted(set(out))


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
class ResumeState:
    """A chapter's saved state and this run's targets. Build it with ``load``."""

    beats: list[str]
    beats_file: Path
    out: Path | None
    resume: bool
    only: list[int]
    saved: ChapterTrace | None  # the trace on disk, checked against the sheet
    targets: list[int]

    @classmethod
    def load(cls, beats: Sequence[str], beats_file: Path, out: Path | None = None, *, resume: bool = False,
             only: Sequence[int] | None = None) -> ResumeState:
        """Check the flags against the sheet, read the saved trace ``--resume``/``--only`` continue from,
        and decide which beats to write. Raises ConfigError (one line) for anything that cannot work."""
        n, only = len(beats), sorted(set(only or []))
        if (resume or only) and out is None:
            flag = "--resume" if resume else "--only"
            raise ConfigError(f"{flag} needs -o CHAPTER.md: the chapter and trace it continues from")
        for i in only:
            if not 1 <= i <= n:
                raise ConfigError(f"--only {i}: the beat sheet {beats_file} has {n} beats (1–{n})")
        saved = None
        if out is not None and (resume or only):
            saved = trace.load(out)
            if saved is not None:
                check_sheet(saved, out, beats, beats_file)
            elif only:
                raise ConfigError(f"--only needs the saved chapter: there is no trace at {trace.trace_path(out)}; generate the chapter first")
        done = saved.done() if saved is not None else {}
        wanted = set(only)
        if resume or not only:
            wanted |= {i for i in range(1, n + 1) if i not in done}
        return cls(list(beats), beats_file, out, resume, only, saved, sorted(wanted))

    def check_bible(self, bible: str) -> None:
        """Refuse to continue a trace made with another bible (known once the store is open)."""
        if self.saved is not None and self.saved.bible != bible:
            path = trace.trace_path(self.out)  # type: ignore[arg-type]  # a saved trace implies -o
            raise ConfigError(f"{path}: made with bible '{self.saved.bible}', not '{bible}'; pass --bible {self.saved.bible} or pick another -o")

    def notes(self) -> list[str]:
        """What the writer should be told about the state before anything is written."""
        out = []
        if self.resume and self.saved is None:
            out.append(f"nothing to resume at {self.out}; starting at beat 1")
        if not self.targets:
            out.append("every beat is already written; nothing to do (use --only N to rewrite a beat)")
        return out
