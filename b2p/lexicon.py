"""b2p's one vocabulary: the English every stage reads beats and lore with.

Grammar lives here, once: entry kinds, pronouns, kinship and generic person nouns, function words,
abbreviations and the one sentence splitter. Nothing here names a genre's furniture (captains,
monks, relics): what a bible's people and things *are* is read from the bible itself, at ingest.
No other module defines a word list of its own.
"""

from __future__ import annotations

import re

# -- entry kinds (lower-cased once, at parse) -------------------------------------------------------

PERSON_KINDS = frozenset({"character", "person", "people", "npc", "cast", "pc", "protagonist", "antagonist", "hero",
                          "villain", "creature", "figure"})
PLACE_KINDS = frozenset({"place", "location", "locale", "setting", "region", "city", "town", "building", "world"})
ITEM_KINDS = frozenset({"item", "object", "artifact", "artefact", "weapon", "device", "vehicle", "ship", "vessel", "thing"})
GROUP_KINDS = frozenset({"faction", "organization", "organisation", "group", "family", "house", "company", "guild", "order"})
EVENT_KINDS = frozenset({"event", "history", "timeline", "backstory", "incident", "battle", "war"})
NOTE_KINDS = frozenset({"note", "lore", "setting-note", "style", "genre", "rule", "concept"})
# Kinds whose entries are things (not people) that a definite description can name: "the crater", "the war".
THING_KINDS = PLACE_KINDS | ITEM_KINDS | GROUP_KINDS | EVENT_KINDS


def norm_kind(kind: str) -> str:
    """A kind as b2p compares it: lower case, single spaces ("Character" → "character")."""
    return " ".join(kind.lower().split())


# -- pronouns ------------------------------------------------------------------------------------

PRONOUNS = {
    "he": frozenset({"he", "him", "his", "himself"}),
    "she": frozenset({"she", "her", "hers", "herself"}),
    "they": frozenset({"they", "them", "their", "theirs", "themselves", "themself"}),
}
PRONOUN_OF = {w: p for p, words in PRONOUNS.items() for w in words}
PRONOUN_ROLE = {"he": "subject", "she": "subject", "they": "subject", "him": "object", "them": "object",
                "his": "possessive", "their": "possessive", "hers": "possessive", "theirs": "possessive",
                "himself": "reflexive", "herself": "reflexive", "themselves": "reflexive", "themself": "reflexive"}
POSSESSIVE_PRONOUNS = {"his": "he", "her": "she", "their": "they", "its": "it"}

# -- function words ------------------------------------------------------------------------------

DETERMINERS = frozenset("a an the this that these those".split())
# Where a beat's clauses meet: coordinating and subordinating conjunctions and relative words.
CLAUSE_BREAKS = frozenset(
    "and or but nor yet so then while as because though although since unless until before after "
    "when whenever where wherever that which who whom whose if whether".split()
)
PREPOSITIONS = frozenset(
    "with without against beneath below under underneath above over into onto in on at from through "
    "throughout across toward towards to for about of by near behind beyond inside within among amongst "
    "between along around during past upon via like despite except".split()
)
FUNCTION_WORDS = CLAUSE_BREAKS | frozenset(
    "a an the this that these those its it it's their there they them he him his she her hers we us our "
    "you your i me my is are was were be been being am has have had having do does did will would can "
    "could may might must shall should not no only just very too also even still already ever never "
    "what why how than such some any all each every both either neither few many much more most other "
    "another same own one two".split()
)
# After "her", these mean "her" is an object ("tells her to…"), not a possessive ("her suit").
PHRASE_ENDERS = frozenset(
    "a an the to in on at for with from of and but or that about into out off back up down away over through "
    "toward towards before after as if when while until so this what how why where".split()
)
# Words inside a noun phrase between its determiner and its noun that are not its content: "the only
# coach", "the other preacher", "its own water".
NP_MODIFIERS = frozenset({"only", "very", "other", "same", "own", "whole"})
# Adverbs an apposition may open with: "Colette, now his wife"; "" for none.
APPOSITION_ADVERBS = frozenset({"", "now", "once", "later", "formerly", "also", "still", "then"})
# Words that describe an entry's name without being part of what it is: "the old duke", "Varro Crater".
NAME_FILLERS = frozenset("the of and a an in on at to for old new great high low first last".split())
# What a beat's writer asks the prose for rather than the story's content ("Show", "emphasizing").
INSTRUCTION_WORDS = frozenset(
    "use show describe portray convey highlight emphasize emphasise include begin end create making make "
    "sense moment further potential even such through while where when what which who whom how".split()
)
STOP_WORDS = FUNCTION_WORDS | PREPOSITIONS | INSTRUCTION_WORDS

