"""The ``openai`` backend: the OpenAI chat protocol, against OpenAI or any compatible server.

*How it talks* (the SDK, streaming, retries) is separate from *where it is* (base URL + key), so
one class serves OpenAI, OpenRouter, Ollama, vLLM and llama.cpp's server.

Retries are our own loop rather than the SDK's, because a stream can also fail after it started:
a cut before any text was shown is retried; a cut after text reached ``on_text`` cannot be
un-shown, so it is one clear error. Every message built from a server's words is redacted.
"""

from __future__ import annotations

import math
import os
import random
import re
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr

from b2p.errors import ModelError
from b2p.llm import LLM, BackendOptions, Completion, GenOptions, Message, OnText, estimate_tokens, known_context_window

if TYPE_CHECKING:
    from b2p.settings import Settings

DEFAULT_MODEL = "gpt-4o-mini"
OPENAI_URL = "https://api.openai.com/v1"
# Local servers ignore the key, but the SDK and some proxies insist on an Authorization header.
PLACEHOLDER_KEY = "b2p-no-key"
RETRY_STATUSES = {408, 409, 429}  # plus every 5xx
_KEYLIKE = re.compile(r"\b(sk-[A-Za-z0-9_\-]{6,}|Bearer\s+\S+)")


class _Failure(Exception):
    """One failed attempt: ``what`` is the user-facing description, already redacted."""

    def __init__(self, what: str, *, retry: bool, streamed: int = 0, retry_after: float | None = None) -> None:
        super().__init__(what)
        self.what, self.retry, self.streamed, self.retry_after = what, retry, streamed, retry_after


class _StreamOptionsRejected(Exception):
    """The server does not know ``stream_options``; resend without it."""


NO_KEY = ("no OpenAI API key: run `export OPENAI_API_KEY=sk-...`, or use another "
          "OpenAI-compatible server with --base-url URL (key, if any, in B2P_API_KEY)")


