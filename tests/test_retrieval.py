"""Choosing each beat's lore: always > named > scene > similar, within a token budget, with
nothing dropped silently — and the ledger shape `b2p lore --json` prints.

Real ingest, real Chroma, real embedding model: a small hand-written bible (tests/lore_bibles.py)
and, for the issue's named-entry traps, the sample drowned_archive bible.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from b2p.models import BeatLore, Ledger
from b2p.retrieval import Retriever
from b2p.settings import Settings
from b2p.store import Store
from tests.lore_bibles import HARBOUR, ingested

PRIORITY = ["always", "named", "scene", "similar"]


@pytest.fixture(scope="module")
def harbour(tmp_path_factory: pytest.TempPathFactory, _isolated_env: None) -> Iterator[tuple[Settings, Store]]:
    settings, _ = ingested(tmp_path_factory)
    with Store.open(settings) as st:
        yield settings, st


@pytest.fixture(scope="module")
def drowned(sample_store: Settings) -> Iterator[Retriever]:
    with Store.open(sample_store) as st:
        yield Retriever(sample_store, st, "drowned_archive")


def retriever(harbour: tuple[Settings, Store], **changes: Any) -> Retriever:
    settings, st = harbour
    return Retriever(settings.model_copy(update=changes), st, "harbour")


def one(harbour: tuple[Settings, Store], beat: str, explain: bool = False, **changes: Any) -> BeatLore:
    return retriever(harbour, **changes).ledger([beat], explain=explain).beats[0]


def body(entry_id: str) -> str:
    """An entry's lore as written in the bible file (below its front matter)."""
    return HARBOUR[f"{entry_id}.md"].split("---\n", 2)[2].strip()


def picks(beat: BeatLore) -> dict[str, str]:
    """Entry name → reason, leaving out the always-on notes."""
    return {p.name: p.reason for p in beat.lore if p.reason != "always"}


# -- always ------------------------------------------------------------------------------------------


def test_always_entries_lead_every_beat(harbour) -> None:  # noqa: ANN001
    got = retriever(harbour).ledger(["Nell dives off the jetty.", "Rain falls all night.", "She surfaces, gasping."])
    for beat in got.beats:
        first = beat.lore[0]
        assert (first.name, first.reason, first.score, first.match) == ("Style", "always", 1.0, None)
        assert [p.name for p in beat.lore if p.reason == "always"] == ["Style"]


def test_a_disabled_entry_never_appears(harbour) -> None:  # noqa: ANN001
    """Gideon Pike and an always-on note are `enabled: false`: not named, not similar, not always, not even 'left out'."""
    beats = [
        "Gideon Pike hides a cask in a hollow buoy while Gideon's crew keeps watch.",
        "A smuggler hides rum casks inside hollow channel buoys and pays the harbour children to watch for the cutter.",
        "Grimdark horror with tentacles in every chapter.",
    ]
    got = retriever(harbour, threshold=0.0, margin=0.0, top_k=20).ledger(beats, explain=True)
    for beat in got.beats:
        shown = {p.name for p in beat.lore} | {d.name for d in beat.dropped}
        assert "Gideon Pike" not in shown and "Old Genre Note" not in shown, beat
    assert "Gideon Pike" not in {e.name for e in retriever(harbour).entries.values()}


# -- named ---------------------------------------------------------------------------------------------


def test_named_entries_record_the_words_that_named_them(harbour) -> None:  # noqa: ANN001
    beat = one(harbour, "Jack's trawler and Tom\u2019s ferry leave Greyhaven on the ebb tide.")
    named = [(p.name, p.match, p.score) for p in beat.lore if p.reason == "named"]
    assert named == [("Jack Halloran", "Jack's", 1.0), ("Tom Ressler", "Tom\u2019s", 1.0), ("Greyhaven Harbour", "Greyhaven", 1.0)]


def test_ordinary_words_do_not_pull_in_case_sensitive_names(drowned: Retriever) -> None:
    """"a wren" is a bird and "mercy" is mercy: not named, and not sneaked in by similarity either."""
    got = drowned.ledger(["A wren sings from the rigging while Quill works in the Quillon.", "He begs for mercy."])
    assert picks(got.beats[0]) == {"Quill": "named", "Quillon": "named"}
    assert [p.match for p in got.beats[0].lore if p.reason == "named"] == ["Quill", "the Quillon"]
    assert "Mercy" not in picks(got.beats[1])
    assert "Wren" not in {p.name for b in got.beats for p in b.lore}


