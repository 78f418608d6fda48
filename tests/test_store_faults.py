"""Faults under the store, through the real CLI: a damaged database, a full disk, a read-only store,
a Chroma server killed, hung or shared by concurrent writers, and bible names that would share a
collection. Servers are real ``chroma run`` processes on loopback (or a tiny silent socket server);
disks are real tmpfs mounts (root only: skipped elsewhere)."""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
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


# ----------------------------------------------------------------------------- a Chroma server


class ChromaRun:
    """A real ``chroma run`` on loopback that a test can kill and start again on the same data."""

    def __init__(self, root: Path) -> None:
        self.data, self.log, self.port = root / "data", root / "server.log", free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ChromaRun:
        exe = shutil.which("chroma")
        assert exe, "the 'chroma' CLI (installed with chromadb) is not on PATH"
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([exe, "run", "--path", str(self.data), "--host", "127.0.0.1", "--port", str(self.port)],
                                         stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "ANONYMIZED_TELEMETRY": "False"})
        wait_for_heartbeat(self.url, self.proc, self.log)
        return self

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def collections(self) -> list[str]:
        path = "/api/v2/tenants/default_tenant/databases/default_database/collections"
        with urllib.request.urlopen(self.url + path, timeout=10) as resp:
            return [c["name"] for c in json.load(resp)]


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[ChromaRun]:
    run = ChromaRun(tmp_path).start()
    try:
        yield run
    finally:
        run.stop()


def wait_until(what, timeout: float = 120.0, step: float = 0.05) -> None:  # noqa: ANN001 - a predicate
    deadline = time.monotonic() + timeout
    while not what():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(step)


