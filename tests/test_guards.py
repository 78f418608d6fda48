"""The generation guards: what b2p lets reach the page, whatever the model writes.

The measures on hand-written drafts with known answers, then the generator on a scripted model (a real
``LLM`` subclass answering from a script) that writes debris, copies earlier beats and ignores its beat.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from b2p import guards, measures
from b2p import plan as gen_plan
from b2p.chapterfile import read_chapter
from b2p.llm import GenOptions, Message
from b2p.trace import trace_path
from tests.test_generate import SHEET, Noted, ScriptedAuthor, ScriptedRun, ScriptLLM, plan, prose, said, scripted_run, settings_for, work  # noqa: F401

BEATS = [re.sub(r"^\d+\.\s*", "", b) for b in SHEET.splitlines()]


def part(messages: list[Message]) -> int:
    m = re.search(r"write part (\d+)", messages[-1]["content"])
    return int(m.group(1)) if m else 0


# -- the measures the guards use, on known drafts -------------------------------------------------------

DEBRIS_DRAFT = """Here is the next part:
<<A Beginning for a Future>>

**Beat 1**
The story so far:
Jack cut into the crater wall while Xander held the lamp. I have added a new paragraph about 60 words of prose. Dust hung in the beam.

1. Jack and Xander dig at Varro Crater
Xander swore at the cold and kept digging until"""


def test_clean_cuts_every_debris_line_and_only_the_comment_sentence_inside_prose() -> None:
    kept = guards.clean(DEBRIS_DRAFT, [], BEATS)
    assert kept == "Jack cut into the crater wall while Xander held the lamp. Dust hung in the beam."
    assert measures.debris(kept, BEATS) == [] and not measures.ends_mid_sentence(kept)
    cuts = guards.cuts_between(DEBRIS_DRAFT, kept, BEATS)
    assert [c.kind for c in cuts] == ["label", "markup", "heading", "label", "meta", "list", "unfinished"]
    assert cuts[4].text == "I have added a new paragraph about 60 words of prose."
    said_ = guards.describe(cuts, DEBRIS_DRAFT, kept)
    assert said_ == ("kept 1 of 3 paragraphs; cut: 2 labels, a markup line, a heading, a comment on the writing, a list line, "
                     "an unfinished sentence")


def test_a_cut_that_makes_a_neighbour_look_like_a_title_is_cut_again() -> None:
    # "The lamp flickered" is prose while lower-case prose follows it; once the <<…>> line goes it is a
    # short unpunctuated line before more prose, which the eval calls an invented title.
    draft = "Jack waited.\nThe lamp flickered\n<<and then>>\nXander spoke at last."
    kept = guards.clean(draft, [], BEATS)
    assert measures.debris(kept, BEATS) == []
    assert kept.startswith("Jack waited.") and kept.endswith("Xander spoke at last.")


def test_copies_are_cut_whole_sentence_by_sentence_most_copied_first() -> None:
    earlier = ["Jack dug into the regolith while Xander held the lamp and the dust rose slowly around them both."]
    draft = ("Jack dug into the regolith while Xander held the lamp and the dust rose slowly around them both. "
             "Then the Lantern hummed under the dust. They uncovered a strange artifact.")
    v = guards.check(draft, BEATS[1], earlier, None, 0.2)
    assert v.has("copied") and v.repeat > measures.COPY_LIMIT and not v.has("off-beat")
    kept, cut = guards.cut_copies(draft, earlier)
    assert kept == "Then the Lantern hummed under the dust. They uncovered a strange artifact."
    assert cut == [earlier[0]] and measures.repeat_share(kept, earlier) <= measures.COPY_LIMIT


def test_a_draft_misses_its_beat_below_the_floor_or_far_below_the_chapters_norm() -> None:
    beat = BEATS[1]  # uncover, Lantern, strange, artifact, hums
    assert guards.check("The rover idled in the dark.", beat, [], None, 0.2).has("off-beat")
    one_word = "They found the Lantern in the dark."
    assert not guards.check(one_word, beat, [], None, 0.2).problems  # 1 of 5 words: at the floor
    assert guards.check(one_word, beat, [], 0.6, 0.2).has("off-beat")  # the chapter so far covers 60 %: far below
    assert guards.norm([0.5]) is None and guards.norm([0.2, 0.4, 0.9]) == 0.4


# -- the guards in the generator, on a scripted model -------------------------------------------------------


def test_debris_never_reaches_the_page_and_the_writer_is_told_what_was_cut(work: Path, plan: gen_plan.Plan, tmp_path: Path) -> None:
    def answer(kind: str, messages: list[Message], options: GenOptions) -> str:
        if kind == "beat" and part(messages) == 1:
            return DEBRIS_DRAFT
        return prose(kind, messages, options)

    events = Noted()
    streamed: list[str] = []
    events.text = streamed.append  # type: ignore[method-assign]
    out = tmp_path / "ch.md"
    trace = scripted_run(work, plan, ScriptLLM(answer), out, stream=True, events=events).run()
    b1 = trace.beats[0]
    assert b1.text == "Jack cut into the crater wall while Xander held the lamp. Dust hung in the beam."
    assert streamed[0] == DEBRIS_DRAFT  # the writer saw the draft as written …
    told = [n for n in events.notes if n.startswith("beat 1: kept 1 of 3 paragraphs; cut: 2 labels")]
    assert told and told == [n for n in b1.notes if "cut:" in n]  # … and is told what the page does not keep
    assert [c.kind for c in b1.guard.cut] == ["label", "markup", "heading", "label", "meta", "list", "unfinished"]  # type: ignore[union-attr]
    assert "<<" not in out.read_text() and "Beat 1" not in out.read_text()
    assert all(measures.debris(b.text, BEATS) == [] and not measures.ends_mid_sentence(b.text) for b in trace.beats)


def test_a_copy_of_an_earlier_beat_is_drafted_again_with_a_new_seed_and_a_nudge(work: Path, plan: gen_plan.Plan, tmp_path: Path) -> None:
    first = said(1, 0.8)

    def answer(kind: str, messages: list[Message], options: GenOptions) -> str:
        if kind == "beat" and part(messages) == 2 and "Also:" not in messages[-1]["content"]:
            return first + " " + said(2, 0.8)  # beat 1 written again, then beat 2
        return prose(kind, messages, options)

    llm, events = ScriptLLM(answer), Noted()
    trace = scripted_run(work, plan, llm, tmp_path / "ch.md", seed=7, events=events).run()
    b2 = trace.beats[1]
    assert b2.text == said(2, 0.8)
    drafts = b2.guard.drafts  # type: ignore[union-attr]
    assert len(drafts) == 2 and drafts[0].problems[0].startswith("copied:") and not drafts[1].problems and drafts[1].kept
    assert [d.seed for d in drafts] == [7, 1007]  # the run's seed, then a new one
    assert drafts[1].nudge and "do not repeat" in drafts[1].nudge
    beat2 = [m for k, m, _ in llm.calls if k == "beat" and part(m) == 2]
    assert "Also: Write new sentences" in beat2[1][-1]["content"]
    assert b2.prompt == [dict(m) for m in beat2[1]]  # the trace keeps the messages of the draft kept
    assert any(n.startswith("beat 2: draft 1 — copied:") and "drafting again (2 of 3)" in n for n in events.notes)
    saved = json.loads(trace_path(tmp_path / "ch.md").read_text())
    assert saved["beats"][1]["guard"]["drafts"][0]["problems"][0].startswith("copied:")


def test_a_draft_that_ignores_its_beat_is_drafted_again_naming_the_beat(work: Path, plan: gen_plan.Plan) -> None:
    def answer(kind: str, messages: list[Message], options: GenOptions) -> str:
        if kind == "beat" and part(messages) == 3 and "Also:" not in messages[-1]["content"]:
            return "The rover idled in the dark while the radio hissed."
        return prose(kind, messages, options)

    llm = ScriptLLM(answer)
    trace = scripted_run(work, plan, llm, None).run()
    b3 = trace.beats[2]
    assert b3.text == said(3, 0.8) and b3.guard.drafts[0].problems[0].startswith("off-beat:")  # type: ignore[union-attr]
    redraft = [m for k, m, _ in llm.calls if k == "beat" and part(m) == 3][1][-1]["content"]
    assert f"This part must show: {BEATS[2]}" in redraft and "Jack" in redraft.split("(use:")[1]


def test_when_every_draft_fails_the_best_is_kept_copies_cut_and_flagged_never_silently(work: Path, plan: gen_plan.Plan) -> None:
    copied = said(1, 0.8)

    def answer(kind: str, messages: list[Message], options: GenOptions) -> str:
        if kind == "beat" and part(messages) == 2:  # always beat 1 again, with a little that is new but off-beat
            return f"{copied} The radio hissed. The rover idled."
        return prose(kind, messages, options)

    events = Noted()
    llm = ScriptLLM(answer)
    trace = scripted_run(work, plan, llm, None, events=events).run()
    b2 = trace.beats[1]
    assert len(b2.guard.drafts) == 3  # type: ignore[union-attr]  # the first draft and two redrafts, no more
    assert len([1 for k, m, _ in llm.calls if k == "beat" and part(m) == 2]) == 3
    assert b2.text == "The radio hissed. The rover idled."  # the copy cut, sentence by sentence
    assert measures.repeat_share(b2.text, [trace.beats[0].text]) <= measures.COPY_LIMIT
    assert b2.guard.flagged and b2.guard.flagged[0].startswith("off-beat:")  # type: ignore[union-attr]
    assert [c.kind for c in b2.guard.cut] == ["copied"]  # type: ignore[union-attr]
    flagged = [n for n in events.notes if n.startswith("beat 2 is kept with problems after 3 drafts: off-beat")]
    assert flagged and flagged[0] in b2.notes


def test_redrafts_zero_keeps_the_first_draft_flagged(work: Path, plan: gen_plan.Plan) -> None:
    def answer(kind: str, messages: list[Message], options: GenOptions) -> str:
        return "The rover idled in the dark." if kind == "beat" else prose(kind, messages, options)

    llm, events = ScriptLLM(answer), Noted()
    trace = scripted_run(work, plan, llm, None, redrafts=0, events=events).run()
    assert llm.kinds().count("beat") == 3
    assert all(b.guard.flagged and len(b.guard.drafts) == 1 for b in trace.beats)  # type: ignore[union-attr]
    assert len([n for n in events.notes if "kept with problems after 1 drafts" in n]) == 3


def test_an_author_sees_the_kept_text_of_a_reroll(work: Path, plan: gen_plan.Plan) -> None:
    def answer(kind: str, messages: list[Message], options: GenOptions) -> str:
        if kind == "beat" and options.temperature == 1.2:
            return "## A Title\n" + said(part(messages), 1.2)
        return prose(kind, messages, options)

    author = ScriptedAuthor(["r 1.2", "a", "a", "a"])
    trace = scripted_run(work, plan, ScriptLLM(answer), None, mode="interactive", interaction=author).run()
    assert trace.beats[0].text == said(1, 1.2) and said(1, 1.2) in author.shown and "## A Title" not in "".join(author.shown)


# -- one-shot mode ---------------------------------------------------------------------------------------------


def test_oneshot_without_markers_writes_each_beat_on_its_own_and_says_so_for_every_beat(work: Path, plan: gen_plan.Plan) -> None:
    def answer(kind: str, messages: list[Message], options: GenOptions) -> str:
        if "### Beat N" in messages[-1]["content"]:
            return "Jack dug at the crater. Xander watched the rim.\n\nThey found the Lantern.\n\nJack called Thorne."
        return prose(kind, messages, options)

    llm, events = ScriptLLM(answer), Noted()
    trace = scripted_run(work, plan, llm, None, mode="oneshot", events=events).run()
    assert [b.text for b in trace.beats] == [said(i, 0.8) for i in (1, 2, 3)]
    assert [b.mode for b in trace.beats] == ["sequential"] * 3 and llm.kinds() == ["beat"] * 4
    for b in trace.beats:
        assert any("did not mark every beat" in n for n in b.notes), b.notes
    assert any("did not mark every beat" in n for n in events.notes)
    assert sum(b.prompt_tokens for b in trace.beats) == trace.totals.prompt_tokens  # the one-shot's cost is on beat 1


def test_oneshot_section_that_copies_or_misses_its_beat_is_written_on_its_own(work: Path, plan: gen_plan.Plan) -> None:
    one = said(1, 0.8)

    def answer(kind: str, messages: list[Message], options: GenOptions) -> str:
        if "### Beat N" in messages[-1]["content"]:
            return f"### Beat 1\n{one}\n\n### Beat 2\n{one}\n\n### Beat 3\nJack called Thorne at the outpost."
        return prose(kind, messages, options)

    llm, events = ScriptLLM(answer), Noted()
    trace = scripted_run(work, plan, llm, None, mode="oneshot", events=events).run()
    assert [b.text for b in trace.beats] == [one, said(2, 0.8), "Jack called Thorne at the outpost."]
    assert [b.mode for b in trace.beats] == ["oneshot", "sequential", "oneshot"]
    assert any("failed the guards (copied:" in n for n in trace.beats[1].notes)
    assert trace.beats[0].prompt == trace.beats[2].prompt and "### Beat N" in trace.beats[0].prompt[-1]["content"]  # type: ignore[index]


# -- the chapter heading -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("top", "heading"), [
    ("# Chapter 1 — The Emerald Stair\n", "# Chapter 1 — The Emerald Stair"),
    ("", "# The Lantern at Site Nine"),
    ("# scene: a new scene\n# Chapter 1 — Later\n", "# The Lantern at Site Nine"),  # a directive, not a heading
])
def test_the_chapter_heading_comes_from_the_sheet_else_the_bible(work: Path, plan: gen_plan.Plan, tmp_path: Path, top: str, heading: str) -> None:
    sheet = tmp_path / "sheet.txt"
    sheet.write_text(top + SHEET, encoding="utf-8")
    out = tmp_path / "ch.md"
    ScriptedRun(settings_for(work), plan, sheet, ScriptLLM(prose), out).run()
    assert out.read_text().splitlines()[0] == heading


def test_a_markup_sentence_inside_prose_goes_alone() -> None:
    draft = 'The rover slid past the <img src=x onerror="alert(1)"> reef. Jack held the wheel & counted: 3 < 4.'
    kept = guards.clean(draft, [], BEATS)
    assert kept == "Jack held the wheel & counted: 3 < 4."
    assert [(c.kind, c.text[:24]) for c in guards.cuts_between(draft, kept, BEATS)] == [("markup", "The rover slid past the ")]


def test_the_terminal_says_what_the_page_does_not_keep_on_a_line_after_the_stream(work: Path, fault_server, tmp_path: Path) -> None:  # noqa: ANN001
    from tests.test_generate import invoke

    fault_server.text = "## The Dig\nJack swung the pick while Xander watched the crater rim."
    sheet = tmp_path / "one.txt"
    sheet.write_text(SHEET.splitlines()[0] + "\n", encoding="utf-8")
    out = tmp_path / "ch.md"
    result = invoke(["generate", str(sheet), "--bible", "lunar_mining", "--config", str(work / "b2p.toml"), "--llm", "openai",
                     "--base-url", fault_server.url, "--words-per-beat", "20", "--stream", "-o", str(out)])
    assert result.exit_code == 0, result.stderr
    lines = result.stderr.splitlines()
    note = next(k for k, ln in enumerate(lines) if ln.startswith("note: beat 1: kept"))
    assert lines[note] == "note: beat 1: kept 10 of 13 words; cut: a heading"  # on a line of its own …
    assert lines[note - 1].endswith("crater rim.")  # … right after the streamed prose
    assert read_chapter(out).beats == {1: "Jack swung the pick while Xander watched the crater rim."}  # the page keeps the prose alone
