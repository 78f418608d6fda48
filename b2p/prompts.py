"""The prompts the models see, fitted to the model's context window, and the trimming of what comes back.

A beat prompt has a fixed shape: the writing defaults and the ``always`` lore as system text; then
the beat's own lore picks, a compact outline with the current beat marked, the story so far (the
most recent beats verbatim, earlier ones as model-made summaries) and the task with its word
target. When it does not fit, the story so far shrinks first (verbatim → summaries → dropped,
oldest first), then the outline, then the lowest-priority lore; a prompt that cannot fit even then
is refused before any request is sent. The judge prompt for ``--n K`` and its parsing live here too;
what comes back as prose is trimmed in ``b2p.prose``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from b2p.errors import ConfigError
from b2p.lexicon import STOP_WORDS, sentences
from b2p.llm import LLM, Message
from b2p.models import BibleMeta, LorePick

# Headings the prompts use; the same list tells the trimmer what scaffolding looks like.
ALWAYS_HEADING = "Always true in this story"
LORE_HEADING = "Lore for this beat"
CHAPTER_LORE_HEADING = "Lore for this chapter"
OUTLINE_HEADING = "Chapter outline"
STORY_HEADING = "The story so far"
EARLIER_HEADING = "Earlier, in brief"
BOOK_HEADING = "Earlier chapters"
TASK_HEADING = "Your task"
LINE_HEADING = "Earlier in the chapter"  # the short shape's one-line story so far
LAST_HEADING = "The last paragraph"
HEADINGS = (ALWAYS_HEADING, LORE_HEADING, CHAPTER_LORE_HEADING, OUTLINE_HEADING, STORY_HEADING, EARLIER_HEADING, BOOK_HEADING, TASK_HEADING,
            LINE_HEADING, LAST_HEADING)
OPENING = "(Nothing yet: this beat opens the chapter.)"
MARGIN = 16  # tokens kept free: remote backends estimate prompt size
# A model that starts echoing scaffolding after its prose is stopped there rather than edited afterwards
# (the OpenAI API takes at most four stops). Each stop needs a newline before it: a heading on the very
# first line is trimmed instead, and stopping there would leave nothing. A multi-beat reply needs its
# "### Beat N" markers, so it stops on less.
STOP_BEAT = ["\n#", "\n>>", f"\n{TASK_HEADING}", f"\n{STORY_HEADING}"]
STOP_CHAPTER = [f"\n{TASK_HEADING}", f"\n{STORY_HEADING}", f"\n{LORE_HEADING}", f"\n{OUTLINE_HEADING}"]
OUTLINE_WORDS = 14  # words shown of each beat other than the current one


def reply_tokens(words: int) -> int:
    """Tokens to allow for ``words`` of prose: ~1.3 tokens a word, plus room to finish a sentence."""
    return round(words * 1.5) + 32


# -- building -----------------------------------------------------------------------------------


@dataclass
class Story:
    """The prose already written before the beats being written, oldest first.

    ``summarise(i)`` returns a short summary of ``texts[i]`` (the caller makes and caches it);
    ``placeholder`` is for dry runs, where there is no prose yet. ``book``: a summary of each earlier
    chapter of the book ("Chapter 2: …"), oldest first; they come first, and shrink first, oldest first.
    """

    texts: list[str] = field(default_factory=list)
    summarise: Callable[[int], str] | None = None
    placeholder: str | None = None
    book: list[str] = field(default_factory=list)


@dataclass
class Prompt:
    """A request ready to send, and how it was fitted."""

    messages: list[Message]
    prompt_tokens: int
    max_tokens: int
    verbatim: int = 0  # earlier beats given verbatim
    summarised: int = 0  # earlier beats given as summaries
    left_out: int = 0  # earlier beats given not at all
    lore_cut: list[str] = field(default_factory=list)  # pick names left out to fit
    chapters: int = 0  # earlier chapters of the book summarised (some cut to their first sentence when tight)
    outline: str = "full"  # full | near | none
    stop: list[str] = field(default_factory=lambda: list(STOP_BEAT))
    shape: str = "full"  # full | short (see build_short_prompt)
    last_paragraph: int = 0  # short shape: the previous beat's last paragraph is given (1) or not (0)

    @property
    def system(self) -> str:
        return self.messages[0]["content"]

    @property
    def user(self) -> str:
        return self.messages[1]["content"]


def _words(text: str, n: int) -> str:
    w = text.split()
    return " ".join(w) if len(w) <= n else " ".join(w[:n]) + " …"


def _lore_block(heading: str, picks: Sequence[LorePick], texts: dict[str, str]) -> str:
    parts = [f"{heading}:"]
    for p in picks:
        body = texts.get(p.id, "").strip()
        parts.append(f"### {p.name} ({p.kind})" + (f"\n{body}" if body else ""))
    return "\n\n".join(parts)


def system_text(meta: BibleMeta, always: Sequence[LorePick], texts: dict[str, str]) -> str:
    """The writing defaults from bible.yaml, then the ``always`` lore."""
    about = f'the chapter of "{meta.title}"' if meta.title else "a chapter"
    lines = [f"You are a novelist writing {about}, one part at a time."]
    if meta.pov:
        lines.append(f"Point of view: {meta.pov}.")
    if meta.tense:
        lines.append(f"Tense: {meta.tense}.")
    if meta.style:
        lines.append(f"Style: {meta.style}")
    lines.append("Write only the story's prose: no headings, labels, beat numbers, notes or comments.")
    out = "\n".join(lines)
    if always:
        out += "\n\n" + _lore_block(ALWAYS_HEADING, always, texts)
    return out


def outline_text(beats: Sequence[str], targets: Sequence[int], near: int | None = None) -> str:
    """One line per beat, the targets marked ``>>`` and given in full; ``near`` keeps only beats that close to a target."""
    lines = [f"{OUTLINE_HEADING} (the part to write is marked >>):"]
    skipped = False
    for i, beat in enumerate(beats, start=1):
        if near is not None and min(abs(i - t) for t in targets) > near:
            if not skipped:
                lines.append("…")
            skipped = True
            continue
        skipped = False
        lines.append(f">> {i}. {beat}" if i in targets else f"{i}. {_words(beat, OUTLINE_WORDS)}")
    return "\n".join(lines)


def story_text(story: Story, verbatim: int, summaries: list[str], book: Sequence[str] = ()) -> str:
    head = f"{STORY_HEADING}:" + (f"\n({BOOK_HEADING}) " + " ".join(book) + "\n" if book else "")
    if story.placeholder is not None:
        return f"{head}\n{story.placeholder}"
    if not story.texts:
        return f"{head}\n{OPENING}"
    parts = [head]
    if summaries:
        parts.append(f"({EARLIER_HEADING}) " + " ".join(summaries))
    if verbatim:
        parts.extend(t.strip() for t in story.texts[-verbatim:])
    return "\n\n".join(parts)


def task_text(beats: Sequence[str], targets: Sequence[int], words: int, extra: str | None) -> str:
    if len(targets) == 1:
        i = targets[0]
        out = (
            f"{TASK_HEADING}: write part {i} of {len(beats)}: {beats[i - 1]}\n"
            f"Write about {words} words of prose that carry on from where the story so far stops. "
            "Begin with the prose itself and end on a complete sentence."
        )
    else:
        listed = "\n".join(f"{i}. {beats[i - 1]}" for i in targets)
        out = (
            f"{TASK_HEADING}: write these parts of the chapter, in order:\n{listed}\n\n"
            f"Write about {words} words of prose for each. Begin each part with a line of its own, "
            '"### Beat N" (N is the part\'s number), then its prose. Nothing else: no titles, notes or comments. '
            "End each part on a complete sentence."
        )
    if extra:
        out += f"\nAlso: {extra.strip()}"
    return out


def build_prompt(
    llm: LLM,
    meta: BibleMeta,
    beats: Sequence[str],
    targets: Sequence[int],
    picks: Sequence[LorePick],
    texts: dict[str, str],
    words: int,
    story: Story | None = None,
    extra: str | None = None,
    shrink_reply: bool = False,
) -> Prompt:
    """Fit one request to ``llm.context_window``.

    ``targets`` are the 1-based beats to write (one for sequential, several for oneshot);
    ``picks`` their lore in priority order and ``texts`` its text by entry id (``Retriever.pick_texts``).
    ``shrink_reply`` lets a multi-beat request take fewer reply tokens (down to half) before failing.
    """
    p = _fit(llm, meta, beats, targets, picks, texts, words, story, extra, shrink_reply)
    if len(targets) > 1:
        p.stop = list(STOP_CHAPTER)
    return p


def _fit(
    llm: LLM,
    meta: BibleMeta,
    beats: Sequence[str],
    targets: Sequence[int],
    picks: Sequence[LorePick],
    texts: dict[str, str],
    words: int,
    story: Story | None,
    extra: str | None,
    shrink_reply: bool,
) -> Prompt:
    story = story or Story()
    max_tokens = reply_tokens(words) * len(targets) + 8 * (len(targets) - 1)
    always = [p for p in picks if p.reason == "always"]
    own = [p for p in picks if p.reason != "always"]
    lore_heading = LORE_HEADING if len(targets) == 1 else CHAPTER_LORE_HEADING
    task = task_text(beats, targets, words, extra)

    def render(own_kept: Sequence[LorePick], always_kept: Sequence[LorePick], near: int | None, story_part: str | None) -> list[Message]:
        user = []
        if own_kept:
            user.append(_lore_block(lore_heading, own_kept, texts))
        if near != -1:
            user.append(outline_text(beats, targets, near))
        if story_part is not None:
            user.append(story_part)
        user.append(task)
        return [{"role": "system", "content": system_text(meta, always_kept, texts)}, {"role": "user", "content": "\n\n".join(user)}]

    def room(reply: int) -> int:
        return llm.context_window - reply - MARGIN

    # 1. The prompt with the least story it can have (none, once there are earlier beats to drop);
    # shrink the outline, then the lore (lowest priority first), until that fits.
    if story.placeholder is not None:
        least: str | None = story_text(story, 0, [])
    else:
        least = None if story.texts else f"{STORY_HEADING}:\n{OPENING}"
    near: int | None = None
    own_kept, always_kept, cut = list(own), list(always), []
    ladder: list[int | None] = [None, 2, -1]  # full outline, beats near the target, no outline
    while True:
        msgs = render(own_kept, always_kept, near, least)
        used = llm.count_tokens(msgs)
        if used <= room(max_tokens):
            break
        if shrink_reply and used <= room(max_tokens // 2):
            max_tokens = room(0) - used
            break
        if near != -1:
            near = ladder[ladder.index(near) + 1]
        elif own_kept:
            cut.insert(0, own_kept.pop().name)
        elif always_kept:
            cut.insert(0, always_kept.pop().name)
        else:
            raise _too_small(llm, used, max_tokens)
    outline = {None: "full", 2: "near", -1: "none"}[near]
    n = len(story.texts)

    def fits(used: int) -> bool:
        return used <= room(max_tokens)

    def finish(p: Prompt, verbatim: int = 0, summaries: Sequence[str] = ()) -> Prompt:
        """The earlier chapters' summaries in the room the rest left: all of them, else the oldest cut to
        their first sentence, then left out, oldest first."""
        for lines in _book_levels(story.book):
            m = render(own_kept, always_kept, near, story_text(story, verbatim, list(summaries), lines))
            used_b = llm.count_tokens(m)
            if fits(used_b):
                p.messages, p.prompt_tokens, p.chapters = m, used_b, len(lines)
                break
        return p

    if story.placeholder is not None or not n:
        return finish(Prompt(msgs, used, max_tokens, lore_cut=cut, outline=outline))

    # 2. The story so far in the room left: the most recent beats verbatim (at most a quarter of the
    # window, so long chapters stay focused), older ones as summaries, the oldest dropped last.
    def attempt(v: int, summaries: list[str]) -> tuple[list[Message], int]:
        m = render(own_kept, always_kept, near, story_text(story, v, summaries))
        return m, llm.count_tokens(m)

    cap = llm.context_window // 4
    sizes = [llm.count_tokens([{"role": "user", "content": t}]) for t in story.texts]
    verbatim = 0
    while verbatim < n and sum(sizes[n - verbatim - 1 :]) <= cap:
        verbatim += 1
    while verbatim > 0 and not fits(attempt(verbatim, [])[1]):  # the largest verbatim tail that fits alone
        verbatim -= 1
    if verbatim == n or story.summarise is None:
        m, used_s = attempt(verbatim, [])
        if fits(used_s):
            return finish(Prompt(m, used_s, max_tokens, verbatim=verbatim, left_out=n - verbatim, lore_cut=cut, outline=outline), verbatim)
        return finish(Prompt(msgs, used, max_tokens, left_out=n, lore_cut=cut, outline=outline))
    summaries = [story.summarise(i) for i in range(n - verbatim)]
    first = 0  # summaries before this one are dropped
    while True:
        m, used_s = attempt(verbatim, summaries[first:])
        if fits(used_s):
            return finish(Prompt(m, used_s, max_tokens, verbatim=verbatim, summarised=len(summaries) - first, left_out=first, lore_cut=cut,
                                 outline=outline), verbatim, summaries[first:])
        if verbatim > 0:  # the oldest verbatim beat gives way to its summary
            verbatim -= 1
            summaries.append(story.summarise(n - verbatim - 1))
        elif first < len(summaries):
            first += 1
        else:
            return finish(Prompt(msgs, used, max_tokens, left_out=n, lore_cut=cut, outline=outline))


def _too_small(llm: LLM, used: int, max_tokens: int) -> ConfigError:
    return ConfigError(
        f"the model's context window ({llm.context_window} tokens) cannot hold even a bare prompt "
        f"({used} tokens) plus the reply ({max_tokens} tokens); lower --words-per-beat or use a model "
        "with a larger context (n_ctx / context_window)"
    )


def _book_levels(book: Sequence[str]) -> list[list[str]]:
    """The earlier chapters' summaries from fullest to none: the oldest shrink to their first sentence
    first, then the oldest go, one at a time."""
    if not book:
        return []
    cur: list[str | None] = list(book)
    levels = [list(book)]
    for k, line in enumerate(book):
        label, _, text = line.partition(": ")
        short = f"{label}: {next(iter(sentences(text)), text)}" if text else line
        if short != line:
            cur[k] = short
            levels.append([c for c in cur if c])
    for k in range(len(book)):
        cur[k] = None
        levels.append([c for c in cur if c])
    return levels


def summary_messages(text: str) -> list[Message]:
    """Ask for a one- or two-sentence summary of a passage (kept in the trace, reused on resume)."""
    return [
        {"role": "system", "content": "You summarise passages of fiction briefly and plainly, keeping every name."},
        {"role": "user", "content": f"Summarise this passage in one or two sentences (at most 40 words):\n\n{text.strip()}"},
    ]


SUMMARY_TOKENS = 80


def chapter_summary_messages(text: str, words: int) -> list[Message]:
    """Ask for a short summary of a whole earlier chapter (the story so far of the chapters after it)."""
    return [
        {"role": "system", "content": "You summarise chapters of fiction briefly and plainly, keeping every name."},
        {"role": "user", "content": f"Summarise this chapter in two or three sentences (at most {words} words): who does what, "
                                    f"and how it ends.\n\n{text.strip()}"},
    ]


# -- judging ------------------------------------------------------------------------------------

JUDGE_TOKENS = 24


def judge_messages(beat: str, picks: Sequence[LorePick], texts: dict[str, str], passage: str, lore_words: int = 60) -> list[Message]:
    """Ask for two scores, 1–10: how fully the passage carries out the beat, how well it agrees with the lore."""
    lore = "\n".join(f"- {p.name} ({p.kind}): {_words(texts.get(p.id, ''), lore_words)}" for p in picks if p.reason != "always")
    user = (
        f"Beat: {beat}\n\nLore the passage must agree with:\n{lore or '- (none)'}\n\n"
        f'Passage:\n"""\n{passage.strip()}\n"""\n\n'
        "Score the passage from 1 to 10 on:\ncoverage: does it show what the beat asks for?\n"
        "consistency: does it agree with the lore?\nAnswer with exactly two lines:\ncoverage: N\nconsistency: N"
    )
    return [{"role": "system", "content": "You are a strict fiction editor who grades passages."}, {"role": "user", "content": user}]


_SCORE = r"[:=\s\-*]*(\d{1,2}(?:\.\d+)?)"


def parse_judge(answer: str) -> tuple[float, float] | None:
    """(coverage, consistency) from the judge's answer, or None when it gave no usable scores."""
    text = answer.lower()
    found = {}
    for key in ("coverage", "consistency"):
        m = re.search(key + _SCORE, text)
        if m and 0 <= float(m.group(1)) <= 10:
            found[key] = float(m.group(1))
    if len(found) == 2:
        return max(1.0, found["coverage"]), max(1.0, found["consistency"])
    numbers = [float(x) for x in re.findall(r"(?<![\d.])(\d{1,2}(?:\.\d+)?)(?:\s*/\s*10)?(?!\d|\.\d)", text)]
    numbers = [x for x in numbers if 1 <= x <= 10]
    if len(numbers) >= 2 and not found:
        return numbers[0], numbers[1]
    return None


