"""People described, not named, titles with several holders, and pronouns inside a beat, on a small
mountain-monastery bible written for these tests (not the samples, not the dev sets).

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

MONASTERY = {
    "notes/style.md": "---\nname: Style\nalways: true\n---\nCold air, bells, few words.\n",
    "characters/ambrose.md": """---
name: Abbot Ambrose
aliases: [Ambrose]
tags: [abbot]
---
Ambrose is the abbot of Saint Calder's, seventy, one-armed since an avalanche in his youth. He sings the night office alone when the others sleep, and he keeps the keys of the library on a cord.
""",
    "characters/tomas.md": """---
name: Brother Tomas
aliases: [Tomas]
tags: [monk]
---
Tomas is a monk of Saint Calder's and its cellarer, forty, red-bearded and heavy. He brews the brown beer the valley buys, and he keeps the accounts.
""",
    "characters/ilse.md": """---
name: Ilse Varga
aliases: [Ilse]
tags: [rescuer]
---
Ilse Varga is the abbey's guide, a mountain guide from the village below, thirty, freckled and quick. She leads pilgrims over the Calder Pass, and she carries a red rope.
""",
    "characters/petra.md": """---
name: Petra Lenz
aliases: [Petra]
---
Petra Lenz is the village's guide, a mountain guide from the valley, fifty, weathered and slow. She takes hunters up the north face, and she has never crossed the pass in winter.
""",
    "characters/oswin.md": """---
name: Oswin Hale
aliases: [Oswin]
tags: [pilgrim]
---
Oswin Hale is a pilgrim from the lowland cities, a lean clerk in a borrowed coat. He came up to Saint Calder's to copy its books, and he coughs in the cold.
""",
    "characters/greta.md": """---
name: Greta Lenz
aliases: [Greta]
---
Greta Lenz is Petra Lenz's older sister and the abbey's beekeeper, sixty, deaf in one ear. She keeps forty hives on the terraces below the wall, and she sells the honey in the village.
""",
    "places/abbey.md": """---
name: Saint Calder's
---
Saint Calder's is an abbey of grey stone below the Calder Pass, the last house before the glacier. Its library holds four hundred books, and its bell can be heard in the village.
""",
}


@pytest.fixture(scope="module")
def monastery(tmp_path_factory: pytest.TempPathFactory, _isolated_env: None) -> Iterator[tuple[Settings, Store]]:
    settings, _ = ingested(tmp_path_factory, "monastery", MONASTERY)
    with Store.open(settings) as st:
        yield settings, st


def beats(monastery: tuple[Settings, Store], sheet: list[str]) -> list[BeatLore]:
    settings, st = monastery
    return Retriever(settings, st, "monastery").ledger(sheet).beats


def scene(beat: BeatLore) -> dict[str, str | None]:
    return {p.name: p.match for p in beat.lore if p.reason == "scene"}


def test_a_person_described_by_their_lore(monastery) -> None:  # noqa: ANN001
    got = beats(monastery, ["At midnight a one-armed man sings in the empty chapel."])[0]
    assert "Abbot Ambrose" in scene(got)
    assert "described" in scene(got)["Abbot Ambrose"]


def test_a_description_qualified_by_what_their_lore_says(monastery) -> None:  # noqa: ANN001
    got = beats(monastery, ["The monk with the red beard rolls a cask into the yard."])[0]
    assert "Brother Tomas" in scene(got)


def test_a_title_with_two_holders_goes_to_the_one_the_description_fits(monastery) -> None:  # noqa: ANN001
    """Both women are guides; only Petra's lore takes hunters up the north face."""
    got = beats(monastery, ["The guide who takes hunters up the north face will not go today."])[0]
    assert "Petra Lenz" in scene(got)
    assert "Ilse Varga" not in scene(got)


def test_a_description_naming_what_their_defining_sentence_names(monastery) -> None:  # noqa: ANN001
    """'a man from Saint Calder's': the person whose defining sentence names the abbey and fits 'man'."""
    got = beats(monastery, ["A red-bearded monk from Saint Calder's sells beer in the village."])[0]
    assert "Brother Tomas" in scene(got)


def test_a_title_with_two_holders_and_nothing_to_choose_by_is_refused(monastery) -> None:  # noqa: ANN001
    got = beats(monastery, ["Oswin waits for the guide at the gate."])[0]
    assert not {"Ilse Varga", "Petra Lenz"} & set(scene(got))


