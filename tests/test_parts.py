"""Things named by what they are or by a part of them ("the van", "the cellar door", "Row Nine",
"in town"), on a small vineyard bible written for these tests (not the samples, not the dev sets).

Real ingest, real store, real embedding model.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from b2p.models import BeatLore
from b2p.retrieval import Retriever
from b2p.settings import Settings
from b2p.store import Store
from tests.lore_bibles import ingested

VINEYARD = {
    "notes/style.md": "---\nname: Style\nalways: true\n---\nDry heat, short sentences.\n",
    "characters/lucia.md": """---
name: Lucia Orsini
aliases: [Lucia]
---
Lucia Orsini is the winemaker of Castel Varra, thirty-four, sunburnt and impatient. She drives everywhere too fast and she keeps her own counsel.
""",
    "characters/pietro.md": """---
name: Pietro Bassi
aliases: [Pietro]
---
Pietro Bassi is the estate's vineyard manager, sixty, slow and exact. He has pruned the same vines for forty years and he distrusts machines.
""",
    "places/castel_varra.md": """---
name: Castel Varra
---
Castel Varra is the Orsini family's vineyard estate, a walled farm on the south slope above Lake Serra. Its cellar runs under the old press house, and the bottling room opens onto the east terrace.

Row Nine is the oldest block of vines on the estate, planted in 1921. The kitchen has a stone hearth that nobody lights in summer.
""",
    "places/press_house.md": """---
name: Press House
aliases: [the press]
---
The Press House is the stone barn at Castel Varra where the grapes are crushed, with a beam press older than the family.
""",
    "places/serrano.md": """---
name: Serrano
---
Serrano is the only town on the lake, a cluster of stone houses around a church and a ferry landing. Its market runs on Thursdays.
""",
    "items/blue_cart.md": """---
name: The Blue Cart
aliases: [the Blue Cart]
---
The Blue Cart is the estate's delivery van, a rusted three-wheeler with a cracked windscreen. Its tailgate is held shut with wire.
""",
    "items/red_cart.md": """---
name: The Red Cart
aliases: [the Red Cart]
---
The Red Cart is the neighbour's pickup, newer and louder. Its tailgate has a dent from a tractor.
""",
    "items/greco_launch.md": """---
name: Greco Launch
aliases: [the Greco boat]
---
The Greco Launch is the rival boat, a varnished motor launch that the Greco family runs across the lake.
""",
    "items/la_serena.md": """---
name: La Serena
aliases: [the estate boat]
---
La Serena is a flat-bottomed rowing skiff that the Orsinis keep tied up below the terrace.
""",
    "history/hail.md": """---
name: The Great Hail
aliases: [the hail of eighty-seven]
---
The Great Hail was the storm of 12 June 1987 that stripped the south slope in twenty minutes. The Orsinis lost the whole vintage and nearly the estate.
""",
    "history/strike.md": """---
name: The Pickers' Strike
aliases: [the Harvest Walkout]
---
The Pickers' Strike was the week in September 1994 when the seasonal pickers stopped work at every estate on the lake. On the lake it is still just "that September".
""",
}


@pytest.fixture(scope="module")
def vineyard(tmp_path_factory: pytest.TempPathFactory, _isolated_env: None) -> Iterator[tuple[Settings, Store]]:
    settings, _ = ingested(tmp_path_factory, "vineyard", VINEYARD)
    with Store.open(settings) as st:
        yield settings, st


def beats(vineyard: tuple[Settings, Store], sheet: list[str], explain: bool = False) -> list[BeatLore]:
    settings, st = vineyard
    return Retriever(settings, st, "vineyard").ledger(sheet, explain=explain).beats


def scene(beat: BeatLore) -> dict[str, str | None]:
    return {p.name: p.match for p in beat.lore if p.reason == "scene"}


def test_what_an_entry_is_names_it(vineyard) -> None:  # noqa: ANN001
    """'the van': the bible's only thing whose defining sentence says it is a van."""
    got = beats(vineyard, ["Lucia drives the van down to the landing before dawn."])[0]
    assert "The Blue Cart" in scene(got)
    assert "van" in scene(got)["The Blue Cart"]


def test_a_part_names_the_thing_on_stage(vineyard) -> None:  # noqa: ANN001
    got = beats(vineyard, ["Pietro walks the rows at Castel Varra.", "He stops at the hearth and listens."])
    assert "Castel Varra" in scene(got[1])


def test_a_plain_part_of_nothing_on_stage_names_nothing(vineyard) -> None:  # noqa: ANN001
    """'the hearth' alone, with no thing on stage that has one: any hearth, not the estate's."""
    got = beats(vineyard, ["Pietro sits by the hearth and listens to the rain."])[0]
    assert "Castel Varra" not in {p.name for p in got.lore}


def test_a_compound_part_names_its_thing_from_anywhere(vineyard) -> None:  # noqa: ANN001
    got = beats(vineyard, ["Lucia sleeps on a cot in the bottling room."])[0]
    assert "Castel Varra" in scene(got)


def test_a_term_the_lore_defines(vineyard) -> None:  # noqa: ANN001
    """'row nine' (written in lower case in the beat): the estate whose lore says what Row Nine is."""
    got = beats(vineyard, ["Pietro prunes row nine by lamplight."])[0]
    assert "Castel Varra" in scene(got)


