"""`b2p lore`: one command from a fresh checkout to "what lore does this beat pull in, and why".

CliRunner for most cases, real subprocesses for the fresh-store run and an error run. The bible
is tests/lore_bibles.py's harbour bible; each test works on its own copy of an ingested store
unless it only reads.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from tests.lore_bibles import copy_ingested, write_bible

SHEET = "# Chapter 1\n1. Nell and Jack row out to the wreck at dawn.\n\n- She ties the boat off and climbs the ladder.\n"


def b2p_command() -> list[str]:
    exe = shutil.which("b2p")
    return [exe] if exe else [sys.executable, "-c", "import cli; cli.main()"]


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory, _isolated_env: None) -> tuple[Path, Path]:
    """(bible folder, store) already ingested, shared by the tests that only read."""
    return copy_ingested(tmp_path_factory, tmp_path_factory.mktemp("cli-shared"))


@pytest.fixture()
def private(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, _isolated_env: None) -> tuple[Path, Path]:
    """(bible folder, store): this test's own editable copy."""
    return copy_ingested(tmp_path_factory, tmp_path)


@pytest.fixture()
def runner() -> CliRunner:
    return CliRunner(env={"COLUMNS": "200"})


def lore(runner: CliRunner, *args: str, env: dict[str, str] | None = None):  # noqa: ANN201
    return runner.invoke(app, ["lore", *args], env=env)


def ledger_of(result) -> dict:  # noqa: ANN001
    assert result.exit_code == 0, result.output
    assert result.stdout.count("\n") == 1 and result.stdout.endswith("\n")  # one line: one JSON object
    return json.loads(result.stdout)


def reasons(beat: dict) -> dict[str, str]:
    return {p["name"]: p["reason"] for p in beat["lore"]}


# -- a fresh checkout --------------------------------------------------------------------------------------


