"""Story-bible files → validated entries → chunks → the store.

- ``bible``     read and validate a bible folder (every problem as ``path:line: message``)
- ``chunking``  sentence-aware chunks sized in embedding-model tokens
- ``pipeline``  diff the bible against the store, embed what changed, write it crash-safely
- ``lint``      ``b2p lint``: what a careful editor would flag (``lint_names``: names and aliases;
                ``lint_lore``: what retrieval pulls in, near-duplicates, relatives without an entry)
"""
