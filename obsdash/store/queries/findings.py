"""The evidence behind `obsdash report`: one query per kind of production-readiness problem.

Each function returns plain rows for a `Scope` (a time bound, and a run when one is asked for); obsdash/report.py
decides what is a finding and how severe. Every query is bounded by the scope's start time, so a report over the
last hour reads the last hour's row groups only, and by a row cap.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from obsdash.store.queries import Reader, fetch

MAX_ROWS = 50
EXAMPLES = 3
"""Example trace ids kept per finding: enough to open one, few enough to read."""
DEFAULT_LLM_TIMEOUT_S = 600
"""The openai and anthropic SDKs' default: a call that keeps it can hold a request for ten minutes."""


@dataclass(frozen=True)
class Scope:
    """What a report covers: telemetry since `since`, of one run when `run_id` is set."""

    since: datetime
    run_id: str | None = None

    def params(self) -> list[Any]:
        """The three parameters of `_IN_SCOPE`, in order."""
        return [self.since, self.run_id, self.run_id]


# Appended to a WHERE on a table with `run_id`; the time column differs per table and is bound separately.
_IN_RUN = "(CAST(? AS VARCHAR) IS NULL OR run_id = ?)"


def _rows(reader: Reader, sql: str, scope: Scope, *extra: Any) -> list[dict[str, Any]]:
    return fetch(reader, sql, [*scope.params(), *extra], max_rows=MAX_ROWS)


UNHANDLED_SQL = f"""
WITH e AS (
    SELECT * FROM errors_since(CAST(? AS TIMESTAMP)) WHERE {_IN_RUN} AND trace_id IS NOT NULL
), roots AS (
    -- the request the exception happened in: did it fail (5xx, or an errored root span)?
    SELECT trace_id, arg_min(http_status_code, start_time) AS http_status,
           arg_min(status_code, start_time) AS status, arg_min(coalesce(http_route, name), start_time) AS root
    FROM spans WHERE is_root AND trace_id IN (SELECT trace_id FROM e) GROUP BY trace_id
)
SELECT coalesce(e.route, r.root, e.service_name) AS route, any_value(e.service_name) AS service,
       regexp_replace(e.exception_type, '^.*[.]', '') AS exception_type, count(*) AS n,
       count(DISTINCT e.trace_id) AS traces, arg_max(e.message, e.time) AS message, any_value(e.location) AS location,
       list(DISTINCT e.trace_id ORDER BY e.trace_id)[1:{EXAMPLES}] AS examples,
       any_value(r.http_status) AS http_status
FROM e JOIN roots r USING (trace_id)
WHERE r.http_status >= 500 OR r.status = 'ERROR'
GROUP BY ALL ORDER BY n DESC, route, exception_type
"""


def unhandled_exceptions(reader: Reader, scope: Scope) -> list[dict[str, Any]]:
    """Exceptions that failed their request or job, per route and exception type."""
    return _rows(reader, UNHANDLED_SQL, scope)


UPSTREAM_SQL = f"""
WITH calls AS MATERIALIZED (
    SELECT trace_id, span_id, start_time, end_time, http_method, http_status_code, target,
           -- requests and urllib3 name the host only inside the URL (old HTTP conventions)
           coalesce(nullif(regexp_extract(target, '^[a-z]+://(?:[^/@]*@)?([^/?#]+)', 1), ''), server_address, '?')
               AS upstream
    FROM (
        SELECT *, split_part(coalesce(attributes->>'$."url.full"', attributes->>'$."http.url"', name), '?', 1)
                      AS target
        FROM spans
    )
    WHERE kind = 'CLIENT' AND http_status_code IS NOT NULL AND start_time >= CAST(? AS TIMESTAMP) AND {_IN_RUN}
), failed_calls AS (
    SELECT * FROM calls WHERE http_status_code = 429 OR http_status_code >= 500
), failed AS (
    SELECT f.*, r.route FROM failed_calls f LEFT JOIN (
        SELECT trace_id, arg_min(coalesce(http_route, name), start_time) AS route FROM spans
        WHERE is_root AND trace_id IN (SELECT trace_id FROM failed_calls) GROUP BY trace_id
    ) r USING (trace_id)
), retried AS (
    -- a retry: the same request (method and URL without its query) again later in the same trace
    SELECT f.span_id, bool_or(c.span_id IS NOT NULL) AS retried
    FROM failed f
    LEFT JOIN calls c ON c.trace_id = f.trace_id AND c.span_id <> f.span_id AND c.target = f.target
         AND c.http_method IS NOT DISTINCT FROM f.http_method AND c.start_time >= f.end_time
    GROUP BY f.span_id
)
SELECT f.upstream, f.http_status_code AS http_status, count(*) AS n,
       count(*) FILTER (WHERE r.retried) AS retried, any_value(f.target) AS target,
       list(DISTINCT f.trace_id ORDER BY f.trace_id)[1:{EXAMPLES}] AS examples,
       list(DISTINCT f.route) FILTER (WHERE f.route IS NOT NULL) AS routes
FROM failed f JOIN retried r USING (span_id)
GROUP BY f.upstream, f.http_status_code ORDER BY n DESC, f.upstream, f.http_status_code
"""


