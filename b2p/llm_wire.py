"""What goes over the wire to an OpenAI-compatible server, and what comes back, read defensively.

The ``openai`` backend (``b2p/llm_openai.py``) talks; this module checks and reads: a key no header
could carry, the watchdog that ends a request at its deadline, how long a server asks to be left
alone (``Retry-After``), and a 200 reply that is not the event stream asked for (an HTML page at the
URL, a whole completion from a server that ignores ``stream``, anything else). Nothing here builds a
user-facing message from a server's words: the backend does, and redacts them.
"""

from __future__ import annotations

import json
import math
import re
import socket
import threading
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

from b2p.errors import ConfigError

BODY_PEEK = 65_536  # bytes of a reply that is not an event stream read to say what it is
_NAMES = {"\n": "a line break", "\r": "a carriage return", "\t": "a tab", " ": "a space"}


def check_key(key: str, where: str) -> None:
    """Refuse a key no server could accept (an HTTP header cannot carry it), naming where it came from
    and what is wrong with it, never the key itself."""
    for i, ch in enumerate(key, 1):
        if not "\x21" <= ch <= "\x7e":
            what = _NAMES.get(ch) or (f"a non-ASCII character (U+{ord(ch):04X})" if ord(ch) > 127 else f"a control character (U+{ord(ch):04X})")
            raise ConfigError(f"the API key in {where} is malformed: it has {what} at character {i} of {len(key)}; "
                              "a key is one line of printable ASCII (a stray newline or a pasted quote?)")


class Watchdog:
    """Shuts the response's socket when the request's deadline passes, so a read blocked on a server
    that trickles (or stalls just before the deadline) returns at once. ``fired`` says it did."""

    def __init__(self, response: Any, at: float) -> None:
        self.fired = False
        self._response = response
        self._timer = threading.Timer(max(0.0, at - time.monotonic()), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        self.fired = True
        stream = (getattr(self._response, "extensions", None) or {}).get("network_stream")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cancel(self) -> None:
        self._timer.cancel()


def retry_after(headers: Any) -> float | None:
    """Seconds a server asks to wait: ``retry-after-ms``, ``Retry-After`` in seconds or as an HTTP date."""
    try:
        return max(0.0, float(headers.get("retry-after-ms", "")) / 1000)
    except ValueError:
        pass
    value = headers.get("retry-after", "").strip()
    try:
        seconds = float(value)
        return max(0.0, seconds) if math.isfinite(seconds) else None
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


@dataclass
class Reply:
    """A 200 reply that is not an event stream. ``kind``: ``completion`` (``chunk`` holds it as one
    streamed chunk), ``html`` (``detail``: the page's title), ``json`` (``body``: the parsed JSON, or
    None if it did not parse) or ``other`` (``detail``: the content type, ``body``: the start of the text)."""

    kind: str
    detail: str = ""
    body: Any = None
    chunk: dict[str, Any] | None = None


def not_a_stream(response: Any) -> Reply | None:
    """What a 200 reply is when its content type is not ``text/event-stream`` (None when it is, or
    says nothing). Reads at most ``BODY_PEEK`` bytes."""
    kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind in ("", "text/event-stream"):
        return None
    raw = b""
    for part in response.iter_bytes():
        raw += part
        if len(raw) >= BODY_PEEK:
            break
    text = raw[:BODY_PEEK].decode("utf-8", "replace")
    if kind == "text/html" or text.lstrip()[:15].lower().startswith(("<!doctype html", "<html")):
        title = re.search(r"<title[^>]*>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
        return Reply("html", detail=title.group(1).strip() if title else "")
    if not kind.endswith("json"):
        return Reply("other", detail=kind, body=text[:200])
    try:
        data = json.loads(text)
    except ValueError:
        return Reply("json", body=None)
    chunk = _as_chunk(data)
    return Reply("completion", chunk=chunk) if chunk is not None else Reply("json", body=data)


def _as_chunk(data: Any) -> dict[str, Any] | None:
    """A whole chat completion (from a server that ignores ``stream``) as one chunk of a stream."""
    choices = data.get("choices") if isinstance(data, dict) else None
    first = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
    message = first.get("message")
    if not isinstance(message, dict) or not isinstance(message.get("content"), str):
        return None
    usage = data.get("usage")
    counts = {k: usage.get(k) for k in ("prompt_tokens", "completion_tokens", "total_tokens")} if isinstance(usage, dict) else {}
    return {"id": "whole", "object": "chat.completion.chunk", "created": 0, "model": "whole",
            "choices": [{"index": 0, "delta": {"content": message["content"]},
                         "finish_reason": "length" if first.get("finish_reason") == "length" else "stop"}],
            "usage": counts if all(isinstance(v, int) for v in counts.values()) and counts else None}
