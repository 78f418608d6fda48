"""Long sheets and long beats through the real ``b2p lore`` (issue 13): a 20k-beat sheet took 6.5 GB
(one embedding call for every beat) and a 1.2 MB beat ran past 180 s (quadratic in its length).

Memory is checked as a limit, not a figure: the 20k-beat sheet must run with its address space capped
(``RLIMIT_AS``) at what a 50-beat sheet of the same beats needed on this machine plus 1 GiB, so its
memory is flat in the sheet's size (the sheet holds one long beat: embedding all beats at once, padded
to it, needs over 8 GB). Speed is measured by ``benchmarks/long_sheets.py``, as ratios in one run.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_bad_inputs import b2p_command

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc, sets RLIMIT_AS")]

HERE = Path(__file__).resolve().parent / "bad_inputs"
SHORT = ["Jack Harlan digs at the crater rim.", "Jack radios Meridian about the dust.", "The rover stalls on the ridge.",
         "He waits for the storm to pass.", "Meridian's lights come on one by one."]
LONG = " ".join(["Jack hauls the humming core sample back across the crater floor while the dust storm builds"] * 30)  # past 256 tokens
GIB = 1 << 30
HANG_GUARD = 900.0  # not a timing: a run this long has hung (a 20k sheet takes ~40 s on two busy cores)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("long-sheets")
    shutil.copytree(HERE / "good_bible", root / "good_bible")
    proc = subprocess.run([*b2p_command(), "ingest", "good_bible", "--store", "store"], cwd=root, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    return root / "store"


def sheet(path: Path, beats: int) -> Path:
    lines = [SHORT[i % len(SHORT)] for i in range(beats)]
    lines[beats // 2] = LONG
    path.write_text("\n".join(lines) + "\n")
    return path


def lore(store: Path, beats_file: Path, limit: int | None = None, **env: str) -> tuple[subprocess.CompletedProcess[str], int]:
    """``b2p lore --json`` on the sheet, with the address space capped at ``limit`` bytes; also its VmPeak."""

    def cap() -> None:
        if limit is not None:
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    out, err = beats_file.with_suffix(".json"), beats_file.with_suffix(".err")
    with out.open("w") as stdout, err.open("w") as stderr:  # files, not pipes: nobody reads a pipe while we watch
        proc = subprocess.Popen([*b2p_command(), "lore", str(beats_file), "--bible", "good_bible", "--store", str(store), "--json"],
                                cwd=beats_file.parent, env={**os.environ, **env}, stdout=stdout, stderr=stderr, preexec_fn=cap)
        peak, deadline = 0, time.monotonic() + HANG_GUARD
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                peak = max(peak, int(re.search(r"VmPeak:\s+(\d+) kB", Path(f"/proc/{proc.pid}/status").read_text()).group(1)) * 1024)
            except (OSError, AttributeError):
                pass
            time.sleep(0.02)
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out.read_text(), err.read_text()), peak


def test_a_20k_beat_sheet_runs_in_the_memory_a_50_beat_sheet_needs_plus_1_gib(store: Path, tmp_path: Path) -> None:
    small, floor = lore(store, sheet(tmp_path / "small.txt", 50))
    assert small.returncode == 0, small.stderr
    assert floor > 0
    big, _ = lore(store, sheet(tmp_path / "big.txt", 20_000), limit=floor + GIB)
    assert big.returncode == 0, big.stderr[-2000:]
    assert "Traceback" not in big.stderr
    beats = json.loads(big.stdout)["beats"]
    assert len(beats) == 20_000 and beats[10_000]["text"] == LONG
    # Every beat got its answer, the long one too (its named entry, and the similar search ran).
    assert all(any(p["name"] == "Jack Harlan" for p in b["lore"]) for b in beats[0::5])


def test_a_beat_of_1_2_mb_is_answered_when_allowed(store: Path, tmp_path: Path) -> None:
    text = " ".join(SHORT * 7000)[:1_200_000]
    path = tmp_path / "one.txt"
    path.write_text(text + "\n")
    refused, _ = lore(store, path)
    assert refused.returncode == 2
    assert refused.stderr.splitlines() == [f"{path}:1: this beat is 1,200,000 characters long; a beat is one plot point: split it, "
                                           "or raise max_beat_chars (now 10,000)"]
    proc, _ = lore(store, path, B2P_MAX_BEAT_CHARS="2000000")  # quadratic in the beat's length, this ran past 180 s
    assert proc.returncode == 0, proc.stderr[-2000:]
    [beat] = json.loads(proc.stdout)["beats"]
    assert {p["name"] for p in beat["lore"]} >= {"Jack Harlan", "Outpost Meridian"}