def _content_words(text: str) -> set[str]:
    return {w[:6] for w in re.findall(r"[a-z][a-z'-]+", text.lower()) if w not in STOP_WORDS and len(w) > 3}


def heuristic_scores(beat: str, picks: Sequence[LorePick], passage: str) -> tuple[float, float]:
    """A deterministic stand-in for the judge: beat words the passage uses; named lore it mentions."""
    if not passage.strip():
        return 1.0, 1.0
    have = _content_words(passage)
    want = _content_words(beat)
    coverage = 1 + 9 * (len(want & have) / len(want) if want else 1.0)
    names = [p for p in picks if p.reason in ("named", "scene")]
    if names:
        hit = sum(1 for p in names if _content_words(p.name) & have)
        consistency = 1 + 9 * hit / len(names)
    else:
        consistency = coverage
    return round(coverage, 2), round(consistency, 2)


# -- the short shape, for small models -----------------------------------------------------------

STOP_SHORT = ["\n#", f"\n{TASK_HEADING}", f"\n{LINE_HEADING}", f"\n{LAST_HEADING}"]
LEAD_SENTENCES, LEAD_WORDS = 2, 50  # each lore entry is cut to its opening sentences: two at most, about this many words
LINE_WORDS = 50  # the one-line story so far
PARAGRAPH_WORDS = 120  # the last paragraph, cut to its closing sentences when longer
SMALL_PARAMS = 1_000_000_000  # 'auto' gives a model under this many parameters the short shape
SMALL_CONTEXT = 4096  # … and a model whose context window is under this


