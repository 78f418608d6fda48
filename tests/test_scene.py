"""Scene carry: a beat that refers back without naming ("she rows out…", "the girl swears…",
"Jack cuts him off") gets exactly the entry it points to, not everyone seen lately.

Real ingest, real store, real embedding model, on a small hand-written bible (tests/lore_bibles.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from b2p.models import BeatLore, Ledger
from b2p.retrieval import Retriever
from b2p.settings import Settings
from b2p.store import Store
from tests.lore_bibles import ingested

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def harbour(tmp_path_factory: pytest.TempPathFactory, _isolated_env: None) -> Iterator[tuple[Settings, Store]]:
    settings, _ = ingested(tmp_path_factory)
    with Store.open(settings) as st:
        yield settings, st


def ledger(harbour: tuple[Settings, Store], beats: list[str], **changes: Any) -> Ledger:
    settings, st = harbour
    return Retriever(settings.model_copy(update=changes), st, "harbour").ledger(beats)


def scene(beat: BeatLore) -> dict[str, str | None]:
    """Scene picks of a beat: entry name → the words that pointed at it."""
    return {p.name: p.match for p in beat.lore if p.reason == "scene"}


def names(beat: BeatLore) -> set[str]:
    return {p.name for p in beat.lore}


def test_she_carries_the_woman_on_stage_not_the_man(harbour) -> None:  # noqa: ANN001
    got = ledger(harbour, ["Nell and Jack row out to the wreck at dawn.", "She ties the boat off and climbs the ladder."])
    assert scene(got.beats[1]) == {"Nell Farrow": "she"}
    assert "Jack Halloran" not in names(got.beats[1])


def test_she_rows_out_carries_only_her(harbour) -> None:  # noqa: ANN001
    got = ledger(harbour, ["Jack and Nell haul the nets aboard.", "She rows out past the breakwater alone."])
    assert scene(got.beats[1]) == {"Nell Farrow": "she"}
    assert names(got.beats[1]) == {"Style", "Nell Farrow"}


def test_he_admits_carries_the_man_most_recently_on_stage(harbour) -> None:  # noqa: ANN001
    got = ledger(harbour, [
        "Jack mends nets on the harbour wall.",
        "Tom rows a passenger to the outer moorings.",
        "He admits he sold the chart to a stranger last winter.",
    ])
    assert scene(got.beats[2]) == {"Tom Ressler": "he"}
    assert "Jack Halloran" not in names(got.beats[2])


def test_the_girl_is_the_girl_not_the_woman_seen_last(harbour) -> None:  # noqa: ANN001
    """Agatha (she) is on stage more recently than Nell; only Nell's lore says she is a girl."""
    got = ledger(harbour, [
        "Nell slips out past the harbour wall.",
        "Aunt Agatha calls after her from the tavern door.",
        "The girl swears on her father's compass to come back before dark.",
    ])
    assert scene(got.beats[1]) == {"Nell Farrow": "her"}
    assert scene(got.beats[2]) == {"Nell Farrow": "the girl"}
    assert "Agatha Moss" not in names(got.beats[2])


def test_jack_cuts_him_off_carries_the_other_man(harbour) -> None:  # noqa: ANN001
    got = ledger(harbour, ["Tom and Nell argue about the chart on the jetty.", "Jack cuts him off before he can finish."])
    beat = got.beats[1]
    assert [(p.name, p.reason) for p in beat.lore if p.reason != "always"] == [("Jack Halloran", "named"), ("Tom Ressler", "scene")]
    assert scene(beat) == {"Tom Ressler": "him"}


def test_a_pronoun_for_someone_else_named_in_the_beat(harbour) -> None:  # noqa: ANN001
    got = ledger(harbour, ["Nell and Jack row out.", "Nell ties the boat off while he climbs the ladder."])
    beat = got.beats[1]
    assert scene(beat) == {"Jack Halloran": "he"}
    assert [p.reason for p in beat.lore if p.name == "Nell Farrow"] == ["named"]  # named, not carried as well


def test_singular_they_carries_the_person_who_uses_it(harbour) -> None:  # noqa: ANN001
    got = ledger(harbour, [
        "Nell sleeps in the boat below.",
        "Rook studies the tide tables alone in the attic.",
        "They roll up their charts and head down to the pier.",
    ])
    assert scene(got.beats[2]) == {"Rook Sable": "they"}
    assert "Nell Farrow" not in names(got.beats[2])


def test_plural_they_carries_the_group(harbour) -> None:  # noqa: ANN001
    got = ledger(harbour, ["Jack and Tom haul the nets aboard.", "They rest on the harbour wall until the rain stops."])
    people = {name: cue for name, cue in scene(got.beats[1]).items() if name != "Greyhaven Harbour"}  # its harbour wall
    assert people == {"Jack Halloran": "they", "Tom Ressler": "they"}