def start_b2p(*args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(["b2p", *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    out, err = proc.communicate(timeout=600)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def stored(url: str, bible: str) -> tuple[dict[str, str], int]:
    """What the server holds for a bible, read through the library: entry name → text, and the
    chunk records (every one must belong to a current entry's content: nothing stale left)."""
    from b2p.settings import load_settings
    from b2p.store import Store

    with Store.open(load_settings(None, chroma_url=url)) as st:
        scan = st.scan(bible, with_text=True)
        for entry_id, by_hash in scan.chunk_ids.items():
            rec = scan.entries[entry_id]
            assert by_hash == {rec.entry.hash[:16]: set(range(rec.chunks))}, entry_id
        return {s.entry.name: s.entry.text for s in scan.entries.values()}, scan.chunk_count()


def test_server_killed_mid_ingest_is_one_line_and_a_rerun_repairs(server: ChromaRun, tmp_path: Path) -> None:
    bible = tmp_path / "crew"
    many_people(bible, 150)
    proc = start_b2p("ingest", "crew", "--chroma-url", server.url, cwd=tmp_path)
    wait_until(lambda: "crew" in server.collections() or proc.poll() is not None)  # made before embedding starts
    server.kill()
    line = one_line(finish(proc))
    # ConnectError for the next call; a call in flight when it died ends as RemoteProtocolError or ReadError
    assert re.fullmatch(rf"error: lost the Chroma server at {re.escape(server.url)} \((ConnectError|RemoteProtocolError|ReadError)\); "
                        r"start it again and re-run \(an interrupted ingest is repaired by running it again\)", line), line

    server.start()  # the same data, the same port
    report = json.loads(ok(b2p("ingest", "crew", "--chroma-url", server.url, "--json", cwd=tmp_path)).stdout)
    assert report["entries"] == 150
    names, chunks = stored(server.url, "crew")
    assert sorted(names) == sorted(f"Worker {i}" for i in range(150)) and chunks == report["chunks"] == 150
    assert not [c for c in server.collections() if c.startswith("b2plock-")]  # the lock was given back


def test_two_first_ingests_at_once_both_finish(server: ChromaRun, tmp_path: Path) -> None:
    many_people(tmp_path / "crew", 40)
    procs = [start_b2p("ingest", "crew", "--chroma-url", server.url, "--json", cwd=tmp_path) for _ in range(2)]
    reports = [json.loads(ok(finish(p)).stdout) for p in procs]
    assert sorted(r["added"] for r in reports) == [0, 40]  # one wrote everything; the other, after it, nothing
    names, chunks = stored(server.url, "crew")
    assert len(names) == 40 and chunks == 40
    assert [c for c in server.collections() if not c.startswith("b2plock-")] == ["crew"]


def test_concurrent_ingests_of_different_edits_leave_one_version(server: ChromaRun, tmp_path: Path) -> None:
    """Two ingests of one bible, each of a different edit, at once: the last to take the lock wins,
    whole; the lore index cached for the server never serves the other's (or a deleted) entry."""
    bible = tmp_path / "crew"
    many_people(bible, 60)
    ok(b2p("ingest", "crew", "--chroma-url", server.url, cwd=tmp_path))
    # edit 1: Worker 0 is deleted, the rest rewritten
    (bible / "characters/p0.md").unlink()
    for i in range(1, 60):
        (bible / f"characters/p{i}.md").write_text(f"---\nname: Worker {i}\n---\nWorker {i} drives a rover in the first edit.\n")
    first = start_b2p("ingest", "crew", "--chroma-url", server.url, "--json", cwd=tmp_path)
    wait_until(lambda: any(c.startswith("b2plock-") for c in server.collections()) or first.poll() is not None, step=0.02)
    # edit 2, ingested while the first still writes: Worker 0 is back, Worker 1 is gone
    (bible / "characters/p0.md").write_text("---\nname: Worker 0\n---\nWorker 0 returns in the second edit.\n")
    (bible / "characters/p1.md").unlink()
    second = start_b2p("ingest", "crew", "--chroma-url", server.url, "--json", cwd=tmp_path)
    lore = start_b2p("lore", "--bible", "crew", "--chroma-url", server.url, "--json", "--beat", "Worker 1 and Worker 0 meet.", cwd=tmp_path / "..")
    ok(finish(first))
    ok(finish(second))
    seen = {p["name"] for p in json.loads(ok(finish(lore)).stdout)["beats"][0]["lore"]}
    assert seen in ({"Worker 1"}, {"Worker 0"}, {"Worker 0", "Worker 1"})  # before, between or after the writers: never a mix

    names, chunks = stored(server.url, "crew")
    assert sorted(names) == sorted(f"Worker {i}" for i in range(60) if i != 1) and chunks == 59
    assert names["Worker 0"] == "Worker 0 returns in the second edit."
    assert all(text.endswith("in the first edit.") for n, text in names.items() if n != "Worker 0")
    after = json.loads(ok(b2p("lore", "--bible", "crew", "--chroma-url", server.url, "--json", "--beat", "Worker 1 and Worker 0 meet.",
                               cwd=tmp_path / "..")).stdout)
    assert {p["name"] for p in after["beats"][0]["lore"]} == {"Worker 0"}  # the deleted entry is never served


@pytest.fixture()
def half_silent() -> Iterator[str]:
    """A server that answers Chroma's heartbeat and then never answers anything else (a wedged Chroma)."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    release = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            if self.path.endswith("/heartbeat"):
                body = b'{"nanosecond heartbeat": 1}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            release.wait(120)  # hold the request; answer nothing

        do_POST = do_PUT = do_DELETE = do_GET  # noqa: N815

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        release.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.mark.parametrize("command", ["ingest", "entries", "lore"])
def test_server_that_stops_answering_times_out_in_one_line(half_silent: str, tmp_path: Path, command: str) -> None:
    small_bible(tmp_path / "moon")
    args = {"ingest": ["ingest", "moon"], "entries": ["entries", "--bible", "moon"], "lore": ["lore", "--bible", "moon", "--beat", "Jack digs."]}[command]
    started = time.monotonic()
    line = one_line(b2p(*args, "--chroma-url", half_silent, cwd=tmp_path, env={"B2P_CHROMA_TIMEOUT": "3"}, timeout=120))
    assert line == (f"error: the Chroma server at {half_silent} did not answer within 3 s; check that it is healthy, "
                    "or raise chroma_timeout (B2P_CHROMA_TIMEOUT)")
    assert time.monotonic() - started < 60


def test_server_frozen_mid_ingest_times_out_and_a_rerun_repairs(server: ChromaRun, tmp_path: Path) -> None:
    """SIGSTOP: the server's socket still accepts, nothing answers. Every call has a deadline."""
    many_people(tmp_path / "crew", 150)
    proc = subprocess.Popen(["b2p", "ingest", "crew", "--chroma-url", server.url], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "B2P_CHROMA_TIMEOUT": "3"})
    wait_until(lambda: "crew" in server.collections() or proc.poll() is not None)
    assert server.proc is not None
    server.proc.send_signal(signal.SIGSTOP)
    try:
        line = one_line(finish(proc))
    finally:
        server.proc.send_signal(signal.SIGCONT)
    assert line == (f"error: the Chroma server at {server.url} did not answer within 3 s; check that it is healthy, "
                    "or raise chroma_timeout (B2P_CHROMA_TIMEOUT)")
    report = json.loads(ok(b2p("ingest", "crew", "--chroma-url", server.url, "--json", cwd=tmp_path)).stdout)
    names, chunks = stored(server.url, "crew")
    assert len(names) == report["entries"] == 150 and chunks == 150


# ----------------------------------------------------------------------------- names that would share a collection


def test_non_latin_names_that_slug_alike_keep_their_own_collections(tmp_path: Path) -> None:
    make_bible(tmp_path / "книга", {"characters/ivan.md": "---\nname: Ivan\n---\nIvan keeps the ferry.\n"})
    make_bible(tmp_path / "日本の物語", {"characters/aiko.md": "---\nname: Aiko\n---\nAiko keeps the lighthouse.\n"})
    for name in ("книга", "日本の物語"):
        ok(b2p("ingest", name, "--store", "st", cwd=tmp_path))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert set(listing(["--store", "../st"], "книга", elsewhere)) == {"Ivan"}
    assert set(listing(["--store", "../st"], "日本の物語", elsewhere)) == {"Aiko"}
    lore = json.loads(ok(b2p("lore", "--bible", "книга", "--store", "../st", "--json", "--beat", "Ivan and Aiko meet.", cwd=elsewhere)).stdout)
    assert [p["name"] for p in lore["beats"][0]["lore"]] == ["Ivan"]


def test_two_folders_of_one_name_are_refused_in_one_line(tmp_path: Path) -> None:
    small_bible(tmp_path / "a" / "moon")
    make_bible(tmp_path / "b" / "moon", {"characters/ada.md": "---\nname: Ada Brenn\n---\nAda runs the ferry.\n"})
    ok(b2p("ingest", "a/moon", "--store", "st", cwd=tmp_path))
    before = listing(["--store", "st"], "moon", tmp_path)
    line = one_line(b2p("ingest", "b/moon", "--store", "st", cwd=tmp_path))
    assert line == (f"error: b/moon: the store already holds a bible 'moon' (collection 'moon') ingested from {tmp_path / 'a' / 'moon'}; "
                    "rename one of the folders, use another --store, or replace it with --rebuild")
    assert listing(["--store", "st"], "moon", tmp_path) == before  # nothing of b/moon went in
    ok(b2p("ingest", "b/moon", "--store", "st", "--rebuild", cwd=tmp_path))  # asked for: replaced
    assert set(listing(["--store", "st"], "moon", tmp_path)) == {"Ada Brenn"}
    # a bible that moved is ingested from its new place (its old folder is gone)
    shutil.rmtree(tmp_path / "b")
    shutil.copytree(tmp_path / "a" / "moon", tmp_path / "c" / "moon")
    ok(b2p("ingest", "c/moon", "--store", "st", cwd=tmp_path))
    assert set(listing(["--store", "st"], "moon", tmp_path)) == {"Jack Harlan", "Outpost Meridian"}


def test_a_store_named_the_old_way_stays_readable(tmp_path: Path) -> None:
    """Stores made before collection names carried a hash: 'Lunar Tales' was the collection
    'lunar-tales'. It is still found (its recorded folder has this name), never orphaned or re-embedded."""
    import chromadb

    from b2p.store import collection_name, legacy_name

    small_bible(tmp_path / "Lunar Tales")
    ok(b2p("ingest", "Lunar Tales", "--store", "st", cwd=tmp_path))
    old = legacy_name("Lunar Tales")
    assert (old, collection_name("Lunar Tales")[: len(old)]) == ("lunar-tales", "lunar-tales") and collection_name("Lunar Tales") != old
    client = chromadb.PersistentClient(path=str(tmp_path / "st"))
    client.get_collection(collection_name("Lunar Tales")).modify(name=old)  # as the older b2p named it
    del client
    shutil.rmtree(tmp_path / "st" / "b2p-index")

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert set(listing(["--store", "../st"], "Lunar Tales", elsewhere)) == {"Jack Harlan", "Outpost Meridian"}
    (tmp_path / "Lunar Tales/characters/jack.md").write_text("---\nname: Jack Harlan\naliases: [Jack]\n---\nJack reads rock.\n")
    report = json.loads(ok(b2p("ingest", "Lunar Tales", "--store", "st", "--json", cwd=tmp_path)).stdout)
    assert (report["added"], report["updated"], report["unchanged"]) == (0, 1, 1)  # the old collection, updated in place
    from b2p.store_names import catalog

    assert sorted(catalog(tmp_path / "st")) == ["lunar-tales"]


def test_a_project_copied_whole_is_not_a_clash(tmp_path: Path) -> None:
    small_bible(tmp_path / "one" / "moon")
    ok(b2p("ingest", "moon", "--store", "st", cwd=tmp_path / "one"))
    shutil.copytree(tmp_path / "one", tmp_path / "two")  # the bible and its store, side by side
    (tmp_path / "two/moon/characters/jack.md").write_text("---\nname: Jack Harlan\naliases: [Jack]\n---\nJack reads rock.\n")
    report = json.loads(ok(b2p("ingest", "moon", "--store", "st", "--json", cwd=tmp_path / "two")).stdout)
    assert (report["updated"], report["unchanged"]) == (1, 1)
    # and the copy's store now belongs to the copy: the original folder of that name is the clash
    line = one_line(b2p("ingest", str(tmp_path / "one" / "moon"), "--store", "st", cwd=tmp_path / "two"))
    assert f"ingested from {tmp_path / 'two' / 'moon'}" in line
