"""Drafting strategies: how a chapter's target beats become requests to the model.

- ``Drafter`` makes one candidate (request, trim to whole sentences, continue once when the token
  limit cut it, draft again when nothing usable came back), judges candidates, and keeps the best of
  ``n``. Every request's usage is added to a ``Usage`` the caller passes: the bill of the beat.
- ``Sequential`` writes each beat in its own request with the story so far. With an author (an
  ``Interaction``) it is interactive mode: the author accepts, re-rolls or edits each draft, or quits.
- ``OneShot`` writes every target in one request and splits the reply back into beats; a beat the
  reply has no prose for is then written on its own, sequentially.

A strategy hands each finished beat to the writer, which saves it at once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from b2p import prompts, prose
from b2p.errors import ConfigError, ModelError
from b2p.events import Events
from b2p.interactive import Interaction, ask_author
from b2p.llm import LLM, Completion, GenOptions, Message, OnText
from b2p.models import LorePick
from b2p.plan import Plan
from b2p.prompts import Prompt
from b2p.settings import Settings
from b2p.story import StorySoFar
from b2p.trace import BeatTrace, Candidate, Usage
from b2p.writer import ChapterWriter

ATTEMPTS = 4  # drafts tried before a beat with no complete sentence is given up on
CONTINUE = "Continue the passage from exactly where it stops, and bring it to the end of its sentence in at most two more sentences."
CONTINUE_TOKENS = 80


@dataclass
class ChapterContext:
    """What every strategy writes with."""

    settings: Settings
    plan: Plan
    beats: list[str]
    llm: LLM
    story: StorySoFar
    writer: ChapterWriter
    events: Events

    def known(self, picks: Sequence[LorePick]) -> list[str]:
        """Lines the model may echo back as scaffolding (beats, entry names, the title): trimmed from drafts."""
        return prose.known_lines(self.beats, picks, self.plan.meta.title)


def ask(llm: LLM, messages: list[Message], options: GenOptions, on_text: OnText | None, *bills: Usage) -> Completion:
    """One request, its usage added to each of ``bills`` (a candidate's, the beat's)."""
    c = llm.complete(messages, options, on_text=on_text)
    for u in bills:
        u.add(c)
    return c


def split_usage(total: int, weights: Sequence[int]) -> list[int]:
    """Split ``total`` in proportion to ``weights``; the parts add up to ``total`` exactly."""
    if not weights:
        return []
    w = [max(1, x) for x in weights]
    parts = [total * x // sum(w) for x in w]
    parts[-1] += total - sum(parts)
    return parts


@dataclass
class Drafter:
    """Candidates for one chapter's beats, and the judge that picks among them."""

    ctx: ChapterContext
    on_text: OnText | None  # where a draft streams as it is written

    def draft(self, prompt: Prompt, known: Sequence[str], temperature: float, seed: int | None, bill: Usage,
              instruction: str | None = None) -> Candidate:
        """One candidate: request, trim to whole sentences (continuing once if the limit cut it short)."""
        llm, usage = self.ctx.llm, Usage()
        text, finish = "", "stop"
        for attempt in range(ATTEMPTS):
            s = seed if seed is None or attempt == 0 else seed + 1000 * attempt
            opts = GenOptions(max_tokens=prompt.max_tokens, temperature=temperature, seed=s, stop=prompt.stop)
            c = ask(llm, prompt.messages, opts, self.on_text, usage, bill)
            raw, finish = c.text, c.finish_reason
            text = prose.clean_prose(raw, known)
            if finish == "length" and len(text) < 0.5 * len(prose.strip_scaffolding(raw, known)):
                more = self._continue(prompt, raw, temperature, s, usage, bill)
                if more is not None:
                    text = prose.clean_prose(raw + ("" if more.text[:1] in " ,.;:!?" else " ") + more.text, known) or text
            if text:
                break
            self.ctx.events.note("the draft had no complete sentence; trying again")
        if not text:
            raise ModelError(f"the model wrote no complete sentence in {ATTEMPTS} tries; try a larger --words-per-beat or another model")
        return Candidate(text=text, temperature=temperature, seed=seed, instruction=instruction, finish_reason=finish,
                         prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens, seconds=usage.seconds)

    def _continue(self, prompt: Prompt, raw: str, temperature: float, seed: int | None, *bills: Usage) -> Completion | None:
        llm = self.ctx.llm
        msgs = [*prompt.messages, {"role": "assistant", "content": raw}, {"role": "user", "content": CONTINUE}]
        if llm.count_tokens(msgs) + CONTINUE_TOKENS + prompts.MARGIN > llm.context_window:
            return None
        opts = GenOptions(max_tokens=CONTINUE_TOKENS, temperature=temperature, seed=seed, stop=prompt.stop)
        return ask(llm, msgs, opts, self.on_text, *bills)

    def judge(self, index: int, cand: Candidate, bill: Usage) -> None:
        """Score a candidate with the judge prompt; the heuristic stands in when the answer is unusable."""
        llm, plan = self.ctx.llm, self.ctx.plan
        beat, picks, texts = self.ctx.beats[index - 1], plan.picks(index), plan.texts[index]
        scores = None
        for words in (60, 15):
            msgs = prompts.judge_messages(beat, picks, texts, cand.text, lore_words=words)
            if llm.count_tokens(msgs) + prompts.JUDGE_TOKENS + prompts.MARGIN <= llm.context_window:
                c = ask(llm, msgs, GenOptions(max_tokens=prompts.JUDGE_TOKENS, temperature=0.0, seed=0), None, bill)
                cand.judge_answer = c.text.strip()[:200]
                scores = prompts.parse_judge(c.text)
                break
        cand.judged_by = "model" if scores else "heuristic"
        cand.coverage, cand.consistency = scores or prompts.heuristic_scores(beat, picks, cand.text)
        cand.score = round((cand.coverage + cand.consistency) / 2, 2)

    def best_of(self, index: int, make: Callable[[int], Candidate], n: int, bill: Usage) -> list[Candidate]:
        """``n`` candidates from ``make(k)``, judged when there is more than one; the best marked chosen."""
        cands = []
        for k in range(n):
            if n > 1:
                self.ctx.events.draft_started(index, k + 1, n)
            cands.append(make(k))
        best = 0
        if n > 1:
            for cand in cands:
                self.judge(index, cand, bill)
            best = max(range(n), key=lambda k: (cands[k].score or 0.0, -k))
        cands[best].chosen = True
        return cands


