"""P7 — the dashboard in a real terminal: time to the first screen with data, and memory.

`python -m bench.tui_startup --data-dir DIR [--window 1h --window all] [--repeat 5]` starts `obsdash tui` on DIR
in a detached tmux pane (80x24, as a user over ssh would have), reads the pane every 20 ms until the overview
shows its request count, then walks every view with the keys and records the process's resident memory (VmHWM,
the peak). Needs tmux.
Make a large store first with `python -m bench.synth` (see docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench._common import markdown_table, median, ms
from bench.headline import Headline

FIRST_SCREEN = re.compile(r"\d[\d.]*k? requests|\d[\d.]*M requests")
TIMEOUT_S = 60.0
VIEW_KEYS = ["2", "3", "4", "5", "1"]


def _tmux(socket: str, *args: str) -> str:
    return subprocess.run(["tmux", "-L", socket, *args], capture_output=True, text=True, check=False).stdout


def _wait_for(socket: str, pattern: re.Pattern[str], timeout: float = TIMEOUT_S) -> str:
    deadline = time.perf_counter() + timeout
    screen = ""
    while time.perf_counter() < deadline:
        screen = _tmux(socket, "capture-pane", "-p", "-t", "bench")
        if pattern.search(screen):
            return screen
        time.sleep(0.02)
    raise TimeoutError(f"the dashboard did not show {pattern.pattern!r} within {timeout:g} s:\n{screen}")


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _dashboard_pid(socket: str) -> int:
    shell = int(_tmux(socket, "display-message", "-p", "-t", "bench", "#{pane_pid}").strip())
    children = Path(f"/proc/{shell}/task/{shell}/children")
    kids = children.read_text().split() if children.exists() else []
    return int(kids[0]) if kids else shell


def one_run(data_dir: str, window: str) -> tuple[float, float, float]:
    """(seconds to the first screen with data, seconds to walk every view, peak RSS in MB)."""
    # a socket per run: a new session on the socket of a server still exiting from `kill-server` failed now
    # and then, and the run waited 60 s on an empty screen
    socket = f"obsdash-bench-{os.getpid()}-{time.monotonic_ns()}"
    obsdash = shutil.which("obsdash") or f"{sys.prefix}/bin/obsdash"
    command = f"exec {obsdash} tui --data-dir {data_dir} --window {window}"
    started = time.perf_counter()
    started_session = subprocess.run(
        ["tmux", "-L", socket, "new-session", "-d", "-s", "bench", "-x", "80", "-y", "24", command],
        capture_output=True,
        text=True,
        check=False,
    )
    if started_session.returncode != 0:
        raise RuntimeError(f"tmux new-session failed: {started_session.stderr.strip()}")
    try:
        _wait_for(socket, FIRST_SCREEN)
        first = time.perf_counter() - started
        pid = _dashboard_pid(socket)
        walk_start = time.perf_counter()
        for key, marker in zip(VIEW_KEYS, ["request", "error", "level", "metric", "p50"], strict=True):
            _tmux(socket, "send-keys", "-t", "bench", key)
            _wait_for(socket, re.compile(marker))
        walk = time.perf_counter() - walk_start
        time.sleep(1.0)  # a few live refreshes
        rss = _peak_rss_mb(pid)
        _tmux(socket, "send-keys", "-t", "bench", "q")
        time.sleep(0.5)
    finally:
        _tmux(socket, "kill-server")
    return first, walk, rss


FIRST_SCREEN_LIMIT_S = 1.5
RSS_LIMIT_MB = 300.0


def measure(data_dir: str, window: str = "1h", repeat: int = 5) -> tuple[float, float, float]:
    """(median seconds to the first screen, median seconds to walk the views, the largest peak RSS in MB)."""
    runs = [one_run(data_dir, window) for _ in range(repeat)]
    return median([r[0] for r in runs]), median([r[1] for r in runs]), max(r[2] for r in runs)


def headline(measured: tuple[float, float, float], store: str, window: str) -> list[Headline]:
    """P7 rows: time to the first screen and peak memory, against their limits."""
    first, walk, rss = measured
    first_ms, limit_ms = first * 1000, FIRST_SCREEN_LIMIT_S * 1000
    return [
        Headline(
            "P7",
            f"TUI first screen, {store}, {window}",
            first_ms,
            limit_ms,
            "ms",
            "limit",
            first / FIRST_SCREEN_LIMIT_S,
            f"≤ {limit_ms:,.0f} ms",
            first <= FIRST_SCREEN_LIMIT_S,
            f"walk 5 views {walk * 1000:,.0f} ms",
        ),
        Headline(
            "P7",
            f"TUI peak memory, {store}, {window}",
            rss,
            RSS_LIMIT_MB,
            "MB",
            "limit",
            rss / RSS_LIMIT_MB,
            f"≤ {RSS_LIMIT_MB:g} MB",
            rss <= RSS_LIMIT_MB,
            "VmHWM after walking every view",
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    """Run the dashboard `--repeat` times and print a Markdown table of medians."""
    parser = argparse.ArgumentParser(prog="python -m bench.tui_startup", description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", required=True, action="append", help="a store (repeat for several)")
    parser.add_argument(
        "--window",
        action="append",
        help="the window it opens on, repeatable (default 1h; `all` reads the rollup)",
    )
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    if shutil.which("tmux") is None:
        print("bench.tui_startup needs tmux", file=sys.stderr)
        return 2
    rows = []
    for window in args.window or ["1h"]:
        for data_dir in args.data_dir:
            first, walk, rss = measure(data_dir, window, args.repeat)
            rows.append([data_dir, window, ms(first), ms(walk), f"{rss:.0f}"])
    print(markdown_table(["store", "window", "first screen ms", "walk 5 views ms", "peak RSS MB"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