# -- nouns a reader knows without the bible ------------------------------------------------------

# Person nouns by grammatical gender: the English, not a genre's cast.
GENDERED = {
    "she": frozenset({"girl", "woman", "women", "lady", "mother", "sister", "daughter", "queen", "princess", "wife",
                      "widow", "aunt", "niece", "grandmother", "matron", "abbess", "nun", "priestess", "heiress",
                      "mistress", "maid", "duchess", "stepmother", "stepsister", "stepdaughter", "bride", "madam"}),
    "he": frozenset({"boy", "man", "men", "gentleman", "father", "brother", "son", "king", "prince", "husband", "widower",
                     "uncle", "nephew", "grandfather", "monk", "abbot", "priest", "lord", "duke", "lad", "fellow",
                     "stepfather", "stepbrother", "stepson", "groom", "sir"}),
}
GENDER_OF_NOUN = {w: g for g, words in GENDERED.items() for w in words}
# Titles written before a name that say its bearer's pronouns: "Mrs. Pruett", "Lord Ashby".
HONORIFICS = {"mr": "he", "mister": "he", "sir": "he", "lord": "he", "mrs": "she", "ms": "she", "miss": "she",
              "lady": "she", "dame": "she", "madam": "she", "madame": "she"}
# Person nouns that say nothing but "a person": resolved against who is on stage, never looked up in lore.
GENERIC_PERSONS = frozenset({"girl", "woman", "women", "lady", "boy", "man", "men", "gentleman", "lad", "fellow", "child",
                             "kid", "stranger", "youth", "person", "figure", "rider", "newcomer"})
# Nouns for "the thing everyone is talking about": no lore can say which.
VAGUE_THINGS = frozenset({"find", "discovery", "thing", "object", "item", "prize"})
# Number words, which a date or a count is written with: "the winter of sixty-eight".
NUMBER_WORDS = frozenset("one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
                         "sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety "
                         "hundred thousand".split())
# Adjectives of age, +1 old / -1 young: "the old man" is the oldest man the lore gives an age for.
AGE_WORDS = {"old": 1, "older": 1, "elderly": 1, "aged": 1, "young": -1, "younger": -1, "youthful": -1}
MONTHS = frozenset("january february march april may june july august september october november december".split())
# Ordinal words for the day of a month: "the fourth of May", "the twenty-first of June" → 4, 21.
_ORDINAL_UNITS = "first second third fourth fifth sixth seventh eighth ninth".split()
ORDINAL_DAYS = {**{w: n for n, w in enumerate(_ORDINAL_UNITS, start=1)},
                **{w: n for n, w in enumerate("tenth eleventh twelfth thirteenth fourteenth fifteenth sixteenth seventeenth "
                                              "eighteenth nineteenth twentieth".split(), start=10)},
                **{f"twenty-{w}": 20 + n for n, w in enumerate(_ORDINAL_UNITS, start=1)}, "thirtieth": 30, "thirty-first": 31}
# Counting words: "the two women", "the siblings".
GROUP_WORDS = frozenset({"pair", "two", "both", "duo", "trio", "three", "siblings", "twins", "partners", "friends"})
GROUP_COUNT = {"two": 2, "both": 2, "pair": 2, "duo": 2, "twins": 2, "siblings": 2, "partners": 2, "friends": 2,
               "three": 3, "trio": 3}
# Nouns for time, text and the story itself: never a reference to an entry.
# Nouns for time, text and the story itself: never a reference to an entry.
TIME_AND_TEXT_NOUNS = frozenset({"same", "other", "rest", "first", "last", "next", "end", "way", "time", "day", "night",
                                 "moment", "chapter", "scene", "story", "beat", "reader", "morning", "evening", "hour",
                                 "week", "year", "dawn", "dusk", "truth", "news", "word", "name", "kind", "sort", "lot",
                                 "number"})
# Nouns of position in something else ("the top of the board", "the edge of town"): they name no thing by themselves.
POSITION_NOUNS = frozenset({"top", "bottom", "side", "edge", "back", "front", "middle", "centre", "center", "half", "part",
                            "corner", "inside", "outside", "head", "foot", "length"})