def test_plurals_possessives_and_the_longest_name(drowned: Retriever) -> None:
    beat = drowned.ledger(["Before dawn at Saltgate, the Captain pockets Captain Brisk's bribe and warns the Tidewardens\u2019 skiffs off."]).beats[0]
    named = {p.name: p.match for p in beat.lore if p.reason == "named"}
    assert named == {"Saltgate Harbour": "Saltgate", "Osric Vane": "the Captain", "Captain Brisk": "Captain Brisk's", "Tidewardens": "Tidewardens\u2019"}
    beat = drowned.ledger(["Three Tidewardens climb to the loft, led by Lieutenant Mercy."]).beats[0]
    assert {p.name: p.match for p in beat.lore if p.reason == "named"} == {"Tidewardens": "Tidewardens", "Mercy": "Lieutenant Mercy"}


def test_a_shared_title_with_nothing_to_decide_by_pulls_in_both(harbour) -> None:  # noqa: ANN001
    beat = one(harbour, "The Skipper casts off at dawn.")
    named = {p.name: p.score for p in beat.lore if p.reason == "named"}
    assert named == {"Jack Halloran": 0.9, "Tom Ressler": 0.9}  # both, each marked less certain than a unique name


def test_a_shared_title_means_whoever_is_on_stage(harbour) -> None:  # noqa: ANN001
    got = retriever(harbour).ledger(["Tom rows a passenger to the outer moorings.", "The Skipper ties up at the harbour wall."])
    named = {p.name: (p.match, p.score) for p in got.beats[1].lore if p.reason == "named"}
    assert named == {"Tom Ressler": ("The Skipper", 1.0)}


def test_a_shared_title_follows_the_pronoun_after_it(drowned: Retriever) -> None:
    assert picks(drowned.ledger(["The Archivist lifts her veil."]).beats[0]) == {"Seraphine Lull": "named"}
    assert picks(drowned.ledger(["The Archivist strokes his beard."]).beats[0]) == {"Brother Ossian": "named"}


def test_a_shared_title_follows_the_company_it_keeps(harbour) -> None:  # noqa: ANN001
    beat = one(harbour, "The Skipper drinks with Nell at the Lamplight.")
    assert {p.name for p in beat.lore if p.reason == "named"} == {"Jack Halloran", "Nell Farrow"}


# -- similar ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("beat", "entry"),
    [
        # ("The old man who lives among flooded shelves" is now read as a description: tests/test_scene.py)
        ("Someone lives among flooded shelves and reads by lamplight.", "Brother Anselm"),
        ("A warm blue glow keeps the water back.", "Heartstone"),
        ("The constables in oilskins collect harbour dues.", "Harbour Watch"),
    ],
)
def test_lore_described_but_not_named_is_found_by_similarity(harbour, beat: str, entry: str) -> None:  # noqa: ANN001
    got = one(harbour, beat)
    similar = {p.name: p for p in got.lore if p.reason == "similar"}
    assert entry in similar
    settings, _ = harbour
    assert settings.threshold <= similar[entry].score < 1.0
    assert similar[entry].match  # the start of the chunk that matched, to show the writer why


def test_explain_lists_the_candidates_below_the_threshold(harbour) -> None:  # noqa: ANN001
    beat = "A recluse lives among the flooded shelves, reading by a single lamp in trapped air."
    quiet = one(harbour, beat, threshold=0.45)
    assert quiet.dropped == []  # without --explain only budget drops are shown
    loud = one(harbour, beat, explain=True, threshold=0.45)
    below = {d.name: d for d in loud.dropped}
    assert "Brother Anselm" in below and below["Brother Anselm"].reason == "threshold"
    assert 0.2 < below["Brother Anselm"].score < 0.45  # close, but not close enough
    assert all(d.reason == "threshold" and d.score < 0.45 for d in loud.dropped)
    assert loud.lore == quiet.lore  # explaining changes what is shown, not what is chosen
    assert not {d.name for d in loud.dropped} & {p.name for p in loud.lore}


