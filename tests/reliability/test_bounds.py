"""R3: bounded. A stalled spool writer (fault point `spool_stall`, a hung disk) must not make the app grow: what
does not fit in OBSDASH_MAX_QUEUED is dropped, counted by reason, and the count reaches the store while the app
still runs (its `stats` record), in the health query and in `obsdash doctor`, and again in its end record.

The app (tests/apps/span_burst.py) makes 52k spans of ~1 kB against a queue of 1000 and reads its own VmRSS before
and after the last 50k. Unbounded, those spans would hold ~48 MB; the assertion allows 16 MB of growth. Speed under
a stalled writer is measured, not asserted: bench/bounds.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from obsdash.datadir import DataDir
from obsdash.hub.client import Store, open_store
from obsdash.store.queries.health import Health, health
from tests.conftest import APPS, child_env, obsdash_cmd, run, wrapped

SPANS = 50_000
MAX_QUEUED = 1000
RSS_GROWTH_LIMIT_KB = 16 * 1024
EPOCH = datetime(1970, 1, 1)


def wait_for_drops(store: Store, timeout_s: float = 30) -> Health:
    """Poll the health query (as the Overview does) until the app's stats record reports queue_full drops."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = health(store, EPOCH)
        if found.dropped.get("queue_full"):
            return found
        time.sleep(0.2)
    raise AssertionError(f"no queue_full drops reached the store in {timeout_s} s: {health(store, EPOCH)}")


def doctor(data_dir: Path) -> subprocess.CompletedProcess[str]:
    return run(obsdash_cmd("doctor", "--data-dir", str(data_dir)))


def test_stalled_writer_keeps_memory_flat_and_counts_every_drop(data_dir: Path) -> None:
    env = child_env(OBSDASH_FAULTS="spool_stall", OBSDASH_MAX_QUEUED=str(MAX_QUEUED))
    app = subprocess.Popen(
        wrapped(data_dir, sys.executable, str(APPS / "span_burst.py"), str(SPANS)),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    store = open_store(DataDir(data_dir.resolve()))
    try:
        assert app.stdout is not None and app.stdin is not None
        report = json.loads(app.stdout.readline() or "{}")
        assert report, app.stderr.read() if app.stderr else ""
        created = report["created"]
        growth_kb = report["rss_after_kb"] - report["rss_before_kb"]
        assert growth_kb < RSS_GROWTH_LIMIT_KB, report

        # Live: the app has not exited, so only its stats record can carry the count.
        live = wait_for_drops(store)
        live_dropped = live.dropped["queue_full"]
        assert created - 2 * MAX_QUEUED <= live_dropped < created  # at most the queue + one batch got through
        during = doctor(data_dir)
        assert during.returncode == 1, during.stdout + during.stderr
        assert f"{live_dropped} queue_full" in during.stdout
        assert "1 without an end record" in during.stdout
        assert f"running, pid {os.getpid()}" in during.stdout

        app.stdin.write("\n")
        app.stdin.flush()
        assert app.wait(timeout=30) == 0, app.stderr.read() if app.stderr else ""
        assert "obsdash-internal-error" not in (app.stderr.read() if app.stderr else "")

        # Conservation: every span created is either stored or counted as dropped, once.
        stored = store.query("SELECT count(*) FROM spans WHERE scope = 'tests.span_burst'").rows[0][0]
        end = store.query("SELECT details->>'$.dropped.queue_full' FROM run_events WHERE event = 'end'").rows
        assert [int(end[0][0])] == [live_dropped]
        assert stored + live_dropped == created
        assert health(store, EPOCH).dropped == {"queue_full": live_dropped}  # the end record, not summed
    finally:
        app.kill()
        app.wait()
        store.close()
    after = doctor(data_dir)
    assert after.returncode == 1, after.stdout + after.stderr
    assert f"{live_dropped} queue_full" in after.stdout
    assert "without an end record" not in after.stdout
