"""OTLP export requests → spool lines: the fields `obsdash_instrumenters.encode` writes (docs/spool-format.md).

Per resource: `resource` is its attributes (scrubbed), `service_name` its `service.name` (else
"unknown_service"), `pid` its `process.pid` (else null). `run_id`: an OTLP sender has no obsdash run, so its
records go to a synthetic run per service and day, `otlp-<service>-<yyyymmdd>` (the local day the intake received
them), unless the resource names one in `obsdash.run_id` (obsdash's own OTLP export does, so a round trip keeps
its runs). The first time this intake sees a (run, pid) it writes a `start` run record for it (the first of a
run is its root), so `runs`, the Overview and `obsdash report` list it; no `end` record is ever written.

Spans: kind and status enums by name; an unspecified kind is INTERNAL (as the specification says). A span's
`parent_remote` comes from the span flags when the sender sets them (SDKs since 2024 do); without them a SERVER
or CONSUMER span with a parent is taken as a remote child (the usual case), anything else as local. Links,
trace state and dropped counts are not kept (the spool has no field for them).
Logs: a body that is not a string is JSON-encoded; `event_name` becomes the `event.name` attribute.
Metrics: gauge and sum points → `value`; histograms → count/sum/min/max/bucket_counts/explicit_bounds;
exponential histograms and summaries → count/sum/min/max only (their buckets and quantiles are not kept);
cumulative monotonic sums and histograms → delta (delta.py). Points flagged "no recorded value" are skipped.

Everything is scrubbed like an in-app record (obsdash_instrumenters.scrub) before it is encoded; a record the
scrubber fails on is rejected (fail closed). A record that cannot be stored (bad ids or times) is rejected and
counted; the rest of the request is kept.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
from obsdash_instrumenters import scrub
from obsdash_instrumenters.encode import dumps, with_exception_location

from obsdash.otlp.delta import DeltaConverter
from obsdash.otlp.values import (
    Rejected,
    attributes,
    count,
    hex_id,
    optional_hex_id,
    optional_time_ns,
    pid,
    plain,
    time_ns,
)

UNKNOWN_SERVICE = "unknown_service"
SPOOL_KINDS = {"traces": "spans", "logs": "logs", "metrics": "metrics"}
# Span kinds by OTLP number; 0 (unspecified), 1 (internal) and unknown numbers are INTERNAL.
SPAN_KINDS = {2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}
STATUS_CODES = {1: "OK", 2: "ERROR"}  # 0 and unknown: UNSET
_HAS_IS_REMOTE, _IS_REMOTE = 0x100, 0x200
_CUMULATIVE = 2
_NO_RECORDED_VALUE = 1
_MAX_RUN_ID = 128


class Lines(Protocol):
    """A list of lines, or a segment file taking them as they come."""

    def append(self, line: bytes, /) -> None: ...

    def __len__(self) -> int: ...


@dataclass
class Batch:
    """What one request became: spool lines of its kind, run records, and what was rejected and why."""

    kind: str
    lines: Lines = field(default_factory=list[bytes])
    """Where the lines go: a list, or the segment file being written (segments.PendingSegment)."""
    runs: list[bytes] = field(default_factory=list)
    rejected: int = 0
    error: str | None = None
    new_runs: list[tuple[str, int | None]] = field(default_factory=list)

    def reject(self, reason: str) -> None:
        self.rejected += 1
        if self.error is None:
            self.error = reason


class Origin:
    """What every record from one OTLP resource carries."""

    def __init__(self, resource_attributes: dict[str, Any], day: str) -> None:
        try:
            resource = scrub.resource(resource_attributes)
        except Exception:  # fail closed: only the two fields the records need, never unscrubbed values
            resource = {k: resource_attributes.get(k) for k in ("service.name", "process.pid")}
        service = resource.get("service.name")
        self.service_name = service if isinstance(service, str) and service else UNKNOWN_SERVICE
        run_id = resource.get("obsdash.run_id")
        if isinstance(run_id, str) and 0 < len(run_id) <= _MAX_RUN_ID:
            self.run_id = run_id
        else:
            self.run_id = f"otlp-{_slug(self.service_name)}-{day}"
        self.pid = pid(resource.get("process.pid"))
        self.resource = resource
        self.resource_json = orjson.dumps(resource, default=str, option=orjson.OPT_SORT_KEYS)
        self._fragment = orjson.Fragment(self.resource_json)

    def line(self, record: dict[str, Any]) -> bytes:
        """The record with the per-resource fields, as one spool line (with its newline)."""
        record["service_name"] = self.service_name
        record["run_id"] = self.run_id
        record["pid"] = self.pid
        record["resource"] = self._fragment
        # `+ b"\n"` also makes an exact-size copy: orjson's bytes keep a 4-8 kB buffer behind each ~700 B line (a
        # list of 20k of them held 156 MB instead of 13 MB, before lines were streamed to the segment file).
        try:
            return dumps(record) + b"\n"
        except orjson.JSONEncodeError as exc:
            raise Rejected(f"cannot be encoded: {exc}") from None


def _or_list(lines: Lines | None) -> Lines:
    return list[bytes]() if lines is None else lines


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)[:64] or "_"


class Converter:
    """Turns decoded OTLP requests into spool lines; one per intake, shared by its request threads."""

    def __init__(self, started_ns: int | None = None) -> None:
        self.delta = DeltaConverter(started_ns if started_ns is not None else time.time_ns())
        self.host = os.uname().nodename
        self._runs_seen: set[tuple[str, int | None]] = set()
        self._runs_rooted: set[str] = set()
        self._lock = threading.Lock()

    def convert(self, signal: str, request: Any, lines: Lines | None = None) -> Batch:
        """The spool lines for one request (`signal`: traces, metrics or logs), into `lines` (default: a list)."""
        day = time.strftime("%Y%m%d")
        if signal == "traces":
            return self._records(Batch("spans", _or_list(lines)), request.resource_spans, day)
        if signal == "logs":
            return self._records(Batch("logs", _or_list(lines)), request.resource_logs, day)
        batch = Batch("metrics", _or_list(lines))
        for group in request.resource_metrics:
            origin = self._origin(group.resource, day, batch)
            for scope_group in group.scope_metrics:
                for metric in scope_group.metrics:
                    try:
                        self._metric(batch, origin, scope_group.scope.name, metric)
                    except Rejected as exc:  # the metric itself is malformed (OTLP/JSON): one rejection
                        batch.reject(str(exc))
        return batch

    def _records(self, batch: Batch, groups: Any, day: str) -> Batch:
        """Spans or log records: one spool line each."""
        build, scrubber = (_span, scrub.span) if batch.kind == "spans" else (_log, scrub.log)
        for group in groups:
            origin = self._origin(group.resource, day, batch)
            for scope_group in group.scope_spans if batch.kind == "spans" else group.scope_logs:
                scope = scope_group.scope.name or None
                for item in scope_group.spans if batch.kind == "spans" else scope_group.log_records:
                    self._add(batch, origin, build, item, scope=scope, scrubber=scrubber)
        return batch

    def runs_written(self, batch: Batch) -> None:
        """The batch's run records are in the spool: do not write them again."""
        with self._lock:
            self._runs_seen.update(batch.new_runs)
            self._runs_rooted.update(run_id for run_id, _ in batch.new_runs)

    def _origin(self, resource: Any, day: str, batch: Batch) -> Origin:
        origin = Origin(attributes(resource.attributes), day)
        key = (origin.run_id, origin.pid)
        with self._lock:
            if key in self._runs_seen or key in batch.new_runs:
                return origin
            root = origin.run_id not in self._runs_rooted
        root = root and all(run_id != origin.run_id for run_id, _ in batch.new_runs)
        batch.new_runs.append(key)
        batch.runs.append(origin.line(self._start_record(origin, root)))
        return origin

    def _start_record(self, origin: Origin, root: bool) -> dict[str, Any]:
        resource = origin.resource
        host = resource.get("host.name")
        command = resource.get("process.command_line") or resource.get("process.command_args")
        if isinstance(command, list):
            command = " ".join(str(arg) for arg in command)
        return {
            "event": "start",
            "time_ns": time.time_ns(),
            "host": host if isinstance(host, str) else self.host,
            "command": command if isinstance(command, str) else f"(OTLP) {origin.service_name}",
            "argv": [],
            "root": root,
            "parent_pid": pid(resource.get("process.parent_pid")),
            "startup_ms": None,
        }

    def _add(
        self,
        batch: Batch,
        origin: Origin,
        build: Callable[[Any, str | None], dict[str, Any]],
        item: Any,
        *,
        scope: str | None,
        scrubber: Callable[[dict[str, Any]], None],
    ) -> None:
        try:
            record = build(item, scope)
        except Rejected as exc:
            batch.reject(str(exc))
            return
        try:
            scrubber(record)
        except Exception as exc:  # fail closed: never write what could not be scrubbed
            batch.reject(f"could not scrub the record: {type(exc).__name__}")
            return
        try:
            batch.lines.append(origin.line(record))
        except Rejected as exc:
            batch.reject(str(exc))

    def _metric(self, batch: Batch, origin: Origin, scope: str, metric: Any) -> None:
        data = metric.WhichOneof("data")
        if data is None:
            return
        body = getattr(metric, data)
        convert_to_delta = getattr(body, "aggregation_temporality", 0) == _CUMULATIVE and (
            data != "sum" or body.is_monotonic
        )
        for point in body.data_points:
            if point.flags & _NO_RECORDED_VALUE:
                continue
            try:
                record = _metric_point(metric, data, point)
                scrub.metric_point(record)
            except Rejected as exc:
                batch.reject(str(exc))
                continue
            except Exception as exc:  # fail closed
                batch.reject(f"could not scrub the record: {type(exc).__name__}")
                continue
            if convert_to_delta:
                key = orjson.dumps(
                    [origin.resource_json.decode(), scope, metric.name, data, record["attributes"]],
                    default=str,
                    option=orjson.OPT_SORT_KEYS,
                )
                converted = self.delta.convert(key, record)
                if converted is None:
                    continue
                record = converted
            try:
                batch.lines.append(origin.line(record))
            except Rejected as exc:
                batch.reject(str(exc))


