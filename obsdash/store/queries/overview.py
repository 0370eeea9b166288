"""The first screen's figures: per-route rates and latency percentiles, charts over the window, services, and
the window's LLM spend when the app makes LLM calls.

Requests are root server spans (or consumer spans). Other root spans — a background job, a database call made
outside any request — are listed after them as background work, and count as requests only in an app that
serves none (a script). Rates divide by the time the window actually saw traffic, so a just-started app does
not look idle in a 24h window. Every query reads only the window (figures in docs/benchmarks.md).

Windows longer than `ROLLUP_AFTER_S` (6h, 24h, all) are read from the per-minute rollup (store/rollup.py) for
their whole minutes and from the spans for the part-minute at their start: the same counts, errors, first and
last times as the spans give, and percentiles within ±5 % (the rollup's duration buckets). Their charts use
buckets of whole minutes starting on a minute. `all` at 10M spans: route stats 239 -> 28 ms, series 137 -> 16 ms,
services 70 -> 8 ms (bench.dashboard, 10M / 24 h).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from obsdash.store import rollup
from obsdash.store.queries import Reader, fetch
from obsdash.store.queries.errors import ErrorGroup, error_groups
from obsdash.store.queries.health import Health, health
from obsdash.store.queries.llm import BurnRate, SpendGroup, spend_summary
from obsdash.store.queries.window import SERIES_BUCKETS, Buckets, Window

MAX_ROUTES = 100
ROLLUP_AFTER_S = 2 * 3600
"""Longer windows are read from the rollup. 1h stays exact: 105 ms for a whole refresh at 10M spans / 24 h."""
PERCENTILES = (0.5, 0.95, 0.99)


@dataclass(frozen=True)
class RouteStats:
    """One route (or root span name) of one service over the window."""

    service: str
    route: str
    role: str
    """`request` for server/consumer roots, else the root span's kind (`internal`, `client`, ...)."""
    requests: int
    errors: int
    rate_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float

    @property
    def error_rate(self) -> float:
        """Errors per request, 0..1."""
        return self.errors / self.requests if self.requests else 0.0


@dataclass(frozen=True)
class ServiceStats:
    """One service: its spans, requests, errors and when it was last heard from (no process count: a distinct
    count of pids cost 37 ms of this query's 96 at 10M spans)."""

    service: str
    spans: int
    requests: int
    errors: int
    last_seen: datetime | None


@dataclass(frozen=True)
class Series:
    """Requests, errors and p95 latency per bucket, for the overview charts."""

    buckets: Buckets
    requests: list[float] = field(default_factory=list)
    errors: list[float] = field(default_factory=list)
    p95_ms: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class Overview:
    """Everything the overview screen shows."""

    routes: list[RouteStats]
    services: list[ServiceStats]
    series: Series
    errors: list[ErrorGroup]
    health: Health
    llm: SpendGroup
    """LLM calls in the window (the spend line; none when the app makes no LLM calls)."""
    llm_burn: BurnRate
    approximate: bool = False
    """Percentiles read from the rollup: within ±5 % (`rollup.MAX_ERROR`) of the exact ones."""

    @property
    def request_routes(self) -> list[RouteStats]:
        """The routes that serve requests (all roots when the app serves none)."""
        served = [r for r in self.routes if r.role == "request"]
        return served or self.routes

    @property
    def requests(self) -> int:
        """All requests in the window."""
        return sum(r.requests for r in self.request_routes)

    @property
    def errors_total(self) -> int:
        """All failed requests in the window."""
        return sum(r.errors for r in self.request_routes)


ROLE = "CASE WHEN kind IN ('SERVER', 'CONSUMER') THEN 'request' ELSE lower(kind) END"
ROUTES_SQL = f"""
SELECT service_name AS service, coalesce(http_route, name) AS route, {ROLE} AS role, count(*) AS requests,
       count(*) FILTER (WHERE status_code = 'ERROR') AS errors,
       quantile_cont(duration_ms, [0.5, 0.95, 0.99]) AS q,
       min(min(start_time)) OVER () AS first_seen
FROM spans WHERE is_root AND start_time >= ?
GROUP BY 1, 2, 3 ORDER BY role = 'request' DESC, requests DESC, route LIMIT ?
"""

SERVICES_SQL = """
SELECT service_name AS service, count(*) AS spans, count(*) FILTER (WHERE is_root) AS requests,
       count(*) FILTER (WHERE is_root AND status_code = 'ERROR') AS errors,
       max(end_time) AS last_seen
FROM spans WHERE start_time >= ? GROUP BY 1 ORDER BY 1
"""


