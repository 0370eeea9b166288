"""A local stand-in for the third-party APIs the sample app calls, since demo machines have no internet.

It is a stdlib ``ThreadingHTTPServer`` bound to 127.0.0.1 that serves a small route table:

- ``GET /v1/forecast?city=X`` — the weather API. Answers after 5-30 ms and, with probability
  ``--fail-rate``, fails with a 429 (with ``Retry-After: 1``) or a 500, half each.
- ``POST /v1/chat/completions`` — OpenAI chat completions (point the SDK at it with
  ``OpenAI(base_url=URL + "/v1", api_key="test")``). Needs an ``Authorization: Bearer`` header (any
  key). Non-streaming, or ``"stream": true`` as server-sent ``data:`` chunks ending in ``data: [DONE]``;
  with ``"stream_options": {"include_usage": true}`` a last chunk with empty ``choices`` carries the
  usage, without it no chunk has usage (as the real API).
- ``POST /v1/messages`` — Anthropic messages (``Anthropic(base_url=URL, api_key="test")``). Needs an
  ``x-api-key`` or ``Authorization: Bearer`` header (any key) and ``max_tokens``. Non-streaming, or
  ``"stream": true`` as the events ``message_start`` (input and cache tokens), ``content_block_start``,
  ``ping``, ``content_block_delta``..., ``content_block_stop``, ``message_delta`` (output tokens),
  ``message_stop``.

Both LLM APIs echo the requested model, whatever its name, and derive the reply and the usage
deterministically from the request (rules in ``fake_llm.py``): about one token per four characters,
cache writes and reads for Anthropic ``cache_control`` prefixes and for OpenAI's automatic prefix
caching (prompts of 1024+ tokens). Replies come after 20-60 ms, streamed pieces every 1-3 ms. With
probability ``--llm-fail-rate`` (default 0) an LLM call fails with a 429 or a 500 in the API's own error
format, with ``retry-after-ms: 100`` so the SDKs' automatic retries succeed quickly.

Other modules can add endpoints with the ``route`` decorator; handlers get a ``Request`` and the
``StandinServer`` (for its seeded RNG and failure helpers) and return a ``Reply`` (JSON, or a stream of
server-sent events); such a module must be imported before the server starts so its routes are in the
table. Run it with ``python -m sample_app.standin --port 5051 --fail-rate 0.2 --seed 1``, or from tests
with ``serve_in_thread()``.
"""

from __future__ import annotations

import argparse
import json
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from sample_app import fake_llm

HOST = "127.0.0.1"


@dataclass
class Request:
    """What a route handler sees of an incoming request."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON, or None if it is empty or not JSON."""
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return None


@dataclass
class Reply:
    """A response: status, JSON body (anything ``json.dumps`` accepts) and extra headers.

    With ``events`` set, the body is ignored and the reply is a ``text/event-stream`` sent with chunked
    transfer encoding, one chunk per item, flushed as it is produced.
    """

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    events: Iterable[bytes] | None = None


Handler = Callable[[Request, "StandinServer"], Reply]
RouteKey = tuple[str, str]  # (method, path)
ROUTES: dict[RouteKey, Handler] = {}


def route(method: str, path: str) -> Callable[[Handler], Handler]:
    """Register a handler for an exact method and path in the global route table."""

    def register(handler: Handler) -> Handler:
        ROUTES[(method.upper(), path)] = handler
        return handler

    return register


