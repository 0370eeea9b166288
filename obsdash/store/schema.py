"""The DuckDB schema of `telemetry.duckdb`, its version, and the checks made when opening a store.

Hot attributes (route, method, HTTP status, GenAI model and tokens) are copied into typed columns at ingest:
a token sum per model was 1.9 ms from typed columns against 26–64 ms from JSON on 1M spans. Views (`errors`,
`runs`, `llm_calls`) are recreated on every open, so changing a view needs no migration.
"""

from __future__ import annotations

from typing import Any

from obsdash.errors import StoreError
from obsdash.store import exceptions, rollup

SCHEMA_VERSION = 3
"""2: the `route_minutes` rollup (store/rollup.py); 3: the `exceptions` table (store/exceptions.py). An older
obsdash would ingest spans and logs without their rollup or exception rows, so it is refused a store of a newer
version; an older store gains the tables, filled at open."""

TABLES = (
    """
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
CREATE TABLE IF NOT EXISTS llm_prices (
    provider VARCHAR, model VARCHAR, min_input_tokens BIGINT,
    input_per_mtok DOUBLE, output_per_mtok DOUBLE, cache_read_per_mtok DOUBLE, cache_write_per_mtok DOUBLE,
    per_call_usd DOUBLE, price_model VARCHAR, source_version VARCHAR, priced_at TIMESTAMP, note VARCHAR
);
-- an older store's ART index on spans(trace_id): it doubled ingest time at 3M spans (queries/traces.py)
DROP INDEX IF EXISTS spans_trace;
"""
    + rollup.TABLE
    + exceptions.TABLE
)

