"""Beat sheet → chapter + trace, in three modes.

``sequential`` writes one beat per request with the story so far; ``oneshot`` writes every beat in
one request and splits the reply back into beats; ``interactive`` is sequential with the author
accepting, re-rolling or editing each draft through an ``Interaction`` the caller passes in.
``--n K`` drafts K candidates and keeps the one the judge scores best.

Every finished beat is saved at once (chapter, then trace, each atomically), so a crash or Ctrl-C
leaves a valid partial chapter that ``resume`` continues without redoing any beat.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from b2p import prompts, prose, trace
from b2p.errors import ConfigError, ModelError
from b2p.interactive import Interaction, ask_author
from b2p.llm import LLM, Completion, GenOptions, Message, OnText, check_llm
from b2p.models import BibleMeta, Ledger, LorePick
from b2p.prompts import Prompt, Story
from b2p.settings import Settings
from b2p.trace import BeatTrace, Candidate, ChapterTrace, Totals, Usage

ATTEMPTS = 4  # drafts tried before a beat with no complete sentence is given up on
CONTINUE = "Continue the passage from exactly where it stops, and bring it to the end of its sentence in at most two more sentences."
CONTINUE_TOKENS = 80


class Events:
    """What a run reports as it goes. The defaults do nothing; the CLI overrides them to draw."""

    def beat_started(self, index: int, total: int, beat: str) -> None: ...
    def draft_started(self, index: int, k: int, n: int) -> None: ...
    def text(self, piece: str) -> None: ...
    def beat_finished(self, beat: BeatTrace, total: int) -> None: ...
    def note(self, message: str) -> None: ...


def parse_only(value: str) -> list[int]:
    """'5' or '5,7' → [5, 7]; anything else is one clear ConfigError."""
    out = []
    for part in value.split(","):
        part = part.strip()
        if not part.isdigit() or int(part) < 1:
            raise ConfigError(f"--only {value!r}: '{part}' is not a beat number; write e.g. --only 5 or --only 5,7")
        out.append(int(part))
    return sorted(set(out))


def check_flags(n_beats: int, beats_file: Path, out: Path | None, resume: bool, only: Sequence[int] | None) -> None:
    """Refuse flag combinations that cannot work, before any model is loaded."""
    if (resume or only) and out is None:
        flag = "--resume" if resume else "--only"
        raise ConfigError(f"{flag} needs -o CHAPTER.md: the chapter and trace it continues from")
    for i in only or []:
        if not 1 <= i <= n_beats:
            raise ConfigError(f"--only {i}: the beat sheet {beats_file} has {n_beats} beats (1–{n_beats})")


def load_saved(out: Path | None, beats: Sequence[str], beats_file: Path, resume: bool, only: Sequence[int] | None) -> ChapterTrace | None:
    """The saved trace ``--resume``/``--only`` continue from, checked against the sheet; None when there is none."""
    if out is None or not (resume or only):
        return None
    old = trace.load(out)
    if old is not None:
        trace.check_sheet(old, out, beats, beats_file)
    elif only:
        raise ConfigError(f"--only needs the saved chapter: there is no trace at {trace.trace_path(out)}; generate the chapter first")
    return old


def check_before_store(settings: Settings, beats: Sequence[str], beats_file: Path, out: Path | None, resume: bool,
                       only: Sequence[int] | None, dry_run: bool = False) -> None:
    """Every refusal that needs no store (flags, the model file or key, the saved trace), so it comes
    before the store is opened: Chroma rewrites files even to answer a query."""
    if not dry_run:
        check_flags(len(beats), beats_file, out, resume, only)
    check_llm(settings)
    if not dry_run:
        load_saved(out, beats, beats_file, resume, only)


@dataclass
class Plan:
    """What the bible says about one sheet, read once so the store is not held while the model writes."""

    bible: str
    meta: BibleMeta
    ledger: Ledger
    texts: dict[int, dict[str, str]]  # beat index → {entry id: lore text in the prompt}

    def picks(self, index: int) -> list[LorePick]:
        return self.ledger.beats[index - 1].lore

    def union(self, targets: Sequence[int]) -> tuple[list[LorePick], dict[str, str]]:
        """The targets' picks, each entry once, in first-seen order (always first)."""
        seen: dict[str, LorePick] = {}
        texts: dict[str, str] = {}
        for i in targets:
            for p in self.picks(i):
                seen.setdefault(p.id, p)
                texts.setdefault(p.id, self.texts[i].get(p.id, ""))
        picks = sorted(seen.values(), key=lambda p: p.reason != "always")
        return picks, texts


