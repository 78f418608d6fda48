"""Relations, nouns that name things, false-trigger guards and writer overrides, on a small
family bible written for these tests (not the samples, not the dev sets).

Real ingest, real store, real embedding model.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from b2p.beats import parse_beat, parse_beats
from b2p.errors import BibleError
from b2p.models import BeatLore
from b2p.retrieval import Retriever
from b2p.settings import Settings
from b2p.store import Store
from tests.lore_bibles import ingested

FAMILY = {
    "notes/style.md": "---\nname: Style\nalways: true\n---\nPlain past tense. River weather.\n",
    "characters/marta.md": """---
name: Marta Kohl
aliases: [Marta]
---
Marta Kohl is the miller of Ebbing, fifty, broad and floury. She is Jonas Kohl's older sister, and she runs the mill with her own hands.

She married late and was widowed early. She keeps the accounts in her head and trusts no one with the sluice keys.
""",
    "characters/jonas.md": """---
name: Jonas Kohl
aliases: [Jonas]
---
Jonas Kohl is a ferryman on the Ebb, forty, quiet and slow to anger. He poles his skiff across the river in every weather.

He sleeps in a hut by the landing and he owes money to half the town. The ferry children call him "Skipper" to tease him.
""",
    "characters/hedda.md": """---
name: Hedda Brill
aliases: [Hedda]
---
Hedda Brill is Jonas Kohl's younger sister and Oskar Brill's wife. She sews sails for the river barges and she sings while she works.

She has not spoken to her brother-in-law's creditors in a year, and she does not mean to start.
""",
    "characters/oskar.md": """---
name: Oskar Brill
aliases: [Oskar]
---
Oskar Brill is a barge-master, the husband of Hedda Brill, which makes him Jonas Kohl's brother-in-law. He is loud and generous and he drinks too much.

He lost a barge on the weir last spring and he blames the mill for it. On the river he is simply "the Skipper".
""",
    "characters/ida.md": """---
name: Ida Brill
aliases: [Ida]
---
Ida Brill is Oskar Brill's daughter by his first marriage, sixteen, sharp-tongued and restless. Marta Kohl is her stepmother's sister-in-law, which she finds funny.

She wants to leave Ebbing and she keeps a bag packed under her bed.
""",
    "items/heron.md": """---
name: Grey Heron
aliases: [the Heron]
---
The Grey Heron is Jonas Kohl's skiff, a flat-bottomed boat with a patched grey sail. It leaks at the stern.
""",
    "places/falls.md": """---
name: Falling Water
---
Falling Water is the weir above the mill, where the river drops in a white sheet. The sound of falling water carries to every house in Ebbing.
""",
    "history/capsizing.md": """---
name: The Capsizing of Jonas Kohl
---
The Capsizing of Jonas Kohl was the night of the spring flood when his skiff overturned below Falling Water and the river carried him half a mile under the ice. Oskar Brill pulled him out at the weir, blue and half-drowned.

Jonas has never spoken of it since, and he will not cross above the weir after dark.
""",
    "factions/fellowship.md": """---
name: Ebbing Fellowship of Millers
aliases: [the Fellowship]
---
The Ebbing Fellowship of Millers sets the price of flour along the river. Marta Kohl chairs it and the barge-masters resent it.
""",
}


@pytest.fixture(scope="module")
def family(tmp_path_factory: pytest.TempPathFactory, _isolated_env: None) -> Iterator[tuple[Settings, Store]]:
    settings, _ = ingested(tmp_path_factory, "family", FAMILY)
    with Store.open(settings) as st:
        yield settings, st


def ledger(family: tuple[Settings, Store], beats: list[str], explain: bool = False, **changes: Any):  # noqa: ANN201
    """The ledger with similarity off unless asked for: in a nine-entry bible it is noise these tests do not judge."""
    changes.setdefault("top_k", 0)
    settings, st = family
    return Retriever(settings.model_copy(update=changes), st, "family").ledger([parse_beat(b) for b in beats], explain=explain)


def picks(beat: BeatLore) -> dict[str, str]:
    return {p.name: p.reason for p in beat.lore if p.reason != "always"}


# -- relations ---------------------------------------------------------------------------------------------


def test_her_brother_follows_the_relation_her_entry_states(family) -> None:  # noqa: ANN001
    beat = ledger(family, ["Marta locks the mill and goes looking for her brother."]).beats[0]
    assert picks(beat) == {"Marta Kohl": "named", "Jonas Kohl": "scene"}
    match = next(p.match for p in beat.lore if p.name == "Jonas Kohl")
    assert "her = Marta Kohl" in match and "brother" in match  # the path, shown in the ledger


def test_a_relation_stated_on_one_side_works_from_the_other(family) -> None:  # noqa: ANN001
    """Only Ida's entry says she is Oskar's daughter; 'his daughter' from Oskar finds her."""
    beat = ledger(family, ["Oskar waits at the landing for his daughter."]).beats[0]
    assert picks(beat) == {"Oskar Brill": "named", "Ida Brill": "scene"}


def test_the_possessor_is_resolved_first_from_the_stage(family) -> None:  # noqa: ANN001
    got = ledger(family, ["Ida packs her bag in the dark.", "Her father finds it under the bed."])
    assert picks(got.beats[1]) == {"Ida Brill": "scene", "Oskar Brill": "scene"}


def test_their_relative_is_the_one_the_people_named_share(family) -> None:  # noqa: ANN001
    """Marta and Hedda are both Jonas's sisters: 'their brother' is Jonas, and the ledger says whose."""
    beat = ledger(family, ["Marta and Hedda go out in the rain to look for their brother."]).beats[0]
    assert picks(beat) == {"Marta Kohl": "named", "Hedda Brill": "named", "Jonas Kohl": "scene"}
    assert "their = Marta Kohl and Hedda Brill" in next(p.match for p in beat.lore if p.name == "Jonas Kohl")


