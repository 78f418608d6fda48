"""A full name inside a longer name: named too when the longer name is an event about the person or
their possession ("the night Sir Orrin died", "Sir Orrin's will"), not when it is only named after
them ("the Orrin Vale Library", "Orrin Vale the Younger"). On a bible written for these tests.

Real ingest, real store, real embedding model.
"""

from __future__ import annotations

import pytest

from b2p.retrieval import Retriever
from b2p.settings import Settings
from b2p.store import Store
from tests.lore_bibles import ingested

VALE = {
    "notes/style.md": "---\nname: Style\nalways: true\n---\nQuiet, wet, provincial.\n",
    "characters/orrin.md": "---\nname: Sir Orrin Vale\naliases: [Sir Orrin]\n---\nSir Orrin Vale was the old squire, dead these forty years. He founded the town library.\n",
    "characters/tamsin.md": "---\nname: Tamsin Rook\naliases: [Tamsin]\n---\nTamsin Rook is the librarian. She is thirty, short-sighted and stubborn, and she lives above the reading room with her cat.\n",
    "history/death.md": "---\nname: The Death of Sir Orrin\naliases: [the night Sir Orrin died]\n---\nThe night Sir Orrin died the river rose over the mill weir.\n",
    "items/will.md": "---\nname: The Vale Will\naliases: [\"Sir Orrin's will\"]\n---\nThe Vale Will is the squire's last will, kept in a tin box at the library.\n",
    "places/library.md": "---\nname: The Sir Orrin Library\n---\nThe Sir Orrin Library is the town's library, a brick hall by the market cross.\n",
}


@pytest.fixture(scope="module")
def vale(tmp_path_factory: pytest.TempPathFactory, _isolated_env: None) -> Retriever:
    settings, _ = ingested(tmp_path_factory, "vale", VALE)
    with Store.open(settings) as st:
        yield Retriever(settings, st, "vale")


def named(r: Retriever, sheet: list[str]) -> list[dict[str, str]]:
    return [{p.name: p.reason for p in b.lore if p.reason != "always"} for b in r.ledger(sheet).beats]


def test_an_event_or_a_possession_of_someone_names_them_too(vale: Retriever) -> None:
    [first, second] = named(vale, ["On the night Sir Orrin died, Tamsin locks up early.", "Tamsin reads Sir Orrin's will by lamplight."])
    assert first == {"The Death of Sir Orrin": "named", "Sir Orrin Vale": "named", "Tamsin Rook": "named"}
    assert second == {"Tamsin Rook": "named", "The Vale Will": "named", "Sir Orrin Vale": "named"}


def test_a_place_named_after_someone_does_not_bring_them_on_stage(vale: Retriever) -> None:
    [first, second] = named(vale, ["Tamsin opens the Sir Orrin Library in the rain.", "She sorts the returns by the window."])
    assert first == {"The Sir Orrin Library": "named", "Tamsin Rook": "named"}
    assert second.get("Tamsin Rook") == "scene" and "Sir Orrin Vale" not in second  # "she" is the librarian, not the squire
