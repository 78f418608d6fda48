"""Drafting strategies: how a chapter's target beats become requests to the model.

- ``Drafter`` makes one candidate: a request, continued once when the token limit cut it; the draft
  cleaned and checked by the guards (``b2p.guards``: debris cut; a copy of earlier beats or a draft
  that misses its beat drafted again with a new seed and a nudge, at most ``redrafts`` times; the best
  kept, and flagged when none passed); it judges candidates and keeps the best of ``n``. Every
  request's usage is added to a ``Usage`` the caller passes: the bill of the beat. What the writer is
  told about a beat (redrafts, cuts after streaming, flags, the judge's fallbacks and ties) is also
  kept in the beat's trace (``notes``).
- ``Sequential`` writes each beat in its own request with the story so far, in the prompt shape that fits
  the model (``prompts.choose_shape``). With an author (an ``Interaction``) it is interactive mode: the
  author accepts, re-rolls or edits each draft, or quits.
- ``OneShot`` (``b2p.oneshot``) writes every target in one request and splits the reply back into beats.

A strategy hands each finished beat to the writer, which saves it at once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from b2p import guards, measures, prompts, prose
from b2p.chapterfile import normalise
from b2p.errors import ConfigError, ModelError
from b2p.events import Events
from b2p.interactive import Interaction, ask_author
from b2p.llm import LLM, Completion, GenOptions, Message, OnText
from b2p.models import LorePick
from b2p.plan import Plan
from b2p.prompts import Prompt
from b2p.settings import Settings
from b2p.story import StorySoFar
from b2p.trace import BeatTrace, Candidate, Guard, Usage
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
        """Lines the model may echo back as scaffolding (beats, entry names, the title, the heading): trimmed from drafts."""
        heading = self.writer.trace.title
        lines = prose.known_lines(self.beats, picks, self.plan.meta.title)
        return lines + ([heading] if heading and heading != self.plan.meta.title else [])

    @property
    def shape(self) -> str:
        """The prompt shape for this model (``settings.prompt_shape``; 'auto' decides by the model's size)."""
        return prompts.choose_shape(self.settings.prompt_shape, self.llm)

    def check_for(self, i: int) -> BeatCheck:
        """What beat ``i``'s drafts are checked against: the chapter's finished beats before it."""
        before = [b for b in self.writer.trace.beats if b.index < i]
        norm = guards.norm([measures.coverage(b.beat, b.text).score for b in before])
        return BeatCheck(i, self.beats[i - 1], self.beats, [b.text for b in before], norm, self.settings.coverage_floor,
                         self.settings.redrafts)


@dataclass
class BeatCheck:
    """The guards' view of one beat: its line, the sheet, the prose before it and the chapter's coverage norm."""

    index: int
    beat: str
    beats: list[str]
    earlier: list[str]
    norm: float | None
    floor: float
    redrafts: int

    def check(self, text: str) -> guards.Verdict:
        return guards.check(text, self.beat, self.earlier, self.norm, self.floor)


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


def _join(*parts: str | None) -> str | None:
    got = [p.strip() for p in parts if p and p.strip()]
    return " ".join(got) if got else None


@dataclass
class _Try:
    """One usable draft of a candidate: what was sent and streamed, and the guards' verdict."""

    prompt: Prompt
    raw: str
    finish: str
    seed: int | None
    nudge: str | None
    verdict: guards.Verdict


@dataclass
class Drafter:
    """Candidates for one chapter's beats, and the judge that picks among them."""

    ctx: ChapterContext
    on_text: OnText | None  # where a draft streams as it is written
    notes: list[str] = field(default_factory=list)  # what the writer was told about the beat in hand

    def say(self, message: str) -> None:
        """Tell the writer (``events.note``) and keep it for the beat's trace."""
        self.notes.append(message)
        self.ctx.events.note(message)

    def _request(self, prompt: Prompt, temperature: float, seed: int | None, *bills: Usage) -> tuple[str, str]:
        """One draft as the model wrote it (continued once when the token limit cut it short): (raw, finish)."""
        opts = GenOptions(max_tokens=prompt.max_tokens, temperature=temperature, seed=seed, stop=prompt.stop)
        c = ask(self.ctx.llm, prompt.messages, opts, self.on_text, *bills)
        raw, finish = c.text, c.finish_reason
        if finish == "length" and len(prose.clean_prose(raw)) < 0.5 * len(prose.strip_scaffolding(raw)):
            more = self._continue(prompt, raw, temperature, seed, *bills)
            if more is not None:
                raw = raw + ("" if more.text[:1] in " ,.;:!?" else " ") + more.text
        return raw, finish

    def draft(self, build: Callable[[str | None], Prompt], known: Sequence[str], temperature: float, seed: int | None,
              bill: Usage, instruction: str | None = None, check: BeatCheck | None = None) -> Candidate:
        """One candidate. ``build(extra)`` makes the prompt (``extra``: the author's instruction and the
        guards' nudge). Without ``check`` a draft is only cleaned; with it, see the module doc."""
        usage = Usage()
        tries: list[_Try] = []
        nudge, empties, sent = None, 0, 0
        sheet = check.beats if check is not None else []
        while True:
            prompt = build(_join(instruction, nudge))
            s = seed if seed is None or sent == 0 else seed + 1000 * sent
            sent += 1
            raw, finish = self._request(prompt, temperature, s, usage, bill)
            text = guards.clean(raw, known, sheet)
            if not text:
                empties += 1
                if empties >= ATTEMPTS:
                    break
                self.say("the draft had no complete sentence; trying again")
                continue
            v = check.check(text) if check is not None else guards.Verdict(text=text, coverage=None, repeat=0.0)
            tries.append(_Try(prompt, raw, finish, s, nudge, v))
            if not v.problems or check is None or len(tries) > check.redrafts:
                break
            why = "; ".join(v.problems)
            self.say(f"beat {check.index}: draft {len(tries)} — {why}; drafting again ({len(tries) + 1} of {check.redrafts + 1})")
            nudge = guards.nudge(v, check.beat)
        if not tries:
            raise ModelError(f"the model wrote no complete sentence in {ATTEMPTS} tries; try a larger --words-per-beat or another model")
        kept, copied, flagged = self._keep(tries, known, check)
        guard = Guard(drafts=[guards.draft_record(t.verdict, t.seed, t.nudge) for t in tries], flagged=flagged)
        guard.drafts[tries.index(kept)].kept = True
        text = kept.verdict.text if not copied else copied[0]
        guard.cut = guards.cuts_between(kept.raw, text, sheet, copied[1] if copied else ())
        if guard.cut and self.on_text is not None:  # what was streamed is not all that is kept: say what went
            where = f"beat {check.index}: " if check is not None else ""
            self.say(where + guards.describe(guard.cut, kept.raw, text))
        if flagged:
            where = f"beat {check.index}" if check is not None else "the draft"
            self.say(f"{where} is kept with problems after {len(tries)} drafts: {'; '.join(flagged)}")
        return Candidate(text=text, temperature=temperature, seed=seed, instruction=instruction, finish_reason=kept.finish,
                         prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens, seconds=usage.seconds,
                         guard=guard if check is not None else None, prompt=[dict(m) for m in kept.prompt.messages])

    def _keep(self, tries: list[_Try], known: Sequence[str], check: BeatCheck | None) -> tuple[_Try, tuple[str, list[str]] | None, list[str]]:
        """The draft to keep: the first that passed; else the best once copies are cut from each. Returns it,
        (its text with copies cut, the sentences cut) when that is what is kept, and the problems left."""
        passed = next((t for t in tries if not t.verdict.problems), None)
        if passed is not None or check is None:
            return passed or tries[-1], None, []
        best: tuple[tuple[int, float, float], _Try, guards.Verdict, list[str]] | None = None
        for t in tries:
            v, cut = guards.salvage(t.verdict, check.beat, check.earlier, check.norm, check.floor, known, check.beats)
            if best is None or v.rank() < best[0]:
                best = (v.rank(), t, v, cut)
        assert best is not None
        _, t, v, cut = best
        return t, ((v.text, cut) if cut else None), list(v.problems)

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
            best = self.pick(f"beat {index}", cands)
        cands[best].chosen = True
        return cands

    def pick(self, what: str, cands: Sequence[Candidate], scores: Sequence[float] | None = None) -> int:
        """The best candidate: unflagged before flagged, then the highest score, then the first; the writer is
        told when the judge's answer was unusable (the heuristic scored it), when a flag overruled the
        score, and when a tie was settled by order."""
        scores = list(scores) if scores is not None else [c.score or 0.0 for c in cands]
        heuristic = [k + 1 for k, c in enumerate(cands) if c.judged_by == "heuristic"]
        if heuristic:
            which = "candidate " + ", ".join(map(str, heuristic)) if len(heuristic) < len(cands) else "every candidate"
            self.say(f"{what}: the judge's answer was unusable for {which}; scored by the heuristic instead (beat words and names the prose uses)")
        flagged = [bool(c.guard and c.guard.flagged) for c in cands]
        best = max(range(len(cands)), key=lambda k: (not flagged[k], scores[k], -k))
        top = max(range(len(cands)), key=lambda k: (scores[k], -k))
        if top != best:
            self.say(f"{what}: candidate {top + 1} scored highest ({scores[top]:g}) but is flagged; kept candidate {best + 1} ({scores[best]:g})")
        tied = [k + 1 for k in range(len(cands)) if k != best and flagged[k] == flagged[best] and scores[k] == scores[best]]
        if tied:
            others = ", ".join(map(str, tied))
            self.say(f"{what}: candidates {best + 1} and {others} tied at {scores[best]:g}; kept the first, candidate {best + 1}")
        return best


def beat_trace(ctx: ChapterContext, i: int, text: str, mode: str, prompt: Prompt, bill: Usage, chosen: Candidate | None = None,
               notes: Sequence[str] = (), **extra: object) -> BeatTrace:
    """A finished beat as the trace keeps it; ``bill`` is everything it cost; ``chosen``: the kept candidate
    (its guard record and the exact messages that drafted it). The text is kept as the page holds it."""
    story = {"verbatim": prompt.verbatim, "summarised": prompt.summarised, "left_out": prompt.left_out, "chapters": prompt.chapters}
    if prompt.shape == "short":
        story["last_paragraph"] = prompt.last_paragraph
    sent = chosen.prompt if chosen is not None and chosen.prompt else [dict(m) for m in prompt.messages]
    text = normalise(text)  # as the chapter file holds it: no trailing spaces, no blank lines around it
    return BeatTrace(
        index=i, beat=ctx.beats[i - 1], lore=ctx.plan.picks(i), dropped=ctx.plan.ledger.beats[i - 1].dropped, text=text, mode=mode,
        prompt_tokens=bill.prompt_tokens, completion_tokens=bill.completion_tokens, seconds=bill.seconds, requests=bill.requests,
        lore_cut=prompt.lore_cut, story=story, cost=ctx.llm.cost(bill.prompt_tokens, bill.completion_tokens),
        guard=chosen.guard if chosen is not None else None, prompt=sent,
        notes=[*notes, *([f"lore: {why}"] if (why := ctx.plan.ledger.beats[i - 1].resolver) else [])],
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

    def beat(self, i: int, mode: str | None = None, owed: Usage | None = None, notes: Sequence[str] = ()) -> bool:
        """Write beat ``i``; ``owed`` is usage already spent on it (a failed one-shot) and ``notes`` what the
        writer was told about it then. False if the author quit."""
        ctx, s = self.ctx, self.ctx.settings
        picks, texts = ctx.plan.picks(i), ctx.plan.texts[i]
        known = ctx.known(picks)
        ctx.events.beat_started(i, len(ctx.beats), ctx.beats[i - 1])
        self.drafter.notes = list(notes)
        story = ctx.story.before(i)
        bill = owed or Usage()
        check = ctx.check_for(i)
        shape = ctx.shape

        def prompt_for(extra: str | None) -> Prompt:
            return prompts.beat_prompt(shape, ctx.llm, ctx.plan.meta, ctx.beats, i, picks, texts, s.words_per_beat, story, extra)

        prompt = prompt_for(None)

        def make(k: int, temperature: float = s.temperature, instruction: str | None = None) -> Candidate:
            return self.drafter.draft(prompt_for, known, temperature, None if s.seed is None else s.seed + k, bill, instruction, check)

        cands = self.drafter.best_of(i, make, s.n, bill)
        chosen = next(c for c in cands if c.chosen)
        text, edited = chosen.text, False
        if self.author is not None:
            reply = ask_author(self.author, cands, make, s.temperature)
            if reply.quit:
                return False
            chosen, text, edited = reply.chosen, reply.text, reply.edited
        hand = {"edited": True, "edited_in": "interactive", "draft": chosen.text} if edited else {}
        ctx.writer.finish(beat_trace(ctx, i, text, mode or s.mode, prompt, bill, chosen, self.drafter.notes, finish_reason=chosen.finish_reason,
                                     candidates=cands if len(cands) > 1 else [], **hand))
        return True


def strategy_for(ctx: ChapterContext, interaction: Interaction | None = None) -> Strategy:
    """The strategy ``ctx.settings.mode`` names."""
    check_mode(ctx.settings, interaction)
    if ctx.settings.mode == "oneshot":
        from b2p.oneshot import OneShot  # it drafts with this module's parts

        return OneShot(ctx)
    return Sequential(ctx, author=interaction if ctx.settings.mode == "interactive" else None)


def check_mode(settings: Settings, interaction: Interaction | None) -> None:
    """Interactive mode needs an author to ask; refused before anything is opened."""
    if settings.mode == "interactive" and interaction is None:
        raise ConfigError("interactive mode needs a terminal to ask on")
