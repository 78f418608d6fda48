"""Synthetic story bibles for benchmarks: realistic names, aliases and lore, at any size.

    from benchmarks.synthetic import make_bible, make_beats
    bible = make_bible(Path("/tmp/big"), n_entries=10_000, seed=7)   # writes the folder
    beats = make_beats(bible, n_beats=200, seed=1)                   # varied one-line beats

``make_bible`` writes an ordinary bible folder (``bible.yaml``, ``characters/``, ``places/``,
``factions/``, ``items/``, ``notes/``) that ``b2p ingest`` accepts, and returns a
``SyntheticBible`` describing what it wrote. The same ``(n_entries, seed)`` always gives the same
bytes, so an ingested copy can be cached and reused.

Shape of the lore (per entry): 1–4 aliases, among them multi-word ones and titles ("Captain
Orrin Vask", "Old Teodor", "the Warden of Greyhollow"); a body of 80–300 words in 2–4
paragraphs that refers to its subject with pronouns (he / she / singular they) and names a few
other entries, the way real bibles cross-reference; about 5 % case-sensitive entries; two
``always`` notes. Names are unique; a few titles are deliberately shared by two entries.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

GENERATOR_VERSION = "1"  # bump when the output changes, so cached stores are rebuilt

_FIRST = {
    "he": "Aldric Anselm Bram Cassius Corin Darian Edric Emrys Fenwick Gideon Hale Idris Jory Kaspar Leander Lorcan Mattias "
    "Niall Oberon Orrin Pell Quentin Rafe Rowan Silas Tobias Ulric Vance Wystan Yorick Teodor Hugo Marek Osric Bastian "
    "Cyprian Dorian Evander Florian Garrick Hollis Ignatius Jasper Kellan Lucan Mordecai Nestor Otto Percival Roderick".split(),
    "she": "Adela Briony Celandine Dacia Elowen Fenna Greer Hester Isolde Jessamy Kestrel Linnea Maren Nerys Odile Petra "
    "Quenna Rosalind Saoirse Tamsin Una Verity Wilhelmina Ysolde Zelda Agathe Beatrix Cordelia Delphine Esme Freya "
    "Ginevra Honora Imogen Juniper Katell Lucasta Mireille Nell Ottilie Perpetua Rhosyn Sabine Thea Ursula Vesna".split(),
    "they": "Ash Briar Cael Dace Ember Flint Gray Haven Indigo Jules Kit Lark Merrit Noor Onyx Piran Quill Reed Sage "
    "Tarn Vale Wren Sorrel Rook".split(),
}
_SYL_A = "al bar cor dun el fal gar hal is kor lan mor nor or pel quar ros sal tor ul var wes yar zan ash bel cal dra fen gil".split()
_SYL_B = "an ard en ett ick in ley mont ow ric sby ton vik wyn bourne dell field grave holt lock mere ridge shaw stead thorne wick".split()
_TITLES = {
    "he": ["Captain", "Brother", "Master", "Lord", "Sergeant", "Doctor", "Father", "Warden", "Magister", "Lieutenant"],
    "she": ["Captain", "Sister", "Mistress", "Lady", "Sergeant", "Doctor", "Mother", "Warden", "Magister", "Lieutenant"],
    "they": ["Captain", "Warden", "Doctor", "Magister", "Sergeant", "Archivist"],
}
_ROLES = ["smuggler", "cartographer", "ferryman", "diver", "scribe", "healer", "mercenary", "archivist", "engineer", "priest",
          "thief", "merchant", "pilot", "guard", "scholar", "courier", "hunter", "miner", "spy", "apprentice", "judge", "sailor"]
_TRAITS = ["stubborn", "patient", "reckless", "quiet", "sharp-tongued", "generous", "suspicious", "devout", "ambitious",
           "gentle", "cunning", "tired", "proud", "curious", "loyal", "bitter", "cheerful", "watchful"]
_PLACE_HEADS = ["Crater", "Keep", "Harbour", "Stacks", "Reach", "Hollow", "Spire", "Market", "Fen", "Gate", "Vault", "Tower",
                "Ridge", "Quarter", "Well", "Bridge", "Abbey", "Mine", "Station", "Lagoon"]
_PLACE_DESC = ["a flooded district of leaning towers", "a mining settlement cut into a crater wall", "a walled market town",
               "a monastery library half under water", "a windswept harbour of grey stone", "an abandoned relay station",
               "a smugglers' cove reached only at low tide", "a frontier fort on a basalt ridge", "a salt marsh of reed-huts",
               "a vertical city of rope bridges", "a buried archive lit by oil lamps", "a glassworks quarter full of furnaces"]
_FACTION_HEADS = ["Guild", "Wardens", "Brotherhood", "Company", "Compact", "Circle", "Syndicate", "Order", "Crew", "League"]
_ITEM_HEADS = ["Ember", "Lantern", "Compass", "Codex", "Blade", "Crown", "Key", "Ledger", "Mask", "Chalice", "Orb", "Map"]
_ITEM_DESC = ["a warm blue stone that never cools", "a brass instrument whose needle points at nothing on any chart",
              "a leather-bound book written in a hand no one can read", "a key of black glass", "a mask of beaten silver",
              "a lamp that burns without oil", "a sword that rings when water is near", "a chart inked on fish-skin"]
_EPITHETS = ["Drowned", "Old", "Black", "Silent", "Burning", "Hollow", "Red", "Last", "Sunken", "Iron", "Grey", "White"]
_VERBS = ["trusts", "owes money to", "fears", "once served under", "quarrels with", "protects", "spies on", "trades with",
          "was betrayed by", "is secretly in love with", "grew up beside", "hunts for"]
_MOODS = ["in the rain", "at dusk", "before the flood", "during the long winter", "after the war", "at first light",
          "on market days", "when the tide turns"]


@dataclass
class SyntheticEntry:
    """What was written for one entry (enough to write beats that name or describe it)."""

    id: str
    name: str
    kind: str
    aliases: list[str]
    pronoun: str | None
    description: str  # a phrase that describes the entry without naming it
    case_sensitive: bool = False


@dataclass
class SyntheticBible:
    root: Path
    seed: int
    entries: list[SyntheticEntry] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.root.resolve().name


def _surname(rng: random.Random, used: set[str]) -> str:
    for _ in range(1000):
        s = (rng.choice(_SYL_A) + rng.choice(_SYL_B)).capitalize()
        if rng.random() < 0.35:
            s = (rng.choice(_SYL_A) + rng.choice(_SYL_A) + rng.choice(_SYL_B)).capitalize()
        if s.lower() not in used:
            used.add(s.lower())
            return s
    raise RuntimeError("name space exhausted")


def _pronoun_words(p: str) -> tuple[str, str, str]:
    return {"he": ("he", "him", "his"), "she": ("she", "her", "her"), "they": ("they", "them", "their")}[p]


def _sentences(rng: random.Random, subject: str, p: str | None, role: str, others: list[str]) -> list[str]:
    """Lore prose about one subject: pronouns, cross-references and some varied vocabulary."""
    sub, obj, pos = _pronoun_words(p) if p else ("it", "it", "its")
    verb_s = "" if sub == "they" else "s"
    be = "are" if sub == "they" else "is"
    have = "have" if sub == "they" else "has"
    out = [
        f"{sub.capitalize()} {be} {rng.choice(_TRAITS)} and {rng.choice(_TRAITS)}, and {sub} {have} spent years as a {role} {rng.choice(_MOODS)}.",
        f"Most people who meet {obj} remember {pos} {rng.choice(['voice', 'hands', 'scars', 'laugh', 'silences', 'eyes'])} first.",
        f"{sub.capitalize()} keep{verb_s} a {rng.choice(['journal', 'knife', 'list of debts', 'lamp', 'map', 'locked box'])} that no one else may touch.",
        f"When trouble comes {sub} trust{verb_s} {pos} own judgement over any order.",
        f"{sub.capitalize()} {have} never forgiven the {rng.choice(['harbour', 'guild', 'council', 'abbey', 'company'])} for what happened {rng.choice(_MOODS)}.",
        f"Rumour says {sub} once crossed the {rng.choice(['salt flats', 'drowned quarter', 'crater floor', 'northern reach', 'old causeway'])} alone.",
        f"{sub.capitalize()} speak{verb_s} little, but what {sub} say{verb_s} is usually true.",
    ]
    for other in others:
        out.append(f"{subject} {rng.choice(_VERBS)} {other}, and the two of them {rng.choice(['rarely agree', 'share a secret', 'have unfinished business', 'meet in secret', 'avoid each other'])}.")
    rng.shuffle(out)
    return out


def _body(rng: random.Random, opening: str, sentences: list[str], words: int) -> str:
    text = [opening]
    n = len(opening.split())
    pool = list(sentences)
    while n < words:
        if not pool:
            pool = list(sentences)
            rng.shuffle(pool)
        s = pool.pop()
        text.append(s)
        n += len(s.split())
    paragraphs, cur = [], []
    per = max(2, len(text) // rng.randint(2, 4))
    for s in text:
        cur.append(s)
        if len(cur) >= per:
            paragraphs.append(" ".join(cur))
            cur = []
    if cur:
        paragraphs.append(" ".join(cur))
    return "\n\n".join(paragraphs)


def _yaml_list(items: list[str]) -> str:
    return "[" + ", ".join('"' + a.replace('"', "'") + '"' for a in items) + "]"


def make_bible(path: Path, n_entries: int, seed: int = 0, write: bool = True) -> SyntheticBible:
    """Write a synthetic bible of ``n_entries`` entries into the folder ``path`` (created; must be empty or absent).

    Deterministic in ``(n_entries, seed)``. Returns what was written; ``write=False`` only
    describes it (for a bible written earlier with the same arguments).
    """
    path = Path(path)
    if write and path.exists() and any(path.iterdir()):
        raise FileExistsError(f"{path}: not empty")
    rng = random.Random(seed)
    used: set[str] = set()  # lower-cased names and aliases
    bible = SyntheticBible(root=path, seed=seed)
    kinds = ["character"] * 62 + ["place"] * 20 + ["faction"] * 7 + ["item"] * 11
    shared_titles = [f"the {r.capitalize()}" for r in _ROLES[:8]]

    def fresh(candidate: str) -> bool:
        if candidate.lower() in used:
            return False
        used.add(candidate.lower())
        return True

    plans: list[SyntheticEntry] = []
    for n in range(max(0, n_entries - 2)):
        kind = rng.choice(kinds)
        aliases: list[str] = []
        if kind == "character":
            p = rng.choices(["he", "she", "they"], weights=[45, 45, 10])[0]
            while True:
                first, last = rng.choice(_FIRST[p]), _surname(rng, used)
                if fresh(f"{first} {last}"):
                    break
            name = f"{first} {last}"
            aliases.append(last)
            title = rng.choice(_TITLES[p])
            extra = [f"{title} {last}", f"Old {first}" if rng.random() < 0.5 else f"{first} the {rng.choice(_ROLES).capitalize()}"]
            if rng.random() < 0.02:  # a title shared by two entries on purpose
                extra.append(rng.choice(shared_titles))
            else:
                extra.append(f"the {rng.choice(_ROLES).capitalize()} of {_surname(rng, used)}")
            for a in extra[: rng.randint(1, 3)]:
                if a.startswith("the ") and a in shared_titles or fresh(a):
                    aliases.append(a)
            role = rng.choice(_ROLES)
            desc = f"the {rng.choice(_TRAITS)} {role} with {rng.choice(['a scarred hand', 'a silver ring', 'a limp', 'ink-stained fingers', 'a sea-green coat'])}"
        else:
            p = None
            if kind == "place":
                base = _surname(rng, used)
                name = f"{base} {rng.choice(_PLACE_HEADS)}"
                aliases.append(base)
                desc = rng.choice(_PLACE_DESC)
            elif kind == "faction":
                base = _surname(rng, used)
                head = rng.choice(_FACTION_HEADS)
                name = f"the {base} {head}" if rng.random() < 0.3 else f"{base} {head}"
                aliases.append(f"{base}s" if head in ("Wardens", "Crew") else base)
                desc = f"a {rng.choice(['secretive', 'powerful', 'failing', 'ruthless', 'pious'])} {head.lower()} of {rng.choice(_ROLES)}s"
            else:
                owner = rng.choice(_FIRST["he"] + _FIRST["she"])
                name = f"{owner}'s {rng.choice(_ITEM_HEADS)} of {_surname(rng, used)}"
                aliases.append(f"the {name.split(' ', 1)[1]}")  # "the Ember of Calton"
                desc = rng.choice(_ITEM_DESC)
            if not fresh(name):
                continue
            aliases = aliases[:1] + [a for a in aliases[1:] if fresh(a)]  # the base word is already reserved
            head = name.split()[1] if kind == "item" else name.split()[-1]  # Codex of "Emrys's Codex of Calton"
            epithet = f"the {rng.choice(_EPITHETS)} {head}"
            if rng.random() < 0.4 and fresh(epithet):  # a multi-word title: "the Drowned Keep"
                aliases.append(epithet)
            role = kind
        cs = rng.random() < 0.05
        plans.append(SyntheticEntry(id="", name=name, kind=kind, aliases=aliases[:4], pronoun=p, description=desc, case_sensitive=cs))

    folders = {"character": "characters", "place": "places", "faction": "factions", "item": "items", "note": "notes"}
    if write:
        (path / "notes").mkdir(parents=True, exist_ok=True)
        (path / "bible.yaml").write_text(f'title: "Synthetic bible {n_entries}/{seed}"\npov: "close third person"\ntense: "past"\n')
    for note, text in (("style", "Write in close third person, past tense, with concrete physical detail and terse dialogue."),
                       ("genre", "Low-magic drowned-world fantasy: salvage, archives, tides and old debts.")):
        if write:
            (path / "notes" / f"{note}.md").write_text(f"---\nname: {note.capitalize()}\nalways: true\n---\n{text}\n")
        bible.entries.append(SyntheticEntry(id=f"notes/{note}", name=note.capitalize(), kind="note", aliases=[], pronoun=None, description=text))
    names = [e.name for e in plans]
    for n, e in enumerate(plans):
        folder = path / folders[e.kind]
        stem = f"{n:05d}_" + "".join(c if c.isalnum() else "_" for c in e.name.lower()).strip("_")[:40]
        e.id = f"{folders[e.kind]}/{stem}"
        others = rng.sample(names, k=min(len(names), rng.randint(1, 3)))
        others = [o for o in others if o != e.name]
        opening = f"{e.name} is {e.description}." if e.kind != "character" else f"{e.name} is {e.description}, known across the reach."
        body = _body(rng, opening, _sentences(rng, e.name, e.pronoun, e.description.split()[2] if e.kind == "character" else e.kind, others), rng.randint(80, 300))
        front = [f"name: \"{e.name}\""]
        if e.aliases:
            front.append(f"aliases: {_yaml_list(e.aliases)}")
        if e.case_sensitive:
            front.append("case_sensitive: true")
        if write:
            folder.mkdir(exist_ok=True)
            (folder / f"{stem}.md").write_text("---\n" + "\n".join(front) + "\n---\n" + body + "\n")
        bible.entries.append(e)
    return bible


_BEAT_NAMED = [
    "{a} meets {b} at the edge of the market and hands over a sealed letter.",
    "At dusk {a} argues with {b} about the debt, and neither will back down.",
    "{a}'s patience runs out when {b} refuses to answer.",
    "{a} and {b} slip past the guards at the gate before the bells ring.",
]
_BEAT_PRONOUN = [
    "{a} climbs the tower stairs; {p} stops at the top to catch {pp} breath.",
    "{P} admits the map was a forgery all along.",
    "{a} waits by the water until {p} hears the signal.",
]
_BEAT_DESCRIBED = [
    "Nobody in the tavern will talk about {d}.",
    "The crew argue about {d} until the candles burn down.",
    "A stranger asks the way to {d}.",
]


def make_beats(bible: SyntheticBible, n_beats: int, seed: int = 0) -> list[str]:
    """Varied single-line beats: names and aliases (some possessive), pronouns, and descriptions without names."""
    rng = random.Random(seed)
    people = [e for e in bible.entries if e.kind == "character"] or bible.entries
    anything = [e for e in bible.entries if e.kind != "note"] or bible.entries
    beats = []
    for i in range(n_beats):
        a, b = rng.sample(people, 2) if len(people) > 1 else (people[0], people[0])

        def call(e: SyntheticEntry) -> str:
            return rng.choice([e.name, *e.aliases]) if e.aliases and rng.random() < 0.5 else e.name

        kind = i % 3
        if kind == 0:
            beats.append(rng.choice(_BEAT_NAMED).format(a=call(a), b=call(b)))
        elif kind == 1:
            p = a.pronoun or "they"
            pp = {"he": "his", "she": "her", "they": "their"}[p]
            beats.append(rng.choice(_BEAT_PRONOUN).format(a=call(a), p=p, P=p.capitalize(), pp=pp))
        else:
            beats.append(rng.choice(_BEAT_DESCRIBED).format(d=rng.choice(anything).description))
    return [b[0].upper() + b[1:] for b in beats]
