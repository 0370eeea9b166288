"""The per-minute rollup of spans (`route_minutes`), from which the overview answers long windows (P6).

One row per (minute of `start_time`, service, root or not, route, kind): how many spans, how many failed, the
first start and the last end, and — for root spans — a histogram of their durations in fixed log-scale buckets
(`RATIO` wide, so a percentile read from it is within ±5 % of the exact one). The overview's `all` window read
every span of the store (route percentiles 245–280 ms, series 133–202 ms, services 112–147 ms at 10M spans);
the rollup of the same store holds 11.5k rows (24 h) or 115k rows (240 h).

It always equals an aggregate of the `spans` table:
- ingest merges each batch's aggregate into it in the batch's own transaction (`MERGE_BATCH`, registered in
  `ingest.INSERTS["spans"]`), so late spans for an old minute are added to that minute's row;
- retention deletes the rows of the minutes it deleted spans from, and recomputes the minute its cut falls in
  from the spans left (`prune_before`, in the prune's transaction);
- a store written before the rollup existed is backfilled once at open (`backfill`, called by `schema.create`):
  1M spans in 0.2 s, 10M over 24 h in 0.7 s, over 240 h in 1.5 s on a 2-core box.

Measured (bench.dashboard, host median): route stats + series + services for `all` at 10M spans went from
446-463 ms to 51-116 ms; at 1M from 51 to 28 ms.
"""

from __future__ import annotations

import logging
import math
import time
from datetime import datetime, timedelta
from typing import Any

log = logging.getLogger(__name__)

VERSION = "1"
"""Stored as `rollup_version` in `obsdash_meta`; a store with another value (or none) is backfilled at open."""
BASE_MS = 0.001
"""Bucket 1 starts at 1 µs; bucket 0 holds anything shorter (and negative durations from skewed clocks)."""
RATIO = 1.1
"""Each bucket is 10 % wider than the one before: a value read as its bucket's geometric middle is off by at most
sqrt(1.1) - 1 = 4.9 %. Finer buckets mean more (minute, bucket) pairs to sum: 1.33M for 10M spans over 240 h."""
MAX_ERROR = math.sqrt(RATIO) - 1
BACKFILL_SLICE = timedelta(hours=24)
"""Spans per backfill statement: one day at a time keeps the aggregation's memory small under the hub's cap."""

TABLE = """
CREATE TABLE IF NOT EXISTS route_minutes (
    minute TIMESTAMP, service_name VARCHAR, is_root BOOLEAN, route VARCHAR, kind VARCHAR,
    spans BIGINT, errors BIGINT, first_start TIMESTAMP, last_end TIMESTAMP, hist MAP(SMALLINT, INTEGER)
);
"""
COLUMNS = "minute, service_name, is_root, route, kind, spans, errors, first_start, last_end, hist"

BUCKET = (
    f"CASE WHEN duration_ms >= {BASE_MS!r} "
    f"THEN CAST(least(1 + floor(ln(duration_ms / {BASE_MS!r}) / ln({RATIO!r})), 32767) AS SMALLINT) "
    "ELSE CAST(0 AS SMALLINT) END"
)


def aggregate(source: str) -> str:
    """SQL aggregating `source` into rollup rows. `source` has the columns start_time, end_time, duration_ms,
    service_name, is_root, route (coalesce(http_route, name) for roots, else NULL), kind (roots' only) and
    status_code."""
    return f"""
SELECT minute, service_name, is_root, route, kind, sum(n) AS spans, sum(e) AS errors,
       min(first_start) AS first_start, max(last_end) AS last_end,
       CASE WHEN is_root THEN CAST(map(list(b ORDER BY b), list(n ORDER BY b)) AS MAP(SMALLINT, INTEGER)) END
           AS hist
FROM (
    SELECT date_trunc('minute', start_time) AS minute, service_name, is_root, route, kind,
           CASE WHEN is_root THEN {BUCKET} END AS b,
           count(*) AS n, count(*) FILTER (WHERE status_code = 'ERROR') AS e,
           min(start_time) AS first_start, max(end_time) AS last_end
    FROM {source} GROUP BY ALL
) GROUP BY minute, service_name, is_root, route, kind"""


def spans_between(lower: str, upper: str | None = None) -> str:
    """The `spans` rows with `lower <= start_time < upper`, shaped for `aggregate` (SQL expressions)."""
    bound = f"start_time >= {lower}" + (f" AND start_time < {upper}" if upper else "")
    return f"""(SELECT start_time, end_time, duration_ms, service_name, is_root,
        CASE WHEN is_root THEN coalesce(http_route, name) END AS route, CASE WHEN is_root THEN kind END AS kind,
        status_code FROM spans WHERE {bound})"""


# `_batch` holds the batch's raw records (ingest.py derives the span columns the same way)
_BATCH = """(SELECT make_timestamp(start_ns // 1000) AS start_time, make_timestamp(end_ns // 1000) AS end_time,
        (end_ns - start_ns) / 1e6 AS duration_ms, service_name, is_root,
        CASE WHEN is_root THEN coalesce(json_extract_string(attributes, '$."http.route"'), name) END AS route,
        CASE WHEN is_root THEN kind END AS kind, status_code
    FROM (SELECT *, parent_span_id IS NULL OR coalesce(parent_remote, false) AS is_root FROM _batch))"""