def test_a_bare_noun_after_a_preposition_names_the_only_place_that_is_one(vineyard) -> None:  # noqa: ANN001
    got = beats(vineyard, ["Lucia buys wire in town and drives back at noon."])[0]
    assert "Serrano" in scene(got)


def test_two_things_on_stage_with_the_part_are_refused(vineyard) -> None:  # noqa: ANN001
    got = beats(vineyard, ["Lucia parks the Blue Cart beside the Red Cart.", "The tailgate will not close."], explain=True)
    assert not {"The Blue Cart", "The Red Cart"} & set(scene(got[1]))
    assert {d.name for d in got[1].dropped if d.reason.startswith("ambiguous")} == {"The Blue Cart", "The Red Cart"}


def test_the_thing_named_in_the_beat_owns_its_part(vineyard) -> None:  # noqa: ANN001
    """'the tailgate of the Red Cart': the Red Cart, named; the part does not carry the Blue Cart on stage
    (only similarity might, by meaning)."""
    got = beats(vineyard, ["Lucia loads the Blue Cart.", "Pietro kicks the tailgate of the Red Cart."])
    assert scene(got[1]) == {}
    assert [p.reason for p in got[1].lore if p.name == "The Red Cart"] == ["named"]


def test_a_year_the_bible_names_an_event_by(vineyard) -> None:  # noqa: ANN001
    """'eighty-seven' is in the Great Hail's alias; the strike's own lore calls it by its bare month ("that September")."""
    got = beats(vineyard, ["Pietro still talks about eighty-seven when the clouds build.", "Lucia was born the September the pickers walked out."])
    assert "The Great Hail" in scene(got[0])
    assert "The Pickers' Strike" in scene(got[1])


def test_a_month_alone_is_no_date_but_its_day_is(vineyard) -> None:  # noqa: ANN001
    """The hail fell on 12 June 1987: "in June" is any June; "the twelfth of June" is that day."""
    bare, other_day, day = beats(vineyard, ["The lease on the press house renews in June.", "Lucia bottles the rosé on the first of June.",
                                            "Pietro lights a candle in the chapel every twelfth of June."])
    assert "The Great Hail" not in {p.name for p in bare.lore if p.reason == "scene"}
    assert "The Great Hail" not in {p.name for p in other_day.lore if p.reason == "scene"}
    assert "the date of The Great Hail" in (scene(day).get("The Great Hail") or "")


def test_a_number_that_counts_is_no_date(vineyard) -> None:  # noqa: ANN001
    got = beats(vineyard, ["Pietro counts eighty-seven crates in the yard."])[0]
    assert "The Great Hail" not in scene(got)


def test_the_head_of_an_events_alias_names_it(vineyard) -> None:  # noqa: ANN001
    """'the Walkout' of the alias 'the Harvest Walkout', which no other entry's name uses."""
    got = beats(vineyard, ["Nobody at the estate mentions the Walkout any more."])[0]
    assert [p.reason for p in got.lore if p.name == "The Pickers' Strike"] == ["named"]


def test_a_lower_case_alias_that_only_modifies_or_repeats_a_compound_is_not_the_entry(vineyard) -> None:  # noqa: ANN001
    assert [p.reason for p in beats(vineyard, ["Pietro oils the press before the harvest."])[0].lore if p.name == "Press House"] == ["named"]
    modifier = beats(vineyard, ["Lucia totals the press ledger book: the vintage is short again."])[0]
    assert "Press House" not in {p.name for p in modifier.lore if p.reason == "named"}
    compound = beats(vineyard, ["Lucia buys a steel winepress in town, and Pietro bolts the press to the floor."])[0]
    assert "Press House" not in {p.name for p in compound.lore if p.reason == "named"}


def test_an_indefinite_noun_is_a_new_one_not_the_thing_on_stage(vineyard) -> None:  # noqa: ANN001
    """The Blue Cart on stage has a tailgate; 'a tailgate' welded for a trailer is another one."""
    got = beats(vineyard, ["Lucia loads the Blue Cart with crates.", "Pietro welds a tailgate for the trailer."])
    assert "The Blue Cart" not in scene(got[1])


def test_what_one_thing_is_and_another_is_called_is_refused(vineyard) -> None:  # noqa: ANN001
    """'the boat': the Greco Launch *is* the rival boat, but La Serena is called 'the estate boat' — no guess
    (the name matcher does not take 'boat' either: two names end in it)."""
    got = beats(vineyard, ["Lucia rows the boat out past the reeds at dawn."], explain=True)[0]
    assert not {"Greco Launch", "La Serena"} & set(scene(got))
    assert {d.name for d in got.dropped if d.reason.startswith("ambiguous")} == {"Greco Launch", "La Serena"}


def test_a_noun_before_the_head_that_the_thing_never_uses_is_another_thing(vineyard) -> None:  # noqa: ANN001
    """The Blue Cart is 'the estate's delivery van': 'the estate van' is it, 'the market van' (a noun its name and
    defining sentence never use) is some other van."""
    market, estate = beats(vineyard, ["Lucia follows the market van down the hill.", "Pietro hoses the mud off the estate van."])
    assert "The Blue Cart" not in {p.name for p in market.lore if p.reason == "scene"}
    assert "The Blue Cart" in scene(estate)