def beat_trace(ctx: ChapterContext, i: int, text: str, mode: str, prompt: Prompt, bill: Usage, **extra: object) -> BeatTrace:
    """A finished beat as the trace keeps it; ``bill`` is everything it cost."""
    return BeatTrace(
        index=i, beat=ctx.beats[i - 1], lore=ctx.plan.picks(i), dropped=ctx.plan.ledger.beats[i - 1].dropped, text=text, mode=mode,
        prompt_tokens=bill.prompt_tokens, completion_tokens=bill.completion_tokens, seconds=bill.seconds, requests=bill.requests,
        lore_cut=prompt.lore_cut, story={"verbatim": prompt.verbatim, "summarised": prompt.summarised, "left_out": prompt.left_out,
                                         "chapters": prompt.chapters},
        prompt=[dict(m) for m in prompt.messages],  # what was sent, exactly (issue 15 checks every prompt for gated lore)
        cost=ctx.llm.cost(bill.prompt_tokens, bill.completion_tokens),
        **extra,  # type: ignore[arg-type]
    )


class Strategy(ABC):
    """How target beats are drafted."""

    def __init__(self, ctx: ChapterContext) -> None:
        self.ctx = ctx

    @abstractmethod
    def write(self, targets: list[int]) -> bool:
        """Write the targets, each saved as it is finished. False when the author stopped before the end."""


class Sequential(Strategy):
    """One beat per request, with the story so far; with an ``author``, interactive mode."""

    def __init__(self, ctx: ChapterContext, author: Interaction | None = None) -> None:
        super().__init__(ctx)
        self.author = author
        on_text = author.stream if author is not None else (ctx.events.text if ctx.settings.stream else None)
        self.drafter = Drafter(ctx, on_text)

    def write(self, targets: list[int]) -> bool:
        return all(self.beat(i) for i in targets)  # all() stops at the first beat the author quit on

    def beat(self, i: int, mode: str | None = None, owed: Usage | None = None) -> bool:
        """Write beat ``i``; ``owed`` is usage already spent on it (a failed one-shot). False if the author quit."""
        ctx, s = self.ctx, self.ctx.settings
        picks, texts = ctx.plan.picks(i), ctx.plan.texts[i]
        known = ctx.known(picks)
        ctx.events.beat_started(i, len(ctx.beats), ctx.beats[i - 1])
        story = ctx.story.before(i)
        bill = owed or Usage()

        def prompt_for(extra: str | None) -> Prompt:
            return prompts.build_prompt(ctx.llm, ctx.plan.meta, ctx.beats, [i], picks, texts, s.words_per_beat, story, extra)

        prompt = prompt_for(None)

        def make(k: int, temperature: float = s.temperature, instruction: str | None = None) -> Candidate:
            p = prompt if instruction is None else prompt_for(instruction)
            return self.drafter.draft(p, known, temperature, None if s.seed is None else s.seed + k, bill, instruction)

        cands = self.drafter.best_of(i, make, s.n, bill)
        chosen = next(c for c in cands if c.chosen)
        text, edited = chosen.text, False
        if self.author is not None:
            reply = ask_author(self.author, cands, make, s.temperature)
            if reply.quit:
                return False
            chosen, text, edited = reply.chosen, reply.text, reply.edited
        sent = prompt if chosen.instruction is None else prompt_for(chosen.instruction)  # the prompt of the draft kept
        ctx.writer.finish(beat_trace(ctx, i, text, mode or s.mode, sent, bill, finish_reason=chosen.finish_reason,
                                     edited=edited, candidates=cands if len(cands) > 1 else []))
        return True


