"""How good is one beat's prose? Pure, fast measures on plain text, for ``b2p eval`` and the generation guards.

Each function takes the beat's prose (and what it is compared with) as plain strings and returns a
figure; none loads a model except :func:`similarity`, which takes the embedder from its caller.

- **coverage**: the beat's content words (names included) found in the prose, by one stem rule;
- **similarity**: cosine of the beat and the prose with b2p's embedding model;
- **repeat**: share of the prose's word 6-grams already in earlier text; **loops**: inside itself;
- **debris**: lines that are scaffolding or markup rather than story, found by their shape;
- **mid-sentence end**, and **length** against the words asked for;
- **lore use**: which picks the prose names, and which bible entries it names that were not picked.

``b2p.evaluate`` takes coverage, similarity, length and lore use on the prose without its debris
lines, so a beat whose prose only repeats its own beat line covers nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from b2p import lexicon

if TYPE_CHECKING:
    from b2p.matcher import Mention
    from b2p.models import LorePick

# -- one stem rule -----------------------------------------------------------------------------------

STEM_LEN = 6  # stems are cut to this many letters, so derived forms meet: "excavation", "excavating" → "excava"
_WORD = re.compile(r"[A-Za-z]+(?:['’][A-Za-z]+)*")


def stem(word: str) -> str:
    """The lexicon's one stem rule (possessive and inflection off: "uncovered" → "uncover"), cut to six
    letters so a beat's nouns meet the prose's verbs: "desolation"/"desolate" → "desola"."""
    return lexicon.stem(word.replace("’", "'"))[:STEM_LEN]


def _stems(words: Iterable[str]) -> frozenset[str]:
    return frozenset(stem(w) for w in words)


_GRAMMAR = lexicon.STOP_WORDS | lexicon.ABBREVIATIONS  # never a beat's content
_FUNCTION, _CRAFT, _WRITER = _stems(_GRAMMAR), _stems(lexicon.CRAFT_WORDS), _stems(lexicon.WRITER_VERBS)
_TEXT_NOUN, _DOCUMENT = _stems(lexicon.TEXT_NOUNS), _stems(lexicon.DOCUMENT_NOUNS)


def words(text: str) -> list[str]:
    """The words of ``text`` as written (letters and inner apostrophes; hyphens and digits split words)."""
    return _WORD.findall(text)


def content_words(text: str) -> dict[str, str]:
    """The text's content words: stem → the first form it takes in the text (names keep their capitals)."""
    out: dict[str, str] = {}
    for w in words(text):
        s = stem(w)
        if len(s) >= 3 and s not in _FUNCTION and w.lower() not in _GRAMMAR and s not in _CRAFT:
            out.setdefault(s, w)
    return out


# -- coverage and similarity -----------------------------------------------------------------------


class Coverage(BaseModel):
    score: float | None = Field(description="Share of the beat's content words found in the prose (None: the beat has none).")
    found: list[str] = Field(default_factory=list)
    missing: list[str] = Field(default_factory=list)


def coverage(beat: str, prose: str) -> Coverage:
    """The beat's content words (and names) that the prose uses, in any form the stem rule joins."""
    want = content_words(beat)
    have = {stem(w) for w in words(prose)}
    found = [w for s, w in want.items() if s in have]
    missing = [w for s, w in want.items() if s not in have]
    return Coverage(score=round(len(found) / len(want), 3) if want else None, found=found, missing=missing)


Embed = Callable[[list[str]], Any]  # texts → L2-normalised vectors (numpy rows), e.g. QueryEmbedder.encode
WINDOW_WORDS = 150  # the embedding model reads 256 tokens at most; longer prose is embedded in windows


def text_vector(embed: Embed, text: str) -> Any:
    """One unit vector for ``text``: the mean of its windows' vectors when it is longer than the model reads."""
    import numpy as np

    w = text.split()
    parts = [" ".join(w[i : i + WINDOW_WORDS]) for i in range(0, max(len(w), 1), WINDOW_WORDS)] or [""]
    v = np.asarray(embed(parts), dtype=np.float32).mean(axis=0)
    return v / max(float(np.linalg.norm(v)), 1e-12)


def similarity(beat: str, prose: str, embed: Embed) -> float | None:
    """Cosine of the beat and its prose (None for empty prose)."""
    if not prose.strip():
        return None
    return round(float(text_vector(embed, beat) @ text_vector(embed, prose)), 3)


# -- repetition ------------------------------------------------------------------------------------

NGRAM = 6
COPY_LIMIT = 0.2  # a beat repeating more than this share of its 6-grams from earlier beats is a copy (eval and the guards)


def ngrams(text: str, n: int = NGRAM) -> list[tuple[str, ...]]:
    w = [x.lower().replace("’", "'") for x in words(text)]
    return [tuple(w[i : i + n]) for i in range(len(w) - n + 1)]


