"""R8 — load: concurrent clients against the sample shop, bare and under `obsdash wrap`, in one run.

    python -m bench.load [--clients 100] [--duration 60] [--workers 2] [--threads 8] [--json out.json]

The shop (`sample_app.app:app`) is served by gunicorn (gthread workers: a real WSGI server, as in production; the
shop's own `python -m sample_app.app` is Flask's development server), its weather API by the stand-in in its own
process (fail rate 0, so every status is the shop's own doing). The load comes from ANOTHER process on 127.0.0.1:
`--clients` asyncio connections with keep-alive, each sending its next request when the last one answered, for
`--duration` seconds, picking from a fixed route mix with a fixed seed (MIX: every route has ONE planned status,
e.g. `/checkout?qty=abc` crashes with a 500 on purpose). The same run is made bare, then wrapped; while the wrapped
run is under load this process hosts the hub (ingesting as spans arrive) and refreshes the Overview the way the
TUI does (read the watermark every 250 ms, refresh when it moved), timing each refresh. After each run the server
is stopped with SIGTERM, as a user would, so every worker writes its end record (with its drop counts).

Reported: requests sent, responses by status and route (bare vs wrapped: an unplanned status, a connection error
or a timeout is an error; one that only the wrapped run has would be obsdash's), SERVER spans stored against
responses received per route and status (lost = answered − stored − counted as dropped), drops by reason, p50/p95
latency and req/s bare vs wrapped, and the Overview refresh time under load. tests/reliability/test_load.py runs a
short version for CI and asserts the correctness part only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench._common import markdown_table, median, p95

REPO = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
REQUEST_TIMEOUT_S = 30.0
CITIES = ("London", "Paris", "Lagos", "Lima", "Osaka", "Oslo", "Pune", "Quito")


@dataclass(frozen=True)
class Route:
    """One entry of the mix: what the client sends, and what the shop is expected to answer and record."""

    label: str
    weight: int
    method: str
    route: str  # the server span's http_route
    status: int  # the one status this request gets from the shop
    path: str  # `{city}` and `{n}` are filled per request


MIX = (
    Route("GET /items", 25, "GET", "/items", 200, "/items"),
    Route("POST /items", 3, "POST", "/items", 201, "/items"),
    Route("GET /orders", 15, "GET", "/orders", 200, "/orders"),
    Route("GET /weather", 15, "GET", "/weather", 200, "/weather?city={city}"),
    Route("GET /checkout?qty=2", 15, "GET", "/checkout", 200, "/checkout?qty=2&item={n}"),
    Route("GET /checkout?qty=abc", 5, "GET", "/checkout", 500, "/checkout?qty=abc"),  # the shop's own bug
    Route("GET /checkout?item=999", 4, "GET", "/checkout", 404, "/checkout?qty=1&item=999"),
    Route("GET /health", 18, "GET", "/health", 200, "/health"),
)
BY_LABEL = {r.label: r for r in MIX}


# -- the client process ---------------------------------------------------------------------------------


def _request_bytes(route: Route, rng: random.Random) -> bytes:
    path = route.path.format(city=rng.choice(CITIES), n=rng.randint(1, 5))
    body = b""
    headers = f"{route.method} {path} HTTP/1.1\r\nHost: {HOST}\r\n"
    if route.method == "POST":
        body = json.dumps({"name": f"load-{rng.randrange(10_000)}", "price": 3.5}).encode()
        headers += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return (headers + "\r\n").encode() + body


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """(status, keep the connection) of one HTTP/1.1 response with a Content-Length body."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {
        k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)
    }
    await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers.get("connection", "").lower() != "close"


@dataclass
class ClientTally:
    """What the clients saw: responses per (label, status), failures per (label, kind), latencies."""

    responses: Counter[tuple[str, int | str]] = field(default_factory=Counter)
    latencies_s: list[float] = field(default_factory=list)
    sent: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "responses": [[label, status, n] for (label, status), n in self.responses.items()],
            "latencies_s": self.latencies_s,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ClientTally:
        tally = cls(sent=data["sent"], latencies_s=data["latencies_s"])
        for label, status, n in data["responses"]:
            tally.responses[(label, status)] = n
        return tally


async def _client(port: int, deadline: float, rng: random.Random, tally: ClientTally) -> None:
    weights = [r.weight for r in MIX]
    writer: asyncio.StreamWriter | None = None
    reader: asyncio.StreamReader | None = None
    while time.monotonic() < deadline:
        route = rng.choices(MIX, weights)[0]
        started = time.perf_counter()
        tally.sent += 1
        try:
            if writer is None or reader is None:
                reader, writer = await asyncio.open_connection(HOST, port)
            writer.write(_request_bytes(route, rng))
            status, keep = await asyncio.wait_for(_read_response(reader), REQUEST_TIMEOUT_S)
        except TimeoutError:
            tally.responses[(route.label, "timeout")] += 1
            _close(writer)
            writer = None
            continue
        except (OSError, asyncio.IncompleteReadError, ValueError):
            tally.responses[(route.label, "conn-error")] += 1
            _close(writer)
            writer = None
            await asyncio.sleep(0.05)
            continue
        tally.latencies_s.append(time.perf_counter() - started)
        tally.responses[(route.label, status)] += 1
        if not keep:
            _close(writer)
            writer = None
    _close(writer)


