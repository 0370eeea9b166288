"""Spool records (docs/spool-format.md) → the SDK objects the official OTLP exporters take.

Used by OTLP out in the app (otlp.py: the scrubbed lines the spool gets, sent again) and by `obsdash export` on
the dashboard side (stored rows reshaped as spool records). Building from the spool record, not from the live SDK
object, is what makes the collector get exactly what the local store gets: the same scrubbed values, the same
redactions counted once. What the spool format has no field for is not sent: span links, trace state, dropped
counts, scope versions.

Loaded only when OTLP is configured or an export runs: it imports the SDK's export types.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from opentelemetry._logs import LogRecord as APILogRecord
from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_INT64 = (-(1 << 63), (1 << 63) - 1)
_CACHE_SIZE = 256


def value(raw: Any) -> Any:
    """A JSON value as an OTLP AnyValue the encoder accepts: an int outside int64 becomes text (protobuf would
    refuse the whole attribute), anything else as it is."""
    kind = type(raw)
    if kind is int:
        return raw if _INT64[0] <= raw <= _INT64[1] else str(raw)
    if kind is list:
        return [value(item) for item in raw]
    if kind is dict:
        return {str(k): value(v) for k, v in raw.items()}
    return raw


def attributes(raw: Any) -> dict[str, Any]:
    """Record attributes (a dict, or JSON text from the store) as encoder-ready attributes; None values dropped."""
    if isinstance(raw, (str, bytes)):
        raw = orjson.loads(raw) if raw else {}
    if not isinstance(raw, dict):
        return {}
    return {str(k): value(v) for k, v in raw.items() if v is not None}


class Resources:
    """One SDK Resource per distinct resource of the records (the encoder groups records by resource)."""

    def __init__(self) -> None:
        self._cache: dict[bytes, Resource] = {}

    def of(self, record: Mapping[str, Any]) -> Resource:
        """The resource a record carries; `service.name` from the record when the resource lacks it."""
        raw = record.get("resource")
        if isinstance(raw, (str, bytes)):  # JSON text: from the store, or cut from a spool line (split_line)
            key = raw.encode() if isinstance(raw, str) else raw
        else:
            key = orjson.dumps(raw, option=orjson.OPT_SORT_KEYS)
        found = self._cache.get(key)
        if found is None:
            attrs = attributes(raw)
            if record.get("service_name") and "service.name" not in attrs:
                attrs["service.name"] = record["service_name"]
            if len(self._cache) >= _CACHE_SIZE:
                self._cache.clear()
            found = self._cache[key] = Resource(attrs)
        return found


def _scope(name: Any) -> InstrumentationScope:
    return InstrumentationScope(str(name) if name else "obsdash")


def span(record: Mapping[str, Any], resources: Resources) -> ReadableSpan:
    """One span record as a finished SDK span."""
    trace_id = int(record["trace_id"], 16)
    parent_id = record.get("parent_span_id")
    parent = (
        SpanContext(trace_id, int(parent_id, 16), is_remote=bool(record.get("parent_remote")))
        if parent_id
        else None
    )
    code = StatusCode[record.get("status_code") or "UNSET"]
    return ReadableSpan(
        name=str(record["name"]),
        context=SpanContext(trace_id, int(record["span_id"], 16), is_remote=False, trace_flags=_SAMPLED),
        parent=parent,
        resource=resources.of(record),
        attributes=attributes(record.get("attributes")),
        events=[
            Event(str(e.get("name")), attributes(e.get("attributes")), timestamp=int(e["time_ns"]))
            for e in record.get("events") or ()
        ],
        kind=SpanKind[record.get("kind") or "INTERNAL"],
        status=Status(code, record.get("status_message") if code is StatusCode.ERROR else None),
        start_time=int(record["start_ns"]),
        end_time=int(record["end_ns"]),
        instrumentation_scope=_scope(record.get("scope")),
    )


def log(record: Mapping[str, Any], resources: Resources) -> ReadableLogRecord:
    """One log record as an SDK log record."""
    trace_id = record.get("trace_id")
    span_id = record.get("span_id")
    number = record.get("severity_number")
    body = record.get("body")
    log_record = APILogRecord(
        timestamp=int(record["time_ns"]),
        observed_timestamp=int(record["time_ns"]),
        trace_id=int(trace_id, 16) if trace_id else 0,
        span_id=int(span_id, 16) if span_id else 0,
        trace_flags=_SAMPLED if trace_id else TraceFlags(0),
        severity_text=record.get("severity_text"),
        severity_number=SeverityNumber(number) if number in _SEVERITIES else None,
        body=value(body),
        attributes=attributes(record.get("attributes")),
    )
    return ReadableLogRecord(log_record, resources.of(record), _scope(record.get("scope")))


_SEVERITIES = frozenset(s.value for s in SeverityNumber)
