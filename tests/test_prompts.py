"""Pure prompt logic: fitting to a context window, trimming replies, judging, splitting. No model runs here:
``WordLLM`` is a real ``LLM`` subclass whose tokens are words, so sizes are easy to reason about."""

from __future__ import annotations

import pytest

from b2p import prompts, prose
from b2p.errors import ConfigError
from b2p.resume import parse_only
from b2p.interactive import Choice, parse_choice
from b2p.llm import LLM, Completion, GenOptions, Message, OnText
from b2p.models import BibleMeta, LorePick


class WordLLM(LLM):
    """Counts one token per word (plus 4 per message); answers from a script."""

    def __init__(self, context_window: int = 4096, replies: list[str] | None = None) -> None:
        self.name = "word-llm"
        self.context_window = context_window
        self.replies = list(replies or [])
        self.sent: list[list[Message]] = []

    def count_tokens(self, messages: list[Message]) -> int:
        return sum(len(m["content"].split()) + 4 for m in messages)

    def complete(self, messages: list[Message], options: GenOptions, on_text: OnText | None = None) -> Completion:
        self.sent.append(messages)
        text = self.replies.pop(0) if self.replies else "It was quiet."
        return Completion(text=text, prompt_tokens=self.count_tokens(messages), completion_tokens=len(text.split()))


META = BibleMeta(title="The Lantern at Site Nine", pov="close third person", tense="past", style="Terse.")
BEATS = ["Jack digs at Varro.", "Jack finds the Lantern.", "Jack calls Selene."]


def pick(name: str, reason: str = "named", kind: str = "character") -> LorePick:
    return LorePick(name=name, id=name.lower().replace(" ", "_"), kind=kind, reason=reason, score=1.0, match=None, tokens=10)  # type: ignore[arg-type]


PICKS = [pick("Genre", "always", "note"), pick("Jack Halloran"), pick("The Lantern", "named", "item"), pick("Varro Crater", "similar", "place")]
TEXTS = {p.id: f"{p.name} lore text " + "word " * 40 for p in PICKS}


# -- building and fitting ---------------------------------------------------------------------


def test_beat_prompt_layout() -> None:
    llm = WordLLM()
    p = prompts.build_prompt(llm, META, BEATS, [2], PICKS, TEXTS, 50, prompts.Story(["Jack dug all day."]))
    assert "close third person" in p.system and "past" in p.system and "Terse." in p.system
    assert "Genre lore text" in p.system and "Genre lore text" not in p.user  # always lore is system text
    for name in ("Jack Halloran", "The Lantern", "Varro Crater"):
        assert f"### {name}" in p.user and f"{name} lore text" in p.user
    assert ">> 2. Jack finds the Lantern." in p.user and "\n1. Jack digs at Varro." in p.user
    assert "Jack dug all day." in p.user and p.verbatim == 1
    assert p.user.index(prompts.STORY_HEADING) < p.user.index(prompts.TASK_HEADING)
    assert p.user.rstrip().endswith("end on a complete sentence.")
    assert p.prompt_tokens == llm.count_tokens(p.messages)
    assert p.max_tokens == prompts.reply_tokens(50)


def test_story_shrinks_to_summaries_before_any_lore_is_cut() -> None:
    story_texts = [f"Beat {i} prose " + "dust " * 120 for i in range(1, 4)]
    asked: list[int] = []

    def summarise(i: int) -> str:
        asked.append(i)
        return f"Summary {i}."

    llm = WordLLM(context_window=700)
    p = prompts.build_prompt(llm, META, BEATS + ["more"], [4], PICKS, TEXTS, 50, prompts.Story(story_texts, summarise))
    assert p.prompt_tokens + p.max_tokens + prompts.MARGIN <= llm.context_window
    assert not p.lore_cut and p.outline == "full"
    assert p.summarised >= 1 and p.verbatim < 3
    assert asked == list(range(p.summarised))  # only the beats not given verbatim were summarised, oldest first
    assert "Summary 0." in p.user and story_texts[-1].strip() in p.user