def repeat_share(prose: str, earlier: Iterable[str], n: int = NGRAM) -> float:
    """Share of the prose's word n-grams that already occur in ``earlier`` texts (0 when it has none)."""
    grams = ngrams(prose, n)
    if not grams:
        return 0.0
    seen = {g for t in earlier for g in ngrams(t, n)}
    return round(sum(g in seen for g in grams) / len(grams), 3)


def loop_share(prose: str, n: int = NGRAM) -> float:
    """Share of the prose's word n-grams that repeat one earlier in the same prose: a model going round."""
    grams = ngrams(prose, n)
    seen: set[tuple[str, ...]] = set()
    again = 0
    for g in grams:
        again += g in seen
        seen.add(g)
    return round(again / len(grams), 3) if grams else 0.0


# -- debris ------------------------------------------------------------------------------------------

DEBRIS_KINDS = ("heading", "label", "markup", "list", "note", "meta", "echo")
_ENDS = ".!?…"
_CLOSERS = "\"'”’)]*_"
_RULE = re.compile(r"^\s*(?:[-*_=~`]\s*){3,}$")  # ---, ***, ```
_TAG = re.compile(r"<<|>>|\[\[|\]\]|\{\{|\}\}|</?[A-Za-z|][^<>]{0,40}>|<\|"  # <<Title>>, [[x]], <p>, <|im_end|>
                  r"""|<[A-Za-z][\w-]*(?:\s+[\w-]+(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'<>]+))?)*\s*/?>""")  # <img src=x onerror="…">
_LIST = re.compile(r"^\s*(?:\(?\d+[.)]|[-*•+])(?:\s+|$)")
_NUMBER_LABEL = re.compile(r"^[A-Za-z]+\.?\s+\d+\b")  # "Beat 3", "Part 2: The Find", "Chapter 1"
_COLON = re.compile(r"^([^\"“”:]{1,60}):(?:\s+(.*))?$")
_QUOTES = "\"'“‘«—–-"
ECHO_NGRAM = 4


class Debris(BaseModel):
    line: int = Field(description="1-based line of the beat's prose.")
    kind: str = Field(description="heading | label | markup | list | note | meta | echo")
    text: str


def is_meta(sentence: str) -> bool:
    """A sentence about the text rather than the story: a text noun ("paragraph", "scene", "passage")
    with the writer as its subject ("I have added…"), pointed at from outside ("In this scene", "Here is
    the next part"), or beside another text noun when one names a part of a document ("The story ended
    where the first part started: a chapter of…"); or a word count."""
    low = sentence.lower()
    if re.search(r"\bword count\b|\(\s*\d+\s+words?\s*\)|\b\d+\s+words\b", low):
        return True
    w = [x.lower().replace("’", "'") for x in words(sentence)]
    stems = [stem(x) for x in w]
    nouns = [i for i, s in enumerate(stems) if s in _TEXT_NOUN]
    if not nouns:
        return False
    if any(x in lexicon.FIRST_PERSON for x in w) and any(s in _WRITER for s in stems):
        return True
    kinds = {stems[i] for i in nouns}
    if len(kinds) >= 2 and kinds & _DOCUMENT:
        return True
    if w[0] in lexicon.POINTERS and nouns[0] <= 8:  # "Here's one more piece of the story…", "This chapter…"
        return True
    return any(x in lexicon.POINTERS for x in w[:5]) and nouns[0] <= 4  # "In this scene", "Below is the passage"


def _title_like(text: str) -> bool:
    """Most words capitalised: 'The Lantern's Secret', 'A Beginning for a Future'."""
    ws = words(text)
    return bool(ws) and sum(x[0].isupper() or x.lower() in _GRAMMAR for x in ws) == len(ws) and ws[0][0].isupper()


def _beat_grams(beat: str) -> tuple[int, set[tuple[str, ...]]]:
    n = max(1, min(ECHO_NGRAM, len(words(beat))))
    return n, set(ngrams(beat, n))


def _echoes(line: str, beat_grams: Sequence[tuple[int, set[tuple[str, ...]]]]) -> bool:
    """The line repeats a beat line: most of its 4-grams come from one beat, and they make up at least
    half of that beat ("Jack and Xander uncover an alien artifact." alone is prose, not an echo)."""
    for n, grams in beat_grams:
        mine = set(ngrams(line, n))
        shared = len(mine & grams)
        if grams and mine and shared >= 0.6 * len(mine) and shared >= 0.5 * len(grams):
            return True
    return False


