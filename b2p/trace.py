"""The chapter trace (``chapter.trace.json``): its shape, where it lives, and reading it back.

The trace holds every finished beat's prose with the lore it used (the picks exactly as ``b2p lore
--json`` shows them) and what it cost. ``b2p.writer`` renders the chapter from it and saves both
after every finished beat; ``b2p.resume`` reads it back to continue a chapter.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from b2p.errors import ConfigError
from b2p.llm import Completion
from b2p.models import Dropped, LorePick

TRACE_VERSION = 1


class Usage(BaseModel):
    """Tokens and time spent on some requests."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    requests: int = 0

    def add(self, c: Completion | Usage) -> None:
        self.prompt_tokens += c.prompt_tokens
        self.completion_tokens += c.completion_tokens
        self.seconds = round(self.seconds + c.seconds, 3)
        self.requests += c.requests if isinstance(c, Usage) else 1


class Cut(BaseModel):
    """Something the guards took out of a draft: a debris line or sentence, a copied sentence, an unfinished one."""

    kind: str = Field(description="heading | label | markup | list | note | meta | echo | copied | unfinished | scaffolding")
    text: str


class Draft(BaseModel):
    """One draft of a candidate as the guards saw it (after its debris was cut)."""

    seed: int | None = None
    nudge: str | None = Field(None, description="What the prompt added for this redraft ('Also: …').")
    words: int = 0
    coverage: float | None = Field(None, description="Share of the beat's content words the draft uses.")
    repeat: float = Field(0.0, description="Share of its word 6-grams already in earlier beats.")
    problems: list[str] = Field(default_factory=list, description="Why it was drafted again (empty: it passed).")
    kept: bool = False


class Guard(BaseModel):
    """What the generation guards did to a candidate: every draft and why, what was cut, what is left."""

    drafts: list[Draft] = Field(default_factory=list)
    cut: list[Cut] = Field(default_factory=list, description="What was cut from the kept draft (its streamed text had it).")
    flagged: list[str] = Field(default_factory=list, description="Problems the kept draft still has: every redraft failed too.")


class Candidate(BaseModel):
    """One draft of a beat (``--n K`` candidates, interactive re-rolls) and its judged score."""

    text: str
    temperature: float
    seed: int | None = None
    instruction: str | None = None
    finish_reason: str = "stop"
    score: float | None = Field(None, description="Mean of coverage and consistency, 1–10.")
    coverage: float | None = None
    consistency: float | None = None
    judged_by: Literal["model", "heuristic"] | None = Field(None, description="'heuristic' when the judge's answer was unusable.")
    judge_answer: str | None = None
    chosen: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    guard: Guard | None = Field(None, description="Its drafts, cuts and flags (the generation guards).")
    prompt: list[dict[str, str]] | None = Field(None, exclude=True)  # the messages of the kept draft (goes to BeatTrace.prompt)


class Figures(BaseModel):
    """A beat's eval figures (``b2p eval``, ``b2p.evaluate``): what ``b2p report`` shows beside its prose."""

    coverage: float | None = Field(None, description="Share of the beat's content words its prose uses.")
    similarity: float | None = Field(None, description="Beat ↔ prose cosine similarity.")
    repeat: float = Field(0.0, description="Share of its word 6-grams already in earlier beats.")
    loops: float = Field(0.0, description="Share of its word 6-grams repeated within it.")
    debris: int = Field(0, description="Scaffolding or markup lines.")
    mid_sentence: bool = False
    length: float | None = Field(None, description="Words / words_per_beat.")
    lore: float | None = Field(None, description="Share of its lore picks the prose names.")
    judge: float | None = Field(None, description="Mean judge grade, 1–5, when judged.")


