"""One vocabulary: every person kind gets pronouns at ingest, whatever the writer called it; kinds
are compared lower-cased; one sentence splitter.

Real ingest, real store, real embedding model, on a small bible written for this test.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from b2p.lexicon import sentences
from b2p.retrieval import Retriever
from b2p.store import Store
from tests.lore_bibles import ingested

REPO = Path(__file__).resolve().parent.parent

# One woman per way of saying "this entry is a person"; each is the only woman on stage in her beat.
KINDS = {
    "kind: cast": "cast/odile.md",
    "kind: Character": "misc/bea.md",
    "kind: NPC": "misc/cato.md",
    "folder people/": "people/dana.md",
    "folder npcs/": "npcs/eri.md",
    "imported lore": "lore/fen.md",
}
NAMES = {"cast/odile.md": "Odile Marsh", "misc/bea.md": "Bea Lorne", "misc/cato.md": "Cato Weir", "people/dana.md": "Dana Pike",
         "npcs/eri.md": "Eri Voss", "lore/fen.md": "Fen Arlo"}
FRONT = {"cast/odile.md": "kind: cast\n", "misc/bea.md": "kind: Character\n", "misc/cato.md": "kind: NPC\n"}


def _bible() -> dict[str, str]:
    files = {}
    for rel, name in NAMES.items():
        first = name.split()[0]
        files[rel] = (
            f"---\nname: {name}\naliases: [{first}]\n{FRONT.get(rel, '')}---\n"
            f"{name} is a ferry pilot on the grey river. She keeps her own counsel, and her boat is the fastest on the water.\n"
        )
    files["places/quay.md"] = "---\nname: Low Quay\n---\nLow Quay is the stone landing where the ferries tie up.\n"
    return files


@pytest.fixture(scope="module")
def kinds(tmp_path_factory: pytest.TempPathFactory, _isolated_env: None):  # noqa: ANN201
    settings, _ = ingested(tmp_path_factory, "kinds", _bible())
    with Store.open(settings) as st:
        yield Retriever(settings, st, "kinds")


@pytest.mark.parametrize("how", sorted(KINDS))
def test_every_way_of_saying_person_gets_pronouns_and_she_finds_her(kinds: Retriever, how: str) -> None:
    name = NAMES[KINDS[how]]
    entry = next(e for e in kinds.entries.values() if e.name == name)
    assert entry.pronouns == "she"
    beat = kinds.ledger([f"{name.split()[0]} waits at Low Quay.", "She casts off before dawn."]).beats[1]
    assert {p.name: p.reason for p in beat.lore} == {name: "scene"}


def test_kinds_are_lower_cased_once_at_parse(kinds: Retriever) -> None:
    got = {e.name: e.kind for e in kinds.entries.values()}
    assert got["Bea Lorne"] == "character" and got["Cato Weir"] == "npc" and got["Odile Marsh"] == "cast"


def test_a_place_gets_no_pronouns(kinds: Retriever) -> None:
    assert next(e for e in kinds.entries.values() if e.name == "Low Quay").pronouns is None


def test_one_sentence_splitter_keeps_titles_and_initials() -> None:
    assert sentences("Dr. Thorne met J. Okafor at St. Brigid's. They argued! Then? Silence.") == [
        "Dr. Thorne met J. Okafor at St. Brigid's.", "They argued!", "Then?", "Silence."]


def test_no_module_but_the_lexicon_defines_a_word_list() -> None:
    """The vocabulary lives in b2p/lexicon.py: no other module has a constant set of five or more words."""
    offenders = []
    for path in [*(REPO / "b2p").glob("*.py"), *(REPO / "ingest").glob("*.py")]:
        if path.name == "lexicon.py":
            continue
        text = path.read_text()
        constants = r"^_?[A-Z][A-Z_]* = (?:\{(?:\s*\"[a-z' -]+\"\s*,){5,}|(?:frozen)?set\(\s*\"(?:[a-z]+ ){5,})"
        for m in re.finditer(constants, text, re.MULTILINE):
            offenders.append(f"{path.name}: {m.group()[:40]}")
    assert offenders == []
