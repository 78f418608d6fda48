"""``b2p eval`` on chapters the real embedded model writes in every mode, and ``--judge`` with real models.

The chapters are short (two beats, a few words each): what is under test is that eval reads every
kind of trace and reports every beat, not the prose. Assertions hold whatever the model writes:
figures in their ranges, every beat reported once, the figures agreeing with the trace's text and
lore, judge grades saved and reused.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from b2p.settings import Settings
from b2p.trace import trace_path
from cli import app

SHEET = "1. Jack and Xander dig at Varro Crater.\n2. They uncover the Lantern, which hums.\n"
runner = CliRunner()

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory, sample_store: Settings) -> Path:
    root = tmp_path_factory.mktemp("eval-modes")
    (root / "sheet.txt").write_text(SHEET, encoding="utf-8")
    # One llama.cpp thread: on a busy 2-core machine two threads spin against each other.
    (root / "b2p.toml").write_text(f'store = "{sample_store.store}"\nbudget = 300\nn_threads = 1\ncontext_window = 2048\n', encoding="utf-8")
    return root


def invoke(args: list[str], **kw: object):  # noqa: ANN201
    result = runner.invoke(app, args, **kw)  # type: ignore[arg-type]
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    return result


def generate(work: Path, out: Path, *extra: str, **kw: object) -> None:
    result = invoke(["generate", str(work / "sheet.txt"), "--bible", "lunar_mining", "--config", str(work / "b2p.toml"),
                     "--words-per-beat", "15", "--no-stream", "-o", str(out), *extra], **kw)
    assert result.exit_code == 0, result.stderr


def evaluate(work: Path, chapter: Path, *extra: str) -> dict:
    result = invoke(["eval", str(chapter), "--config", str(work / "b2p.toml"), "--json", *extra])
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def check_report(report: dict, chapter: Path) -> None:
    """What eval guarantees whatever the model wrote."""
    trace = json.loads(trace_path(chapter).read_text())
    assert [b["index"] for b in report["beats"]] == [b["index"] for b in trace["beats"]]
    assert report["figures"]["beats"] == len(trace["beats"]) and report["mode"] == trace["mode"]
    for b, t in zip(report["beats"], trace["beats"], strict=True):
        assert b["beat"] == t["beat"] and 0 < b["words"] + len(b["debris"])
        assert b["coverage"] is not None and 0 <= b["coverage"] <= 1
        assert all(0 <= b[k] <= 1 for k in ("repeat", "loops", "lore_copy"))
        assert b["similarity"] is None or -1 <= b["similarity"] <= 1
        named = [p["name"] for p in t["lore"] if p["reason"] != "always"]
        assert sorted(b["lore"]["used"] + b["lore"]["unused"]) == sorted(named)
        assert all(d["text"] in t["text"] for d in b["debris"])
    plain = invoke(["eval", str(chapter), "--config", str(chapter.parent.parent / "b2p.toml")])
    assert plain.exit_code == 0 and f"{len(trace['beats'])} of 2 beats" in plain.stdout


def test_interactive_then_resumed_then_only(work: Path) -> None:
    out = work / "interactive" / "chapter.md"
    generate(work, out, "--mode", "interactive", "--seed", "4", input="a\nq\n")  # accept beat 1, then quit
    report = evaluate(work, out)
    check_report(report, out)
    assert [f["decision"] for f in report["beats"][0]["feedback"]] == ["accept"] and not report["beats"][0]["feedback_recorded"]
    generate(work, out, "--resume", "--seed", "5")  # beat 2, sequential
    resumed = evaluate(work, out)
    check_report(resumed, out)
    generate(work, out, "--only", "2", "--seed", "6")
    report = evaluate(work, out)
    check_report(report, out)
    # Beat 1 was kept, so its own figures are the same; beat 2 is measured on its new text.
    assert {k: report["beats"][0][k] for k in ("coverage", "repeat", "debris", "lore", "feedback")} == \
           {k: resumed["beats"][0][k] for k in ("coverage", "repeat", "debris", "lore", "feedback")}


def test_oneshot_and_judged_by_the_embedded_model(work: Path) -> None:
    out = work / "oneshot" / "chapter.md"
    generate(work, out, "--mode", "oneshot", "--seed", "3")
    check_report(evaluate(work, out), out)
    report = evaluate(work, out, "--judge")
    saved = json.loads(trace_path(out).read_text())
    for b, t in zip(report["beats"], saved["beats"], strict=True):
        j = b["judge"]
        assert j is not None and j == t["judge"] and j["model"].startswith("SmolLM2")
        assert all(j[k] is None or 1 <= j[k] <= 5 for k in ("follows", "lore", "prose"))
        assert j["completion_tokens"] > 0 and (j["answer"] or j["reason"])
    stamp = trace_path(out).read_bytes()
    again = evaluate(work, out, "--judge")
    assert trace_path(out).read_bytes() == stamp  # graded before on the same text: not asked again, nothing rewritten
    assert [b["judge"] for b in again["beats"]] == [b["judge"] for b in report["beats"]]


def test_best_of_two(work: Path) -> None:
    out = work / "best" / "chapter.md"
    generate(work, out, "--n", "2", "--seed", "8")
    report = evaluate(work, out)
    check_report(report, out)
    assert all(not b["feedback"] for b in report["beats"])  # --n is the judge prompt's choice, not the writer's


def test_written_and_judged_through_the_openai_path(work: Path, llama_server: str) -> None:
    out = work / "openai" / "chapter.md"
    served = ["--llm", "openai", "--base-url", llama_server, "--model", "smollm2"]
    generate(work, out, *served, "--seed", "2")
    report = evaluate(work, out, "--judge", *served)
    check_report(report, out)
    saved = json.loads(trace_path(out).read_text())
    assert saved["llm"] == "openai"
    assert all(b["judge"]["model"] == "smollm2" and b["judge"] == t["judge"] for b, t in zip(report["beats"], saved["beats"], strict=True))
    assert all(b["judge"]["prompt_tokens"] > 0 and b["judge"]["completion_tokens"] > 0 for b in report["beats"])
    assert report["figures"]["judged"] == sum(b["judge"]["score"] is not None for b in report["beats"])