# One row per exception: an exception recorded on several spans of a trace, or on a span and again by the
# logging of the same request (Flask logs what it re-raises), counts once. `errors_since(t)` applies the time
# bound before the dedup and the route lookup: with it a 5-minute window reads 4 of 122 row groups of a 10M-span
# store (765 -> 20 ms, docs/benchmarks.md); a `WHERE time >= t` on the view could not be pushed below them.
# Of an exception's records, the span's with the longest stack trace wins: the outermost span saw every frame,
# including the app's own. The records come from `exceptions` (store/exceptions.py), which ingest fills from span
# events and log lines: reading `span_events` and `logs` for `all` at 10M spans decoded the trace ids of 3.6M log
# lines to find 154k records. The dedup ranks narrow rows (row ids, the key, the ranking columns) and fetches the
# winners' other columns after it: ranking whole rows, stack traces included, filled the hub's 320 MB cap.
VIEWS = (
    """
CREATE OR REPLACE MACRO errors_since(since) AS TABLE
WITH keyed AS MATERIALIZED (
    SELECT rowid AS rid, source_rank, time, length(exception_stacktrace) AS stack_length,
           -- an untraced record (a log line of a background thread) is told apart by its time and span id
           coalesce(trace_id, CAST(time AS VARCHAR) || coalesce(span_id, '')) AS exception_key,
           -- spans name the class with its module (requests.exceptions.ConnectionError), logging without it
           regexp_replace(exception_type, '^.*[.]', '') AS short_type
    FROM exceptions WHERE time >= since
), ranked AS (
    SELECT rid, short_type, row_number() OVER (
        PARTITION BY exception_key, short_type ORDER BY source_rank, stack_length DESC NULLS LAST, time
    ) AS n
    FROM keyed
), winners AS (SELECT rid, short_type FROM ranked WHERE n = 1),
e AS (
    SELECT x.*, w.short_type FROM (
        SELECT rowid AS rid, * FROM exceptions WHERE time >= since AND rowid IN (SELECT rid FROM winners)
    ) x JOIN winners w USING (rid)
)
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
    # One row per real LLM call. Model calls are spans naming a model with usage, or chat / completion /
    # embedding spans naming a model without it (a stream that reported none), or spans with usage and no model;
    # agent and tool spans are not calls even when they carry their calls' usage. The anthropic SDK emits its own
    # span under the instrumentor's, with the same usage: a model-call span whose parent (or grandparent) is one
    # too is the same call seen twice and is folded into the outermost one, each field taken from the outermost
    # span that has it. Cost is priced at query time from `llm_prices`
    # (obsdash/store/pricing.py); NULL when the model is unknown or the call reported no usage, never 0.
    + """
CREATE OR REPLACE MACRO llm_calls_since(since) AS TABLE
WITH genai AS (
    -- three branches with AND-only conditions that DuckDB pushes into the scan; one OR across columns was read
    -- row by row: 77 -> 11 ms for the 24h window of 1M spans with 5k GenAI spans, 108 -> 8 ms with none
    SELECT * FROM spans WHERE start_time >= since AND gen_ai_model IS NOT NULL
    UNION ALL
    SELECT * FROM spans WHERE start_time >= since AND gen_ai_model IS NULL AND input_tokens IS NOT NULL
    UNION ALL
    SELECT * FROM spans
    WHERE start_time >= since AND gen_ai_model IS NULL AND input_tokens IS NULL AND output_tokens IS NOT NULL
), llm AS MATERIALIZED (
    SELECT trace_id, span_id, parent_span_id, start_time, duration_ms, service_name, status_code,
           gen_ai_provider, gen_ai_model, gen_ai_operation, input_tokens, output_tokens, cache_read_tokens,
           -- the GenAI instrumentors and the anthropic SDK name cache writes `cache_write`, not `cache_creation`
           coalesce(cache_write_tokens,
                    TRY_CAST(attributes->>'$."gen_ai.usage.cache_write.input_tokens"' AS BIGINT)) AS cache_write_tokens,
           TRY_CAST(attributes->>'$."gen_ai.request.stream"' AS BOOLEAN) AS stream
    FROM genai
    WHERE (input_tokens IS NOT NULL OR output_tokens IS NOT NULL
           OR gen_ai_operation IN ('chat', 'text_completion', 'generate_content', 'embeddings'))
      AND coalesce(gen_ai_operation, '') NOT IN ('invoke_agent', 'create_agent', 'execute_tool', 'invoke_workflow')
), nested AS (
    -- a model-call span inside another one is the same call seen by a second instrumentation (the anthropic
    -- SDK's own span under the instrumentor's): both belong to the outermost one, up to three deep
    SELECT c.*, coalesce(g.span_id, p.span_id, c.span_id) AS call_id,
           CAST(p.span_id IS NOT NULL AS INTEGER) + CAST(g.span_id IS NOT NULL AS INTEGER) AS depth
    FROM llm c
    LEFT JOIN llm p ON p.trace_id = c.trace_id AND p.span_id = c.parent_span_id
    LEFT JOIN llm g ON g.trace_id = p.trace_id AND g.span_id = p.parent_span_id
), calls AS (
    -- each field from the outermost span that has it
    SELECT trace_id, call_id AS span_id,
           arg_min(start_time, depth) AS time,
           arg_min(duration_ms, depth) AS duration_ms,
           arg_min(service_name, depth) AS service_name,
           arg_min(gen_ai_provider, depth) FILTER (WHERE gen_ai_provider IS NOT NULL) AS provider,
           arg_min(gen_ai_model, depth) FILTER (WHERE gen_ai_model IS NOT NULL) AS model,
           arg_min(gen_ai_operation, depth) FILTER (WHERE gen_ai_operation IS NOT NULL) AS operation,
           arg_min(input_tokens, depth) FILTER (WHERE input_tokens IS NOT NULL) AS raw_input_tokens,
           arg_min(output_tokens, depth) FILTER (WHERE output_tokens IS NOT NULL) AS output_tokens,
           arg_min(cache_read_tokens, depth) FILTER (WHERE cache_read_tokens IS NOT NULL) AS cache_read_tokens,
           arg_min(cache_write_tokens, depth) FILTER (WHERE cache_write_tokens IS NOT NULL) AS cache_write_tokens,
           coalesce(bool_or(stream), false) AS streamed,
           bool_or(status_code = 'ERROR') AS failed,
           count(*) AS spans
    FROM nested GROUP BY trace_id, call_id
), normalised AS (
    -- input tokens include cached ones (as genai-prices and the GenAI conventions count them); Anthropic's own
    -- `input_tokens` leaves them out, which shows as fewer input tokens than cached ones: add them back
    SELECT * EXCLUDE (raw_input_tokens),
           CASE WHEN provider = 'anthropic'
                     AND raw_input_tokens < coalesce(cache_read_tokens, 0) + coalesce(cache_write_tokens, 0)
                THEN raw_input_tokens + coalesce(cache_read_tokens, 0) + coalesce(cache_write_tokens, 0)
                ELSE raw_input_tokens END AS input_tokens,
           (raw_input_tokens IS NOT NULL OR output_tokens IS NOT NULL) AS usage_reported
    FROM calls
), priced AS (
    -- the price tier: the row with the highest min_input_tokens below the call's input tokens
    SELECT n.*, p.input_per_mtok, p.output_per_mtok, p.cache_read_per_mtok, p.cache_write_per_mtok, p.per_call_usd,
           coalesce(n.input_tokens, 0) - coalesce(n.cache_read_tokens, 0) - coalesce(n.cache_write_tokens, 0)
               AS uncached_tokens
    FROM normalised n
    ASOF LEFT JOIN llm_prices p
        ON p.provider = coalesce(n.provider, '') AND p.model = n.model
       AND greatest(coalesce(n.input_tokens, 0) - 1, 0) >= p.min_input_tokens
)
SELECT c.time, c.trace_id, c.span_id, c.service_name, c.provider, c.model,
       c.input_tokens, c.output_tokens, c.cache_read_tokens, c.cache_write_tokens,
       CASE WHEN c.input_per_mtok IS NOT NULL AND c.input_tokens IS NOT NULL AND c.uncached_tokens >= 0
            THEN c.per_call_usd + (c.uncached_tokens * c.input_per_mtok
                                   + coalesce(c.cache_read_tokens, 0) * c.cache_read_per_mtok
                                   + coalesce(c.cache_write_tokens, 0) * c.cache_write_per_mtok
                                   + coalesce(c.output_tokens, 0) * c.output_per_mtok) / 1e6
       END AS cost_usd,
       r.route, c.operation, c.streamed, c.usage_reported, c.input_per_mtok IS NOT NULL AS priced, c.failed,
       c.duration_ms,
       CASE WHEN c.input_per_mtok IS NOT NULL AND c.usage_reported
            THEN (coalesce(c.cache_read_tokens, 0) * (c.input_per_mtok - c.cache_read_per_mtok)
                  + coalesce(c.cache_write_tokens, 0) * (c.input_per_mtok - c.cache_write_per_mtok)) / 1e6
       END AS cache_savings_usd,
       c.spans
FROM priced c
LEFT JOIN (
    -- the trace's first local root; its route, else its name (a background job), unless the root is the call
    SELECT trace_id, arg_min(coalesce(http_route, name), start_time) AS route,
           arg_min(span_id, start_time) AS root_span_id
    FROM spans
    WHERE is_root AND end_time >= since AND trace_id IN (SELECT trace_id FROM llm) GROUP BY trace_id
) r ON r.trace_id = c.trace_id AND r.root_span_id <> c.span_id;

CREATE OR REPLACE VIEW llm_calls AS SELECT * FROM llm_calls_since(TIMESTAMP '1970-01-01');
"""
)


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
    rollup.backfill(conn)
    exceptions.backfill(conn)
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
