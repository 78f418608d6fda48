"""What the bible says about one beat sheet, read once; and the prompts a run would send (``--dry-run``).

The plan is read from the store before any model is loaded, so the store is not held while the model
writes; every strategy (and ``--dry-run``) takes each beat's lore from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from b2p import prompts
from b2p.llm import LLM
from b2p.models import BibleMeta, Ledger, LorePick
from b2p.prompts import Prompt, Story
from b2p.settings import Settings

if TYPE_CHECKING:
    from b2p.book import Place


@dataclass
class Plan:
    """The ledger of a sheet and the exact lore text of each pick."""

    bible: str
    meta: BibleMeta
    ledger: Ledger
    texts: dict[int, dict[str, str]]  # beat index → {entry id: lore text in the prompt}
    place: Place | None = None  # the sheet's chapter of its book (b2p.book), if it is one
    state: str = ""  # the bible's content state (b2p.index), recorded for 'b2p book'
    carried: list[str] = field(default_factory=list)  # names on stage from the previous chapter's end
    book_lines: list[str] = field(default_factory=list)  # --dry-run: the earlier chapters' summaries as cached (or placeholders)

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


def plan_chapter(settings: Settings, bible: str, beats: Sequence[str], place: Place | None = None, *, ask_model: bool = True) -> Plan:
    """The ledger of the sheet and the exact lore text of each pick, from the ingested bible ``bible``.
    In a book (``place``), the bible as it stands at the chapter, and the previous chapter's closing cast on stage."""
    from b2p.retrieval import Retriever
    from b2p.store import Store

    with Store.open(settings, bible=bible) as st, st.lock(exclusive=False):
        r = Retriever(settings, st, bible, chapter=place.number if place is not None else None)
        r.ask_model = ask_model  # a dry run calls no model: resolver = 'model' then reads only answers it has already
        carried = place.carried(settings.scene_depth) if place is not None else []
        ledger = r.ledger(list(beats), explain=True, carried=carried)  # the trace keeps what was left out, and why
        texts = {b.index: r.pick_texts(b) for b in ledger.beats}
        names = list(dict.fromkeys(r.entries[i].name for cast in carried for i in cast if i in r.entries))
        return Plan(bible=r.bible, meta=r.meta, ledger=ledger, texts=texts, place=place, state=r.index.state, carried=names)


@dataclass
class DryPrompt:
    """One request a run would send; ``story_room`` is what is left for the story so far."""

    targets: list[int]
    prompt: Prompt
    story_room: int


@dataclass
class DryRun:
    """Every request a run would send, and what they were built from."""

    plan: Plan
    prompts: list[DryPrompt]
    model: str
    context_window: int


def dry_run(settings: Settings, plan: Plan, beats: Sequence[str], llm: LLM, mode: str | None = None,
            only: Sequence[int] | None = None) -> list[DryPrompt]:
    """Build every prompt a run would send, without calling the model (the story so far is a placeholder);
    ``only``: just those beats' prompts, as ``--only`` would send them."""
    mode = mode or settings.mode
    wanted = sorted(set(only)) if only else list(range(1, len(beats) + 1))
    groups = [wanted] if mode == "oneshot" else [[i] for i in wanted]
    shape = prompts.choose_shape(settings.prompt_shape, llm)
    out = []
    for targets in groups:
        first = targets[0]
        picks, texts = plan.union(targets)
        earlier = "beat 1" if first == 2 else f"beats 1–{first - 1}"
        story = Story(placeholder=f"[the prose of {earlier}, fitted to the room left]" if first > 1 else None, book=plan.book_lines)
        if len(targets) == 1:
            p = prompts.beat_prompt(shape, llm, plan.meta, beats, first, picks, texts, settings.words_per_beat, story)
        else:
            p = prompts.build_prompt(llm, plan.meta, beats, targets, picks, texts, settings.words_per_beat, story, shrink_reply=True)
        out.append(DryPrompt(targets, p, max(0, llm.context_window - p.prompt_tokens - p.max_tokens - prompts.MARGIN)))
    return out
