"""The per-minute rollup (store/rollup.py) answers the overview's long windows with the spans' own figures.

Stores are built by the real hub ingesting real spool segments in several batches (so batches merge into the same
minutes), then the rollup-backed overview is compared with the same queries read from the spans: counts, errors,
first/last times and rates exactly, percentiles within the rollup's bucket error (±4.9 %). Also after retention
cut the store mid-minute, after late spans for old minutes, and after the backfill of a store written before the
rollup existed.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from obsdash.datadir import DataDir
from obsdash.hub.client import Store, open_store
from obsdash.store import rollup
from obsdash.store.queries import overview as ov
from obsdash.store.queries.window import utc_now, window_named
from obsdash.store.schema import SCHEMA_VERSION
from tests.spoolgen import ns, write_records

ROUTES = [("GET", "/items"), ("GET", "/items/<int:item_id>"), ("POST", "/checkout"), ("GET", "/weather")]
TOLERANCE = rollup.MAX_ERROR + 1e-9


def _span(n: int, start: datetime, ms: float, **fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "trace_id": f"{n:032x}",
        "span_id": f"{n:015x}0",
        "parent_span_id": None,
        "name": "GET",
        "kind": "SERVER",
        "start_ns": ns(start),
        "end_ns": ns(start) + int(ms * 1_000_000),
        "status_code": "UNSET",
        "attributes": {},
        "events": [],
        "scope": "test",
        "service_name": "shop",
        "run_id": "rollup-test",
        "pid": 7,
        "resource": {},
    }
    record.update(fields)
    return record


def requests(
    rng: random.Random, first: int, count: int, begin: datetime, end: datetime
) -> list[dict[str, Any]]:
    """`count` traces spread over [begin, end): mostly routed SERVER requests with a CLIENT child, some failing;
    a background job (INTERNAL root), a CONSUMER root, a request of a second service under a remote parent."""
    records = []
    seconds = (end - begin).total_seconds()
    for i in range(count):
        n = first + i
        start = begin + timedelta(seconds=rng.uniform(0, seconds))
        ms = math.exp(rng.uniform(math.log(0.2), math.log(3000)))
        kind = rng.random()
        if kind < 0.05:
            records.append(_span(n, start, ms, name="cleanup_carts", kind="INTERNAL"))
            continue
        if kind < 0.1:
            records.append(_span(n, start, ms, name="orders process", kind="CONSUMER", service_name="worker"))
            continue
        method, route = rng.choice(ROUTES)
        failed = rng.random() < 0.1
        root = _span(
            n,
            start,
            ms,
            name=f"{method} {route}",
            status_code="ERROR" if failed else "UNSET",
            attributes={"http.route": route, "http.request.method": method},
        )
        child = _span(
            n,
            start + timedelta(microseconds=100),
            ms / 2,
            name="SELECT",
            kind="CLIENT",
            parent_span_id=root["span_id"],
        )
        child["span_id"] = f"{n:015x}1"
        records += [root, child]
        if kind < 0.15:  # the stand-in API's server span: a local root under the shop's remote CLIENT span
            upstream = _span(
                n, start, ms / 3, name="GET /forecast", service_name="upstream", parent_remote=True
            )
            upstream.update(span_id=f"{n:015x}2", parent_span_id=child["span_id"])
            upstream["attributes"] = {"http.route": "/forecast"}
            records.append(upstream)
    return records


def ingest(store: Store, records: list[dict[str, Any]], seq: int, batches: int = 3) -> None:
    """Write `records` as spool segments and sync `batches` times, so they arrive in several transactions."""
    spool = store.data_dir.spool
    per = max(1, math.ceil(len(records) / batches))
    for b in range(batches):
        part = records[b * per : (b + 1) * per]
        if part:
            write_records(spool, "spans", part, seq * 1000 + b)
            store.sync()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """Five hours of traffic ending a minute ago, ingested in three batches."""
    opened = open_store(DataDir(tmp_path / "data"))
    now = utc_now()
    ingest(
        opened,
        requests(random.Random(7), 1, 1500, now - timedelta(hours=5), now - timedelta(minutes=1)),
        seq=1,
    )
    yield opened
    opened.close()


def now_of(store: Store) -> datetime:
    end: datetime = store.query("SELECT max(end_time) FROM spans").rows[0][0]
    return end + timedelta(seconds=1)


def both(monkeypatch: pytest.MonkeyPatch, read: Any) -> tuple[Any, Any]:
    """`read()` from the rollup (any window over a minute) and from the spans (none)."""
    default = ov.ROLLUP_AFTER_S
    monkeypatch.setattr(ov, "ROLLUP_AFTER_S", 60)
    from_rollup = read()
    monkeypatch.setattr(ov, "ROLLUP_AFTER_S", 10**9)
    from_spans = read()
    monkeypatch.setattr(ov, "ROLLUP_AFTER_S", default)
    return from_rollup, from_spans


def close(a: float, b: float) -> bool:
    return abs(a - b) <= TOLERANCE * abs(b) + 1e-9


def assert_same_overview(
    store: Store, monkeypatch: pytest.MonkeyPatch, since: datetime, now: datetime
) -> None:
    """Routes, services and the chart from the rollup equal those from the spans (percentiles within ±4.9 %)."""
    rolled, raw = both(monkeypatch, lambda: ov.route_stats(store, since, now))
    assert len(raw) >= 5
    by_key = {(r.service, r.route, r.role): r for r in raw}
    assert {(r.service, r.route, r.role) for r in rolled} == set(by_key)
    for r in rolled:
        exact = by_key[(r.service, r.route, r.role)]
        assert (r.requests, r.errors) == (exact.requests, exact.errors), r.route
        assert r.rate_per_s == pytest.approx(exact.rate_per_s, rel=1e-12)
        for q in ("p50_ms", "p95_ms", "p99_ms"):
            assert close(getattr(r, q), getattr(exact, q)), (r.route, q, getattr(r, q), getattr(exact, q))
    rolled_services, raw_services = both(monkeypatch, lambda: ov.service_stats(store, since, now))
    assert rolled_services == raw_services
    assert {s.service for s in raw_services} == {"shop", "worker", "upstream"}
    buckets = ov.minute_buckets(since, now)
    for requests_only in (True, False):
        rolled_series, raw_series = both(
            monkeypatch, lambda only=requests_only: ov.request_series(store, buckets, only)
        )
        assert rolled_series.requests == raw_series.requests
        assert rolled_series.errors == raw_series.errors
        assert sum(raw_series.requests) > 0
        for x, y in zip(rolled_series.p95_ms, raw_series.p95_ms, strict=True):
            assert close(x, y), (x, y)


def rollup_rows(store: Store) -> list[tuple[Any, ...]]:
    sql = f"SELECT {rollup.COLUMNS.replace('hist', 'CAST(hist AS VARCHAR)')} FROM route_minutes"
    return sorted(map(tuple, store.query(sql, max_rows=100_000).rows), key=repr)


def aggregated_from_spans(store: Store) -> list[tuple[Any, ...]]:
    columns = rollup.COLUMNS.replace("hist", "CAST(hist AS VARCHAR)")
    every_span = rollup.aggregate(rollup.spans_between("TIMESTAMP '1970-01-01'"))
    sql = f"SELECT {columns} FROM ({every_span})"
    return sorted(map(tuple, store.query(sql, max_rows=100_000).rows), key=repr)


def test_the_all_window_from_the_rollup_equals_the_spans(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = now_of(store)
    since = ov.first_root_time(store)
    assert since == store.query("SELECT min(start_time) FROM spans WHERE is_root").rows[0][0]
    assert ov.from_rollup(since, now)
    assert_same_overview(store, monkeypatch, since, now)
    # a window starting mid-minute: its first part-minute comes from the spans
    assert_same_overview(store, monkeypatch, since + timedelta(minutes=17, seconds=23.4567), now)
    # one row per key and minute, however many batches brought its spans
    assert rollup_rows(store) == aggregated_from_spans(store)
    overview = ov.overview(store, window_named("all"), now)
    assert overview.approximate
    assert overview.series.buckets.width_s % 60 == 0
    assert not ov.overview(store, window_named("1h"), now).approximate


def test_late_spans_for_old_minutes_are_merged(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    now = now_of(store)
    old = now - timedelta(hours=4)
    late = requests(random.Random(8), 100_000, 300, old - timedelta(minutes=30), old)
    ingest(store, late, seq=2, batches=4)
    assert rollup_rows(store) == aggregated_from_spans(store)
    keys = store.query(
        "SELECT count(*) = count(DISTINCT (minute, service_name, is_root, route, kind)) FROM route_minutes"
    ).rows[0][0]
    assert keys
    assert_same_overview(store, monkeypatch, ov.first_root_time(store) or now, now)


def test_retention_prunes_the_rollup_with_its_spans(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    before = store.query("SELECT count(*) FROM spans").rows[0][0]
    store.set_retention({"max_age_s": 3 * 3600 + 17.5})  # the cut falls inside a minute
    left = store.query("SELECT count(*), min(start_time) FROM spans").rows[0]
    assert 0 < left[0] < before
    assert left[1].second != 0 or left[1].microsecond != 0
    assert rollup_rows(store) == aggregated_from_spans(store)
    now = now_of(store)
    since = ov.first_root_time(store)
    assert since is not None and since >= utc_now() - timedelta(hours=3, seconds=18)
    assert_same_overview(store, monkeypatch, since, now)


def test_a_store_from_before_the_rollup_is_backfilled_at_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = DataDir(tmp_path / "data")
    opened = open_store(data_dir)
    now = utc_now()
    ingest(opened, requests(random.Random(9), 1, 600, now - timedelta(hours=3), now), seq=1)
    expected = aggregated_from_spans(opened)
    opened.close()
    with duckdb.connect(str(data_dir.database)) as conn:  # as the previous obsdash left it
        conn.execute("DROP TABLE route_minutes")
        conn.execute("DELETE FROM obsdash_meta WHERE key = 'rollup_version'")
        conn.execute("UPDATE obsdash_meta SET value = '1' WHERE key = 'schema_version'")
    reopened = open_store(data_dir)
    try:
        assert rollup_rows(reopened) == expected
        meta = dict(reopened.query("SELECT key, value FROM obsdash_meta").rows)
        assert meta["rollup_version"] == rollup.VERSION
        assert meta["schema_version"] == str(SCHEMA_VERSION)
        assert_same_overview(reopened, monkeypatch, ov.first_root_time(reopened) or now, now_of(reopened))
    finally:
        reopened.close()


def test_quantiles_of_a_histogram_are_within_the_bucket_error() -> None:
    rng = random.Random(3)
    for size in (1, 2, 3, 10, 1000):
        values = sorted(math.exp(rng.uniform(math.log(0.01), math.log(60_000))) for _ in range(size))
        counts: dict[int, int] = {}
        for v in values:
            b = 1 + math.floor(math.log(v / rollup.BASE_MS) / math.log(rollup.RATIO))
            counts[b] = counts.get(b, 0) + 1
        buckets = sorted(counts)
        got = rollup.quantiles(buckets, [counts[b] for b in buckets], (0.0, 0.5, 0.95, 0.99, 1.0))
        for q, value in zip((0.0, 0.5, 0.95, 0.99, 1.0), got, strict=True):
            h = (size - 1) * q
            exact = values[math.floor(h)] + (h - math.floor(h)) * (
                values[math.ceil(h)] - values[math.floor(h)]
            )
            assert close(value, exact), (size, q, value, exact)
    assert rollup.quantiles([0], [3], (0.5,)) == [0.0]  # sub-microsecond (or negative) durations
    assert math.isnan(rollup.quantiles([], [], (0.5,))[0])


def test_a_span_in_a_buckets_last_millisecond_stays_in_it() -> None:
    import duckdb

    from obsdash.store.queries.window import Buckets

    buckets = Buckets(datetime(2026, 1, 1), 60.0, 2)
    index = buckets.sql_index("t")
    rows = (
        duckdb.connect()
        .execute(
            f"SELECT {index} FROM (VALUES (TIMESTAMP '2026-01-01 00:00:59.9996'), (TIMESTAMP '2026-01-01 00:01:00')) v(t)"
        )
        .fetchall()
    )
    assert rows == [(0,), (1,)]  # as date_trunc('minute', t) puts them (the rollup's minutes)