def choose_shape(setting: str, llm: LLM) -> str:
    """The prompt shape for ``llm``: ``setting`` unless it is 'auto', which gives a small model (known to have
    under ``SMALL_PARAMS`` parameters, or a context under ``SMALL_CONTEXT`` tokens) the short shape."""
    if setting != "auto":
        return setting
    small = (llm.params is not None and llm.params < SMALL_PARAMS) or llm.context_window < SMALL_CONTEXT
    return "short" if small else "full"


def lead(text: str, words: int = LEAD_WORDS) -> str:
    """The opening sentences of ``text`` (at most ``LEAD_SENTENCES``, about ``words`` words; the first one
    cut with '…' when longer)."""
    from b2p.lexicon import sentences

    out: list[str] = []
    for sent in sentences(" ".join(text.split())):
        if out and (len(out) >= LEAD_SENTENCES or len(" ".join([*out, sent]).split()) > words):
            break
        out.append(sent)
    return _words(" ".join(out), words)


def _tail(text: str, words: int) -> str:
    """The closing sentences of ``text``, about ``words`` words at most."""
    from b2p.lexicon import sentences

    out: list[str] = []
    for sent in reversed(sentences(" ".join(text.split()))):
        if out and len(" ".join([sent, *out]).split()) > words:
            break
        out.insert(0, sent)
    got = " ".join(out)
    return got if len(got.split()) <= words else "… " + " ".join(got.split()[-words:])