class OneShot(Strategy):
    """Every target in one request (best of ``n`` whole replies by mean judged score), split back into beats."""

    def __init__(self, ctx: ChapterContext) -> None:
        super().__init__(ctx)
        self.drafter = Drafter(ctx, ctx.events.text if ctx.settings.stream else None)
        self.fallback = Sequential(ctx)

    def write(self, targets: list[int]) -> bool:
        ctx, s = self.ctx, self.ctx.settings
        picks, texts = ctx.plan.union(targets)
        known = ctx.known(picks)
        ctx.events.beat_started(targets[0], len(ctx.beats), f"beats {targets[0]}–{targets[-1]} in one request")
        story = ctx.story.before(targets[0])
        bill = Usage()
        prompt = prompts.build_prompt(ctx.llm, ctx.plan.meta, ctx.beats, targets, picks, texts, s.words_per_beat, story, shrink_reply=True)
        if prompt.max_tokens < prompts.reply_tokens(s.words_per_beat) * len(targets):
            ctx.events.note(f"the reply is limited to {prompt.max_tokens} tokens to fit the model's context window")
        replies: list[tuple[dict[int, Candidate], str]] = []
        for k in range(s.n):
            if s.n > 1:
                ctx.events.draft_started(targets[0], k + 1, s.n)
            seed = None if s.seed is None else s.seed + k
            opts = GenOptions(max_tokens=prompt.max_tokens, temperature=s.temperature, seed=seed, stop=prompt.stop)
            c = ask(ctx.llm, prompt.messages, opts, self.drafter.on_text, bill)
            sections, how = prose.split_sections(c.text, targets, known)
            replies.append(({i: Candidate(text=t, temperature=s.temperature, seed=seed, finish_reason=c.finish_reason) for i, t in sections.items()}, how))
        means = []
        for cands, _ in replies:
            if s.n > 1:
                for i, cand in cands.items():
                    if cand.text:
                        self.drafter.judge(i, cand, bill)
            means.append(sum(c.score or 0.0 for c in cands.values()) / len(cands))
        best = max(range(s.n), key=lambda k: (means[k], -k))
        chosen, how = replies[best]
        filled = [i for i in targets if chosen[i].text]
        shares = [len(chosen[i].text) for i in filled]
        parts = zip(filled, split_usage(bill.prompt_tokens, [1] * len(filled)), split_usage(bill.completion_tokens, shares),
                    split_usage(round(bill.seconds * 1000), shares), strict=True)
        for n_, (i, p_tok, c_tok, ms) in enumerate(parts):
            chosen[i].chosen = True
            share = Usage(prompt_tokens=p_tok, completion_tokens=c_tok, seconds=ms / 1000, requests=bill.requests if n_ == 0 else 0)
            ctx.writer.finish(beat_trace(ctx, i, chosen[i].text, "oneshot", prompt, share, finish_reason=chosen[i].finish_reason,
                                         split=how, candidates=[r[0][i] for r in replies] if s.n > 1 else []))
        owed = None if filled else bill  # a reply with no usable prose at all: its cost goes to the first beat
        for i in targets:
            if not chosen[i].text:  # the reply had nothing for this beat: write it on its own
                ctx.events.note(f"the one-shot reply had no prose for beat {i}; writing it on its own")
                self.fallback.beat(i, mode="sequential", owed=owed)
                owed = None
        return True


def strategy_for(ctx: ChapterContext, interaction: Interaction | None = None) -> Strategy:
    """The strategy ``ctx.settings.mode`` names."""
    check_mode(ctx.settings, interaction)
    if ctx.settings.mode == "oneshot":
        return OneShot(ctx)
    return Sequential(ctx, author=interaction if ctx.settings.mode == "interactive" else None)


def check_mode(settings: Settings, interaction: Interaction | None) -> None:
    """Interactive mode needs an author to ask; refused before anything is opened."""
    if settings.mode == "interactive" and interaction is None:
        raise ConfigError("interactive mode needs a terminal to ask on")
