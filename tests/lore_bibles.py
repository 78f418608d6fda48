"""Hand-written story bibles for the retrieval, scene and `b2p lore` tests.

Small on purpose: every entry is there for a trap (a pronoun, a shared title, an ordinary-word
name, a disabled entry, a long entry the budget has to cut to its lead).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from b2p.settings import Settings, load_settings

HARBOUR: dict[str, str] = {
    "bible.yaml": 'title: "The Greyhaven Tides"\npov: "close third person"\ntense: "past"\n',
    "notes/style.md": """---
name: Style
always: true
---
Close third person, past tense. Short sentences, wet weather, salt and rope. Let the sea make the noise.
""",
    "characters/nell.md": """---
name: Nell Farrow
aliases: ["Nell"]
---
Nell Farrow is a fourteen-year-old girl who dives for wreck salvage in Greyhaven Harbour. She is small, freckled and fearless, and she can hold her breath for three minutes.

She lives above the net lofts with her aunt and sells what she brings up to anyone who pays. When she makes a promise she swears on her father's compass, the only thing of his she kept. She lies badly; her ears go red.
""",
    "characters/agatha.md": """---
name: Agatha Moss
aliases: ["Aunt Agatha", "Moss"]
---
Agatha Moss is a widow of sixty who keeps the Lamplight tavern on the harbour wall. She raised her niece Nell after the girl's father drowned, and she runs the tavern with a ledger and a cudgel.

She hears every rumour on the waterfront before it is an hour old, and she sells the best of them to the Harbour Watch. Her late husband was a pilot; she still reads the tide tables every morning out of habit.
""",
    "characters/jack.md": """---
name: Jack Halloran
aliases: ["Jack", "the Skipper"]
---
Jack Halloran is a fisherman of forty who skippers the trawler Kittiwake out of Greyhaven. He is broad, slow-spoken and stubborn, and he owes money to half the harbour.

He lost his brother to the same storm that drowned Nell's father, and he watches over the girl as if it were his duty. He distrusts the Harbour Watch and pays them only when he must.
""",
    "characters/tom.md": """---
name: Tom Ressler
aliases: ["Tom", "the Ferryman", "the Skipper"]
---
Tom Ressler is the ferryman of Greyhaven, a thin nervous man of thirty who rows passengers between the harbour wall and the outer moorings. He skippers the ferry Gannet and talks too much when he is frightened.

He sold a chart of the drowned library to a stranger last winter and has regretted it ever since. He is afraid of Jack, who suspects him of it, and he is afraid of the Watch.
""",
    "characters/anselm.md": """---
name: Brother Anselm
aliases: ["Anselm", "the Hermit"]
---
Brother Anselm is an old monk who lives alone among the flooded shelves of the Sunken Library, reading by a single lamp in a pocket of trapped air. He is past eighty, gaunt and stooped, with a white beard down to his rope belt.

When the sea-walls broke forty years ago he sealed himself into the reading vault with the Heartstone, whose warmth keeps the water back. The harbour mourned him as drowned, and he wants it kept that way. He eats the fish that swim into his air pocket and catalogues the drowned books from memory.

He speaks gently and in riddles. He believes the Heartstone must never be brought to the surface, and he will say why only to someone who has sworn to keep his secret. He remembers Greyhaven as it was before the flood, a town of dry streets and bell towers, and he grieves for it every night.

He has not seen daylight in forty years. His eyes are weak, his hands shake, and he fears that when he dies the library will die with him, its shelves rotting unread in the dark.
""",
    "characters/rook.md": """---
name: Rook Sable
aliases: ["Rook"]
---
Rook Sable is a tide-cartographer who charts the currents of Greyhaven Harbour. They are twenty-five, lanky and ink-smudged, and they carry a satchel of rolled charts everywhere.

They sell their charts to fishermen and smugglers alike and insist they have no politics beyond accuracy. They have noticed that a current near the Sunken Library runs warm, and they have told no one.
""",
    "characters/gideon.md": """---
name: Gideon Pike
aliases: ["Gideon"]
enabled: false
---
Gideon Pike is a rum smuggler who hides contraband casks inside hollow channel buoys. He is loud, gold-toothed and generous, and he pays the harbour children to keep watch for the revenue cutter.
""",
    "notes/old_genre.md": """---
name: Old Genre Note
always: true
enabled: false
---
Grimdark horror with tentacles in every chapter. (Retired: kept for reference, not for prompts.)
""",
    "places/library.md": """---
name: Sunken Library
aliases: ["the Library"]
---
The Sunken Library was Greyhaven's great abbey library until the sea-walls broke. Its lower halls are drowned, and divers bring up swollen books from its reading rooms.
""",
    "places/harbour.md": """---
name: Greyhaven Harbour
aliases: ["Greyhaven"]
---
Greyhaven Harbour is a fishing town of grey stone built on a half-drowned hill. Its harbour wall, net lofts and taverns crowd the one dry street.
""",
    "items/heartstone.md": """---
name: Heartstone
aliases: ["the Heartstone"]
---
The Heartstone is a fist-sized stone that glows a warm, steady blue and never cools. Held in the hand it hums faintly, and water will not touch the air around it.
""",
    "factions/watch.md": """---
name: Harbour Watch
aliases: ["the Watch"]
---
The Harbour Watch is Greyhaven's small, underpaid constabulary. Its officers patrol the waterfront in oilskins, collect harbour dues and take bribes from smugglers.
""",
}


def write_bible(root: Path, files: dict[str, str] = HARBOUR) -> Path:
    """Write a bible folder (relative path → content) and return its root."""
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


_INGESTED: dict[str, tuple[Settings, Path]] = {}  # one ingest per session: embedding is the slow part


def ingested(factory, name: str = "harbour", files: dict[str, str] = HARBOUR) -> tuple[Settings, Path]:  # noqa: ANN001
    """(settings, bible root) of a bible written and ingested once per test session; treat as read-only."""
    if name not in _INGESTED:
        from ingest.pipeline import ingest_bible

        base = factory.mktemp(f"{name}-store")
        root = write_bible(base / name, files)
        settings = load_settings(None, store=base / ".b2p")
        ingest_bible(root, settings)
        _INGESTED[name] = (settings, root)
    return _INGESTED[name]


def copy_ingested(factory, dst: Path, name: str = "harbour") -> tuple[Path, Path]:  # noqa: ANN001
    """A private, editable copy of an ingested bible and its store: (bible root, store folder)."""
    settings, root = ingested(factory, name)
    shutil.copytree(root, dst / name)
    shutil.copytree(settings.store, dst / ".b2p")
    return dst / name, dst / ".b2p"


def assert_index_matches_store(settings: Settings, bible: str) -> None:
    """The saved index of the store's current state (if any) holds exactly the store's current
    enabled entries and chunks: what a reader trusting it would see is what Chroma holds."""
    from b2p.index import LoreIndex, index_root
    from b2p.store import Store, collection_name

    if collection_name(bible) not in (Store.catalog(settings) or {}):
        return  # killed before the collection was made
    with Store.open(settings) as st:
        state = st.state(bible)
        saved = LoreIndex.load(index_root(settings), bible, state) if state else None
        if saved is None:
            return
        fresh = LoreIndex.build(st, bible, settings)
    assert {i: e.hash for i, e in saved.entries.items()} == {i: e.hash for i, e in fresh.entries.items()}
    assert sorted(zip(saved.chunk_entry, saved.chunk_hash)) == sorted(zip(fresh.chunk_entry, fresh.chunk_hash))
    assert saved.texts() == fresh.texts()
