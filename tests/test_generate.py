"""``b2p generate``: beat sheet → chapter + trace.

Most tests run the real embedded SmolLM2 (short outputs) or the real OpenAI client against real
servers on loopback. ``ScriptLLM`` — a real ``LLM`` subclass answering from a script — is used only
where the generator's own logic is under test (judge parsing, the interactive protocol, summaries)
and a 135M model could not be steered into the case.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from b2p import drafting, measures, prompts
from b2p import plan as gen_plan
from b2p.events import Events
from b2p.generate import generate_chapter
from b2p.resume import ResumeState
from b2p.errors import ConfigError
from b2p.interactive import QUESTION
from b2p.llm import LLM, Completion, GenOptions, Message, OnText
from b2p.settings import Settings, load_settings
from b2p.trace import ChapterTrace, trace_path
from cli import app

REPO = Path(__file__).resolve().parent.parent
SHEET = """\
1. Jack and Xander dig at Varro Crater, tense and expectant.
2. They uncover the Lantern, a strange artifact that hums.
3. Jack calls Dr. Selene Thorne at Outpost Meridian.
"""
WORDS = "20"  # short outputs keep the real model quick; the pipeline is under test, not the prose
SENTENCE_END = tuple(".!?…\"'”’)*_")


def assert_clean(text: str, beats: list[str], earlier: list[str], flagged: list[str], where: str) -> None:
    """What b2p guarantees of every beat it keeps, whatever the model wrote: no line ``b2p eval`` calls
    debris (scaffolding, headings, labels, markup, comments), no mid-sentence end, and no copy of earlier
    beats unless the trace flags it (every draft was all copy, so nothing could be cut)."""
    assert measures.debris(text, beats) == [], f"debris in {where}: {text!r}"
    assert not measures.ends_mid_sentence(text) and text.rstrip().endswith(SENTENCE_END), f"{where} ends mid-sentence: {text[-60:]!r}"
    copied = measures.repeat_share(text, earlier) > measures.COPY_LIMIT
    assert not copied or any(f.startswith("copied") for f in flagged), f"{where} copies earlier beats unflagged: {text!r}"

runner = CliRunner()


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory, sample_store: Settings) -> Path:
    """A folder with the 3-beat sheet and a b2p.toml pointing at the sample store (small lore budget)."""
    root = tmp_path_factory.mktemp("generate")
    (root / "sheet.txt").write_text(SHEET, encoding="utf-8")
    # One llama.cpp thread: on a busy 2-core machine two threads spin against each other and run ~20x slower.
    (root / "b2p.toml").write_text(f'store = "{sample_store.store}"\nbudget = 500\nretries = 1\ntimeout = 20\nn_threads = 1\n', encoding="utf-8")
    return root


def base_args(work: Path, *extra: str) -> list[str]:
    return ["generate", str(work / "sheet.txt"), "--bible", "lunar_mining", "--config", str(work / "b2p.toml"),
            "--words-per-beat", WORDS, "--no-stream", *extra]


def invoke(args: list[str], **kw: object):  # noqa: ANN201
    result = runner.invoke(app, args, **kw)  # type: ignore[arg-type]
    assert "Traceback" not in (result.stdout + result.stderr), result.stderr
    return result


def settings_for(work: Path, **flags: object) -> Settings:
    return load_settings(work / "b2p.toml", **{"words_per_beat": int(WORDS), "stream": False, **flags})


def beats_of(work: Path) -> list[str]:
    from b2p.beats import read_beats

    return read_beats(work / "sheet.txt")


def ledger_json(work: Path) -> dict:
    result = invoke(["lore", str(work / "sheet.txt"), "--bible", "lunar_mining", "--config", str(work / "b2p.toml"), "--json"])
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def assert_good_chapter(chapter: Path, trace: dict, n: int = 3, same_text: bool = False) -> None:
    """Every beat present once, in order, non-empty, ending on a sentence, with no scaffolding.

    ``same_text``: a canned server writes every beat alike, so count paragraphs instead of finding each."""
    assert [b["index"] for b in trace["beats"]] == list(range(1, n + 1))
    assert trace["totals"]["beats_done"] == n and trace["complete"]
    md = chapter.read_text(encoding="utf-8")
    assert md.startswith("# The Lantern at Site Nine\n")
    pos = 0
    sheet = [b["beat"] for b in trace["beats"]]
    for k, b in enumerate(trace["beats"]):
        text = b["text"]
        assert text.strip(), f"beat {b['index']} is empty"
        assert_clean(text, sheet, [x["text"] for x in trace["beats"][:k]], (b.get("guard") or {}).get("flagged", []), f"beat {b['index']}")
        if same_text:
            assert md.count(text) == n
            continue
        assert md.count(text) == 1
        found = md.index(text)
        assert found >= pos
        pos = found + len(text)


# -- a scripted model, for the generator's own logic ----------------------------------------------

Answer = Callable[[str, list[Message], GenOptions], "tuple[str, str] | str"]


class ScriptLLM(LLM):
    """A real ``LLM`` whose answers come from ``answer(kind, messages, options)``; tokens are words."""

    def __init__(self, answer: Answer, context_window: int = 8192) -> None:
        self.name = "script-model"
        self.context_window = context_window
        self.answer = answer
        self.calls: list[tuple[str, list[Message], GenOptions]] = []

    def count_tokens(self, messages: list[Message]) -> int:
        return sum(len(m["content"].split()) + 4 for m in messages)

    def complete(self, messages: list[Message], options: GenOptions, on_text: OnText | None = None) -> Completion:
        system, last = messages[0]["content"], messages[-1]["content"]
        kind = "judge" if "grades passages" in system else "summary" if "summarise" in system else "continue" if last == drafting.CONTINUE else "beat"
        self.calls.append((kind, messages, options))
        got = self.answer(kind, messages, options)
        text, finish = (got, "stop") if isinstance(got, str) else got
        if on_text is not None:
            on_text(text)
        return Completion(text=text, finish_reason=finish, prompt_tokens=self.count_tokens(messages),  # type: ignore[arg-type]
                          completion_tokens=len(text.split()), seconds=0.01)

    def kinds(self) -> list[str]:
        return [k for k, _, _ in self.calls]


def said(part: int, temperature: float) -> str:
    """What the scripted model writes for a part: its beat's words in another order, so it is on its beat
    (the guards pass it) without writing the beat line back."""
    words = " ".join(reversed(measures.content_words(SHEET.splitlines()[part - 1]).values()))
    return f"It was part {part}, at temperature {temperature:g}, and {words}."


def prose(kind: str, messages: list[Message], options: GenOptions) -> str:
    if kind == "judge":
        return "coverage: 7\nconsistency: 8"
    if kind == "summary":
        return "Jack and Xander worked the trench."
    part = re.search(r"write part (\d+)", messages[-1]["content"])
    return said(int(part.group(1)), options.temperature) if part else "It was a part of the story."


@pytest.fixture(scope="module")
def plan(work: Path) -> gen_plan.Plan:
    return gen_plan.plan_chapter(settings_for(work), "lunar_mining", beats_of(work))


class Noted(Events):
    """Events that keep every note the writer was shown."""

    def __init__(self) -> None:
        self.notes: list[str] = []

    def note(self, message: str) -> None:
        self.notes.append(message)


class QuitWatch(Events):
    """Events that remember whether the author quit."""

    quit = False

    def stopped(self, done: int, total: int) -> None:
        self.quit = True


class ScriptedRun:
    """One generation from the library's three parts, the way ``write_chapter`` runs them once the plan
    and the model are in hand: the resume state (checked at once), then strategy and writer in ``run``."""

    def __init__(self, settings: Settings, plan: gen_plan.Plan, beats_file: Path, llm: LLM, out: Path | None, *,
                 only: list[int] | None = None, resume: bool = False, events: Events | None = None, interaction: object = None) -> None:
        from b2p.beats import read_beats

        self.settings, self.plan, self.llm = settings, plan, llm
        self.state = ResumeState.load(read_beats(beats_file), beats_file, out, resume=resume, only=only)
        drafting.check_mode(settings, interaction)  # type: ignore[arg-type]
        self.events, self.interaction = events or QuitWatch(), interaction

    @property
    def targets(self) -> list[int]:
        return self.state.targets

    @property
    def stopped(self) -> bool:
        return getattr(self.events, "quit", False)

    def run(self) -> ChapterTrace:
        return generate_chapter(self.settings, self.plan, self.llm, self.state, events=self.events, interaction=self.interaction)  # type: ignore[arg-type]


def scripted_run(work: Path, plan: gen_plan.Plan, llm: LLM, out: Path | None, **kw: object) -> ScriptedRun:
    flags = {k: kw.pop(k) for k in list(kw) if k in Settings.model_fields}
    return ScriptedRun(settings_for(work, **flags), plan, work / "sheet.txt", llm, out=out, **kw)  # type: ignore[arg-type]


def test_best_of_n_records_every_candidates_judged_score(work: Path, plan: gen_plan.Plan, tmp_path: Path) -> None:
    answers = iter(["coverage: 10\nconsistency: 10", "It reads well.", "coverage: 4, consistency: 6", "coverage: 7, consistency: 8",
                    *["coverage: 5, consistency: 6"] * 10])

    def answer(kind: str, messages: list[Message], options: GenOptions) -> str:
        return next(answers) if kind == "judge" else prose(kind, messages, options)

    events = Noted()
    run = scripted_run(work, plan, ScriptLLM(answer), tmp_path / "ch.md", n=2, seed=3, events=events)
    trace = run.run()
    first = trace.beats[0].candidates
    assert len(first) == 2 and [c.seed for c in first] == [3, 4]
    assert first[0].judged_by == "model" and first[0].score == 10.0 and first[0].chosen
    # The judge's unusable answer and the tie it led to are said on screen and kept in the trace, never silently.
    assert first[1].judged_by == "heuristic" and first[1].judge_answer == "It reads well." and first[1].score == 10.0
    said_1 = trace.beats[0].notes
    assert any("unusable for candidate 2" in n and "heuristic" in n for n in said_1)
    assert any("tied at 10" in n and "kept the first, candidate 1" in n for n in said_1)
    assert [c.score for c in trace.beats[1].candidates] == [5.0, 7.5] and trace.beats[1].candidates[1].chosen
    assert not trace.beats[1].notes  # a clear win needs no word
    assert all(n in events.notes for b in trace.beats for n in b.notes)
    saved = json.loads(trace_path(tmp_path / "ch.md").read_text())
    assert all(len(b["candidates"]) == 2 and all(c["score"] is not None for c in b["candidates"]) for b in saved["beats"])
    assert saved["totals"]["cost"] is None  # no price known for this model


def test_story_so_far_comes_from_the_saved_beats_and_summaries_are_cached(work: Path, plan: gen_plan.Plan, tmp_path: Path) -> None:
    out = tmp_path / "ch.md"
    nth = {"1": "first", "2": "second", "3": "third"}

    def long(messages: list[Message]) -> str:
        part = re.search(r"write part (\d+)", messages[-1]["content"])
        return (f"Dust rose over the {nth[part.group(1)]} trench. " * 30).strip()  # no beat copies another

    def answer(kind: str, messages: list[Message], options: GenOptions) -> str:
        return "Jack and Xander worked the trench." if kind == "summary" else long(messages)

    size = ScriptLLM(answer).count_tokens(gen_plan.dry_run(settings_for(work), plan, beats_of(work), ScriptLLM(answer))[2].prompt.messages)
    llm = ScriptLLM(answer, context_window=size + prompts.reply_tokens(int(WORDS)) + 300)  # room for ~one beat verbatim
    # The full prompt shape (a window this small would get the short one); the prose misses its beats: kept, flagged, not redrafted.
    scripted_run(work, plan, llm, out, redrafts=0, prompt_shape="full").run()
    assert llm.kinds().count("summary") == 1  # beat 1 summarised once, for beat 3
    saved = json.loads(trace_path(out).read_text())
    assert saved["beats"][0]["summary"] == "Jack and Xander worked the trench."
    assert saved["beats"][2]["story"] == {"verbatim": 1, "summarised": 1, "left_out": 0, "chapters": 0}  # no book: no earlier chapters
    beat3_prompt = [m for k, m, _ in llm.calls if k == "beat"][2][1]["content"]
    assert "Jack and Xander worked the trench." in beat3_prompt and "Dust rose over the second trench. " * 5 in beat3_prompt

    # --only 3 again: the story so far is the saved beats; the cached summary is reused, not remade.
    llm2 = ScriptLLM(answer, context_window=llm.context_window)
    scripted_run(work, plan, llm2, out, only=[3], redrafts=0, prompt_shape="full").run()
    assert llm2.kinds() == ["beat"]


def test_prose_streams_to_the_events_callback(work: Path, plan: gen_plan.Plan) -> None:
    class Recorder(Events):
        def __init__(self) -> None:
            self.log: list[str] = []

        def beat_started(self, index: int, total: int, beat: str) -> None:
            self.log.append(f"<{index}/{total}>")

        def text(self, piece: str) -> None:
            self.log.append(piece)

    events = Recorder()
    trace = scripted_run(work, plan, ScriptLLM(prose), None, stream=True, events=events).run()
    assert events.log == [x for b in trace.beats for x in (f"<{b.index}/3>", b.text)]
    quiet = Recorder()
    scripted_run(work, plan, ScriptLLM(prose), None, stream=False, events=quiet).run()
    assert quiet.log == ["<1/3>", "<2/3>", "<3/3>"]


def test_a_draft_cut_by_the_token_limit_is_continued_once_then_trimmed(work: Path, plan: gen_plan.Plan) -> None:
    def answer(kind: str, messages: list[Message], options: GenOptions) -> tuple[str, str]:
        if kind == "continue":
            return " the hum faded. Then silence returned", "length"
        return "Jack waited while", "length"

    llm = ScriptLLM(answer)
    trace = scripted_run(work, plan, llm, None, redrafts=0).run()  # the prose misses its beats; only the continuation is under test
    assert llm.kinds() == ["beat", "continue"] * 3
    assert all(b.text == "Jack waited while the hum faded." for b in trace.beats)


class ScriptedAuthor:
    """The interactive protocol driven by a list of answers; records what it was shown."""

    def __init__(self, answers: list[str | None], edit: Callable[[str], str] = str.upper) -> None:
        self.answers, self._edit = list(answers), edit
        self.shown: list[str] = []
        self.streamed: list[str] = []

    def stream(self, piece: str) -> None:
        self.streamed.append(piece)

    def show(self, text: str) -> None:
        self.shown.append(text)

    def ask(self, question: str) -> str | None:
        assert question == QUESTION
        return self.answers.pop(0) if self.answers else None

    def edit(self, text: str) -> str:
        return self._edit(text)


def test_interactive_protocol(work: Path, plan: gen_plan.Plan, tmp_path: Path) -> None:
    llm = ScriptLLM(prose)
    author = ScriptedAuthor(["maybe", "r 3", "r 1.3 more dread", "e", "a", "a", "q"])
    out = tmp_path / "ch.md"
    run = scripted_run(work, plan, llm, out, mode="interactive", temperature=0.5, interaction=author)
    trace = run.run()
    assert any("not an answer" in s for s in author.shown) and any("out of range" in s for s in author.shown)
    beat_calls = [(m, o) for k, m, o in llm.calls if k == "beat"]
    assert [o.temperature for _, o in beat_calls] == [0.5, 1.3, 0.5, 0.5]
    assert "Also: more dread" in beat_calls[1][0][-1]["content"]
    assert author.streamed[:2] == [said(1, 0.5), said(1, 1.3)]
    b1 = trace.beats[0]
    assert b1.text == said(1, 1.3).upper() and b1.edited
    assert [(c.temperature, c.instruction, c.chosen) for c in b1.candidates] == [(0.5, None, False), (1.3, "more dread", True)]
    assert run.stopped and [b.index for b in trace.beats] == [1, 2]  # quit on beat 3: finished beats kept
    saved = json.loads(trace_path(out).read_text())
    assert [b["index"] for b in saved["beats"]] == [1, 2] and not saved["complete"]
    # The next run resumes at beat 3.
    run2 = scripted_run(work, plan, llm, out, mode="interactive", interaction=ScriptedAuthor(["a"]), resume=True)
    assert run2.targets == [3]
    assert [b.index for b in run2.run().beats] == [1, 2, 3]


def test_oneshot_reply_is_split_and_a_missing_beat_is_written_on_its_own(work: Path, plan: gen_plan.Plan) -> None:
    def answer(kind: str, messages: list[Message], options: GenOptions) -> str:
        if "### Beat N" in messages[-1]["content"]:
            return "Here is the chapter:\n### Beat 1\nJack dug. Xander watched.\n\n### Beat 2: The Find\n\n### Beat 3\nJack called Thorne."
        return prose(kind, messages, options)

    llm = ScriptLLM(answer)
    trace = scripted_run(work, plan, llm, None, mode="oneshot").run()
    assert [b.text for b in trace.beats] == ["Jack dug. Xander watched.", said(2, 0.8), "Jack called Thorne."]
    assert [b.mode for b in trace.beats] == ["oneshot", "sequential", "oneshot"]
    assert [b.split for b in trace.beats] == ["markers", None, "markers"]
    assert llm.kinds() == ["beat", "beat"]
    one = llm.calls[0][1]
    assert trace.beats[0].prompt_tokens + trace.beats[2].prompt_tokens == llm.count_tokens(one)  # the request's usage, shared out
    assert trace.totals.prompt_tokens == sum(b.prompt_tokens for b in trace.beats)


def test_flag_errors_are_one_line(work: Path, tmp_path: Path) -> None:
    cases = [
        (["--resume"], "--resume needs -o"),
        (["--only", "2"], "--only needs -o"),
        (["--only", "x", "-o", str(tmp_path / "c.md")], "not a beat number"),
        (["--only", "4", "-o", str(tmp_path / "c.md")], "has 3 beats"),
        (["--only", "2", "-o", str(tmp_path / "c.md")], "no trace at"),
        (["--mode", "poem"], "mode"),
        (["--llm", "openai", "--dry-run"], "no OpenAI API key"),
    ]
    for extra, message in cases:
        result = invoke(base_args(work, *extra))
        assert result.exit_code != 0, extra
        lines = result.stderr.strip().splitlines()
        assert lines and message in lines[-1] and lines[-1].startswith("error:"), (extra, result.stderr)
        assert len([ln for ln in lines if ln.startswith("error:")]) == 1


def test_resume_refuses_a_trace_from_another_sheet(work: Path, plan: gen_plan.Plan, tmp_path: Path) -> None:
    out = tmp_path / "ch.md"
    scripted_run(work, plan, ScriptLLM(prose), out).run()
    other = tmp_path / "other.txt"
    other.write_text(SHEET.replace("hums", "sings"), encoding="utf-8")
    result = invoke(["generate", str(other), "--bible", "lunar_mining", "--config", str(work / "b2p.toml"), "-o", str(out), "--resume"])
    assert result.exit_code == 2 and "different beat sheet" in result.stderr


# -- the real embedded model ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chapter(work: Path) -> tuple[Path, dict, object]:
    """One real run through the CLI, shared by the assertions below."""
    out = work / "real" / "chapter.md"
    result = invoke(base_args(work, "-o", str(out), "--seed", "11"))
    assert result.exit_code == 0, result.stderr
    return out, json.loads(trace_path(out).read_text()), result


@pytest.mark.slow
def test_real_model_chapter_is_whole_and_clean(chapter: tuple[Path, dict, object]) -> None:
    out, trace, result = chapter
    assert_good_chapter(out, trace)
    assert trace["model"].startswith("SmolLM2") and trace["llm"] == "local" and trace["mode"] == "sequential"
    for b in trace["beats"]:
        assert b["prompt_tokens"] > 0 and b["completion_tokens"] > 0 and b["seconds"] > 0 and b["cost"] == 0.0
    # The chapter's bill is its beats' plus the summaries the story so far was told in.
    assert trace["totals"]["prompt_tokens"] == sum(b["prompt_tokens"] + (b["summary_usage"] or {}).get("prompt_tokens", 0) for b in trace["beats"])
    assert "chapter" in result.stderr and "tok/s" in result.stderr  # the summary table
    assert result.stdout == ""  # with -o the chapter is not printed


@pytest.mark.slow
def test_trace_lore_equals_the_ledger(work: Path, chapter: tuple[Path, dict, object]) -> None:
    _, trace, _ = chapter
    ledger = ledger_json(work)
    assert trace["bible"] == ledger["bible"]
    assert [b["lore"] for b in trace["beats"]] == [b["lore"] for b in ledger["beats"]]
    assert [b["beat"] for b in trace["beats"]] == [b["text"] for b in ledger["beats"]]


@pytest.mark.parametrize("shape", ["full", "short"])
def test_dry_run_prompts_hold_exactly_the_picked_lore(work: Path, sample_store: Settings, shape: str) -> None:
    """Each prompt holds its picks' lore (whole in the full shape, each entry's lead in the short one) and
    nothing of any entry it did not pick."""
    from b2p.retrieval import Retriever
    from b2p.store import Store

    result = invoke(base_args(work, "--dry-run", "--prompt-shape", shape))
    assert result.exit_code == 0, result.stderr
    sections = re.split(r"(?m)^===== beat \d+: ", result.stdout)[1:]
    assert len(sections) == 3
    ledger = ledger_json(work)
    settings = settings_for(work)
    shown = (lambda text: text.strip()) if shape == "full" else prompts.lead  # noqa: E731
    with Store.open(settings) as st, st.lock(exclusive=False):
        r = Retriever(settings, st, "lunar_mining")
        got = st.collection("lunar_mining").get(ids=[f"e:{i}" for i in r.entries], include=["documents"])  # from Chroma itself
        every = {rid[2:]: doc for rid, doc in zip(got["ids"], got["documents"], strict=True)}
        for section, beat in zip(sections, ledger["beats"], strict=True):
            from b2p.models import BeatLore

            picked = r.pick_texts(BeatLore.model_validate(beat))
            for entry_id, text in picked.items():
                assert shown(text) in section, f"beat {beat['index']}: {entry_id} missing"
            for entry_id, text in every.items():
                if entry_id not in picked:
                    name = r.entries[entry_id].name
                    assert f"### {name} (" not in section, f"beat {beat['index']}: unpicked {name} in prompt"
                    assert text.strip()[:60] not in section, f"beat {beat['index']}: text of unpicked {name} in prompt"
    assert "prompt tok" in result.stderr and "left for story" in result.stderr
    if shape == "short":  # the last paragraph and the one-line story so far stand in for the story
        assert "[the last paragraph of beat 2]" in sections[2] and "[a one-line summary of beats 1–2]" in sections[2]
        assert prompts.OUTLINE_HEADING not in result.stdout


def test_dry_run_honours_only(work: Path) -> None:
    result = invoke(base_args(work, "--dry-run", "--only", "2"))
    assert result.exit_code == 0, result.stderr
    assert re.findall(r"(?m)^===== beat (\d+):", result.stdout) == ["2"]
    assert "write part 2 of 3" in result.stdout
    result = invoke(base_args(work, "--dry-run", "--only", "2,3", "--mode", "oneshot"))
    assert result.exit_code == 0, result.stderr
    assert re.findall(r"(?m)^===== (beats? [\d–]+):", result.stdout) == ["beats 2–3"]
    bad = invoke(base_args(work, "--dry-run", "--only", "4"))
    assert bad.exit_code == 2 and bad.stderr.strip().splitlines()[-1] == f"error: --only 4: the beat sheet {work / 'sheet.txt'} has 3 beats (1–3)"


@pytest.mark.slow
def test_without_output_the_chapter_goes_to_stdout_subprocess(work: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "cli", *base_args(work, "--seed", "5")], cwd=REPO,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("# The Lantern at Site Nine\n\n")
    body = proc.stdout.split("\n", 1)[1]
    assert len([p for p in body.split("\n\n") if p.strip()]) >= 3
    assert not any(line.startswith("#") for line in body.splitlines())  # lore/beat headings never reach the prose
    assert measures.debris(body, beats_of(work)) == [] and body.rstrip().endswith(SENTENCE_END)
    assert "Traceback" not in proc.stderr


def drafted(beat: dict) -> dict:
    """A saved beat as its drafting left it: without the summary a later beat's prompt may have added."""
    return {k: v for k, v in beat.items() if not k.startswith("summary")}


