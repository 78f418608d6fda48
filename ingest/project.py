"""Where a bible's project lives: which bible a command means, and the store that holds it.

The bible:

- ``--bible DIR``: that folder.
- ``--bible NAME``: the bible folder the command runs in (or below), when it has that name; otherwise
  the ingested bible of that name in the store.
- no ``--bible``: the bible folder the command runs in — this folder or the nearest one above it that
  has a ``bible.yaml``, or a store b2p made for it (so ``b2p`` works from the bible's ``beats/``).

The store, first that applies:

1. ``--chroma-url`` / ``--store`` / env ``B2P_STORE`` / ``store`` in ``b2p.toml``;
2. an existing ``./.b2p`` that already holds this bible folder (b2p's old default);
3. ``<bible>/.b2p/`` — the store lives with the bible, so every command works from any folder. b2p
   writes a ``.gitignore`` there so the store stays out of the bible's repository.

With a bible *name* and none of 1–2, the store is ``./.b2p``.
"""

from __future__ import annotations

from pathlib import Path

from b2p.errors import ConfigError
from b2p.settings import Settings
from b2p.store import Store
from b2p.store_names import held_name, sources
from ingest.bible import BIBLE_FILE, bible_name

STORE_DIR = ".b2p"
GITIGNORE = "# b2p's store for this bible (embeddings and indexes): derived data, rebuilt by 'b2p ingest'\n*\n"


def _holds(settings: Settings, store: Path, folder: Path) -> bool:
    """True when the embedded store at ``store`` holds the bible ingested from ``folder``."""
    catalog = Store.catalog(settings.model_copy(update={"store": store, "chroma_url": None}))
    if not catalog:
        return False
    have = catalog.get(held_name(bible_name(folder), sources(catalog)))
    return have is not None and have.get("source") in (None, str(folder.resolve()))


def find_bible(start: Path, settings: Settings) -> Path | None:
    """The bible folder ``start`` is in: the nearest folder at or above it with a ``bible.yaml``, or with a
    store b2p made for it."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / BIBLE_FILE).is_file():
            return folder
        if (folder / STORE_DIR / "chroma.sqlite3").is_file() and _holds(settings, folder / STORE_DIR, folder):
            return folder
    return None


def store_for(folder: Path, settings: Settings) -> Settings:
    """``settings`` with the store that holds (or will hold) the bible in ``folder``."""
    if settings.chroma_url or "store" in settings.model_fields_set:
        return settings
    if _holds(settings, settings.store, folder):
        return settings.model_copy(update={"store": settings.store})  # an existing ./.b2p keeps working
    return settings.model_copy(update={"store": folder / STORE_DIR})


def locate(bible: str | Path | None, settings: Settings, flag: str = "--bible BIBLE_DIR") -> tuple[str | Path, Settings]:
    """The bible a command means — a folder (``Path``) or an ingested bible's name (``str``) — and the
    settings whose store holds it. Raises ConfigError when no bible is given outside a bible folder
    (``flag`` is how the command takes one)."""
    here = Path.cwd()
    if bible is None:
        folder = find_bible(here, settings)
        if folder is None:
            raise ConfigError(f"no bible given, and {here} is not in a bible folder (one with {BIBLE_FILE}, or "
                              f"ingested before); pass {flag}, or run b2p inside the bible's folder")
        return folder, store_for(folder, settings)
    if Path(bible).is_dir():
        return Path(bible), store_for(Path(bible), settings)
    name = str(bible)
    if "/" not in name and not name.startswith(".") and "store" not in settings.model_fields_set and not settings.chroma_url:
        folder = find_bible(here, settings)
        if folder is not None and bible_name(folder) == name:
            return folder, store_for(folder, settings)
    return name, settings


def mark_store(settings: Settings, folder: Path) -> None:
    """After an ingest into ``<bible>/.b2p/``: the ``.gitignore`` that keeps the store out of the bible's repository."""
    store = settings.store
    if settings.chroma_url or store.resolve() != (folder / STORE_DIR).resolve() or not store.is_dir():
        return
    ignore = store / ".gitignore"
    if not ignore.exists():
        try:
            ignore.write_text(GITIGNORE, encoding="utf-8")
        except OSError:
            pass  # a read-only bible still works; git would just see the store