# ... nor do the elements in a beat's scenery ("rain falls on the water").
NOT_REFERENCES = TIME_AND_TEXT_NOUNS | frozenset({"world", "sun", "air", "water"})
IRREGULAR_PLURALS = {"women": "woman", "men": "man", "children": "child", "people": "person", "wives": "wife",
                     "widows": "widow", "daughters-in-law": "daughter-in-law", "sons-in-law": "son-in-law",
                     "brothers-in-law": "brother-in-law", "sisters-in-law": "sister-in-law"}


def singular(noun: str) -> str:
    """The singular of a lower-case noun, by the regular rules ("women" → "woman", "siblings" stays a group)."""
    if noun in IRREGULAR_PLURALS:
        return IRREGULAR_PLURALS[noun]
    if noun.endswith("ies") and len(noun) > 4:
        return noun[:-3] + "y"
    if noun.endswith(("ches", "shes", "sses", "xes")) and len(noun) > 4:
        return noun[:-2]
    if noun.endswith("s") and not noun.endswith(("ss", "us", "is")) and len(noun) > 3 and noun not in GROUP_WORDS:
        return noun[:-1]
    return noun


# -- kinship -------------------------------------------------------------------------------------

# noun → (relation, gender of the relative it names). A relation's converse is in KIN_CONVERSE.
KINSHIP: dict[str, tuple[str, str | None]] = {
    "father": ("parent", "he"), "mother": ("parent", "she"), "parent": ("parent", None),
    "son": ("child", "he"), "daughter": ("child", "she"), "child": ("child", None), "heir": ("child", None),
    "brother": ("sibling", "he"), "sister": ("sibling", "she"), "sibling": ("sibling", None),
    "husband": ("spouse", "he"), "wife": ("spouse", "she"), "spouse": ("spouse", None),
    "widow": ("spouse", "she"), "widower": ("spouse", "he"),
    "fiance": ("betrothed", "he"), "fiancé": ("betrothed", "he"), "fiancee": ("betrothed", "she"), "fiancée": ("betrothed", "she"),
    "stepfather": ("step-parent", "he"), "stepmother": ("step-parent", "she"),
    "stepson": ("step-child", "he"), "stepdaughter": ("step-child", "she"), "stepchild": ("step-child", None),
    "stepbrother": ("step-sibling", "he"), "stepsister": ("step-sibling", "she"),
    "half-brother": ("half-sibling", "he"), "half-sister": ("half-sibling", "she"),
    "brother-in-law": ("sibling-in-law", "he"), "sister-in-law": ("sibling-in-law", "she"),
    "father-in-law": ("parent-in-law", "he"), "mother-in-law": ("parent-in-law", "she"),
    "son-in-law": ("child-in-law", "he"), "daughter-in-law": ("child-in-law", "she"),
    "uncle": ("uncle", "he"), "aunt": ("uncle", "she"),
    "nephew": ("nephew", "he"), "niece": ("nephew", "she"),
    "cousin": ("cousin", None),
    "grandfather": ("grandparent", "he"), "grandmother": ("grandparent", "she"), "grandparent": ("grandparent", None),
    "grandson": ("grandchild", "he"), "granddaughter": ("grandchild", "she"), "grandchild": ("grandchild", None),
    "twin": ("sibling", None),
}
KIN_CONVERSE = {
    "parent": "child", "child": "parent", "sibling": "sibling", "half-sibling": "half-sibling", "spouse": "spouse", "betrothed": "betrothed",
    "step-parent": "step-child", "step-child": "step-parent", "step-sibling": "step-sibling",
    "sibling-in-law": "sibling-in-law", "parent-in-law": "child-in-law", "child-in-law": "parent-in-law",
    "uncle": "nephew", "nephew": "uncle", "cousin": "cousin", "grandparent": "grandchild", "grandchild": "grandparent",
}
# Words that say a family was made twice: a parent's spouse is then not taken for the other parent.
REMARRIAGE = re.compile(r"\bstep[- ]?(?:mother|father|parent|son|daughter|child|children|brother|sister)s?\b|"
                        r"\b(?:first|second|third|previous|former|earlier) (?:marriage|wife|husband)\b|"
                        r"\bremarri(?:ed|es|age)\b|\bremarry\b|\bex-(?:wife|husband)\b|\bdivorc(?:e|ed|es)\b", re.IGNORECASE)
# Words that say someone is gone from a family: "her mother died", "his late father", "a father she never knew".
ABSENCE = re.compile(r"\b(?:died|dies|dead|late|killed|drowned|passed away|never knew|deserted|walked out|ran off|abandoned)\b",
                     re.IGNORECASE)
