"""Turn OpenTelemetry records into the flat JSON lines of the spool format (docs/spool-format.md).

One JSON object per record, with `service_name`, `run_id` and `pid` on every line so the hub can ingest any
segment on its own. Encoding happens on the thread that ended the span (≈3.5 µs with orjson) so the queue holds
compact bytes, not live SDK objects.

Every record passes through scrub.py before it is encoded (S1). Fail closed: a record the scrubber fails on is
dropped and counted (`dropped.scrub_error`, `internal_errors.scrub`), never written unscrubbed; the encode
functions then raise RecordDropped, which their callers swallow like any other encoding failure.
"""

from __future__ import annotations

import sys
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson

from obsdash_instrumenters import scrub
from obsdash_instrumenters.context import RecordContext
from obsdash_instrumenters.location import app_location
from obsdash_instrumenters.safety import internal_error

EXCEPTION_LOCATION = "obsdash.exception.location"


class RecordDropped(Exception):
    """The scrubber failed on a record: it was dropped and counted, and must not be written."""


def _scrubbed(scrubber: Callable[[dict[str, Any]], None], record: dict[str, Any], ctx: RecordContext) -> None:
    """Run `scrubber` on `record` in place; on any failure count the drop and raise RecordDropped."""
    try:
        scrubber(record)
    except BaseException as exc:
        ctx.count_dropped("scrub_error")
        internal_error("scrub", exc)
        raise RecordDropped from None


