"""Stored rows (pages from store/queries/export.py) → the SDK objects the official OTLP encoders and exporters take.

Spans and log records are built by the in-app converter (obsdash_instrumenters.otlp_records), so OTLP out from
the app and from the store send the same shapes. Metric points are regrouped here into MetricsData: one resource
per (service, run, pid) — the store keeps no other resource attributes for points — one scope `obsdash.export`,
one metric per (name, unit, kind, temporality). Temporality is not stored: sums are sent as delta and monotonic
except the series `level_series` found holding levels (cumulative up-down counters); histograms as delta;
exponential histograms and summaries (kept as count/sum/min/max only) as histograms without buckets.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from obsdash_instrumenters import otlp_records
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

SCOPE = InstrumentationScope("obsdash.export")
DELTA = AggregationTemporality.DELTA


def spans(rows: Iterable[dict[str, Any]], resources: otlp_records.Resources) -> list[Any]:
    """SDK ReadableSpans of span rows (with their `events` lists)."""
    return [otlp_records.span(row, resources) for row in rows]


def logs(rows: Iterable[dict[str, Any]], resources: otlp_records.Resources) -> list[Any]:
    """SDK ReadableLogRecords of log rows."""
    return [otlp_records.log(row, resources) for row in rows]


def _json_list(raw: Any) -> list[Any]:
    value = orjson.loads(raw) if isinstance(raw, (str, bytes)) and raw else raw
    return list(value) if isinstance(value, list) else []


def _point(row: dict[str, Any], attributes: dict[str, Any]) -> NumberDataPoint | HistogramDataPoint:
    start = int(row["start_ns"] if row["start_ns"] is not None else row["time_ns"])
    if row["kind"] in ("sum", "gauge"):
        number = row["value"]
        return NumberDataPoint(attributes, start, int(row["time_ns"]), number if number is not None else 0)
    buckets = [int(n) for n in _json_list(row["bucket_counts"])]
    bounds = [float(b) for b in _json_list(row["explicit_bounds"])]
    if len(buckets) != len(bounds) + 1:
        buckets, bounds = [], []
    return HistogramDataPoint(
        attributes,
        start,
        int(row["time_ns"]),
        count=int(row["count"] or 0),
        sum=row["sum"] if row["sum"] is not None else 0.0,
        bucket_counts=buckets,
        explicit_bounds=bounds,
        min=row["min"],
        max=row["max"],
    )


def metrics(rows: Iterable[dict[str, Any]], levels: set[tuple[Any, ...]]) -> MetricsData:
    """MetricsData of metric point rows; `levels` = level_series() of the same selection."""
    grouped: dict[tuple[Any, ...], dict[tuple[Any, ...], list[Any]]] = {}
    for row in rows:
        resource_key = (row["service_name"], row["run_id"], row["pid"])
        level = (row["name"], row["attributes"], row["pid"], row["run_id"]) in levels
        metric_key = (row["name"], row["unit"] or "", row["kind"], level)
        point = _point(row, otlp_records.attributes(row["attributes"]))
        grouped.setdefault(resource_key, {}).setdefault(metric_key, []).append(point)
    return MetricsData(
        resource_metrics=[
            ResourceMetrics(
                resource=_resource(*resource_key),
                scope_metrics=[
                    ScopeMetrics(SCOPE, [_metric(key, points) for key, points in by_metric.items()], "")
                ],
                schema_url="",
            )
            for resource_key, by_metric in grouped.items()
        ]
    )


def _resource(service: Any, run_id: Any, pid: Any) -> Resource:
    attributes: dict[str, Any] = {"service.name": service or "unknown_service"}
    if run_id:
        attributes["obsdash.run_id"] = run_id
    if pid is not None:
        attributes["process.pid"] = int(pid)
    return Resource(attributes)


def _metric(key: tuple[Any, ...], points: list[Any]) -> Metric:
    name, unit, kind, level = key
    data: Sum | Gauge | Histogram
    if kind == "sum":
        temporality = AggregationTemporality.CUMULATIVE if level else DELTA
        data = Sum(points, temporality, is_monotonic=not level)
    elif kind == "gauge":
        data = Gauge(points)
    else:
        data = Histogram(points, DELTA)
    return Metric(name, "", unit, data)


def point_count(data: MetricsData) -> int:
    """Data points in `data`."""
    return sum(
        len(metric.data.data_points)
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for metric in sm.metrics
    )
