"""The story so far that a beat's prompt carries: the chapter's finished beats before it.

``prompts.build_prompt`` fits it to the room left in the context window, the nearest beats verbatim
and older ones as summaries. A summary is made once per beat text by the model and kept in the trace
(so a resume or ``--only`` reuses it); when the model gives nothing usable, the beat's opening
sentences stand in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from b2p import prompts, prose, trace
from b2p.llm import LLM, GenOptions
from b2p.prompts import Story
from b2p.trace import BeatTrace, ChapterTrace, Usage

SUMMARY_WORDS = 40  # the stand-in when the model gives no usable summary


@dataclass
class StorySoFar:
    """Story-so-far for the beats of ``trace``. ``on_summary`` runs after a new summary is kept (the
    writer's save), so a summary is paid for once even if the run stops."""

    trace: ChapterTrace
    llm: LLM
    seed: int | None
    on_summary: Callable[[], None]

    def before(self, index: int) -> Story:
        """The story so far for beat ``index``: every finished beat before it."""
        done = [b for b in self.trace.beats if b.index < index]
        return Story([b.text for b in done], summarise=lambda k: self.summary(done[k]))

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