def _close(writer: asyncio.StreamWriter | None) -> None:
    if writer is not None:
        writer.close()


async def _clients(port: int, clients: int, duration: float, seed: int) -> ClientTally:
    tally = ClientTally()
    master = random.Random(seed)
    deadline = time.monotonic() + duration
    await asyncio.gather(
        *(_client(port, deadline, random.Random(master.random()), tally) for _ in range(clients))
    )
    return tally


def run_clients(port: int, clients: int, duration: float, seed: int = 1) -> ClientTally:
    """Run the load from a separate process (`python -m bench.load --client ...`) and return what it saw."""
    command = [sys.executable, "-m", "bench.load", "--client", str(port), "--clients", str(clients)]
    command += ["--duration", str(duration), "--seed", str(seed)]
    done = subprocess.run(
        command,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=duration + REQUEST_TIMEOUT_S + 30,
        check=True,
    )
    return ClientTally.from_json(json.loads(done.stdout))


# -- the servers ------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex((HOST, port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port}")


def start_upstream() -> tuple[subprocess.Popen[str], str]:
    """The stand-in weather API in its own process, never failing: (process, base URL)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "sample_app.standin", "--port", "0", "--fail-rate", "0", "--seed", "1"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()  # "stand-in listening on http://127.0.0.1:PORT (...)"
    return process, line.split(" on ", 1)[1].split()[0]


@dataclass
class Shop:
    """A running shop: gunicorn, bare or wrapped."""

    process: subprocess.Popen[str]
    port: int
    log: Path


def start_shop(
    workdir: Path, upstream: str, data_dir: Path | None, workers: int = 2, threads: int = 8
) -> Shop:
    """gunicorn serving the sample shop on a fresh database; under `obsdash wrap` when `data_dir` is given."""
    gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent))
    if gunicorn is None:
        raise RuntimeError("gunicorn is not installed next to this Python")
    port = free_port()
    command = [
        gunicorn,
        "-k",
        "gthread",
        "-w",
        str(workers),
        "--threads",
        str(threads),
        "-b",
        f"{HOST}:{port}",
    ]
    command += ["--graceful-timeout", "20", "sample_app.app:app"]
    if data_dir is not None:
        command = [sys.executable, "-m", "obsdash", "wrap", "--data-dir", str(data_dir), "--", *command]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OBSDASH_")}
    env.update(SAMPLE_DB_PATH=str(workdir / f"shop-{port}.db"), SAMPLE_UPSTREAM_URL=upstream)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    log = workdir / f"shop-{port}.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, text=True
        )
    try:
        wait_for_port(port)
    except TimeoutError:
        process.kill()
        raise RuntimeError(f"the shop did not start:\n{log.read_text()}") from None
    return Shop(process, port, log)


def stop_shop(shop: Shop) -> int:
    """SIGTERM, as a user stops a server: gunicorn stops its workers gracefully and each writes its end record."""
    shop.process.send_signal(signal.SIGTERM)
    try:
        return shop.process.wait(timeout=40)
    except subprocess.TimeoutExpired:
        shop.process.kill()
        raise RuntimeError(f"the shop did not stop on SIGTERM:\n{shop.log.read_text()}") from None


# -- the dashboard and the store --------------------------------------------------------------------------


class DashboardProbe(threading.Thread):
    """Refreshes the Overview like the TUI does while the load runs: watermark every 250 ms, a refresh when it
    moved. Each refresh's time in seconds goes to `refresh_s`; an exception ends the probe and is kept."""

    def __init__(self, store: Any, window: str = "5m") -> None:
        super().__init__(name="dashboard-probe", daemon=True)
        self.store = store
        self.window = window
        self.refresh_s: list[float] = []
        self.error: BaseException | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        from obsdash.store.queries.overview import overview
        from obsdash.store.queries.window import utc_now, window_named
        from obsdash.tui.app import POLL_INTERVAL_S

        mark = None
        try:
            while not self.stop.wait(POLL_INTERVAL_S):
                stats = self.store.stats()
                if (stats.get("pid"), stats.get("watermark")) == mark:
                    continue
                mark = (stats.get("pid"), stats.get("watermark"))
                started = time.perf_counter()
                overview(self.store, window_named(self.window), utc_now())
                self.refresh_s.append(time.perf_counter() - started)
        except BaseException as exc:
            self.error = exc


