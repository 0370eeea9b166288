"""The hub (R6 and the one-writer rule): several obsdash processes at once, and kill -9 of the hub's host."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import child_env, obsdash_cmd, query, run, scalar
from tests.spoolgen import write_segments

HOST = (
    "import sys, time\n"
    "from obsdash.datadir import resolve\n"
    "from obsdash.hub.client import open_store\n"
    "store = open_store(resolve(sys.argv[1]))\n"
    "print('hosting' if store.is_host else 'client', flush=True)\n"
    "time.sleep(120)\n"
)


def start_host(data_dir: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOST, str(data_dir)], stdout=subprocess.PIPE, text=True, env=child_env()
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == "hosting\n"
    return proc


def test_second_process_queries_through_the_hub(data_dir: Path) -> None:
    host = start_host(data_dir)
    try:
        written = write_segments(data_dir / "spool", segments=3, spans_per_segment=10)
        assert scalar(data_dir, "SELECT count(*) FROM spans") == written
        second = run(obsdash_cmd("ingest", "--data-dir", str(data_dir)))
        assert second.returncode == 0, second.stderr
    finally:
        host.kill()
        host.wait()


def test_kill_9_of_hub_mid_ingest_loses_nothing_and_duplicates_nothing(data_dir: Path) -> None:
    rng = random.Random(7)
    total = 0
    for _ in range(3):
        total += write_segments(data_dir / "spool", segments=40, spans_per_segment=500)
        host = subprocess.Popen(
            [sys.executable, "-c", HOST, str(data_dir)], stdout=subprocess.PIPE, text=True, env=child_env()
        )
        time.sleep(rng.uniform(0.3, 1.2))  # somewhere in opening, catching up, or idle
        host.send_signal(signal.SIGKILL)
        host.wait()
    rows = query(data_dir, "SELECT count(*) AS n, count(DISTINCT span_id) AS d FROM spans")
    assert rows == [{"n": total, "d": total}]
    assert scalar(data_dir, "SELECT count(*) FROM ingested_segments") == 120
    assert not list((data_dir / "spool").glob("*.jsonl"))


def test_host_exit_hands_over_to_next_reader(data_dir: Path) -> None:
    host = start_host(data_dir)
    write_segments(data_dir / "spool", segments=1, spans_per_segment=5)
    assert scalar(data_dir, "SELECT count(*) FROM spans") == 5
    host.terminate()
    host.wait()
    write_segments(data_dir / "spool", segments=1, spans_per_segment=5)
    assert scalar(data_dir, "SELECT count(*) FROM spans") == 10  # a new host took over
