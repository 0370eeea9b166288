"""R8 — load, the short version for CI: 100 concurrent clients for ~8 s against the sample shop under wrap.

Reuses bench/load.py (the 60 s benchmark, bare against wrapped). Correctness only, no timing: no connection
error, timeout or status the route mix does not plan for (the shop's own /checkout?qty=abc 500 and unknown-item
404 are planned); every answered request has its SERVER span stored with the same method, route and status, or
is counted as dropped; every process wrote its end record; the Overview, refreshed as the TUI does during the
load, returned (a hang guard).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.load import answered, load_run, start_upstream, unplanned

CLIENTS = 100
DURATION_S = 8.0


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    process, url = start_upstream()
    yield url
    process.terminate()
    process.wait(timeout=10)


def test_hundred_clients_nothing_lost_no_error(tmp_path: Path, upstream: str) -> None:
    result = load_run(tmp_path, upstream, CLIENTS, DURATION_S, mode="wrapped + dashboard")
    assert result.tally.sent > CLIENTS  # every client got through several requests
    assert unplanned(result.tally) == Counter(), result.tally.responses
    assert result.status == 0  # gunicorn stopped by SIGTERM as bare does
    assert result.stored is not None and result.drops is not None
    answers = answered(result.tally)
    assert result.stored - answers == Counter()  # no span for a request nobody answered, no duplicate
    assert result.lost == 0, (answers - result.stored, result.drops)
    assert result.stored == answers  # drops are 0 at this load with the default queue
    assert result.unended == 0
    assert result.dashboard_error is None
    assert result.refresh_s, "no Overview refresh completed during the load"
