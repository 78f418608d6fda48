"""What b2p prints is data: text from bibles, beats and models reaches the terminal as written, with
control characters visible and nothing read as rich markup; tables use the terminal's width and,
when piped, become plain tab-separated lines that are never wrapped or cut.

Every case runs the real ``b2p`` command, piped and on a real pseudo-terminal.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

OSC = "\x1b]0;owned\x07"
MARKUP_NAME = "Vell [bold]Ashgrove[/bold] [/aside]"
LONG_ALIASES = [f"the keeper of the {w} gate" for w in ("north", "south", "east", "west", "salt", "bone", "river")]
ANSI_SGR = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def b2p() -> list[str]:
    exe = Path(sys.executable).with_name("b2p")
    return [str(exe)] if exe.exists() else [sys.executable, "-c", "from cli import main; main()"]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("terminal")
    bible = root / "marsh"
    (bible / "characters").mkdir(parents=True)
    (bible / "characters" / "vell.md").write_text(
        f"---\nname: {json.dumps(MARKUP_NAME)}\naliases: [Vell, {json.dumps('Lamp' + OSC)}, {', '.join(json.dumps(a) for a in LONG_ALIASES)}]\n---\n"
        "Vell is the lamplighter of the marsh [link=http://example.invalid]village[/link]. She keeps the dykes.\n", encoding="utf-8")
    (bible / "places").mkdir()
    (bible / "places" / "dyke.md").write_text("---\nname: Long Dyke\n---\nLong Dyke is the earth wall that holds the sea back from the marsh.\n",
                                             encoding="utf-8")
    env = _env(root)
    done = subprocess.run([*b2p(), "ingest", str(bible), "--store", str(root / ".b2p")], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return root


def _env(root: Path, columns: int | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env["B2P_STORE"] = str(root / ".b2p")
    if columns:
        env["COLUMNS"] = str(columns)
    return env


def run_piped(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([*b2p(), *args], env=_env(project), capture_output=True, text=True, timeout=300, cwd=project)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def run_on_terminal(project: Path, *args: str, columns: int = 100) -> str:
    """Run with stdout and stderr on a pseudo-terminal of ``columns`` columns; everything it printed."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    env = _env(project)
    env["TERM"] = "xterm-256color"
    proc = subprocess.Popen([*b2p(), *args], env=env, stdin=subprocess.DEVNULL, stdout=follower, stderr=follower, cwd=project)
    os.close(follower)
    out = b""
    while True:
        try:
            piece = os.read(leader, 65536)
        except OSError:  # the follower side closed: the process is done writing
            break
        if not piece:
            break
        out += piece
    os.close(leader)
    assert proc.wait(timeout=300) == 0
    text = out.decode("utf-8", "replace")
    assert "Traceback" not in text, text
    return text


def test_markup_and_escapes_in_entries_are_shown_literally_when_piped(project: Path) -> None:
    for args in (("entries", "--bible", "marsh"), ("lore", "--beat", "Vell walks the Long Dyke at dusk [bold]x[/bold] " + OSC, "--bible", "marsh")):
        proc = run_piped(project, *args)
        assert proc.returncode == 0, proc.stderr
        out = proc.stdout
        assert "\x1b" not in out and "\x07" not in out
        assert "\\x1b]0;owned\\x07" in out
        assert MARKUP_NAME in out  # "[/aside]" once crashed rich; "[bold]" was obeyed


def test_piped_tables_are_tab_separated_and_never_cut(project: Path) -> None:
    proc = run_piped(project, "entries", "--bible", "marsh")
    lines = proc.stdout.splitlines()
    header = lines[1].split("\t")
    assert header[:3] == ["entry", "kind", "aliases"]
    row = next(ln for ln in lines if ln.startswith(MARKUP_NAME)).split("\t")
    assert len(row) == len(header)
    assert all(a in row[2] for a in LONG_ALIASES)  # far past 80 columns, on one line, whole
    assert "…" not in proc.stdout


def test_on_a_terminal_nothing_is_obeyed_and_tables_use_its_width(project: Path) -> None:
    wide = run_on_terminal(project, "entries", "--bible", "marsh", columns=220)
    assert "\x1b]" not in wide and "\x07" not in wide  # no OSC from the bible reached the terminal
    plain = ANSI_SGR.sub("", wide)
    assert MARKUP_NAME in plain and "\\x1b]0;owned\\x07" in plain
    assert "…" not in plain
    widest = max(len(ln) for ln in plain.splitlines())
    narrow = ANSI_SGR.sub("", run_on_terminal(project, "entries", "--bible", "marsh", columns=70))
    assert max(len(ln) for ln in narrow.splitlines()) <= 70 < widest  # folded to the terminal, not to a fixed 80
    folded = "".join(narrow.split())
    for alias in LONG_ALIASES:
        assert "".join(alias.split()) in folded.replace("│", "").replace(",", "")  # folded, not cut

    ledger = ANSI_SGR.sub("", run_on_terminal(project, "lore", "--beat", "Vell lights the lamps [/aside] " + OSC, "--bible", "marsh"))
    assert "[/aside]" in ledger and "\\x1b]0;owned\\x07" in ledger


def test_model_text_streamed_to_the_terminal_has_its_controls_shown(project: Path, fault_server, tmp_path: Path) -> None:  # noqa: ANN001
    fault_server.text = f"Vell lit the lamp{OSC} and the marsh went gold [bold]bright[/bold]."
    sheet = tmp_path / "sheet.txt"
    sheet.write_text("Vell lights the lamps on the Long Dyke.\n", encoding="utf-8")
    proc = run_piped(project, "generate", str(sheet), "--bible", "marsh", "--llm", "openai", "--base-url", fault_server.url,
                     "--stream", "--words-per-beat", "30")
    assert proc.returncode == 0, proc.stderr
    assert "\x1b" not in proc.stderr + proc.stdout
    assert "\\x1b]0;owned\\x07" in proc.stderr  # streamed, visible
    assert "[bold]bright[/bold]" in proc.stdout + proc.stderr
    assert "Vell lit the lamp and the marsh" in proc.stdout  # the saved chapter keeps the prose, not the escape
