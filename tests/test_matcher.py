"""The name matcher: which entries a beat names, and which words only look like names.

Pure and fast: entries are built in memory, no store, no model.
"""

from __future__ import annotations

import pytest

from b2p.matcher import Mention, NameMatcher
from b2p.models import LoreEntry


def entry(id_: str, name: str, *aliases: str, kind: str = "character", case_sensitive: bool = False) -> LoreEntry:
    return LoreEntry(id=id_, name=name, aliases=list(aliases), kind=kind, case_sensitive=case_sensitive, text=f"{name} is here.")


# A small cast with the traps writers hit: ordinary-word names, a name inside a longer name,
# a title shared by two people, a title that is also the start of another name, a lower-case
# nickname for a place, a corporate "the Company", and a place with a distinctive head noun.
CAST = [
    entry("quill", "Quill", "Old Quill", "Master Quill", "Aurelian Quill", case_sensitive=True),
    entry("quillon", "Quillon", "the Quillon", kind="place"),
    entry("wren", "Wren", "Wrennie", case_sensitive=True),
    entry("mercy", "Mercy", "Lieutenant Mercy", "Mercy Callan", case_sensitive=True),
    entry("fenn", "Fenn", "Fenn Ashcombe", "Ashcombe"),
    entry("tidewardens", "Tidewardens", "the Tidewardens", "Wardens", kind="faction"),
    entry("ossian", "Brother Ossian", "Ossian", "the Archivist", "the Last Archivist"),
    entry("lull", "Seraphine Lull", "Lull", "the High Archivist", "the Archivist", case_sensitive=True),
    entry("brisk", "Captain Brisk", "Brisk", "Odile Brisk", case_sensitive=True),
    entry("vane", "Osric Vane", "Vane", "the Harbourmaster", "the Captain"),
    entry("meridian", "Outpost Meridian", "Meridian", "the base", kind="place"),
    entry("varro", "Varro Crater", "Varro", "Site Nine", kind="place"),
    entry("helix", "Helix-Lunar Consolidated", "Helix-Lunar", "the Company", kind="faction"),
    entry("thorne", "Selene Thorne", "Dr. Thorne", "Selene"),
    entry("ember", "Ysolde's Ember", "the Ember", kind="item"),
]


@pytest.fixture(scope="module")
def matcher() -> NameMatcher:
    return NameMatcher(CAST)


def named(matcher: NameMatcher, text: str) -> list[tuple[str, tuple[str, ...]]]:
    """(matched text, entry ids) per mention, in text order."""
    return [(m.text, m.entry_ids) for m in matcher.find(text)]


def ids(matcher: NameMatcher, text: str) -> set[str]:
    return {i for m in matcher.find(text) for i in m.entry_ids}


# -- whole words ------------------------------------------------------------------------------


def test_a_name_never_fires_inside_a_longer_word(matcher: NameMatcher) -> None:
    assert named(matcher, "Mist hangs over the Quillon at dawn.") == [("the Quillon", ("quillon",))]
    assert ids(matcher, "The Quillons of the old city flood first.") == {"quillon"}  # its plural, still not Quill
    assert ids(matcher, "They pole through the quillon at dawn.") == {"quillon"}  # a case-insensitive place, any case
    assert ids(matcher, "Fennimore and Ashcomber are strangers here.") == set()
    assert ids(matcher, "A weathervane creaks above the harbour.") == set()  # "Vane" at the end of a word
    assert ids(matcher, "Mudfenn and Wildwren are villages; so is Undermeridian.") == set()
    assert ids(matcher, "The Varronian envoy waits.") == set()


def test_a_name_next_to_punctuation_is_still_a_word(matcher: NameMatcher) -> None:
    assert ids(matcher, "(Quill) nods.") == {"quill"}
    assert ids(matcher, '"Fenn!" she shouts.') == {"fenn"}
    assert ids(matcher, "It was Fenn—always Fenn.") == {"fenn"}
    assert named(matcher, "Quill and Fenn.")[0] == ("Quill", ("quill",))


def test_names_are_found_with_their_exact_text_and_position(matcher: NameMatcher) -> None:
    beat = "At dusk, Old Quill pays Fenn."
    got = matcher.find(beat)
    assert [(beat[m.start : m.end], m.text) for m in got] == [("Old Quill", "Old Quill"), ("Fenn", "Fenn")]
    assert all(isinstance(m, Mention) and not m.partial for m in got)


# -- case -------------------------------------------------------------------------------------


def test_a_case_sensitive_name_ignores_the_ordinary_word(matcher: NameMatcher) -> None:
    assert ids(matcher, "A wren sings from the barge's rigging.") == set()
    assert named(matcher, "Wren dives under the barge.") == [("Wren", ("wren",))]
    assert ids(matcher, "He begs for mercy.") == set()
    assert ids(matcher, "Mercy shows him no mercy.") == {"mercy"}
    assert named(matcher, "Mercy shows him no mercy.") == [("Mercy", ("mercy",))]
    assert ids(matcher, "He dips a quill in the ink.") == set()
    assert ids(matcher, "The brisk wind picks up.") == set()