def _default(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def dumps(record: Mapping[str, Any]) -> bytes:
    """One spool line; never fails on odd attribute values (they become strings)."""
    return orjson.dumps(record, default=_default, option=orjson.OPT_NON_STR_KEYS)


def _hex_trace(trace_id: int | None) -> str | None:
    # `%` formatting: 0.11 µs against format()'s 0.29 (two ids per span, sometimes three)
    return "%032x" % trace_id if trace_id else None  # noqa: UP031


def _hex_span(span_id: int | None) -> str | None:
    return "%016x" % span_id if span_id else None  # noqa: UP031


def _span_attributes(span: Any) -> dict[str, Any]:
    """A private copy of a finished span's attributes (the scrubber edits it in place).

    The SDK's `span.attributes` is a MappingProxy over BoundedAttributes, which `dict()` copies key by key through
    Python-level `__getitem__`: 2.0 µs for a Flask span against 0.4 µs for copying the dict inside it
    (docs/benchmarks.md, P3). Any other span shape takes the public way."""
    try:
        inner = span._attributes._dict
    except AttributeError:
        inner = None
    if type(inner) is dict or isinstance(inner, OrderedDict):
        return dict(inner)
    return dict(span.attributes or {})


def _span_events(span: Any) -> list[dict[str, Any]]:
    """A finished span's events as records; the SDK's `span.events` copies its list into a tuple even when it
    is empty, which most spans are (1.1 µs)."""
    try:
        events = span._events
    except AttributeError:
        events = span.events
    if not events:
        return []
    return [
        {
            "name": event.name,
            "time_ns": event.timestamp,
            "attributes": with_exception_location(dict(event.attributes or {})),
        }
        for event in events
    ]


def with_exception_location(attributes: dict[str, Any]) -> dict[str, Any]:
    """Add `obsdash.exception.location` (in place) when the attributes describe an exception with a stack trace."""
    stacktrace = attributes.get("exception.stacktrace")
    if isinstance(stacktrace, str) and EXCEPTION_LOCATION not in attributes:
        location = app_location(stacktrace)
        if location:
            attributes[EXCEPTION_LOCATION] = location
    return attributes


def encode_span(span: Any, ctx: RecordContext) -> bytes:
    """A finished SDK span (ReadableSpan) as one spool line."""
    context = span.context
    parent = span.parent
    status = span.status
    scope = span.instrumentation_scope
    record = {
        "trace_id": _hex_trace(context.trace_id),
        "span_id": _hex_span(context.span_id),
        "parent_span_id": _hex_span(parent.span_id) if parent is not None else None,
        "parent_remote": bool(parent.is_remote) if parent is not None else None,
        "name": span.name,
        "kind": span.kind._name_,  # an Enum's `.name` is a descriptor call, `_name_` the plain attribute behind it
        "start_ns": span.start_time,
        "end_ns": span.end_time,
        "status_code": status.status_code._name_,
        "status_message": status.description,
        "attributes": _span_attributes(span),
        "events": _span_events(span),
        "scope": scope.name if scope else None,
    }
    _scrubbed(scrub.span, record, ctx)
    return dumps(ctx.stamp(record))


def encode_log(log: Any, ctx: RecordContext) -> bytes:
    """An SDK log record (ReadableLogRecord) as one spool line."""
    record = log.log_record
    severity = record.severity_number
    body = record.body
    scope = getattr(log, "instrumentation_scope", None)
    return _log_line(
        ctx,
        time_ns=record.timestamp or record.observed_timestamp or time.time_ns(),
        severity_text=record.severity_text,
        severity_number=severity.value if severity is not None else None,
        body=body if isinstance(body, str) or body is None else str(body),
        trace_id=record.trace_id,
        span_id=record.span_id,
        attributes=dict(record.attributes or {}),
        scope=scope.name if scope is not None else None,
    )


def encode_plain_log(
    severity_text: str,
    severity_number: int,
    body: str,
    attributes: dict[str, Any],
    ctx: RecordContext,
    *,
    time_ns: int | None = None,
    scope: str = "obsdash.unhandled",
) -> bytes | None:
    """A log line made without the SDK: `logging` records and unhandled exceptions; None when the scrubber failed
    on it (dropped and counted)."""
    trace_id = span_id = None
    trace_api = sys.modules.get("opentelemetry.trace")
    if trace_api is not None:
        span_context = trace_api.get_current_span().get_span_context()
        if span_context.is_valid:
            trace_id, span_id = span_context.trace_id, span_context.span_id
    try:
        return _log_line(
            ctx,
            time_ns=time_ns or time.time_ns(),
            severity_text=severity_text,
            severity_number=severity_number,
            body=body,
            trace_id=trace_id,
            span_id=span_id,
            attributes=attributes,
            scope=scope,
        )
    except RecordDropped:
        return None  # already counted


def _log_line(
    ctx: RecordContext,
    *,
    time_ns: int,
    severity_text: str | None,
    severity_number: int | None,
    body: str | None,
    trace_id: int | None,
    span_id: int | None,
    attributes: dict[str, Any],
    scope: str | None,
) -> bytes:
    """The one shape of a log line, whichever path made the record."""
    line = {
        "time_ns": time_ns,
        "severity_text": severity_text,
        "severity_number": severity_number,
        "body": body,
        "trace_id": _hex_trace(trace_id),
        "span_id": _hex_span(span_id),
        "attributes": with_exception_location(attributes),
        "scope": scope,
    }
    _scrubbed(scrub.log, line, ctx)
    return dumps(ctx.stamp(line))


def encode_metrics(metrics_data: Any, ctx: RecordContext) -> Iterable[bytes]:
    """Every data point of an SDK MetricsData as spool lines (delta temporality: one interval each)."""
    for resource_metrics in metrics_data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                kind = type(metric.data).__name__.lower()
                for point in metric.data.data_points:
                    record = _metric_point(metric, kind, point)
                    try:
                        _scrubbed(scrub.metric_point, record, ctx)
                    except RecordDropped:
                        continue  # counted; the other points of the batch still go
                    yield dumps(ctx.stamp(record))


def _metric_point(metric: Any, kind: str, point: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "time_ns": point.time_unix_nano,
        "start_ns": getattr(point, "start_time_unix_nano", None),
        "name": metric.name,
        "unit": metric.unit,
        "kind": kind,
        "attributes": dict(point.attributes or {}),
    }
    if hasattr(point, "value"):
        record["value"] = point.value
    else:
        record.update(
            count=point.count,
            sum=point.sum,
            min=getattr(point, "min", None),
            max=getattr(point, "max", None),
            bucket_counts=list(getattr(point, "bucket_counts", []) or []),
            explicit_bounds=list(getattr(point, "explicit_bounds", []) or []),
        )
    return record
