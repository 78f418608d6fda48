"""A description diluted in a long beat: the beat's clauses settle its doubtful 'similar' candidates.

A candidate the whole beat puts over the threshold but not clearly above its background is kept
only when one clause of the beat, queried on its own, ranks it first by a clear margin. Real
ingest, real Chroma, real embedding model: the sample drowned_archive bible (sentences not in its
labelled beat sheets).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import b2p.retrieval as retrieval
from b2p.retrieval import MAX_CLAUSES, Retriever, clauses
from b2p.settings import Settings
from b2p.store import Store

# "...dives into the drowned reading rooms beneath the Great Stacks": the Undershelves, described, not named.
DESCRIBED = "Wren ties her hair back at first light, argues with Fenn about the price of oil, and dives into the drowned reading rooms beneath the Great Stacks."
# Same beat, but she dives off a jetty: the Undershelves is still the nearest entry, and must stay out.
NOT_DESCRIBED = "Wren ties her hair back at first light, argues with Fenn about the price of oil, and dives for eels off the end of the jetty."
# Nothing comes near the threshold: the clauses are never embedded.
QUIET = "Wren ties her hair back at first light, argues with Fenn about the price of lamp oil, and scrubs the punt until it shines."


@pytest.fixture(scope="module")
def drowned(sample_store: Settings) -> Iterator[Retriever]:
    with Store.open(sample_store) as st:
        yield Retriever(sample_store, st, "drowned_archive")


def similar(r: Retriever, beat: str, explain: bool = False) -> tuple[dict[str, float], dict[str, tuple[str, float]]]:
    """(similar picks → score, dropped → (reason, score)) of a one-beat sheet."""
    got = r.ledger([beat], explain=explain).beats[0]
    return {p.name: p.score for p in got.lore if p.reason == "similar"}, {d.name: (d.reason, d.score) for d in got.dropped}


# -- splitting a beat into clauses ------------------------------------------------------------------------


def test_clauses_split_at_punctuation_and_conjunctions_but_keep_prepositions() -> None:
    got = clauses("Portray his resolve to protect the discovery, even in the face of potential conflict with rival miners.")
    assert got == ["Portray his resolve to protect the discovery", "in the face of potential conflict with rival miners"]
    # A preposition left hanging where the matcher cut out a name still says where.
    assert clauses("slips off punt at first light and dives into the flooded reading rooms beneath the , hunting a folio")[1] == (
        "dives into the flooded reading rooms beneath"
    )


def test_a_one_clause_beat_has_no_clauses_and_a_long_one_keeps_its_wordiest() -> None:
    assert clauses("Rain falls all night.") == []
    assert clauses("She waits, and waits.") == []  # fewer than two content words per piece
    long = "grey gulls wheel, the tide turns slowly, old nets dry on poles, boys mend the broken oars, bells ring twice at noon, and fog rolls in"
    got = clauses(long)
    assert len(got) == MAX_CLAUSES
    # The three four-word clauses, then the first of the three-word ones; in beat order.
    assert got == ["grey gulls wheel", "old nets dry on poles", "boys mend the broken oars", "bells ring twice at noon"]


# -- the doubtful candidate and its clause ------------------------------------------------------------------


def test_a_description_inside_a_long_beat_is_found_by_its_clause(drowned: Retriever) -> None:
    picked, _ = similar(drowned, DESCRIBED)
    assert "Undershelves" in picked
    assert drowned.settings.threshold <= picked["Undershelves"] < 1.0  # the beat's own similarity is reported
    assert "Undershelves" not in similar(drowned, DESCRIBED, explain=True)[1]  # kept, so not also 'dropped'


def test_without_the_clauses_the_whole_beat_is_not_clear_enough(drowned: Retriever, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retrieval, "CLAUSE_MARGIN", 100.0)  # no clause can win by that much
    picked, dropped = similar(drowned, DESCRIBED, explain=True)
    assert "Undershelves" not in picked
    reason, score = dropped["Undershelves"]
    assert reason == "margin" and score >= drowned.settings.threshold  # over the threshold, short of the margin: said so


def test_a_nearest_entry_the_clauses_do_not_clearly_back_stays_out(drowned: Retriever) -> None:
    picked, dropped = similar(drowned, NOT_DESCRIBED, explain=True)
    assert picked == {}
    assert dropped["Undershelves"][1] >= drowned.settings.threshold  # it was doubtful, and the clause said no


def test_clauses_are_only_queried_for_a_beat_with_a_doubtful_candidate(drowned: Retriever, monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []
    real = Retriever._clause_winners

    def spy(self: Retriever, query: str, taken: set[str]) -> set[str]:
        asked.append(query)
        return real(self, query, taken)

    monkeypatch.setattr(Retriever, "_clause_winners", spy)
    got = drowned.ledger([QUIET, DESCRIBED]).beats
    assert [p.name for p in got[0].lore if p.reason == "similar"] == []
    assert "Undershelves" in [p.name for p in got[1].lore if p.reason == "similar"]
    assert len(asked) == 1 and "drowned reading rooms" in asked[0]

