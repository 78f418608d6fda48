"""The ``openai`` backend: the OpenAI chat protocol, against OpenAI or any compatible server.

*How it talks* (the SDK, streaming, retries) is separate from *where it is* (base URL + key), so
one class serves OpenAI, OpenRouter, Ollama, vLLM and llama.cpp's server.

Retries are our own loop rather than the SDK's, because a stream can also fail after it started:
a cut before any text was shown is retried; a cut after text reached ``on_text`` cannot be
un-shown, so it is one clear error. A retry waits at most ``max_retry_wait`` whatever the server's
``Retry-After`` asks, and says so (``LLM.on_note``).

No request runs for ever: ``timeout`` bounds each silence, ``request_deadline`` the whole request
(a watchdog shuts the socket when it passes), and a server that keeps sending past the token limit
the request set is cut off there.

The key: it must be one line of printable ASCII (checked before anything is sent); one from the
environment is never sent to a ``base_url`` that a ``b2p.toml`` found in the current folder chose
(the user must name the server: flag, env, or ``--config``); and every text that comes back — errors,
streamed prose, the completion — has every long run of the key masked (``b2p.redact``), so a server
that echoes it cannot get it shown or saved. Reading what a server sends back (and the key's format)
is ``b2p/llm_wire.py``'s part.
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

from b2p.errors import ConfigError, ModelError
from b2p.llm import LLM, BackendOptions, Completion, GenOptions, Message, OnText, estimate_tokens, known_context_window
from b2p.llm_wire import Watchdog, check_key, not_a_stream, retry_after
from b2p.redact import Redactor

if TYPE_CHECKING:
    from b2p.settings import Settings

DEFAULT_MODEL = "gpt-4o-mini"
OPENAI_URL = "https://api.openai.com/v1"
# Local servers ignore the key, but the SDK and some proxies insist on an Authorization header.
PLACEHOLDER_KEY = "b2p-no-key"
RETRY_STATUSES = {408, 409, 429}  # plus every 5xx
_KEYLIKE = re.compile(r"\b(sk-[A-Za-z0-9_\-]{6,}|Bearer\s+\S+)")
MAX_CHARS_PER_TOKEN = 32  # no tokenizer's token is longer: past max_tokens * this, a server ignores the limit


class _Failure(Exception):
    """One failed attempt: ``what`` is the user-facing description, already redacted."""

    def __init__(self, what: str, *, retry: bool, streamed: int = 0, retry_after: float | None = None) -> None:
        super().__init__(what)
        self.what, self.retry, self.streamed, self.retry_after = what, retry, streamed, retry_after


class _StreamOptionsRejected(Exception):
    """The server does not know ``stream_options``; resend without it."""


class _OptionRejected(Exception):
    """The server refused a sampling option (a penalty it does not know); resend without it, and never send it again."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


# Sampling options beyond the OpenAI protocol, sent as each family of servers names them: llama.cpp and
# Ollama read repeat_penalty, vLLM and OpenRouter repetition_penalty. A server that refuses one is asked
# again without it (and it is not sent to that server again); most ignore what they do not know.
EXTRA_OPTIONS = {"repeat_penalty": ("repeat_penalty", "repetition_penalty")}


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
    timeout: float = Field(120.0, gt=0, allow_inf_nan=False, description="Seconds a model server may stay silent (before it answers, or mid-answer).")
    request_deadline: float = Field(600.0, gt=0, allow_inf_nan=False, description="Seconds one request may take in all, however slowly the server trickles its answer.")
    retries: int = Field(3, ge=0, le=10, description="Retries with backoff on 429/5xx/connection errors.")
    max_retry_wait: float = Field(30.0, ge=0, allow_inf_nan=False, description="Longest wait before a retry, whatever the server's Retry-After asks for.")
    repeat_penalty: float | None = Field(None, ge=0.0, le=3.0, description="Repeat penalty (1 = none), sent as repeat_penalty and "
                                         "repetition_penalty to servers that take one (default: not sent).")
    frequency_penalty: float | None = Field(None, ge=-2.0, le=2.0, description="The protocol's frequency_penalty (default: not sent).")
    presence_penalty: float | None = Field(None, ge=-2.0, le=2.0, description="The protocol's presence_penalty (default: not sent).")


