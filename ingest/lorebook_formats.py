"""The three lorebook formats as pydantic shapes, used to read them (``b2p import``) and to check
what ``b2p export`` writes.

- SillyTavern World Info: ``{"entries": {"<uid>": STEntry}, "name"?, "extensions"?, ...}``; the entry
  fields are SillyTavern's ``newWorldInfoEntryDefinition`` plus ``uid``, ``displayIndex``,
  ``characterFilter`` and ``extensions``.
- Character-card lorebooks (``character_book`` of a V2/V3 card, or a ``lorebook_v3`` file): ``CardBook``
  with ``CardEntry`` items (``keys``, ``secondary_keys``, ``insertion_order``, ``use_regex``, …).
- NovelAI ``.lorebook`` (v4–v6): ``NaiBook`` with ``NaiEntry`` items (``displayName``, ``text``, ``keys``,
  ``contextConfig``, ``loreBiasGroups``, ``advancedConditions``, ``category``) and ``NaiCategory`` items.

Every shape allows fields it does not name (a newer version's, an extension's): the importer keeps
the original JSON, so validation only decides whether a file is usable, never what is kept. The
fields are checked as the formats declare them, with the leniency their own readers have (0/1 for
booleans, a comma-separated string of keys in old SillyTavern files). ``written=True`` adds what a
file b2p writes must also satisfy: uids matching their slots, category ids that exist, finite numbers.
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any, Optional, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError, ValidationInfo, model_validator
from pydantic_core import PydanticCustomError

from b2p.errors import BibleError

SILLYTAVERN, CARD, NOVELAI = "sillytavern", "character-card", "novelai"
FORMATS = (SILLYTAVERN, CARD, NOVELAI)
ST_LOGIC = {0: "AND ANY", 1: "NOT ALL", 2: "NOT ANY", 3: "AND ALL"}  # how secondary keys combine with the primary ones


# ---------------------------------------------------------------- field types with the formats' leniency


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "text", bool: "true/false", type(None): "null"}.get(type(value), "a number")


def _bad(what: str, value: Any) -> PydanticCustomError:
    return PydanticCustomError("b2p", "must be {what}, not {value}", {"what": what, "value": json.dumps(value)[:40]})


def _flag(value: Any) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise _bad("true or false", value)


def _text(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    raise PydanticCustomError("b2p", "must be text, not {kind}", {"kind": _kind(value)})


def _number(value: Any, info: ValidationInfo) -> Any:
    if value is None:
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _bad("a number", value)
    if isinstance(value, float) and not math.isfinite(value) and (info.context or {}).get("written"):
        raise PydanticCustomError("b2p", "must be a finite number, not {value}", {"value": str(value)})
    return value


def _integer(value: Any, info: ValidationInfo) -> Any:
    value = _number(value, info)
    if isinstance(value, float) and not value.is_integer():
        raise _bad("a whole number", value)
    return value


def _strings(split_commas: bool) -> Any:
    def check(value: Any) -> list[str]:
        if value is None:
            return []
        if isinstance(value, str):
            value = value.split(",") if split_commas else [value]
        if not isinstance(value, list):
            raise PydanticCustomError("b2p", "must be a list of strings, not {kind}", {"kind": _kind(value)})
        out = []
        for v in value:
            if isinstance(v, bool) or not isinstance(v, (str, int, float)):
                raise PydanticCustomError("b2p", "must be a list of strings, but holds {v}", {"v": json.dumps(v)[:40]})
            if str(v).strip():
                out.append(str(v).strip())
        return out

    return check


def _logic(value: Any) -> Any:
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise _bad("a number 0-3 (0 AND ANY, 1 NOT ALL, 2 NOT ANY, 3 AND ALL)", value)


def _object(value: Any) -> Any:
    if value is None or isinstance(value, dict):
        return value
    raise PydanticCustomError("b2p", "must be an object, not {kind}", {"kind": _kind(value)})


def _list(value: Any) -> Any:
    if value is None or isinstance(value, list):
        return value
    raise PydanticCustomError("b2p", "must be a list, not {kind}", {"kind": _kind(value)})


def _flag_or_number(value: Any, info: ValidationInfo) -> Any:
    return _flag(value) if isinstance(value, bool) else _number(value, info)


def _id(value: Any) -> Any:
    if value is None or isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise _bad("a number or text", value)


Flag = Annotated[Optional[bool], BeforeValidator(_flag)]
Text = Annotated[Optional[str], BeforeValidator(_text)]
Number = Annotated[Optional[float], BeforeValidator(_number)]
Integer = Annotated[Optional[int], BeforeValidator(_integer)]
Keys = Annotated[list[str], BeforeValidator(_strings(False))]
CommaKeys = Annotated[list[str], BeforeValidator(_strings(True))]  # SillyTavern once stored "a, b"
Logic = Annotated[Optional[int], BeforeValidator(_logic)]
Object = Annotated[Optional[dict[str, Any]], BeforeValidator(_object)]
AnyList = Annotated[Optional[list[Any]], BeforeValidator(_list)]
Id = Annotated[Optional[Union[int, str]], BeforeValidator(_id)]


class Shape(BaseModel):
    model_config = ConfigDict(extra="allow")


def _written(info: ValidationInfo) -> bool:
    return bool((info.context or {}).get("written"))


# ---------------------------------------------------------------- SillyTavern World Info


class CharacterFilter(Shape):
    isExclude: Flag = None
    names: Keys = []
    tags: Keys = []


class STEntry(Shape):
    uid: Id = None
    key: CommaKeys = []
    keysecondary: CommaKeys = []
    comment: Text = None
    content: Text = None
    constant: Flag = None
    vectorized: Flag = None
    selective: Flag = None
    selectiveLogic: Logic = None
    addMemo: Flag = None
    order: Number = None
    position: Integer = None
    disable: Flag = None
    ignoreBudget: Flag = None
    excludeRecursion: Flag = None
    preventRecursion: Flag = None
    matchPersonaDescription: Flag = None
    matchCharacterDescription: Flag = None
    matchCharacterPersonality: Flag = None
    matchCharacterDepthPrompt: Flag = None
    matchScenario: Flag = None
    matchCreatorNotes: Flag = None
    delayUntilRecursion: Annotated[Optional[Union[bool, float]], BeforeValidator(_flag_or_number)] = None
    probability: Number = None
    useProbability: Flag = None
    depth: Integer = None
    outletName: Text = None
    group: Text = None
    groupOverride: Flag = None
    groupWeight: Number = None
    scanDepth: Integer = None  # null: the global setting
    caseSensitive: Flag = None  # null: the global setting
    matchWholeWords: Flag = None
    useGroupScoring: Flag = None
    automationId: Text = None
    role: Integer = None
    sticky: Integer = None
    cooldown: Integer = None
    delay: Integer = None
    triggers: Keys = []
    displayIndex: Integer = None
    characterFilter: Optional[CharacterFilter] = None
    extensions: Object = None


class STBook(Shape):
    entries: dict[str, STEntry]
    name: Text = None
    extensions: Object = None

    @model_validator(mode="after")
    def _uids_match_slots(self, info: ValidationInfo) -> STBook:
        if _written(info):
            for slot, e in self.entries.items():
                if not isinstance(e.uid, int) or str(e.uid) != slot or e.content is None:
                    raise PydanticCustomError("b2p", "entry {slot} needs uid {slot} and a content text", {"slot": slot})
        return self


# ---------------------------------------------------------------- character-card lorebooks (V2 / V3)


class CardExtensions(Shape):  # what SillyTavern keeps here when it writes a card's book
    selectiveLogic: Logic = None
    probability: Number = None
    useProbability: Flag = None


class CardEntry(Shape):
    keys: Keys = []
    content: Text = None
    extensions: Optional[CardExtensions] = None
    enabled: Flag = None
    insertion_order: Number = None
    case_sensitive: Flag = None
    use_regex: Flag = None  # V3: every key is a regex
    constant: Flag = None
    name: Text = None
    priority: Number = None
    id: Id = None
    comment: Text = None
    selective: Flag = None
    secondary_keys: Keys = []
    position: Text = None  # 'before_char' | 'after_char'


class CardBook(Shape):
    name: Text = None
    description: Text = None
    scan_depth: Integer = None
    token_budget: Integer = None
    recursive_scanning: Flag = None
    extensions: Object = None
    entries: list[CardEntry]


# ---------------------------------------------------------------- NovelAI


class NaiContextConfig(Shape):
    prefix: Text = None
    suffix: Text = None
    tokenBudget: Number = None
    reservedTokens: Number = None
    budgetPriority: Number = None
    trimDirection: Text = None  # trimTop | trimBottom | doNotTrim
    insertionType: Text = None  # newline | sentence | token
    maximumTrimType: Text = None
    insertionPosition: Integer = None
    allowInsertionInside: Flag = None


class NaiBiasGroup(Shape):
    phrases: AnyList = None
    ensureSequenceFinish: Flag = None
    generateOnce: Flag = None
    bias: Number = None
    enabled: Flag = None
    whenInactive: Flag = None


class NaiEntry(Shape):
    text: Text = None
    contextConfig: Optional[NaiContextConfig] = None
    lastUpdatedAt: Number = None
    displayName: Text = None
    id: Id = None
    keys: Keys = []
    searchRange: Integer = None
    enabled: Flag = None
    forceActivation: Flag = None
    keyRelative: Flag = None
    nonStoryActivatable: Flag = None
    category: Text = None  # a category's id; "" (v6) or absent: none
    loreBiasGroups: Optional[list[NaiBiasGroup]] = None
    advancedConditions: AnyList = None  # v6


class NaiCategory(Shape):
    name: Text = None
    id: Id = None
    enabled: Flag = None
    createSubcontext: Flag = None
    subcontextSettings: Optional[NaiEntry] = None
    useCategoryDefaults: Flag = None
    categoryDefaults: Optional[NaiEntry] = None
    categoryBiasGroups: Optional[list[NaiBiasGroup]] = None


class NaiBook(Shape):
    lorebookVersion: Integer = None
    entries: list[NaiEntry]
    settings: Object = None
    categories: Optional[list[NaiCategory]] = None

    @model_validator(mode="after")
    def _categories_exist(self, info: ValidationInfo) -> NaiBook:
        if _written(info):
            ids = {c.id for c in self.categories or []}
            for i, e in enumerate(self.entries):
                if e.text is None or not isinstance(e.id, str) or (e.category and e.category not in ids):
                    raise PydanticCustomError("b2p", "entry {n} needs a text, an id and a category that exists", {"n": i + 1})
        return self


# ---------------------------------------------------------------- one line per failure


def check(shape: type[Shape], data: Any, where: Any, written: bool = False) -> Any:
    """``data`` validated as ``shape``, or one BibleError line: ``where(loc)`` names the place of the
    first problem (e.g. "book.json: entry '3'") from pydantic's location of it."""
    try:
        return shape.model_validate(data, context={"written": written})
    except ValidationError as err:
        first = err.errors()[0]
        loc = tuple(first["loc"])
        place, field = where(loc)
        if first["type"] in ("model_type", "dict_type", "model_attributes_type"):
            raise BibleError(f"{place}{f': {field!r}' if field else ''} is not an object") from None
        if first["type"] == "missing":
            raise BibleError(f"{place}: '{field}' is missing") from None
        message = first["msg"] if first["type"] == "b2p" else f"is not valid: {first['msg']}"
        raise BibleError(f"{place}: {f'{field!r} ' if field else ''}{message}") from None


def field_path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc)
