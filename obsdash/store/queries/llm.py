"""LLM spend over a window, from the `llm_calls_since` macro (one row per real call, priced at query time).

Totals, the four breakdowns (model, provider, route, service) and the cost chart come from one scan with GROUPING
SETS; the most expensive calls from a second. Money is the sum of `cost_usd` over priced calls only:
a call whose model genai-prices does not know is counted as unpriced, one that reported no usage (a stream
without `include_usage`) as such — neither is ever taken as $0. The burn rate divides the window's spend by the
time the window saw LLM traffic (at least MIN_TRAFFIC_S), as the overview does for request rates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from obsdash.store.queries import Reader, fetch
from obsdash.store.queries.window import Buckets, Window

DIMENSIONS = ("model", "provider", "route", "service")
"""What the spend can be broken down by, in the order the dashboard cycles through them."""
_COLUMNS = {"model": "model", "provider": "provider", "route": "route", "service": "service_name"}
MAX_GROUPS = 200
MAX_CALLS = 100
MIN_TRAFFIC_S = 60.0
"""A projection from a single call just made would multiply it by 86,400: spread it over at least a minute."""
DAYS_PER_MONTH = 30


@dataclass(frozen=True)
class SpendGroup:
    """Calls, tokens and money of one model, provider, route or service (or of them all: `key` None)."""

    key: str | None
    calls: int
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    cost_usd: float
    """Of the priced calls only."""
    priced: int
    unpriced: int
    """Calls with usage whose model has no price."""
    no_usage: int
    """Calls that reported no usage."""
    failed: int
    cache_savings_usd: float
    first_call: datetime | None
    last_call: datetime | None

    @property
    def tokens(self) -> int:
        """Input and output tokens (cached input tokens are part of the input)."""
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True)
class BurnRate:
    """The window's spend projected forward: what a day and a month cost if traffic goes on like this."""

    spend_usd: float
    seconds: float
    """How long the window saw LLM traffic (from its first call to now), at least MIN_TRAFFIC_S."""

    @property
    def per_day_usd(self) -> float:
        """Projected spend per day."""
        return self.spend_usd / self.seconds * 86_400 if self.seconds else 0.0

    @property
    def per_month_usd(self) -> float:
        """Projected spend per 30-day month."""
        return self.per_day_usd * DAYS_PER_MONTH

    def over(self, budget_per_day: float | None) -> bool:
        """Whether the projection exceeds a daily budget (never, without one)."""
        return budget_per_day is not None and self.per_day_usd > budget_per_day


@dataclass(frozen=True)
class LlmCall:
    """One call, for the most-expensive list."""

    time: datetime
    trace_id: str
    span_id: str
    service: str
    route: str | None
    provider: str | None
    model: str | None
    input_tokens: int | None
    output_tokens: int | None
    cache_read_tokens: int | None
    cost_usd: float | None
    streamed: bool
    usage_reported: bool


@dataclass(frozen=True)
class LlmSpend:
    """Everything the LLM screen shows for one window."""

    totals: SpendGroup
    groups: dict[str, list[SpendGroup]]
    """By dimension (DIMENSIONS), most expensive first."""
    burn: BurnRate
    buckets: Buckets
    cost_series: list[float] = field(default_factory=list)
    """Cost of the priced calls per bucket."""
    top_calls: list[LlmCall] = field(default_factory=list)

    @property
    def calls(self) -> int:
        """Calls in the window."""
        return self.totals.calls


GROUPS_SQL = """
SELECT {keys}
       count(*) AS calls, coalesce(sum(input_tokens), 0) AS input_tokens,
       coalesce(sum(output_tokens), 0) AS output_tokens, coalesce(sum(cache_read_tokens), 0) AS cache_read_tokens,
       coalesce(sum(cache_write_tokens), 0) AS cache_write_tokens, coalesce(sum(cost_usd), 0) AS cost_usd,
       count(cost_usd) AS priced,
       count(*) FILTER (WHERE usage_reported AND NOT priced) AS unpriced,
       count(*) FILTER (WHERE NOT usage_reported) AS no_usage,
       count(*) FILTER (WHERE failed) AS failed,
       coalesce(sum(cache_savings_usd), 0) AS cache_savings_usd,
       min(time) AS first_call, max(time) AS last_call
FROM (SELECT *, {bucket} AS bucket FROM llm_calls_since(CAST(? AS TIMESTAMP)))
{group_by}
"""
BREAKDOWN_KEYS = """GROUPING(model) = 0 AS by_model, GROUPING(provider) = 0 AS by_provider,
       GROUPING(route) = 0 AS by_route, GROUPING(service_name) = 0 AS by_service,
       GROUPING(bucket) = 0 AS by_bucket, model, provider, route, service_name, bucket,"""
# The chart's buckets are one more grouping set: the screen's figures cost two scans of the calls, not three.
# At most MAX_GROUPS rows per set, the most expensive, so a store with thousands of routes cannot crowd out the
# totals or another breakdown.
BREAKDOWN_GROUPS = f"""GROUP BY GROUPING SETS ((), (model), (provider), (route), (service_name), (bucket))
QUALIFY row_number() OVER (
    PARTITION BY GROUPING(model, provider, route, service_name, bucket)
    ORDER BY sum(cost_usd) DESC NULLS LAST, count(*) DESC
) <= {MAX_GROUPS}"""
TOTAL_KEYS = (
    "false AS by_model, false AS by_provider, false AS by_route, false AS by_service, false AS by_bucket,"
)

