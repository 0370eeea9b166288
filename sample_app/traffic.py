"""A traffic generator for the sample shop: a few threads sending a weighted mix of requests.

The mix covers every route of ``sample_app.app``: listing and creating items, the N+1 ``/orders``, the
flaky upstream behind ``/weather``, a valid ``/checkout`` and the crashing ``/checkout?qty=abc``,
``/health``, and (about one request in thirteen) the LLM features: the assistant plain, detailed and
streamed, suggestions, item summaries and pitches. It runs for ``--duration`` seconds or exactly
``--requests`` requests, never raises on HTTP or connection errors (it counts them), and prints how many
responses each (route, status) got. This process is a plain client and is not meant to be wrapped. Use
``run_traffic()`` from code and tests, or
``python -m sample_app.traffic --base-url http://127.0.0.1:5050 --duration 20 --concurrency 4``.
"""

from __future__ import annotations

import argparse
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import requests

QUESTIONS = (
    "Which mug keeps tea warm longest?",
    "Is the kettle safe on an induction hob?",
    "What goes well with the celadon pot?",
    "Do you ship saucers abroad?",
    "Which glaze hides coffee stains best?",
    "Can I buy a spare lid for the kettle?",
)
SEARCHES = ("mu", "ket", "sau", "spo", "pot", "cel", "ten")
CITIES = ("London", "Paris", "Lagos", "Lima", "Osaka", "Oslo", "Pune", "Quito", "Hobart", "Reykjavik")
THINK_TIME_S = (0.01, 0.05)  # pause between two requests of one worker
REQUEST_TIMEOUT_S = 10.0


def _new_item(rng: random.Random) -> dict[str, Any]:
    """A JSON body for ``POST /items``."""
    return {"name": f"widget-{rng.randrange(10_000)}", "price": round(rng.uniform(1, 50), 2)}


# (label, weight, build) where build(rng) -> (method, path, json body or None)
Builder = Callable[[random.Random], tuple[str, str, Any]]
MIX: list[tuple[str, int, Builder]] = [
    ("GET /items", 30, lambda rng: ("GET", "/items", None)),
    ("POST /items", 10, lambda rng: ("POST", "/items", _new_item(rng))),
    ("GET /orders", 15, lambda rng: ("GET", "/orders", None)),
    ("GET /weather", 20, lambda rng: ("GET", f"/weather?city={rng.choice(CITIES)}", None)),
    ("GET /checkout?qty=2", 12, lambda rng: ("GET", "/checkout?qty=2", None)),
    ("GET /checkout?qty=abc", 5, lambda rng: ("GET", "/checkout?qty=abc", None)),
    ("GET /health", 8, lambda rng: ("GET", "/health", None)),
    # LLM features (8 of 108): spend shows up without the calls dominating the demo.
    ("POST /assistant", 2, lambda rng: ("POST", "/assistant", {"question": rng.choice(QUESTIONS)})),
    (
        "POST /assistant detailed",
        1,
        lambda rng: ("POST", "/assistant", {"question": rng.choice(QUESTIONS), "detailed": True}),
    ),
    ("GET /assistant/stream", 1, lambda rng: ("GET", f"/assistant/stream?q={rng.choice(QUESTIONS)}", None)),
    ("GET /suggest", 2, lambda rng: ("GET", f"/suggest?q={rng.choice(SEARCHES)}", None)),
    ("GET /items/<id>/summary", 1, lambda rng: ("GET", f"/items/{rng.randint(1, 5)}/summary", None)),
    ("GET /items/<id>/pitch", 1, lambda rng: ("GET", f"/items/{rng.randint(1, 5)}/pitch", None)),
]

Status = int | str  # an HTTP status, or "timeout" / "conn-error"


class _Tickets:
    """A thread-safe budget of requests; unlimited when ``total`` is None."""

    def __init__(self, total: int | None) -> None:
        self._left = total
        self._lock = threading.Lock()

    def take(self) -> bool:
        """Claim one request; False once the budget is spent."""
        if self._left is None:
            return True
        with self._lock:
            if self._left <= 0:
                return False
            self._left -= 1
            return True


def send_one(session: requests.Session, base_url: str, rng: random.Random) -> tuple[str, Status]:
    """Send one request picked from the weighted mix; return its label and status (never raises)."""
    label, _weight, build = rng.choices(MIX, weights=[weight for _, weight, _ in MIX])[0]
    method, path, body = build(rng)
    try:
        response = session.request(method, base_url + path, json=body, timeout=REQUEST_TIMEOUT_S)
    except requests.Timeout:
        return label, "timeout"
    except requests.RequestException:
        return label, "conn-error"
    return label, response.status_code


