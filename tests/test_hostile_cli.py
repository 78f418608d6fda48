"""Hostile model servers, keys and settings, through the real ``b2p`` command (issue 13).

Each test runs ``b2p generate`` as a subprocess in a folder of its own against ``FaultServer``, a
small OpenAI-protocol server on loopback that the test starts, scripts and stops: one that echoes
the key, trickles for ever, asks to be retried in eleven days, or answers with a web page. What is
asserted is what a user would see: the exit code, the one error line, what reached the server (or
that nothing did), and what was saved. The one-line refusals that need no server are rows of the
bad-input corpus (tests/test_bad_inputs.py).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from b2p.llm_openai import PLACEHOLDER_KEY
from tests.plugins.servers import OK_TEXT, FaultServer
from tests.test_bad_inputs import b2p_command

HERE = Path(__file__).resolve().parent / "bad_inputs"
KEY = "sk-proj-Hostile7Secret0Key4Testing9x"
HANG_GUARD = 120.0  # a run that takes this long has hung: the point of several tests here


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store holding the two-entry ``good_bible``, ingested once through the CLI."""
    root = tmp_path_factory.mktemp("hostile-store")
    shutil.copytree(HERE / "good_bible", root / "good_bible")
    proc = subprocess.run([*b2p_command(), "ingest", "good_bible", "--store", "store"], cwd=root, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    return root / "store"


@pytest.fixture()
def work(tmp_path: Path) -> Path:
    (tmp_path / "beats.txt").write_text("Jack Harlan drives the rig out of Meridian before dawn.\n")
    return tmp_path


def b2p(work: Path, *args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    # B2P_REDRAFTS=0: a hostile server's canned line is off-beat to the guards, which would ask again.
    proc = subprocess.run([*b2p_command(), *args], cwd=work, env={**os.environ, "COLUMNS": "100", "B2P_REDRAFTS": "0", **(env or {})},
                          input=stdin, stdin=subprocess.DEVNULL if stdin is None else None,
                          capture_output=True, text=True, timeout=HANG_GUARD)
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    return proc


def generate(store: Path, *extra: str) -> list[str]:
    return ["generate", "beats.txt", "--bible", "good_bible", "--store", str(store), "--llm", "openai",
            "--model", "gpt-4o-mini", "--words-per-beat", "20", "-o", "chapter.md", *extra]


def errors(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]


def leaked(text: str, key: str = KEY, run: int = 8) -> list[str]:
    """Every run of ``run`` characters of the key found in ``text``, ignoring case."""
    low, k = text.lower(), key.lower()
    return [k[i : i + run] for i in range(len(k) - run + 1) if k[i : i + run] in low]


# ── 1. a project folder cannot redirect your key ────────────────────────────────────────────────


def test_a_b2p_toml_found_in_the_folder_cannot_send_your_key_to_its_server(store: Path, work: Path, fault_server: FaultServer) -> None:
    url = fault_server.url
    (work / "b2p.toml").write_text(f'llm = "openai"\nbase_url = "{url}"\n')
    proc = b2p(work, *generate(store), env={"B2P_API_KEY": KEY})
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [
        f"error: b2p.toml (found in the current folder) sets base_url = {url}; your API key from B2P_API_KEY is only "
        f"sent to a server you name: pass --base-url {url} or --config b2p.toml to allow it"]
    assert fault_server.count == 0 and not (work / "chapter.md").exists()

    # OPENAI_API_KEY is never sent to any base_url: the run goes on, without it.
    proc = b2p(work, *generate(store), env={"OPENAI_API_KEY": KEY})
    assert proc.returncode == 0, proc.stderr
    assert [r.key for r in fault_server.requests] == [PLACEHOLDER_KEY]

    # Named by the user (flag, env, or the file given with --config): the key goes there.
    for how, env in ((["--base-url", url], {}), (["--config", "b2p.toml"], {}), ([], {"B2P_BASE_URL": url})):
        before = fault_server.count
        proc = b2p(work, *generate(store, *how), env={"B2P_API_KEY": KEY, **env})
        assert proc.returncode == 0, (how, env, proc.stderr)
        assert fault_server.requests[before].key == KEY

    # The project's own key in its own file goes to its own server; yours (env wins over the file) still does not.
    (work / "b2p.toml").write_text(f'llm = "openai"\nbase_url = "{url}"\napi_key = "sk-the-projects-own-key"\n')
    proc = b2p(work, *generate(store))
    assert proc.returncode == 0, proc.stderr
    assert fault_server.requests[-1].key == "sk-the-projects-own-key"
    before = fault_server.count
    assert b2p(work, *generate(store), env={"B2P_API_KEY": KEY}).returncode == 2 and fault_server.count == before


@pytest.mark.parametrize(("key", "what"), [
    (KEY[:12] + "\n" + KEY[12:], "a line break at character 13 of 37"),
    (KEY[:20] + "\u2013" + KEY[20:], "a non-ASCII character (U+2013) at character 21 of 37"),
])
def test_a_malformed_key_is_refused_before_anything_is_sent(store: Path, work: Path, fault_server: FaultServer, key: str, what: str) -> None:
    proc = b2p(work, *generate(store, "--base-url", fault_server.url), env={"B2P_API_KEY": key})
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [f"error: the API key in B2P_API_KEY is malformed: it has {what}; "
                                        "a key is one line of printable ASCII (a stray newline or a pasted quote?)"]
    assert fault_server.count == 0 and not leaked(proc.stderr)


# ── 2. a key the server echoes is masked everywhere ─────────────────────────────────────────────


def test_a_key_the_server_writes_into_its_prose_is_neither_shown_nor_saved(store: Path, work: Path, fault_server: FaultServer) -> None:
    fault_server.text = "Mara read the code {key} aloud, twice, then burned the slip."
    fault_server.echo = lambda key: key.removeprefix("sk-").upper()  # changed just enough to pass a verbatim filter
    fault_server.piece_chars = 3  # and cut across the stream's pieces
    proc = b2p(work, *generate(store, "--base-url", fault_server.url, "--stream"), env={"B2P_API_KEY": KEY})
    assert proc.returncode == 0, proc.stderr
    assert fault_server.requests[0].key == KEY
    chapter, trace = (work / "chapter.md").read_text(), (work / "chapter.trace.json").read_text()
    for shown in (proc.stderr, proc.stdout, chapter, trace):
        assert not leaked(shown), shown
    assert "Mara read the code" in chapter and "***" in chapter and "burned the slip" in chapter
    assert "Mara read the code" in proc.stderr  # the streamed prose, masked as it came


@pytest.mark.parametrize("echo", [str.upper, lambda key: key.removeprefix("sk-"), lambda key: key[5:20]],
                         ids=["upper-cased", "without-prefix", "a-piece"])
def test_a_key_echoed_in_an_error_is_never_shown(store: Path, work: Path, fault_server: FaultServer, echo) -> None:  # noqa: ANN001
    fault_server.echo = echo
    fault_server.script(["401"])
    proc = b2p(work, *generate(store, "--base-url", fault_server.url), env={"B2P_API_KEY": KEY})
    assert proc.returncode == 1
    assert len(errors(proc)) == 1 and "HTTP 401" in errors(proc)[0] and "***" in errors(proc)[0]
    assert not leaked(proc.stderr + proc.stdout)


# ── 3. no hangs ─────────────────────────────────────────────────────────────────────────────────


def test_a_stream_that_trickles_for_ever_ends_at_the_request_deadline(store: Path, work: Path, fault_server: FaultServer) -> None:
    fault_server.default = "trickle"
    fault_server.trickle_seconds = 0.5  # well inside the 120 s read timeout: only the deadline can end it
    proc = b2p(work, *generate(store, "--base-url", fault_server.url, "--words-per-beat", "1000"),
               env={"B2P_REQUEST_DEADLINE": "3"})
    assert proc.returncode == 1
    assert re.fullmatch(rf"error: {re.escape(fault_server.url)} was still answering when request_deadline \(3 s\) ran out after "
                        r"\d+ characters had been streamed \(attempt 1 of 4; not retried, the text was already shown\); "
                        r"nothing was saved in chapter\.md; run the same command again",
                        proc.stderr.splitlines()[-1]), proc.stderr
    assert fault_server.count == 1
    proc = b2p(work, *generate(store, "--base-url", fault_server.url, "--words-per-beat", "1000", "--no-stream"),
               env={"B2P_REQUEST_DEADLINE": "1.5"})
    assert proc.stderr.splitlines()[-1] == (f"error: {fault_server.url} was still answering when request_deadline (1.5 s) ran out "
                                            "(not retried); nothing was saved in chapter.md; run the same command again")


def test_a_server_that_ignores_the_token_limit_is_cut_off_at_it(store: Path, work: Path, fault_server: FaultServer) -> None:
    fault_server.default = "trickle"
    fault_server.trickle_seconds = 0.01
    proc = b2p(work, *generate(store, "--base-url", fault_server.url))
    assert proc.returncode == 0, proc.stderr
    beat = json.loads((work / "chapter.trace.json").read_text())["beats"][0]
    limits = [r.body["max_tokens"] for r in fault_server.requests]
    # Each request (the draft, and a continuation if the drafter asked for one) stopped at its own limit.
    assert beat["finish_reason"] == "length" and beat["completion_tokens"] == sum(limits)
    assert len(beat["text"].split()) <= sum(limits)


def test_retry_after_is_capped_and_the_wait_is_said(store: Path, work: Path, fault_server: FaultServer) -> None:
    fault_server.retry_after = "999999"  # eleven days
    fault_server.script(["429", "ok"])
    proc = b2p(work, *generate(store, "--base-url", fault_server.url), env={"B2P_MAX_RETRY_WAIT": "1", "B2P_API_KEY": KEY})
    assert proc.returncode == 0, proc.stderr
    notes = [ln for ln in proc.stderr.splitlines() if ln.startswith("note:") and "waiting" in ln]
    assert len(notes) == 1 and re.fullmatch(
        rf"note: {re.escape(fault_server.url)} answered HTTP 429 .*; waiting 1\.0 s before attempt 2 of 4 "
        r"\(it asked for 999999 s; max_retry_wait caps the wait\)", notes[0]), notes
    assert not leaked(proc.stderr)  # the 429 body echoed the key
    assert fault_server.count == 2


# ── 4. messages that say what happened ──────────────────────────────────────────────────────────


def test_a_web_page_at_the_url_is_called_a_web_page(store: Path, work: Path, fault_server: FaultServer) -> None:
    fault_server.default = "html"
    proc = b2p(work, *generate(store, "--base-url", fault_server.url))
    assert proc.returncode == 1
    assert errors(proc) == [f"error: {fault_server.url} answered with an HTML page ('Welcome to nginx!'), not the OpenAI API; "
                            "check --base-url (an OpenAI-compatible API's URL usually ends in /v1) (not retried); "
                            "nothing was saved in chapter.md; run the same command again"]
    assert fault_server.count == 1


def test_a_server_that_ignores_stream_is_read_whole(store: Path, work: Path, fault_server: FaultServer) -> None:
    fault_server.default = "json"
    proc = b2p(work, *generate(store, "--base-url", fault_server.url))
    assert proc.returncode == 0, proc.stderr
    assert OK_TEXT in (work / "chapter.md").read_text()
    assert fault_server.count == 1


# ── 5. interactive mode with nobody to answer ───────────────────────────────────────────────────


def test_interactive_mode_refuses_an_empty_standard_input_before_any_request(store: Path, work: Path, fault_server: FaultServer) -> None:
    proc = b2p(work, *generate(store, "--base-url", fault_server.url, "--mode", "interactive"))  # stdin: /dev/null
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == ["error: interactive mode reads your answers from standard input, but it is /dev/null; "
                                        "run it in a terminal or pipe in the answers, or use --mode sequential"]
    assert fault_server.count == 0


def test_interactive_mode_whose_answers_run_out_exits_non_zero_keeping_what_was_accepted(store: Path, work: Path,
                                                                                         fault_server: FaultServer) -> None:
    (work / "beats.txt").write_text("Jack Harlan drives the rig out of Meridian.\nJack reaches the crater rim at dawn.\n")
    proc = b2p(work, *generate(store, "--base-url", fault_server.url, "--mode", "interactive"), stdin="a\n")
    assert proc.returncode == 1
    assert errors(proc) == ["error: no answer: standard input ended (interactive mode reads each answer from it); run it in a "
                            "terminal or pipe in the answers, or use --mode sequential; 1 of 2 beats are saved in chapter.md; "
                            "run the same command with --resume to continue"]
    assert [b["index"] for b in json.loads((work / "chapter.trace.json").read_text())["beats"]] == [1]

    for done in ("chapter.md", "chapter.trace.json"):
        (work / done).unlink()
    proc = b2p(work, *generate(store, "--base-url", fault_server.url, "--mode", "interactive"), stdin="")  # an empty pipe
    assert proc.returncode == 1 and len(errors(proc)) == 1 and "no answer: standard input ended" in errors(proc)[0]
