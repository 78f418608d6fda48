"""``did_you_mean``: the suggestion is the choice the typo most plausibly misspells."""

from __future__ import annotations

import pytest

from b2p.errors import closest, did_you_mean

FIELDS = ["name", "aliases", "kind", "tags", "always", "case_sensitive", "id", "enabled", "imported"]


@pytest.mark.parametrize(
    ("typo", "meant"),
    [
        ("alais", "aliases"),  # difflib alone prefers "always" (0.73 against 0.67)
        ("alias", "aliases"),
        ("alwyas", "always"),
        ("nmae", "name"),
        ("tag", "tags"),
        ("enabeld", "enabled"),
        ("case_sensitve", "case_sensitive"),
    ],
)
def test_the_closer_field_is_suggested(typo: str, meant: str) -> None:
    assert did_you_mean(typo, FIELDS) == f' (did you mean "{meant}"?)'


def test_a_flag_typo_prefers_the_flag_it_starts_like() -> None:
    assert closest("--budjet", ["--beat", "--budget", "--bible", "--top-k"]) == "--budget"


def test_nothing_close_means_no_suggestion() -> None:
    assert did_you_mean("colour", FIELDS) == ""
    assert closest("x", []) is None
