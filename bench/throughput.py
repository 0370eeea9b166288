"""P2 — Flask hello-world requests per second under gunicorn: bare, `opentelemetry-instrument`, `obsdash wrap`.

`python -m bench.throughput [--rounds 5] [--seconds 5] [--connections 4] [--worker gthread]` starts, for each
round and configuration in turn (bare, peer, obsdash, bare, peer, obsdash, ...), a fresh gunicorn with one worker
serving a Flask app whose `/` returns "Hello, World!", and loads it from another process on 127.0.0.1
(bench/_load.py: raw sockets, `--connections` keep-alive connections, a warm-up second not counted).

Why one gthread worker (4 threads): the machine has 2 cores; one worker process keeps one core busy and leaves
the other to the load generator. The gthread worker keeps connections alive, so a request costs what the app and
its instrumentation cost, not a TCP handshake. The sync worker (`--worker sync`) answers `Connection: close`, so
every request also opens and tears down a connection, and its rate swung far more between rounds: over 3 rounds
under the same background load, bare ranged 1,291–2,330 req/s with sync against 2,685–2,750 with gthread.

The peer is `opentelemetry-instrument gunicorn ...` with the exporters `none` (it instruments Flask, and the
span is recorded, then dropped); obsdash is `obsdash wrap -- gunicorn ...`. Before the load, a `/_probe`
request asks the app whether its request span is recording, so a configuration that silently did not instrument
Flask fails the run; after it, the spans obsdash stored are counted against the requests answered.
Target (quality.md P2): obsdash ≥ 0.95× the peer's requests per second.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench._common import markdown_table, median
from bench._store import dropped_total, end_records, store_rows
from bench.headline import Headline

BIN = Path(sys.executable).parent
RATIO_LIMIT = 0.95
FLASK_SCOPE = "opentelemetry.instrumentation.flask"

APP = '''"""Flask hello world, for bench.throughput."""
from flask import Flask

app = Flask(__name__)


@app.get("/")
def hello():
    return "Hello, World!"


@app.get("/_probe")
def probe():
    from opentelemetry import trace  # here only: the measured route stays plain Flask

    span = trace.get_current_span()
    return {"recording": span.is_recording(), "span": type(span).__name__}
'''

BARE, PEER, OBSDASH = "bare", "opentelemetry-instrument", "obsdash wrap"


@dataclass
class Round:
    """One server run under load."""

    config: str
    rps: float
    answered: int
    errors: int
    recording: bool


@dataclass
class ThroughputResult:
    """Every round, and the spans obsdash stored."""

    worker: str
    seconds: float
    connections: int
    rounds: list[Round] = field(default_factory=list)
    spans_stored: int = 0
    dropped: dict[str, int] = field(default_factory=dict)

    def rps(self, config: str) -> float:
        return median([r.rps for r in self.rounds if r.config == config])

    def answered(self, config: str) -> int:
        """Requests answered by all runs of `config` (warm-up and probe included)."""
        return sum(r.answered + 1 for r in self.rounds if r.config == config)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(
                f"the server exited with status {process.returncode} before listening:\n{tail}"
            )
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port}")


def server_command(
    config: str, port: int, app_dir: Path, args: argparse.Namespace, data_dir: Path
) -> list[str]:
    """gunicorn with one worker, as each configuration starts it."""
    gunicorn = [str(BIN / "gunicorn"), "-w", "1", "-k", args.worker, "-b", f"127.0.0.1:{port}"]
    if args.worker == "gthread":
        gunicorn += ["--threads", str(args.threads)]
    gunicorn += ["--chdir", str(app_dir), "benchapp:app"]
    if config == PEER:
        return [str(BIN / "opentelemetry-instrument"), *gunicorn]
    if config == OBSDASH:
        return [str(BIN / "obsdash"), "wrap", "--data-dir", str(data_dir), "--", *gunicorn]
    return gunicorn


def server_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OBSDASH_", "OTEL_"))}
    env.pop("PYTHONPATH", None)
    return {**env, **{f"OTEL_{s}_EXPORTER": "none" for s in ("TRACES", "METRICS", "LOGS")}}


def probe(port: int) -> dict[str, Any]:
    """Ask the app whether the request's span is recording."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", "/_probe")
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"/_probe answered {response.status}: {body[:500]!r}")
        found: dict[str, Any] = json.loads(body)
        return found
    finally:
        conn.close()


def load_command(port: int, args: argparse.Namespace) -> list[str]:
    """The load generator's command line (another process)."""
    command = [sys.executable, "-m", "bench._load", "--port", str(port), "--seconds", str(args.seconds)]
    return [*command, "--warmup", str(args.warmup), "--connections", str(args.connections)]


