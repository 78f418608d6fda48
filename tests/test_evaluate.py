"""``b2p eval`` and its measures, on hand-written chapters whose answers are known.

The measures are pure functions on text, tested on their own; the chapter-level tests write a
chapter and its trace for the sample bible (real store, real name matcher, real embedding model)
and run ``b2p eval`` through the CLI. Chapters written by the real model in every mode, and the
judge against real models, are in ``test_eval_modes.py``.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from b2p import measures
from b2p.eval_report import CHECKS, parse_checks
from b2p.evaluate import evaluate_beat, evaluate_chapter
from b2p.judge import parse_judgement
from b2p.llm import LLM, Completion, GenOptions, Message, OnText
from b2p.matcher import NameMatcher
from b2p.models import LoreEntry, LorePick
from b2p.settings import Settings, load_settings
from b2p.trace import BeatTrace, ChapterTrace, Feedback, Totals, sheet_hash, trace_path
from b2p.writer import save
from cli import app

REPO = Path(__file__).resolve().parent.parent
runner = CliRunner()

SHEET = [
    "Jack and Xander dig at Varro Crater, tense and expectant.",
    "They uncover the Lantern, a strange artifact that hums.",
    "Jack calls Dr. Selene Thorne at Outpost Meridian.",
]
GOOD = ("Jack Halloran leaned on the drill while Xander kept digging at the trench in Varro Crater. Neither spoke. "
        "The radio hissed, and both men waited, tense and expectant, for the next layer to give way.")
FIND = "The Lantern lay under the dust, a strange artifact humming like a struck bell."
IGNORES = ("The kitchen smelled of bread and onions. Martha sang an old song as she rolled the pastry thin, "
           "and outside the rain kept falling on the garden.")


# -- the measures, on text -----------------------------------------------------------------------------


def test_coverage_finds_beat_words_in_any_form_and_ignores_the_sheets_instructions() -> None:
    beat = "Describe the moment Jack and Xander uncover an alien artifact, emphasizing its mystery."
    assert set(measures.content_words(beat).values()) == {"Jack", "Xander", "uncover", "alien", "artifact", "mystery"}
    full = measures.coverage(beat, "Xander uncovered the artifacts while Jack stared: alien things, and mysterious.")
    assert full.score == 1.0 and full.missing == []
    none = measures.coverage(beat, IGNORES)
    assert none.score == 0.0 and none.missing == ["Jack", "Xander", "uncover", "alien", "artifact", "mystery"]
    half = measures.coverage(beat, "Jack found an alien stone.")
    assert half.score == 0.333 and half.found == ["Jack", "alien"]


def test_repeat_measures_a_copied_paragraph_and_loops_inside_a_beat() -> None:
    assert measures.repeat_share(GOOD, [GOOD]) == 1.0
    assert measures.repeat_share(FIND, [GOOD]) == 0.0
    copied = measures.repeat_share(GOOD + "\n\n" + FIND, [GOOD])
    n_good, n_find = len(measures.words(GOOD)), len(measures.words(FIND))
    assert copied == pytest.approx((n_good - 5) / (n_good + n_find - 5), abs=0.02)  # all of GOOD's 6-grams, none of FIND's
    assert measures.loop_share(GOOD) == 0.0
    looped = measures.loop_share(" ".join([FIND] * 3))
    assert looped > 0.6
    assert measures.repeat_share("Too short.", [GOOD]) == 0.0


@pytest.mark.parametrize(("line", "kind"), [
    ("<<A Beginning for a Future>>", "markup"),
    ("**Beat 3**", "heading"),
    ("# The Find", "heading"),
    ("Beat 3: The Find", "label"),
    ("Story so far:", "label"),
    ("The story so far: Jack dug.", "label"),
    ("In this scene: Jack finds the relic.", "label"),
    ("I have added a new paragraph about 60 words of prose.", "meta"),
    ("This passage shows how tense the dig has become.", "meta"),
    ("The story ended where the first part started: a chapter of intense tension.", "meta"),
    ("Here’s one more piece of the story with a focus on Jack and Xander, who had been sent to explore the dark:", "meta"),
    ("(Word count: 150)", "note"),
    ("(The story ends abruptly)", "note"),
    ("3.", "list"),
    ("2. Jack digs at the crater.", "list"),
    ("The Lantern's Secret", "heading"),
    ("---", "markup"),
])
def test_debris_lines_by_their_shape(line: str, kind: str) -> None:
    found = measures.debris(f"{line}\n{GOOD}")
    assert [(d.line, d.kind, d.text) for d in found] == [(1, kind, line)]


def test_prose_with_colons_numbers_dialogue_and_short_lines_is_not_debris() -> None:
    prose = ("He had one rule: never look back.\n"
             '"Three," Xander said. "Three hours of air left."\n'
             "Jack checked the gauge: 40 percent.\n"
             '"Now."\n'
             "The scene at the crater was worse than the story the Company told; he wrote it all down later.\n"
             "He thought of the drill rig, and the long road\n"
             "home to Meridian.")
    assert measures.debris(prose, SHEET) == []


def test_an_unclosed_bold_mark_and_a_beat_echoed_as_prose() -> None:
    found = measures.debris(f"Jack froze. **The hum grew louder.\n{GOOD}")
    assert [(d.line, d.kind) for d in found] == [(1, "markup")]
    echo = measures.debris(SHEET[1], SHEET)
    assert [d.kind for d in echo] == ["echo"]
    # A beat whose prose is only its beat line has nothing left to cover its beat with.
    ev = evaluate_beat(2, SHEET[1], SHEET[1], beats=SHEET)
    assert ev.coverage == 0.0 and ev.words == 0 and [d.kind for d in ev.debris] == ["echo"]
    # The same words inside a longer sentence are prose.
    assert measures.debris("They uncover the Lantern, a strange artifact that hums, and Jack swears softly under his breath.", SHEET) == []


def test_mid_sentence_ending_and_length() -> None:
    assert measures.ends_mid_sentence("Jack ran for the rover and")
    assert measures.ends_mid_sentence("Jack called Dr.")
    assert not measures.ends_mid_sentence('"Run!" Xander shouted.')
    assert not measures.ends_mid_sentence('He whispered, "Now."')
    ev = evaluate_beat(1, SHEET[0], GOOD + "\nThen the ground", words_per_beat=20)
    assert ev.mid_sentence and ev.length == round(len((GOOD + " Then the ground").split()) / 20, 2)


def _entry(entry_id: str, name: str, kind: str, aliases: list[str], always: bool = False) -> LoreEntry:
    return LoreEntry(id=entry_id, name=name, kind=kind, aliases=aliases, always=always, text="x")


def test_lore_use_names_by_alias_and_finds_entries_the_lore_left_out() -> None:
    entries = [_entry("jack", "Jack Halloran", "character", ["Jack", "Dusty"]), _entry("thorne", "Dr. Selene Thorne", "character", ["Thorne", "the doc"]),
               _entry("meridian", "Outpost Meridian", "place", ["Meridian"]), _entry("style", "Style", "note", [], always=True)]
    matcher = NameMatcher(entries)
    by_id = {e.id: e for e in entries}

    def pick(e: LoreEntry, reason: str = "named") -> LorePick:
        return LorePick(name=e.name, id=e.id, kind=e.kind, reason=reason, score=1.0, tokens=10)  # type: ignore[arg-type]

    picks = [pick(by_id["style"], "always"), pick(by_id["jack"]), pick(by_id["thorne"])]
    use = measures.lore_use("Dusty keyed the radio and asked for Meridian.", picks, matcher.find, lambda i: by_id[i].name)
    assert use.used == ["Jack Halloran"] and use.unused == ["Dr. Selene Thorne"] and use.unpicked == ["Outpost Meridian"]
    assert use.share == 0.5  # the always-on style note is not expected to be named


def test_judge_answers_are_parsed_whatever_their_shape() -> None:
    j = parse_judgement("follows: 4\nlore: 5\nprose: 3\nreason: The dig is there but the prose is flat.")
    assert (j.follows, j.lore, j.prose, j.score, j.parsed) == (4, 5, 3, 4.0, True) and j.reason == "The dig is there but the prose is flat."
    j = parse_judgement("**Follows the beat** - 4/5\n**Consistency with lore**: 8/10\n**Prose quality**: 2 out of 5 — repetitive")
    assert (j.follows, j.lore, j.prose, j.parsed) == (4, 4, 2, True)
    j = parse_judgement("4\n3\n5")
    assert (j.follows, j.lore, j.prose) == (4, 3, 5)
    j = parse_judgement("Jack and Xander dug for 3 hours at the crater while the radio hissed.")
    assert not j.parsed and j.score is None and j.reason and "dug" in j.reason
    assert parse_judgement("").score is None


# -- chapters through the CLI --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def settings(sample_store: Settings) -> Settings:
    return load_settings(None, store=sample_store.store)


@pytest.fixture(scope="module")
def ledger(settings: Settings):  # noqa: ANN201
    from b2p.retrieval import Retriever
    from b2p.store import Store

    with Store.open(settings, bible="lunar_mining") as st, st.lock(exclusive=False):
        return Retriever(settings, st, "lunar_mining").ledger(SHEET)


def write_chapter(path: Path, ledger, texts: list[str], per_beat: dict[int, dict] | None = None) -> Path:  # noqa: ANN001
    trace = ChapterTrace(bible="lunar_mining", title="The Lantern at Site Nine", beats_file="sheet.txt", beats_sha256=sheet_hash(SHEET),
                         mode="sequential", model="hand-written", llm="local", options={"words_per_beat": 40},
                         totals=Totals(beats=len(SHEET), beats_done=0))
    for i, text in enumerate(texts, start=1):
        trace.put(BeatTrace(index=i, beat=SHEET[i - 1], lore=ledger.beats[i - 1].lore, text=text, **(per_beat or {}).get(i, {})))  # type: ignore[arg-type]
    save(trace, path)
    return path


def run(*args: str, store: Path):  # noqa: ANN201
    result = runner.invoke(app, ["eval", *args, "--store", str(store)])
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    return result


@pytest.fixture(scope="module")
def known(tmp_path_factory: pytest.TempPathFactory, ledger) -> Path:  # noqa: ANN001
    """Beat 1 good; beat 2 opens with an invented heading and copies beat 1; beat 3 ignores its beat."""
    return write_chapter(tmp_path_factory.mktemp("known") / "chapter.md", ledger, [GOOD, f"<<The Find>>\n{GOOD}\n\n{FIND}", IGNORES])


def test_known_chapter_figures(known: Path, settings: Settings) -> None:
    report = evaluate_chapter(known, settings)
    one, two, three = report.beats
    assert [len(b.debris) for b in report.beats] == [0, 1, 0] and two.debris[0].text == "<<The Find>>"
    assert one.repeat == 0.0 and two.repeat > 0.6 and three.repeat == 0.0
    assert one.coverage == 1.0 and three.coverage == 0.0
    assert set(three.missing) == {"Jack", "calls", "Selene", "Thorne", "Outpost", "Meridian"}
    assert one.similarity is not None and three.similarity is not None and three.similarity < 0.3 < one.similarity
    assert one.closest_beat == 1 and three.closest_beat != 3  # the kitchen is no closer to the phone call than to the dig
    assert {"Jack Halloran", "Xander Voss", "Varro Crater"} <= set(one.lore.used) and one.lore.unpicked == []
    assert {"Jack Halloran", "Dr. Selene Thorne", "Outpost Meridian"} <= set(three.lore.unused) and three.lore.used == []
    f = report.figures
    assert (f.beats, f.debris, f.copied_beats, f.mid_sentence) == (3, 1, 1, 0)
    assert f.coverage == two.coverage and f.repeat == two.repeat


def test_plain_report_a_writer_reads(known: Path, settings: Settings) -> None:
    result = run(str(known), store=settings.store)
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    lines = out.splitlines()
    # Piped: a title, then the table as tab-separated lines, nothing wrapped or cut.
    assert lines[0].startswith(f"{known}: 3 of 3 beats") and lines[1].split("\t")[0] == "beat"
    rows = [ln.split("\t") for ln in lines[2:5]]
    assert [r[0] for r in rows] == ["1", "2", "3"] and [r[-1] for r in rows] == SHEET
    assert [r[6] for r in rows] == ["0", "1", "0"] and rows[1][4] == "65%"  # debris lines, repeat
    assert re.search(r"(?m)^beat 2:\s+markup line 1: <<The Find>>$", out)
    assert re.search(r"(?m)^\s+repeats 65% of its 6-grams from earlier beats$", out)
    assert re.search(r"(?m)^beat 3:\s+beat words not in the prose: Jack, calls, Selene, Thorne, Outpost, Meridian$", out)
    assert re.search(r"(?m)^chapter: .*1 beats copied.*, 1 debris lines", out)


def test_eval_figures_are_kept_in_the_trace(known: Path, settings: Settings) -> None:
    report = evaluate_chapter(known, settings)
    saved = json.loads(trace_path(known).read_text())
    for b, t in zip(report.beats, saved["beats"], strict=True):
        assert t["eval"]["coverage"] == b.coverage and t["eval"]["repeat"] == b.repeat and t["eval"]["debris"] == len(b.debris)
    assert known.read_text().count("<<The Find>>") == 1  # the chapter itself is not touched
    stamp = trace_path(known).read_bytes()
    evaluate_chapter(known, settings)
    assert trace_path(known).read_bytes() == stamp  # same figures: nothing rewritten


def _paths(x: object, path: str = "") -> set[str]:
    """Every key path of a JSON value, list items merged ('beats[].debris[].kind'); 'decisions' keys are data."""
    if isinstance(x, dict) and not path.endswith(".decisions"):
        return {f"{path}.{k}" for k in x} | {p for k, v in x.items() for p in _paths(v, f"{path}.{k}")}
    if isinstance(x, list):
        return {p for item in x for p in _paths(item, path + "[]")}
    return set()


def test_json_is_the_shape_the_readme_documents(tmp_path: Path, settings: Settings, ledger) -> None:  # noqa: ANN001
    from b2p.trace import Judgement

    per_beat = {1: {"mode": "interactive", "feedback": [Feedback(decision="accept", rating=4)]},
                2: {"judge": Judgement(follows=4, lore=5, prose=2, score=3.67, parsed=True, model="m", of="x")}}
    chapter = write_chapter(tmp_path / "ch.md", ledger, [GOOD, f"<<The Find>>\n{GOOD}\n\n{FIND}", IGNORES], per_beat)
    result = run(str(chapter), "--json", "--fail-under", "repeat=0.2", store=settings.store)
    assert result.exit_code == 1, result.stderr
    assert result.stdout.count("\n") == 1  # one JSON object on one line
    data = json.loads(result.stdout)
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    documented = json.loads(re.search(r"<!-- eval-json -->\s*```json\n(.*?)```", readme, re.S).group(1))
    data["beats"][1]["judge"] = documented["beats"][0]["judge"]  # a stale judgement (other text) is not reported
    assert _paths(data) == _paths(documented)
    assert [b["index"] for b in data["beats"]] == [1, 2, 3] and data["failed"] == ["repeat: 0.652 is above 0.2"]


def test_fail_under_gates_a_script(known: Path, settings: Settings) -> None:
    ok = run(str(known), "--fail-under", "coverage=0.5,debris=1", store=settings.store)
    assert ok.exit_code == 0, ok.stdout + ok.stderr
    bad = run(str(known), "--fail-under", "repeat=0.2,coverage=0.5,mid_sentence=0", store=settings.store)
    assert bad.exit_code == 1
    assert re.findall(r"(?m)^FAIL (\w+): ", bad.stdout) == ["repeat"]
    js = run(str(known), "--json", "--fail-under", "repeat=0.2,copied=0", store=settings.store)
    assert js.exit_code == 1 and [x.split(":")[0] for x in json.loads(js.stdout)["failed"]] == ["repeat", "copied"]
    assert run(str(known), "--fail-under", "rating=3", store=settings.store).exit_code == 1  # no ratings recorded: not met
    for spec, message in [("coverge=0.5", 'did you mean "coverage"'), ("coverage", "needs a number"), ("coverage=high", "needs a number"),
                          ("judge=3", "needs --judge")]:
        result = run(str(known), "--fail-under", spec, store=settings.store)
        assert result.exit_code == 2 and result.stdout == "", spec
        assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert set(parse_checks("coverage=0.5, repeat=0.2")) == {"coverage", "repeat"} and set(CHECKS) >= {"coverage", "repeat"}


def test_bad_input_is_one_line_and_exit_2(known: Path, settings: Settings, tmp_path: Path, ledger) -> None:  # noqa: ANN001
    def refused(chapter: Path, message: str) -> None:
        result = run(str(chapter), store=settings.store)
        assert result.exit_code == 2 and result.stdout == "", (message, result.stdout)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr

    refused(tmp_path / "missing.md", "chapter not found")
    bare = tmp_path / "bare.md"
    bare.write_text("# A chapter\n\nWritten by hand.\n", encoding="utf-8")
    refused(bare, "no trace beside it")
    other = tmp_path / "other.md"  # a trace copied beside another chapter
    other.write_text("# The Lantern at Site Nine\n\nSomething else entirely.\n", encoding="utf-8")
    shutil.copy(trace_path(known), trace_path(other))
    refused(other, "made for another chapter")
    edited = tmp_path / "edited.md"
    shutil.copy(known, edited)
    shutil.copy(trace_path(known), trace_path(edited))
    edited.write_text(known.read_text().replace("Neither spoke.", "Neither said a word."), encoding="utf-8")
    refused(edited, "edited by hand since its trace was written (beat 1 differs)")
    edited.write_text(known.read_text() + "\nOne more line.\n", encoding="utf-8")  # the writer's own text around the beats
    assert run(str(edited), store=settings.store).exit_code == 0  # is theirs, and not measured
    edited.write_text(known.read_text().replace("<!-- /b2p beat 3 -->\n", ""), encoding="utf-8")
    refused(edited, "beat 3 is never closed")  # damaged markers: one line that says how to recover
    edited.write_text(known.read_text() + "\n", encoding="utf-8")  # an editor's trailing newline is no edit
    assert run(str(edited), store=settings.store).exit_code == 0
    trace_path(edited).write_text("{not json", encoding="utf-8")
    refused(edited, "not JSON")
    trace_path(edited).write_text('{"beats": []}', encoding="utf-8")
    refused(edited, "not a b2p chapter trace")
    empty = write_chapter(tmp_path / "empty.md", ledger, [])
    refused(empty, "no finished beats")


def test_model_text_is_shown_as_written_never_as_escape_codes(tmp_path: Path, settings: Settings, ledger) -> None:  # noqa: ANN001
    chapter = write_chapter(tmp_path / "ch.md", ledger, [f"[bold]Jack[/bold] dug.\x1b[31m\n{GOOD}", GOOD + " Again.", FIND])
    out = run(str(chapter), store=settings.store).stdout
    assert "\x1b" not in out and "[bold]Jack[/bold] dug.\\x1b[31m" in out


def test_writer_feedback_and_saved_judge_grades_are_reported(tmp_path: Path, settings: Settings, ledger) -> None:  # noqa: ANN001
    from b2p.trace import Judgement, text_hash

    per_beat = {
        1: {"mode": "interactive", "feedback": [Feedback(decision="regenerate", rating=2), Feedback(decision="edit"), Feedback(decision="accept", rating=4)]},
        2: {"mode": "interactive", "edited": True, "candidates": []},  # an interactive beat from before decisions were recorded
        3: {"judge": Judgement(follows=2, lore=3, prose=1, score=2.0, parsed=True, reason="Off topic.", model="m", of=text_hash(IGNORES))},
    }
    chapter = write_chapter(tmp_path / "ch.md", ledger, [GOOD, FIND, IGNORES], per_beat)
    data = json.loads(run(str(chapter), "--json", store=settings.store).stdout)
    b1, b2, b3 = data["beats"]
    assert [f["decision"] for f in b1["feedback"]] == ["regenerate", "edit", "accept"] and b1["feedback_recorded"]
    assert [f["decision"] for f in b2["feedback"]] == ["edit", "accept"] and not b2["feedback_recorded"]
    assert data["figures"]["rating"] == 3.0 and data["figures"]["decisions"] == {"regenerate": 1, "edit": 2, "accept": 2}
    assert b3["judge"]["score"] == 2.0 and data["figures"]["judge"] == 2.0
    plain = run(str(chapter), "--fail-under", "rating=3.5", store=settings.store)
    assert plain.exit_code == 1 and "judge 2.0 (follows 2, lore 3, prose 1): Off topic." in plain.stdout
    assert "writer: regenerate, edit, accept; rated 2, 4" in plain.stdout and "writer: edit, accept (from its drafts)" in plain.stdout


class ScriptJudge(LLM):
    """A real ``LLM`` that answers every judge prompt with the same text (words are tokens)."""

    def __init__(self, answer: str) -> None:
        self.name, self.context_window, self.answer, self.prompts = "script-judge", 4096, answer, []

    def count_tokens(self, messages: list[Message]) -> int:
        return sum(len(m["content"].split()) + 4 for m in messages)

    def complete(self, messages: list[Message], options: GenOptions, on_text: OnText | None = None) -> Completion:
        self.prompts.append(messages[-1]["content"])
        return Completion(text=self.answer, prompt_tokens=self.count_tokens(messages), completion_tokens=9, seconds=0.01)


def test_judge_grades_are_saved_in_the_trace_and_not_asked_twice(tmp_path: Path, settings: Settings, ledger) -> None:  # noqa: ANN001
    chapter = write_chapter(tmp_path / "ch.md", ledger, [GOOD, FIND, IGNORES])
    llm = ScriptJudge("follows: 5\nlore: 4\nprose: 3\nreason: Clear and on the beat.")
    report = evaluate_chapter(chapter, settings, judge=llm)
    assert len(llm.prompts) == 3 and all(b.judge and b.judge.score == 4.0 for b in report.beats)
    assert "Plot point: Jack calls Dr. Selene Thorne at Outpost Meridian." in llm.prompts[2] and "Outpost Meridian (place)" in llm.prompts[2]
    saved = json.loads(trace_path(chapter).read_text())
    assert all(b["judge"]["model"] == "script-judge" and b["judge"]["reason"] == "Clear and on the beat." for b in saved["beats"])
    again = evaluate_chapter(chapter, settings, judge=llm)
    assert len(llm.prompts) == 3 and again.figures.judge == 4.0  # same text, same model: the saved grades
    assert evaluate_chapter(chapter, settings).figures.judge == 4.0  # and plain eval reports them


def test_saving_figures_keeps_beats_a_running_generate_saved_meanwhile(tmp_path: Path, ledger) -> None:  # noqa: ANN001
    from b2p import trace as tr
    from b2p.evaluate import save_figures
    from b2p.trace import Figures, text_hash

    chapter = write_chapter(tmp_path / "ch.md", ledger, [GOOD, FIND])
    measured = {1: (text_hash(GOOD), {"eval": Figures(coverage=1.0)}), 2: (text_hash(FIND), {"eval": Figures(coverage=0.8)})}
    # Meanwhile a generate run rewrites beat 2 (--only 2) and saves beat 3.
    saved = tr.load(chapter)
    assert saved is not None
    saved.put(BeatTrace(index=2, beat=SHEET[1], lore=ledger.beats[1].lore, text="A new draft of the find."))
    saved.put(BeatTrace(index=3, beat=SHEET[2], lore=ledger.beats[2].lore, text=IGNORES))
    save(saved, chapter)
    assert save_figures(chapter, measured)
    after = json.loads(trace_path(chapter).read_text())
    assert [b["index"] for b in after["beats"]] == [1, 2, 3]
    assert after["beats"][0]["eval"]["coverage"] == 1.0
    assert after["beats"][1]["eval"] is None and after["beats"][1]["text"] == "A new draft of the find."  # measured on the old text
    assert not save_figures(chapter, measured)  # nothing new: the trace is not rewritten


def test_eval_as_a_real_process_piped(known: Path, settings: Settings) -> None:
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "cli", "eval", str(known), "--store", str(settings.store), "--fail-under", "repeat=0.2"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[1].startswith("beat\twords\tcover") and lines[-1] == "FAIL repeat: 0.652 is above 0.2"


def test_b2p_report_shows_the_figures_eval_kept(tmp_path: Path, settings: Settings, ledger) -> None:  # noqa: ANN001
    chapter = write_chapter(tmp_path / "ch.md", ledger, [GOOD, f"<<The Find>>\n{GOOD}\n\n{FIND}", IGNORES])
    assert run(str(chapter), store=settings.store).exit_code == 0
    result = runner.invoke(app, ["report", str(chapter), "--store", str(settings.store)])
    assert result.exit_code == 0, result.stderr
    html = chapter.with_name("ch.report.html").read_text(encoding="utf-8")
    assert html.count("<h3>Eval</h3>") == 3
    assert re.search(r"<td>repeat</td><td class=\"num\">0\.65</td>", html) and re.search(r"<td>debris</td><td class=\"num\">1</td>", html)
