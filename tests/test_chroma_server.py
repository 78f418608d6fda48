"""The server path: ingest and read through a real ``chroma run`` on loopback (``--chroma-url``)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from b2p.errors import StoreError
from b2p.settings import Settings, load_settings
from b2p.store import Store
from ingest.pipeline import ingest_bible

BIBLES = Path(__file__).resolve().parent.parent / "story_bibles"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_heartbeat(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"chroma run exited with {proc.returncode}:\n{log.read_text(errors='replace')[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"chroma run did not answer its heartbeat within {timeout:.0f} s")


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Chroma server (``chroma run``) on a free loopback port, with its data in a temp folder."""
    exe = shutil.which("chroma")
    if exe is None:
        pytest.fail("the 'chroma' CLI (installed with chromadb) is not on PATH")
    root = tmp_path_factory.mktemp("chroma-server")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = root / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [exe, "run", "--path", str(root / "data"), "--host", "127.0.0.1", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
        )
    try:
        wait_for_heartbeat(url, proc, log)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture()
def server_settings(chroma_server: str, tmp_path: Path) -> Settings:
    # a --store that must never be created: the server replaces it
    return load_settings(None, chroma_url=chroma_server, store=tmp_path / "unused-store")


def make_bible(root: Path, entries: dict[str, str]) -> Path:
    for rel, text in entries.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    return root


def run_b2p(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["b2p", *args], cwd=cwd, capture_output=True, text=True, timeout=600, env={**os.environ, **(env or {})})


def test_ingest_through_the_server(server_settings: Settings, tmp_path: Path) -> None:
    bible = make_bible(
        tmp_path / "server_bible",
        {
            "characters/jack.md": "---\nname: Jack Halloran\naliases: [Jack, Dusty]\n---\nJack cuts regolith out of Varro Crater.\n",
            "places/meridian.md": "---\nname: Outpost Meridian\naliases: [Meridian]\n---\nA pressurised warren of modules.\n",
            "notes/style.md": "---\nname: Style\nalways: true\n---\nTerse, technical, quiet dread.\n",
        },
    )
    first = ingest_bible(bible, server_settings)
    assert (first.entries, first.added, first.updated, first.removed, first.unchanged) == (3, 3, 0, 0, 0)
    again = ingest_bible(bible, server_settings)
    assert (again.added, again.updated, again.removed, again.unchanged, again.chunks) == (0, 0, 0, 3, first.chunks)

    (bible / "places/meridian.md").write_text("---\nname: Outpost Meridian\naliases: [Meridian]\n---\nA warren of modules under regolith.\n")
    (bible / "notes/style.md").unlink()
    edited = ingest_bible(bible, server_settings)
    assert (edited.entries, edited.added, edited.updated, edited.removed, edited.unchanged) == (2, 0, 1, 1, 1)

    with Store.open(server_settings) as store:
        assert store.lock_path is None
        col = store.collection("server_bible")
        scan = store.scan("server_bible", with_text=True)
        chunks = col.get(where={"type": "chunk"}, include=[])
        meta = store.meta("server_bible")
    assert sorted(e.entry.name for e in scan.entries.values()) == ["Jack Halloran", "Outpost Meridian"]
    assert scan.entries["characters/jack"].entry.aliases == ["Jack", "Dusty"]
    assert scan.entries["places/meridian"].entry.text == "A warren of modules under regolith."
    assert len(chunks["ids"]) == edited.chunks == scan.chunk_count()
    assert meta["embed_model"] == "all-MiniLM-L6-v2"
    assert not server_settings.store.exists()


def test_chunking_mismatch_refused_on_the_server(server_settings: Settings, tmp_path: Path) -> None:
    bible = make_bible(tmp_path / "server_mismatch", {"a.md": "---\nname: A\n---\nA body.\n"})
    ingest_bible(bible, server_settings)
    with pytest.raises(StoreError, match="--rebuild"):
        ingest_bible(bible, server_settings.model_copy(update={"chunk_size": 64}))
    rebuilt = ingest_bible(bible, server_settings.model_copy(update={"chunk_size": 64}), rebuild=True)
    assert (rebuilt.added, rebuilt.entries) == (1, 1)


@pytest.mark.slow
def test_cli_ingest_entries_and_lore_through_the_server(chroma_server: str, tmp_path: Path) -> None:
    bible = tmp_path / "lunar_mining"
    shutil.copytree(BIBLES / "lunar_mining", bible)
    proc = run_b2p("ingest", str(bible), "--chroma-url", chroma_server, "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert (report["bible"], report["entries"], report["added"]) == ("lunar_mining", 17, 17)

    # the env var works as well as the flag, and an unchanged re-run embeds nothing
    proc = run_b2p("ingest", str(bible), "--json", cwd=tmp_path, env={"B2P_CHROMA_URL": chroma_server})
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["unchanged"] == 17

    proc = run_b2p("entries", "--bible", "lunar_mining", "--chroma-url", chroma_server, "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    listed = json.loads(proc.stdout)
    assert len(listed["entries"]) == 17
    assert sum(e["chunks"] for e in listed["entries"]) == report["chunks"]
    jack = next(e for e in listed["entries"] if e["name"] == "Jack Halloran")
    assert "Dusty" in jack["aliases"] and jack["kind"] == "character"

    proc = run_b2p(
        "lore", "--bible", "lunar_mining", "--chroma-url", chroma_server, "--json",
        "--beat", "Jack and Xander find an alien artifact and call Dr. Selene Thorne.", cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    ledger = json.loads(proc.stdout)
    (beat,) = ledger["beats"]
    names = {p["name"]: p["reason"] for p in beat["lore"]}
    assert names.get("Jack Halloran") == "named" and names.get("Dr. Selene Thorne") == "named"
    assert names.get("Style") == "always"

    proc = run_b2p("lore", "--bible", "lunar_minin", "--chroma-url", chroma_server, "--beat", "Jack digs.", cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().startswith("error: no bible 'lunar_minin'") and 'did you mean "lunar_mining"' in proc.stderr
    assert not (tmp_path / ".b2p").exists()  # nothing local was made


@pytest.mark.parametrize("command", ["ingest", "entries", "lore"])
def test_dead_server_url(tmp_path: Path, command: str) -> None:
    """A port nothing listens on: one clear line, non-zero exit, no traceback, nothing written locally."""
    dead = f"http://127.0.0.1:{free_port()}"
    bible = tmp_path / "bible"
    make_bible(bible, {"a.md": "---\nname: A\n---\nA body.\n"})
    args = {
        "ingest": ["ingest", str(bible)],
        "entries": ["entries", "--bible", "bible"],
        "lore": ["lore", "--bible", "bible", "--beat", "A walks in."],
    }[command]
    started = time.monotonic()
    proc = run_b2p(*args, "--chroma-url", dead, cwd=tmp_path)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    lines = [ln for ln in proc.stderr.splitlines() if not ln.startswith("warning:")]
    assert lines == [lines[0]] and lines[0].startswith(f"error: cannot reach the Chroma server at {dead}")
    assert "chroma run" in lines[0]
    assert time.monotonic() - started < 120
    assert not (tmp_path / ".b2p").exists()


def test_url_that_is_not_a_url(tmp_path: Path) -> None:
    proc = run_b2p("entries", "--bible", "x", "--chroma-url", "localhost:8000", cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == "error: --chroma-url 'localhost:8000' is not a URL like http://127.0.0.1:8000"
