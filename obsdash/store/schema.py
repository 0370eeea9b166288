"""The DuckDB schema of `telemetry.duckdb`, its version, and the checks made when opening a store.

Hot attributes (route, method, HTTP status, GenAI model and tokens) are copied into typed columns at ingest:
a token sum per model was 1.9 ms from typed columns against 26–64 ms from JSON on 1M spans. Views (`errors`,
`runs`, `llm_calls`) are recreated on every open, so changing a view needs no migration.
"""

from __future__ import annotations

from typing import Any

from obsdash.errors import StoreError

SCHEMA_VERSION = 1

TABLES = """
CREATE TABLE IF NOT EXISTS obsdash_meta (key VARCHAR PRIMARY KEY, value VARCHAR);
CREATE TABLE IF NOT EXISTS ingested_segments (
    name VARCHAR PRIMARY KEY, kind VARCHAR, ingested_at TIMESTAMP, records BIGINT, bad_lines BIGINT
);
CREATE TABLE IF NOT EXISTS spans (
    trace_id VARCHAR, span_id VARCHAR, parent_span_id VARCHAR, name VARCHAR, kind VARCHAR,
    service_name VARCHAR, start_time TIMESTAMP, end_time TIMESTAMP, duration_ms DOUBLE,
    status_code VARCHAR, status_message VARCHAR, attributes JSON, resource JSON, scope VARCHAR,
    run_id VARCHAR, pid INTEGER,
    is_root BOOLEAN, http_route VARCHAR, http_method VARCHAR, http_status_code INTEGER,
    db_system VARCHAR, db_statement VARCHAR, server_address VARCHAR,
    gen_ai_provider VARCHAR, gen_ai_model VARCHAR, gen_ai_operation VARCHAR,
    input_tokens BIGINT, output_tokens BIGINT, cache_read_tokens BIGINT, cache_write_tokens BIGINT
);
CREATE TABLE IF NOT EXISTS span_events (
    time TIMESTAMP, trace_id VARCHAR, span_id VARCHAR, name VARCHAR, attributes JSON,
    service_name VARCHAR, run_id VARCHAR,
    exception_type VARCHAR, exception_message VARCHAR, exception_stacktrace VARCHAR, exception_location VARCHAR
);
CREATE TABLE IF NOT EXISTS logs (
    time TIMESTAMP, severity_text VARCHAR, severity_number INTEGER, body VARCHAR,
    trace_id VARCHAR, span_id VARCHAR, service_name VARCHAR, attributes JSON, resource JSON, scope VARCHAR,
    run_id VARCHAR, pid INTEGER,
    exception_type VARCHAR, exception_message VARCHAR, exception_stacktrace VARCHAR, exception_location VARCHAR
);
CREATE TABLE IF NOT EXISTS metric_points (
    time TIMESTAMP, start_time TIMESTAMP, name VARCHAR, unit VARCHAR, kind VARCHAR, value DOUBLE,
    count BIGINT, sum DOUBLE, min DOUBLE, max DOUBLE, bucket_counts JSON, explicit_bounds JSON,
    attributes JSON, service_name VARCHAR, run_id VARCHAR, pid INTEGER
);
CREATE TABLE IF NOT EXISTS run_events (
    time TIMESTAMP, event VARCHAR, run_id VARCHAR, pid INTEGER, service_name VARCHAR, host VARCHAR,
    is_root BOOLEAN, parent_pid INTEGER, command VARCHAR, exit_code INTEGER, details JSON
);
CREATE INDEX IF NOT EXISTS spans_trace ON spans (trace_id);
"""

# One row per exception: an exception recorded on several spans of a trace, or on a span and again by the
# logging of the same request (Flask logs what it re-raises), counts once. `errors_since(t)` applies the time
# bound before the dedup and the route lookup: with it a 5-minute window reads 4 of 122 row groups of a 10M-span
# store (765 -> 20 ms, docs/benchmarks.md); a `WHERE time >= t` on the view could not be pushed below them.
# Of an exception's records, the span's with the longest stack trace wins: the outermost span saw every frame,
# including the app's own.
VIEWS = """
CREATE OR REPLACE MACRO errors_since(since) AS TABLE
WITH raw AS (
    SELECT time, trace_id, span_id, service_name, run_id, exception_type, exception_message,
           exception_stacktrace, exception_location, 0 AS source_rank
    FROM span_events WHERE exception_type IS NOT NULL AND time >= since
    UNION ALL
    SELECT time, trace_id, span_id, service_name, run_id, exception_type, exception_message,
           exception_stacktrace, exception_location, 1 AS source_rank
    FROM logs WHERE exception_type IS NOT NULL AND time >= since
), typed AS (
    -- spans name the class with its module (requests.exceptions.ConnectionError), logging without it
    SELECT *, regexp_replace(exception_type, '^.*[.]', '') AS short_type FROM raw
), ranked AS (
    SELECT *, row_number() OVER (
        PARTITION BY coalesce(trace_id, CAST(time AS VARCHAR) || coalesce(span_id, '')), short_type
        ORDER BY source_rank, length(exception_stacktrace) DESC NULLS LAST, time
    ) AS n
    FROM typed
), e AS (SELECT * FROM ranked WHERE n = 1)
SELECT e.time, e.trace_id, e.span_id, e.service_name, e.run_id, e.exception_type,
       e.exception_message AS message, e.exception_stacktrace AS stacktrace,
       e.exception_location AS location,
       substr(md5(e.short_type || '|' || coalesce(e.exception_location, '')), 1, 12) AS fingerprint,
       r.http_route AS route
FROM e
LEFT JOIN (
    -- a trace crossing two wrapped services has two local roots: take the first one's route, once
    SELECT trace_id, arg_min(http_route, start_time) AS http_route FROM spans
    WHERE is_root AND end_time >= since AND trace_id IN (SELECT trace_id FROM e) GROUP BY trace_id
) r ON r.trace_id = e.trace_id;

CREATE OR REPLACE VIEW errors AS SELECT * FROM errors_since(TIMESTAMP '1970-01-01');

CREATE OR REPLACE VIEW runs AS
SELECT run_id,
       arg_min(command, time) FILTER (WHERE event = 'start' AND is_root) AS command,
       min(time) FILTER (WHERE event = 'start') AS started,
       max(time) FILTER (WHERE event = 'end' AND is_root) AS ended,
       arg_max(exit_code, time) FILTER (WHERE event = 'end' AND is_root) AS exit_code,
       any_value(service_name) AS service_name,
       count(DISTINCT pid) AS processes
FROM run_events GROUP BY run_id;
"""


def create(conn: Any) -> None:
    """Create or upgrade the schema in an open read-write connection."""
    version = read_version(conn)
    if version is not None and version > SCHEMA_VERSION:
        raise StoreError(
            f"the store was written by a newer obsdash (schema {version}, this obsdash reads up to "
            f"{SCHEMA_VERSION})",
            hint="upgrade obsdash, or use another --data-dir",
        )
    conn.execute(TABLES)
    conn.execute(VIEWS)
    conn.execute(
        "INSERT OR REPLACE INTO obsdash_meta VALUES ('schema_version', ?)",
        [str(SCHEMA_VERSION)],
    )


def read_version(conn: Any) -> int | None:
    """The schema version recorded in the store, or None for an empty database."""
    exists = conn.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'obsdash_meta'"
    ).fetchone()
    if not exists or not exists[0]:
        return None
    row = conn.execute("SELECT value FROM obsdash_meta WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row else None
