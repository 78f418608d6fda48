"""A model reads the beat: with ``resolver = "model"``, the chat model says which entries a beat involves.

b2p's rules find what a beat *names* and much of what it refers to (pronouns, relations the lore
states, titles, parts, descriptions); what they cannot do is read ("the night the Old Girl held up
the canvas" is the blowdown; "the flats" are the train's). A capable model can. So, on request, each
beat goes to the configured model with a catalogue of the bible's entries (name, kind and the
opening words of its lore), the beats before it, and one question: which entries does a writer
need for this beat, and by which words does the beat refer to each?

What the model says is checked, not trusted: only names (or aliases) from the catalogue count, each
with words it quotes from the beat as they stand there; an answer that was cut off, lists most of
the catalogue, or names nothing while the beat names entries is set aside, and a model that fails
is not asked again in that run: the rules' choice stands, said in the ledger. The writer's
``+Name``/``-Name`` and the ``always`` notes are kept whatever the model says; everything else is its
call (a name used in another sense too). Answers are cached by the exact prompt and model, so
``b2p lore`` then ``b2p generate`` ask once; a dry run reads the cache and asks nothing.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from b2p.llm import GenOptions, Message

RESOLVE_TOKENS = 200  # a beat rarely involves more than eight entries: a name and a few words each
CATALOGUE_MAX = 120  # entries listed in one prompt; a larger bible lists the candidates the rules and similarity found
CANDIDATES = 40  # how many of those, for a large bible
EARLIER = 3  # beats before this one shown, for pronouns and "the captain"
WHAT_WORDS = 24  # words of an entry's opening shown in the catalogue
ALIASES = 6  # other names of an entry shown in the catalogue
MOST, MOST_SHARE = 4, 0.6  # more picks than both, beyond those the beat names, lists the catalogue, not the beat
_BULLET = re.compile(r"^\s*(?:[-*•>]+|\d+[.)]|\(\d+\))\s*")
_WORDS = re.compile(r"\w[\w'’-]*")
_CUE = re.compile(r"\s*(?:[—–]|-{1,2}|:)\s+|\s+\(")


@dataclass
class Answer:
    """What the model chose for one beat: entry ids with the words of the beat it gave for each, or
    ``ids`` None with why its answer was not used."""

    ids: list[tuple[str, str]] | None
    note: str = ""
    unquoted: list[str] = field(default_factory=list)  # entries it named without words of the beat: it agrees, but adds nothing


def heading(kind: str, aliases: Sequence[str]) -> str:
    """What the catalogue says beside a name: its kind, and the other names it goes by."""
    shown = [a for a in aliases if a.strip()][:ALIASES]
    return f"{kind}; also: {', '.join(shown)}" if shown else kind


def what(text: str) -> str:
    """The opening words of an entry's lore, on one line: what the catalogue says it is."""
    words = " ".join(text.split()).split(" ")
    return " ".join(words[:WHAT_WORDS]) + (" …" if len(words) > WHAT_WORDS else "")


def resolve_messages(beat: str, earlier: Sequence[str], rows: Sequence[tuple[str, str, str]]) -> list[Message]:
    """The question for one beat. ``rows``: (name, "kind; also: aliases", opening words) of each catalogue entry."""
    catalogue = "\n".join(f"- {name} ({kind}): {opening}" for name, kind, opening in rows)
    before = "\n".join(f"- {b}" for b in earlier) or "- (this is the first beat)"
    user = (
        f"Story bible entries:\n{catalogue}\n\n"
        f"The outline so far:\n{before}\n\n"
        f"The next beat:\n{beat}\n\n"
        "Which of these entries does a writer need in front of them to write the next beat? Include every "
        "person, place, thing, group and past event it involves, however it refers to them: by name or "
        "nickname, by pronoun, by relation (\"her cousin\"), by title or role (\"the captain\"), by a part or "
        "use of a thing (\"the hull\"), by description, or by an oblique mention of a past event; and the "
        "place where the beat happens when that is clear. Leave out entries it does not involve, even when "
        "they share a word with it.\n"
        "Answer with one entry per line, its name exactly as listed, then \" — \" and the words of the beat "
        "that refer to it. Nothing else. If it involves none of them, answer: none"
    )
    return [{"role": "system", "content": "You keep a novelist's story bible and read outlines carefully. "
             "You answer only with entry names from the list you are given."},
            {"role": "user", "content": user}]


def parse_answer(answer: str, names: Mapping[str, str]) -> tuple[list[tuple[str, str]], list[str], bool]:
    """(entry id, the beat's words) for each line naming a catalogue entry (``names``: lower-case name or
    alias → id), the lines that name none, and whether the answer said "none". A line starts with the
    longest catalogue name it can ("The Flood: 1953" before "The Flood"); what follows a separator is
    the quote."""
    found: dict[str, str] = {}
    unknown = []
    said_none = False
    keys = sorted(names, key=len, reverse=True)
    for raw in answer.splitlines():
        line = _BULLET.sub("", raw).strip().strip("*_`\"'“”").strip()
        if not line:
            continue
        if line.lower().rstrip(".") in ("none", "no entries", "nothing"):
            said_none = True
            continue
        low = line.lower()
        key = next((k for k in keys if low.startswith(k) and not low[len(k) : len(k) + 1].isalnum()), None)
        if key is None:
            unknown.append(line)
            continue
        rest = line[len(key) :].lstrip("*_`\"'“”")
        if re.match(r"\s*\([^)]*\)\s*(?:[—–:]|-{1,2})", rest):  # "Name (character) — …": the catalogue's own aside
            rest = rest[rest.index(")") + 1 :]
        cut = _CUE.match(rest)
        cue = rest[cut.end() :] if cut else rest
        entry = names[key]
        if entry not in found:
            found[entry] = cue.strip().rstrip(")").strip().strip("\"'“”*_`")[:80]
    return list(found.items()), unknown, said_none


