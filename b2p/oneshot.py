"""One-shot mode: every target beat in one request, the reply split back into beats at its markers.

The reply is asked to open each part with "### Beat N". When every target's marker is there, in order,
each section is cleaned and checked by the guards like any draft (``b2p.guards``); a section that is
empty, a copy of earlier beats or off its beat is written on its own, sequentially, with the notes that
say why. When the markers are missing the split would be a guess, so every target is written on its
own, and every beat's trace says so. With ``--n K`` the K whole replies are judged and the best mean
score kept (the same ``Drafter.pick`` rule and notes as a beat's candidates).
"""

from __future__ import annotations

from collections.abc import Sequence

from b2p import guards, prompts, prose
from b2p.drafting import ChapterContext, Drafter, Sequential, Strategy, ask, beat_trace, split_usage
from b2p.llm import GenOptions
from b2p.trace import Candidate, Guard, Usage


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
        self.drafter.notes = []
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
        best = 0
        if s.n > 1:
            whole = [Candidate(text="", temperature=s.temperature, judged_by="heuristic" if any(c.judged_by == "heuristic" for c in r[0].values()) else "model")
                     for r in replies]
            best = self.drafter.pick(f"beats {targets[0]}–{targets[-1]}", whole, means)
        chosen, how = replies[best]
        accepted = self._accepted(chosen, how, targets, known) if how == "markers" else {}
        if how != "markers":
            self.drafter.say(f"the one-shot reply did not mark every beat (### Beat N); writing beats {targets[0]}–{targets[-1]} one at a time")
        shares = [len(chosen[i].text) for i in accepted]
        parts = dict(zip(accepted, zip(split_usage(bill.prompt_tokens, [1] * len(accepted)), split_usage(bill.completion_tokens, shares),
                                       split_usage(round(bill.seconds * 1000), shares), strict=True), strict=True))
        owed = None if accepted else bill  # a reply with no usable prose at all: its cost goes to the first beat
        notes, first = list(self.drafter.notes), True
        for i in targets:
            if i in accepted:
                p_tok, c_tok, ms = parts[i]
                chosen[i].chosen = True
                share = Usage(prompt_tokens=p_tok, completion_tokens=c_tok, seconds=ms / 1000, requests=bill.requests if first else 0)
                first = False
                ctx.writer.finish(beat_trace(ctx, i, chosen[i].text, "oneshot", prompt, share, chosen[i], [*notes, *accepted[i]],
                                             finish_reason=chosen[i].finish_reason, split=how,
                                             candidates=[r[0][i] for r in replies] if s.n > 1 else []))
                continue
            why = accepted_not(chosen[i], how)
            note = f"the one-shot reply {why} for beat {i}; writing it on its own"
            ctx.events.note(note)
            self.fallback.beat(i, mode="sequential", owed=owed, notes=[*notes, note])
            owed = None
        return True

    def _accepted(self, sections: dict[int, Candidate], how: str, targets: list[int], known: Sequence[str]) -> dict[int, list[str]]:
        """The marked sections that pass the guards (debris cut, not copied, on their beat), in order, each with
        what was cut from it said; a section that fails is written on its own instead."""
        ctx = self.ctx
        out: dict[int, list[str]] = {}
        written = {b.index: b.text for b in ctx.writer.trace.beats}
        for i in targets:
            cand = sections[i]
            check = ctx.check_for(i)
            check.earlier = [t for k, t in sorted({**written, **{k: sections[k].text for k in out}}.items()) if k < i]
            text = guards.clean(cand.text, known, ctx.beats)
            v = check.check(text)
            cand.guard = Guard(drafts=[guards.draft_record(v, cand.seed, None)], cut=guards.cuts_between(cand.text, text, ctx.beats))
            cand.text = text
            if text and not v.problems:
                cand.guard.drafts[0].kept = True
                out[i] = []
            else:
                cand.guard.flagged = list(v.problems)
        return out


def accepted_not(cand: Candidate, how: str) -> str:
    """Why a one-shot section was not kept, for the note that says so."""
    if not cand.text:
        return "had no prose"
    if cand.guard and cand.guard.flagged:
        return "failed the guards (" + "; ".join(cand.guard.flagged) + ")"
    return "could not be split"