def plan_chapter(settings: Settings, bible: str, beats: Sequence[str]) -> Plan:
    """The ledger of the sheet and the exact lore text of each pick."""
    from b2p.retrieval import Retriever
    from b2p.store import Store

    with Store.open(settings, bible=bible) as st, st.lock(exclusive=False):
        r = Retriever(settings, st, bible)
        ledger = r.ledger(list(beats), explain=True)  # the trace keeps what was left out, and why
        texts = {b.index: r.pick_texts(b) for b in ledger.beats}
        return Plan(bible=r.bible, meta=r.meta, ledger=ledger, texts=texts)


@dataclass
class DryPrompt:
    """One request a run would send; ``story_room`` is what is left for the story so far."""

    targets: list[int]
    prompt: Prompt
    story_room: int


def dry_run(settings: Settings, plan: Plan, beats: Sequence[str], llm: LLM, mode: str | None = None) -> list[DryPrompt]:
    """Build every prompt a run would send, without calling the model (the story so far is a placeholder)."""
    mode = mode or settings.mode
    groups = [list(range(1, len(beats) + 1))] if mode == "oneshot" else [[i] for i in range(1, len(beats) + 1)]
    out = []
    for targets in groups:
        first = targets[0]
        picks, texts = plan.union(targets)
        earlier = "beat 1" if first == 2 else f"beats 1–{first - 1}"
        story = Story(placeholder=f"[the prose of {earlier}, fitted to the room left]") if first > 1 else None
        p = prompts.build_prompt(llm, plan.meta, beats, targets, picks, texts, settings.words_per_beat, story, shrink_reply=len(targets) > 1)
        out.append(DryPrompt(targets, p, max(0, llm.context_window - p.prompt_tokens - p.max_tokens - prompts.MARGIN)))
    return out