def test_a_higher_threshold_turns_a_similar_pick_into_a_threshold_drop(harbour) -> None:  # noqa: ANN001
    beat = "The constables in oilskins collect harbour dues."
    picked = next(p for p in one(harbour, beat).lore if p.name == "Harbour Watch")
    strict = one(harbour, beat, explain=True, threshold=0.99)
    assert "Harbour Watch" not in picks(strict)
    dropped = {d.name: d for d in strict.dropped}
    assert (dropped["Harbour Watch"].reason, dropped["Harbour Watch"].score) == ("threshold", picked.score)


def test_top_k_caps_similar_picks_and_reports_the_rest(harbour) -> None:  # noqa: ANN001
    beat = "Who charts the harbour currents and sells the charts to smugglers?"
    wide = [p.name for p in one(harbour, beat).lore if p.reason == "similar"]
    assert len(wide) >= 2
    narrow = one(harbour, beat, explain=True, top_k=1)
    assert [p.name for p in narrow.lore if p.reason == "similar"] == wide[:1]
    assert {d.name: d.reason for d in narrow.dropped}[wide[1]] == "top_k"
    assert [p for p in one(harbour, beat, top_k=0).lore if p.reason == "similar"] == []


def test_an_entry_is_picked_once_for_its_strongest_reason(harbour) -> None:  # noqa: ANN001
    """Named *and* described, carried *and* described: one pick each, with the higher-priority reason."""
    got = retriever(harbour).ledger([
        "Anselm, the monk who lives among flooded shelves, reads by lamplight in a pocket of trapped air.",
        "He admits he is the old man who lives among flooded shelves, sealed in the vault forty years ago.",
        "A warm blue glow keeps the water back; Nell stares at the Heartstone, a stone that glows a warm steady blue.",
    ])
    for beat in got.beats:
        ids = [p.id for p in beat.lore]
        assert len(ids) == len(set(ids)), beat
    assert [p.reason for p in got.beats[0].lore if p.name == "Brother Anselm"] == ["named"]
    assert [p.reason for p in got.beats[1].lore if p.name == "Brother Anselm"] == ["scene"]
    assert [p.reason for p in got.beats[2].lore if p.name == "Heartstone"] == ["named"]


# -- the budget --------------------------------------------------------------------------------------------

SHEET = ["Nell dives off the jetty at dawn.", "Jack hauls her aboard as constables in oilskins collect harbour dues."]


def test_the_budget_drops_the_lowest_priority_first_and_says_so(harbour) -> None:  # noqa: ANN001
    full = retriever(harbour).ledger(SHEET).beats[1]
    assert [(p.name, p.reason) for p in full.lore] == [
        ("Style", "always"), ("Jack Halloran", "named"), ("Nell Farrow", "scene"), ("Harbour Watch", "similar")]
    r = retriever(harbour)
    core = {p.id: min(r.entries[p.id].tokens, r.entries[p.id].lead_tokens) for p in full.lore}
    # Room for the always note and the named entry (at least their leads), not for the scene and similar picks.
    budget = core["notes/style"] + core["characters/jack"]
    tight = retriever(harbour, budget=budget).ledger(SHEET).beats[1]
    assert [p.name for p in tight.lore] == ["Style", "Jack Halloran"]
    assert [(d.name, d.reason) for d in tight.dropped] == [("Nell Farrow", "budget"), ("Harbour Watch", "budget")]
    scores = {p.name: p.score for p in full.lore}
    assert all(d.score == scores[d.name] for d in tight.dropped)
    assert sum(p.tokens for p in tight.lore) <= budget


def test_nothing_disappears_silently_at_any_budget(harbour) -> None:  # noqa: ANN001
    beat = "Nell, Jack, Tom and Anselm meet at the Sunken Library while a warm blue glow keeps the water back."
    full = one(harbour, beat)
    everyone = [p.name for p in full.lore]
    assert len(everyone) >= 6
    for budget in (0, 60, 150, 300, 450, 2000):
        got = one(harbour, beat, budget=budget)
        kept = [p.name for p in got.lore]
        dropped = [d.name for d in got.dropped]
        assert all(d.reason == "budget" for d in got.dropped)
        assert sorted(kept + dropped) == sorted(everyone), budget  # each candidate exactly once: kept or reported
        assert sum(p.tokens for p in got.lore) <= budget
        assert [p.reason for p in got.lore] == sorted((p.reason for p in got.lore), key=PRIORITY.index)
    assert [d.name for d in one(harbour, beat, budget=0).dropped] == everyone  # in priority order


