"""Usage errors (a wrong flag, a missing argument, a bad value) are one line on stderr and exit 2.

Through ``CliRunner``: no store, no model, nothing heavy is loaded before Click refuses the command.
The same cases run as real processes in tests/test_bad_inputs.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app


@pytest.fixture()
def runner() -> CliRunner:
    return CliRunner(env={"COLUMNS": "100"})


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["lore", "--bible", "b", "--budjet", "5"], "b2p lore: no such option '--budjet' (did you mean '--budget'?)"),
        (["generate", "x.txt", "--bible", "b", "--no-strem"], "b2p generate: no such option '--no-strem' (did you mean '--no-stream'?)"),
        (["lore", "--bible", "b", "--colour"], "b2p lore: no such option '--colour'; see 'b2p lore --help'"),
        (["lore", "--bible", "b", "--budget", "lots"],
         "b2p lore: invalid value for '--budget': Input should be a valid integer, unable to parse string as an integer"),
        (["lore", "--bible"], "b2p lore: option '--bible' requires an argument"),
        (["lore", "--bible", "b", "--json=yes"], "b2p lore: option '--json' does not take a value"),
        (["import", "x.json"], "b2p import: missing option '--into'; see 'b2p import --help'"),
        (["generate", "--bible", "b"], "b2p generate: missing argument 'beats_file'; see 'b2p generate --help'"),
        (["lore", "a.txt", "b.txt", "--bible", "b"], "b2p lore: got unexpected extra argument(s) (b.txt)"),
        (["lor"], "b2p: no such command 'lor' (did you mean 'lore'?)"),
        (["frobnicate"], "b2p: no such command 'frobnicate'; commands: ingest, entries, lore, lint, import, export, generate, eval, book, report"),
        (["--verbose", "lore"], "b2p: no such option '--verbose'; see 'b2p --help'"),
    ],
    ids=["typo", "typo-secondary-flag", "unknown", "bad-int", "no-value", "value-for-a-switch", "missing-option",
         "missing-argument", "extra-argument", "command-typo", "unknown-command", "top-level-flag"],
)
def test_a_usage_error_is_one_line(runner: CliRunner, args: list[str], line: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert result.stderr == line + "\n"
    assert result.stdout == ""


def test_help_is_still_the_full_help(runner: CliRunner) -> None:
    result = runner.invoke(app, ["lore", "--help"])
    assert result.exit_code == 0
    assert "Usage: b2p lore" in result.stdout and "--budget" in result.stdout and "--explain" in result.stdout
    result = runner.invoke(app, [])  # bare 'b2p' shows the commands, as before
    assert result.exit_code == 2
    assert "Usage: b2p" in result.output and "generate" in result.output


def test_a_beat_sheet_is_read_by_b2p_not_refused_by_click(runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Click's readable=True check would answer first; b2p reads the sheet itself and names the file when it cannot."""
    sheet = tmp_path / "beats.txt"
    sheet.write_text("Jack drives out.\n")
    monkeypatch.setattr("os.access", lambda *a, **k: False)  # all Click's check asks (root can read anything)
    result = runner.invoke(app, ["lore", str(sheet), "--bible", "b", "--store", str(tmp_path / "s")])
    assert result.exit_code == 1, result.output  # past the arguments: the store is what is missing
    assert result.stderr.startswith(f"error: {tmp_path / 's'}: no b2p store here")