def _shares(total: int, weights: Sequence[int]) -> list[int]:
    """Split ``total`` in proportion to ``weights``; the parts add up to ``total`` exactly."""
    if not weights:
        return []
    w = [max(1, x) for x in weights]
    parts = [total * x // sum(w) for x in w]
    parts[-1] += total - sum(parts)
    return parts


@dataclass
class ChapterRun:
    """One ``b2p generate``: resolves what to write, writes it, saves after every beat.

    ``trace`` always holds what is finished, so the caller can report it after an error.
    """

    settings: Settings
    plan: Plan
    beats: list[str]
    beats_file: Path
    llm: LLM
    out: Path | None = None
    only: list[int] | None = None
    resume: bool = False
    events: Events = field(default_factory=Events)
    interaction: Interaction | None = None
    trace: ChapterTrace = field(init=False)
    targets: list[int] = field(init=False)
    written: list[int] = field(default_factory=list, init=False)
    stopped: bool = field(default=False, init=False)
    saved: int = field(default=0, init=False)  # beats in the chapter file on disk
    _spent: Usage = field(default_factory=Usage, init=False)  # everything the beat being written costs

    def __post_init__(self) -> None:
        s, n = self.settings, len(self.beats)
        check_flags(n, self.beats_file, self.out, self.resume, self.only)
        if s.mode == "interactive" and self.interaction is None:
            raise ConfigError("interactive mode needs a terminal to ask on")
        old = load_saved(self.out, self.beats, self.beats_file, self.resume, self.only)
        if old is not None:
            trace.check_matches(old, self.out, self.plan.bible, self.beats, self.beats_file)  # type: ignore[arg-type]
        elif self.resume:
            self.events.note(f"nothing to resume at {self.out}; starting at beat 1")
        self.trace = ChapterTrace(
            bible=self.plan.bible,
            title=self.plan.meta.title,
            beats_file=str(self.beats_file),
            beats_sha256=trace.sheet_hash(self.beats),
            mode=s.mode,
            model=self.llm.name,
            llm=s.llm,
            options={"temperature": s.temperature, "seed": s.seed, "words_per_beat": s.words_per_beat, "n": s.n,
                     "context_window": self.llm.context_window, "budget": s.budget, "stream": s.stream},
            beats=old.beats if old else [],
            totals=Totals(beats=n, beats_done=0),
        )
        self.saved = len(self.trace.beats)
        done = self.trace.done()
        wanted = set(self.only or [])
        if self.resume or not self.only:
            wanted |= {i for i in range(1, n + 1) if i not in done}
        self.targets = sorted(wanted)

    # -- the run ----------------------------------------------------------------------------------

    def run(self) -> ChapterTrace:
        if self.out is not None and self.trace.beats:
            self._save()  # re-render the chapter from the trace: it may predate a crash
        if not self.targets:
            self.events.note("every beat is already written; nothing to do (use --only N to rewrite a beat)")
        elif self.settings.mode == "oneshot":
            self._oneshot(self.targets)
        else:
            for i in self.targets:
                if self.stopped:
                    break
                self._sequential(i)
        self.trace.retotal()
        return self.trace

    def _save(self) -> None:
        if self.out is not None:
            done = len(self.trace.beats)
            trace.save(self.trace, self.out, on_trace_saved=lambda: setattr(self, "saved", done))
        else:
            self.trace.retotal()

    def _finish(self, bt: BeatTrace) -> None:
        bt.cost = self.llm.cost(bt.prompt_tokens, bt.completion_tokens)
        self.trace.put(bt)
        self._save()
        self.written.append(bt.index)
        self.events.beat_finished(bt, len(self.beats))

    def _known(self, picks: Sequence[LorePick]) -> list[str]:
        return prose.known_lines(self.beats, picks, self.plan.meta.title)

    def _story(self, before: int) -> Story:
        done = [b for b in self.trace.beats if b.index < before]
        return Story([b.text for b in done], summarise=lambda k: self._summary(done[k]))

    def _summary(self, b: BeatTrace) -> str:
        """A short summary of a saved beat, made once and kept in the trace (resume reuses it)."""
        h = trace.text_hash(b.text)
        if b.summary and b.summary_of == h:
            return b.summary
        opts = GenOptions(max_tokens=prompts.SUMMARY_TOKENS, temperature=0.2, seed=self.settings.seed)
        usage = Usage()
        msgs = prompts.summary_messages(b.text)
        text = ""
        if self.llm.count_tokens(msgs) + prompts.SUMMARY_TOKENS + prompts.MARGIN <= self.llm.context_window:
            c = self._complete(msgs, opts, None, usage)
            text = prose.clean_prose(c.text, ["Summary", "Here is a summary"])
        if not text:  # the model gave nothing usable: the beat's opening sentences stand in
            text = prose.trim_to_sentence(" ".join(b.text.split()[:40])) or " ".join(b.text.split()[:40])
        b.summary, b.summary_of, b.summary_usage = text, h, usage
        self._save()
        return text

    def _complete(self, messages: list[Message], options: GenOptions, on_text: OnText | None, *into: Usage) -> Completion:
        """One request, its usage added to ``into`` (a candidate's, the beat's)."""
        c = self.llm.complete(messages, options, on_text=on_text)
        for u in into:
            u.add(c)
        return c

    def _on_text(self) -> OnText | None:
        if self.interaction is not None and self.settings.mode == "interactive":
            return self.interaction.stream
        return self.events.text if self.settings.stream else None

    # -- drafting ---------------------------------------------------------------------------------

    def _draft(self, prompt: Prompt, known: Sequence[str], temperature: float, seed: int | None, instruction: str | None = None) -> Candidate:
        """One candidate: request, trim to whole sentences (continuing once if the limit cut it short)."""
        usage = Usage()
        text, finish = "", "stop"
        for attempt in range(ATTEMPTS):
            s = seed if seed is None or attempt == 0 else seed + 1000 * attempt
            opts = GenOptions(max_tokens=prompt.max_tokens, temperature=temperature, seed=s, stop=prompt.stop)
            c = self._complete(prompt.messages, opts, self._on_text(), usage, self._spent)
            raw, finish = c.text, c.finish_reason
            text = prose.clean_prose(raw, known)
            if finish == "length" and len(text) < 0.5 * len(prose.strip_scaffolding(raw, known)):
                more = self._continue(prompt, raw, temperature, s, usage)
                if more is not None:
                    text = prose.clean_prose(raw + ("" if more.text[:1] in " ,.;:!?" else " ") + more.text, known) or text
            if text:
                break
            self.events.note("the draft had no complete sentence; trying again")
        if not text:
            raise ModelError(f"the model wrote no complete sentence in {ATTEMPTS} tries; try a larger --words-per-beat or another model")
        return Candidate(text=text, temperature=temperature, seed=seed, instruction=instruction, finish_reason=finish,
                         prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens, seconds=usage.seconds)

    def _continue(self, prompt: Prompt, raw: str, temperature: float, seed: int | None, usage: Usage) -> Completion | None:
        msgs = [*prompt.messages, {"role": "assistant", "content": raw}, {"role": "user", "content": CONTINUE}]
        if self.llm.count_tokens(msgs) + CONTINUE_TOKENS + prompts.MARGIN > self.llm.context_window:
            return None
        opts = GenOptions(max_tokens=CONTINUE_TOKENS, temperature=temperature, seed=seed, stop=prompt.stop)
        return self._complete(msgs, opts, self._on_text(), usage, self._spent)

    def _judge(self, index: int, cand: Candidate) -> None:
        """Score a candidate with the judge prompt; the heuristic stands in when the answer is unusable."""
        beat, picks, texts = self.beats[index - 1], self.plan.picks(index), self.plan.texts[index]
        scores = None
        for words in (60, 15):
            msgs = prompts.judge_messages(beat, picks, texts, cand.text, lore_words=words)
            if self.llm.count_tokens(msgs) + prompts.JUDGE_TOKENS + prompts.MARGIN <= self.llm.context_window:
                c = self._complete(msgs, GenOptions(max_tokens=prompts.JUDGE_TOKENS, temperature=0.0, seed=0), None, self._spent)
                cand.judge_answer = c.text.strip()[:200]
                scores = prompts.parse_judge(c.text)
                break
        cand.judged_by = "model" if scores else "heuristic"
        cand.coverage, cand.consistency = scores or prompts.heuristic_scores(beat, picks, cand.text)
        cand.score = round((cand.coverage + cand.consistency) / 2, 2)

    def _best_of(self, index: int, make: Callable[[int], Candidate], n: int) -> list[Candidate]:
        """``n`` candidates from ``make(k)``, judged when there is more than one; the best marked chosen."""
        cands = []
        for k in range(n):
            if n > 1:
                self.events.draft_started(index, k + 1, n)
            cands.append(make(k))
        best = 0
        if n > 1:
            for cand in cands:
                self._judge(index, cand)
            best = max(range(n), key=lambda k: (cands[k].score or 0.0, -k))
        cands[best].chosen = True
        return cands

    def _beat_trace(self, i: int, text: str, mode: str, prompt: Prompt, **extra: object) -> BeatTrace:
        u = self._spent
        return BeatTrace(
            index=i, beat=self.beats[i - 1], lore=self.plan.picks(i), dropped=self.plan.ledger.beats[i - 1].dropped, text=text, mode=mode,
            prompt_tokens=u.prompt_tokens, completion_tokens=u.completion_tokens, seconds=u.seconds, requests=u.requests,
            lore_cut=prompt.lore_cut, story={"verbatim": prompt.verbatim, "summarised": prompt.summarised, "left_out": prompt.left_out},
            **extra,  # type: ignore[arg-type]
        )

    # -- modes ------------------------------------------------------------------------------------

    def _sequential(self, i: int, mode: str | None = None, spent: Usage | None = None) -> None:
        """One beat in its own request(s); ``spent`` is usage already owed by this beat (a failed one-shot)."""
        s = self.settings
        picks, texts = self.plan.picks(i), self.plan.texts[i]
        known = self._known(picks)
        self.events.beat_started(i, len(self.beats), self.beats[i - 1])
        story = self._story(i)
        self._spent = spent or Usage()

        def prompt_for(extra: str | None) -> Prompt:
            return prompts.build_prompt(self.llm, self.plan.meta, self.beats, [i], picks, texts, s.words_per_beat, story, extra)

        prompt = prompt_for(None)

        def make(k: int, temperature: float = s.temperature, instruction: str | None = None) -> Candidate:
            p = prompt if instruction is None else prompt_for(instruction)
            return self._draft(p, known, temperature, None if s.seed is None else s.seed + k, instruction)

        cands = self._best_of(i, make, s.n)
        chosen = next(c for c in cands if c.chosen)
        text, edited = chosen.text, False
        if s.mode == "interactive":
            assert self.interaction is not None
            reply = ask_author(self.interaction, cands, make, s.temperature)
            chosen, text, edited, self.stopped = reply.chosen, reply.text, reply.edited, reply.quit
            if self.stopped:
                return
        self._finish(self._beat_trace(i, text, mode or s.mode, prompt, finish_reason=chosen.finish_reason, edited=edited,
                                      candidates=cands if len(cands) > 1 else []))

    def _oneshot(self, targets: list[int]) -> None:
        """All targets in one request (best of ``n`` whole replies by mean judged score), split back into beats."""
        s = self.settings
        picks, texts = self.plan.union(targets)
        known = self._known(picks)
        self.events.beat_started(targets[0], len(self.beats), f"beats {targets[0]}–{targets[-1]} in one request")
        story = self._story(targets[0])
        self._spent = Usage()
        prompt = prompts.build_prompt(self.llm, self.plan.meta, self.beats, targets, picks, texts, s.words_per_beat, story, shrink_reply=True)
        if prompt.max_tokens < prompts.reply_tokens(s.words_per_beat) * len(targets):
            self.events.note(f"the reply is limited to {prompt.max_tokens} tokens to fit the model's context window")
        replies: list[tuple[dict[int, Candidate], str]] = []
        for k in range(s.n):
            if s.n > 1:
                self.events.draft_started(targets[0], k + 1, s.n)
            seed = None if s.seed is None else s.seed + k
            opts = GenOptions(max_tokens=prompt.max_tokens, temperature=s.temperature, seed=seed, stop=prompt.stop)
            c = self._complete(prompt.messages, opts, self._on_text(), self._spent)
            sections, how = prose.split_sections(c.text, targets, known)
            replies.append(({i: Candidate(text=t, temperature=s.temperature, seed=seed, finish_reason=c.finish_reason) for i, t in sections.items()}, how))
        means = []
        for cands, _ in replies:
            if s.n > 1:
                for i, cand in cands.items():
                    if cand.text:
                        self._judge(i, cand)
            means.append(sum(c.score or 0.0 for c in cands.values()) / len(cands))
        best = max(range(s.n), key=lambda k: (means[k], -k))
        chosen, how = replies[best]
        filled = [i for i in targets if chosen[i].text]
        spent = self._spent
        shares = [len(chosen[i].text) for i in filled]
        parts = zip(filled, _shares(spent.prompt_tokens, [1] * len(filled)), _shares(spent.completion_tokens, shares),
                    _shares(round(spent.seconds * 1000), shares), strict=True)
        for n_, (i, p_tok, c_tok, ms) in enumerate(parts):
            chosen[i].chosen = True
            self._spent = Usage(prompt_tokens=p_tok, completion_tokens=c_tok, seconds=ms / 1000, requests=spent.requests if n_ == 0 else 0)
            self._finish(self._beat_trace(i, chosen[i].text, "oneshot", prompt, finish_reason=chosen[i].finish_reason, split=how,
                                          candidates=[r[0][i] for r in replies] if s.n > 1 else []))
        owed = None if filled else spent  # a reply with no usable prose at all: its cost goes to the first beat
        for i in targets:
            if not chosen[i].text:  # the reply had nothing for this beat: write it on its own
                self.events.note(f"the one-shot reply had no prose for beat {i}; writing it on its own")
                self._sequential(i, mode="sequential", spent=owed)
                owed = None