# The rollup's rows for the window starting at $1: its whole minutes (from $2, the first whole minute) from the
# table, the part-minute before them aggregated from the spans the same way.
MINUTES_SQL = f"""
SELECT {rollup.COLUMNS} FROM route_minutes WHERE minute >= $2
UNION ALL
SELECT {rollup.COLUMNS} FROM ({rollup.aggregate(rollup.spans_between("$1", "$2"))})
"""
ROLLUP_ROUTES_SQL = f"""
WITH m AS ({MINUTES_SQL}),
k AS (SELECT service_name AS service, route, {ROLE} AS role, spans, errors, first_start, hist FROM m WHERE is_root),
totals AS (
    SELECT service, route, role, sum(spans) AS requests, sum(errors) AS errors,
           min(min(first_start)) OVER () AS first_seen
    FROM k GROUP BY 1, 2, 3 ORDER BY role = 'request' DESC, requests DESC, route LIMIT $3
),
h AS (
    SELECT service, route, role, b, sum(n) AS n
    FROM (SELECT service, route, role, unnest(map_keys(hist)) AS b, unnest(map_values(hist)) AS n FROM k)
    GROUP BY 1, 2, 3, 4
),
hl AS (SELECT service, route, role, list(b ORDER BY b) AS bs, list(n ORDER BY b) AS ns FROM h GROUP BY 1, 2, 3)
SELECT t.*, hl.bs, hl.ns FROM totals t LEFT JOIN hl
    ON hl.service IS NOT DISTINCT FROM t.service AND hl.route IS NOT DISTINCT FROM t.route
   AND hl.role IS NOT DISTINCT FROM t.role
ORDER BY t.role = 'request' DESC, t.requests DESC, t.route
"""
ROLLUP_SERVICES_SQL = f"""
SELECT service_name AS service, sum(spans) AS spans, coalesce(sum(spans) FILTER (WHERE is_root), 0) AS requests,
       coalesce(sum(errors) FILTER (WHERE is_root), 0) AS errors, max(last_end) AS last_seen
FROM ({MINUTES_SQL}) GROUP BY 1 ORDER BY 1
"""


def from_rollup(since: datetime, now: datetime) -> bool:
    """Whether the window from `since` to `now` is read from the rollup."""
    return (now - since).total_seconds() > ROLLUP_AFTER_S


def route_stats(reader: Reader, since: datetime, now: datetime) -> list[RouteStats]:
    """Per (service, route): count, errors, rate while traffic was seen, and p50/p95/p99 in ms (within ±5 % when
    the window is read from the rollup)."""
    if from_rollup(since, now):
        return _rollup_route_stats(reader, since, now)
    rows = fetch(reader, ROUTES_SQL, [since, MAX_ROUTES], max_rows=MAX_ROUTES)
    return [_route(row, now, [float(q) for q in row["q"]]) for row in rows]


def _rollup_route_stats(reader: Reader, since: datetime, now: datetime) -> list[RouteStats]:
    params = [since, rollup.ceil_minute(since), MAX_ROUTES]
    rows = fetch(reader, ROLLUP_ROUTES_SQL, params, max_rows=MAX_ROUTES)
    return [_route(row, now, rollup.quantiles(row["bs"] or [], row["ns"] or [], PERCENTILES)) for row in rows]


def _route(row: dict[str, Any], now: datetime, percentiles: Sequence[float]) -> RouteStats:
    p50, p95, p99 = percentiles
    return RouteStats(
        service=row["service"] or "?",
        route=row["route"] or "?",
        role=row["role"],
        requests=int(row["requests"]),
        errors=int(row["errors"]),
        rate_per_s=row["requests"] / max((now - row["first_seen"]).total_seconds(), 1.0),
        p50_ms=p50,
        p95_ms=p95,
        p99_ms=p99,
    )


def service_stats(reader: Reader, since: datetime, now: datetime | None = None) -> list[ServiceStats]:
    """Per service: spans, requests, errors and the last span's end (from the rollup when `now` is given and
    the window is long: the same figures)."""
    if now is not None and from_rollup(since, now):
        rows = fetch(reader, ROLLUP_SERVICES_SQL, [since, rollup.ceil_minute(since)])
    else:
        rows = fetch(reader, SERVICES_SQL, [since])
    return [
        ServiceStats(
            row["service"] or "?",
            int(row["spans"]),
            int(row["requests"]),
            int(row["errors"]),
            row["last_seen"],
        )
        for row in rows
    ]