class StandinServer(ThreadingHTTPServer):
    """The HTTP server, carrying the failure rate, a seeded RNG and the route table."""

    daemon_threads = True

    def __init__(
        self,
        port: int,
        fail_rate: float,
        seed: int | None,
        routes: dict[RouteKey, Handler] | None = None,
        llm_fail_rate: float = 0.0,
    ) -> None:
        super().__init__((HOST, port), _StandinHandler)
        self.fail_rate = fail_rate
        self.llm_fail_rate = llm_fail_rate
        self.prompt_cache = fake_llm.PromptCache()
        self.routes = ROUTES if routes is None else routes
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` for the port actually bound."""
        return f"http://{HOST}:{self.server_address[1]}"

    def uniform(self, low: float, high: float) -> float:
        """A number from the seeded RNG (thread-safe)."""
        with self._rng_lock:
            return self._rng.uniform(low, high)

    def choice(self, options: Sequence[Any]) -> Any:
        """An element of ``options`` picked with the seeded RNG (thread-safe)."""
        with self._rng_lock:
            return self._rng.choice(options)

    def injected_failure(self, rate: float | None = None) -> int | None:
        """With probability ``rate`` (default ``fail_rate``) return 429 or 500 (half each), otherwise None."""
        with self._rng_lock:
            if self._rng.random() >= (self.fail_rate if rate is None else rate):
                return None
            return 429 if self._rng.random() < 0.5 else 500

    def sleep(self, low_ms: float, high_ms: float) -> None:
        """Simulate upstream latency of ``low_ms``-``high_ms`` milliseconds."""
        time.sleep(self.uniform(low_ms, high_ms) / 1000)

    def close(self) -> None:
        """Stop serving and release the socket."""
        self.shutdown()
        self.server_close()


class _StandinHandler(BaseHTTPRequestHandler):
    """Dispatches every request through the server's route table and writes JSON back."""

    server: StandinServer
    protocol_version = "HTTP/1.1"

    def _dispatch(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        req = Request(
            method=self.command,
            path=parts.path,
            query=dict(parse_qsl(parts.query)),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=self.rfile.read(length) if length else b"",
        )
        handler = self.server.routes.get((req.method, req.path))
        if handler is None:
            message = f"no route for {req.method} {req.path}"
            reply = Reply(404, {"error": {"type": "not_found", "message": message}})
        else:
            reply = handler(req, self.server)
        self._send(reply)

    def _send(self, reply: Reply) -> None:
        if reply.events is not None:
            self._send_events(reply, reply.events)
            return
        payload = json.dumps(reply.body).encode()
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def _send_events(self, reply: Reply, events: Iterable[bytes]) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        try:
            for event in events:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):  # the client stopped reading mid-stream
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: no per-request line on stderr."""


# --- the weather API --------------------------------------------------------------------------------

_CONDITIONS = ("sunny", "cloudy", "rain", "showers", "fog", "snow", "windy")


@route("GET", "/v1/forecast")
def forecast(req: Request, server: StandinServer) -> Reply:
    """A made-up three-day forecast for ``?city=``; sometimes 429 or 500 instead."""
    server.sleep(5, 30)
    failure = server.injected_failure()
    if failure == 429:
        return Reply(429, {"error": "rate limit exceeded"}, {"Retry-After": "1"})
    if failure == 500:
        return Reply(500, {"error": "internal error"})
    city = req.query.get("city", "").strip()
    if not city:
        return Reply(400, {"error": "missing city"})
    days = [
        {
            "day": offset,
            "condition": server.choice(_CONDITIONS),
            "high_c": round(server.uniform(5, 30), 1),
            "low_c": round(server.uniform(-5, 15), 1),
        }
        for offset in range(3)
    ]
    return Reply(200, {"city": city, "units": "metric", "days": days})


# --- the LLM APIs (OpenAI chat completions, Anthropic messages) ---------------------------------------


def _paced(server: StandinServer, events: Iterator[bytes]) -> Iterator[bytes]:
    """Stream ``events`` the way a model produces them: a first-token delay, then a piece every 1-3 ms."""
    server.sleep(20, 60)
    for event in events:
        yield event
        server.sleep(1, 3)


@route("POST", "/v1/chat/completions")
def openai_chat_completions(req: Request, server: StandinServer) -> Reply:
    """OpenAI chat completions, plain or streamed (usage in a last chunk only with include_usage)."""
    request_id = {"x-request-id": "req_" + uuid.uuid4().hex[:24]}
    if not req.headers.get("authorization", "").startswith("Bearer "):
        return Reply(401, fake_llm.openai_error(401, "You didn't provide an API key."), request_id)
    failure = server.injected_failure(server.llm_fail_rate)
    if failure is not None:
        message = "Rate limit reached for requests" if failure == 429 else "The server had an error"
        return Reply(
            failure, fake_llm.openai_error(failure, message), {**request_id, "retry-after-ms": "100"}
        )
    try:
        chat = fake_llm.openai_chat(req.json(), server.prompt_cache)
    except fake_llm.BadRequest as exc:
        return Reply(400, fake_llm.openai_error(400, str(exc)), request_id)
    if chat.stream:
        return Reply(200, None, request_id, events=_paced(server, fake_llm.openai_stream(chat)))
    server.sleep(20, 60)
    return Reply(200, fake_llm.openai_response(chat), request_id)


@route("POST", "/v1/messages")
def anthropic_messages(req: Request, server: StandinServer) -> Reply:
    """Anthropic messages, plain or streamed (message_start ... message_delta with usage ... message_stop)."""
    request_id = {"request-id": "req_" + uuid.uuid4().hex[:24]}
    if not req.headers.get("x-api-key") and not req.headers.get("authorization", "").startswith("Bearer "):
        return Reply(
            401, fake_llm.anthropic_error(401, "x-api-key or authorization header is required"), request_id
        )
    failure = server.injected_failure(server.llm_fail_rate)
    if failure is not None:
        message = (
            "Number of requests has exceeded your rate limit" if failure == 429 else "Internal server error"
        )
        return Reply(
            failure, fake_llm.anthropic_error(failure, message), {**request_id, "retry-after-ms": "100"}
        )
    try:
        msg = fake_llm.anthropic_message(req.json(), server.prompt_cache)
    except fake_llm.BadRequest as exc:
        return Reply(400, fake_llm.anthropic_error(400, str(exc)), request_id)
    if msg.stream:
        return Reply(200, None, request_id, events=_paced(server, fake_llm.anthropic_stream(msg)))
    server.sleep(20, 60)
    return Reply(200, fake_llm.anthropic_response(msg), request_id)


# --- running it -------------------------------------------------------------------------------------


def serve_in_thread(
    port: int = 0, fail_rate: float = 0.0, seed: int | None = None, llm_fail_rate: float = 0.0
) -> tuple[StandinServer, str]:
    """Start the stand-in on a daemon thread; return the server (call ``.close()``) and its base URL."""
    server = StandinServer(port, fail_rate, seed, llm_fail_rate=llm_fail_rate)
    threading.Thread(target=server.serve_forever, name="standin", daemon=True).start()
    return server, server.base_url


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and serve until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m sample_app.standin", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=5051, help="port on 127.0.0.1 (0 = any free port)")
    parser.add_argument("--fail-rate", type=float, default=0.2, help="probability of a 429/500 (default 0.2)")
    parser.add_argument("--seed", type=int, default=None, help="seed for latency and failures")
    parser.add_argument(
        "--llm-fail-rate",
        type=float,
        default=0.0,
        help="probability of a 429/500 from the LLM APIs (default 0)",
    )
    args = parser.parse_args(argv)
    server = StandinServer(args.port, args.fail_rate, args.seed, llm_fail_rate=args.llm_fail_rate)
    print(
        f"stand-in listening on {server.base_url} (fail rate {args.fail_rate}, LLM {args.llm_fail_rate})",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
