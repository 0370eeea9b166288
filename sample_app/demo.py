"""One-command demo: run the shop under ``obsdash wrap``, drive traffic at it, then show what obsdash saw.

``python -m sample_app.demo [--data-dir .obsdash] [--duration 20] [--no-dashboard]`` picks free ports on
127.0.0.1, starts the third-party stand-in (weather, OpenAI and Anthropic APIs), starts the shop as
``obsdash wrap ... -- python -m sample_app.app`` pointed at the stand-in for all three, with a dummy API
key (its output goes to ``DATA_DIR/sample_app.log``) and waits for ``/health``. On a terminal it then opens
the dashboard (``obsdash tui``) with traffic running in the background until you quit it (q); otherwise (a
pipe, CI, or ``--no-dashboard``) it sends traffic for ``--duration`` seconds (Ctrl-C ends it early). Either
way it stops the shop with SIGTERM and prints per-route latency, error and LLM-call summaries with
``obsdash query``. Child processes are always cleaned up; on failure it exits non-zero with one line
saying why.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import requests

from sample_app.traffic import format_summary, run_traffic

REPO_ROOT = Path(__file__).resolve().parent.parent
HEALTH_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
QUERY_TIMEOUT_S = 60.0
DASHBOARD_TRAFFIC_S = 3600.0

ROUTES_SQL = (
    "SELECT coalesce(http_route, name) AS route, count(*) AS requests, "
    "count(*) FILTER (WHERE status_code = 'ERROR') AS errors, "
    "round(quantile_cont(duration_ms, 0.5), 1) AS p50_ms, "
    "round(quantile_cont(duration_ms, 0.95), 1) AS p95_ms "
    "FROM spans WHERE is_root AND kind = 'SERVER' GROUP BY 1 ORDER BY requests DESC"
)
# One row per LLM call: the GenAI instrumentors' spans only (the anthropic SDK's own span under each is a copy).
LLM_SQL = (
    "SELECT gen_ai_provider AS provider, gen_ai_model AS model, count(*) AS calls, "
    "count(*) FILTER (WHERE input_tokens IS NULL) AS no_usage, "
    "sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens "
    "FROM spans WHERE scope LIKE 'opentelemetry.instrumentation.genai.%' GROUP BY ALL ORDER BY calls DESC"
)
ERRORS_SQL = (
    "SELECT exception_type, count(*) AS n, any_value(route) AS route FROM errors GROUP BY 1 ORDER BY n DESC"
)


class DemoError(Exception):
    """A failure reported to the user as one line."""


# --- processes --------------------------------------------------------------------------------------


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports on 127.0.0.1 that were free a moment ago."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def start(argv: list[str], log_path: Path | None = None) -> subprocess.Popen[bytes]:
    """Start a child in its own session (so Ctrl-C reaches only us), output to ``log_path`` or nowhere."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if log_path is None:
        return subprocess.Popen(
            argv,
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as log:
        return subprocess.Popen(
            argv, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop(proc: subprocess.Popen[bytes], timeout: float) -> bool:
    """SIGTERM the process itself and wait; True if it exited within ``timeout``."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return False
    return True


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Last-resort cleanup: SIGTERM then SIGKILL the child's whole process group."""
    for sig, grace in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 3.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def last_line(path: Path) -> str:
    """The last non-empty line of a log file, or '' if there is none."""
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1].strip() if lines else ""


def wait_for_http(url: str, proc: subprocess.Popen[bytes], what: str, log_path: Path | None = None) -> None:
    """Poll ``url`` until it answers below 500, or raise DemoError if ``proc`` dies or time runs out."""
    hint = f" (full log: {log_path})" if log_path else ""
    deadline = time.monotonic() + HEALTH_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            detail = f": {last_line(log_path)}" if log_path and last_line(log_path) else ""
            raise DemoError(f"{what} exited with status {proc.returncode} before answering{detail}{hint}")
        try:
            if requests.get(url, timeout=1).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise DemoError(f"{what} did not answer {url} within {HEALTH_TIMEOUT_S:g} s{hint}")


def obsdash_query(data_dir: Path, sql: str) -> str:
    """Run ``obsdash query`` and return its output; DemoError if it fails."""
    argv = [sys.executable, "-m", "obsdash", "query", "--data-dir", str(data_dir), sql]
    try:
        done = subprocess.run(
            argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=QUERY_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise DemoError(f"obsdash query did not finish within {QUERY_TIMEOUT_S:g} s") from exc
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        raise DemoError(f"obsdash query failed: {why}")
    return done.stdout.rstrip()


# --- the demo ---------------------------------------------------------------------------------------


def progress_printer(duration: float) -> Callable[[int, float], None]:
    """A progress callback: one line rewritten in place on a terminal, a line every 5 s otherwise."""
    tty = sys.stdout.isatty()
    last_printed = [-5.0]

    def show(done: int, elapsed: float) -> None:
        line = f"traffic: {min(elapsed, duration):5.1f}/{duration:g} s, {done} requests sent"
        if tty:
            print(f"\r{line}", end="", flush=True)
        elif elapsed - last_printed[0] >= 5.0:
            print(line, flush=True)
            last_printed[0] = elapsed

    return show


def dashboard_wanted(args: argparse.Namespace) -> bool:
    """The dashboard needs a terminal: skip it under CI, in a pipe, or with --no-dashboard."""
    return not args.no_dashboard and sys.stdin.isatty() and sys.stdout.isatty()


def watch_with_dashboard(
    data_dir: Path, app_url: str, args: argparse.Namespace, children: list[subprocess.Popen[bytes]]
) -> None:
    """Traffic in the background for as long as the dashboard is open; the dashboard in the foreground."""
    traffic = start(
        [
            sys.executable,
            "-m",
            "sample_app.traffic",
            "--base-url",
            app_url,
            "--duration",
            str(DASHBOARD_TRAFFIC_S),
            "--concurrency",
            str(args.concurrency),
        ]
    )
    children.append(traffic)
    print("opening the dashboard (q quits, ? shows the keys); traffic runs until you quit")
    time.sleep(1.0)  # let the first requests reach the store so the first screen is not empty
    try:
        subprocess.run(
            [sys.executable, "-m", "obsdash", "tui", "--data-dir", str(data_dir), "--window", "5m"],
            cwd=REPO_ROOT,
            check=False,
        )
    except KeyboardInterrupt:
        pass
    stop(traffic, STOP_TIMEOUT_S)


def run_demo(args: argparse.Namespace) -> None:
    """Start everything, drive traffic, stop everything, then print the summaries."""
    data_dir = Path(args.data_dir).resolve()
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    log_path = data_dir / "sample_app.log"
    workdir = Path(tempfile.mkdtemp(prefix="obsdash-demo-"))
    children: list[subprocess.Popen[bytes]] = []
    try:
        standin_port, app_port = free_ports(2)
        standin_url, app_url = f"http://127.0.0.1:{standin_port}", f"http://127.0.0.1:{app_port}"
        standin_argv = ["--port", str(standin_port), "--fail-rate", str(args.fail_rate), "--seed", "1"]
        standin_argv += ["--llm-fail-rate", str(args.llm_fail_rate)]
        standin = start([sys.executable, "-m", "sample_app.standin", *standin_argv])
        children.append(standin)
        wait_for_http(f"{standin_url}/", standin, "the weather stand-in")

        wrap = [
            sys.executable,
            "-m",
            "obsdash",
            "wrap",
            "--data-dir",
            str(data_dir),
            "--service-name",
            "shop",
        ]
        app_argv = ["--port", str(app_port), "--upstream", standin_url, "--db", str(workdir / "shop.db")]
        app_argv += ["--llm-url", standin_url]  # the LLM APIs are the stand-in's too, with a dummy key
        app = start([*wrap, "--", sys.executable, "-m", "sample_app.app", *app_argv], log_path)
        children.append(app)
        wait_for_http(f"{app_url}/health", app, "the shop (under obsdash wrap)", log_path)
        print(f"shop is up at {app_url}; telemetry goes to {data_dir}, app output to {log_path}")

        if dashboard_wanted(args):
            watch_with_dashboard(data_dir, app_url, args, children)
        else:
            print(f"sending traffic for {args.duration:g} s (Ctrl-C to stop early)")
            counts = run_traffic(
                app_url,
                duration=args.duration,
                concurrency=args.concurrency,
                progress=progress_printer(args.duration),
                stop_on_interrupt=True,
            )
            if sys.stdout.isatty():
                print()
            print(format_summary(counts))

        print("stopping the shop (SIGTERM) ...")
        if not stop(app, STOP_TIMEOUT_S):
            kill_group(app)
            print(
                f"warning: the shop ignored SIGTERM for {STOP_TIMEOUT_S:g} s and was killed; data may be lost"
            )
        stop(standin, STOP_TIMEOUT_S)
    finally:
        for child in children:
            if child.poll() is None:
                kill_group(child)
        shutil.rmtree(workdir, ignore_errors=True)

    print("\n== requests by route (from obsdash) ==")
    print(obsdash_query(data_dir, ROUTES_SQL))
    print("\n== errors (from obsdash) ==")
    print(obsdash_query(data_dir, ERRORS_SQL))
    print("\n== LLM calls (from obsdash) ==")
    print(obsdash_query(data_dir, LLM_SQL))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the demo's options."""
    parser = argparse.ArgumentParser(prog="python -m sample_app.demo", description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=".obsdash", help="obsdash data directory (default .obsdash)")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of traffic (default 20)")
    parser.add_argument(
        "--no-dashboard",
        action="store_true",
        help="do not open the live dashboard (it only opens on a terminal; --duration applies without it)",
    )
    parser.add_argument("--concurrency", type=int, default=4, help="parallel traffic clients (default 4)")
    parser.add_argument("--fail-rate", type=float, default=0.2, help="stand-in 429/500 rate (default 0.2)")
    parser.add_argument(
        "--llm-fail-rate",
        type=float,
        default=0.02,
        help="stand-in LLM 429/500 rate, retried by the SDKs (default 0.02)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the demo; return the process exit status."""
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # a SIGTERM cleans up like Ctrl-C does
    try:
        run_demo(args)
    except DemoError as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ndemo interrupted; child processes stopped", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