def test_a_title_goes_to_the_holder_on_stage(monastery) -> None:  # noqa: ANN001
    got = beats(monastery, ["Petra counts the hunters' rifles in the village.", "Oswin asks the guide about the north face."])
    assert "Petra Lenz" in scene(got[1])
    assert "Ilse Varga" not in scene(got[1])


def test_a_pronoun_opening_a_later_sentence_means_the_person_just_named(monastery) -> None:  # noqa: ANN001
    """'Ilse is not there. She is …': Ilse, not the woman on stage from the last beat."""
    got = beats(monastery, ["Petra climbs alone.", "Ilse is not at the gate. She is asleep in the guest house."])
    assert "Petra Lenz" not in {p.name for p in got[1].lore}


def test_an_object_pronoun_after_a_new_clause_subject(monastery) -> None:  # noqa: ANN001
    """'Oswin coughs at the door; Tomas lets him in': him is Oswin, named in the beat, not the man on stage."""
    got = beats(monastery, ["Ambrose rings the bell.", "Oswin coughs at the door; Tomas lets him in."])
    assert "Abbot Ambrose" not in {p.name for p in got[1].lore}


def test_he_in_the_next_beat_is_the_last_beats_subject(monastery) -> None:  # noqa: ANN001
    """The stage keeps the order of the beat: its subject, named first, is 'he' in the next."""
    got = beats(monastery, ["The pilgrim copies a psalter while Tomas watches from the door.", "He asks for more ink."])
    assert scene(got[1]) == {"Oswin Hale": "he"}


def test_the_old_man_is_the_oldest_man_the_lore_gives_an_age_for(monastery) -> None:  # noqa: ANN001
    got = beats(monastery, ["Tomas and Ambrose count the casks.", "The old man sits down on the cellar steps."])
    assert "Abbot Ambrose" in scene(got[1])
    assert "Brother Tomas" not in scene(got[1])
    alone = beats(monastery, ["At dawn the old man rings the bell."])[0]
    assert "Abbot Ambrose" in scene(alone)  # seventy against forty: clearly the bible's oldest man


def test_a_tag_only_people_carry_names_its_holder(monastery) -> None:  # noqa: ANN001
    got = beats(monastery, ["The rescuer brings a frozen hunter down from the pass."])[0]
    assert "Ilse Varga" in scene(got)


def test_a_description_the_beat_says_is_someone_carries_no_one_else(monastery) -> None:  # noqa: ANN001
    """'the woman at the gate is Ilse': not Petra, the woman on stage."""
    got = beats(monastery, ["Petra climbs alone.", "The woman at the gate is Ilse, back from the pass."])
    assert "Petra Lenz" not in {p.name for p in got[1].lore}


def test_a_pronoun_for_someone_new_in_the_beat_carries_no_one(monastery) -> None:  # noqa: ANN001
    got = beats(monastery, ["Tomas sweeps the yard.", "Ambrose meets a stranger who says he crossed the glacier alone."])
    assert "Brother Tomas" not in {p.name for p in got[1].lore}


def test_two_things_are_not_two_people(monastery) -> None:  # noqa: ANN001
    got = beats(monastery, ["Petra and Ilse rope up at the gate.", "The two ropes freeze stiff overnight."])
    assert scene(got[1]) == {}


def test_they_are_the_people_the_last_beat_was_about(monastery) -> None:  # noqa: ANN001
    """Not the owner of the pack nor the man in the 'because' clause: the two who lifted it."""
    got = beats(monastery, ["Ilse and Petra lift Oswin's pack onto the mule because Ambrose asked it.", "Tomas tells them the pass is closed."])
    assert set(scene(got[1])) == {"Ilse Varga", "Petra Lenz"}


def test_a_role_owned_by_a_thing_is_the_role_not_the_thing(monastery) -> None:  # noqa: ANN001
    """'the abbey's beekeeper': Greta is a beekeeper, not an abbey — 'the abbey' never carries her in."""
    abbey, role = beats(monastery, ["Oswin reaches the abbey at dusk, half frozen.", "The beekeeper smokes the hives before the frost."])
    assert "Greta Lenz" not in {p.name for p in abbey.lore}
    assert "Greta Lenz" in scene(role)
