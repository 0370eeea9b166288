"""The hub (R6 and the one-writer rule): several obsdash processes at once, and kill -9 of the hub's host."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

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


def test_the_dashboard_hosts_the_hub_with_the_smaller_memory_cap(tmp_path: Path) -> None:
    """P7: a dashboard that hosts the hub caps DuckDB at DASHBOARD_MEMORY_LIMIT (its process stays on screen);
    the other commands at MEMORY_LIMIT, for ingest speed. A dashboard that joins another's hub changes nothing."""
    from obsdash.datadir import DataDir
    from obsdash.hub.client import open_store
    from obsdash.store.database import DASHBOARD_MEMORY_LIMIT, MEMORY_LIMIT

    def cap(store: Any) -> str:
        return str(store.query("SELECT current_setting('memory_limit')", sync=False).rows[0][0])

    def mib(limit: str) -> str:  # DuckDB shows '160MB' (10^6 bytes) as '152.5 MiB', cut to a tenth
        return f"{int(limit.removesuffix('MB')) * 10**6 * 10 // 2**20 / 10:.1f} MiB"

    dashboard = open_store(DataDir(tmp_path / "a"), dashboard=True)
    assert dashboard.is_host and cap(dashboard) == mib(DASHBOARD_MEMORY_LIMIT)
    joined = open_store(DataDir(tmp_path / "a"))
    assert not joined.is_host and cap(joined) == mib(DASHBOARD_MEMORY_LIMIT)
    joined.close()
    dashboard.close()
    other = open_store(DataDir(tmp_path / "b"))
    assert other.is_host and cap(other) == mib(MEMORY_LIMIT)
    other.close()
