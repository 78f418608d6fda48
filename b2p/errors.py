"""One small error tree. The CLI catches ``B2PError`` and prints one line; anything else is a bug."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class B2PError(Exception):
    """A problem the user can fix. ``str(err)`` is the one line shown to them."""

    exit_code = 1


class BibleError(B2PError):
    """A story-bible or beat-sheet file is malformed. Carries every problem found, one per line."""

    exit_code = 2

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class StoreError(B2PError):
    """The Chroma store is missing, unreachable, locked or built differently."""


class ModelError(B2PError):
    """A model could not be loaded or a model server failed."""


class ConfigError(B2PError):
    """Settings, flags or ``b2p.toml`` are invalid."""

    exit_code = 2


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """' (did you mean "x"?)' when a close match exists, else ''."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f' (did you mean "{close[0]}"?)' if close else ""
