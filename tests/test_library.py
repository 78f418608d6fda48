"""b2p as a library: the README's example runs as written, and ``import b2p`` stays light."""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
HEAVY = ("chromadb", "torch", "sentence_transformers", "llama_cpp", "llama_index", "onnxruntime", "openai", "typer", "rich", "ingest")


def readme_example() -> str:
    """The Python block of the README's library section."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Using b2p from Python", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 1, "the library section holds one example"
    return blocks[0]


def run_python(code: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "PYTHONPATH": str(REPO), **env})


def test_import_b2p_loads_no_heavy_library(tmp_path: Path) -> None:
    code = ("import sys, json, b2p\n"
            f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
            "b2p.lore_for, b2p.write_chapter, b2p.Events\n"  # resolving the names imports only b2p's own modules
            f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n")
    proc = run_python(code, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert [json.loads(line) for line in proc.stdout.splitlines()] == [[], []]


@pytest.mark.slow
def test_the_readme_library_example_runs_as_written(tmp_path: Path) -> None:
    shutil.copytree(REPO / "story_bibles" / "lunar_mining", tmp_path / "story_bibles" / "lunar_mining")
    # One llama.cpp thread: on a busy 2-core machine two threads spin against each other.
    proc = run_python(readme_example(), tmp_path, B2P_N_THREADS="1", B2P_SEED="3")  # the store: the bible's own
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "story_bibles" / "lunar_mining" / ".b2p" / "chroma.sqlite3").is_file() and not (tmp_path / ".b2p").exists()
    *ledger, summary, evaluated = proc.stdout.strip().splitlines()
    picks = [ast.literal_eval(line.split(" ", 1)[1]) for line in ledger]
    assert ("Jack Halloran", "named") in picks[0] and ("Xander Voss", "named") in picks[0] and ("The Lantern", "named") in picks[1]
    assert re.fullmatch(r"2 beats, \d+ tokens", summary)
    coverage, debris = evaluated.split(" ", 1)
    assert 0.0 <= float(coverage) <= 1.0 and len(ast.literal_eval(debris)) == 2  # b2p.evaluate measured both beats
    trace = json.loads((tmp_path / "two_beats.trace.json").read_text(encoding="utf-8"))
    assert [[(p["name"], p["reason"]) for p in b["lore"]] for b in trace["beats"]] == picks  # the chapter used lore_for's lore
    chapter = (tmp_path / "two_beats.md").read_text(encoding="utf-8")
    assert trace["complete"] and all(b["text"] in chapter for b in trace["beats"])
    assert all(b["eval"]["coverage"] is not None for b in trace["beats"])  # and kept its figures in the trace


def test_list_entries_is_what_b2p_entries_lists(sample_store) -> None:  # noqa: ANN001
    """``b2p.list_entries`` is the library side of ``b2p entries``: the same entries, in the same order."""
    from typer.testing import CliRunner

    import b2p
    from cli import app

    name, rows = b2p.list_entries("drowned_archive", sample_store)
    listed = CliRunner().invoke(app, ["entries", "--bible", "drowned_archive", "--store", str(sample_store.store), "--json"])
    assert listed.exit_code == 0, listed.stderr
    shown = json.loads(listed.stdout)
    assert name == shown["bible"] == "drowned_archive"
    assert [(s.entry.name, s.chunks) for s in rows] == [(e["name"], e["chunks"]) for e in shown["entries"]]
    assert rows and [(s.entry.kind, s.entry.name) for s in rows] == sorted((s.entry.kind, s.entry.name) for s in rows)
