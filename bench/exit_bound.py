"""R4: what the exit and SIGTERM flush add, healthy and with the spool failing — `python -m bench.exit_bound`.

A program makes 500 spans, prints `ready`, then either exits (`exit`) or waits to be sent SIGTERM (`sigterm`). The
time measured is from `ready` (or from sending SIGTERM) to the process being gone, bare and under `obsdash wrap`
with: a healthy spool; the spool unwritable (replaced by a regular file before the spans, so every write fails
with ENOTDIR); every segment write hanging (fault point `spool_stall`). Runs are interleaved, one of each case per
round, and the table gives medians and the time added over bare (the bound: ≤ 2 s, quality.md R4; the exit budget
is OBSDASH_EXIT_TIMEOUT_S = 1.5 s). The test suite only checks that the process ends (tests/reliability/test_exit.py).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench._common import markdown_table, median, ms

PROGRAM = (
    "import os, shutil, sys, time\n"
    "from opentelemetry import trace\n"
    "if sys.argv[1] == 'unwritable' and os.environ.get('OBSDASH_DIR'):\n"
    "    spool = os.environ['OBSDASH_DIR'] + '/spool'\n"
    "    shutil.rmtree(spool, ignore_errors=True); open(spool, 'w').close()\n"
    "tracer = trace.get_tracer('exit-bench')\n"
    "for i in range(500):\n"
    "    with tracer.start_as_current_span('work', attributes={'i': i}): pass\n"
    "print('ready', flush=True)\n"
    "if sys.argv[2] == 'sigterm':\n"
    "    time.sleep(60)\n"
)
SPOOLS = ("healthy", "unwritable", "stall")
BOUND_S = 2.0


def _env(spool: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OBSDASH_")}
    if spool == "stall":
        env["OBSDASH_FAULTS"] = "spool_stall"
    return env


def time_one(spool: str, how: str, wrap_dir: Path | None) -> float:
    """Seconds from `ready` (exit) or from SIGTERM (sigterm) to the process being reaped."""
    command = [sys.executable, "-c", PROGRAM, spool, how]
    if wrap_dir is not None:
        shutil.rmtree(wrap_dir, ignore_errors=True)
        command = [sys.executable, "-m", "obsdash", "wrap", "--data-dir", str(wrap_dir), "--", *command]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=_env(spool))
    assert proc.stdout is not None
    if proc.stdout.readline() != b"ready\n":
        raise RuntimeError(f"{spool}/{how}: no ready line")
    started = time.perf_counter()
    if how == "sigterm":
        proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    return time.perf_counter() - started


def measure(runs: int) -> list[list[str]]:
    """Interleaved rounds; one table row per (how, spool)."""
    cases = [(how, spool) for how in ("exit", "sigterm") for spool in SPOOLS]
    bare: dict[str, list[float]] = {"exit": [], "sigterm": []}
    wrapped: dict[tuple[str, str], list[float]] = {case: [] for case in cases}
    with tempfile.TemporaryDirectory(prefix="obsdash-exit-bench-") as tmp:
        data = Path(tmp) / "data"
        for _ in range(runs):
            for how in ("exit", "sigterm"):
                bare[how].append(time_one("healthy", how, None))
            for how, spool in cases:
                wrapped[(how, spool)].append(time_one(spool, how, data))
    rows = []
    for how, spool in cases:
        added = median(wrapped[(how, spool)]) - median(bare[how])
        rows.append(
            [
                f"R4 {how}, spool {spool}",
                ms(median(bare[how])),
                ms(median(wrapped[(how, spool)])),
                ms(added),
                ms(max(wrapped[(how, spool)]) - median(bare[how])),
                "yes" if added <= BOUND_S else "NO",
            ]
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="interleaved rounds (default 7)")
    args = parser.parse_args()
    rows = measure(args.runs)
    header = ["case", "bare ms", "wrapped ms", "added ms (median)", "added ms (worst)", f"≤ {BOUND_S:g} s"]
    print(f"load average {os.getloadavg()[0]:.1f}, {args.runs} interleaved runs, medians\n")
    print(markdown_table(header, rows))


if __name__ == "__main__":
    main()
