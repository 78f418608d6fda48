"""b2p — beats to prose, as a library.

The jobs (``b2p.jobs``; the ``b2p`` command is one client of them)::

    import b2p

    b2p.ingest_bible("story_bibles/lunar_mining")                     # -> IngestReport
    ledger = b2p.lore_for("lunar_mining", ["Jack radios Dr. Thorne."])  # -> Ledger
    trace = b2p.write_chapter("beats.txt", "lunar_mining", out="chapter.md")  # -> ChapterTrace
    report = b2p.evaluate("chapter.md")                                    # -> ChapterEval

Each takes ``settings=b2p.load_settings(...)`` (default: ``./b2p.toml`` and env ``B2P_*``) and an
optional ``b2p.Events`` for progress. Importing ``b2p`` is light: every name below is imported when
first used, so no model, store or CLI library is loaded until a job runs.

Each pipeline stage is one module:

- ``settings``   the one settings object (flags > env ``B2P_*`` > ``b2p.toml`` > defaults)
- ``models``     the data shapes shared by every stage (entries, picks, ledgers)
- ``embeddings`` sentence-transformers at ingest, an ONNX twin of the same model at query time
- ``store``      the Chroma store: open, lock, read entries, write chunks
- ``index``      the lore index saved beside the store: what a cold ``b2p lore`` reads instead of Chroma
- ``beats``      beat-sheet parsing
- ``book``       a bible's chapters in order, a chapter's place in its book, ``b2p book``'s staleness
- ``gating``     lore that unfolds by chapter: the index as it stands at chapter N
- ``matcher``    which entries a beat names (one Aho-Corasick automaton for every alias)
- ``scene``      who a beat's pronouns and descriptions point back to
- ``retrieval``  the per-beat lore ledger: always ∪ named ∪ scene ∪ similar, within a budget
- ``plan``       a sheet's ledger and lore texts, read once; the prompts a run would send (dry run)
- ``prompts``    the prompts the models see, fitted to the context window
- ``prose``      trimming model output to clean prose; splitting a one-shot reply into beats
- ``llm``        the model backends, registered by class (``llm_local``: embedded llama.cpp, ``llm_openai``: OpenAI-compatible)
- ``resume``     a chapter's saved state, and which beats a run writes
- ``story``      the story so far each beat's prompt carries (earlier chapters' summaries, then the chapter's beats)
- ``drafting``   the drafting strategies: sequential, one-shot, interactive, best-of-n with a judge
- ``interactive`` the accept / regenerate / edit / quit conversation with the author
- ``writer``     the chapter file and its trace, saved after every beat (the trace first, as a journal)
- ``chapterfile`` the chapter file as the writer has it: beats between markers, their text around them
- ``destination`` what ``-o`` names, and whether a chapter may be written there
- ``trace``      the chapter trace's shape
- ``generate``   resume state + strategy + writer: beat sheet → chapter + trace
- ``events``     the progress hooks a job calls
- ``jobs``       the jobs above, the library's front door
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# name → module it lives in; imported on first use (PEP 562), so `import b2p` loads none of them.
_EXPORTS = {
    "ingest_bible": "b2p.jobs",
    "lore_for": "b2p.jobs",
    "write_chapter": "b2p.jobs",
    "chapter_prompts": "b2p.jobs",
    "book_status": "b2p.jobs",
    "list_entries": "b2p.jobs",
    "evaluate": "b2p.jobs",
    "Events": "b2p.events",
    "Interaction": "b2p.interactive",
    "Settings": "b2p.settings",
    "load_settings": "b2p.settings",
    "Ledger": "b2p.models",
    "IngestReport": "b2p.models",
    "ChapterTrace": "b2p.trace",
    "LLM": "b2p.llm",
    "BackendOptions": "b2p.llm",
    "B2PError": "b2p.errors",
}

__all__ = [*_EXPORTS, "__version__"]

if TYPE_CHECKING:
    from b2p.errors import B2PError
    from b2p.events import Events
    from b2p.interactive import Interaction
    from b2p.jobs import book_status, chapter_prompts, evaluate, ingest_bible, list_entries, lore_for, write_chapter
    from b2p.llm import LLM, BackendOptions
    from b2p.models import IngestReport, Ledger
    from b2p.settings import Settings, load_settings
    from b2p.trace import ChapterTrace


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'b2p' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(__all__)
