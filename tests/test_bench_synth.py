"""The benchmark's synthetic store is a correct obsdash store: consistent traces, errors, logs, metrics, runs.

Only correctness: how fast the dashboard reads it is measured by `python -m bench.dashboard`, never asserted here.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bench.synth import ROUTES, Plan, build
from obsdash.datadir import DataDir
from obsdash.hub.client import Store, open_store
from obsdash.store import rollup
from obsdash.store.queries.overview import overview, route_stats
from obsdash.store.queries.window import window_named

END = datetime(2026, 3, 1, 12, 0, 0)
SPANS = 2000


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Any:
    data_dir: Path = tmp_path_factory.mktemp("synth") / ".obsdash"
    built = build(data_dir, Plan(SPANS, hours=2, end=END, run_hours=0.5))
    assert SPANS - 6 < built.spans <= SPANS  # whole traces only: at most one trace short
    opened = open_store(DataDir(data_dir.resolve()))
    yield opened
    opened.close()


def one(store: Store, sql: str) -> Any:
    return store.query(sql).rows[0][0]


def test_every_span_belongs_to_a_consistent_trace(store: Store) -> None:
    assert one(store, "SELECT count(*) FROM spans") > SPANS - 6
    orphans = """SELECT count(*) FROM spans c LEFT JOIN spans p ON p.trace_id = c.trace_id AND p.span_id = c.parent_span_id
                 WHERE c.parent_span_id IS NOT NULL AND p.span_id IS NULL"""
    assert one(store, orphans) == 0
    # one root per trace, the SERVER span with no parent, and children inside their parent's time
    assert one(store, "SELECT count(DISTINCT trace_id) = count(*) FILTER (WHERE is_root) FROM spans")
    assert one(store, "SELECT bool_and(parent_span_id IS NULL AND kind = 'SERVER') FROM spans WHERE is_root")
    assert one(store, "SELECT count(*) FROM spans WHERE NOT is_root AND kind <> 'CLIENT'") == 0
    outside = """SELECT count(*) FROM spans c JOIN spans p ON p.trace_id = c.trace_id AND p.span_id = c.parent_span_id
                 WHERE c.start_time < p.start_time OR c.end_time > p.end_time"""
    assert one(store, outside) == 0
    spans_per_trace = store.query(
        "SELECT min(n), max(n) FROM (SELECT count(*) AS n FROM spans GROUP BY trace_id)"
    )
    assert spans_per_trace.rows[0] == (2, 6)
    ids = store.query("SELECT trace_id, span_id, parent_span_id FROM spans", max_rows=10_000).rows
    assert all(re.fullmatch(r"[0-9a-f]{32}", t) and re.fullmatch(r"[0-9a-f]{16}", s) for t, s, _ in ids)
    assert len({(t, s) for t, s, _ in ids}) == len(ids)


def test_spans_are_spread_over_the_window_in_time_order(store: Store) -> None:
    first, last = store.query("SELECT min(start_time), max(end_time) FROM spans").rows[0]
    assert END - timedelta(hours=2) <= first < END - timedelta(hours=1, minutes=59)
    assert END - timedelta(minutes=1) < last <= END
    # appended as they end, like the hub's ingest: zonemaps on the time columns rely on it
    inversions = "SELECT count(*) FROM (SELECT end_time < lag(end_time) OVER (ORDER BY rowid) AS back FROM spans) WHERE back"
    assert one(store, inversions) == 0


def test_failed_requests_have_their_exceptions_in_the_errors_view(store: Store) -> None:
    rate = one(store, "SELECT avg(CAST(status_code = 'ERROR' AS DOUBLE)) FROM spans WHERE is_root")
    assert 0.02 < rate < 0.07
    raised = one(
        store,
        "SELECT count(DISTINCT trace_id) FROM span_events WHERE exception_type IS NOT NULL",
    )
    assert raised > 0
    # built like ingest would have: every exception record of span_events and logs in `exceptions` too
    records = one(
        store,
        "SELECT (SELECT count(*) FROM span_events WHERE exception_type IS NOT NULL) "
        "+ (SELECT count(*) FROM logs WHERE exception_type IS NOT NULL)",
    )
    assert one(store, "SELECT count(*) FROM exceptions") == records > raised
    # span events on the request and its failing child plus the framework's log: one error each
    assert one(store, "SELECT count(*) FROM errors") == raised
    errors = store.query("SELECT DISTINCT exception_type, location, route FROM errors").rows
    assert ("ValueError", "sample_app/app.py:checkout", "/checkout") in errors
    assert one(store, "SELECT count(*) FROM errors WHERE route IS NULL OR location IS NULL") == 0


def test_logs_metrics_and_runs_look_like_the_sample_apps(store: Store) -> None:
    levels = dict(store.query("SELECT severity_text, count(*) FROM logs GROUP BY 1").rows)
    assert {"INFO", "WARN", "ERROR"} <= set(levels)
    assert one(store, "SELECT count(*) FROM logs WHERE trace_id IS NULL") > 0  # the background job's
    assert (
        one(store, "SELECT count(*) FROM logs WHERE exception_type IS NOT NULL AND trace_id IS NOT NULL") > 0
    )
    kinds = dict(store.query("SELECT name, any_value(kind) FROM metric_points GROUP BY 1").rows)
    assert kinds == {
        "http.server.duration": "histogram",
        "http.client.duration": "histogram",
        "http.server.active_requests": "sum",
    }
    requests = one(store, "SELECT count(*) FROM spans WHERE is_root")
    assert one(store, "SELECT sum(count) FROM metric_points WHERE name = 'http.server.duration'") == requests
    runs = store.query("SELECT count(*), count(ended) FROM runs").rows[0]
    assert runs == (4, 3)  # a restart every 30 min; the last run is still going
    assert one(store, "SELECT sum(records) FROM ingested_segments WHERE kind = 'spans'") == one(
        store, "SELECT count(*) FROM spans"
    )


def test_the_overview_shows_the_sample_shops_routes(store: Store) -> None:
    seen = overview(store, window_named("all"), END)
    assert {r.route for r in seen.routes} == {r.route for r in ROUTES}
    assert [s.service for s in seen.services] == ["shop"]
    assert seen.errors and seen.errors_total > 0
    assert seen.requests == one(store, "SELECT count(*) FROM spans WHERE is_root")


def test_the_rollup_holds_every_span(store: Store) -> None:
    """bench.synth inserts spans with SQL, not through ingest: it builds the rollup the overview reads for long
    windows, equal to the spans' own aggregate."""
    columns = rollup.COLUMNS.replace("hist", "CAST(hist AS VARCHAR)")
    every_span = rollup.aggregate(rollup.spans_between("TIMESTAMP '1970-01-01'"))
    differ = f"SELECT {columns} FROM route_minutes EXCEPT ALL SELECT {columns} FROM ({every_span})"
    assert one(store, f"SELECT count(*) FROM ({differ})") == 0
    assert one(store, "SELECT sum(spans) FROM route_minutes") == one(store, "SELECT count(*) FROM spans")
    since = END - timedelta(hours=6)  # read from the rollup: the same counts as the spans give
    assert sum(r.requests for r in route_stats(store, since, END)) == one(
        store, "SELECT count(*) FROM spans WHERE is_root"
    )