def _span(span: Any, scope: str | None) -> dict[str, Any]:
    start = time_ns(span.start_time_unix_nano, "start_time_unix_nano")
    end = time_ns(span.end_time_unix_nano, "end_time_unix_nano")
    if end < start:
        raise Rejected("end_time_unix_nano is before start_time_unix_nano")
    kind = SPAN_KINDS.get(span.kind, "INTERNAL")
    parent = optional_hex_id(span.parent_span_id, 8, "parent_span_id")
    if parent is None:
        remote = None
    elif span.flags & _HAS_IS_REMOTE:
        remote = bool(span.flags & _IS_REMOTE)
    else:
        remote = kind in ("SERVER", "CONSUMER")
    return {
        "trace_id": hex_id(span.trace_id, 16, "trace_id"),
        "span_id": hex_id(span.span_id, 8, "span_id"),
        "parent_span_id": parent,
        "parent_remote": remote,
        "name": span.name,
        "kind": kind,
        "start_ns": start,
        "end_ns": end,
        "status_code": STATUS_CODES.get(span.status.code, "UNSET"),
        "status_message": span.status.message or None,
        "attributes": attributes(span.attributes),
        "events": [
            {
                "name": event.name,
                "time_ns": optional_time_ns(event.time_unix_nano) or start,
                "attributes": with_exception_location(attributes(event.attributes)),
            }
            for event in span.events
        ],
        "scope": scope,
    }