def stored_server_spans(store: Any) -> Counter[tuple[str, str, int]]:
    """SERVER spans in the store per (method, route, status)."""
    rows = store.query(
        "SELECT http_method, http_route, http_status_code, count(*) FROM spans WHERE kind = 'SERVER' GROUP BY ALL"
    ).rows
    return Counter({(m, r, s): n for m, r, s, n in rows})


def drops_by_reason(store: Any) -> Counter[str]:
    """Records every process counted as dropped, by reason, from their end records."""
    rows = store.query("SELECT details->'dropped' FROM run_events WHERE event = 'end'").rows
    total: Counter[str] = Counter()
    for (dropped,) in rows:
        total.update(json.loads(dropped or "{}"))
    return total


def processes_without_end(store: Any) -> int:
    """Processes with a start record and no end record (their drop counts would be unknown)."""
    sql = "SELECT count(*) FROM (SELECT pid FROM run_events WHERE event = 'start' EXCEPT "
    sql += "SELECT pid FROM run_events WHERE event = 'end')"
    return int(store.query(sql).rows[0][0])


def answered(tally: ClientTally) -> Counter[tuple[str, str, int]]:
    """HTTP responses the clients received per (method, route, status): what the shop must have recorded."""
    out: Counter[tuple[str, str, int]] = Counter()
    for (label, status), n in tally.responses.items():
        if isinstance(status, int):
            route = BY_LABEL[label]
            out[(route.method, route.route, status)] += n
    return out


def unplanned(tally: ClientTally) -> Counter[tuple[str, int | str]]:
    """Responses whose status is not the one the mix plans for the route, and connection errors, timeouts."""
    return Counter(
        {(label, s): n for (label, s), n in tally.responses.items() if s != BY_LABEL[label].status}
    )


# -- one run, and the report --------------------------------------------------------------------------------


@dataclass
class RunResult:
    """One load run against one shop."""

    mode: str
    tally: ClientTally
    duration: float
    status: int
    stored: Counter[tuple[str, str, int]] | None = None
    drops: Counter[str] | None = None
    unended: int = 0
    refresh_s: list[float] = field(default_factory=list)
    dashboard_error: str | None = None

    @property
    def received(self) -> int:
        return sum(answered(self.tally).values())

    @property
    def lost(self) -> int:
        """Answered requests with no SERVER span stored and no drop counted for them."""
        if self.stored is None or self.drops is None:
            return 0
        missing = sum((answered(self.tally) - self.stored).values())
        return max(0, missing - sum(self.drops.values()))


MODES = {"bare": (False, False), "wrapped": (True, False), "wrapped + dashboard": (True, True)}
"""mode -> (under obsdash wrap, hub hosted and Overview refreshed during the load)."""