def test_lore_is_cut_lowest_priority_first_only_when_the_story_is_gone() -> None:
    llm = WordLLM(context_window=330)
    p = prompts.build_prompt(llm, META, BEATS, [3], PICKS, TEXTS, 30, prompts.Story(["x " * 50, "y " * 50], lambda i: "s " * 30))
    assert p.prompt_tokens + p.max_tokens + prompts.MARGIN <= llm.context_window
    assert p.verbatim == 0 and p.summarised == 0 and p.left_out == 2
    assert p.lore_cut and p.lore_cut[-1] == "Varro Crater"  # 'similar' goes first
    assert p.outline == "none"


def test_a_prompt_that_cannot_fit_is_refused_before_sending() -> None:
    llm = WordLLM(context_window=120)
    with pytest.raises(ConfigError, match="context window.*--words-per-beat"):
        prompts.build_prompt(llm, META, BEATS, [1], PICKS, TEXTS, 150)
    assert llm.sent == []


def test_oneshot_prompt_asks_for_marked_sections_and_may_shrink_its_reply() -> None:
    llm = WordLLM(context_window=900)
    p = prompts.build_prompt(llm, META, BEATS, [1, 2, 3], PICKS, TEXTS, 150, shrink_reply=True)
    assert '"### Beat N"' in p.user and "1. Jack digs at Varro." in p.user
    assert prompts.reply_tokens(150) * 3 // 2 <= p.max_tokens < prompts.reply_tokens(150) * 3
    assert p.prompt_tokens + p.max_tokens + prompts.MARGIN <= llm.context_window


def test_dry_run_placeholder_stands_for_the_story() -> None:
    p = prompts.build_prompt(WordLLM(), META, BEATS, [3], PICKS, TEXTS, 50, prompts.Story(placeholder="[beats 1–2 here]"))
    assert "[beats 1–2 here]" in p.user


# -- trimming ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Here is the prose for beat 2:\n\nJack knelt. The light pulsed.", "Jack knelt. The light pulsed."),
        ("**Beat 2: The Find**\nJack knelt.", "Jack knelt."),
        ("Beat 3: Jack ran to Dr. Thorne.", "Jack ran to Dr. Thorne."),
        ("The story so far: Jack knelt in the dust. The light", "Jack knelt in the dust."),
        ("### Jack Halloran (character)\nJack knelt.\n\n---\nWord count: 42", "Jack knelt."),
        ("Lore for this beat:\nJack knelt.\nI hope this helps!", "Jack knelt."),
        ('"Go," he said. "Now!"', '"Go," he said. "Now!"'),
        ("Jack knelt. Beat 2 was in his head. He\nstood.", "Jack knelt. Beat 2 was in his head. He\nstood."),  # the middle is never touched
        ("Part 2 of the plan was simple.", "Part 2 of the plan was simple."),
        ("(back to your prompt)\nJack knelt.", "Jack knelt."),
        ("### 2. Jack digs at Varro.\nJack knelt.", "Jack knelt."),
        ("### Jack digs at Varrox, tense.\nJack knelt.\n#### End", "Jack knelt."),
        ("• 1. Jack digs at Varro\nJack knelt.", "Jack knelt."),
        (">> 3. Jack calls …\nJack knelt.", "Jack knelt."),
        ("He called Dr.", ""),
        ("3. Jack called at noon and", ""),
        ("no sentence end at all", ""),
    ],
)
def test_clean_prose(raw: str, clean: str) -> None:
    assert prose.clean_prose(raw, ["Jack Halloran (character)", "Jack digs at Varro.", "Jack calls Selene."]) == clean


def test_trim_keeps_closing_quotes_and_ellipses() -> None:
    assert prose.trim_to_sentence("He waited… and the hum") == "He waited…"
    assert prose.trim_to_sentence("'Stay,' she said.' And then") == "'Stay,' she said.'"
    assert prose.trim_to_sentence("It read 3.5 kilos. The gauge") == "It read 3.5 kilos."


# -- judging ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "scores"),
    [
        ("coverage: 8\nconsistency: 6", (8.0, 6.0)),
        ("Coverage - 7/10\n**Consistency**: 9/10", (7.0, 9.0)),
        ("I'd give it 7 and 9.", (7.0, 9.0)),
        ("COVERAGE=10 CONSISTENCY=0", (10.0, 1.0)),
        ("A lovely passage.", None),
        ("coverage: 8", None),
        ("coverage: 42, consistency: 77", None),
    ],
)
def test_parse_judge(answer: str, scores: tuple[float, float] | None) -> None:
    assert prompts.parse_judge(answer) == scores


