"""The first screen's figures: per-route rates and latency percentiles, charts over the window, services, and
the window's LLM spend when the app makes LLM calls.

Requests are root server spans (or consumer spans). Other root spans — a background job, a database call made
outside any request — are listed after them as background work, and count as requests only in an app that
serves none (a script). Rates divide by the time the window actually saw traffic, so a just-started app does
not look idle in a 24h window. Every
query reads only the window (figures in docs/benchmarks.md); `all` reads the whole store by definition.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from obsdash.store.queries import Reader, fetch
from obsdash.store.queries.errors import ErrorGroup, error_groups
from obsdash.store.queries.health import Health, health
from obsdash.store.queries.llm import BurnRate, SpendGroup, spend_summary
from obsdash.store.queries.window import Buckets, Window

MAX_ROUTES = 100


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


def route_stats(reader: Reader, since: datetime, now: datetime) -> list[RouteStats]:
    """Per (service, route): count, errors, rate while traffic was seen, and p50/p95/p99 in ms."""
    rows = fetch(reader, ROUTES_SQL, [since, MAX_ROUTES], max_rows=MAX_ROUTES)
    return [
        RouteStats(
            service=row["service"] or "?",
            route=row["route"] or "?",
            role=row["role"],
            requests=int(row["requests"]),
            errors=int(row["errors"]),
            rate_per_s=row["requests"] / max((now - row["first_seen"]).total_seconds(), 1.0),
            p50_ms=float(row["q"][0]),
            p95_ms=float(row["q"][1]),
            p99_ms=float(row["q"][2]),
        )
        for row in rows
    ]


def service_stats(reader: Reader, since: datetime) -> list[ServiceStats]:
    """Per service: spans, requests, errors, processes seen and the last span's end."""
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


def request_series(reader: Reader, buckets: Buckets, requests_only: bool = True) -> Series:
    """Requests (or, with requests_only=False, all root spans), errors and p95 per bucket."""
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


def first_root_time(reader: Reader) -> datetime | None:
    """When the oldest request in the store started (for the `all` window's charts)."""
    rows = fetch(reader, "SELECT min(start_time) AS t FROM spans WHERE is_root")
    return rows[0]["t"] if rows else None


def overview(reader: Reader, window: Window, now: datetime) -> Overview:
    """All of the overview's figures for `window` ending at `now`."""
    since = window.start(now)
    if window.seconds is None:
        since = first_root_time(reader) or now
    routes = route_stats(reader, since, now)
    llm, llm_burn = spend_summary(reader, window, now)
    serves_requests = any(r.role == "request" for r in routes)
    return Overview(
        routes=routes,
        services=service_stats(reader, since),
        series=request_series(reader, Buckets.covering(since, now), serves_requests),
        errors=error_groups(reader, since, limit=5),
        health=health(reader, since),
        llm=llm,
        llm_burn=llm_burn,
    )