def minute_buckets(since: datetime, now: datetime, count: int = SERIES_BUCKETS) -> Buckets:
    """`count` chart buckets of whole minutes from `since`'s minute to past `now`: each minute of the rollup falls
    in one bucket, so the chart can be read from it."""
    start = rollup.floor_minute(since)
    minutes = max(math.ceil((now - start).total_seconds() / 60 / count), 1)
    return Buckets(start, minutes * 60.0, count)


def request_series(reader: Reader, buckets: Buckets, requests_only: bool = True) -> Series:
    """Requests (or, with requests_only=False, all root spans), errors and p95 per bucket. From the rollup when
    the buckets are whole minutes from a minute's start (`minute_buckets`) and cover more than `ROLLUP_AFTER_S`:
    the same counts, p95 within ±5 %."""
    aligned = buckets.start == rollup.floor_minute(buckets.start) and buckets.width_s % 60 == 0
    if aligned and buckets.width_s * buckets.count > ROLLUP_AFTER_S:
        return _rollup_series(reader, buckets, requests_only)
    only = f" AND {ROLE} = 'request'" if requests_only else ""
    sql = f"""
        SELECT {buckets.sql_index("start_time")} AS b, count(*) AS requests,
               count(*) FILTER (WHERE status_code = 'ERROR') AS errors,
               quantile_cont(duration_ms, 0.95) AS p95
        FROM spans WHERE is_root AND start_time >= ?{only} GROUP BY 1"""
    rows = fetch(reader, sql, [buckets.start], max_rows=buckets.count + 1)
    by_bucket = {int(r["b"]): r for r in rows if r["b"] is not None and 0 <= r["b"] < buckets.count}
    return Series(
        buckets,
        buckets.spread({b: r["requests"] for b, r in by_bucket.items()}),
        buckets.spread({b: r["errors"] for b, r in by_bucket.items()}),
        buckets.spread({b: r["p95"] for b, r in by_bucket.items()}),
    )


def _rollup_series(reader: Reader, buckets: Buckets, requests_only: bool) -> Series:
    only = " AND kind IN ('SERVER', 'CONSUMER')" if requests_only else ""  # = ROLE = 'request'
    sql = f"""
        WITH r AS (SELECT {buckets.sql_index("minute")} AS c, spans, errors, hist
                   FROM route_minutes WHERE is_root AND minute >= ?{only}),
        t AS (SELECT c, sum(spans) AS requests, sum(errors) AS errors FROM r GROUP BY 1),
        h AS (SELECT c, b, sum(n) AS n
              FROM (SELECT c, unnest(map_keys(hist)) AS b, unnest(map_values(hist)) AS n FROM r) GROUP BY 1, 2)
        SELECT t.c, any_value(t.requests) AS requests, any_value(t.errors) AS errors,
               list(h.b ORDER BY h.b) AS bs, list(h.n ORDER BY h.b) AS ns
        FROM t JOIN h ON h.c = t.c GROUP BY 1"""
    rows = fetch(reader, sql, [buckets.start], max_rows=buckets.count + 1)
    by_bucket = {int(r["c"]): r for r in rows if r["c"] is not None and 0 <= r["c"] < buckets.count}
    p95 = {b: rollup.quantiles(r["bs"], r["ns"], (0.95,))[0] for b, r in by_bucket.items()}
    return Series(
        buckets,
        buckets.spread({b: r["requests"] for b, r in by_bucket.items()}),
        buckets.spread({b: r["errors"] for b, r in by_bucket.items()}),
        buckets.spread(p95),
    )


def first_root_time(reader: Reader) -> datetime | None:
    """When the oldest request in the store started (for the `all` window's charts): from the rollup, which
    holds every root span's minute with its first start (28.8 ms from the spans at 10M, under 2 ms so)."""
    rows = fetch(reader, "SELECT min(first_start) AS t FROM route_minutes WHERE is_root")
    return rows[0]["t"] if rows else None


def overview(reader: Reader, window: Window, now: datetime) -> Overview:
    """All of the overview's figures for `window` ending at `now`."""
    since = window.start(now)
    if window.seconds is None:
        since = first_root_time(reader) or now
    routes = route_stats(reader, since, now)
    llm, llm_burn = spend_summary(reader, window, now)
    serves_requests = any(r.role == "request" for r in routes)
    long = from_rollup(since, now)
    buckets = minute_buckets(since, now) if long else Buckets.covering(since, now)
    return Overview(
        routes=routes,
        services=service_stats(reader, since, now),
        series=request_series(reader, buckets, serves_requests),
        errors=error_groups(reader, since, limit=5),
        health=health(reader, since),
        llm=llm,
        llm_burn=llm_burn,
        approximate=long,
    )