def test_they_are_the_last_beats_subjects_not_everyone_it_mentioned(family) -> None:  # noqa: ANN001
    """Marta shows Ida the ledger; Jonas drags Oskar out: 'they' next is Marta and Jonas, who did things."""
    got = ledger(family, ["Marta shows Ida the ledger; Jonas drags Oskar out of the mill.", "Later, they sit alone by the stove and say nothing."])
    assert picks(got.beats[1]) == {"Marta Kohl": "scene", "Jonas Kohl": "scene"}


def test_a_name_followed_by_of_is_still_the_name(family) -> None:  # noqa: ANN001
    """'accuses Hedda of hiding …': a capitalised name mid-sentence is the name, whatever follows it."""
    beat = ledger(family, ["Marta accuses Hedda of hiding the sluice keys."]).beats[0]
    assert picks(beat).get("Hedda Brill") == "named"


def test_a_named_possessor_and_an_in_law(family) -> None:  # noqa: ANN001
    beat = ledger(family, ["Jonas's brother-in-law owes the mill for a season of flour."]).beats[0]
    assert picks(beat) == {"Jonas Kohl": "named", "Oskar Brill": "scene"}
    beat = ledger(family, ["Oskar's brother-in-law poles across in the rain."]).beats[0]
    assert picks(beat) == {"Oskar Brill": "named", "Jonas Kohl": "scene"}


def test_two_entries_that_fit_equally_are_refused_and_explained(family) -> None:  # noqa: ANN001
    """Jonas has two sisters in the bible: 'his sister' is neither, and --explain says why."""
    beat = ledger(family, ["Jonas ties up the skiff and waits for his sister."], explain=True).beats[0]
    assert "Marta Kohl" not in picks(beat) and "Hedda Brill" not in picks(beat)
    refused = {d.name for d in beat.dropped if d.reason.startswith("ambiguous")}
    assert refused == {"Marta Kohl", "Hedda Brill"}


def test_a_relative_the_bible_does_not_have_is_no_one_on_stage(family) -> None:  # noqa: ANN001
    got = ledger(family, ["Hedda and Ida mend a sail.", "Ida writes to her mother in the city."])
    assert "Hedda Brill" not in picks(got.beats[1])  # Hedda is on stage, but she is not Ida's mother


# -- nouns the bible defines ---------------------------------------------------------------------------------


@pytest.mark.parametrize("beat", ["Water slops in the bottom of the skiff.", "The boat leaks at the stern again."])
def test_a_thing_named_by_what_its_entry_says_it_is(family, beat: str) -> None:  # noqa: ANN001
    assert picks(ledger(family, [beat]).beats[0]).get("Grey Heron") == "scene"


def test_a_title_the_lore_gives_goes_to_the_holder_it_names_with_the_article(family) -> None:  # noqa: ANN001
    """Both men's lore gives them the title; "the Skipper" is the one whose lore says "the Skipper",
    and an ordinary lower-case "skipper" is no title at all."""
    # (the weir is Falling Water, the bible's only weir)
    assert picks(ledger(family, ["The Skipper curses the weir."]).beats[0]) == {"Oskar Brill": "named", "Falling Water": "scene"}
    assert picks(ledger(family, ["Ida asks the old skipper about the weir."]).beats[0]) == {"Ida Brill": "named", "Falling Water": "scene"}