def one_round(config: str, args: argparse.Namespace, app_dir: Path, data_dir: Path) -> Round:
    """Start the server, probe it, load it, stop it."""
    port = free_port()
    log_path = app_dir / f"{config.replace(' ', '-')}.log"
    log = log_path.open("ab")
    command = server_command(config, port, app_dir, args, data_dir)
    server = subprocess.Popen(command, env=server_env(), stdout=log, stderr=log)
    try:
        wait_for_port(port, server, log_path)
        seen = probe(port)
        load = subprocess.run(
            load_command(port, args),
            capture_output=True,
            text=True,
            check=True,
            timeout=args.seconds + args.warmup + 60,
        )
        counts = json.loads(load.stdout)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
    return Round(config, counts["rps"], counts["answered"], counts["errors"], bool(seen["recording"]))


def measure(args: argparse.Namespace) -> ThroughputResult:
    """Interleave the three configurations over `args.rounds`; then count what obsdash stored."""
    result = ThroughputResult(args.worker, args.seconds, args.connections)
    with tempfile.TemporaryDirectory(prefix="obsdash-bench-throughput-") as tmp:
        app_dir = Path(tmp)
        (app_dir / "benchapp.py").write_text(APP)
        data_dir = app_dir / "obsdash"
        for _ in range(args.rounds):
            for config in (BARE, PEER, OBSDASH):
                done = one_round(config, args, app_dir, data_dir)
                if done.recording != (config != BARE):
                    raise RuntimeError(f"{config}: Flask request span recording = {done.recording}")
                result.rounds.append(done)
        result.spans_stored = int(
            store_rows(data_dir, "SELECT count(*) FROM spans WHERE scope = ?", [FLASK_SCOPE])[0][0]
        )
        result.dropped = dropped_total(end_records(data_dir))
    return result


def table(result: ThroughputResult) -> str:
    """req/s medians and ratios, per configuration."""
    bare, peer = result.rps(BARE), result.rps(PEER)
    rows = []
    for config in (BARE, PEER, OBSDASH):
        samples = [r.rps for r in result.rounds if r.config == config]
        errors = sum(r.errors for r in result.rounds if r.config == config)
        rps = result.rps(config)
        rows.append(
            [
                config,
                f"{rps:,.0f}",
                f"{min(samples):,.0f}–{max(samples):,.0f}",
                f"{rps / bare:.2f}",
                f"{rps / peer:.2f}",
                str(errors),
            ]
        )
    return markdown_table(["configuration", "req/s (median)", "range", "× bare", "× peer", "errors"], rows)


def headline(result: ThroughputResult) -> list[Headline]:
    """The P2 row: obsdash's req/s against the peer's."""
    ours, peer, bare = result.rps(OBSDASH), result.rps(PEER), result.rps(BARE)
    ratio = ours / peer
    note = (
        f"bare {bare:,.0f} req/s: obsdash {ours / bare:.2f}×, peer {peer / bare:.2f}×; "
        f"spans stored {result.spans_stored:,} of {result.answered(OBSDASH):,} requests"
    )
    what = "Flask hello world req/s under gunicorn"
    return [
        Headline(
            "P2",
            what,
            ours,
            peer,
            "req/s",
            "otel-instrument",
            ratio,
            "≥ 0.95× peer",
            ratio >= RATIO_LIMIT,
            note,
        )
    ]


def parser() -> argparse.ArgumentParser:
    """The options (also used by `python -m bench`)."""
    found = argparse.ArgumentParser(prog="python -m bench.throughput", description=__doc__.split("\n")[0])
    found.add_argument("--rounds", type=int, default=5, help="interleaved rounds (5)")
    found.add_argument("--seconds", type=float, default=5.0, help="measured seconds per run (5)")
    found.add_argument("--warmup", type=float, default=1.0, help="seconds of load before measuring (1)")
    found.add_argument("--connections", type=int, default=4, help="concurrent connections (4)")
    found.add_argument(
        "--worker", choices=["sync", "gthread"], default="gthread", help="gunicorn worker (gthread)"
    )
    found.add_argument("--threads", type=int, default=4, help="threads of the gthread worker (4)")
    return found


def main(argv: list[str] | None = None) -> int:
    """Measure and print the table."""
    args = parser().parse_args(argv)
    result = measure(args)
    print(
        f"P2 — gunicorn 1 {args.worker} worker, {args.connections} connections, {args.seconds:g} s per run, "
        f"median of {args.rounds} interleaved rounds; load average {os.getloadavg()[0]:.2f}"
    )
    print(table(result))
    row = headline(result)[0]
    print(
        f"\nobsdash / peer: {row.ratio:.3f} (target {row.target}: {'met' if row.met else 'MISSED'}); {row.note}; "
        f"dropped: {result.dropped or 'none'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