def test_heuristic_scores_reward_the_beat_and_its_names() -> None:
    beat = "Jack uncovers the Lantern in the trench."
    picks = [pick("Jack Halloran"), pick("The Lantern", kind="item")]
    good = prompts.heuristic_scores(beat, picks, "Jack knelt in the trench. The Lantern glowed as he uncovered it.")
    bad = prompts.heuristic_scores(beat, picks, "The weather on Earth was mild.")
    assert good[0] > bad[0] and good[1] > bad[1]
    assert prompts.heuristic_scores(beat, picks, "Jack knelt in the trench.") == prompts.heuristic_scores(beat, picks, "Jack knelt in the trench.")


def test_judge_prompt_names_the_beat_the_lore_and_the_passage() -> None:
    msgs = prompts.judge_messages("Jack finds it.", PICKS, TEXTS, "Jack found it.")
    user = msgs[1]["content"]
    assert "Jack finds it." in user and "Jack found it." in user and "The Lantern (item)" in user
    assert "Genre" not in user  # always-lore is style, not facts to check
    assert "coverage: N" in user


# -- splitting oneshot replies ----------------------------------------------------------------


def test_split_by_markers() -> None:
    text = "Here is the chapter:\n### Beat 1\nJack dug. It was cold.\n\n### Beat 2: The Find\nThey found it.\n### Beat 3\nHe called Dr. Thorne. She"
    out, how = prose.split_sections(text, [1, 2, 3])
    assert how == "markers"
    assert out == {1: "Jack dug. It was cold.", 2: "They found it.", 3: "He called Dr. Thorne."}


def test_split_without_markers_shares_paragraphs_then_sentences_in_order() -> None:
    out, how = prose.split_sections("Jack dug. It was cold.\n\nThey found it.\n\nHe called.", [1, 2, 3])
    assert how == "paragraphs" and list(out.values()) == ["Jack dug. It was cold.", "They found it.", "He called."]
    out, how = prose.split_sections("One. Two. Three. Four.", [4, 5])
    assert how == "sentences" and out == {4: "One. Two.", 5: "Three. Four."}


@pytest.mark.parametrize("marks", [("### Beat 1", "Beat 2:", "**Beat 3**"), ("### 1. Jack digs.", "**2.", "#### 3"), ("## Part 1 of 3", "## Part 2 of 3", "## Part 3 of 3")])
def test_split_accepts_the_marker_shapes_models_write(marks: tuple[str, str, str]) -> None:
    text = "\n".join(f"{m}\nProse {i}." for i, m in enumerate(marks, start=1))
    assert prose.split_sections(text, [1, 2, 3]) == ({1: "Prose 1.", 2: "Prose 2.", 3: "Prose 3."}, "markers")


def test_sentence_fallback_does_not_split_titles() -> None:
    out, how = prose.split_sections("Jack called Dr. Thorne at once. She came.", [1, 2])
    assert how == "sentences" and out == {1: "Jack called Dr. Thorne at once.", 2: "She came."}


def test_split_keeps_an_empty_marked_section_empty() -> None:
    out, how = prose.split_sections("Sure:\n### Beat 1\nA went.\n### Beat 2: Title\n### Beat 3\nC went.", [1, 2, 3])
    assert how == "markers" and out == {1: "A went.", 2: "", 3: "C went."}


def test_split_with_a_missing_marker_falls_back_and_keeps_order() -> None:
    out, how = prose.split_sections("### Beat 1\nA went.\n\nB went.\n### Beat 3\nC went.", [1, 2, 3])
    assert how == "paragraphs" and list(out.values()) == ["A went.", "B went.", "C went."]


# -- the CLI's small parsers ------------------------------------------------------------------


def test_parse_choice() -> None:
    assert parse_choice("a") == Choice("accept")
    assert parse_choice(" Q ") == Choice("quit")
    assert parse_choice("e") == Choice("edit")
    assert parse_choice("r") == Choice("regenerate")
    assert parse_choice("r 1.2") == Choice("regenerate", 1.2)
    assert parse_choice("r 0.3 more dread") == Choice("regenerate", 0.3, "more dread")
    assert parse_choice("regenerate shorter please") == Choice("regenerate", None, "shorter please")
    for bad in ("", "x", "r 3", "a now"):
        assert isinstance(parse_choice(bad), str)


