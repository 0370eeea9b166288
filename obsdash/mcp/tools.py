"""The MCP tools' answers over one window: errors, slow routes, LLM spend, capture health, and read-only SQL.

Each function takes a `Reader` (the hub's `Store`) and plain arguments and returns compact text (obsdash.mcp.text);
the SQL lives in obsdash/store/queries/ like every other query. Nothing here writes: user SQL goes through the
same read-only layers as `obsdash query` (the hub checks the statement, runs it in a rolled-back transaction, and
the database refuses files, ATTACH and extensions).
"""

from __future__ import annotations

from obsdash.mcp.text import bounded, clip, percent, stack_tail, table, usd, when
from obsdash.output import as_table
from obsdash.store.queries import Reader
from obsdash.store.queries.errors import error_groups
from obsdash.store.queries.health import health
from obsdash.store.queries.llm import SpendGroup, llm_spend
from obsdash.store.queries.overview import first_root_time, route_stats
from obsdash.store.queries.window import Window, utc_now, window_named

SQL_DEFAULT_ROWS = 100
SQL_MAX_ROWS = 1000
SPEND_ROWS = 15
"""Per breakdown of the LLM spend, the most expensive first."""
SORTS = {
    "p95": lambda r: -r.p95_ms,
    "p99": lambda r: -r.p99_ms,
    "requests": lambda r: -r.requests,
    "errors": lambda r: (-r.errors, -r.error_rate),
}


def describe(window: Window) -> str:
    """`the last 1h`, or `all time`."""
    return "all time" if window.seconds is None else f"the last {window.label}"


def recent_errors(reader: Reader, window: str = "24h", limit: int = 10) -> str:
    """Exceptions grouped by fingerprint over `window`, most recent first, each with a stack trace."""
    span = window_named(window)
    groups = error_groups(reader, span.start(utc_now()), limit=max(1, limit) + 1)
    if not groups:
        return f"No exceptions in {describe(span)}." + ("" if span.seconds is None else " Try window='all'.")
    shown = groups[:limit]
    lines = [f"{len(shown)} error group(s) in {describe(span)}, most recent first (times UTC, {now_line()}):"]
    for i, g in enumerate(shown, 1):
        routes = ", ".join(g.routes) or "(no route: outside a request)"
        lines += [
            "",
            f"[{i}] {clip(g.exception_type, 80)}: {clip(g.message, 300)}",
            f"    count {g.count} · first {when(g.first_seen)} · last {when(g.last_seen)}",
            f"    route {clip(routes, 200)} · service {', '.join(g.services)} · at {clip(g.location or '?', 120)}",
            f"    fingerprint {g.fingerprint} · example trace {g.example_trace_id or '-'}",
            "    stack (innermost last):",
            *stack_tail(g.stacktrace, indent="      "),
        ]
    if len(groups) > limit:
        lines += ["", f"[more groups than limit={limit}: raise the limit or narrow the window]"]
    return bounded(lines)


def slow_routes(reader: Reader, window: str = "1h", sort: str = "p95", limit: int = 20) -> str:
    """Per route: requests, errors, error %, p50/p95/p99 and rate over `window`, slowest first."""
    span = window_named(window)
    now = utc_now()
    since = span.start(now) if span.seconds is not None else (first_root_time(reader) or now)
    routes = route_stats(reader, since, now)
    if not routes:
        return f"No requests in {describe(span)}." + ("" if span.seconds is None else " Try window='all'.")
    routes.sort(key=SORTS.get(sort, SORTS["p95"]))
    shown = routes[: max(1, limit)]
    rows = [
        [
            r.service,
            r.route,
            "request" if r.role == "request" else f"background ({r.role})",
            r.requests,
            r.errors,
            percent(r.errors, r.requests),
            f"{r.p50_ms:.1f}",
            f"{r.p95_ms:.1f}",
            f"{r.p99_ms:.1f}",
            f"{r.rate_per_s:.3g}",
        ]
        for r in shown
    ]
    headers = [
        "service",
        "route",
        "kind",
        "requests",
        "errors",
        "err%",
        "p50_ms",
        "p95_ms",
        "p99_ms",
        "req/s",
    ]
    lines = [
        f"Routes in {describe(span)} by {sort} (root spans: the whole request; errors = status ERROR):",
        *table(headers, rows),
    ]
    if len(routes) > len(shown):
        lines.append(f"[{len(routes) - len(shown)} more routes not shown: raise the limit]")
    return bounded(lines)


