"""``b2p eval --judge``: a model grades each beat's prose on a short rubric, and its answer is parsed
whatever shape it comes back in.

The rubric has three grades, 1–5: does the prose *follow* the beat, is it consistent with the
*lore* it was given, and how good is the *prose*; then a one-line reason. Small models answer
loosely ("Follows the beat - 4/5", "**Prose**: 3 out of 5", a 1–10 scale, no reason, prose instead
of grades): the parser takes what it can, and says when it found all three grades.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from b2p.llm import LLM, GenOptions, Message
from b2p.trace import Judgement, text_hash

JUDGE_TOKENS = 80
MARGIN = 16
ANSWER_CHARS = 500
KEYS = ("follows", "lore", "prose")
# What a grade's line may call it: the first word found before the number decides the key.
_NAMES = {
    "follows": ("follow", "beat", "plot", "coverage", "adherence"),
    "lore": ("lore", "consisten", "canon", "facts"),
    "prose": ("prose", "quality", "writing", "style"),
}
_GRADE = re.compile(r"(?<![\d.])(\d{1,2}(?:\.\d+)?)\s*(?:(?:/|out\s+of)\s*(\d{1,2}))?(?![\d.])", re.I)


def judge_messages(beat: str, lore: Sequence[tuple[str, str]], passage: str) -> list[Message]:
    """The rubric prompt. ``lore``: (heading, text) of each entry the beat was given."""
    facts = "\n".join(f"- {name}: {' '.join(text.split())}" for name, text in lore) or "- (none)"
    user = (
        f"Plot point: {beat}\n\nLore the passage must agree with:\n{facts}\n\n"
        f'Passage:\n"""\n{passage.strip()}\n"""\n\n'
        "Grade the passage from 1 (poor) to 5 (excellent):\n"
        "follows: does it show what the plot point asks for?\n"
        "lore: is it consistent with the lore?\n"
        "prose: is it clear, vivid prose, free of notes, headings and repetition?\n"
        "Answer with exactly four lines:\nfollows: N\nlore: N\nprose: N\nreason: one short sentence"
    )
    return [{"role": "system", "content": "You are a strict fiction editor who grades passages."}, {"role": "user", "content": user}]


def _scaled(value: float, out_of: str | None) -> float | None:
    top = float(out_of) if out_of else (10.0 if value > 5 else 5.0)
    if top <= 0 or value > top:
        return None
    return round(max(1.0, min(5.0, value * 5.0 / top if top != 5 else value)), 2)


def parse_judgement(answer: str) -> Judgement:
    """The grades and reason in a judge's answer; ``parsed`` only when all three grades were found."""
    grades: dict[str, float] = {}
    reason = None
    for raw in answer.splitlines():
        line = raw.strip().strip("*_#>-• ").strip()
        low = line.lower()
        if not line:
            continue
        if low.startswith(("reason", "why", "because", "explanation")):
            reason = reason or line.split(":", 1)[-1].strip(" *_") or None
            continue
        m = _GRADE.search(line)
        if m is None:
            if reason is None and len(line.split()) >= 4:
                reason = line
            continue
        before = low[: m.start()]
        hits = [(before.rfind(w), key) for key, names in _NAMES.items() for w in names if w in before]
        if hits:
            key = max(hits)[1]
        elif len(line.split()) <= 3:  # a bare grade ("4", "4/5"): the next one not yet given
            key = next((k for k in KEYS if k not in grades), None)
        else:  # a sentence that happens to hold a number
            reason = reason or (line if len(line.split()) >= 4 else None)
            continue
        value = _scaled(float(m.group(1)), m.group(2))
        if key is not None and key not in grades and value is not None:
            grades[key] = value
        rest = line[m.end() :].strip(" .,;:-–—*_")
        if reason is None and len(rest.split()) >= 4:
            reason = rest
    given = [grades[k] for k in KEYS if k in grades]
    return Judgement(
        **{k: grades.get(k) for k in KEYS},
        score=round(sum(given) / len(given), 2) if given else None,
        reason=" ".join(reason.split())[:200] if reason else None,
        parsed=len(given) == len(KEYS),
        answer=answer.strip()[:ANSWER_CHARS],
    )


def judge_beat(llm: LLM, beat: str, lore: Sequence[tuple[str, str]], passage: str, seed: int | None = 0) -> Judgement:
    """Ask ``llm`` to grade one beat's prose. The lore is cut to fit the context (to 40 words an entry,
    then none); a passage too long even then gets a Judgement with no grades and says why."""
    msgs: list[Message] | None = None
    for words in (None, 40, 0):
        facts = [(n, t if words is None else " ".join(t.split()[:words])) for n, t in lore] if words != 0 else []
        candidate = judge_messages(beat, facts, passage)
        if llm.count_tokens(candidate) + JUDGE_TOKENS + MARGIN <= llm.context_window:
            msgs = candidate
            break
    if msgs is None:
        return Judgement(reason="the passage is too long for the judge model's context window", model=llm.name, of=text_hash(passage))
    c = llm.complete(msgs, GenOptions(max_tokens=JUDGE_TOKENS, temperature=0.0, seed=seed))
    j = parse_judgement(c.text)
    return j.model_copy(update={"model": llm.name, "of": text_hash(passage), "prompt_tokens": c.prompt_tokens,
                                "completion_tokens": c.completion_tokens, "seconds": c.seconds})