# Spelling variants folded before lookup: "step-mother", "step mother" → "stepmother".
_STEP = re.compile(r"\bstep[- ](?=(?:mother|father|son|daughter|brother|sister|child)\b)")


def kin_noun(word: str) -> str | None:
    """The kinship noun a (lower-case) word is, singular, or None: "stepsisters" → "stepsister"."""
    w = _STEP.sub("step", word)
    if w in KINSHIP:
        return w
    s = singular(w)
    return s if s in KINSHIP else None


# -- endings ------------------------------------------------------------------------------------

# What may follow a name and leave it the same name: possessive, plural, plural possessive.
NAME_ENDINGS = ("'s", "’s", "s'", "s’", "es'", "es’", "es", "s", "'", "’")
# Endings a word takes and stays the same word: "emphasizing", "portrayed", "hints", "briskly".
INFLECTIONS = ("ing", "ed", "es", "s", "ly")


def stem(word: str) -> str:
    """A crude stem: enough to see that "Emphasize" and "emphasizing", "Hint" and "hints" are one word
    (b2p lint's test of whether a capitalised word is an ordinary one)."""
    w = re.sub(r"['’]s$", "", word).lower()
    for ending in INFLECTIONS:
        if w.endswith(ending) and len(w) - len(ending) >= 3:
            w = w[: -len(ending)]
            break
    if len(w) > 3 and w[-1] == w[-2]:
        w = w[:-1]  # "stopp(ed)"
    return w.removesuffix("e") if len(w) > 3 else w


# -- the text itself: what b2p eval reads a draft with (b2p.measures) ------------------------------

# Beat-sheet words that ask for craft rather than say what happens, beyond INSTRUCTION_WORDS: "Use
# vivid and descriptive language…", "…leaving the reader eager", "Foreshadow the secrets…". Compared
# by stem, so one form of each is enough.
CRAFT_WORDS = INSTRUCTION_WORDS | frozenset(
    "start continue showcase hint foreshadow reinforce immerse establish introduce depict evoke reader chapter "
    "scene vivid descriptive language detail sensory dialogue cliffhanger future implication significance "
    "importance".split()
)
# Nouns for the text rather than the story. The first set names parts of a document and is rare in a
# story's prose; the rest are common there too ("the story he told", "the scene at the dig").
DOCUMENT_NOUNS = frozenset("paragraph passage chapter beat prose draft outline excerpt section".split())
TEXT_NOUNS = DOCUMENT_NOUNS | frozenset("scene story narrative summary sentence text word".split())
# What a writer (not a character) does to the text: "I have added a new paragraph…".
WRITER_VERBS = frozenset(
    "add write wrote written continue include expand revise rewrite rewrote rewritten describe summarize summarise "
    "focus edit shorten lengthen".split()
)
# Words that point at the text from outside it: "In this scene:", "Here is the next part", "The following passage".
POINTERS = frozenset("this these following next previous above below here here's".split())
# The writer speaking as the writer: "I have added…", "Let me continue…".
FIRST_PERSON = frozenset("i i'm i've i'll i'd we we've we'll let".split())


# -- sentences -----------------------------------------------------------------------------------

ABBREVIATIONS = frozenset({"dr", "mr", "mrs", "ms", "st", "mt", "jr", "sr", "vs", "e.g", "i.e", "no", "prof", "capt",
                           "lt", "sgt", "rev", "gen", "col", "fr", "hon", "messrs"})
_SENTENCE_END = re.compile(r"[.!?…][\"'”’)\]]*\s+")


def sentences(text: str) -> list[str]:
    """Split text at sentence ends, not after "Dr." and the like. The one splitter every stage uses."""
    out, start = [], 0
    for m in _SENTENCE_END.finditer(text):
        before = text[start : m.start()]
        word = before.rsplit(None, 1)[-1].lower().lstrip("\"'“(") if before.strip() else ""
        if text[m.start()] == "." and (word in ABBREVIATIONS or (len(word) == 1 and word.isalpha())):
            continue  # "Dr. Thorne", "J. Smith"
        out.append(text[start : m.end()].strip())
        start = m.end()
    return [u for u in [*out, text[start:].strip()] if u]


def is_abbreviation(word: str) -> bool:
    """A word that a full stop after it does not end a sentence."""
    return word.lower().lstrip("\"'“(") in ABBREVIATIONS
