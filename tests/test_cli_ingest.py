"""``b2p ingest`` and ``b2p entries`` as a writer runs them: through ``CliRunner`` and as a subprocess."""

from __future__ import annotations

import hashlib
import json
import os
import pty
import re
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app

BIBLES = Path(__file__).resolve().parent.parent / "story_bibles"
REPORT_KEYS = {"bible", "entries", "added", "updated", "removed", "unchanged", "chunks"}

ENTRIES = {
    "characters/jack.md": "---\nname: Jack Halloran\naliases: [Jack, Dusty]\ntags: [miner]\n---\nJack cuts regolith out of Varro Crater.\n",
    "characters/xander.md": "---\nname: Xander Voss\naliases: [Xander, Xan]\n---\nJack's partner on the rig, careful where Jack is bold.\n",
    "places/meridian.md": "---\nname: Outpost Meridian\naliases: [Meridian]\n---\nA pressurised warren of modules.\n",
    "notes/style.md": "---\nname: Style\nalways: true\n---\nTerse, technical, quiet dread.\n",
}


def make_bible(root: Path, entries: dict[str, str] = ENTRIES) -> Path:
    for rel, text in entries.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    return root


def tree_hash(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture()
def runner() -> CliRunner:
    return CliRunner(env={"COLUMNS": "200"})


@pytest.fixture()
def bible(tmp_path: Path) -> Path:
    return make_bible(tmp_path / "moonbase")


@pytest.fixture()
def store(tmp_path: Path) -> Path:
    return tmp_path / "store"


def b2p(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["b2p", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})


def one_json(stdout: str) -> dict:
    """stdout holds exactly one JSON object (one line), nothing else."""
    lines = stdout.strip().splitlines()
    assert len(lines) == 1, stdout
    obj = json.loads(lines[0])
    assert isinstance(obj, dict)
    return obj


# ---------------------------------------------------------------- ingest --json and the summary


def test_ingest_json_through_clirunner(runner: CliRunner, bible: Path, store: Path) -> None:
    result = runner.invoke(app, ["ingest", str(bible), "--store", str(store), "--json"])
    assert result.exit_code == 0, result.output
    report = one_json(result.stdout)
    assert set(report) == REPORT_KEYS
    assert report == {"bible": "moonbase", "entries": 4, "added": 4, "updated": 0, "removed": 0, "unchanged": 0, "chunks": 4}
    assert result.stderr == ""

    (bible / "notes/style.md").unlink()
    (bible / "characters/jack.md").write_text(ENTRIES["characters/jack.md"].replace("Varro", "Tycho"))
    make_bible(bible, {"items/lantern.md": "---\nname: The Lantern\n---\nA warm blue stone.\n"})
    result = runner.invoke(app, ["ingest", str(bible), "--store", str(store), "--json"])
    assert result.exit_code == 0, result.output
    assert one_json(result.stdout) == {"bible": "moonbase", "entries": 4, "added": 1, "updated": 1, "removed": 1, "unchanged": 2, "chunks": 4}


def test_human_summary(runner: CliRunner, bible: Path, store: Path) -> None:
    result = runner.invoke(app, ["ingest", str(bible), "--store", str(store)])
    assert result.exit_code == 0, result.output
    assert re.fullmatch(
        r"moonbase: 4 entries \(4 added, 0 updated, 0 removed, 0 unchanged\), 4 chunks in the store, \d+\.\d s\n", result.stdout
    ), result.stdout
    result = runner.invoke(app, ["ingest", str(bible), "--store", str(store)])
    assert "(0 added, 0 updated, 0 removed, 4 unchanged)" in result.stdout


def test_shared_alias_warns_on_stderr_and_json_stays_clean(runner: CliRunner, bible: Path, store: Path) -> None:
    make_bible(bible, {"characters/xan.md": "---\nname: Xan Okafor\naliases: [Xan]\n---\nA comms tech.\n"})
    result = runner.invoke(app, ["ingest", str(bible), "--store", str(store), "--json"])
    assert result.exit_code == 0, result.output
    assert one_json(result.stdout)["entries"] == 5
    (warning,) = result.stderr.strip().splitlines()
    assert warning.startswith("warning: alias 'xan' is claimed by both ")
    assert str(bible / "characters/xan.md") in warning and str(bible / "characters/xander.md") in warning


@pytest.mark.slow
def test_ingest_as_a_subprocess_defaults_to_the_bibles_own_store(bible: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    proc = b2p("ingest", str(bible), "--json", cwd=work)
    assert proc.returncode == 0, proc.stderr
    report = one_json(proc.stdout)
    assert set(report) == REPORT_KEYS and report["added"] == 4
    assert (bible / ".b2p" / "chroma.sqlite3").is_file() and not (work / ".b2p").exists()  # the store lives with the bible
    assert "Traceback" not in proc.stderr and "embedding" not in proc.stderr  # no progress bar off a terminal

    # the human summary of an unchanged re-run
    proc = b2p("ingest", str(bible), cwd=work)
    assert proc.returncode == 0
    assert "moonbase: 4 entries (0 added, 0 updated, 0 removed, 4 unchanged), 4 chunks in the store" in proc.stdout

    # B2P_STORE picks another store; the default one is not touched
    before = tree_hash(bible / ".b2p")
    result = CliRunner(env={"B2P_STORE": str(tmp_path / "elsewhere")}).invoke(app, ["ingest", str(bible), "--json"])
    assert result.exit_code == 0, result.output
    assert one_json(result.stdout)["added"] == 4
    assert (tmp_path / "elsewhere" / "chroma.sqlite3").is_file()
    assert tree_hash(bible / ".b2p") == before


@pytest.mark.slow
def test_progress_bar_on_a_terminal(bible: Path, tmp_path: Path) -> None:
    """On a terminal the embedding shows a progress bar (on stderr); stdout keeps the JSON alone."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        ["b2p", "ingest", str(bible), "--store", str(tmp_path / "store"), "--json"],
        stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL, env={**os.environ, "COLUMNS": "120", "TERM": "xterm"},
    )
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the child closed its end
                break
            if not chunk:
                break
            seen += chunk
        elif proc.poll() is not None:
            break
    out, _ = proc.communicate(timeout=60)
    os.close(master)
    assert proc.returncode == 0, seen.decode(errors="replace")
    assert one_json(out.decode())["added"] == 4
    assert b"embedding" in seen


# ---------------------------------------------------------------- b2p entries


def test_entries_table_and_json(runner: CliRunner, bible: Path, store: Path) -> None:
    ingest = runner.invoke(app, ["ingest", str(bible), "--store", str(store), "--json"])
    chunks = one_json(ingest.stdout)["chunks"]

    result = runner.invoke(app, ["entries", "--bible", "moonbase", "--store", str(store), "--json"])
    assert result.exit_code == 0, result.output
    listed = one_json(result.stdout)
    assert listed["bible"] == "moonbase"
    rows = {e["name"]: e for e in listed["entries"]}
    assert sorted(rows) == ["Jack Halloran", "Outpost Meridian", "Style", "Xander Voss"]
    assert {"name", "kind", "aliases", "chunks"} <= set(rows["Jack Halloran"])
    assert rows["Jack Halloran"]["aliases"] == ["Jack", "Dusty"] and rows["Jack Halloran"]["kind"] == "character"
    assert rows["Style"]["always"] is True and rows["Outpost Meridian"]["kind"] == "place"
    assert sum(e["chunks"] for e in listed["entries"]) == chunks

    result = runner.invoke(app, ["entries", "--bible", "moonbase", "--store", str(store)])
    assert result.exit_code == 0, result.output
    for text in ("moonbase: 4 entries", "Jack Halloran", "Jack, Dusty", "character", "Outpost Meridian", "always"):
        assert text in result.stdout


def test_entries_of_a_folder_ingests_it_first(runner: CliRunner, bible: Path, store: Path) -> None:
    result = runner.invoke(app, ["entries", "--bible", str(bible), "--store", str(store), "--json"])
    assert result.exit_code == 0, result.output
    assert len(one_json(result.stdout)["entries"]) == 4
    assert "4 added" in result.stderr  # the side note of the ingest it ran
    again = runner.invoke(app, ["entries", "--bible", str(bible), "--store", str(store), "--json"])
    assert again.exit_code == 0 and again.stderr == ""  # unchanged: nothing to say


def test_entries_of_the_sample_store_as_subprocess(sample_store, tmp_path: Path) -> None:  # noqa: ANN001
    proc = b2p("entries", "--bible", "lunar_mining", "--store", str(sample_store.store), "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    names = {e["name"]: e for e in one_json(proc.stdout)["entries"]}
    assert len(names) == 17
    assert "Dusty" in names["Jack Halloran"]["aliases"]
    assert names["Genre"]["always"] and names["Style"]["always"]


def test_unknown_bible_in_entries(sample_store, tmp_path: Path) -> None:  # noqa: ANN001
    before = tree_hash(sample_store.store)
    proc = b2p("entries", "--bible", "lunar_minin", "--store", str(sample_store.store), cwd=tmp_path)
    assert proc.returncode == 1 and proc.stdout == "" and "Traceback" not in proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("error: no bible 'lunar_minin'") and 'did you mean "lunar_mining"' in line
    assert "drowned_archive, lunar_mining" in line
    assert tree_hash(sample_store.store) == before  # refused without Chroma writing to the store


def test_entries_without_a_store(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["entries", "--bible", "moonbase", "--store", str(tmp_path / "none")])
    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: {tmp_path / 'none'}: no b2p store here; run 'b2p ingest BIBLE_DIR' first (or pass --store)"
    assert not (tmp_path / "none").exists()


# ---------------------------------------------------------------- bad inputs


BAD = {
    "yaml": ("characters/jack.md", "---\nname: Jack\naliases: [Jack\n---\nBody.\n", r":3: bad YAML in front matter"),
    "never_closed": ("characters/jack.md", "---\nname: Jack\n\nBody.\n", r":1: front matter is never closed"),
    "no_name": ("characters/jack.md", "---\naliases: [Jack]\n---\nBody.\n", r":1: missing 'name'"),
    "aliases_string": ("characters/jack.md", "---\nname: Jack\naliases: Jack\n---\nBody.\n", r":3: 'aliases' must be a list .* e\.g\. aliases: \['Jack'\]"),
    "unknown_field": ("characters/jack.md", "---\nname: Jack\naliasses: [x]\n---\nBody.\n", r":3: unknown field 'aliasses' \(did you mean \"aliases\"\?\)"),
    "empty_body": ("characters/jack.md", "---\nname: Jack\n---\n\n", r":4: empty body"),
    "duplicate": ("characters/jack2.md", "---\nname: Jack Halloran\n---\nAgain.\n", r":2: name 'Jack Halloran' is already used by .*jack\.md"),
    "bible_yaml": ("bible.yaml", "title: X\ntence: past\n", r":2: unknown field 'tence' \(did you mean \"tense\"\?\)"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_bible_one_line_exit_2(runner: CliRunner, bible: Path, store: Path, case: str) -> None:
    rel, text, pattern = BAD[case]
    (bible / rel).write_text(text)
    result = runner.invoke(app, ["ingest", str(bible), "--store", str(store), "--json"])
    assert result.exit_code == 2
    assert result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert re.match(re.escape(str(bible / rel)) + pattern, line), line
    assert "Traceback" not in result.output
    assert not store.exists()


@pytest.mark.slow
def test_bad_bible_as_subprocess_leaves_store_unchanged(bible: Path, tmp_path: Path) -> None:
    proc = b2p("ingest", str(bible), "--store", "s", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    before = tree_hash(tmp_path / "s")
    (bible / "characters/jack.md").write_bytes(b"---\nname: Jack\n---\nCaf\xe9\n")
    (bible / "places/meridian.md").write_text("---\nname: Outpost Meridian\nsize: big\n---\nModules.\n")
    (bible / "notes/style.md").write_bytes(b"\x00\x01binary")
    proc = b2p("ingest", str(bible), "--store", "s", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == "" and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 3
    assert any(re.fullmatch(re.escape(str(bible / "characters/jack.md")) + r":4: not UTF-8 text \(byte 0xe9\).*", ln) for ln in lines)
    assert any(re.fullmatch(re.escape(str(bible / "places/meridian.md")) + r":3: unknown field 'size'", ln) for ln in lines)
    assert any(re.fullmatch(re.escape(str(bible / "notes/style.md")) + r":1: binary file, not Markdown text", ln) for ln in lines)
    assert tree_hash(tmp_path / "s") == before


@pytest.mark.parametrize("which", ["missing", "file", "empty"])
def test_bad_bible_path(runner: CliRunner, tmp_path: Path, store: Path, which: str) -> None:
    path = {"missing": tmp_path / "nope", "file": tmp_path / "f.md", "empty": tmp_path / "empty"}[which]
    if which == "file":
        path.write_text("---\nname: A\n---\nA.\n")
    elif which == "empty":
        path.mkdir()
    result = runner.invoke(app, ["ingest", str(path), "--store", str(store)])
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"{path}: ")
    assert {"missing": "no such folder", "file": "is a file", "empty": "no entries"}[which] in line
    assert not store.exists()


@pytest.mark.slow
def test_store_refusals_say_how_to_fix(bible: Path, tmp_path: Path) -> None:
    """Another chunking (from b2p.toml): refused with --rebuild advice, store unchanged; --rebuild then works."""
    assert b2p("ingest", str(bible), "--store", "s", "--json", cwd=tmp_path).returncode == 0
    before = tree_hash(tmp_path / "s")
    (tmp_path / "b2p.toml").write_text("chunk_size = 100\n")
    proc = b2p("ingest", str(bible), "--store", "s", "--json", cwd=tmp_path)
    assert proc.returncode == 1 and proc.stdout == "" and "Traceback" not in proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("error: the store's 'moonbase' was built with chunking 'sentence:200/20', not 'sentence:100/20'")
    assert "--rebuild" in line
    assert tree_hash(tmp_path / "s") == before
    runner = CliRunner()
    result = runner.invoke(app, ["ingest", str(bible), "--store", str(tmp_path / "s"), "--json", "--rebuild", "--config", str(tmp_path / "b2p.toml")])
    assert result.exit_code == 0, result.output
    assert one_json(result.stdout)["added"] == 4
    # the default model under its other spelling is the same model: no refusal
    args = ["ingest", str(bible), "--store", str(tmp_path / "s2"), "--json"]
    assert runner.invoke(app, args).exit_code == 0
    result = runner.invoke(app, [*args, "--embed-model", "sentence-transformers/all-MiniLM-L6-v2"])
    assert result.exit_code == 0, result.output
    assert one_json(result.stdout)["unchanged"] == 4


def test_store_path_is_a_file(runner: CliRunner, bible: Path, tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    result = runner.invoke(app, ["ingest", str(bible), "--store", str(tmp_path / "afile")])
    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: {tmp_path / 'afile'}: the store path is a file; pass a folder with --store"


def test_bad_config_value(runner: CliRunner, bible: Path, tmp_path: Path) -> None:
    (tmp_path / "b.toml").write_text("chunk_sise = 100\n")
    result = runner.invoke(app, ["ingest", str(bible), "--store", str(tmp_path / "s"), "--config", str(tmp_path / "b.toml")])
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: {tmp_path / 'b.toml'}: unknown setting 'chunk_sise' (did you mean \"chunk_size\"?)"


# ---------------------------------------------------------------- usage


def test_wrong_flag_is_one_line(bible: Path, tmp_path: Path) -> None:
    proc = b2p("ingest", str(bible), "--rebuidl", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr == "b2p ingest: no such option '--rebuidl' (did you mean '--rebuild'?)\n"
    assert proc.stdout == ""
    assert not (tmp_path / ".b2p").exists()


def test_no_bible_folder_outside_one_is_one_line(runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # not in a bible folder: BIBLE_DIR is needed
    result = runner.invoke(app, ["ingest"])
    assert result.exit_code == 2
    assert result.stderr == (f"error: no bible given, and {tmp_path.resolve()} is not in a bible folder (one with bible.yaml, "
                             "or ingested before); pass BIBLE_DIR, or run b2p inside the bible's folder\n")
    assert list(tmp_path.iterdir()) == []


def test_help(tmp_path: Path) -> None:
    started = time.monotonic()
    proc = b2p("--help", cwd=tmp_path, env={"COLUMNS": "120"})
    assert proc.returncode == 0
    for command in ("ingest", "entries", "lore"):
        assert command in proc.stdout
    assert time.monotonic() - started < 60
    proc = b2p("ingest", "--help", cwd=tmp_path, env={"COLUMNS": "120"})
    assert proc.returncode == 0
    for flag in ("--store", "--chroma-url", "--json", "--rebuild", "--embed-model", "bible_dir"):
        assert flag in proc.stdout.lower()
    proc = b2p("entries", "--help", cwd=tmp_path, env={"COLUMNS": "120"})
    assert proc.returncode == 0 and "--bible" in proc.stdout


def test_help_does_not_import_heavy_libraries() -> None:
    """``b2p --help`` must stay instant: no torch, chromadb or sentence-transformers at import."""
    code = (
        "import sys\nfrom typer.testing import CliRunner\nfrom cli import app\n"
        "r = CliRunner().invoke(app, ['--help'])\nassert r.exit_code == 0\n"
        "heavy = [m for m in ('torch', 'chromadb', 'sentence_transformers', 'llama_index', 'onnxruntime') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""
