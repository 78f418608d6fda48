"""Faults under the store, through the real CLI: a damaged database, a full disk, a read-only store,
a Chroma server killed, hung or shared by concurrent writers, and bible names that would share a
collection. Servers are real ``chroma run`` processes on loopback (or a tiny silent socket server);
disks are real tmpfs mounts (root only: skipped elsewhere)."""

from __future__ import annotations

import contextlib
import json
import os
import random
import shlex
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_chroma_server import free_port, make_bible, wait_for_heartbeat

pytestmark = pytest.mark.slow

WORDS = "ore drill shift tunnel lamp dust crater hauler rover seal airlock ration radio quiet storm ridge valley copper iron signal".split()


def b2p(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["b2p", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})


def one_line(proc: subprocess.CompletedProcess[str]) -> str:
    """The single error line a failing command printed (and nothing else, no traceback)."""
    shown = f"exit {proc.returncode}\n{proc.stderr}"
    assert proc.returncode != 0, shown
    assert "Traceback" not in proc.stderr + proc.stdout, shown
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip() and not ln.startswith(("waiting for", "warning:"))]
    assert len(lines) == 1 and lines[0].startswith("error: "), shown
    return lines[0]


def ok(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return proc


def listing(store_args: list[str], bible: str, cwd: Path) -> dict[str, tuple[int, int]]:
    """name → (chunks, tokens), as `b2p entries --json` reports them."""
    got = json.loads(ok(b2p("entries", "--bible", bible, *store_args, "--json", cwd=cwd)).stdout)
    return {e["name"]: (e["chunks"], e["tokens"]) for e in got["entries"]}


def small_bible(root: Path) -> Path:
    return make_bible(root, {
        "characters/jack.md": "---\nname: Jack Harlan\naliases: [Jack]\n---\nJack is a miner who reads the ground by feel.\n",
        "places/meridian.md": "---\nname: Outpost Meridian\naliases: [Meridian]\n---\nMeridian is a warren of pressurised modules.\n",
    })


def long_entries(root: Path, n: int, sentences: int, seed: int = 1) -> None:
    r = random.Random(seed)
    for i in range(n):
        body = " ".join(" ".join(r.choice(WORDS) for _ in range(14)).capitalize() + "." for _ in range(sentences))
        (root / "lore").mkdir(parents=True, exist_ok=True)
        (root / "lore" / f"long{i}.md").write_text(f"---\nname: Long {i}\n---\n{body}\n", encoding="utf-8")


def many_people(root: Path, n: int, start: int = 0) -> None:
    (root / "characters").mkdir(parents=True, exist_ok=True)
    for i in range(start, start + n):
        (root / "characters" / f"p{i}.md").write_text(
            f"---\nname: Worker {i}\n---\nWorker {i} runs hauler {i} on the {WORDS[i % len(WORDS)]} shift and keeps to herself.\n",
            encoding="utf-8")


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A real tmpfs of ``size`` mounted at ``path`` (root only)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    path.mkdir(parents=True, exist_ok=True)
    got = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True, text=True)
    if got.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {got.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def remount(path: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(path)], check=True, capture_output=True)