def load_run(
    workdir: Path,
    upstream: str,
    clients: int,
    duration: float,
    *,
    mode: str,
    workers: int = 2,
    threads: int = 8,
) -> RunResult:
    """One run: start the shop, load it, stop it; when wrapped, count what the store holds afterwards."""
    from obsdash.datadir import DataDir
    from obsdash.hub.client import open_store

    wrapped, dashboard = MODES[mode]
    data_dir = workdir / f"obsdash-data-{mode.replace(' ', '').replace('+', '-')}" if wrapped else None
    store = open_store(DataDir(data_dir), dashboard=True) if data_dir is not None and dashboard else None
    probe = DashboardProbe(store) if store is not None else None
    shop = start_shop(workdir, upstream, data_dir, workers, threads)
    try:
        if probe is not None:
            probe.start()
        started = time.monotonic()
        tally = run_clients(shop.port, clients, duration)
        elapsed = time.monotonic() - started
    finally:
        if probe is not None:
            probe.stop.set()
            probe.join(timeout=60)
        status = stop_shop(shop)
    result = RunResult(mode, tally, elapsed, status)
    if data_dir is not None:
        store = store or open_store(DataDir(data_dir))  # without a dashboard, all is ingested now
        store.sync()
        result.stored, result.drops = stored_server_spans(store), drops_by_reason(store)
        result.unended = processes_without_end(store)
        store.close()
    if probe is not None:
        result.refresh_s = probe.refresh_s
        if probe.is_alive():
            result.dashboard_error = "an Overview refresh did not return within 60 s of the end of the load"
        elif probe.error is not None:
            result.dashboard_error = repr(probe.error)
    return result


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def report(runs: list[RunResult]) -> str:
    """The Markdown tables: one column per run."""

    def row(name: str, cell: Any, wrapped_only: bool = False) -> list[str]:
        return [name, *("–" if wrapped_only and r.stored is None else cell(r) for r in runs)]

    summary = [
        row("requests sent", lambda r: f"{r.tally.sent}"),
        row("responses received", lambda r: f"{r.received}"),
        row("req/s", lambda r: f"{r.received / r.duration:.0f}"),
        row("latency p50 ms", lambda r: ms(median(r.tally.latencies_s))),
        row("latency p95 ms", lambda r: ms(p95(r.tally.latencies_s))),
        row("unplanned statuses, conn errors, timeouts", lambda r: f"{sum(unplanned(r.tally).values())}"),
        row("server exit status (SIGTERM)", lambda r: f"{r.status}"),
        row("SERVER spans stored", lambda r: f"{sum((r.stored or Counter()).values())}", True),
        row("dropped (any record), by reason", lambda r: _reasons(r.drops), True),
        row("lost (answered, no span, not counted)", lambda r: f"{r.lost}", True),
        row("processes without an end record", lambda r: f"{r.unended}", True),
        row("Overview refreshes during the load", lambda r: f"{len(r.refresh_s)}" if r.refresh_s else "–"),
        row("Overview refresh p50 / p95 / max ms", _refresh),
    ]
    lines = [markdown_table(["", *(r.mode for r in runs)], summary)]
    per_route = []
    for route in MIX:
        key = (route.method, route.route, route.status)
        cells = [_statuses(r.tally, route.label) for r in runs]
        spans = [f"{r.stored[key]} / {answered(r.tally)[key]}" for r in runs if r.stored is not None]
        per_route.append([route.label, str(route.status), *cells, *spans])
    header = ["route", "planned", *(f"{r.mode}: responses" for r in runs)]
    header += [f"{r.mode}: spans / answered" for r in runs if r.stored is not None]
    lines.append(markdown_table(header, per_route, align_right_from=2))
    lines += [f"{r.mode}: dashboard probe failed: {r.dashboard_error}" for r in runs if r.dashboard_error]
    return "\n\n".join(lines)


def _statuses(tally: ClientTally, label: str) -> str:
    found = sorted(((str(s), n) for (lbl, s), n in tally.responses.items() if lbl == label))
    return ", ".join(f"{s}: {n}" for s, n in found) or "–"


def _reasons(drops: Counter[str] | None) -> str:
    if not drops or not sum(drops.values()):
        return "0"
    return ", ".join(f"{k} {v}" for k, v in drops.most_common())


def _refresh(result: RunResult) -> str:
    times = result.refresh_s
    if not times:
        return "–"
    return f"{ms(median(times))} / {ms(p95(times))} / {ms(max(times))}"


def _figures(result: RunResult) -> dict[str, Any]:
    latencies = result.tally.latencies_s
    return {
        "mode": result.mode,
        "sent": result.tally.sent,
        "received": result.received,
        "req_per_s": result.received / result.duration,
        "p50_ms": median(latencies) * 1000,
        "p95_ms": p95(latencies) * 1000,
        "responses": [
            [label, status, n] for (label, status), n in sorted(result.tally.responses.items(), key=str)
        ],
        "unplanned": sum(unplanned(result.tally).values()),
        "exit_status": result.status,
        "spans_stored": sum(result.stored.values()) if result.stored is not None else None,
        "drops": dict(result.drops or {}),
        "lost": result.lost,
        "processes_without_end": result.unended,
        "overview_refresh_ms": [t * 1000 for t in result.refresh_s],
    }


def main(argv: list[str] | None = None) -> int:
    """Bare run, wrapped run, tables."""
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load per run")
    parser.add_argument(
        "--workers", type=int, default=2, help="gunicorn workers (default 2, one per core here)"
    )
    parser.add_argument("--threads", type=int, default=8, help="threads per gunicorn worker (gthread)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--modes", nargs="+", choices=list(MODES), default=list(MODES), help="runs to make, in this order"
    )
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    parser.add_argument("--client", type=int, metavar="PORT", help=argparse.SUPPRESS)  # the load process
    args = parser.parse_args(argv)
    if args.client is not None:
        tally = asyncio.run(_clients(args.client, args.clients, args.duration, args.seed))
        print(json.dumps(tally.as_json()))
        return 0
    workdir = Path(tempfile.mkdtemp(prefix="obsdash-load-"))
    upstream, url = start_upstream()
    try:
        runs = [
            load_run(
                workdir, url, args.clients, args.duration, mode=m, workers=args.workers, threads=args.threads
            )
            for m in args.modes
        ]
    finally:
        upstream.terminate()
        upstream.wait(timeout=10)
    print(
        f"{args.clients} clients, {args.duration:g} s per run, gunicorn gthread {args.workers}x{args.threads}\n"
    )
    print(report(runs))
    if args.json:
        args.json.write_text(json.dumps([_figures(r) for r in runs], indent=1))
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
