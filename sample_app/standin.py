"""A local stand-in for the third-party APIs the sample app calls, since demo machines have no internet.

It is a stdlib ``ThreadingHTTPServer`` bound to 127.0.0.1 that serves a small route table. Today the
table holds the weather API (``GET /v1/forecast?city=X``), which answers after 5-30 ms and, with
probability ``--fail-rate``, fails with a 429 (with ``Retry-After: 1``) or a 500, half each. Other
modules can add endpoints (for instance fake LLM APIs) with the ``route`` decorator; handlers get a
``Request`` and the ``StandinServer`` (for its seeded RNG and failure helpers) and return a ``Reply``;
such a module must be imported before the server starts so its routes are in the table.
Run it with ``python -m sample_app.standin --port 5051 --fail-rate 0.2 --seed 1``, or from tests with
``serve_in_thread()``.
"""

from __future__ import annotations

import argparse
import json
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

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
    """A JSON response: status, body (anything ``json.dumps`` accepts) and extra headers."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


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
        self, port: int, fail_rate: float, seed: int | None, routes: dict[RouteKey, Handler] | None = None
    ) -> None:
        super().__init__((HOST, port), _StandinHandler)
        self.fail_rate = fail_rate
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

    def injected_failure(self) -> int | None:
        """With probability ``fail_rate`` return 429 or 500 (half each), otherwise None."""
        with self._rng_lock:
            if self._rng.random() >= self.fail_rate:
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
        payload = json.dumps(reply.body).encode()
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

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


# --- running it -------------------------------------------------------------------------------------


def serve_in_thread(
    port: int = 0, fail_rate: float = 0.0, seed: int | None = None
) -> tuple[StandinServer, str]:
    """Start the stand-in on a daemon thread; return the server (call ``.close()``) and its base URL."""
    server = StandinServer(port, fail_rate, seed)
    threading.Thread(target=server.serve_forever, name="standin", daemon=True).start()
    return server, server.base_url


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and serve until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m sample_app.standin", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=5051, help="port on 127.0.0.1 (0 = any free port)")
    parser.add_argument("--fail-rate", type=float, default=0.2, help="probability of a 429/500 (default 0.2)")
    parser.add_argument("--seed", type=int, default=None, help="seed for latency and failures")
    args = parser.parse_args(argv)
    server = StandinServer(args.port, args.fail_rate, args.seed)
    print(f"stand-in listening on {server.base_url} (fail rate {args.fail_rate})", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
