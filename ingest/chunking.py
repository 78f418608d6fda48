"""Sentence-aware chunks, sized in the embedding model's own tokens so no chunk is truncated."""

from __future__ import annotations

from collections.abc import Callable

from b2p.models import LoreEntry


def chunk_signature(chunk_size: int, chunk_overlap: int) -> str:
    """Recorded in the store: a different chunking needs a rebuild, like a different model."""
    return f"sentence:{chunk_size}/{chunk_overlap}"


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
    """The texts embedded for one entry. Each chunk carries the entry's name so it reads in isolation."""
    head = f"{entry.name} ({entry.kind})"
    return [f"{head}: {piece}" for piece in splitter.split_text(entry.text) if piece.strip()]
