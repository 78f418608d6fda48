"""The store lives with the bible: every command works from any folder, ``b2p`` run inside a bible folder
finds it without ``--bible``, an old ``./.b2p`` keeps working, and the bible's warnings are shown when an
ingest changed something — not on every command. All through the real CLI, real store, real embedder."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app

runner = CliRunner()
SHARED_ALIAS = "warning: alias 'the chief' is claimed by both"  # lunar_mining's two chiefs


def run(*args: str, env: dict[str, str] | None = None):  # noqa: ANN201
    result = runner.invoke(app, list(args), env=env)
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    return result


def ok(*args: str, env: dict[str, str] | None = None):  # noqa: ANN201
    result = run(*args, env=env)
    assert result.exit_code == 0, result.stderr
    return result


def stores_under(root: Path) -> list[Path]:
    return sorted(p.parent for p in root.rglob("chroma.sqlite3"))


def test_every_command_works_from_any_folder_with_the_store_in_the_bible(bible_copy, tmp_path: Path, fault_server,  # noqa: ANN001
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    bible = bible_copy("lunar_mining")
    elsewhere, third = tmp_path / "elsewhere", tmp_path / "third"
    elsewhere.mkdir()
    third.mkdir()
    monkeypatch.chdir(elsewhere)
    sheet = bible / "beats" / "chapter1.txt"
    llm = ["--llm", "openai", "--base-url", fault_server.url, "--words-per-beat", "30", "--no-stream"]

    first = ok("ingest", str(bible))
    assert "17 added" in first.stdout and SHARED_ALIAS in first.stderr  # shown when the ingest happens
    assert stores_under(tmp_path) == [bible / ".b2p"]
    assert "*" in (bible / ".b2p" / ".gitignore").read_text(encoding="utf-8").splitlines()
    if shutil.which("git"):
        subprocess.run(["git", "init", "-q", str(bible)], check=True)
        status = subprocess.run(["git", "-C", str(bible), "status", "--porcelain", "--untracked-files=all"],
                                capture_output=True, text=True, check=True).stdout
        assert ".b2p" not in status and "characters/jack_halloran.md" in status

    listing = ok("entries", "--bible", str(bible))
    assert "Jack Halloran" in listing.stdout and "warning" not in listing.stderr  # not on every command
    lore = ok("lore", "--beat", "Jack radios the chief.", "--bible", str(bible))
    assert "Jack Halloran" in lore.stdout and lore.stderr == ""
    chapter = elsewhere / "chapter1.md"
    written = ok("generate", str(sheet), "--bible", str(bible), "-o", str(chapter), *llm)
    assert "warning" not in written.stderr and chapter.is_file()

    monkeypatch.chdir(third)  # the report finds the bible's store from the chapter's trace
    report = ok("report", str(chapter), "-o", str(third / "r.html"))
    assert "wrote" in report.stdout and "names are not highlighted" not in (third / "r.html").read_text(encoding="utf-8")

    monkeypatch.chdir(bible)  # inside the bible folder: no --bible needed
    assert "Jack Halloran" in ok("entries").stdout
    monkeypatch.chdir(bible / "beats")  # … nor below it
    assert "Jack Halloran" in ok("lore", "chapter1.txt").stdout
    ok("generate", "chapter1.txt", "-o", str(third / "chapter1.md"), *llm)
    assert "Jack Halloran" in ok("entries", "--bible", "lunar_mining").stdout  # its name means it here too
    again = ok("ingest")
    assert "17 unchanged" in again.stdout and SHARED_ALIAS in again.stderr  # asked for: shown

    monkeypatch.chdir(elsewhere)
    entry = bible / "characters" / "jack_halloran.md"
    entry.write_text(entry.read_text(encoding="utf-8") + "\nHe hums when he is nervous.\n", encoding="utf-8")
    changed = ok("lore", "--beat", "Jack hums.", "--bible", str(bible))
    assert "1 updated" in changed.stderr and SHARED_ALIAS in changed.stderr  # an ingest happened: shown once
    assert "warning" not in ok("lore", "--beat", "Jack hums.", "--bible", str(bible)).stderr
    assert stores_under(tmp_path) == [bible / ".b2p"]  # nothing was made where the commands ran

    # --store, B2P_STORE and b2p.toml still win over the bible's store (here, the bible's name means it otherwise).
    monkeypatch.chdir(bible)
    empty = tmp_path / "empty-store"
    for how in (["--store", str(empty)], []):
        result = run("entries", "--bible", "lunar_mining", *how, env={"B2P_STORE": str(empty)} if not how else None)
        assert result.exit_code != 0 and f"{empty}: no b2p store here" in result.stderr
    (bible / "b2p.toml").write_text(f'store = "{empty}"\n', encoding="utf-8")
    assert f"{empty}: no b2p store here" in run("entries", "--bible", "lunar_mining").stderr
    assert not empty.exists()


def test_an_existing_dot_b2p_that_holds_the_bible_keeps_working(bible_copy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    bible = bible_copy("drowned_archive")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    ok("ingest", str(bible), "--store", ".b2p")  # as the old default made it
    for args in (["entries", "--bible", str(bible)], ["lore", "--beat", "The monk wades in.", "--bible", str(bible)],
                 ["entries", "--bible", "drowned_archive"]):
        ok(*args)
    assert stores_under(tmp_path) == [work / ".b2p"]  # ./.b2p kept serving it; no second store in the bible
