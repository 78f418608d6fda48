"""Which collection holds a bible, and what an embedded store holds, read without opening Chroma.

A bible's collection is named after its folder: the name itself when it is a valid collection
name, else its slug plus a hash of the name, so that no two folder names share a collection (older
b2p used the slug alone: 'книга' and '日本の物語' were both 'bible'). A store made that way stays
readable: a collection under the old name is used for the folder that made it (its recorded
``source``). Two folders of the *same* name in different places are told apart by that record too:
ingest refuses the second (``ingest/pipeline.py``).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from pathlib import Path
from typing import Any

from b2p.store_guard import DB_FILE, DamagedStore

META_PREFIX = "b2p_"


def legacy_name(bible: str) -> str:
    """The collection name older b2p gave a bible: its folder name's slug (two names could share it)."""
    slug = re.sub(r"[^a-z0-9._-]+", "-", bible.strip().lower()).strip("-._")
    if len(slug) < 3:
        slug = f"bible-{slug}".strip("-")
    return slug[:63].rstrip("-._")


def collection_name(bible: str) -> str:
    """A bible's folder name as a valid Chroma collection name (3–63 chars of [a-z0-9._-]) that no other
    folder name shares: the name itself when it is one, else its slug and a hash of the name."""
    slug = legacy_name(bible)
    if slug == bible:
        return slug
    digest = hashlib.sha256(unicodedata.normalize("NFC", bible).encode()).hexdigest()[:10]
    return f"{slug[:52].rstrip('-._')}-{digest}"


def held_name(bible: str, held: dict[str, str | None]) -> str:
    """The collection holding ``bible`` among ``held`` (collection name → the folder it was ingested
    from): its own name, or the one older b2p gave it when that collection was made from a folder of
    this name."""
    name, old = collection_name(bible), legacy_name(bible)
    if name == old or name in held or old not in held:
        return name
    source = held[old]
    return old if source and Path(source).name == bible else name


def sources(catalog: dict[str, dict[str, Any]]) -> dict[str, str | None]:
    """Collection name → the bible folder it was ingested from, from a ``catalog``."""
    return {name: meta.get("source") for name, meta in catalog.items()}


def index_key(meta: dict[str, Any]) -> str:
    """What a lore index is saved under: the collection's state ("" while an ingest is unfinished)
    plus the generation every writing ingest draws anew, so it changes whenever the collection does."""
    state, generation = meta.get("state") or "", meta.get("generation") or ""
    return f"{state}.{generation}" if state and generation else state


def catalog(store: Path) -> dict[str, dict[str, Any]] | None:
    """The collections of an embedded store and their b2p metadata, read without opening Chroma.

    Opening a ``PersistentClient`` always writes (Chroma logs each opener in ``acquire_write``), so
    checks that may refuse a command read Chroma's catalog read-only first. None when there is no
    embedded store, or its catalog is not laid out as expected (the checks after opening still run);
    ``DamagedStore`` when the file is not a database SQLite can read.
    """
    db = store / DB_FILE
    if not db.is_file():
        return None
    import sqlite3

    try:
        con = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=10)
        try:
            names = [r[0] for r in con.execute("SELECT name FROM collections")]
            rows = con.execute(
                "SELECT c.name, m.key, COALESCE(m.str_value, m.int_value, m.float_value, m.bool_value) "
                "FROM collections c JOIN collection_metadata m ON m.collection_id = c.id"
            ).fetchall()
        finally:
            con.close()
    except sqlite3.OperationalError:
        return None  # locked, or laid out otherwise: the checks after opening still run
    except sqlite3.DatabaseError as err:
        raise DamagedStore(store, str(err)) from None
    out: dict[str, dict[str, Any]] = {n: {} for n in names}
    for name, key, value in rows:
        if isinstance(key, str) and key.startswith(META_PREFIX) and name in out:
            out[name][key[len(META_PREFIX) :]] = value
    return out
