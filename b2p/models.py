"""The data shapes every stage shares. JSON out of the CLI is these models dumped."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Reason = Literal["writer", "always", "named", "scene", "similar", "model"]


class ChapterRef(BaseModel):
    """One item of ``chapters:`` in ``bible.yaml``: a beat sheet and, optionally, where its chapter is written."""

    model_config = ConfigDict(extra="forbid")

    beats: str = Field(description="The beat sheet, relative to the bible folder.")
    out: str | None = Field(None, description="The chapter file [default: the beat sheet with .md].")


class BibleMeta(BaseModel):
    """``bible.yaml``: the title and the writing defaults generation uses."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(None, description="The book's title.")
    pov: str | None = Field(None, description="Point of view, e.g. 'close third person'.")
    tense: str | None = Field(None, description="Narrative tense, e.g. 'past'.")
    style: str | None = Field(None, description="A sentence or two on voice and style.")
    chapters: list[ChapterRef] | None = Field(None, description="The book's chapters in order (b2p.book); without it, beats/*.txt in natural name order.")


class LoreEntry(BaseModel):
    """One story-bible entry: a Markdown file's front matter and body."""

    id: str = Field(description="Stable id: the file path relative to the bible root, without .md.")
    name: str = Field(description="Display name; unique within a bible.")
    aliases: list[str] = Field(default_factory=list, description="Other names the entry goes by.")
    kind: str = Field(description="character, place, faction, item, note, lore, …")
    tags: list[str] = Field(default_factory=list)
    always: bool = Field(False, description="Include in every beat's context.")
    case_sensitive: bool = Field(False, description="Match names/aliases only with their capitals.")
    enabled: bool = Field(True, description="False keeps the entry out of retrieval (imported disabled entries).")
    imported: dict[str, Any] | None = Field(None, description="Fields kept verbatim from another tool's format.")
    text: str = Field(description="The lore body (Markdown).")
    path: str = Field("", description="File path relative to the bible root.")
    hash: str = Field("", description="Content hash of everything that reaches the store.")
    tokens: int = Field(0, description="Token count of the entry as it appears in a prompt.")
    lead: str = Field("", description="The entry's opening sentences: what a beat gets when the whole entry does not fit.")
    lead_tokens: int = Field(0, description="Token count of the lead as it appears in a prompt.")
    pronouns: str | None = Field(None, description="he / she / they, inferred from the body, for characters.")
    gating: dict[str, Any] | None = Field(None, description="When the entry is true for the story (b2p.gating): front matter "
                                          "'from' and 'until' (chapter numbers) and 'aliases_from' ({chapter: [aliases]}).")
    chapter_sizes: list[list[Any]] = Field(default_factory=list, description="For a body with '## From chapter N' sections: "
                                           "[first chapter, tokens, lead, lead tokens] of each version of the text, measured at ingest.")

    def keys(self) -> list[str]:
        """Every string that names this entry: its name first, then aliases."""
        return [self.name, *self.aliases]


class LorePick(BaseModel):
    """One entry chosen for a beat, and why."""

    name: str
    id: str
    kind: str
    reason: Reason
    score: float
    match: str | None = Field(None, description="The text that triggered the pick (named/scene), or the best chunk's start (similar).")
    tokens: int
    shortened: bool = Field(False, description="True when the budget cut the entry to its lead (opening sentences).")


class Dropped(BaseModel):
    """An entry considered for a beat but left out."""

    name: str
    reason: str = Field(description="'budget' (did not fit), 'writer' (kept out by the beat's -Name); with --explain also "
                        "'threshold' (similarity too low), 'margin' (did not stand out from the rest), 'top_k' (over the cap), "
                        "'ambiguous: …' (a relation more than one entry fits).")
    score: float


class HeldBack(BaseModel):
    """Lore that is not yet (or no longer) true at the chapter being written (``b2p lore --chapter N``)."""

    name: str = Field(description="The entry's name.")
    id: str
    what: Literal["entry", "section", "alias"] = Field(description="The whole entry ('from'/'until'), a '## From chapter N' "
                                                        "section of its text, or an alias from 'aliases_from'.")
    detail: str | None = Field(None, description="The alias, the section's opening words, or the words of a beat that named a held-back entry.")
    until: int | None = Field(None, description="The chapter from which it is true ('held back until chapter N').")
    after: int | None = Field(None, description="The chapter after which it stopped being true ('until: N').")

    @property
    def reason(self) -> str:
        return f"held back until chapter {self.until}" if self.until is not None else f"no longer true after chapter {self.after}"


class BeatLore(BaseModel):
    """The ledger line for one beat."""

    index: int
    text: str
    lore: list[LorePick] = Field(default_factory=list)
    dropped: list[Dropped] = Field(default_factory=list)
    resolver: str | None = Field(None, description="With resolver = 'model': why the model's answer was not used, when it "
                                 "was not (the rules' choice stands).")


class Ledger(BaseModel):
    """What ``b2p lore --json`` prints."""

    bible: str
    chapter: int | None = Field(None, description="The chapter whose view of the bible was used (None: the whole bible).")
    held_back: list[HeldBack] = Field(default_factory=list, description="What that view keeps out (b2p.gating).")
    beats: list[BeatLore]


class IngestReport(BaseModel):
    """What ``b2p ingest --json`` prints."""

    bible: str
    entries: int
    added: int
    updated: int
    removed: int
    unchanged: int
    chunks: int
    warnings: list[str] = Field(default_factory=list, exclude=True)
    seconds: float = Field(0.0, exclude=True)
