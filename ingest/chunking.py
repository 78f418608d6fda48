"""Sentence-aware chunks, sized in the embedding model's own tokens so no chunk is truncated."""

from __future__ import annotations

from collections.abc import Callable

from b2p import gating
from b2p.lexicon import sentences
from b2p.models import LoreEntry
from b2p.store import chunk_header


def chunk_signature(chunk_size: int, chunk_overlap: int) -> str:
    """Recorded in the store: a different chunking needs a rebuild, like a different model."""
    return f"sentence:{chunk_size}/{chunk_overlap}"


def chunker_version() -> str:
    """Recorded in the store beside the chunking: the splitter that made the chunks. A release of
    llama-index may split the same text differently, so after an upgrade ingest splits every entry
    again and embeds those whose chunks changed."""
    from importlib.metadata import version

    return f"llama-index-core {version('llama-index-core')}"


def make_splitter(chunk_size: int, chunk_overlap: int, tokenize: Callable[[str], list[int]]):  # noqa: ANN201
    """llama-index's sentence splitter, counting with our tokenizer (its default would be tiktoken)."""
    from llama_index.core.node_parser import SentenceSplitter

    return SentenceSplitter(
        chunk_size=chunk_size,
        chunk_overlap=min(chunk_overlap, chunk_size // 2),
        tokenizer=tokenize,
        paragraph_separator="\n\n",
    )


def chunk_entry(entry: LoreEntry, splitter) -> list[str]:  # noqa: ANN001
    """The texts embedded for one entry. Each chunk carries the entry's name so it reads in isolation.

    No chunk straddles a ``## From chapter N`` heading: the text is split where its gate changes
    first, and a chunk of a gated stretch says so after its header (``b2p.gating.chunk_prefix``),
    so the lore index can keep it out of similarity until its chapter."""
    head = chunk_header(entry)
    return [head + gating.chunk_prefix(run.gate) + piece
            for run in gating.runs(entry.text) for piece in splitter.split_text(run.text) if piece.strip()]


LEAD_TOKENS = 80


def lead_of(text: str, tokenize: Callable[[str], list[int]], limit: int = LEAD_TOKENS) -> str:
    """The opening sentences of an entry's first paragraph, within ``limit`` tokens (at least one sentence).

    When a beat's budget cannot hold a whole entry it still gets this gist rather than nothing.
    """
    para = text.strip().split("\n\n", 1)[0]
    para = " ".join(line.strip().lstrip("#>*- ").strip() for line in para.splitlines())
    out = ""
    for sentence in sentences(para):
        candidate = f"{out} {sentence}".strip()
        if out and len(tokenize(candidate)) > limit:
            break
        out = candidate
    return out