class _Tally:
    """A Counter of (label, status) guarded by a lock, shared by the workers."""

    def __init__(self) -> None:
        self.counts: Counter = Counter()
        self._lock = threading.Lock()

    def add(self, key: tuple[str, Status]) -> None:
        """Count one response."""
        with self._lock:
            self.counts[key] += 1

    def total(self) -> int:
        """Responses counted so far."""
        with self._lock:
            return sum(self.counts.values())


def _worker(base: str, rng: random.Random, tickets: _Tickets, stop: threading.Event, tally: _Tally) -> None:
    """Send requests until told to stop or the ticket budget runs out."""
    with requests.Session() as session:
        while not stop.is_set() and tickets.take():
            key = send_one(session, base, rng)
            tally.add(key)
            stop.wait(0.2 if key[1] == "conn-error" else rng.uniform(*THINK_TIME_S))


def run_traffic(
    base_url: str,
    duration: float | None = None,
    requests: int | None = None,
    concurrency: int = 4,
    seed: int | None = None,
    *,
    progress: Callable[[int, float], None] | None = None,
    stop_on_interrupt: bool = False,
) -> Counter:
    """Send traffic for ``duration`` seconds and/or exactly ``requests`` requests; return counts.

    The result maps ``(label, status)`` to a count. ``progress(done, elapsed_s)`` is called about twice
    a second. With ``stop_on_interrupt`` a Ctrl-C ends the run early instead of propagating.
    """
    if duration is None and requests is None:
        raise ValueError("give a duration, a number of requests, or both")
    base_url = base_url.rstrip("/")
    tally, stop, tickets = _Tally(), threading.Event(), _Tickets(requests)
    master = random.Random(seed)
    threads = [
        threading.Thread(
            target=_worker,
            args=(base_url, random.Random(master.random()), tickets, stop, tally),
            name=f"traffic-{i}",
            daemon=True,
        )
        for i in range(max(1, concurrency))
    ]
    for thread in threads:
        thread.start()
    try:
        _wait(threads, stop, tally, duration, progress)
    except KeyboardInterrupt:
        if not stop_on_interrupt:
            raise
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=REQUEST_TIMEOUT_S + 1)
    return tally.counts


def _wait(
    threads: list[threading.Thread],
    stop: threading.Event,
    tally: _Tally,
    duration: float | None,
    progress: Callable[[int, float], None] | None,
) -> None:
    """Wait for the workers, stopping them at the deadline and reporting progress."""
    started = last_report = time.monotonic()
    while any(thread.is_alive() for thread in threads):
        now = time.monotonic()
        if duration is not None and now - started >= duration:
            stop.set()
        if progress is not None and now - last_report >= 0.5:
            progress(tally.total(), now - started)
            last_report = now
        time.sleep(0.05)
    if progress is not None:
        progress(tally.total(), time.monotonic() - started)


def format_summary(counts: Counter) -> str:
    """A compact table of responses per (route, status), with a total line."""
    rows = sorted(counts.items(), key=lambda kv: (kv[0][0], str(kv[0][1])))
    lines = [f"{'route':<24} {'status':>10} {'count':>6}"]
    lines += [f"{label:<24} {status!s:>10} {n:>6}" for (label, status), n in rows]
    lines.append(f"{'total':<24} {'':>10} {sum(counts.values()):>6}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, run the traffic and print the summary."""
    parser = argparse.ArgumentParser(prog="python -m sample_app.traffic", description="Drive the shop.")
    parser.add_argument("--base-url", default="http://127.0.0.1:5050", help="the app's base URL")
    parser.add_argument("--duration", type=float, help="seconds to run (default 20 without --requests)")
    parser.add_argument("--requests", type=int, help="send exactly this many requests, then stop")
    parser.add_argument("--concurrency", type=int, default=4, help="parallel clients (default 4)")
    parser.add_argument("--seed", type=int, default=None, help="seed for the request mix")
    args = parser.parse_args(argv)
    duration = 20.0 if args.duration is None and args.requests is None else args.duration
    counts = run_traffic(
        args.base_url, duration, args.requests, args.concurrency, args.seed, stop_on_interrupt=True
    )
    print(format_summary(counts))


if __name__ == "__main__":
    main()
