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


def _edits(a: str, b: str) -> int:
    """Edit distance counting an adjacent swap as one edit ("alais" is one edit from "alias")."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[-1]


def closest(word: str, choices: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The choice ``word`` most plausibly misspells, or None.

    Candidates are difflib's (ratio >= ``cutoff``); those within 0.1 of the best ratio count as a tie,
    broken by how few edits turn ``word`` into the candidate's start ("alais" is one swap from
    "alias…", three edits from "alway…"), then into the whole candidate.
    """
    choices = list(dict.fromkeys(choices))
    ratios = {c: difflib.SequenceMatcher(None, word, c).ratio() for c in choices}
    ratios = {c: r for c, r in ratios.items() if r >= cutoff}
    if not ratios:
        return None
    best = max(ratios.values())
    near = [c for c, r in ratios.items() if r >= best - 0.1]
    return min(near, key=lambda c: (_edits(word, c[: len(word)]), _edits(word, c), -ratios[c], choices.index(c)))


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """' (did you mean "x"?)' when a close match exists, else ''."""
    close = closest(word, choices)
    return f' (did you mean "{close}"?)' if close else ""