def _line_kind(line: str, last: bool, follows_lower: bool, beat_grams: Sequence[tuple[int, set[tuple[str, ...]]]]) -> str | None:
    s = line.strip()
    bare = s.strip("*_ ").strip()
    n_words = len(words(bare))
    if s.startswith("#"):
        return "heading"
    if _RULE.match(s) or _TAG.search(s) or s.startswith(">"):
        return "markup"
    if not bare:
        return "markup"  # a line of only ** or __
    if (s.startswith("**") and s.endswith("**") or s.startswith("__") and s.endswith("__")) and n_words <= 12:
        return "heading"
    if _LIST.match(s) or re.fullmatch(r"\(?\d+[.)]?", bare):
        return "list"
    if bare[:1] in "([" and bare[-1:] in ")]":
        return "note"  # "(The story ends abruptly)", "[Beat 2]"
    if _NUMBER_LABEL.match(bare) and n_words <= 8:
        return "label"
    m = _COLON.match(bare)
    if m and len(words(m.group(1))) <= 5 and m.group(1).strip()[:1] not in _QUOTES:
        prefix, rest = m.group(1), m.group(2) or ""
        tagged = re.search(r"\([^()]*\)\s*$", prefix)  # a lore heading written back: "The Lantern (item): …"
        if not rest.strip() or tagged or _title_like(prefix) or any(stem(x) in _TEXT_NOUN for x in words(prefix)) or re.search(r"\d", prefix):
            return "label"  # "Story so far:", "In this scene:", "Summary: Jack …"
    if any(is_meta(x) for x in lexicon.sentences(bare)):
        return "meta"
    if _echoes(bare, beat_grams):
        return "echo"  # the beat line (or another beat's) written back as prose
    ends = bare.rstrip(_CLOSERS)[-1:] in _ENDS or bare[-1:] in _ENDS
    short = not ends and bare[:1] not in _QUOTES and n_words <= 10
    if short and ((not last and not follows_lower) or (last and n_words <= 6 and _title_like(bare))):
        return "heading"  # a short unpunctuated line before more prose: an invented title
    return None


def debris(prose: str, beats: Sequence[str] = ()) -> list[Debris]:
    """Lines of ``prose`` that are scaffolding or markup, by their shape: headings and titles, labels
    ("Beat 3", "Story so far:"), markup (``<<…>>``, an unclosed ``**``, rules), list numbers, stage notes,
    comments on the writing, and lines that repeat a beat (``beats``: the sheet's beat lines)."""
    beat_grams = [_beat_grams(b) for b in beats]
    lines = prose.splitlines()
    filled = [i for i, ln in enumerate(lines) if ln.strip()]
    out: dict[int, Debris] = {}
    for k, i in enumerate(filled):
        nxt = lines[filled[k + 1]].strip() if k + 1 < len(filled) else ""
        kind = _line_kind(lines[i], i == filled[-1], nxt[:1].islower(), beat_grams)
        if kind:
            out[i] = Debris(line=i + 1, kind=kind, text=lines[i].strip())
    for mark in ("**", "__"):
        open_line = None
        for i in filled:
            if lines[i].count(mark) % 2:
                open_line = None if open_line is not None else i
        if open_line is not None and open_line not in out:
            out[open_line] = Debris(line=open_line + 1, kind="markup", text=lines[open_line].strip())
    return [out[i] for i in sorted(out)]


def without_debris(prose: str, found: Sequence[Debris]) -> str:
    """The prose with its debris lines taken out (blank lines kept, so paragraphs stay paragraphs)."""
    drop = {d.line for d in found}
    return "\n".join(ln for i, ln in enumerate(prose.splitlines(), start=1) if i not in drop).strip()


def ends_mid_sentence(prose: str) -> bool:
    """True when the prose stops inside a sentence (the same sentence rule the trimmer uses)."""
    from b2p.prose import sentence_end

    text = prose.rstrip()
    return bool(text) and sentence_end(text) < len(text)


def length_ratio(prose: str, words_per_beat: int | None) -> float | None:
    """Words of prose per word asked for (None when the target is unknown)."""
    if not words_per_beat:
        return None
    return round(len(prose.split()) / words_per_beat, 2)


# -- lore use ----------------------------------------------------------------------------------------


class LoreUse(BaseModel):
    used: list[str] = Field(default_factory=list, description="Picks the prose names (by name or alias).")
    unused: list[str] = Field(default_factory=list, description="Picks it never names ('always' notes are not expected to be named).")
    unpicked: list[str] = Field(default_factory=list, description="Bible entries it names that the beat's lore did not include.")
    share: float | None = Field(None, description="used / (used + unused); None when the beat had no lore to name.")


def lore_use(prose: str, picks: Sequence[LorePick], find: Callable[[str], Iterable[Mention]], names: Callable[[str], str | None]) -> LoreUse:
    """Which of the beat's lore ``picks`` the prose names, and what else from the bible it names.

    ``find`` is the bible's name matcher (``LoreIndex.matcher.find``); ``names(id)`` gives an entry's
    name (None for an entry not in the bible, or one not worth reporting such as an ``always`` note)."""
    mentioned = [m.entry_ids for m in find(prose)]
    said = {i for ids in mentioned for i in ids}
    named = [p for p in picks if p.reason != "always"]
    every = {p.id for p in picks}
    used = [p.name for p in named if p.id in said]
    unused = [p.name for p in named if p.id not in said]
    unpicked: list[str] = []
    for ids in mentioned:
        if not every & set(ids):
            name = names(ids[0])
            if name and name not in unpicked:
                unpicked.append(name)
    return LoreUse(used=used, unused=unused, unpicked=unpicked, share=round(len(used) / len(named), 3) if named else None)