class Judgement(BaseModel):
    """``b2p eval --judge``: a model's 1–5 grades of a beat's prose, kept so a re-run does not ask again."""

    follows: float | None = Field(None, description="Does the prose do what the beat asks? 1–5.")
    lore: float | None = Field(None, description="Is it consistent with the lore it was given? 1–5.")
    prose: float | None = Field(None, description="Prose quality. 1–5.")
    score: float | None = Field(None, description="Mean of the grades given; None when the answer had none.")
    reason: str | None = None
    parsed: bool = Field(False, description="All three grades were found in the answer.")
    answer: str = Field("", description="The judge's answer as written (first 500 characters).")
    model: str = ""
    of: str = Field("", description="sha256 of the text judged.")
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0


class Feedback(BaseModel):
    """One decision of the writer on a draft (interactive mode), with an optional 1–5 rating."""

    decision: Literal["accept", "regenerate", "edit"]
    rating: int | None = Field(None, ge=1, le=5)
    note: str | None = None


class BeatTrace(BaseModel):
    """One finished beat. Tokens and seconds cover everything spent on it (drafts, judge, continuation)."""

    index: int
    beat: str
    lore: list[LorePick]
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    text: str
    mode: str = "sequential"
    finish_reason: str = "stop"
    requests: int = 0
    cost: float | None = None
    story: dict[str, int] = Field(default_factory=dict, description="Earlier beats in the prompt: verbatim, summarised, left_out; chapters: earlier chapters summarised.")
    lore_cut: list[str] = Field(default_factory=list, description="Picks left out of the prompt to fit the context window.")
    dropped: list[Dropped] = Field(default_factory=list, description="Entries retrieval considered and left out, and why (as in 'b2p lore').")
    split: str | None = Field(None, description="oneshot: how the reply was split into beats (markers, paragraphs, sentences).")
    edited: bool = Field(False, description="The text is the writer's, not the model's draft (see edited_in).")
    edited_in: Literal["interactive", "chapter"] | None = Field(
        None, description="Where the writer last changed it: in $EDITOR during interactive review, or by hand in the chapter file.")
    draft: str | None = Field(None, description="The model's text, kept when the writer's edit replaced it.")
    saved_sha256: str | None = Field(None, description="sha256 of the text as saved in the chapter file (b2p.chapterfile.saved_hash).")
    candidates: list[Candidate] = Field(default_factory=list)
    summary: str | None = Field(None, description="Model-made summary used as story-so-far for later beats.")
    summary_of: str | None = Field(None, description="sha256 of the text the summary was made from.")
    summary_usage: Usage | None = None
    eval: Figures | None = Field(None, description="The latest 'b2p eval' figures of this beat's text.")
    judge: Judgement | None = Field(None, description="The latest 'b2p eval --judge' grades.")
    feedback: list[Feedback] = Field(default_factory=list, description="The writer's decisions on this beat's drafts, in order.")
    guard: Guard | None = Field(None, description="The kept draft's guard record: drafts and why, cuts, flags.")
    notes: list[str] = Field(default_factory=list, description="What the writer was told about this beat on screen.")
    prompt: list[dict[str, str]] | None = Field(None, description="The exact messages sent for the draft kept (role, content).")


class EarlierChapter(BaseModel):
    """A chapter before this one, as this one was written: what its story so far said of it."""

    chapter: int
    beats_file: str
    sha256: str | None = Field(None, description="sha256 of its prose then (b2p.book.prose_hash); None when it was not written.")
    summary: str | None = Field(None, description="The summary this chapter's prompts carried.")
    cached: bool = Field(False, description="The summary was made by an earlier run (else by this one).")


class BookRecord(BaseModel):
    """Where the chapter sits in its book, and what it was written from (``b2p book`` reads it for staleness)."""

    chapter: int = Field(description="Its number in the book (1-based).")
    out: str = Field(description="The chapter file.")
    bible_state: str = Field(description="The bible's content state it was written with (b2p.index).")
    earlier: list[EarlierChapter] = Field(default_factory=list)
    scene: Literal["carried", "new", "none"] = Field("none", description="'carried': the previous chapter's closing cast was on "
                                                     "stage at its start; 'new': its sheet opens a new scene ('# scene:'); 'none': nothing to carry.")
    carried: list[str] = Field(default_factory=list, description="Names of the entries carried on stage.")


