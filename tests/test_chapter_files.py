"""The writer's files are the truth: hand edits in a chapter survive every rewrite, damaged chapters are
refused with nothing written, and ``-o`` replaces only a chapter of this beat sheet.

Every test drives the real CLI (or, where the writer acts mid-run, the library) against the scriptable
OpenAI-compatible server on loopback: what is under test is the files, not the model's words.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from b2p.chapterfile import close_marker, open_marker, read_chapter
from b2p.settings import Settings
from b2p.trace import trace_path
from cli import app
from tests.plugins.servers import OK_TEXT

REPO = Path(__file__).resolve().parent.parent
SHEET = """\
1. Jack and Xander dig at Varro Crater, tense and expectant.
2. They uncover the Lantern, a strange artifact that hums.
3. Jack calls Dr. Selene Thorne at Outpost Meridian.
"""
MINE = "Jack swore at the drill, and Xander laughed until the dust got in his teeth."
NEW = "A second draft rolled in with the night shift."
runner = CliRunner()


@pytest.fixture(scope="module")
def proj(tmp_path_factory: pytest.TempPathFactory, sample_store: Settings) -> Path:
    root = tmp_path_factory.mktemp("chapters")
    (root / "sheet.txt").write_text(SHEET, encoding="utf-8")
    (root / "b2p.toml").write_text(f'store = "{sample_store.store}"\nbudget = 400\nretries = 0\ntimeout = 20\nredrafts = 0\n', encoding="utf-8")
    return root


def gen(proj: Path, server, out: Path | str, *extra: str, sheet: Path | None = None, input: str | None = None):  # noqa: ANN001, ANN201, A002
    args = ["generate", str(sheet or proj / "sheet.txt"), "--bible", "lunar_mining", "--config", str(proj / "b2p.toml"),
            "--llm", "openai", "--base-url", server.url, "--words-per-beat", "30", "--no-stream", "-o", str(out), *extra]
    result = runner.invoke(app, args, input=input)
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    return result


def trace_of(out: Path) -> dict:
    return json.loads(trace_path(out).read_text(encoding="utf-8"))


def block(text: str, k: int) -> str:
    """Beat k's lines, markers included, as they are in ``text``."""
    m = re.search(rf"^[^\n]*<!-- b2p beat {k} -->.*?<!-- /b2p beat {k} -->[^\n]*$", text, re.S | re.M)
    assert m, f"no block {k} in {text!r}"
    return m.group(0)


def edit_beat(out: Path, k: int, prose: str) -> None:
    text = out.read_text(encoding="utf-8")
    out.write_text(text.replace(block(text, k), f"{open_marker(k)}\n{prose}\n{close_marker(k)}"), encoding="utf-8")


def one_line_error(result, *words: str) -> str:  # noqa: ANN001
    assert result.exit_code not in (0, None), result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


def fingerprint(*paths: Path) -> list[bytes | None]:
    return [p.read_bytes() if p.exists() else None for p in paths]


def request_texts(server) -> list[str]:  # noqa: ANN001
    return ["\n".join(m["content"] for m in r.body.get("messages", [])) for r in server.requests]


@pytest.fixture
def chapter(proj: Path, fault_server, tmp_path: Path) -> Path:  # noqa: ANN001
    """A finished three-beat chapter, written by the real CLI."""
    out = tmp_path / "seq.md"
    result = gen(proj, fault_server, out)
    assert result.exit_code == 0, result.stderr
    return out


# -- the file and its markers -----------------------------------------------------------------------