def test_a_case_insensitive_name_matches_any_case(matcher: NameMatcher) -> None:
    assert ids(matcher, "FENN! Get in the boat.") == {"fenn"}
    assert ids(matcher, "fenn ashcombe rows on.") == {"fenn"}
    assert named(matcher, "fenn ashcombe rows on.") == [("fenn ashcombe", ("fenn",))]


def test_a_case_sensitive_title_still_opens_a_sentence(matcher: NameMatcher) -> None:
    """"the Archivist" (case-sensitive for Lull) written as "The Archivist" at the start of a beat."""
    only_lull = NameMatcher([entry("lull", "Seraphine Lull", "the Archivist", case_sensitive=True)])
    assert named(only_lull, "The Archivist receives petitioners.") == [("The Archivist", ("lull",))]
    assert named(only_lull, "Petitioners wait for the Archivist.") == [("the Archivist", ("lull",))]
    assert named(only_lull, "the archivist of the guild counts coins.") == []
    assert named(only_lull, "THE ARCHIVIST returns.") == []


# -- possessives and plurals --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("beat", "text"),
    [
        ("Wren slips off Fenn's punt.", "Fenn's"),
        ("Wren slips off Fenn\u2019s punt.", "Fenn\u2019s"),  # curly apostrophe, as word processors write it
        ("Wren slips off Fenn\u02bcs punt.", "Fenn\u02bcs"),
        ("The Ashcombes' debt grows.", "Ashcombes'"),
    ],
)
def test_possessives_name_the_entry(matcher: NameMatcher, beat: str, text: str) -> None:
    assert named(matcher, beat) == ([("Wren", ("wren",)), (text, ("fenn",))] if beat.startswith("Wren") else [(text, ("fenn",))])


def test_plural_possessive_of_a_group(matcher: NameMatcher) -> None:
    assert named(matcher, "They hide from the Tidewardens' skiffs.") == [("the Tidewardens'", ("tidewardens",))]
    assert named(matcher, "They hide from the Tidewardens\u2019 skiffs.") == [("the Tidewardens\u2019", ("tidewardens",))]
    assert named(matcher, "Captain Brisk's divers sound the depths.") == [("Captain Brisk's", ("brisk",))]


def test_regular_plurals_name_the_entry(matcher: NameMatcher) -> None:
    assert named(matcher, "Three Tidewardens climb to the loft.") == [("Tidewardens", ("tidewardens",))]
    one = NameMatcher([entry("tw", "Tidewarden", kind="faction"), entry("fox", "Fox")])
    assert named(one, "Three Tidewardens climb to the loft.") == [("Tidewardens", ("tw",))]
    assert named(one, "Two Foxes watch the road.") == [("Foxes", ("fox",))]
    assert named(one, "The Foxes' den is empty.") == [("Foxes'", ("fox",))]
    assert named(one, "A Tidewardenship is a lifetime post.") == []


# -- longest match, multi-word ------------------------------------------------------------------


def test_longest_match_wins_where_names_overlap(matcher: NameMatcher) -> None:
    """"Captain Brisk" is Brisk, not whoever owns "the Captain"; "the High Archivist" is Lull alone."""
    assert named(matcher, "Captain Brisk pays the Captain his bribe.") == [("Captain Brisk", ("brisk",)), ("the Captain", ("vane",))]
    assert named(matcher, "The High Archivist frowns.") == [("The High Archivist", ("lull",))]
    assert named(matcher, "Old Quill counts the coins.") == [("Old Quill", ("quill",))]
    assert named(matcher, "Selene Thorne calls Dr. Thorne's lab.") == [("Selene Thorne", ("thorne",)), ("Dr. Thorne's", ("thorne",))]


def test_multi_word_aliases(matcher: NameMatcher) -> None:
    assert named(matcher, "Site Nine is quiet tonight.") == [("Site Nine", ("varro",))]
    assert named(matcher, "Site nine is quiet tonight.") == [("Site nine", ("varro",))]
    assert named(matcher, "She meets Lieutenant Mercy at the gate.") == [("Lieutenant Mercy", ("mercy",))]
    assert named(matcher, "Ysolde's Ember glows.") == [("Ysolde's Ember", ("ember",))]
    assert named(matcher, "Ysolde\u2019s Ember glows.") == [("Ysolde\u2019s Ember", ("ember",))]
    assert named(matcher, "The site is quiet.") == []  # half of a multi-word alias is not the alias