def test_a_long_entry_shrinks_to_its_lead_before_anything_is_dropped(harbour) -> None:  # noqa: ANN001
    beat = "Nell and Jack row Anselm out to the Sunken Library."
    r = retriever(harbour)
    full = r.ledger([beat]).beats[0]
    anselm = r.entries["characters/anselm"]
    assert anselm.lead_tokens < anselm.tokens  # the fixture's long entry
    assert {p.name: p.tokens for p in full.lore}["Brother Anselm"] == anselm.tokens
    room = sum(p.tokens for p in full.lore) - anselm.tokens + anselm.lead_tokens  # everything, Anselm at his lead
    cut = retriever(harbour, budget=room)
    got = cut.ledger([beat]).beats[0]
    assert got.dropped == []
    assert [p.name for p in got.lore] == [p.name for p in full.lore]
    tokens = {p.id: p.tokens for p in got.lore}
    assert tokens["characters/anselm"] == anselm.lead_tokens < anselm.tokens
    texts = cut.pick_texts(got)
    assert texts["characters/anselm"] == anselm.lead
    assert anselm.lead.startswith("Brother Anselm is an old monk") and "He has not seen daylight" not in anselm.lead
    for p in got.lore:  # the rest go in whole
        if p.id != "characters/anselm":
            assert p.tokens == cut.entries[p.id].tokens
            assert texts[p.id] == body(p.id)


def test_pick_texts_are_the_whole_entries_when_they_fit(harbour) -> None:  # noqa: ANN001
    r = retriever(harbour)
    beat = r.ledger(["Anselm reads to Nell by lamplight."]).beats[0]
    texts = r.pick_texts(beat)
    assert texts == {p.id: body(p.id) for p in beat.lore}
    assert "He has not seen daylight in forty years." in texts["characters/anselm"]


def test_a_character_cut_by_the_budget_is_still_on_stage(harbour) -> None:  # noqa: ANN001
    beats = ["Jack and Tom watch Nell dive off the jetty.", "She surfaces with a brass compass."]
    got = retriever(harbour, budget=100).ledger(beats)
    assert "Nell Farrow" in {d.name for d in got.beats[0].dropped}  # the budget cut her from beat 1…
    second = {p.name for p in got.beats[1].lore} | {d.name for d in got.beats[1].dropped}
    assert "Nell Farrow" in second  # …but "she" in beat 2 is still Nell (and she fits there)


# -- the ledger's shape ------------------------------------------------------------------------------------


def test_the_ledger_json_has_exactly_the_documented_shape(harbour) -> None:  # noqa: ANN001
    ledger = retriever(harbour, budget=150).ledger(SHEET, explain=True)
    data = json.loads(ledger.model_dump_json())
    assert set(data) == {"bible", "chapter", "held_back", "beats"} and data["bible"] == "harbour"
    assert data["chapter"] is None and data["held_back"] == []  # no chapter: the whole bible (see test_book for a book's)
    assert [b["index"] for b in data["beats"]] == [1, 2]
    assert [b["text"] for b in data["beats"]] == SHEET
    seen_pick = seen_drop = False
    for b in data["beats"]:
        assert set(b) == {"index", "text", "lore", "dropped", "resolver"} and b["resolver"] is None  # the rules chose
        for p in b["lore"]:
            seen_pick = True
            assert set(p) == {"name", "id", "kind", "reason", "score", "match", "tokens", "shortened"}
            assert p["reason"] in PRIORITY
            assert isinstance(p["name"], str) and isinstance(p["id"], str) and isinstance(p["kind"], str)
            assert isinstance(p["score"], float) and isinstance(p["tokens"], int) and isinstance(p["shortened"], bool)
            assert p["match"] is None or isinstance(p["match"], str)
            assert (p["match"] is None) == (p["reason"] == "always")
        for d in b["dropped"]:
            seen_drop = True
            assert set(d) == {"name", "reason", "score"}
            assert isinstance(d["name"], str) and isinstance(d["reason"], str) and isinstance(d["score"], float)
    assert seen_pick and seen_drop
    assert Ledger.model_validate(data) == ledger  # the same objects generation's trace will use
