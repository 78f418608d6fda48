"""``load_settings`` with a ``--config`` that is not a readable regular TOML file: one line, never a hang."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from b2p.errors import ConfigError
from b2p.settings import load_settings


@pytest.fixture(autouse=True)
def _no_hang() -> Iterator[None]:
    """A read that would block (the bug) fails the test after 10 s instead of hanging the suite."""

    def hung(*_: object) -> None:
        raise TimeoutError("load_settings hung reading the config file")

    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(10)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.fixture()
def no_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading a FIFO blocks and reading /dev/zero eats memory until killed: fail at the attempt instead."""

    def refuse(self: Path, *_: object, **__: object) -> None:
        raise AssertionError(f"{self} was read")

    monkeypatch.setattr(Path, "read_text", refuse)
    monkeypatch.setattr(Path, "read_bytes", refuse)


@pytest.mark.usefixtures("no_reads")
def test_a_fifo_is_refused_without_reading_it(tmp_path: Path) -> None:
    fifo = tmp_path / "settings.toml"
    os.mkfifo(fifo)  # reading it would block until a writer comes: the test would hang
    with pytest.raises(ConfigError, match=r"settings\.toml: not a regular file; pass a TOML settings file with --config$"):
        load_settings(fifo)


@pytest.mark.usefixtures("no_reads")
def test_a_device_is_refused(tmp_path: Path) -> None:
    link = tmp_path / "zero.toml"
    link.symlink_to("/dev/zero")  # reading it would never end
    with pytest.raises(ConfigError, match=r"zero\.toml: not a regular file; "):
        load_settings(link)
    with pytest.raises(ConfigError, match=r"^/dev/zero: not a regular file; "):
        load_settings(Path("/dev/zero"))


def test_a_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"is a folder; pass a TOML settings file with --config$"):
        load_settings(tmp_path)


def test_a_symlink_loop_is_one_line(tmp_path: Path) -> None:
    loop = tmp_path / "loop.toml"
    loop.symlink_to("loop.toml")
    with pytest.raises(ConfigError, match=r"loop\.toml: .*"):
        load_settings(loop)


def test_a_regular_file_still_loads(tmp_path: Path) -> None:
    (tmp_path / "b2p.toml").write_text("budget = 7\n")
    assert load_settings(tmp_path / "b2p.toml").budget == 7


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nowhere\.toml: config file not found$"):
        load_settings(tmp_path / "nowhere.toml")


def test_the_current_folders_b2p_toml_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_settings().budget == 1200  # none there: the defaults
    (tmp_path / "b2p.toml").write_text("budget = 9\n")
    assert load_settings().budget == 9


@pytest.mark.usefixtures("no_reads")
@pytest.mark.parametrize("kind", ["fifo", "folder"])
def test_a_b2p_toml_here_that_is_not_a_file_is_refused_not_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    """A writer who made ./b2p.toml expects it read: one line saying why it cannot be, not silence."""
    monkeypatch.chdir(tmp_path)
    os.mkfifo("b2p.toml") if kind == "fifo" else os.mkdir("b2p.toml")
    with pytest.raises(ConfigError, match=r"^b2p\.toml: (not a regular file|is a folder); "):
        load_settings()


def test_flags_beat_env_beat_the_file_beat_defaults_for_shared_and_backend_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "b2p.toml"
    cfg.write_text("budget = 7\ntop_k = 2\nn_ctx = 1024\ntimeout = 9.5\napi_key = 'sk-file'\n")
    monkeypatch.setenv("B2P_TOP_K", "4")
    monkeypatch.setenv("b2p_n_ctx", "2048")  # env names are case-insensitive, as pydantic-settings reads them
    s = load_settings(cfg, budget=11, timeout=None)  # None is "flag not given"
    assert (s.budget, s.top_k, s.threshold) == (11, 4, 0.35)
    local, openai = s.backend_options("local"), s.backend_options("openai")
    assert local.n_ctx == 2048 and local.n_threads is None  # type: ignore[attr-defined]
    assert openai.timeout == 9.5 and openai.api_key.get_secret_value() == "sk-file"  # type: ignore[attr-defined]
    assert "sk-file" not in repr(s.backend_options("openai"))


@pytest.mark.parametrize(("toml", "message"), [
    ("n_ctx = 100\n", r"b2p\.toml: n_ctx: Input should be greater than or equal to 512$"),
    ("retries = 'many'\n", r"b2p\.toml: retries: Input should be a valid integer"),
    ("model_pth = 'x.gguf'\n", r"b2p\.toml: unknown setting 'model_pth' \(did you mean \"model_path\"\?\)$"),
    ("[openai]\ntimeout = 3\n", r"b2p\.toml: unknown setting 'openai': a backend's options are top-level keys \(timeout = …\), not a \[openai\] table$"),
])
def test_a_backend_option_in_the_file_gets_the_files_one_line_error(tmp_path: Path, toml: str, message: str) -> None:
    (tmp_path / "b2p.toml").write_text(toml)
    with pytest.raises(ConfigError, match=message):
        load_settings(tmp_path / "b2p.toml")
