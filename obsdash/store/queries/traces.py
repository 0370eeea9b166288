"""Traces: the list of requests (root spans) with filter, sort and paging, and one whole trace for the waterfall.

One trace is a lookup by trace_id, then its events and logs bounded by the trace's own time span: 110 -> 8 ms at
10M spans (docs/benchmarks.md). spans has no index on trace_id: the ART index doubled the time to ingest 100k spans
into a 3M-span store (1.18-1.30 s without, 2.42-2.49 s with; it is updated at every commit and rewritten at every
checkpoint) and made a span cost ~9 us to delete instead of ~0.1 us. Without it a lookup by id alone reads the
trace_id column of the whole table (82-89 ms at 3M spans against 4.3 ms with the index); bounded by a time the
caller knows (`near`), DuckDB skips every row group whose start_time range misses it (5.7 ms at 3M, ±1 minute).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from obsdash.store.queries import Reader, as_dict, fetch
from obsdash.store.queries.logs import LOG_COLUMNS, LogLine, log_line

PAGE_ROWS = 500
"""A DataTable of 10k rows takes 1.2 s to render; a page of 500 takes ~60 ms."""
MAX_TRACE_SPANS = 2000
TRACE_SLACK = timedelta(minutes=1)
NEAR_MARGIN = timedelta(minutes=10)
"""How far outside `near` a span of the trace is still looked for. A child can outlive its parent (a task or
message handled after the request that started it returned), and the spans of two services come from two clocks
that can be seconds, or on a VM after a suspend minutes, apart. Ten minutes of margin cost little: the lookup
reads whole row groups of 122,880 spans anyway, 17 minutes of traffic at 10M spans a day."""

SORTS = {
    "time": "start_time DESC",
    "duration": "duration_ms DESC",
    "errors": "(status_code = 'ERROR') DESC, start_time DESC",
}


@dataclass(frozen=True)
class TraceSummary:
    """One request: its root span and how many spans its trace has."""

    trace_id: str
    span_id: str
    start_time: datetime
    service: str
    name: str
    status_code: str
    http_status: int | None
    duration_ms: float
    span_count: int


@dataclass(frozen=True)
class Span:
    """One span with everything the detail pane shows."""

    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    kind: str
    service: str
    start_time: datetime
    end_time: datetime
    duration_ms: float
    status_code: str
    status_message: str | None
    attributes: dict[str, Any]
    resource: dict[str, Any]


@dataclass(frozen=True)
class SpanEvent:
    """An event recorded on a span (an exception, usually)."""

    time: datetime
    span_id: str
    name: str
    attributes: dict[str, Any]
    exception_type: str | None
    exception_message: str | None
    stacktrace: str | None


@dataclass(frozen=True)
class Trace:
    """All of one trace that the store holds."""

    trace_id: str
    spans: list[Span]
    events: list[SpanEvent]
    logs: list[LogLine]
    truncated: bool
    rooted: bool = False
    """A local root span of the trace (no parent, or a remote one) is among its spans."""

    def time_range(self) -> tuple[datetime, datetime] | None:
        """`near` for looking this trace up again: its spans' first start and last end once its root is stored.

        Without the root (still running, or lost) a span may yet arrive that started any time before the ones
        seen (the root itself): None, look it up unbounded."""
        if not self.rooted or not self.spans:
            return None
        return min(s.start_time for s in self.spans), max(s.end_time for s in self.spans)


def _filter_clause(text: str, errors_only: bool) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if errors_only:
        clauses.append("status_code = 'ERROR'")
    if text.strip():
        pattern = f"%{text.strip()}%"
        clauses.append(
            "(name ILIKE ? OR http_route ILIKE ? OR service_name ILIKE ? OR trace_id ILIKE ? "
            "OR CAST(http_status_code AS VARCHAR) = ?)"
        )
        params += [pattern, pattern, pattern, f"{text.strip()}%", text.strip()]
    return "".join(f" AND {c}" for c in clauses), params


def list_traces(
    reader: Reader,
    since: datetime,
    *,
    text: str = "",
    sort: str = "time",
    errors_only: bool = False,
    offset: int = 0,
    limit: int = PAGE_ROWS,
) -> list[TraceSummary]:
    """Root spans since `since` matching `text` (name, route, service, trace id prefix or status), one page."""
    where, params = _filter_clause(text, errors_only)
    order = SORTS.get(sort, SORTS["time"])
    sql = f"""
        WITH page AS (
            SELECT trace_id, span_id, start_time, service_name, coalesce(http_route, name) AS name,
                   status_code, http_status_code, duration_ms
            FROM spans WHERE is_root AND start_time >= ?{where}
            ORDER BY {order} LIMIT ? OFFSET ?
        ), counts AS (
            SELECT trace_id, count(*) AS span_count FROM spans
            WHERE start_time >= ? AND trace_id IN (SELECT trace_id FROM page) GROUP BY 1
        )
        SELECT page.*, coalesce(counts.span_count, 1) AS span_count
        FROM page LEFT JOIN counts USING (trace_id) ORDER BY {order}"""
    rows = fetch(reader, sql, [since, *params, limit, offset, since], max_rows=limit)
    return [
        TraceSummary(
            r["trace_id"],
            r["span_id"],
            r["start_time"],
            r["service_name"] or "?",
            r["name"] or "?",
            r["status_code"] or "UNSET",
            r["http_status_code"],
            float(r["duration_ms"] or 0.0),
            int(r["span_count"]),
        )
        for r in rows
    ]


def get_trace(reader: Reader, trace_id: str, near: tuple[datetime, datetime] | None = None) -> Trace | None:
    """Every span, span event and log line of one trace, or None when the store has no span of it.

    `near` is a (first, last) time the caller knows the trace's spans to fall in (its root's start and end, or
    `Trace.time_range` of an earlier lookup): the spans are looked for within NEAR_MARGIN of it, and, should that
    find none, in the whole table."""
    spans = _trace_spans(reader, trace_id, near) if near is not None else []
    if not spans:
        spans = _trace_spans(reader, trace_id, None)
    if not spans:
        return None
    # events and logs: bound by the trace's time like the spans (a minute of slack for clock skew)
    first = min(r["start_time"] for r in spans) - TRACE_SLACK
    last = max(r["end_time"] for r in spans) + TRACE_SLACK
    events = fetch(
        reader,
        """SELECT time, span_id, name, attributes, exception_type, exception_message, exception_stacktrace
           FROM span_events WHERE trace_id = ? AND time BETWEEN ? AND ? ORDER BY time LIMIT ?""",
        [trace_id, first, last, MAX_TRACE_SPANS],
        max_rows=MAX_TRACE_SPANS,
    )
    logs = fetch(
        reader,
        f"SELECT {LOG_COLUMNS} FROM logs WHERE trace_id = ? AND time BETWEEN ? AND ? ORDER BY time LIMIT ?",
        [trace_id, first, last, MAX_TRACE_SPANS],
        max_rows=MAX_TRACE_SPANS,
    )
    return Trace(
        trace_id,
        [_span(r) for r in spans[:MAX_TRACE_SPANS]],
        [_event(r) for r in events],
        [log_line(r) for r in logs],
        truncated=len(spans) > MAX_TRACE_SPANS,
        rooted=any(r["is_root"] for r in spans),
    )


def _trace_spans(
    reader: Reader, trace_id: str, near: tuple[datetime, datetime] | None
) -> list[dict[str, Any]]:
    """The trace's first MAX_TRACE_SPANS + 1 spans by start, within NEAR_MARGIN of `near` if given."""
    bound, params = "", [trace_id, MAX_TRACE_SPANS + 1]
    if near is not None:
        bound = " AND start_time BETWEEN ? AND ?"
        params = [trace_id, near[0] - NEAR_MARGIN, near[1] + NEAR_MARGIN, MAX_TRACE_SPANS + 1]
    return fetch(
        reader,
        f"""WITH t AS MATERIALIZED (
               SELECT trace_id, span_id, parent_span_id, name, kind, service_name, start_time, end_time,
                      duration_ms, status_code, status_message, attributes, resource, is_root
               FROM spans WHERE trace_id = ?{bound})
           SELECT * FROM t ORDER BY start_time, end_time DESC LIMIT ?""",
        params,
        max_rows=MAX_TRACE_SPANS + 1,
    )


def _span(r: dict[str, Any]) -> Span:
    return Span(
        r["trace_id"],
        r["span_id"],
        r["parent_span_id"],
        r["name"] or "?",
        r["kind"] or "INTERNAL",
        r["service_name"] or "?",
        r["start_time"],
        r["end_time"],
        float(r["duration_ms"] or 0.0),
        r["status_code"] or "UNSET",
        r["status_message"],
        as_dict(r["attributes"]),
        as_dict(r["resource"]),
    )


def _event(r: dict[str, Any]) -> SpanEvent:
    return SpanEvent(
        r["time"],
        r["span_id"],
        r["name"] or "",
        as_dict(r["attributes"]),
        r["exception_type"],
        r["exception_message"],
        r["exception_stacktrace"],
    )