_SAME_KEY = " AND ".join(
    ["t.minute = s.minute", "t.is_root = s.is_root"]
    + [f"t.{c} IS NOT DISTINCT FROM s.{c}" for c in ("service_name", "route", "kind")]
)
_MERGED_HIST = (
    "map_from_entries(list_transform(list_sort(list_distinct(map_keys(t.hist) || map_keys(s.hist))), "
    "lambda k: {'key': k, 'value': coalesce(t.hist[k], 0) + coalesce(s.hist[k], 0)}))"
)
MERGE_BATCH = f"""
MERGE INTO route_minutes t USING ({aggregate(_BATCH)}) s ON {_SAME_KEY}
WHEN MATCHED THEN UPDATE SET spans = t.spans + s.spans, errors = t.errors + s.errors,
    first_start = least(t.first_start, s.first_start), last_end = greatest(t.last_end, s.last_end),
    hist = CASE WHEN s.is_root THEN {_MERGED_HIST} END
WHEN NOT MATCHED THEN INSERT ({COLUMNS}) VALUES (s.minute, s.service_name, s.is_root, s.route, s.kind, s.spans,
    s.errors, s.first_start, s.last_end, s.hist)
"""
"""The ingest statement: the batch's rollup rows merged into the table (one row per key and minute stays one row
however many batches brought its spans: a hub syncing every 250 ms would otherwise add a row per batch)."""


def backfill(conn: Any) -> float | None:
    """Build the rollup from the stored spans when it is missing or of another version (a store written before
    it existed); the seconds it took, or None when it was up to date."""
    row = conn.execute("SELECT value FROM obsdash_meta WHERE key = 'rollup_version'").fetchone()
    if row and row[0] == VERSION:
        return None
    seconds, spans = rebuild(conn)
    if spans:
        log.warning(
            "obsdash: built the per-minute rollup of %d stored spans in %.1f s (once)", spans, seconds
        )
    return seconds


def rebuild(conn: Any) -> tuple[float, int]:
    """Replace the rollup with one aggregated from every stored span, in one transaction (one statement per
    `BACKFILL_SLICE` of start times); (seconds, spans aggregated)."""
    started = time.perf_counter()
    spans = 0
    conn.execute("BEGIN TRANSACTION")
    try:
        conn.execute("DELETE FROM route_minutes")
        first, last, spans = conn.execute(
            "SELECT min(start_time), max(start_time), count(*) FROM spans"
        ).fetchone()
        lower = floor_minute(first) if first is not None else None
        while lower is not None and lower <= last:
            upper = lower + BACKFILL_SLICE
            conn.execute(
                f"INSERT INTO route_minutes ({COLUMNS}) {aggregate(spans_between('$lower', '$upper'))}",
                {"lower": lower, "upper": upper},
            )
            lower = upper
        conn.execute("INSERT OR REPLACE INTO obsdash_meta VALUES ('rollup_version', ?)", [VERSION])
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return time.perf_counter() - started, int(spans)


def prune_before(conn: Any, cut: datetime) -> int:
    """After `DELETE FROM spans WHERE start_time < cut` in the same transaction: drop the rollup rows of the
    minutes before `cut`'s, and recompute `cut`'s own minute from the spans left in it. Rows deleted."""
    minute = floor_minute(cut)
    (deleted,) = conn.execute("DELETE FROM route_minutes WHERE minute < ?", [minute]).fetchone()
    if minute != cut:
        (redone,) = conn.execute("DELETE FROM route_minutes WHERE minute = ?", [minute]).fetchone()
        deleted += redone
        conn.execute(
            f"INSERT INTO route_minutes ({COLUMNS}) {aggregate(spans_between('$lower', '$upper'))}",
            {"lower": minute, "upper": minute + timedelta(minutes=1)},
        )
    return int(deleted)


def floor_minute(t: datetime) -> datetime:
    """The start of `t`'s minute."""
    return t.replace(second=0, microsecond=0)


def ceil_minute(t: datetime) -> datetime:
    """The first whole minute at or after `t`."""
    floor = floor_minute(t)
    return floor if floor == t else floor + timedelta(minutes=1)


def bucket_value(bucket: int) -> float:
    """The duration (ms) a bucket stands for: the geometric middle of its bounds (0 for bucket 0)."""
    return 0.0 if bucket <= 0 else BASE_MS * RATIO ** (bucket - 1) * math.sqrt(RATIO)


def quantiles(buckets: list[int], counts: list[int], qs: tuple[float, ...]) -> list[float]:
    """`qs` of a histogram (buckets ascending), as DuckDB's `quantile_cont` would give them from the values
    themselves: the ranks around (n - 1) * q, interpolated; each rank read as its bucket's value."""
    total = sum(counts)
    if total == 0:
        return [math.nan for _ in qs]
    ends = []
    running = 0
    for count in counts:
        running += count
        ends.append(running)

    def at(rank: int) -> float:
        for bucket, end in zip(buckets, ends, strict=True):
            if rank < end:
                return bucket_value(bucket)
        return bucket_value(buckets[-1])

    out = []
    for q in qs:
        h = (total - 1) * q
        lo = math.floor(h)
        low, high = at(lo), at(math.ceil(h))
        out.append(low + (h - lo) * (high - low))
    return out