def test_each_beat_is_between_markers_that_rendered_markdown_never_shows(chapter: Path) -> None:
    text = chapter.read_text(encoding="utf-8")
    assert text.startswith("# The Lantern at Site Nine\n\n<!-- b2p beat 1 -->\n")
    for k in (1, 2, 3):
        assert block(text, k) == f"{open_marker(k)}\n{OK_TEXT}\n{close_marker(k)}"
    doc = read_chapter(chapter)
    assert doc.beats == {1: OK_TEXT, 2: OK_TEXT, 3: OK_TEXT}
    assert [b["saved_sha256"] for b in trace_of(chapter)["beats"]] == [hashlib.sha256(OK_TEXT.encode()).hexdigest()] * 3
    from markdown_it import MarkdownIt  # rich's own Markdown parser, CommonMark

    html = MarkdownIt().render(text)
    shown = re.sub(r"<!--.*?-->", "", html, flags=re.S)
    assert "b2p" not in shown and shown.count(OK_TEXT) == 3


def test_an_edited_beat_and_the_writers_own_text_survive_only_of_another_beat(proj: Path, fault_server, chapter: Path) -> None:  # noqa: ANN001
    edit_beat(chapter, 1, MINE)
    text = chapter.read_text(encoding="utf-8")
    text = "Draft two: check the crater's name.\n\n" + text
    text = text.replace(close_marker(1) + "\n", close_marker(1) + "\n\n* * *\n", 1) + "\nTHE END (for now)\n"
    chapter.write_text(text, encoding="utf-8")
    before = chapter.read_text(encoding="utf-8")
    fault_server.text = NEW
    asked = fault_server.count

    result = gen(proj, fault_server, chapter, "--only", "2")
    assert result.exit_code == 0, result.stderr
    assert "kept your edits to beat 1" in result.stderr
    after = chapter.read_text(encoding="utf-8")
    assert block(after, 2) == f"{open_marker(2)}\n{NEW}\n{close_marker(2)}"
    assert after.replace(block(after, 2), "B2") == before.replace(block(before, 2), "B2")  # every other byte as it was
    beat2_prompt = request_texts(fault_server)[asked]
    assert MINE in beat2_prompt and OK_TEXT not in beat2_prompt.split("Jack and Xander dig")[0]  # the story so far is the writer's
    beats = trace_of(chapter)["beats"]
    assert (beats[0]["text"], beats[0]["edited"], beats[0]["edited_in"], beats[0]["draft"]) == (MINE, True, "chapter", OK_TEXT)
    assert beats[1]["text"] == NEW and not beats[1]["edited"] and beats[2]["text"] == OK_TEXT

    result = gen(proj, fault_server, chapter, "--only", "3")  # the edit stays recorded, and stays put
    assert result.exit_code == 0 and "kept your edits" not in result.stderr
    final = chapter.read_text(encoding="utf-8")
    assert block(final, 1) == f"{open_marker(1)}\n{MINE}\n{close_marker(1)}"
    assert final.startswith("Draft two: check the crater's name.\n\n# The Lantern")
    assert "\n* * *\n" in final and final.endswith("\nTHE END (for now)\n")


def test_only_on_an_edited_beat_refuses_without_force(proj: Path, fault_server, chapter: Path) -> None:  # noqa: ANN001
    edit_beat(chapter, 2, MINE)
    saved = fingerprint(chapter, trace_path(chapter))
    asked = fault_server.count
    line = one_line_error(gen(proj, fault_server, chapter, "--only", "2"), "beat 2 was edited by hand", "--force")
    assert "--only 2" in line
    assert fingerprint(chapter, trace_path(chapter)) == saved and fault_server.count == asked  # nothing written, nothing asked
    one_line_error(gen(proj, fault_server, chapter), "beat 2 was edited by hand")  # nor by running the whole chapter again

    fault_server.text = NEW
    result = gen(proj, fault_server, chapter, "--only", "2", "--force")
    assert result.exit_code == 0, result.stderr
    assert "replacing your edited beat 2" in result.stderr
    assert read_chapter(chapter).beats[2] == NEW
    beat = trace_of(chapter)["beats"][1]
    assert beat["text"] == NEW and not beat["edited"]