def test_a_fresh_store_is_ingested_first_and_one_json_object_printed(tmp_path: Path) -> None:
    """As a writer would run it: a real process, a bible folder, no store yet."""
    bible = write_bible(tmp_path / "harbour")
    sheet = tmp_path / "chapter1.txt"
    sheet.write_text(SHEET, encoding="utf-8")
    store = tmp_path / "store"
    proc = subprocess.run([*b2p_command(), "lore", str(sheet), "--bible", str(bible), "--store", str(store), "--json"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "harbour: 13 entries (13 added" in proc.stderr  # it said it ingested, on stderr
    data = json.loads(proc.stdout)  # stdout is exactly one JSON object, nothing else
    assert proc.stdout.strip().count("\n") == 0
    assert data["bible"] == "harbour"
    assert [(b["index"], b["text"]) for b in data["beats"]] == [
        (1, "Nell and Jack row out to the wreck at dawn."), (2, "She ties the boat off and climbs the ladder.")]
    assert reasons(data["beats"][0]) == {"Style": "always", "Nell Farrow": "named", "Jack Halloran": "named"}
    assert reasons(data["beats"][1]) == {"Style": "always", "Nell Farrow": "scene"}
    assert (store / "chroma.sqlite3").is_file()


def test_an_edited_bible_is_re_ingested_before_retrieval(private: tuple[Path, Path], runner: CliRunner) -> None:
    bible, store = private
    args = ["--beat", "Old Salt mends the nets on the harbour wall.", "--bible", str(bible), "--store", str(store), "--json"]
    before = ledger_of(lore(runner, *args))
    assert "Jack Halloran" not in reasons(before["beats"][0])
    jack = bible / "characters" / "jack.md"
    jack.write_text(jack.read_text().replace('aliases: ["Jack", "the Skipper"]', 'aliases: ["Jack", "the Skipper", "Old Salt"]'))
    result = lore(runner, *args)
    after = ledger_of(result)
    assert "1 updated" in result.stderr
    pick = next(p for p in after["beats"][0]["lore"] if p["name"] == "Jack Halloran")
    assert (pick["reason"], pick["match"]) == ("named", "Old Salt")
    again = lore(runner, *args)  # unchanged now: nothing re-embedded, nothing to report
    assert ledger_of(again) == after and "updated" not in again.stderr


def test_a_bible_can_be_named_once_ingested(shared: tuple[Path, Path], runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, store = shared
    monkeypatch.chdir(tmp_path)  # no folder called 'harbour' here: the name means the ingested bible
    data = ledger_of(lore(runner, "--beat", "Rook charts the currents.", "--bible", "harbour", "--store", str(store), "--json"))
    assert reasons(data["beats"][0])["Rook Sable"] == "named"


def test_a_beat_sheet_in_json(shared: tuple[Path, Path], runner: CliRunner, tmp_path: Path) -> None:
    bible, store = shared
    sheet = tmp_path / "beats.txt"
    sheet.write_text(SHEET + "3) Jack cuts him off before he can finish.\n", encoding="utf-8")
    data = ledger_of(lore(runner, str(sheet), "--bible", str(bible), "--store", str(store), "--json"))
    assert [b["index"] for b in data["beats"]] == [1, 2, 3]
    assert data["beats"][2]["text"] == "Jack cuts him off before he can finish."
    assert set(data) == {"bible", "chapter", "held_back", "beats"} and data["chapter"] is None and data["held_back"] == []
    for b in data["beats"]:
        assert set(b) == {"index", "text", "lore", "dropped", "resolver"} and b["resolver"] is None
        for p in b["lore"]:
            assert set(p) == {"name", "id", "kind", "reason", "score", "match", "tokens", "shortened"}


# -- human output ------------------------------------------------------------------------------------------


def test_the_table_shows_each_pick_and_what_was_left_out(shared: tuple[Path, Path], runner: CliRunner) -> None:
    bible, store = shared
    result = lore(runner, "--beat", "Jack and Tom watch Nell dive off the jetty.", "--bible", str(bible), "--store", str(store), "--budget", "100")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Jack and Tom watch Nell dive off the jetty." in out
    for column in ("entry", "kind", "reason", "score", "matched", "tokens"):
        assert column in out
    assert "Style" in out and "Jack Halloran" in out and "named" in out
    assert "left out:" in out
    left_out = out.split("left out:", 1)[1]
    assert "Tom Ressler (budget" in left_out and "Nell Farrow (budget" in left_out


def test_explain_shows_candidates_below_the_threshold(shared: tuple[Path, Path], runner: CliRunner) -> None:
    bible, store = shared
    args = ["--beat", "A recluse lives among the flooded shelves, reading by a single lamp in trapped air.", "--bible", str(bible), "--store", str(store),
            "--threshold", "0.45"]
    plain = lore(runner, *args)
    assert plain.exit_code == 0 and "left out" not in plain.stdout
    explained = lore(runner, *args, "--explain")
    assert explained.exit_code == 0
    assert "Brother Anselm (threshold" in explained.stdout.split("left out:", 1)[1]


# -- settings: flag > env > b2p.toml -------------------------------------------------------------------------


def budget_drops(data: dict) -> set[str]:
    return {d["name"] for b in data["beats"] for d in b["dropped"] if d["reason"] == "budget"}


BEAT = "Jack and Tom watch Nell dive off the jetty."


def test_budget_from_flag_env_and_toml(shared: tuple[Path, Path], runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bible, store = shared
    monkeypatch.chdir(tmp_path)
    base = ["--beat", BEAT, "--bible", str(bible), "--store", str(store), "--json"]
    everyone = {"Style", "Jack Halloran", "Tom Ressler", "Nell Farrow"}

    assert budget_drops(ledger_of(lore(runner, *base))) == set()
    assert budget_drops(ledger_of(lore(runner, *base, "--budget", "0"))) == everyone
    assert budget_drops(ledger_of(lore(runner, *base, env={"B2P_BUDGET": "0"}))) == everyone
    assert budget_drops(ledger_of(lore(runner, *base, "--budget", "5000", env={"B2P_BUDGET": "0"}))) == set()  # the flag wins

    (tmp_path / "b2p.toml").write_text("budget = 0\n")
    assert budget_drops(ledger_of(lore(runner, *base))) == everyone  # ./b2p.toml is read
    assert budget_drops(ledger_of(lore(runner, *base, env={"B2P_BUDGET": "5000"}))) == set()  # env beats the file

    other = tmp_path / "elsewhere.toml"
    other.write_text("budget = 100\n")
    data = ledger_of(lore(runner, *base, "--config", str(other)))
    assert budget_drops(data) == {"Tom Ressler", "Nell Farrow"}  # --config replaces ./b2p.toml
    assert sum(p["tokens"] for p in data["beats"][0]["lore"]) <= 100


def test_threshold_top_k_and_scene_depth_flags(shared: tuple[Path, Path], runner: CliRunner, tmp_path: Path) -> None:
    bible, store = shared
    base = ["--bible", str(bible), "--store", str(store), "--json"]
    described = ["--beat", "The constables in oilskins collect harbour dues."]
    assert reasons(ledger_of(lore(runner, *described, *base))["beats"][0]).get("Harbour Watch") == "similar"
    assert "Harbour Watch" not in reasons(ledger_of(lore(runner, *described, *base, "--threshold", "0.99"))["beats"][0])
    assert "Harbour Watch" not in reasons(ledger_of(lore(runner, *described, *base, "--top-k", "0"))["beats"][0])
    sheet = tmp_path / "far.txt"
    sheet.write_text("Nell dives off the jetty.\nRain drums on the harbour wall.\nGulls circle the net lofts.\nShe surfaces with a brass compass.\n")
    assert reasons(ledger_of(lore(runner, str(sheet), *base))["beats"][3]).get("Nell Farrow") == "scene"
    assert "Nell Farrow" not in reasons(ledger_of(lore(runner, str(sheet), *base, "--scene-depth", "1"))["beats"][3])


def test_an_unknown_setting_in_b2p_toml_is_one_line_with_a_suggestion(shared: tuple[Path, Path], runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bible, store = shared
    monkeypatch.chdir(tmp_path)
    (tmp_path / "b2p.toml").write_text("budgte = 300\n")
    result = lore(runner, "--beat", BEAT, "--bible", str(bible), "--store", str(store))
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "budgte" in result.stderr and 'did you mean "budget"' in result.stderr
    assert "Traceback" not in result.output and result.stdout == ""
    other = tmp_path / "custom.toml"
    other.write_text("scene_dept = 2\n")
    result = lore(runner, "--beat", BEAT, "--bible", str(bible), "--store", str(store), "--config", str(other))
    assert result.exit_code == 2 and 'did you mean "scene_depth"' in result.stderr and str(other) in result.stderr


# -- user errors: one clear line, non-zero exit, no traceback --------------------------------------------------


def one_line_error(result, *expected: str) -> str:  # noqa: ANN001
    assert result.exit_code not in (0, None), result.output
    assert isinstance(result.exception, SystemExit), result.exception  # a handled error, not a crash
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    for word in expected:
        assert word in lines[0], lines[0]
    assert result.stdout == ""
    return lines[0]


def test_an_unknown_bible_name_lists_what_the_store_holds(shared: tuple[Path, Path], runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, store = shared
    monkeypatch.chdir(tmp_path)
    line = one_line_error(lore(runner, "--beat", BEAT, "--bible", "harbor", "--store", str(store)), "harbor")
    assert "harbour" in line  # what is there, so the typo is obvious


def test_a_missing_store_says_how_to_make_one(runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    one_line_error(lore(runner, "--beat", BEAT, "--bible", "harbour", "--store", str(tmp_path / "nothing")), "ingest")
    assert not (tmp_path / "nothing").exists()  # looking up lore never creates an empty store


def test_a_missing_bible_folder(runner: CliRunner, tmp_path: Path) -> None:
    one_line_error(lore(runner, "--beat", BEAT, "--bible", str(tmp_path / "no_such_bible"), "--store", str(tmp_path / "s")), "no_such_bible")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "not found"),
        (b"", "no beats"),
        (b"# just a heading\n\n   \n", "no beats"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
        (b"caf\xe9 scene\n", "UTF-8"),
    ],
    ids=["missing", "empty", "only-comments", "binary", "latin-1"],
)
def test_a_bad_beat_sheet_is_one_line(shared: tuple[Path, Path], runner: CliRunner, tmp_path: Path, content: bytes | None, expected: str) -> None:
    bible, store = shared
    sheet = tmp_path / "beats.txt"
    if content is not None:
        sheet.write_bytes(content)
    line = one_line_error(lore(runner, str(sheet), "--bible", str(bible), "--store", str(store)), expected)
    assert str(sheet) in line  # which file


@pytest.mark.parametrize("args", [[], ["SHEET", "--beat", "Nell dives."], ["--beat", "   "]], ids=["neither", "both", "blank-beat"])
def test_exactly_one_of_a_sheet_or_a_beat(shared: tuple[Path, Path], runner: CliRunner, tmp_path: Path, args: list[str]) -> None:
    bible, store = shared
    sheet = tmp_path / "beats.txt"
    sheet.write_text("Nell dives.\n")
    args = [str(sheet) if a == "SHEET" else a for a in args]
    line = one_line_error(lore(runner, *args, "--bible", str(bible), "--store", str(store)))
    assert "--beat" in line


def test_errors_from_a_real_process_are_one_line_too(shared: tuple[Path, Path], tmp_path: Path) -> None:
    bible, store = shared
    env = {**os.environ, "COLUMNS": "200"}
    proc = subprocess.run([*b2p_command(), "lore", str(tmp_path / "nope.txt"), "--bible", str(bible), "--store", str(store)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.strip() == f"{tmp_path / 'nope.txt'}: beat sheet not found"
