"""Metrics: which ones were captured in the window, and one metric as a series for a chart.

Per bucket: gauges average their points; sums (delta temporality, as the app side exports them) add up;
histograms show their mean (sum of sums / sum of counts).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from obsdash.store.queries import Reader, fetch
from obsdash.store.queries.window import Buckets

MAX_METRICS = 500

AGGREGATES = {
    "gauge": "avg(value)",
    "sum": "sum(value)",
    "histogram": "sum(sum) / nullif(sum(count), 0)",
    "exponentialhistogram": "sum(sum) / nullif(sum(count), 0)",
}


@dataclass(frozen=True)
class MetricInfo:
    """One metric name seen in the window."""

    name: str
    unit: str
    kind: str
    points: int
    services: list[str]


@dataclass(frozen=True)
class MetricSeries:
    """One metric over the window, a value per bucket (None where nothing was recorded)."""

    info: MetricInfo
    buckets: Buckets
    values: list[float | None]

    @property
    def what(self) -> str:
        """What each value is, for the chart's caption."""
        return {"gauge": "average", "sum": "total per bucket"}.get(self.info.kind, "mean per bucket")


def list_metrics(reader: Reader, since: datetime) -> list[MetricInfo]:
    """Metric names with points since `since`."""
    rows = fetch(
        reader,
        """SELECT name, any_value(unit) AS unit, any_value(kind) AS kind, count(*) AS points,
                  list(DISTINCT service_name) AS services
           FROM metric_points WHERE time >= ? GROUP BY name ORDER BY name LIMIT ?""",
        [since, MAX_METRICS],
        max_rows=MAX_METRICS,
    )
    return [
        MetricInfo(r["name"], r["unit"] or "", r["kind"] or "", int(r["points"]), sorted(r["services"] or []))
        for r in rows
    ]


def metric_series(reader: Reader, info: MetricInfo, buckets: Buckets) -> MetricSeries:
    """`info`'s values per bucket of `buckets`, all attribute sets together."""
    aggregate = AGGREGATES.get(info.kind, "avg(value)")
    rows = fetch(
        reader,
        f"""SELECT {buckets.sql_index("time")} AS b, {aggregate} AS v FROM metric_points
            WHERE name = ? AND time >= ? GROUP BY 1""",
        [info.name, buckets.start],
        max_rows=buckets.count + 1,
    )
    values: list[float | None] = [None] * buckets.count
    for r in rows:
        if r["b"] is not None and 0 <= r["b"] < buckets.count and r["v"] is not None:
            values[int(r["b"])] = float(r["v"])
    return MetricSeries(info, buckets, values)


def first_point_time(reader: Reader) -> datetime | None:
    """When the oldest metric point in the store was recorded (for the `all` window's chart)."""
    rows = fetch(reader, "SELECT min(time) AS t FROM metric_points")
    return rows[0]["t"] if rows else None
