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
