"""Forking servers under wrap (R5): every worker's telemetry arrives, tagged with its own pid."""

from __future__ import annotations

import concurrent.futures
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import requests

from tests.conftest import (
    APPS,
    assert_no_internal_errors,
    child_env,
    free_port,
    query,
    wait_for_port,
    wrapped,
)


def test_gunicorn_two_workers_both_stored(data_dir: Path) -> None:
    gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent))
    assert gunicorn, "gunicorn is part of the dev install"
    port = free_port()
    cmd = wrapped(
        data_dir, gunicorn, "-w", "2", "-b", f"127.0.0.1:{port}", "--chdir", str(APPS), "flask_shop:app"
    )
    server = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=child_env()
    )
    try:
        wait_for_port(port)
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            answers = list(
                pool.map(lambda _: requests.get(f"http://127.0.0.1:{port}/slow", timeout=10), range(60))
            )
    finally:
        server.send_signal(signal.SIGTERM)
        output, _ = server.communicate(timeout=30)
    assert server.returncode == 0, output
    assert_no_internal_errors(output)
    assert all(a.status_code == 200 for a in answers)
    rows = query(data_dir, "SELECT pid, count(*) AS n FROM spans WHERE http_route = '/slow' GROUP BY pid")
    assert sum(r["n"] for r in rows) == 60
    assert len(rows) == 2, rows
    starts = query(data_dir, "SELECT count(DISTINCT pid) AS n FROM run_events WHERE event = 'start'")
    assert starts[0]["n"] == 3  # the arbiter and two workers
