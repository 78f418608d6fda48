"""The store's one contract with Chroma's private internals.

``Store.catalog`` reads Chroma's SQLite schema directly (tables ``collections`` and
``collection_metadata``): opening a ``PersistentClient`` writes to the store, so the checks that
may refuse a command, and the state a cold ``b2p lore`` needs, are read this way first. If a
Chroma upgrade changes that schema, this test fails: update ``Store.catalog``.
"""

from __future__ import annotations

from b2p.settings import Settings
from b2p.store import Store


def test_the_catalog_reads_exactly_what_chroma_reports(sample_store: Settings) -> None:
    import chromadb

    catalog = Store.catalog(sample_store)
    assert catalog is not None, f"chromadb {chromadb.__version__} changed its private schema: Store.catalog can no longer read it"
    with Store.open(sample_store) as st:
        bibles = st.bibles()
        assert sorted(catalog) == bibles == ["drowned_archive", "lunar_mining"]
        for bible in bibles:
            assert catalog[bible] == st.meta(bible), f"chromadb {chromadb.__version__}: Store.catalog misreads '{bible}'"
            assert catalog[bible]["state"]  # what `b2p lore` keys its index by