def _log(log: Any, scope: str | None) -> dict[str, Any]:
    body: Any = plain(log.body) if log.HasField("body") else None
    if body is not None and not isinstance(body, str):
        body = orjson.dumps(body).decode()
    attrs = attributes(log.attributes)
    if log.event_name:
        attrs.setdefault("event.name", log.event_name)
    return {
        "time_ns": optional_time_ns(log.time_unix_nano)
        or optional_time_ns(log.observed_time_unix_nano)
        or time.time_ns(),
        "severity_text": log.severity_text or None,
        "severity_number": log.severity_number or None,
        "body": body,
        "trace_id": optional_hex_id(log.trace_id, 16, "trace_id"),
        "span_id": optional_hex_id(log.span_id, 8, "span_id"),
        "attributes": with_exception_location(attrs),
        "scope": scope,
    }


_KIND_NAMES = {"exponential_histogram": "exponentialhistogram"}  # the in-app encoder's SDK type names


def _metric_point(metric: Any, data: str, point: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "time_ns": time_ns(point.time_unix_nano, "time_unix_nano"),
        "start_ns": optional_time_ns(point.start_time_unix_nano),
        "name": metric.name,
        "unit": metric.unit,
        "kind": _KIND_NAMES.get(data, data),
        "attributes": attributes(point.attributes),
    }
    if data in ("sum", "gauge"):
        which = point.WhichOneof("value")
        if which is None:
            raise Rejected("a number data point without a value")
        record["value"] = getattr(point, which)
        return record
    bounds = list(point.explicit_bounds) if data == "histogram" else []
    buckets = [count(n, "bucket_counts") for n in point.bucket_counts] if data == "histogram" else []
    if buckets and len(buckets) != len(bounds) + 1:
        raise Rejected(f"{len(buckets)} bucket_counts for {len(bounds)} explicit_bounds")
    record.update(
        count=count(point.count, "count"),
        sum=point.sum if data == "summary" or point.HasField("sum") else None,
        min=point.min if data != "summary" and point.HasField("min") else None,
        max=point.max if data != "summary" and point.HasField("max") else None,
        bucket_counts=buckets,
        explicit_bounds=bounds,
    )
    return record