class Totals(BaseModel):
    beats: int
    beats_done: int
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    requests: int = 0
    cost: float | None = None
    tokens_per_second: float | None = None


class ChapterTrace(BaseModel):
    version: int = TRACE_VERSION
    bible: str
    title: str | None = None
    beats_file: str
    beats_sha256: str
    mode: str
    model: str
    llm: str
    options: dict[str, Any]
    beats: list[BeatTrace] = Field(default_factory=list)
    totals: Totals
    complete: bool = False
    bible_dir: str | None = Field(None, description="The bible folder (absolute) when --bible named one.")
    pending: dict[int, str] | None = Field(
        None, description="A save under way: beats whose text in the chapter file may still be the previous one, "
                          "with the sha256 of that text ('' when the file did not hold the beat). Cleared once the chapter is saved.")
    book: BookRecord | None = Field(None, description="For a chapter of a book (b2p.book): its number and what it was written from.")

    def done(self) -> dict[int, BeatTrace]:
        return {b.index: b for b in self.beats}

    def adopt(self, index: int, text: str) -> BeatTrace:
        """Beat ``index`` as the writer changed it in the chapter file: their text from now on (the model's
        draft is kept in ``draft``)."""
        beat = self.done()[index]
        if not beat.edited and beat.draft is None:
            beat.draft = beat.text
        beat.text, beat.edited, beat.edited_in = text, True, "chapter"
        return beat

    def put(self, beat: BeatTrace) -> None:
        """Add or replace a finished beat, keeping beat order."""
        self.beats = sorted([b for b in self.beats if b.index != beat.index] + [beat], key=lambda b: b.index)

    def retotal(self) -> None:
        t = Totals(beats=self.totals.beats, beats_done=len(self.beats))
        costs = []
        for b in self.beats:
            extra = b.summary_usage or Usage()
            t.prompt_tokens += b.prompt_tokens + extra.prompt_tokens
            t.completion_tokens += b.completion_tokens + extra.completion_tokens
            t.seconds = round(t.seconds + b.seconds + extra.seconds, 3)
            t.requests += b.requests + extra.requests
            costs.append(b.cost)
        known = [c for c in costs if c is not None]
        t.cost = round(sum(known), 6) if known else None
        t.tokens_per_second = round(t.completion_tokens / t.seconds, 1) if t.seconds > 0 else None
        self.totals = t
        self.complete = len(self.beats) == t.beats


def sheet_hash(beats: Sequence[str]) -> str:
    """Identifies a beat sheet by its beats, not its path or spacing."""
    return hashlib.sha256("\n".join(beats).encode("utf-8")).hexdigest()


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def trace_path(chapter: Path) -> Path:
    """chapter.md → chapter.trace.json, beside it."""
    return chapter.with_name(chapter.stem + ".trace.json")


def write_atomic(path: Path, text: str) -> None:
    """Write to a temp file beside ``path``, fsync, then rename over it: readers see old or new, never half."""
    from b2p.atomic import write_atomic as write

    write(path, text, ConfigError)


def load(chapter: Path) -> ChapterTrace | None:
    """The trace beside ``chapter``, or None when there is none."""
    from b2p.userfiles import read_user_file

    path = trace_path(chapter)
    if not path.exists() and not path.is_symlink():
        return None
    data = read_user_file(path, "the trace", "a chapter trace (or pick another -o)", error=ConfigError)  # never a FIFO
    try:
        raw = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a b2p chapter trace (not UTF-8); delete it to start the chapter over, or pick another -o") from None
    try:
        return ChapterTrace.model_validate(json.loads(raw))
    except (json.JSONDecodeError, ValidationError) as err:
        kind = "not JSON" if isinstance(err, json.JSONDecodeError) else "not a b2p chapter trace"
        raise ConfigError(f"{path}: {kind}; delete it to start the chapter over, or pick another -o") from None