def test_parse_only() -> None:
    assert parse_only("5") == [5]
    assert parse_only("7, 5,5") == [5, 7]
    for bad in ("x", "0", "5,", "-1", "2-4"):
        with pytest.raises(ConfigError, match="--only"):
            parse_only(bad)


# -- the short shape, for small models ------------------------------------------------------------------


def test_short_prompt_is_the_beat_its_lore_leads_the_last_paragraph_and_a_line_of_story() -> None:
    llm = WordLLM()
    texts = {p.id: f"{p.name} is the first sentence. It has a second one here. " + "More lore words follow. " * 30 for p in PICKS}
    story = prompts.Story(["Jack dug all day. The sun was low.\n\nXander called him in. They ate.", "The Lantern hummed.\n\nJack froze."],
                          summarise=lambda k: ["Jack and Xander dug. Then they ate.", "They found the Lantern."][k])
    p = prompts.build_short_prompt(llm, META, BEATS, 3, PICKS, texts, 50, story)
    assert p.shape == "short" and p.outline == "none" and prompts.OUTLINE_HEADING not in p.user
    assert "Jack Halloran is the first sentence. It has a second one here." in p.user and "More lore words" not in p.user
    assert "Genre is the first sentence." in p.system and "More lore words" not in p.system
    assert f"{prompts.LAST_HEADING}:\nJack froze." in p.user and "The Lantern hummed." not in p.user.split(prompts.LINE_HEADING)[0]
    assert f"{prompts.LINE_HEADING}: Jack and Xander dug. They found the Lantern." in p.user  # first sentences, oldest first
    assert "write part 3 of 3: Jack calls Selene." in p.user and p.user.rstrip().endswith("end on a complete sentence.")
    assert (p.summarised, p.last_paragraph, p.left_out) == (2, 1, 0)
    assert p.prompt_tokens == llm.count_tokens(p.messages) < 0.5 * llm.count_tokens(
        prompts.build_prompt(llm, META, BEATS, [3], PICKS, texts, 50, story).messages)
    first = prompts.build_short_prompt(llm, META, BEATS, 1, PICKS, texts, 50, prompts.Story())
    assert prompts.LAST_HEADING not in first.user and "open the chapter" in first.user


def test_short_prompt_fits_by_dropping_the_story_line_then_the_lowest_lore() -> None:
    story = prompts.Story(["Jack dug.", "Xander hummed."], summarise=lambda k: "A summary sentence of some length here.")
    full = prompts.build_short_prompt(WordLLM(), META, BEATS, 3, PICKS, TEXTS, 50, story)
    tight = WordLLM(context_window=full.prompt_tokens + full.max_tokens + prompts.MARGIN - 3)
    p = prompts.build_short_prompt(tight, META, BEATS, 3, PICKS, TEXTS, 50, story)
    assert prompts.LINE_HEADING not in p.user and not p.lore_cut and p.summarised == 0
    tighter = WordLLM(context_window=p.prompt_tokens + p.max_tokens + prompts.MARGIN - 3)
    q = prompts.build_short_prompt(tighter, META, BEATS, 3, PICKS, TEXTS, 50, story)
    assert q.lore_cut == ["Varro Crater"]
    with pytest.raises(ConfigError, match="cannot hold even a bare prompt"):
        prompts.build_short_prompt(WordLLM(context_window=60), META, BEATS, 3, PICKS, TEXTS, 50, story)


def test_auto_shape_is_short_for_a_small_model() -> None:
    small, big, unknown = WordLLM(), WordLLM(context_window=8192), WordLLM(context_window=8192)
    small.params, big.params = 135_000_000, 8_000_000_000
    assert [prompts.choose_shape("auto", m) for m in (small, big, unknown)] == ["short", "full", "full"]
    assert prompts.choose_shape("auto", WordLLM(context_window=2048)) == "short"  # a small window, whatever the model
    assert prompts.choose_shape("full", small) == "full" and prompts.choose_shape("short", big) == "short"
