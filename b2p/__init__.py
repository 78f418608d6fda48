"""b2p — beats to prose.

The library used at generation time. Each pipeline stage is one module:

- ``settings``   the one settings object (flags > env ``B2P_*`` > ``b2p.toml`` > defaults)
- ``models``     the data shapes shared by every stage (entries, picks, ledgers, traces)
- ``embeddings`` sentence-transformers at ingest, an ONNX twin of the same model at query time
- ``store``      the Chroma store: open, lock, read entries, write chunks
- ``index``      the lore index saved beside the store: what a cold ``b2p lore`` reads instead of Chroma
- ``beats``      beat-sheet parsing
- ``matcher``    which entries a beat names (one Aho-Corasick automaton for every alias)
- ``scene``      who a beat's pronouns and descriptions point back to
- ``retrieval``  the per-beat lore ledger: always ∪ named ∪ scene ∪ similar, within a budget
- ``prompts``    the prompts the models see, fitted to the context window
- ``prose``      trimming model output to clean prose; splitting a one-shot reply into beats
- ``llm``        the model backends (``llm_local``: embedded llama.cpp, ``llm_openai``: OpenAI-compatible)
- ``interactive`` the accept / regenerate / edit / quit conversation with the author
- ``trace``      the chapter trace and its atomic writes
- ``generate``   beat sheet → chapter + trace
"""

__version__ = "0.1.0"
