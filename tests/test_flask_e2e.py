"""A Flask app with SQLite and requests under wrap: requests, errors, logs and nesting all land in the store."""

from __future__ import annotations

import concurrent.futures
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import requests

from tests.apps import upstream
from tests.conftest import (
    APPS,
    assert_no_internal_errors,
    child_env,
    free_port,
    query,
    scalar,
    wait_for_port,
    wrapped,
)

MIX = ["/items"] * 6 + ["/checkout?qty=2"] * 3 + ["/checkout?qty=abc"] * 4 + ["/weather"] * 3


@pytest.fixture(scope="module")
def shop_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Counter[str]]:
    """Serve the shop with Flask's dev server under wrap, send the mix, stop it with SIGTERM."""
    data_dir = tmp_path_factory.mktemp("flask") / "data"
    server, upstream_url = upstream.start()
    port = free_port()
    app = subprocess.Popen(
        wrapped(
            data_dir, sys.executable, str(APPS / "flask_shop.py"), str(port), upstream_url, service="shop"
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=child_env(),
    )
    try:
        wait_for_port(port)
        statuses: Counter[str] = Counter()
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            for path, answer in zip(
                MIX,
                pool.map(lambda p: requests.get(f"http://127.0.0.1:{port}{p}", timeout=10), MIX),
                strict=True,
            ):
                statuses[f"{path.split('?')[0]} {answer.status_code}"] += 1
    finally:
        app.send_signal(signal.SIGTERM)
        output, _ = app.communicate(timeout=15)
        server.shutdown()
    assert_no_internal_errors(output)
    return data_dir, statuses


def test_exactly_one_root_span_per_request(shop_run: tuple[Path, Counter[str]]) -> None:
    data_dir, statuses = shop_run
    assert statuses == Counter({"/items 200": 6, "/checkout 200": 3, "/checkout 500": 4, "/weather 502": 3})
    rows = query(
        data_dir, "SELECT http_route, http_status_code, count(*) AS n FROM spans WHERE is_root GROUP BY ALL"
    )
    stored = {(r["http_route"], r["http_status_code"]): r["n"] for r in rows}
    assert stored == {("/items", 200): 6, ("/checkout", 200): 3, ("/checkout", 500): 4, ("/weather", 502): 3}
    assert scalar(data_dir, "SELECT count(DISTINCT service_name) FROM spans") == 1


def test_raising_route_is_one_error_group(shop_run: tuple[Path, Counter[str]]) -> None:
    data_dir, _ = shop_run
    rows = query(
        data_dir,
        "SELECT fingerprint, exception_type, route, location, count(*) AS n FROM errors GROUP BY ALL",
    )
    assert len(rows) == 1
    assert rows[0]["exception_type"] == "ValueError"
    assert rows[0]["route"] == "/checkout"
    assert rows[0]["location"].endswith("flask_shop.py:checkout")
    assert rows[0]["n"] == 4


def test_each_requests_logs_carry_its_trace(shop_run: tuple[Path, Counter[str]]) -> None:
    data_dir, _ = shop_run
    rows = query(
        data_dir,
        "SELECT s.http_route, count(l.body) AS logs FROM spans s LEFT JOIN logs l "
        "ON l.trace_id = s.trace_id AND l.scope = 'shop' WHERE s.is_root GROUP BY s.trace_id, s.http_route",
    )
    assert len(rows) == len(MIX)
    assert all(r["logs"] == 1 for r in rows), rows


def test_sqlite_and_http_spans_nest_under_their_request(shop_run: tuple[Path, Counter[str]]) -> None:
    data_dir, _ = shop_run
    children = query(
        data_dir,
        "SELECT r.http_route, c.db_system, c.kind, c.http_status_code, c.start_time >= r.start_time "
        "AND c.end_time <= r.end_time AS inside FROM spans c JOIN spans r "
        "ON c.trace_id = r.trace_id AND c.parent_span_id = r.span_id AND r.is_root WHERE NOT c.is_root",
    )
    sqlite = [c for c in children if c["db_system"] == "sqlite"]
    http = [c for c in children if c["kind"] == "CLIENT" and c["db_system"] is None]
    assert len(sqlite) == 6 * 3 and {c["http_route"] for c in sqlite} == {"/items"}
    assert len(http) == 3 and {(c["http_route"], c["http_status_code"]) for c in http} == {("/weather", 429)}
    assert all(c["inside"] for c in children)


def test_instrumentation_reported(shop_run: tuple[Path, Counter[str]]) -> None:
    data_dir, _ = shop_run
    status = scalar(data_dir, "SELECT details->>'$.instrumentation' FROM run_events WHERE event = 'end'")
    for name in ("flask", "requests", "sqlite3"):
        assert f'"{name}":"instrumented"' in status
