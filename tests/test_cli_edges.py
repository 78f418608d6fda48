"""Edges of the commands found by a review after the branches met: one clear line for a bad server URL
or an empty BIBLE_DIR, `b2p book` inside the bible, `--strict` honoured by `--dry-run`, and a run that
saved nothing not sending the writer to `--resume`. Through the real CLI."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app

BOOK = Path(__file__).parent / "data" / "book" / "lighthouse_keepers"
runner = CliRunner()


def run(*args: str, cwd: Path | None = None):  # noqa: ANN201
    old = Path.cwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        result = runner.invoke(app, list(args))
    finally:
        os.chdir(old)
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    return result


@pytest.mark.parametrize("url", ["http://127.0.0.1:99999", "http://[::1"])
def test_a_chroma_url_that_is_no_url_is_one_line(url: str, tmp_path: Path) -> None:
    result = run("entries", "--bible", "anything", "--chroma-url", url, cwd=tmp_path)
    assert result.exit_code != 0
    assert result.stderr.strip().splitlines() == [f"error: --chroma-url '{url}' is not a URL like http://127.0.0.1:8000"]


@pytest.mark.parametrize("command", ["ingest", "lint"])
def test_an_empty_bible_dir_is_refused_not_read_as_this_folder(command: str, tmp_path: Path) -> None:
    shutil.copytree(BOOK / "characters", tmp_path / "characters")  # a folder that would ingest
    result = run(command, "", cwd=tmp_path)
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: BIBLE_DIR is empty: give the bible folder (or leave it out inside one)"
    assert not (tmp_path / ".b2p").exists()


@pytest.fixture(scope="module")
def book(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("edges") / "lighthouse_keepers"
    shutil.copytree(BOOK, root)
    assert run("ingest", cwd=root).exit_code == 0
    return root


def test_book_runs_inside_the_bible_without_bible(book: Path) -> None:
    result = run("book", "--json", cwd=book)
    assert result.exit_code == 0, result.stderr
    assert '"chapter":4' in result.stdout.replace(" ", "")


def test_strict_is_honoured_by_a_dry_run(book: Path) -> None:
    sheet = str(book / "beats" / "ch03.txt")
    loose = run("generate", sheet, "--dry-run", cwd=book)
    assert loose.exit_code == 0 and "goes on without it" in loose.stderr
    strict = run("generate", sheet, "--dry-run", "--strict", cwd=book)
    assert strict.exit_code != 0 and strict.stderr.startswith("error: ") and "not written yet" in strict.stderr


def test_a_run_that_saved_nothing_does_not_offer_resume(book: Path, tmp_path: Path) -> None:
    out = tmp_path / "ch01.md"
    result = run("generate", str(book / "beats" / "ch01.txt"), "-o", str(out), "--llm", "openai", "--base-url", "http://127.0.0.1:9/v1",
                 "--model", "m", "--no-stream", cwd=book)
    assert result.exit_code != 0 and not out.exists()
    last = result.stderr.strip().splitlines()[-1]
    assert last.endswith(f"nothing was saved in {out}; run the same command again") and "--resume" not in last