def failing_upstreams(reader: Reader, scope: Scope) -> list[dict[str, Any]]:
    """Outgoing HTTP calls answered 429 or 5xx, per upstream host and status, with how many were retried."""
    return _rows(reader, UPSTREAM_SQL, scope)


REPEATED_QUERIES_SQL = f"""
WITH per_trace AS (
    SELECT trace_id, db_statement, count(*) AS repeats
    FROM spans
    WHERE db_statement IS NOT NULL AND start_time >= CAST(? AS TIMESTAMP) AND {_IN_RUN}
    GROUP BY trace_id, db_statement HAVING count(*) >= ?
), routes AS (
    SELECT trace_id, arg_min(coalesce(http_route, name), start_time) AS route FROM spans
    WHERE is_root AND trace_id IN (SELECT trace_id FROM per_trace) GROUP BY trace_id
)
SELECT coalesce(r.route, '?') AS route, p.db_statement AS statement, count(*) AS traces,
       max(p.repeats) AS max_repeats, round(avg(p.repeats), 1) AS avg_repeats,
       arg_max(p.trace_id, p.repeats) AS worst_trace,
       list(DISTINCT p.trace_id ORDER BY p.trace_id)[1:{EXAMPLES}] AS examples
FROM per_trace p LEFT JOIN routes r USING (trace_id)
GROUP BY ALL ORDER BY traces * max_repeats DESC, route, statement
"""


def repeated_queries(reader: Reader, scope: Scope, min_repeats: int) -> list[dict[str, Any]]:
    """N+1 patterns: the same statement run at least `min_repeats` times within one trace, per route."""
    return _rows(reader, REPEATED_QUERIES_SQL, scope, min_repeats)


SLOW_ROUTES_SQL = f"""
SELECT coalesce(http_route, name) AS route, any_value(service_name) AS service, count(*) AS n,
       quantile_cont(duration_ms, 0.5) AS p50, quantile_cont(duration_ms, 0.95) AS p95,
       quantile_cont(duration_ms, 0.99) AS p99,
       arg_max(trace_id, duration_ms) AS slowest_trace,
       list(trace_id ORDER BY duration_ms DESC)[1:{EXAMPLES}] AS examples
FROM spans
WHERE is_root AND kind IN ('SERVER', 'CONSUMER') AND start_time >= CAST(? AS TIMESTAMP) AND {_IN_RUN}
GROUP BY ALL HAVING count(*) >= ? AND quantile_cont(duration_ms, 0.95) >= ?
ORDER BY p95 DESC, route
"""


def slow_routes(reader: Reader, scope: Scope, p95_ms: float, min_requests: int) -> list[dict[str, Any]]:
    """Request routes whose p95 is at least `p95_ms`, among routes with at least `min_requests` requests."""
    return _rows(reader, SLOW_ROUTES_SQL, scope, min_requests, p95_ms)