def last_paragraph(text: str) -> str:
    paras = [p.strip() for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]
    return paras[-1] if paras else ""


def story_line(story: Story, words: int = LINE_WORDS) -> tuple[str, int]:
    """The story so far in one line: the first sentence of each earlier beat's summary, newest kept first,
    within ``words``; and how many beats it tells. The previous beat is left to its last paragraph when
    that paragraph is the whole of it."""
    from b2p.lexicon import sentences

    n = len(story.texts)
    last = n - 1 if n and last_paragraph(story.texts[-1]) == story.texts[-1].strip() else n
    parts: list[str] = []
    for k in range(last - 1, -1, -1):
        if story.summarise is None:
            break
        first = (sentences(" ".join(story.summarise(k).split())) or [""])[0]
        if not first or (parts and len(" ".join([first, *parts]).split()) > words):
            break
        parts.insert(0, first)
    return _words(" ".join(parts), words), len(parts)


def build_short_prompt(
    llm: LLM,
    meta: BibleMeta,
    beats: Sequence[str],
    target: int,
    picks: Sequence[LorePick],
    texts: dict[str, str],
    words: int,
    story: Story | None = None,
    extra: str | None = None,
) -> Prompt:
    """The short shape, for a small model: the writing defaults, the beat's lore cut to each entry's lead,
    in a book the earlier chapters' summaries, the story so far in one line, the previous beat's last
    paragraph, and the task. No outline, no verbatim story: a small model copies what it is shown and
    loses the task in a long prompt. When it does not fit, the earlier chapters shrink first (as in the
    full shape: the oldest to its first sentence, then the oldest goes), then the story line goes, then
    the lore (lowest priority first)."""
    story = story or Story()
    max_tokens = reply_tokens(words)
    leads = {p.id: lead(texts.get(p.id, "")) for p in picks}
    always = [p for p in picks if p.reason == "always"]
    own = [p for p in picks if p.reason != "always"]
    if story.placeholder is not None:
        earlier = "beat 1" if target == 2 else f"beats 1–{target - 1}"
        line, told, paragraph = f"[a one-line summary of {earlier}]", target - 1, f"[the last paragraph of beat {target - 1}]"
    elif story.texts:
        (line, told), paragraph = story_line(story), _tail(last_paragraph(story.texts[-1]), PARAGRAPH_WORDS)
    else:
        line, told, paragraph = "", 0, ""
    levels = _book_levels(story.book) or [[]]
    opening = target == 1 or (not story.texts and story.placeholder is None)
    task = (f"{TASK_HEADING}: write part {target} of {len(beats)}: {beats[target - 1]}\n"
            f"Write about {words} words of prose" + (" that open the chapter. " if opening else " that carry on from the last paragraph. ")
            + "Begin with the prose itself and end on a complete sentence.")
    if extra:
        task += f"\nAlso: {extra.strip()}"

    def render(own_kept: Sequence[LorePick], with_line: bool, book: Sequence[str]) -> list[Message]:
        user = []
        if own_kept:
            user.append(f"{LORE_HEADING}:\n" + "\n".join(f"- {_lead_line(p, leads[p.id])}" for p in own_kept))
        if book:
            user.append(f"({BOOK_HEADING}) " + " ".join(book))
        if with_line and line:
            user.append(f"{LINE_HEADING}: {line}")
        if paragraph and not opening:
            user.append(f"{LAST_HEADING}:\n{paragraph}")
        user.append(task)
        return [{"role": "system", "content": system_text(meta, always, leads)}, {"role": "user", "content": "\n\n".join(user)}]

    own_kept, with_line, level, cut = list(own), True, 0, []
    while True:
        msgs = render(own_kept, with_line, levels[level])
        used = llm.count_tokens(msgs)
        if used + max_tokens + MARGIN <= llm.context_window:
            break
        if level < len(levels) - 1:
            level += 1
        elif with_line and line:
            with_line = False
        elif own_kept:
            cut.insert(0, own_kept.pop().name)
        else:
            raise _too_small(llm, used, max_tokens)
    n = len(story.texts) if story.placeholder is None else target - 1
    summarised = told if with_line and line else 0
    has_para = int(bool(paragraph) and not opening)
    return Prompt(msgs, used, max_tokens, summarised=summarised, left_out=max(0, n - summarised - has_para), lore_cut=cut,
                  outline="none", stop=list(STOP_SHORT), shape="short", last_paragraph=has_para,
                  chapters=len(levels[level]))


def _lead_line(p: LorePick, text: str) -> str:
    """An entry's lead as a line of lore; its name before it only when the lead does not say it (a small
    model writes a 'Name (kind):' heading back into its prose)."""
    if not text:
        return p.name
    return text if p.name.split()[-1].lower() in text.lower() else f"{p.name}: {text}"


def beat_prompt(shape: str, llm: LLM, meta: BibleMeta, beats: Sequence[str], target: int, picks: Sequence[LorePick],
                texts: dict[str, str], words: int, story: Story | None = None, extra: str | None = None) -> Prompt:
    """One beat's prompt in ``shape`` ('full' or 'short'; see ``choose_shape``)."""
    if shape == "short":
        return build_short_prompt(llm, meta, beats, target, picks, texts, words, story, extra)
    return build_prompt(llm, meta, beats, [target], picks, texts, words, story, extra)