class OpenAILLM(LLM):
    """A chat model behind the OpenAI protocol. Construct with ``from_settings`` or explicit arguments."""

    backend = "openai"
    Options = OpenAIOptions

    def __init__(self, *, model: str | None = None, base_url: str | None = None, api_key: str | None = None,
                 timeout: float = 120.0, retries: int = 3, context_window: int | None = None,
                 seed: int | None = None, backoff_base: float = 0.5, backoff_max: float = 8.0,
                 request_deadline: float = 600.0, max_retry_wait: float = 30.0, key_from: str | None = None,
                 penalties: dict[str, float | None] | None = None) -> None:
        import openai

        self.name = model or DEFAULT_MODEL
        self.base_url = (base_url or OPENAI_URL).rstrip("/")
        self.is_openai = base_url is None
        self.where = "OpenAI" if self.is_openai else _display_url(self.base_url)
        self.key_from = key_from or ("OPENAI_API_KEY" if self.is_openai else "B2P_API_KEY")
        if not api_key:
            if self.is_openai:
                raise ModelError(NO_KEY)
            api_key = PLACEHOLDER_KEY
        check_key(api_key, self.key_from)
        self._secrets = [api_key] if api_key != PLACEHOLDER_KEY else []
        self.redact_text = Redactor(self._secrets)
        self.context_window = context_window or known_context_window(self.name)
        self.timeout, self.retries = timeout, retries
        self.request_deadline, self.max_retry_wait = request_deadline, max_retry_wait
        self.backoff_base, self.backoff_max = backoff_base, backoff_max
        self._rng = random.Random(seed) if seed is not None else None
        self._usage_in_stream = True  # cleared once a server rejects stream_options
        self.penalties = {k: v for k, v in (penalties or {}).items() if v is not None}
        self.rejected: set[str] = set()  # request fields this server refused: never sent again
        self._openai = openai
        self._client = openai.OpenAI(api_key=api_key, base_url=self.base_url, timeout=timeout, max_retries=0)

    @staticmethod
    def _options(settings: Settings) -> OpenAIOptions:
        opts = settings.backend_options("openai")
        assert isinstance(opts, OpenAIOptions)
        return opts

    @classmethod
    def _key(cls, settings: Settings) -> tuple[str | None, str]:
        """The key and where it came from (named in messages, never the key itself). Refuses a
        malformed key, and a key from the environment bound for a server that a ``b2p.toml`` found
        in the current folder chose."""
        from b2p.settings import Origin

        opts = cls._options(settings)
        key, origin = (opts.api_key.get_secret_value() or None) if opts.api_key else None, settings.origin("api_key")
        if key is None and opts.base_url is None:
            # Read here, when the backend is chosen, never at import. OPENAI_API_KEY is only ever sent
            # to OpenAI itself: a --base-url server must not receive the user's OpenAI key.
            key, origin = os.environ.get("OPENAI_API_KEY") or None, Origin("env", "OPENAI_API_KEY")
        where = {"env": origin.where, "file": f"api_key in {origin.where}"}.get(origin.layer, "api_key")
        if key is None:
            return None, where
        check_key(key, where)
        url = settings.origin("base_url")
        if opts.base_url is not None and not url.chosen and origin != url:
            shown = _display_url(opts.base_url)
            raise ConfigError(f"{url.where} (found in the current folder) sets base_url = {shown}; your API key from {where} "
                              f"is only sent to a server you name: pass --base-url {shown} or --config {url.where} to allow it")
        return key, where

    @classmethod
    def check(cls, settings: Settings) -> None:
        """What construction would refuse (no key for OpenAI itself, a malformed key, a key bound for a
        server the user did not name), checked without importing openai or sending anything."""
        if not cls._key(settings)[0] and cls._options(settings).base_url is None:
            raise ModelError(NO_KEY)

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> OpenAILLM:
        opts = cls._options(settings)
        key, where = cls._key(settings)
        args: dict[str, Any] = {
            "model": settings.model, "base_url": opts.base_url, "api_key": key, "key_from": where, "timeout": opts.timeout,
            "retries": opts.retries, "context_window": opts.context_window, "seed": settings.seed,
            "penalties": {"repeat_penalty": opts.repeat_penalty, "frequency_penalty": opts.frequency_penalty,
                          "presence_penalty": opts.presence_penalty},
            "request_deadline": opts.request_deadline, "max_retry_wait": opts.max_retry_wait,
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
                delay = self._backoff(attempt, failure.retry_after)
                asked = failure.retry_after
                capped = f" (it asked for {asked:g} s; max_retry_wait caps the wait)" if asked is not None and asked > delay else ""
                self.note(f"{failure.what}; waiting {delay:.1f} s before attempt {attempt + 1} of {attempts}{capped}")
                time.sleep(delay)
                continue
            return completion.model_copy(update={"seconds": time.perf_counter() - start})
        raise AssertionError("unreachable")

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        delay = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1)) * random.uniform(0.8, 1.2)
        if retry_after is not None:  # the server knows best, within reason
            delay = max(delay, retry_after)
        return min(delay, self.max_retry_wait)

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
        extra: dict[str, Any] = {}
        for option, value in self.penalties.items():
            for name in EXTRA_OPTIONS.get(option, ()):
                if name not in self.rejected:
                    extra[name] = value
            if option not in EXTRA_OPTIONS and option not in self.rejected:
                body[option] = value
        if extra:
            body["extra_body"] = extra
        return body

    def _attempt(self, messages: list[Message], options: GenOptions, on_text: OnText | None) -> Completion:
        pieces: list[str] = []
        chars = 0
        shown = self.redact_text.stream()
        streamed = 0
        finish: str | None = None
        usage: Any = None
        chunks = self._chunks(self._request(messages, options))
        try:
            for chunk in chunks:
                if getattr(chunk, "usage", None):
                    usage = chunk.usage
                over = False
                for choice in chunk.choices or []:
                    if choice.index not in (0, None):
                        continue
                    piece = choice.delta.content if choice.delta else None
                    if piece:
                        if len(pieces) >= options.max_tokens or chars >= options.max_tokens * MAX_CHARS_PER_TOKEN:
                            over = True  # more than the token limit this request set: the server ignores it
                            break
                        pieces.append(piece)
                        chars += len(piece)
                        if on_text is not None:  # outside the SDK's error handling: a caller's error stays theirs
                            visible = shown.feed(piece)
                            if visible:
                                on_text(visible)
                                streamed += len(visible)
                    if choice.finish_reason:
                        finish = choice.finish_reason
                if over:
                    finish = "length"
                    break  # stop reading: closing the stream closes the connection
        except _Failure as failure:
            failure.streamed = streamed
            raise
        except _StreamOptionsRejected:
            self._usage_in_stream = False  # an older server: ask again without usage, at no attempt's cost
            return self._attempt(messages, options, on_text)
        except _OptionRejected as refused:
            self.rejected.add(refused.name)  # a server without that option: ask again without it, at no attempt's cost
            return self._attempt(messages, options, on_text)
        finally:
            chunks.close()  # stops reading: the connection is closed if the server was still sending
        if finish is None:
            raise _Failure(f"{self.where} cut the response stream before it finished (connection dropped)",
                           retry=True, streamed=streamed)
        if on_text is not None:
            rest = shown.flush()
            if rest:
                on_text(rest)
        text = self.redact_text("".join(pieces))
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
        deadline = time.monotonic() + self.request_deadline
        watchdog: Watchdog | None = None
        late = f"{self.where} was still answering when request_deadline ({self.request_deadline:g} s) ran out"
        try:
            with self._client.chat.completions.create(**body, timeout=min(self.timeout, self.request_deadline)) as stream:
                watchdog = Watchdog(stream.response, deadline)
                whole = self._not_a_stream(stream.response)
                if whole is not None:
                    yield whole
                    return
                for chunk in stream:
                    if watchdog.fired or time.monotonic() > deadline:
                        raise _Failure(late, retry=False)
                    started = True
                    yield chunk
        except openai.APIStatusError as err:
            if "stream_options" in body and err.status_code in (400, 422) and "stream_options" in self._detail(err.body):
                raise _StreamOptionsRejected from None
            sent = [k for k in (*body, *body.get("extra_body", {})) if k in self.penalties or k in EXTRA_OPTIONS["repeat_penalty"]]
            named = [k for k in sent if err.status_code in (400, 422) and re.search(rf"\b{k}\b", self._detail(err.body))]
            if named:
                raise _OptionRejected(max(named, key=len)) from None
            raise self._status_failure(err) from None
        except openai.APITimeoutError:
            if watchdog is not None and watchdog.fired:
                raise _Failure(late, retry=False) from None
            what = (f"{self.where} stopped sending for more than {self.timeout:g} s (timed out mid-response)"
                    if started else f"{self.where} did not answer within {min(self.timeout, self.request_deadline):g} s (timed out)")
            raise _Failure(f"{what}; raise --timeout or check the server", retry=True) from None
        except openai.APIConnectionError as err:
            if watchdog is not None and watchdog.fired:
                raise _Failure(late, retry=False) from None
            raise _Failure(self._connection_problem(err, started), retry=True) from None
        except (openai.APIError, ValueError) as err:  # an error event inside the stream, or unparsable data
            detail = self._detail(getattr(err, "body", None)) or "malformed response"
            raise _Failure(f"{self.where} failed mid-response: {detail}", retry=True) from None
        finally:
            if watchdog is not None:
                watchdog.cancel()

    def _not_a_stream(self, response: Any) -> Any:
        """A 200 reply that is not an event stream: a whole (non-streamed) completion becomes one chunk;
        anything else is a ``_Failure`` saying what came back. None for an event stream."""
        reply = not_a_stream(response)
        if reply is None:
            return None
        if reply.chunk is not None:  # a server that ignores "stream": true; its whole answer, as if streamed at once
            from openai.types.chat import ChatCompletionChunk

            return ChatCompletionChunk.model_validate({**reply.chunk, "model": self.name})
        if reply.kind == "html":
            named = f" ('{self._detail(reply.detail)}')" if reply.detail else ""
            raise _Failure(f"{self.where} answered with an HTML page{named}, not the OpenAI API; check --base-url "
                           "(an OpenAI-compatible API's URL usually ends in /v1)", retry=False)
        if reply.kind == "json":
            detail = self._detail(reply.body) if reply.body is not None else "not valid JSON"
            raise _Failure(f"{self.where} answered with JSON that is not a chat completion: {detail}", retry=False)
        raise _Failure(f"{self.where} answered with {reply.detail}, not an event stream: {self._detail(reply.body) or 'an empty body'}",
                       retry=False)

    # ── turning failures into one redacted line ──────────────────────────────────────────────

    def _redact(self, text: str) -> str:
        return _KEYLIKE.sub("***", self.redact_text(text))

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
        retry = status in RETRY_STATUSES or status >= 500
        return _Failure(what, retry=retry, retry_after=retry_after(err.response.headers))

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