TOP_CALLS_SQL = """
SELECT time, trace_id, span_id, service_name, route, provider, model, input_tokens, output_tokens,
       cache_read_tokens, cost_usd, streamed, usage_reported
FROM llm_calls_since(CAST(? AS TIMESTAMP))
ORDER BY cost_usd DESC NULLS LAST, coalesce(input_tokens, 0) + coalesce(output_tokens, 0) DESC, time DESC
LIMIT ?
"""


def _group(row: dict[str, Any], key: str | None) -> SpendGroup:
    return SpendGroup(
        key=key,
        calls=int(row["calls"]),
        input_tokens=int(row["input_tokens"]),
        output_tokens=int(row["output_tokens"]),
        cache_read_tokens=int(row["cache_read_tokens"]),
        cache_write_tokens=int(row["cache_write_tokens"]),
        cost_usd=float(row["cost_usd"]),
        priced=int(row["priced"]),
        unpriced=int(row["unpriced"]),
        no_usage=int(row["no_usage"]),
        failed=int(row["failed"]),
        cache_savings_usd=float(row["cache_savings_usd"]),
        first_call=row["first_call"],
        last_call=row["last_call"],
    )


EMPTY = SpendGroup(None, 0, 0, 0, 0, 0, 0.0, 0, 0, 0, 0, 0.0, None, None)


def spend_totals(reader: Reader, since: datetime) -> SpendGroup:
    """Calls, tokens and money of every call since `since`."""
    rows = fetch(reader, GROUPS_SQL.format(keys=TOTAL_KEYS, bucket="NULL", group_by=""), [since], max_rows=1)
    return _group(rows[0], None) if rows else EMPTY


def spend_groups(
    reader: Reader, since: datetime, buckets: Buckets
) -> tuple[SpendGroup, dict[str, list[SpendGroup]], list[float]]:
    """Totals over every call since `since`, the same figures per model, provider, route and service (most
    expensive first), and the cost of the priced calls per bucket of `buckets`."""
    sql = GROUPS_SQL.format(keys=BREAKDOWN_KEYS, bucket=buckets.sql_index("time"), group_by=BREAKDOWN_GROUPS)
    rows = fetch(reader, sql, [since], max_rows=(len(DIMENSIONS) + 1) * MAX_GROUPS + 1)
    totals = EMPTY
    groups: dict[str, list[SpendGroup]] = {dimension: [] for dimension in DIMENSIONS}
    costs: dict[int, float] = {}
    for row in rows:
        dimension = next((d for d in DIMENSIONS if row[f"by_{d}"]), None)
        if row["by_bucket"]:
            if row["bucket"] is not None and 0 <= row["bucket"] < buckets.count:
                costs[int(row["bucket"])] = float(row["cost_usd"])
        elif dimension is None:
            totals = _group(row, None)
        else:
            groups[dimension].append(_group(row, row[_COLUMNS[dimension]]))
    for found in groups.values():
        found.sort(key=lambda g: (-g.cost_usd, -g.tokens, g.key or ""))
    return totals, groups, buckets.spread(costs)


def burn_rate(totals: SpendGroup, now: datetime) -> BurnRate:
    """The window's spend over the time it saw LLM traffic."""
    if totals.first_call is None:
        return BurnRate(0.0, 0.0)
    seconds = max((now - totals.first_call).total_seconds(), MIN_TRAFFIC_S)
    return BurnRate(totals.cost_usd, seconds)


def top_calls(reader: Reader, since: datetime, limit: int = MAX_CALLS) -> list[LlmCall]:
    """The most expensive calls since `since` (then unpriced ones, by tokens)."""
    rows = fetch(reader, TOP_CALLS_SQL, [since, limit], max_rows=limit)
    return [
        LlmCall(
            time=r["time"],
            trace_id=r["trace_id"],
            span_id=r["span_id"],
            service=r["service_name"] or "?",
            route=r["route"],
            provider=r["provider"],
            model=r["model"],
            input_tokens=r["input_tokens"],
            output_tokens=r["output_tokens"],
            cache_read_tokens=r["cache_read_tokens"],
            cost_usd=r["cost_usd"],
            streamed=bool(r["streamed"]),
            usage_reported=bool(r["usage_reported"]),
        )
        for r in rows
    ]


def spend_summary(reader: Reader, window: Window, now: datetime) -> tuple[SpendGroup, BurnRate]:
    """Totals and burn rate only (the overview's spend line, `obsdash tail --budget-per-day`)."""
    totals = spend_totals(reader, window.start(now))
    return totals, burn_rate(totals, now)


def first_genai_time(reader: Reader) -> datetime | None:
    """When the oldest span naming a model started (for the `all` window's chart)."""
    rows = fetch(reader, "SELECT min(start_time) AS t FROM spans WHERE gen_ai_model IS NOT NULL")
    return rows[0]["t"] if rows else None


def llm_spend(reader: Reader, window: Window, now: datetime) -> LlmSpend:
    """All of the LLM screen's figures for `window` ending at `now`."""
    since = window.start(now)
    start = since if window.seconds is not None else (first_genai_time(reader) or now)
    buckets = Buckets.covering(start, now)
    totals, groups, series = spend_groups(reader, since, buckets)
    return LlmSpend(
        totals=totals,
        groups=groups,
        burn=burn_rate(totals, now),
        buckets=buckets,
        cost_series=series,
        top_calls=top_calls(reader, since) if totals.calls else [],
    )