def _spend_rows(groups: list[SpendGroup]) -> list[list[object]]:
    return [
        [
            clip(g.key or "(none)", 60),
            g.calls,
            g.input_tokens,
            g.output_tokens,
            g.cache_read_tokens,
            usd(g.cost_usd) if g.priced else "-",
            g.unpriced,
            g.no_usage,
            g.failed,
        ]
        for g in groups[:SPEND_ROWS]
    ]


def spend(reader: Reader, window: str = "24h") -> str:
    """LLM calls over `window`: totals, run-rate, by model and by route, and the costliest calls."""
    span = window_named(window)
    now = utc_now()
    found = llm_spend(reader, span, now)
    t = found.totals
    if not t.calls:
        return f"No LLM calls in {describe(span)}." + ("" if span.seconds is None else " Try window='all'.")
    lines = [
        f"LLM calls in {describe(span)} (one row of the llm_calls view per call):",
        f"calls {t.calls} · input tokens {t.input_tokens} (cache read {t.cache_read_tokens}, cache write "
        f"{t.cache_write_tokens}) · output tokens {t.output_tokens} · failed {t.failed}",
        f"cost {usd(t.cost_usd)} over {t.priced} priced calls · {t.unpriced} with usage but no known price · "
        f"{t.no_usage} reported no usage (neither is counted as $0 — they are left out of the cost)",
        f"run-rate {usd(found.burn.per_day_usd)}/day ({usd(found.burn.per_month_usd)}/30 days): the window's "
        f"cost over the {found.burn.seconds:.0f} s it saw LLM traffic · cache savings {usd(t.cache_savings_usd)}",
    ]
    headers = ["calls", "input", "output", "cache_read", "cost", "unpriced", "no_usage", "failed"]
    for dimension in ("model", "route"):
        groups = found.groups[dimension]
        lines += ["", f"by {dimension}:", *table([dimension, *headers], _spend_rows(groups))]
        if len(groups) > SPEND_ROWS:
            lines.append(f"[{len(groups) - SPEND_ROWS} more not shown]")
    calls = [
        [
            when(c.time),
            clip(c.route or "-", 40),
            clip(c.model or "?", 30),
            c.input_tokens if c.input_tokens is not None else "-",
            c.output_tokens if c.output_tokens is not None else "-",
            usd(c.cost_usd),
            c.trace_id,
        ]
        for c in found.top_calls[:5]
    ]
    headers = ["time", "route", "model", "input", "output", "cost", "trace_id"]
    lines += ["", "costliest calls:", *table(headers, calls)]
    return bounded(lines)


def capture_health(reader: Reader, window: str = "24h") -> str:
    """What did not reach the store and why: bad spool lines, drops by reason, libraries not instrumented."""
    span = window_named(window)
    found = health(reader, span.start(utc_now()))
    dropped = ", ".join(f"{reason} {n}" for reason, n in sorted(found.dropped.items()) if n) or "none"
    lines = [
        f"Capture health (drops and instrumentation from processes that ended in {describe(span)}; "
        "bad lines over the whole store):",
        f"segments ingested {found.segments} · bad spool lines skipped {found.bad_lines}",
        f"records dropped in the app by reason: {dropped}",
        f"obsdash internal errors (swallowed inside the app): {found.internal_errors}",
    ]
    if found.not_instrumented:
        lines.append("libraries not instrumented:")
        lines += [f"  {lib}: {clip(why, 200)}" for lib, why in sorted(found.not_instrumented.items())]
    else:
        lines.append("libraries not instrumented: none")
    lines.append(
        "Everything lost is counted above: "
        + ("nothing was lost." if not found.lost else f"{found.lost} records in all.")
    )
    return bounded(lines)


def sql(reader: Reader, statement: str, max_rows: int = SQL_DEFAULT_ROWS) -> str:
    """One read-only statement as an aligned table (cells cut at 80 characters), with a note when cut."""
    cap = max(1, min(max_rows, SQL_MAX_ROWS))
    result = reader.query(statement, max_rows=cap, sync=False)
    lines = as_table(result).splitlines()
    if result.truncated:
        lines.append(
            f"[result cut at {cap} rows: the query returned more. Aggregate, add a LIMIT, or pass max_rows "
            f"(at most {SQL_MAX_ROWS})]"
        )
    return bounded(lines)


def now_line() -> str:
    """The store's clock (UTC), for answers that list times."""
    return f"now {when(utc_now())}"