def _wait_for_beats(trace_file: Path, proc: subprocess.Popen, at_least: int, timeout: float = 600) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        try:
            data = json.loads(trace_file.read_text())
            if len(data["beats"]) >= at_least:
                return data
        except (FileNotFoundError, json.JSONDecodeError):
            pass  # not written yet (a half-written trace would fail here, and never does: writes are atomic)
        time.sleep(0.05)
    raise AssertionError("no beat was saved in time")


def assert_valid_partial(out: Path) -> dict:
    """After a kill: the trace is whole JSON, its beats in order, and every beat it holds is in the chapter
    once — except beats of a save the kill cut short (``pending``), which the next run writes again."""
    partial = json.loads(trace_path(out).read_text())  # never half-written
    assert [b["index"] for b in partial["beats"]] == list(range(1, len(partial["beats"]) + 1))
    pending = partial.get("pending") or {}
    md = out.read_text() if out.exists() else ""
    assert all(md.count(b["text"]) == 1 for b in partial["beats"] if str(b["index"]) not in pending)
    return partial


def _stop_after(args: list[str], out: Path, beats: int, sig: signal.Signals) -> tuple[dict, subprocess.Popen]:
    """Run ``b2p generate`` as a real process and send it ``sig`` once ``beats`` beats are saved."""
    # A shell that started the test runner in the background may have left SIGINT ignored; a terminal's
    # Ctrl-C reaches b2p with the default handling, so give the child that.
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # noqa: PLW1509
    try:
        saved = _wait_for_beats(trace_path(out), proc, beats)
        proc.send_signal(sig)
        proc.wait(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return saved, proc


@pytest.mark.slow
def test_interrupted_and_killed_runs_resume_then_only_rewrites_one_beat(work: Path) -> None:
    out = work / "killed" / "chapter.md"
    args = [sys.executable, "-m", "cli", *base_args(work, "-o", str(out), "--seed", "21")]

    # Ctrl-C after beat 1: a clean stop that says how to go on.
    before, proc = _stop_after(args, out, 1, signal.SIGINT)
    stderr = proc.stderr.read() if proc.stderr else ""
    assert proc.returncode == 130, stderr
    assert re.search(r"interrupted; [12] of 3 beats are saved in .*--resume", stderr) and "Traceback" not in stderr
    first = before["beats"][0]

    # A crash (SIGKILL) during the resumed run, once one more beat is saved.
    _, proc = _stop_after([*args, "--resume"], out, 2, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    partial = assert_valid_partial(out)  # the partial chapter is valid and has what is done
    assert 2 <= len(partial["beats"]) <= 3

    resumed = subprocess.run([*args, "--resume"], cwd=REPO, capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stderr
    assert not list(out.parent.glob(".*.tmp"))  # a temp file the kill left (if it hit a write) is swept
    trace = json.loads(trace_path(out).read_text())
    assert_good_chapter(out, trace)
    assert drafted(trace["beats"][0]) == drafted(first)  # beat 1 was never redone (a later prompt may have summarised it)
    assert trace["beats"][1]["text"] == partial["beats"][1]["text"]

    result = invoke(base_args(work, "-o", str(out), "--only", "2", "--seed", "77"))
    assert result.exit_code == 0, result.stderr
    after = json.loads(trace_path(out).read_text())
    assert_good_chapter(out, after)
    assert drafted(after["beats"][0]) == drafted(trace["beats"][0]) and after["beats"][2]["text"] == trace["beats"][2]["text"]
    assert "beat 2/3" in result.stderr and "beat 1/3" not in result.stderr and "beat 3/3" not in result.stderr

    again = invoke(base_args(work, "-o", str(out), "--resume"))
    assert again.exit_code == 0 and "nothing to do" in again.stderr


@pytest.mark.slow
def test_kill_9_at_random_moments_then_resume_keeps_every_beat_exactly_once(work: Path) -> None:
    """SIGKILL a real `b2p generate` at random moments (while loading, mid-beat, mid-save), resuming
    each time: the files on disk are always a valid partial chapter, and the end has every beat once.
    'early' kills land anywhere in the first seconds; 'working' kills a random moment after a beat
    was saved, i.e. while the next beat, a summary or a save is under way."""
    import random

    rng = random.Random(int(os.environ.get("B2P_CRASH_SEED", "20261128")))
    out = work / "random-kills" / "chapter.md"
    args = [sys.executable, "-m", "cli", *base_args(work, "-o", str(out), "--seed", "9")]

    def saved() -> int:
        try:
            return len(json.loads(trace_path(out).read_text())["beats"])
        except (FileNotFoundError, json.JSONDecodeError):
            return 0

    kills: list[str] = []
    for mode in ("early", "working", "early", "working", "early", "working"):
        before = saved()
        if before == 3:
            break
        # --resume once there is something to resume (it refuses a chapter with no trace: a typo in -o, most likely)
        run = [*args, "--resume"] if trace_path(out).exists() else args
        proc = subprocess.Popen(run, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            if mode == "early":
                time.sleep(rng.uniform(0.2, 4.0))
            else:
                deadline = time.monotonic() + 600
                while saved() == before and proc.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.05)
                time.sleep(rng.uniform(0.0, 3.0))
            if proc.poll() is None:
                proc.kill()
                kills.append(f"{mode}@{before}->{saved()}")
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        if trace_path(out).exists():
            assert_valid_partial(out)
    assert len(kills) >= 3 and any(k.startswith("working") for k in kills), kills
    resumed = subprocess.run([*args, "--resume"] if trace_path(out).exists() else args, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stderr
    assert_good_chapter(out, json.loads(trace_path(out).read_text()))
    assert not list(out.parent.glob(".*.tmp"))  # temp files a kill left mid-write are swept by the next save
    print(f"\n{len(kills)} kills (mode@beats saved before->after): {', '.join(kills)}")


@pytest.mark.slow
def test_oneshot_real_model_splits_into_beats(work: Path) -> None:
    out = work / "oneshot" / "chapter.md"
    result = invoke(base_args(work, "-o", str(out), "--mode", "oneshot", "--seed", "3"))
    assert result.exit_code == 0, result.stderr
    trace = json.loads(trace_path(out).read_text())
    assert_good_chapter(out, trace)
    assert trace["mode"] == "oneshot"
    # A beat is kept from the one reply only when its marker split it out and it passed the guards; any other
    # was written on its own, and its trace says why.
    for b in trace["beats"]:
        assert (b["mode"], b["split"]) == ("oneshot", "markers") or (b["mode"] == "sequential" and any("one-shot reply" in n for n in b["notes"]))


@pytest.mark.slow
def test_best_of_two_real_model_scores_both(work: Path) -> None:
    out = work / "best" / "chapter.md"
    two = work / "two.txt"
    two.write_text("\n".join(SHEET.splitlines()[:2]) + "\n", encoding="utf-8")
    result = invoke(["generate", str(two), "--bible", "lunar_mining", "--config", str(work / "b2p.toml"),
                     "--words-per-beat", WORDS, "--no-stream", "-o", str(out), "--n", "2", "--seed", "8"])
    assert result.exit_code == 0, result.stderr
    trace = json.loads(trace_path(out).read_text())
    for b in trace["beats"]:
        cands = b["candidates"]
        assert len(cands) == 2 and sum(c["chosen"] for c in cands) == 1
        assert all(c["score"] is not None and c["judged_by"] in ("model", "heuristic") for c in cands)
        chosen = next(c for c in cands if c["chosen"])
        # The best score wins among candidates the guards did not flag (flagged ones only when all are).
        unflagged = [c for c in cands if not (c.get("guard") or {}).get("flagged")] or cands
        assert chosen["text"] == b["text"] and chosen in unflagged and chosen["score"] == max(c["score"] for c in unflagged)
        if any(c["judged_by"] == "heuristic" for c in cands):  # never silently
            assert any("heuristic" in n for n in b["notes"])
    assert "scores" in result.stderr


@pytest.mark.slow
def test_interactive_through_the_cli_with_piped_answers(work: Path) -> None:
    out = work / "interactive" / "chapter.md"
    result = invoke(base_args(work, "-o", str(out), "--mode", "interactive", "--seed", "4"), input="what\nr 1.1\na\na\nq\n")
    assert result.exit_code == 0, result.stderr
    assert "not an answer" in result.stderr and QUESTION.strip() in result.stderr
    assert "stopped after 2 of 3 beats" in result.stderr and "--resume" in result.stderr
    trace = json.loads(trace_path(out).read_text())
    assert [b["index"] for b in trace["beats"]] == [1, 2]
    assert [c["temperature"] for c in trace["beats"][0]["candidates"]] == [0.8, 1.1]


# -- the openai backend, against real servers on loopback -------------------------------------------


@pytest.mark.slow
def test_openai_backend_against_llama_server(work: Path, llama_server: str, tmp_path: Path) -> None:
    cfg = tmp_path / "b2p.toml"
    cfg.write_text((work / "b2p.toml").read_text() + "context_window = 2048\n", encoding="utf-8")
    out = tmp_path / "chapter.md"
    result = invoke(["generate", str(work / "sheet.txt"), "--bible", "lunar_mining", "--config", str(cfg), "--llm", "openai",
                     "--base-url", llama_server, "--words-per-beat", WORDS, "--seed", "2", "-o", str(out)])
    assert result.exit_code == 0, result.stderr
    trace = json.loads(trace_path(out).read_text())
    assert_good_chapter(out, trace)
    assert trace["llm"] == "openai" and all(b["completion_tokens"] > 0 for b in trace["beats"])
    assert [b["lore"] for b in trace["beats"]] == [b["lore"] for b in ledger_json(work)["beats"]]


def test_server_errors_mid_chapter_keep_finished_beats_and_say_how_to_resume(work: Path, fault_server, tmp_path: Path) -> None:  # noqa: ANN001
    cfg = tmp_path / "b2p.toml"  # the key as a user would set it; the fault server echoes it in its error body
    # One canned passage for every beat: later beats are copies of the first, and no redraft could change that.
    cfg.write_text((work / "b2p.toml").read_text() + 'api_key = "sk-test-secret-123456"\nredrafts = 0\n', encoding="utf-8")
    out = tmp_path / "chapter.md"
    args = [*base_args(work, "--llm", "openai", "--base-url", fault_server.url, "-o", str(out)), "--config", str(cfg)]
    fault_server.script(["ok", "500", "500"])  # beat 1 fine; beat 2 fails on both tries (retries = 1)
    result = invoke(args)
    assert result.exit_code != 0
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "500" in errors[0]
    assert "1 of 3 beats are saved in" in errors[0] and "--resume" in errors[0]
    assert "sk-test-secret" not in result.stderr + result.stdout + trace_path(out).read_text()
    trace = json.loads(trace_path(out).read_text())
    assert [b["index"] for b in trace["beats"]] == [1]
    assert "Brine Queen" in out.read_text()

    result = invoke([*args, "--resume"])
    assert result.exit_code == 0, result.stderr
    trace = json.loads(trace_path(out).read_text())
    assert_good_chapter(out, trace, same_text=True)
    assert fault_server.count == 3 + 2  # no beat was asked for twice once it had succeeded
    assert trace["totals"]["cost"] is not None and trace["totals"]["cost"] > 0  # gpt-4o-mini has a listed price
    assert "sk-test-secret" not in trace_path(out).read_text()


def test_a_dead_server_is_one_line(work: Path, tmp_path: Path) -> None:
    from tests.plugins.servers import free_port

    out = tmp_path / "chapter.md"
    result = invoke(base_args(work, "--llm", "openai", "--base-url", f"http://127.0.0.1:{free_port()}/v1", "-o", str(out)))
    assert result.exit_code != 0
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error:") and lines[-1].endswith(f"nothing was saved in {out}; run the same command again")
    assert not out.exists() or "Brine" not in out.read_text()


def test_library_refuses_interactive_without_an_author(work: Path, plan: gen_plan.Plan) -> None:
    with pytest.raises(ConfigError, match="interactive"):
        scripted_run(work, plan, ScriptLLM(prose), None, mode="interactive")