def _quotes(cue: str, beat: str) -> bool:
    """Some words the model gave for a pick stand in the beat as it wrote them (case, punctuation and a
    possessive 's aside; asides in brackets dropped; a cue may quote several places: "his sister; her",
    "\"Pim\" and \"his\""), and are not a bare function word ("the", "and"): a pronoun the beat uses
    ("she", "his") is a quote. A model that makes up its reason made up the pick."""
    beat_words = _tokens(beat)
    plain = re.sub(r"\([^)]*\)|\[[^]]*\]", " ", cue)
    return any(_quoted(_tokens(part), beat_words) for part in re.split(r"[;,/…\"“”]|\.\.\.|\band\b", plain))


def _quoted(words: list[str], beat_words: list[str]) -> bool:
    from b2p.lexicon import PRONOUN_OF, STOP_WORDS

    if not words or all(w in STOP_WORDS and w not in PRONOUN_OF and w not in _POSSESSIVES for w in words):
        return False
    n = len(words)
    return any(beat_words[k : k + n] == words for k in range(len(beat_words) - n + 1))


def _tokens(text: str) -> list[str]:
    return [re.sub(r"['’]s?$", "", w.lower()) for w in _WORDS.findall(text)]


_POSSESSIVES = frozenset({"his", "her", "hers", "their", "its"})


class ModelResolver:
    """Asks ``llm`` about each beat, through a cache of answers keyed by the prompt and the model.
    ``llm`` None: a dry run, which reads the cache and asks nothing."""

    def __init__(self, llm: Any, cache: Path | None, identity: str) -> None:
        self.llm = llm
        self.cache = cache
        self.identity = identity
        self.broken = ""  # why the model could not be asked: it is not asked again in this run

    @classmethod
    def from_settings(cls, settings: Any, ask: bool = True) -> ModelResolver:
        from b2p.llm import load_llm

        options = settings.backend_options(settings.llm).model_dump(mode="json")  # a key is masked here, never hashed
        identity = json.dumps({"llm": settings.llm, "model": settings.model, "options": options}, sort_keys=True, default=str)
        return cls(load_llm(settings) if ask else None, settings.cache_dir / "resolve", identity)

    def close(self) -> None:
        if self.llm is not None:
            self.llm.close()

    def ask(self, beat: str, earlier: Sequence[str], rows: Sequence[tuple[str, str, str]], names: Mapping[str, str],
            named: int = 0) -> Answer:
        """The model's choice for ``beat``; ``named``: how many entries the beat names outright (an answer
        naming none of the catalogue then is not an answer)."""
        from b2p.errors import B2PError

        messages = resolve_messages(beat, earlier, rows)
        key = hashlib.sha256((self.identity + json.dumps(messages, ensure_ascii=False)).encode()).hexdigest()
        text = self._cached(key)
        if text is None:
            if self.llm is None:
                return Answer(None, "not asked in a dry run; the rules chose")
            if self.broken:
                return Answer(None, f"the model could not be asked earlier in this run ({self.broken}); the rules chose")
            try:
                done = self.llm.complete(messages, GenOptions(max_tokens=RESOLVE_TOKENS, temperature=0.0, seed=0))
            except B2PError as e:
                self.broken = str(e)
                return Answer(None, f"the model could not be asked ({e}); the rules chose")
            text = done.text
            if done.finish_reason != "stop":
                return Answer(None, "the model's answer was cut off; the rules chose")
            self._keep(key, text)
        heard, _, said_none = parse_answer(text, names)
        ids = [(i, cue) for i, cue in heard if _quotes(cue, beat)]
        unquoted = [i for i, cue in heard if not _quotes(cue, beat)]
        if heard and not ids:
            return Answer(None, "the model's picks quoted nothing the beat says; the rules chose")
        if not ids and not said_none:
            return Answer(None, "the model's answer named no entry of the bible; the rules chose")
        if not ids and named:
            return Answer(None, "the model said none, but the beat names entries; the rules chose")
        if len(heard) - named > max(MOST, MOST_SHARE * len(rows)):
            return Answer(None, f"the model listed {len(heard)} of {len(rows)} entries; the rules chose")
        return Answer(ids, "", unquoted)

    def _cached(self, key: str) -> str | None:
        if self.cache is None:
            return None
        path = self.cache / key[:2] / f"{key}.txt"
        try:
            return path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None

    def _keep(self, key: str, text: str) -> None:
        if self.cache is None:
            return
        from b2p.atomic import write_atomic
        from b2p.errors import B2PError

        try:
            (self.cache / key[:2]).mkdir(parents=True, exist_ok=True)
            write_atomic(self.cache / key[:2] / f"{key}.txt", text)
        except (OSError, B2PError):
            pass  # a cache that cannot be written costs a second question, nothing else