# ----------------------------------------------------------------------------- a damaged database


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_damaged_store_says_how_to_rebuild_and_the_command_works(tmp_path: Path, damage: str) -> None:
    bible = small_bible(tmp_path / "moon")
    ok(b2p("ingest", "moon", "--store", "st", cwd=tmp_path))
    db = tmp_path / "st" / "chroma.sqlite3"
    if damage == "garbage":
        db.write_bytes(random.Random(7).randbytes(db.stat().st_size))
    else:
        with open(db, "r+b") as fh:
            fh.truncate(db.stat().st_size // 3)
    damaged = db.read_bytes()

    for args in (["lore", "--bible", "moon", "--store", "st", "--beat", "Jack walks in."], ["entries", "--bible", "moon", "--store", "st"]):
        line = one_line(b2p(*args, cwd=tmp_path))
        assert line.startswith("error: st/chroma.sqlite3: the store is damaged (")
        assert "'b2p ingest moon --store st --rebuild'" in line  # --bible named the folder
    (bible / "characters/jack.md").write_text("---\nname: Jack Harlan\naliases: [Jack]\n---\nJack reads rock.\n")
    line = one_line(b2p("ingest", "moon", "--store", "st", cwd=tmp_path))
    command = line.split("rebuild it with '", 1)[1].split("'", 1)[0]
    assert command == "b2p ingest moon --store st --rebuild"

    # the command it names works: the damaged store is kept aside, a new one built
    rebuilt = ok(b2p(*shlex.split(command)[1:], "--json", cwd=tmp_path))
    assert json.loads(rebuilt.stdout)["added"] == 2
    assert "moved the damaged store st to st.damaged" in rebuilt.stderr
    assert (tmp_path / "st.damaged" / "chroma.sqlite3").read_bytes() == damaged  # kept as it was, for whoever wants to look
    assert set(listing(["--store", "st"], "moon", tmp_path)) == {"Jack Harlan", "Outpost Meridian"}
    lore = ok(b2p("lore", "--bible", "moon", "--store", "st", "--beat", "Jack walks in.", cwd=tmp_path))
    assert "Jack Harlan" in lore.stdout


# ----------------------------------------------------------------------------- a full disk


def test_disk_full_during_ingest_is_one_line_and_the_store_recovers(tmp_path: Path) -> None:
    bible = small_bible(tmp_path / "moon")
    with tmpfs(tmp_path / "disk", "1m") as disk:
        ok(b2p("ingest", "moon", "--store", str(disk / "st"), cwd=tmp_path))
        before = listing(["--store", str(disk / "st")], "moon", tmp_path)
        long_entries(bible, 3, 300)  # ~90 chunks: far more than the disk has room for
        line = one_line(b2p("ingest", "moon", "--store", str(disk / "st"), cwd=tmp_path))
        assert line == (f"error: {disk / 'st'}: the disk is full; free some space and run the command again "
                        "(an interrupted ingest is repaired by running it again)")
        assert before  # (what a disk-full ingest leaves is repaired below)
        remount(disk, "size=64m")  # space freed
        again = json.loads(ok(b2p("ingest", "moon", "--store", str(disk / "st"), "--json", cwd=tmp_path)).stdout)
        assert again["entries"] == 5
        repaired = listing(["--store", str(disk / "st")], "moon", tmp_path)

    # exactly what a clean ingest of the same bible holds
    ok(b2p("ingest", "moon", "--store", "clean", cwd=tmp_path))
    assert repaired == listing(["--store", "clean"], "moon", tmp_path)
    assert sum(c for c, _ in repaired.values()) == again["chunks"]


# ----------------------------------------------------------------------------- a read-only store


def test_read_only_store_serves_reads_and_refuses_writes_in_one_line(tmp_path: Path) -> None:
    small_bible(tmp_path / "moon")
    with tmpfs(tmp_path / "ro", "8m") as disk:
        ok(b2p("ingest", "moon", "--store", str(disk / "st"), cwd=tmp_path))
        shutil.copytree(disk / "st", disk / "noindex")
        shutil.rmtree(disk / "noindex" / "b2p-index")
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        want = listing(["--store", str(disk / "st")], "moon", elsewhere)
        remount(disk, "ro")
        for store in ("st", "noindex"):  # with its lore index, and without one (read through a copy)
            args = ["--store", str(disk / store)]
            assert listing(args, "moon", elsewhere) == want
            lore = json.loads(ok(b2p("lore", "--bible", "moon", *args, "--json", "--beat", "Jack walks into Meridian.", cwd=elsewhere)).stdout)
            assert {p["name"] for p in lore["beats"][0]["lore"]} >= {"Jack Harlan", "Outpost Meridian"}
        # an unchanged bible: ingest has nothing to write, so it works too
        ok(b2p("ingest", "moon", "--store", str(disk / "st"), cwd=tmp_path))
        lore = ok(b2p("lore", "--bible", "moon", "--store", str(disk / "st"), "--beat", "Jack walks in.", cwd=tmp_path))
        assert "Jack Harlan" in lore.stdout
        # a changed one: one line
        (tmp_path / "moon/characters/jack.md").write_text("---\nname: Jack Harlan\n---\nJack reads rock.\n")
        line = one_line(b2p("ingest", "moon", "--store", str(disk / "st"), cwd=tmp_path))
        assert line == (f"error: {disk / 'st'}: the store is read-only; ingest needs to write to it "
                        "(b2p lore and b2p entries read it as it is)")
        assert one_line(b2p("lore", "--bible", "moon", "--store", str(disk / "st"), "--beat", "Jack walks in.", cwd=tmp_path)) == line
