"""What a reader works out from a family's lore without being told, on a bible written for these
tests: pronouns from how the notes speak of someone, relatives implied by two stated facts, and
whose relative "her <relation>" means when several women are about.

Real ingest, real store, real embedding model.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from b2p.beats import parse_beat
from b2p.nouns import infer_pronouns
from b2p.retrieval import Retriever
from b2p.settings import Settings
from b2p.store import Store
from tests.lore_bibles import ingested

# The Achterbergs keep a bakery. The lore states only some facts; the rest a reader infers.
BAKERS = {
    "notes/style.md": "---\nname: Style\nalways: true\n---\nShort sentences. Flour and frost.\n",
    "characters/greet.md": """---
name: Greet Achterberg
aliases: [Greet]
---
Greet Achterberg is the baker of Zandvoort, sixty and stooped. She is the mother of Pim Achterberg and Saskia Achterberg.
""",
    "characters/willem.md": """---
name: Willem Achterberg
aliases: [Willem]
---
Willem Achterberg, Greet's husband, keeps the ovens lit from four in the morning. He has a burn scar across one wrist and
hums hymns when he is worried.
""",
    "characters/pim.md": """---
name: Pim Achterberg
aliases: [Pim]
---
Pim Achterberg is a delivery driver of thirty with a broken nose. He is married to Lotte Maas.
""",
    "characters/saskia.md": """---
name: Saskia Achterberg
aliases: [Saskia]
---
Saskia Achterberg is a nurse at the cottage hospital, twenty-six, quick and unsentimental. She rides a red bicycle.
""",
    "characters/lotte.md": """---
name: Lotte Maas
aliases: [Lotte]
---
Lotte Maas teaches piano above the chemist's shop. She never learned to ride a bicycle.
""",
    "characters/bram.md": """---
name: Bram Kuiper
aliases: [Kuiper]
---
Bram Kuiper is the harbour notary, a fussy man in a tweed coat who handles the bakery's lease.
""",
    "characters/anke.md": """---
name: Mrs. Anke Dekker
aliases: [Anke, Mrs. Dekker]
---
Anke Dekker runs the fish stall on the quay and knows every rumour in town before it is a day old.
""",
    "characters/joost.md": """---
name: Joost Veen
aliases: [Joost]
---
Joost Veen is the father of Femke Veen, a widower who repairs nets. He married Marijke Bos last spring, which makes
Marijke Femke's stepmother.
""",
    "characters/femke.md": """---
name: Femke Veen
aliases: [Femke]
---
Femke Veen is Joost Veen's daughter, a girl of fifteen who wants to go to sea. She hates the new marriage.
""",
    "characters/marijke.md": """---
name: Marijke Bos
aliases: [Marijke]
---
Marijke Bos is a seamstress from Haarlem, tall, patient and watchful. She is Joost Veen's second wife.
""",
}


@pytest.fixture(scope="module")
def bakers(tmp_path_factory: pytest.TempPathFactory, _isolated_env: None) -> Iterator[tuple[Settings, Store]]:
    settings, _ = ingested(tmp_path_factory, "bakers", BAKERS)
    with Store.open(settings) as st:
        yield settings, st


def picks(bakers: tuple[Settings, Store], beats: list[str]) -> list[dict[str, str]]:
    """Each beat's picks (name → the ledger's match), similarity off: in a ten-entry bible it is noise here."""
    settings, st = bakers
    got = Retriever(settings.model_copy(update={"top_k": 0}), st, "bakers").ledger([parse_beat(b) for b in beats])
    return [{p.name: p.match or "" for p in b.lore if p.reason != "always"} for b in got.beats]


# -- pronouns read from the lore -----------------------------------------------------------------------


@pytest.mark.parametrize(("text", "name", "want"), [
    ("Lotte Maas teaches piano. She never learned to ride.", "Lotte Maas", "she"),  # one sentence opens with it
    ("Bram Kuiper is the notary, a fussy man in a tweed coat.", "Bram Kuiper", "he"),  # the defining sentence says man
    ("Anke Dekker runs the fish stall on the quay.", "Mrs. Anke Dekker", "she"),  # the title in her name
    ("Pim Achterberg drives the van. He is married to Lotte. She teaches piano.", "Pim Achterberg", None),  # one each: unclear
])
def test_pronouns_come_from_how_the_notes_speak_of_someone(text: str, name: str, want: str | None) -> None:
    assert infer_pronouns(text, name) == want


def test_a_woman_whose_notes_say_she_once_is_found_by_she(bakers) -> None:  # noqa: ANN001
    got = picks(bakers, ["Lotte locks the piano room.", "She walks down to the harbour alone."])
    assert "Lotte Maas" in got[1]


def test_her_possessive_after_a_named_woman_is_hers(bakers) -> None:  # noqa: ANN001
    """'Lotte … her husband': Lotte's husband (Pim, from his own entry), not another woman on stage."""
    got = picks(bakers, ["Greet counts the loaves.", "Lotte waits at the bakery door for her husband."])
    assert "Pim Achterberg" in got[1] and "Greet Achterberg" not in got[1]
    assert "her = Lotte Maas" in got[1]["Pim Achterberg"]


# -- relatives implied by two facts ---------------------------------------------------------------------


def test_children_of_one_mother_are_brother_and_sister(bakers) -> None:  # noqa: ANN001
    """Only Greet's entry names her children; 'his sister' from Pim is Saskia."""
    got = picks(bakers, ["Pim loads the van and phones his sister."])
    assert set(got[0]) == {"Pim Achterberg", "Saskia Achterberg"}


def test_a_mothers_husband_is_the_father_when_no_other_is_said(bakers) -> None:  # noqa: ANN001
    got = picks(bakers, ["Saskia cycles home to see her father."])
    assert set(got[0]) == {"Saskia Achterberg", "Willem Achterberg"}


def test_a_husbands_sister_is_a_sister_in_law_and_back(bakers) -> None:  # noqa: ANN001
    got = picks(bakers, ["Lotte meets her sister-in-law outside the hospital.", "Saskia buys her sister-in-law a coffee."])
    assert set(got[0]) == {"Lotte Maas", "Saskia Achterberg"}
    assert set(got[1]) == {"Saskia Achterberg", "Lotte Maas"}


def test_a_husbands_mother_is_a_mother_in_law(bakers) -> None:  # noqa: ANN001
    got = picks(bakers, ["Lotte brings her mother-in-law a tin of tea."])
    assert set(got[0]) == {"Lotte Maas", "Greet Achterberg"}


def test_a_fathers_second_wife_is_a_stepmother_not_a_mother(bakers) -> None:  # noqa: ANN001
    got = picks(bakers, ["Femke slams the door on her stepmother."])
    assert set(got[0]) == {"Femke Veen", "Marijke Bos"}
    got = picks(bakers, ["Femke writes a letter to her mother."])
    assert "Marijke Bos" not in got[0]  # the bible has no mother for her: no one is guessed


# -- whose relative --------------------------------------------------------------------------------------


def test_her_relative_is_the_woman_on_stage_who_has_one(bakers) -> None:  # noqa: ANN001
    """Marijke spoke last, but only Femke has a stepmother: 'Her stepmother …' is Femke's, even though
    the beat goes on to name another woman."""
    got = picks(bakers, ["Femke argues with Marijke about the boat.", "Her stepmother tells Saskia the whole story."])
    assert "Marijke Bos" in got[1] and "Saskia Achterberg" in got[1]
    assert "her = Femke Veen" in got[1]["Marijke Bos"]