def test_a_beat_that_refers_to_no_one_carries_no_one(harbour) -> None:  # noqa: ANN001
    got = ledger(harbour, ["Nell and Jack row out to the wreck.", "Rain falls over the harbour all night."])
    assert scene(got.beats[1]) == {}
    assert names(got.beats[1]) == {"Style"}


def test_scene_depth_limits_how_far_back_a_pronoun_reaches(harbour) -> None:  # noqa: ANN001
    beats = ["Nell dives off the jetty.", "Rain drums on the harbour wall.", "Gulls circle the net lofts.", "She surfaces with a brass compass."]
    assert scene(ledger(harbour, beats, scene_depth=3).beats[3]) == {"Nell Farrow": "she"}
    assert scene(ledger(harbour, beats, scene_depth=2).beats[3]) == {}
    assert scene(ledger(harbour, beats, scene_depth=0).beats[3]) == {}
    near = next(p for p in ledger(harbour, [beats[0], beats[3]]).beats[1].lore if p.reason == "scene")
    far = next(p for p in ledger(harbour, beats).beats[3].lore if p.reason == "scene")
    assert near.score > far.score  # a pronoun two lines on is surer than one three beats on


def test_someone_described_then_referred_to_is_carried(harbour) -> None:  # noqa: ANN001
    """A described person is on stage too: the monk described in one beat is 'he' in the next."""
    got = ledger(harbour, ["The old man who lives among flooded shelves reads by lamplight.", "He admits he sealed himself in the vault."])
    # The description fits his lore ("flooded shelves", "lamp") and no one else's: the scene reads it first.
    assert [(p.name, p.reason) for p in got.beats[0].lore if p.reason != "always"] == [("Brother Anselm", "scene")]
    assert "described" in (got.beats[0].lore[-1].match or "")
    assert scene(got.beats[1]) == {"Brother Anselm": "he"}


def test_a_stone_means_the_bibles_only_stone(harbour) -> None:  # noqa: ANN001
    got = ledger(harbour, ["Nell finds a stone on the seabed; it glows in her hand."])
    assert scene(got.beats[0]) == {"Heartstone": "a stone"}


def test_scene_picks_are_never_duplicated_and_rank_below_named(harbour) -> None:  # noqa: ANN001
    got = ledger(harbour, [
        "Tom and Nell argue about the chart on the jetty.",
        "Jack cuts him off before he can finish.",
        "She takes the chart and he follows her down the ladder.",
    ])
    for beat in got.beats:
        ids = [p.id for p in beat.lore]
        assert len(ids) == len(set(ids)), beat
        reasons = [p.reason for p in beat.lore]
        order = ["always", "named", "scene", "similar"]
        assert reasons == sorted(reasons, key=order.index), beat
        assert all(0 < p.score < 1 for p in beat.lore if p.reason == "scene")


def test_pronouns_are_inferred_from_each_entrys_lore(harbour) -> None:  # noqa: ANN001
    settings, st = harbour
    entries = {e.name: e.pronouns for e in Retriever(settings, st, "harbour").entries.values()}
    assert entries["Nell Farrow"] == "she"
    assert entries["Jack Halloran"] == "he"
    assert entries["Rook Sable"] == "they"
    assert entries["Heartstone"] is None and entries["Sunken Library"] is None


def test_he_admits_he_is_the_named_one_carries_no_one_else(harbour) -> None:  # noqa: ANN001
    got = ledger(harbour, [
        "Jack rows Nell out to the Sunken Library at first light.",
        "Nell dives deep into the flooded reading rooms.",
        "An old man in a rotting habit sits reading beside a lamp among flooded shelves.",
        "He admits he is the Hermit the harbour children whisper about.",
    ])
    assert "Brother Anselm" in names(got.beats[3])
    assert "Jack Halloran" not in names(got.beats[3])


@pytest.mark.parametrize("bible", ["lunar_mining", "drowned_archive"])
def test_the_noun_tables_find_exactly_what_reading_every_entry_finds(bible: str) -> None:
    """'The bible's only monk / only stone' is looked up in word tables (10k entries cost the same
    as 10); they must agree with reading each entry's lore for every noun a beat can use."""
    from b2p import scene
    from ingest.bible import read_bible

    entries = {e.id: e for e in read_bible(REPO / "story_bibles" / bible).entries}
    tables = scene.Describers(entries.values())
    words = {w.lower() for e in entries.values() for w in re.findall(r"[A-Za-z]+", " ".join((*e.keys(), *e.tags, e.text[:400])))}
    nouns = sorted(words | tables.roles | tables.objects)
    assert len(nouns) > 300
    for noun in nouns:
        for people, test in ((True, scene.is_person), (False, scene.is_item)):
            scanned = {e.id for e in entries.values() if test(e) and scene._says(e, noun, strict=people, roles=tables.roles)}
            got = tables.find(noun, people)
            assert got == scanned or (got is None and not re.fullmatch(r"\w+", noun)), (noun, people)