LLM_CALLS_SQL = f"""
WITH c AS (SELECT * FROM llm_calls_since(CAST(? AS TIMESTAMP))),
timeouts AS (
    -- obsdash.llm.timeout_s (obsdash_instrumenters/gaps.py) sits on the call's span or, for the anthropic SDK,
    -- on the SDK's own span just inside it; -1 is no timeout at all
    SELECT c.span_id, max(TRY_CAST(t.attributes->>'$."obsdash.llm.timeout_s"' AS DOUBLE)) AS timeout_s
    FROM c JOIN spans t ON t.trace_id = c.trace_id AND (t.span_id = c.span_id OR t.parent_span_id = c.span_id)
    WHERE t.start_time >= CAST(? AS TIMESTAMP) AND t.attributes->>'$."obsdash.llm.timeout_s"' IS NOT NULL
    GROUP BY c.span_id
)
SELECT coalesce(c.route, '?') AS route, coalesce(c.model, '?') AS model, count(*) AS calls,
       count(*) FILTER (WHERE s.attributes->>'$."gen_ai.request.max_tokens"' IS NULL) AS without_max_tokens,
       count(*) FILTER (WHERE t.timeout_s < 0 OR t.timeout_s >= {DEFAULT_LLM_TIMEOUT_S}) AS default_timeout,
       count(t.timeout_s) AS timeout_known,
       count(*) FILTER (WHERE c.failed) AS failed,
       list(DISTINCT c.trace_id ORDER BY c.trace_id)
           FILTER (WHERE s.attributes->>'$."gen_ai.request.max_tokens"' IS NULL)[1:{EXAMPLES}]
           AS examples_without_max_tokens,
       list(DISTINCT c.trace_id ORDER BY c.trace_id)
           FILTER (WHERE t.timeout_s < 0 OR t.timeout_s >= {DEFAULT_LLM_TIMEOUT_S})[1:{EXAMPLES}]
           AS examples_default_timeout,
       list(DISTINCT c.trace_id ORDER BY c.trace_id) FILTER (WHERE c.failed)[1:{EXAMPLES}] AS examples_failed
FROM c JOIN spans s ON s.trace_id = c.trace_id AND s.span_id = c.span_id
LEFT JOIN timeouts t ON t.span_id = c.span_id
WHERE s.start_time >= CAST(? AS TIMESTAMP) AND {_IN_RUN.replace("run_id", "s.run_id")}
GROUP BY ALL ORDER BY calls DESC, route, model
"""


def llm_call_hygiene(reader: Reader, scope: Scope) -> list[dict[str, Any]]:
    """LLM calls per route and model: how many set no `max_tokens`, kept the SDK's default timeout, failed."""
    params = [scope.since, scope.since, *scope.params()]
    return fetch(reader, LLM_CALLS_SQL, params, max_rows=MAX_ROWS)


UNTRACED_LOGS_SQL = f"""
SELECT service_name AS service, coalesce(scope, '?') AS logger, count(*) AS n,
       count(*) FILTER (WHERE severity_number >= 13) AS warnings_or_worse,
       arg_max(body, time) AS example
FROM logs
WHERE trace_id IS NULL AND time >= CAST(? AS TIMESTAMP) AND {_IN_RUN}
GROUP BY ALL ORDER BY n DESC, service, logger
"""


def untraced_logs(reader: Reader, scope: Scope) -> list[dict[str, Any]]:
    """Log lines written outside any trace, per service and logger."""
    return _rows(reader, UNTRACED_LOGS_SQL, scope)


LOG_TOTALS_SQL = f"""
SELECT service_name AS service, count(*) AS n FROM logs
WHERE time >= CAST(? AS TIMESTAMP) AND {_IN_RUN} GROUP BY ALL
"""


def log_totals(reader: Reader, scope: Scope) -> dict[str, int]:
    """Log lines per service in scope."""
    return {str(r["service"]): int(r["n"]) for r in _rows(reader, LOG_TOTALS_SQL, scope)}


PROCESS_RECORDS_SQL = f"""
SELECT run_id, pid, arg_max(details, time) AS details
FROM run_events
WHERE event IN ('end', 'stats') AND time >= CAST(? AS TIMESTAMP) AND {_IN_RUN}
GROUP BY run_id, pid
"""


def process_records(reader: Reader, scope: Scope) -> list[dict[str, Any]]:
    """The latest counters (stats or end record) of each process in scope: drops, redactions, instrumentation."""
    return fetch(reader, PROCESS_RECORDS_SQL, scope.params(), max_rows=1000)


LATEST_RUN_SQL = "SELECT run_id FROM runs ORDER BY started DESC NULLS LAST LIMIT 1"


def latest_run(reader: Reader) -> str | None:
    """The most recently started run, or None for an empty store."""
    rows = fetch(reader, LATEST_RUN_SQL)
    return str(rows[0]["run_id"]) if rows else None


RUN_START_SQL = "SELECT started FROM runs WHERE run_id = ?"


def run_started(reader: Reader, run_id: str) -> datetime | None:
    """When a run started, or None when the store has no such run."""
    rows = fetch(reader, RUN_START_SQL, [run_id])
    return rows[0]["started"] if rows else None