def test_an_event_named_after_someone_in_the_beat_comes_in_when_the_beat_describes_it(family) -> None:  # noqa: ANN001
    beat = ledger(family, ["Jonas remembers the flood night his skiff overturned and the river dragged him under the ice."], top_k=3).beats[0]
    assert picks(beat).get("The Capsizing of Jonas Kohl") == "similar"
    beat = ledger(family, ["Jonas counts coins for the flour bill at the mill door."], top_k=3).beats[0]
    assert "The Capsizing of Jonas Kohl" not in picks(beat)


# -- false triggers -------------------------------------------------------------------------------------------


def test_a_name_made_of_ordinary_words_in_lower_case_is_those_words(family) -> None:  # noqa: ANN001
    beat = ledger(family, ["Oskar lies awake listening to falling water on the roof."]).beats[0]
    assert "Falling Water" not in picks(beat)
    assert "Falling Water" in picks(ledger(family, ["Oskar's barge broke on Falling Water."]).beats[0])


def test_a_title_inside_a_longer_capitalised_name_is_not_the_title(family) -> None:  # noqa: ANN001
    beat = ledger(family, ["Ida joins the River Fellowship choir on the quay."]).beats[0]
    assert "Ebbing Fellowship of Millers" not in picks(beat)
    assert "Ebbing Fellowship of Millers" in picks(ledger(family, ["The Fellowship raises the price of flour."]).beats[0])


# -- writer overrides ----------------------------------------------------------------------------------------


def test_overrides_force_in_and_keep_out_and_never_reach_the_text(family) -> None:  # noqa: ANN001
    [beat] = parse_beats("1. Marta and Jonas argue at the mill. +Hedda Brill -Jonas\n")
    assert beat == "Marta and Jonas argue at the mill." and beat.overrides == (("+", "Hedda Brill"), ("-", "Jonas"))
    got = ledger(family, ["Marta and Jonas argue at the mill. +Hedda Brill -Jonas"]).beats[0]
    assert got.text == "Marta and Jonas argue at the mill."
    assert picks(got) == {"Hedda Brill": "writer", "Marta Kohl": "named"}
    assert [(d.name, d.reason) for d in got.dropped] == [("Jonas Kohl", "writer")]


def test_an_override_naming_no_entry_is_one_clear_error(family) -> None:  # noqa: ANN001
    with pytest.raises(BibleError, match=r"beat 1: '\+Nobody' names no entry"):
        ledger(family, ["Marta counts sacks. +Nobody"])


def test_a_dash_or_a_sign_inside_a_beat_is_not_an_override() -> None:
    assert parse_beat("Jonas - soaked - poles on; the river is -4 today").overrides == ()
    assert parse_beat("Marta grins at Helix-Lunar men").overrides == ()


# -- the ledger's reasons ------------------------------------------------------------------------------------


def test_the_weakest_candidate_never_clears_the_margin_by_default(family) -> None:  # noqa: ANN001
    """Every candidate clears the threshold here; the lowest-ranked has nothing below it to stand
    out from, so it is left out for the margin, and nothing below a margin failure gets in."""
    beat = ledger(family, ["Rain on the river all night."], explain=True, threshold=-1.0, margin=0.01, top_k=100).beats[0]
    ranked = [d for d in beat.dropped if d.reason in ("margin", "top_k")]
    assert ranked and ranked[-1].reason == "margin"
    similar = [p.score for p in beat.lore if p.reason == "similar"]
    failed = [d.score for d in beat.dropped if d.reason == "margin"]
    assert not similar or not failed or min(similar) >= max(failed)


def test_threshold_and_margin_are_told_apart(family) -> None:  # noqa: ANN001
    beat = ledger(family, ["Flour dust hangs over the mill wheel."], explain=True, threshold=0.99, top_k=3).beats[0]
    assert {d.reason for d in beat.dropped} == {"threshold"}
    beat = ledger(family, ["Flour dust hangs over the mill wheel."], explain=True, threshold=-1.0, margin=0.99, top_k=3).beats[0]
    assert {d.reason for d in beat.dropped} == {"margin"}


def test_top_k_zero_with_explain_still_says_what_was_left_out(family) -> None:  # noqa: ANN001
    beat = ledger(family, ["Flour dust hangs over the mill wheel."], explain=True, top_k=0).beats[0]
    assert [p for p in beat.lore if p.reason == "similar"] == []
    assert beat.dropped and {d.reason for d in beat.dropped} <= {"top_k", "threshold", "margin"}


def test_an_entry_cut_to_its_lead_is_marked_shortened(family) -> None:  # noqa: ANN001
    settings, st = family
    r = Retriever(settings.model_copy(update={"budget": 60, "top_k": 0}), st, "family")
    beat = r.ledger(["Marta argues with Oskar."]).beats[0]
    for p in beat.lore:
        e = r.entries[p.id]
        assert p.shortened == (p.tokens < e.tokens)
    assert any(p.shortened for p in beat.lore)