def test_a_shared_alias_returns_every_claimant(matcher: NameMatcher) -> None:
    got = matcher.find("He admits he was once the Archivist.")
    assert len(got) == 1 and got[0].text == "the Archivist"
    assert set(got[0].entry_ids) == {"ossian", "lull"}
    # The longer, unshared title belongs to one of them only.
    assert named(matcher, "He was the Last Archivist.") == [("the Last Archivist", ("ossian",))]


# -- descriptions that are not names -------------------------------------------------------------


def test_a_lower_case_alias_used_as_a_description_does_not_match(matcher: NameMatcher) -> None:
    assert "meridian" not in ids(matcher, "Jack studies the base of the crater wall.")
    assert named(matcher, "Jack drives back to the base before sunset.") == [("the base", ("meridian",))]
    assert named(matcher, "At the base, Jack sleeps.") == [("the base", ("meridian",))]


def test_a_description_at_the_start_of_a_beat_does_not_match(matcher: NameMatcher) -> None:
    assert "meridian" not in ids(matcher, "The base of the crater wall crumbles under the drill.")


def test_a_capitalised_the_title_also_matches_bare(matcher: NameMatcher) -> None:
    """Alias "the Company": "Company rules" names it too, but only with its capital."""
    assert named(matcher, "Company rules forbid it.") == [("Company", ("helix",))]
    assert named(matcher, "The Company owns the suits.") == [("The Company", ("helix",))]
    assert named(matcher, "He keeps poor company.") == []


# -- partial mentions ------------------------------------------------------------------------------


def test_a_head_noun_names_a_place_partially(matcher: NameMatcher) -> None:
    got = matcher.find("Jack and Xander cross the crater at dawn.")
    assert [(m.text, m.entry_ids, m.partial) for m in got] == [("the crater", ("varro",), True)]
    got = matcher.find("Dust drifts over the crater's rim.")
    assert [(m.text, m.entry_ids, m.partial) for m in got] == [("the crater's", ("varro",), True)]
    # The full name is a whole (not partial) mention.
    got = matcher.find("Varro Crater is quiet.")
    assert [(m.text, m.partial) for m in got] == [("Varro Crater", False)]


def test_a_head_noun_is_only_used_when_one_entry_owns_it() -> None:
    two = NameMatcher([entry("v", "Varro Crater", kind="place"), entry("s", "Shackleton Crater", kind="place")])
    assert two.find("They cross the crater.") == []
    people = NameMatcher([entry("t", "Selene Thorne"), entry("k", "Jack Halloran")])
    assert people.find("They pass the thorne and the halloran.") == []  # people are never named by a head noun
    assert people.find("A crater opens.") == []


def test_nothing_is_found_in_an_empty_or_nameless_beat(matcher: NameMatcher) -> None:
    assert matcher.find("") == []
    assert matcher.find("Rain falls over the lagoon all night.") == []
    assert matcher.find("...!?") == []


def test_an_empty_bible_matches_nothing() -> None:
    assert NameMatcher([]).find("Quill and Fenn") == []


def test_a_title_before_another_entrys_name_is_that_entry() -> None:
    m = NameMatcher([entry("brisk", "Odile Brisk", "Brisk"), entry("vane", "Osric Vane", "the Captain")])
    assert ids(m, "Captain Brisk pockets the bribe.") == {"brisk"}


def test_a_full_name_inside_a_longer_name_is_named_too() -> None:
    """The event or thing named after someone is about them: "the night Sir Orrin died" names the event
    and Sir Orrin; a single name word inside a place name ("Vale" in "Vale Hall") does not."""
    m = NameMatcher([
        entry("orrin", "Sir Orrin Vale", "Sir Orrin", "Vale"),
        entry("death", "The Death of Sir Orrin", "the night Sir Orrin died", kind="history"),
        entry("will", "The Vale Will", "Sir Orrin's will", kind="item"),
        entry("hall", "Vale Hall", kind="place"),
    ])
    found = m.find("On the night Sir Orrin died, the steward read Sir Orrin's will at Vale Hall.")
    assert [(x.text, x.entry_ids) for x in found] == [("the night Sir Orrin died", ("death",)), ("Sir Orrin's will", ("will",)),
                                                      ("Vale Hall", ("hall",))]
    assert [[ids for ids, _, _ in x.inner] for x in found] == [[("orrin",)], [("orrin",)], []]
    text = "On the night Sir Orrin died"
    ids_, start, end = found[0].inner[0]
    assert text[start:end] == "Sir Orrin"


def test_a_name_in_a_lower_case_compound_is_a_word() -> None:
    m = NameMatcher([entry("pell", "Julian Pell", "Pell")])
    ordinary: list[Mention] = []
    assert m.find("The crowd ran pell-mell down the lane.", ordinary) == [] and [x.text for x in ordinary] == ["pell"]
    assert [x.text for x in m.find("Pell runs; the Pell-Dunmore match is off.")] == ["Pell", "Pell"]