def test_an_edit_made_with_an_editor_that_adds_crlf_and_spaces_is_not_an_edit(proj: Path, fault_server, chapter: Path) -> None:  # noqa: ANN001
    text = chapter.read_text(encoding="utf-8")
    text = text.replace(f"{OK_TEXT}\n", f"\n{OK_TEXT}   \n\n", 1)  # blank lines and trailing spaces inside beat 1
    chapter.write_bytes(text.replace("\n", "\r\n").encode("utf-8"))
    result = gen(proj, fault_server, chapter, "--only", "3")
    assert result.exit_code == 0, result.stderr
    assert "kept your edits" not in result.stderr
    assert not any(b["edited"] for b in trace_of(chapter)["beats"])
    raw = chapter.read_bytes()
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")  # still CRLF throughout


DAMAGE = {
    "unclosed": lambda t: t.replace(close_marker(2) + "\n", "", 1),
    "duplicated": lambda t: t + f"\n{open_marker(2)}\nAgain.\n{close_marker(2)}\n",
    "out of order": lambda t: t.replace(open_marker(1), "@@").replace(open_marker(3), open_marker(1)).replace("@@", open_marker(3))
    .replace(close_marker(1), "%%").replace(close_marker(3), close_marker(1)).replace("%%", close_marker(3)),
    "mismatched": lambda t: t.replace(close_marker(2), close_marker(3), 1),
    "missing": lambda t: t.replace(open_marker(2) + "\n", "").replace(close_marker(2) + "\n", ""),
    "not in the trace": lambda t: t + f"\n{open_marker(9)}\nExtra.\n{close_marker(9)}\n",
    "mid-line": lambda t: t.replace(f"{OK_TEXT}\n{close_marker(1)}", f"{OK_TEXT} {close_marker(1)}", 1),
    "all removed": lambda t: re.sub(r"<!--.*?-->\n", "", t) + "My own last line.\n",
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_markers_are_refused_with_nothing_written(proj: Path, fault_server, chapter: Path, damage: str) -> None:  # noqa: ANN001
    chapter.write_text(DAMAGE[damage](chapter.read_text(encoding="utf-8")), encoding="utf-8")
    saved = fingerprint(chapter, trace_path(chapter))
    asked = fault_server.count
    for flags in (["--only", "2"], ["--resume"], [], ["--only", "3", "--force"]):
        line = one_line_error(gen(proj, fault_server, chapter, *flags), str(chapter))
        assert "nothing was written" in line and "--resume" in line, line
        assert fingerprint(chapter, trace_path(chapter)) == saved, flags  # byte for byte
    assert fault_server.count == asked
    assert not list(chapter.parent.glob(".*.tmp"))


def test_a_chapter_from_before_markers_resumes_when_unedited_and_is_refused_when_edited(proj: Path, fault_server, tmp_path: Path) -> None:  # noqa: ANN001
    out = tmp_path / "old.md"
    fault_server.script(["ok", "500"])  # beat 1, then a failure: a partial chapter
    assert gen(proj, fault_server, out).exit_code != 0
    old_style = f"# The Lantern at Site Nine\n\n{OK_TEXT}\n"  # how b2p rendered it before beats were marked
    out.write_text(old_style, encoding="utf-8")
    result = gen(proj, fault_server, out, "--resume")
    assert result.exit_code == 0, result.stderr
    assert read_chapter(out).beats == {1: OK_TEXT, 2: OK_TEXT, 3: OK_TEXT}

    other = tmp_path / "old-edited.md"
    fault_server.script(["ok", "500"])
    gen(proj, fault_server, other)
    other.write_text(f"# The Lantern at Site Nine\n\n{MINE}\n", encoding="utf-8")
    saved = fingerprint(other, trace_path(other))
    line = one_line_error(gen(proj, fault_server, other, "--resume"), "no b2p beat markers", "nothing was written", "move the file aside")
    assert str(other) in line and fingerprint(other, trace_path(other)) == saved


def test_resume_keeps_an_edit_to_a_partial_chapter(proj: Path, fault_server, tmp_path: Path) -> None:  # noqa: ANN001
    out = tmp_path / "partial.md"
    fault_server.script(["ok", "500"])
    assert gen(proj, fault_server, out).exit_code != 0
    edit_beat(out, 1, MINE)
    out.write_text(out.read_text(encoding="utf-8") + "\nA note to self.\n", encoding="utf-8")
    asked = fault_server.count
    result = gen(proj, fault_server, out, "--resume")
    assert result.exit_code == 0, result.stderr
    assert "kept your edits to beat 1" in result.stderr
    text = out.read_text(encoding="utf-8")
    assert read_chapter(out).beats == {1: MINE, 2: OK_TEXT, 3: OK_TEXT}
    assert text.endswith("\nA note to self.\n") and text.index(close_marker(3)) < text.index("A note to self.")
    assert MINE in request_texts(fault_server)[asked]  # beat 2's story so far is the edited beat 1
    assert trace_of(out)["beats"][0]["edited_in"] == "chapter" and trace_of(out)["complete"]


def test_an_interactive_session_keeps_edits_made_before_and_during_it(proj: Path, fault_server, tmp_path: Path) -> None:  # noqa: ANN001
    out = tmp_path / "interactive.md"
    fault_server.script(["ok", "500"])
    assert gen(proj, fault_server, out).exit_code != 0
    edit_beat(out, 1, MINE)
    result = gen(proj, fault_server, out, "--resume", "--mode", "interactive", input="a\na\n")
    assert result.exit_code == 0, result.stderr
    assert read_chapter(out).beats == {1: MINE, 2: OK_TEXT, 3: OK_TEXT}

    # The writer edits the file in another window while the session waits for them.
    import b2p
    from b2p.settings import load_settings

    later = "Later, Jack admitted the drill had been his fault."

    class Author:
        asked = 0

        def stream(self, piece: str) -> None: ...
        def show(self, text: str) -> None: ...
        def edit(self, text: str) -> str:
            return text

        def ask(self, question: str) -> str:
            self.asked += 1
            if self.asked == 1:
                edit_beat(out, 3, later)
            return "a"

    settings = load_settings(proj / "b2p.toml", llm="openai", base_url=fault_server.url, mode="interactive", stream=False, words_per_beat=30)
    b2p.write_chapter(proj / "sheet.txt", "lunar_mining", settings, out=out, only=[2], interaction=Author())
    assert read_chapter(out).beats == {1: MINE, 2: OK_TEXT, 3: later}
    beats = trace_of(out)["beats"]
    assert [b["edited_in"] for b in beats] == ["chapter", None, "chapter"] and beats[2]["text"] == later


def test_a_yes_on_the_terminal_replaces_an_edited_beat_and_a_no_keeps_it(proj: Path, fault_server, chapter: Path) -> None:  # noqa: ANN001
    import b2p
    from b2p.errors import ConfigError
    from b2p.settings import load_settings

    edit_beat(chapter, 1, MINE)
    settings = load_settings(proj / "b2p.toml", llm="openai", base_url=fault_server.url, stream=False, words_per_beat=30)
    questions: list[str] = []
    with pytest.raises(ConfigError, match="edited by hand"):
        b2p.write_chapter(proj / "sheet.txt", "lunar_mining", settings, out=chapter, only=[1], confirm=lambda q: questions.append(q) or False)
    assert read_chapter(chapter).beats[1] == MINE and "replace your text?" in questions[0]
    fault_server.text = NEW
    b2p.write_chapter(proj / "sheet.txt", "lunar_mining", settings, out=chapter, only=[1], confirm=lambda q: True)
    assert read_chapter(chapter).beats[1] == NEW


# -- what -o may name ------------------------------------------------------------------------------------


def test_resume_and_only_refuse_a_chapter_that_has_no_trace_with_a_did_you_mean(proj: Path, fault_server, chapter: Path) -> None:  # noqa: ANN001
    typo = chapter.with_name("seqq.md")
    for flags in (["--resume"], ["--only", "2"]):
        line = one_line_error(gen(proj, fault_server, typo, *flags), "no trace at", f'did you mean "{chapter}"')
        assert flags[0] in line
    assert not typo.exists() and not trace_path(typo).exists()


def test_o_refuses_what_is_not_a_chapter_of_this_sheet_unless_forced(proj: Path, fault_server, chapter: Path, tmp_path: Path) -> None:  # noqa: ANN001
    notes = tmp_path / "notes.md"
    notes.write_text("My notes, not b2p's.\n", encoding="utf-8")
    other_sheet = tmp_path / "other.txt"
    other_sheet.write_text("Xander walks alone.\n", encoding="utf-8")
    link = tmp_path / "link.md"
    link.symlink_to(notes)
    sheet = proj / "sheet.txt"
    entry = REPO / "story_bibles" / "lunar_mining" / "characters" / "jack_halloran.md"
    assert entry.is_file()
    cases = [
        (notes, "was not written by b2p"),
        (sheet, "is the beat sheet itself"),
        (link, "symbolic link"),
    ]
    for target, why in cases:
        before = fingerprint(target, notes, sheet)
        line = one_line_error(gen(proj, fault_server, target), why, "--force")
        assert fingerprint(target, notes, sheet) == before, line
    line = one_line_error(gen(proj, fault_server, chapter, sheet=other_sheet), "is a chapter of another beat sheet", "--force")
    # A bible's files, and a new chapter where ingest would read it as an entry (--bible names the folder here).
    for target, why in ((entry, "is a file of the bible"), (entry.with_name("chapter.md"), "where ingest would read")):
        before = fingerprint(target)
        result = runner.invoke(app, ["generate", str(sheet), "--bible", str(REPO / "story_bibles" / "lunar_mining"), "--config",
                                     str(proj / "b2p.toml"), "--llm", "openai", "--base-url", fault_server.url, "-o", str(target)])
        one_line_error(result, why)
        assert fingerprint(target) == before and not trace_path(target).exists()

    result = gen(proj, fault_server, notes, "--force")
    assert result.exit_code == 0, result.stderr
    assert read_chapter(notes).beats == {1: OK_TEXT, 2: OK_TEXT, 3: OK_TEXT} and "notes, not b2p" not in notes.read_text()
    result = gen(proj, fault_server, chapter, "--force", sheet=other_sheet)
    assert result.exit_code == 0, result.stderr
    assert read_chapter(chapter).beats == {1: OK_TEXT} and trace_of(chapter)["totals"]["beats"] == 1


def test_folders_fifos_and_devices_are_never_replaced(proj: Path, fault_server, tmp_path: Path) -> None:  # noqa: ANN001
    fifo = tmp_path / "pipe.md"
    os.mkfifo(fifo)
    os.mkfifo(tmp_path / "x.trace.json")  # the trace is written beside the chapter: never over a FIFO either
    targets = [(tmp_path, "is a folder"), (fifo, "is a FIFO"), (tmp_path / "x.md", "x.trace.json, and that is not a regular file")]
    device = tmp_path / "full.md"
    try:
        os.mknod(device, stat.S_IFCHR | 0o600, os.makedev(1, 7))  # what /dev/full is
        targets.append((device, "is a device"))
    except PermissionError:
        pass
    for target, why in targets:
        for extra in ([], ["--force"]):
            one_line_error(gen(proj, fault_server, target, *extra), why)
    assert stat.S_ISFIFO(fifo.lstat().st_mode) and not trace_path(fifo).exists()
    assert stat.S_ISFIFO((tmp_path / "x.trace.json").lstat().st_mode) and not (tmp_path / "x.md").exists()
    if device.exists():
        assert stat.S_ISCHR(device.lstat().st_mode)
    assert fault_server.count == 0


def test_o_dash_writes_to_stdout(proj: Path, fault_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    monkeypatch.chdir(tmp_path)
    result = gen(proj, fault_server, "-")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("# The Lantern at Site Nine\n\n") and result.stdout.count(OK_TEXT) == 3
    assert "b2p beat" not in result.stdout and list(tmp_path.iterdir()) == []


# -- kill -9 while an edited chapter is rewritten ------------------------------------------------------------


@pytest.mark.slow
def test_kill_9_during_a_rewrite_of_an_edited_chapter_never_loses_the_writers_text(proj: Path, fault_server, tmp_path: Path) -> None:  # noqa: ANN001
    """SIGKILL a real ``b2p generate --only 2-12`` at random moments (loading, between beats, mid-save):
    after every kill the chapter parses, beat 1 is the writer's text byte for byte, their own lines
    are where they put them, and the next run never takes b2p's half-saved state for an edit."""
    rng = random.Random(int(os.environ.get("B2P_CRASH_SEED", "20261130")))
    n = 12
    sheet = tmp_path / "long.txt"
    sheet.write_text("".join(f"{i}. Jack and Xander dig trench {i} at Varro Crater.\n" for i in range(1, n + 1)), encoding="utf-8")
    out = tmp_path / "long.md"
    base = [sys.executable, "-m", "cli", "generate", str(sheet), "--bible", "lunar_mining", "--config", str(proj / "b2p.toml"),
            "--llm", "openai", "--base-url", fault_server.url, "--words-per-beat", "30", "--no-stream", "-o", str(out)]
    assert subprocess.run(base, cwd=REPO, capture_output=True, text=True, timeout=600).returncode == 0
    edit_beat(out, 1, MINE)
    text = out.read_text(encoding="utf-8")
    out.write_text(text.replace(close_marker(6) + "\n", close_marker(6) + "\n\n* * *\n", 1), encoding="utf-8")
    rewrite = [*base, "--only", ",".join(str(i) for i in range(2, n + 1))]
    fault_server.slow_seconds = 0.02

    def saves() -> int:
        try:
            return trace_path(out).stat().st_mtime_ns
        except FileNotFoundError:
            return 0

    kills = []
    for k in range(10):
        fault_server.default = "slow"
        fault_server.text = f"Jack and Xander dug trench {k} at Varro Crater before the light went."
        before = saves()
        proc = subprocess.Popen(rewrite, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            if k % 2 == 0:
                time.sleep(rng.uniform(0.2, 4.0))
            else:  # once it is writing: between beats, or inside a save
                deadline = time.monotonic() + 120
                while saves() == before and proc.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.005)
                time.sleep(rng.uniform(0.0, 0.25))
            killed = proc.poll() is None
            if killed:
                proc.kill()
            proc.wait()
            assert proc.returncode in (0, -signal.SIGKILL), proc.stderr.read() if proc.stderr else ""
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        doc = read_chapter(out)  # never damaged, never half-written
        assert doc.beats[1] == MINE and set(doc.beats) == set(range(1, n + 1))
        assert block(out.read_text(encoding="utf-8"), 1) == f"{open_marker(1)}\n{MINE}\n{close_marker(1)}"
        assert "\n* * *\n" in out.read_text(encoding="utf-8")
        trace = trace_of(out)  # the edit is recorded once a run saved (a kill before that: the next run finds it)
        if killed:
            kills.append("mid-save" if trace["pending"] else "writing" if saves() != before else "loading")
        assert trace["beats"][0]["text"] in (MINE, OK_TEXT) and not any(b["edited"] for b in trace["beats"][1:])
    assert len(kills) >= 5 and sum(k != "loading" for k in kills) >= 3, kills
    print(f"\n{len(kills)} kills: {', '.join(kills)}")
    fault_server.default = "ok"
    done = subprocess.run(rewrite, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "edited by hand" not in done.stderr  # b2p's own half-saved beats were never taken for edits
    assert not list(tmp_path.glob(".*.tmp"))  # a temp file a kill left behind is swept by the next save
    doc = read_chapter(out)
    assert doc.beats[1] == MINE and all(doc.beats[i] == fault_server.text for i in range(2, n + 1))
    trace = trace_of(out)
    assert [b["edited"] for b in trace["beats"]] == [True] + [False] * (n - 1) and trace["pending"] is None