def _display_url(url: str) -> str:
    """The URL without any user:password part."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


class OpenAIOptions(BackendOptions):
    """The ``openai`` backend's settings (flat keys in b2p.toml, env ``B2P_<NAME>``). The model's name
    is the shared ``model`` setting."""

    base_url: str | None = Field(None, description="OpenAI-compatible server URL (OpenRouter, Ollama, vLLM, llama.cpp).")
    api_key: SecretStr | None = Field(None, description="API key for --base-url servers (B2P_API_KEY).")
    context_window: int | None = Field(None, ge=512, description="Context window of the API model (default: known table or 8192).")
    timeout: float = Field(120.0, gt=0, description="Seconds to wait for a model server's response.")
    retries: int = Field(3, ge=0, le=10, description="Retries with backoff on 429/5xx/connection errors.")


class OpenAILLM(LLM):
    """A chat model behind the OpenAI protocol. Construct with ``from_settings`` or explicit arguments."""

    backend = "openai"
    Options = OpenAIOptions

    def __init__(self, *, model: str | None = None, base_url: str | None = None, api_key: str | None = None,
                 timeout: float = 120.0, retries: int = 3, context_window: int | None = None,
                 seed: int | None = None, backoff_base: float = 0.5, backoff_max: float = 8.0) -> None:
        import openai

        self.name = model or DEFAULT_MODEL
        self.base_url = (base_url or OPENAI_URL).rstrip("/")
        self.is_openai = base_url is None
        self.where = "OpenAI" if self.is_openai else _display_url(self.base_url)
        if not api_key:
            if self.is_openai:
                raise ModelError(NO_KEY)
            api_key = PLACEHOLDER_KEY
        self._secrets = [api_key] if api_key != PLACEHOLDER_KEY else []
        self.context_window = context_window or known_context_window(self.name)
        self.timeout, self.retries = timeout, retries
        self.backoff_base, self.backoff_max = backoff_base, backoff_max
        self._rng = random.Random(seed) if seed is not None else None
        self._usage_in_stream = True  # cleared once a server rejects stream_options
        self._openai = openai
        self._client = openai.OpenAI(api_key=api_key, base_url=self.base_url, timeout=timeout, max_retries=0)

    @staticmethod
    def _options(settings: Settings) -> OpenAIOptions:
        opts = settings.backend_options("openai")
        assert isinstance(opts, OpenAIOptions)
        return opts

    @classmethod
    def _key(cls, settings: Settings) -> str | None:
        opts = cls._options(settings)
        key = opts.api_key.get_secret_value() if opts.api_key else None
        if key is None and opts.base_url is None:
            # Read here, when the backend is chosen, never at import. OPENAI_API_KEY is only ever sent
            # to OpenAI itself: a --base-url server must not receive the user's OpenAI key.
            key = os.environ.get("OPENAI_API_KEY") or None
        return key

    @classmethod
    def check(cls, settings: Settings) -> None:
        """What construction would refuse (no key for OpenAI itself), checked without importing openai."""
        if not cls._key(settings) and cls._options(settings).base_url is None:
            raise ModelError(NO_KEY)

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> OpenAILLM:
        opts = cls._options(settings)
        args: dict[str, Any] = {
            "model": settings.model, "base_url": opts.base_url, "api_key": cls._key(settings), "timeout": opts.timeout,
            "retries": opts.retries, "context_window": opts.context_window, "seed": settings.seed,
        }
        return cls(**{**args, **overrides})

    # ── tokens ───────────────────────────────────────────────────────────────────────────────

    def count_tokens(self, messages: list[Message]) -> int:
        # No tokenizer: tiktoken would download its BPE files. Err high so a request never overflows.
        return sum(estimate_tokens(m.get("content") or "") + 4 for m in messages) + 3

    # ── one request, retried ─────────────────────────────────────────────────────────────────

    def complete(self, messages: list[Message], options: GenOptions, on_text: OnText | None = None) -> Completion:
        attempts = self.retries + 1
        start = time.perf_counter()
        for attempt in range(1, attempts + 1):
            try:
                completion = self._attempt(messages, options, on_text)
            except _Failure as failure:
                if failure.streamed:
                    raise ModelError(f"{failure.what} after {failure.streamed} characters had been streamed "
                                     f"(attempt {attempt} of {attempts}; not retried, the text was already shown)"
                                     ) from None
                if not failure.retry or attempt == attempts:
                    tries = f"after {attempt} attempt{'s' if attempt > 1 else ''}" if failure.retry else "not retried"
                    raise ModelError(f"{failure.what} ({tries})") from None
                time.sleep(self._backoff(attempt, failure.retry_after))
                continue
            return completion.model_copy(update={"seconds": time.perf_counter() - start})
        raise AssertionError("unreachable")

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        delay = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1)) * random.uniform(0.8, 1.2)
        if retry_after is not None:  # the server knows best, within reason
            delay = max(delay, min(retry_after, 60.0))
        return delay

    def _request(self, messages: list[Message], options: GenOptions) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.name, "messages": messages, "stream": True,
                                "temperature": options.temperature}
        # OpenAI's newer models reject max_tokens; many compatible servers only know max_tokens.
        body["max_completion_tokens" if self.is_openai else "max_tokens"] = options.max_tokens
        if options.stop:
            body["stop"] = list(options.stop)[:4]  # the protocol allows at most four
        seed = options.seed if options.seed is not None else (self._rng.randrange(2**31) if self._rng else None)
        if seed is not None:
            body["seed"] = seed
        if self._usage_in_stream:
            body["stream_options"] = {"include_usage": True}
        return body

    def _attempt(self, messages: list[Message], options: GenOptions, on_text: OnText | None) -> Completion:
        pieces: list[str] = []
        streamed = 0
        finish: str | None = None
        usage: Any = None
        try:
            for chunk in self._chunks(self._request(messages, options)):
                if getattr(chunk, "usage", None):
                    usage = chunk.usage
                for choice in chunk.choices or []:
                    if choice.index not in (0, None):
                        continue
                    piece = choice.delta.content if choice.delta else None
                    if piece:
                        pieces.append(piece)
                        if on_text is not None:  # outside the SDK's error handling: a caller's error stays theirs
                            on_text(piece)
                            streamed += len(piece)
                    if choice.finish_reason:
                        finish = choice.finish_reason
        except _Failure as failure:
            failure.streamed = streamed
            raise
        except _StreamOptionsRejected:
            self._usage_in_stream = False  # an older server: ask again without usage, at no attempt's cost
            return self._attempt(messages, options, on_text)
        if finish is None:
            raise _Failure(f"{self.where} cut the response stream before it finished (connection dropped)",
                           retry=True, streamed=streamed)
        text = "".join(pieces)
        if usage is not None and getattr(usage, "completion_tokens", None) is not None:
            prompt_tokens, completion_tokens = usage.prompt_tokens or 0, usage.completion_tokens
        else:  # the server sent no usage: our prompt estimate, and about one token per streamed piece
            prompt_tokens = self.count_tokens(messages)
            completion_tokens = (options.max_tokens if finish == "length"
                                 else max(len(pieces), math.ceil(len(text) / 4)))
        return Completion(text=text, finish_reason="length" if finish == "length" else "stop",
                          prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)

    def _chunks(self, body: dict[str, Any]) -> Iterator[Any]:
        """The response's chunks; every SDK or transport failure becomes a redacted ``_Failure``."""
        openai = self._openai
        started = False
        try:
            with self._client.chat.completions.create(**body) as stream:
                for chunk in stream:
                    started = True
                    yield chunk
        except openai.APIStatusError as err:
            if "stream_options" in body and err.status_code in (400, 422) and "stream_options" in self._detail(err.body):
                raise _StreamOptionsRejected from None
            raise self._status_failure(err) from None
        except openai.APITimeoutError:
            what = (f"{self.where} stopped sending for more than {self.timeout:g} s (timed out mid-response)"
                    if started else f"{self.where} did not answer within {self.timeout:g} s (timed out)")
            raise _Failure(f"{what}; raise --timeout or check the server", retry=True) from None
        except openai.APIConnectionError as err:
            raise _Failure(self._connection_problem(err, started), retry=True) from None
        except (openai.APIError, ValueError) as err:  # an error event inside the stream, or unparsable data
            detail = self._detail(getattr(err, "body", None)) or "malformed response"
            raise _Failure(f"{self.where} failed mid-response: {detail}", retry=True) from None

    # ── turning failures into one redacted line ──────────────────────────────────────────────

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return _KEYLIKE.sub("***", text)

    def _detail(self, body: object) -> str:
        """The server's own error message, on one short line, without secrets."""
        message: object = body
        if isinstance(body, dict):
            inner = body.get("error", body)
            message = inner.get("message") or inner.get("detail") or inner if isinstance(inner, dict) else inner
        if message is None:
            return ""
        line = " ".join(str(message).split())
        line = self._redact(line)
        return line if len(line) <= 200 else line[:197] + "..."

    def _status_failure(self, err: Any) -> _Failure:
        status: int = err.status_code
        reason = getattr(err.response, "reason_phrase", "") or ""
        detail = self._detail(err.body)
        what = f"{self.where} answered HTTP {status} {reason}".rstrip() + (f": {detail}" if detail else "")
        if status in (401, 403):
            where_key = "OPENAI_API_KEY" if self.is_openai else "B2P_API_KEY"
            return _Failure(f"{what}; check the API key in {where_key}", retry=False)
        if status == 404:
            return _Failure(f"{what}; check --model (is '{self.name}' served at {self.where}?)", retry=False)
        retry_after: float | None = None
        try:
            retry_after = float(err.response.headers.get("retry-after", ""))
        except ValueError:
            pass
        retry = status in RETRY_STATUSES or status >= 500
        return _Failure(what, retry=retry, retry_after=retry_after)

    def _connection_problem(self, err: BaseException, started: bool) -> str:
        cause: BaseException | None = err
        names: list[str] = []
        while cause is not None and len(names) < 8:
            names.append(type(cause).__name__)
            cause = cause.__cause__ or cause.__context__
        if "ConnectionRefusedError" in names:
            return f"could not connect to {self.where} (connection refused); is the server running?"
        if "ConnectError" in names or "ConnectTimeout" in names:
            return f"could not connect to {self.where} (host unreachable or unknown); check --base-url"
        if started or "RemoteProtocolError" in names or "ReadError" in names:
            return f"{self.where} cut the response stream before it finished (connection dropped)"
        return f"connection to {self.where} failed"

    def close(self) -> None:
        self._client.close()
