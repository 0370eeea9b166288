"""What `obsdash export` reads: the tables of a run or a time window, as files or as pages of records to send.

A selection is one run (`run_id`), or everything from a time on, or everything. Parquet files are written by the
hub with `COPY (SELECT ...) TO` (`copy_statement`, run on the host's cursor: `obsdash query` is read-only by
design). The OTLP exports read pages through the ordinary read-only query path, in `rowid` order with the last
rowid as the cursor (a page costs one scan whatever its position: 1M rows in 5k pages took 4.1 s on the loaded
test box, where OFFSET grows with the position). Rows come back reshaped as spool records (docs/spool-format.md)
so the in-app OTLP converter (obsdash_instrumenters.otlp_records) builds the SDK objects from them as well.
A retention prune running during the export may make a page skip or repeat a row (rowids are per table state).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from obsdash.store.queries import Reader

PAGE_ROWS = 2000
"""Rows per page: ~2-4 MB of spans on the hub's socket; also the batch size of the OTLP replay."""
TABLES = {
    "spans": "start_time",
    "span_events": "time",
    "logs": "time",
    "metric_points": "time",
    "run_events": "time",
}
"""Every table of telemetry, with the time column a --since selects on."""
MAX_LEVEL_SERIES = 100_000


@dataclass(frozen=True)
class Selection:
    """One run, or everything since a time (naive UTC), or everything."""

    run_id: str | None = None
    since: datetime | None = None

    def where(self, table: str, prefix: str = "") -> tuple[str, list[Any]]:
        """The WHERE condition (and its parameters) selecting this scope's rows of `table`."""
        if self.run_id is not None:
            return f"{prefix}run_id = ?", [self.run_id]
        if self.since is not None:
            return f"{prefix}{TABLES[table]} >= ?", [self.since]
        return "true", []


def copy_statement(table: str, selection: Selection, path: str) -> tuple[str, list[Any]]:
    """`COPY` of the selected rows of `table` to a Parquet file (zstd), in time order."""
    if table not in TABLES:
        raise ValueError(f"not a telemetry table: {table}")
    where, params = selection.where(table)
    quoted = path.replace("'", "''")
    sql = (
        f"COPY (SELECT * FROM {table} WHERE {where} ORDER BY {TABLES[table]}) "
        f"TO '{quoted}' (FORMAT parquet, COMPRESSION zstd)"
    )
    return sql, params


def counts(reader: Reader, selection: Selection) -> dict[str, int]:
    """Rows selected in the tables an OTLP export sends: spans, logs, metric_points."""
    parts, params = [], []
    for table in ("spans", "logs", "metric_points"):
        where, values = selection.where(table)
        parts.append(f"(SELECT count(*) FROM {table} WHERE {where}) AS {table}")
        params += values
    rows = reader.query("SELECT " + ", ".join(parts), params, max_rows=1, sync=False).records()
    return {table: int(n or 0) for table, n in rows[0].items()}


SPANS_PAGE = """
WITH page AS (
    SELECT rowid AS row_id, * FROM spans WHERE {where} AND rowid > ? ORDER BY rowid LIMIT ?
), events AS (
    SELECT e.trace_id, e.span_id,
           list({{'name': e.name, 'time_ns': epoch_ns(e.time), 'attributes': e.attributes}} ORDER BY e.time) AS events
    FROM span_events e SEMI JOIN page p ON p.trace_id = e.trace_id AND p.span_id = e.span_id
    WHERE {event_where}
    GROUP BY ALL
)
SELECT p.row_id, p.trace_id, p.span_id, p.parent_span_id,
       p.parent_span_id IS NOT NULL AND p.is_root AS parent_remote,  -- a root with a parent: its parent is remote
       p.name, p.kind, epoch_ns(p.start_time) AS start_ns, epoch_ns(p.end_time) AS end_ns,
       p.status_code, p.status_message, p.attributes, p.resource, p.scope, p.service_name, p.run_id, p.pid,
       coalesce(ev.events, []) AS events
FROM page p LEFT JOIN events ev ON ev.trace_id = p.trace_id AND ev.span_id = p.span_id
ORDER BY p.row_id
"""

LOGS_PAGE = """
SELECT rowid AS row_id, epoch_ns(time) AS time_ns, severity_text, severity_number, body, trace_id, span_id,
       attributes, resource, scope, service_name, run_id, pid
FROM logs WHERE {where} AND rowid > ? ORDER BY rowid LIMIT ?
"""

METRICS_PAGE = """
SELECT rowid AS row_id, epoch_ns(time) AS time_ns, epoch_ns(start_time) AS start_ns, name, unit, kind, value,
       count, sum, min, max, bucket_counts, explicit_bounds, attributes, service_name, run_id, pid
FROM metric_points WHERE {where} AND rowid > ? ORDER BY rowid LIMIT ?
"""

PAGES = {"spans": SPANS_PAGE, "logs": LOGS_PAGE, "metric_points": METRICS_PAGE}


def page(
    reader: Reader, table: str, selection: Selection, after: int, limit: int = PAGE_ROWS
) -> list[dict[str, Any]]:
    """The next `limit` selected rows of `table` (spans, logs, metric_points) after rowid `after`, as records
    with a `row_id` (the cursor for the next page)."""
    where, params = selection.where(table)
    if table == "spans":
        event_where, event_params = selection.where("span_events", "e.")
        sql = SPANS_PAGE.format(where=where, event_where=event_where)
        params = [*params, after, limit, *event_params]
    else:
        sql = PAGES[table].format(where=where)
        params = [*params, after, limit]
    return reader.query(sql, params, max_rows=limit, sync=False).records()


LEVEL_SERIES = """
SELECT name, attributes::VARCHAR AS attributes, pid, run_id
FROM metric_points WHERE {where} AND kind = 'sum'
GROUP BY ALL
HAVING min(value) < 0 OR (count(*) > 1 AND count(DISTINCT start_time) = 1)
"""


def level_series(reader: Reader, selection: Selection) -> set[tuple[Any, ...]]:
    """Sum series that hold levels, not increments: cumulative up-down counters (a value below zero, or several
    points sharing one start). The store keeps no temporality; in-app counters are delta, up-down counters
    cumulative, and the OTLP intake turns monotonic cumulative sums into deltas."""
    where, params = selection.where("metric_points")
    rows = reader.query(
        LEVEL_SERIES.format(where=where), params, max_rows=MAX_LEVEL_SERIES, sync=False
    ).records()
    return {(r["name"], r["attributes"], r["pid"], r["run_id"]) for r in rows}
