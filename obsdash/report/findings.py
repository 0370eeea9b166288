"""From stored evidence to findings: what is wrong, how bad, where, how often, and traces to look at.

Severity is decided here and only here. `error`: the app fails users now (unhandled exceptions, an upstream that
fails without a retry, spend over the budget). `warning`: it will hurt in production (N+1 queries, slow routes,
LLM calls without `max_tokens` or a timeout, retried upstream failures, dropped telemetry). `info`: worth knowing
(secrets that had to be scrubbed, logs outside any trace, libraries not instrumented).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from obsdash.store.queries import Reader, as_dict
from obsdash.store.queries import findings as evidence
from obsdash.store.queries.findings import Scope
from obsdash.store.queries.llm import burn_rate, spend_totals
from obsdash.tui.format import money

SEVERITIES = ("info", "warning", "error")


@dataclass(frozen=True)
class Thresholds:
    """What counts as a problem; the CLI's flags set them."""

    slow_p95_ms: float = 500.0
    min_requests: int = 5
    """A route needs this many requests before its percentiles mean anything."""
    n_plus_one: int = 5
    """The same statement this many times in one trace is an N+1 pattern."""
    budget_per_day: float | None = None


@dataclass(frozen=True)
class Finding:
    """One problem: a stable `kind`, a severity, a one-line title, where it is, how often, and examples."""

    kind: str
    severity: str
    title: str
    where: str
    count: int
    examples: list[str] = field(default_factory=list)
    """Trace ids to open (`obsdash` → Traces → `/` prefix, or `obsdash query`)."""
    detail: str = ""

    def as_json(self) -> dict[str, Any]:
        """The finding as plain JSON-ready data."""
        return asdict(self)


def at_least(severity: str, floor: str) -> bool:
    """Whether `severity` is `floor` or worse."""
    return SEVERITIES.index(severity) >= SEVERITIES.index(floor)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def unhandled(rows: list[dict[str, Any]]) -> Iterator[Finding]:
    """Exceptions that failed a request or a job."""
    for r in rows:
        yield Finding(
            "unhandled_exception",
            "error",
            f"{r['exception_type']} failed {_plural(int(r['traces']), 'request')}",
            str(r["route"]),
            int(r["n"]),
            list(r["examples"] or []),
            f"{r['message'] or ''} at {r['location'] or '?'}".strip(),
        )


def upstreams(rows: list[dict[str, Any]]) -> Iterator[Finding]:
    """Third-party calls answered 429/5xx: an error when none was retried, a warning when some were not, worth
    knowing when every one was."""
    for r in rows:
        n, retried = int(r["n"]), int(r["retried"])
        never = retried == 0
        routes = ", ".join(sorted(r["routes"] or [])[:3])
        yield Finding(
            "upstream_failure",
            "error" if never else "warning" if retried < n else "info",
            f"answered {r['http_status']} {_plural(n, 'time')}, "
            + ("never retried" if never else f"retried {retried} of {n}"),
            str(r["upstream"]),
            n,
            list(r["examples"] or []),
            f"{r['target']} (from {routes or '?'})",
        )


def repeated(rows: list[dict[str, Any]]) -> Iterator[Finding]:
    """N+1 query patterns."""
    for r in rows:
        yield Finding(
            "n_plus_one",
            "warning",
            f"the same query up to {r['max_repeats']}× per request, in {_plural(int(r['traces']), 'trace')}",
            str(r["route"]),
            int(r["traces"]),
            [str(r["worst_trace"]), *[t for t in r["examples"] or [] if t != r["worst_trace"]]][:3],
            " ".join(str(r["statement"]).split())[:200],
        )


def slow(rows: list[dict[str, Any]], limit_ms: float) -> Iterator[Finding]:
    """Routes over the p95 threshold."""
    for r in rows:
        yield Finding(
            "slow_route",
            "warning",
            f"p95 {r['p95']:.0f} ms over {limit_ms:.0f} ms (p50 {r['p50']:.0f}, p99 {r['p99']:.0f})",
            str(r["route"]),
            int(r["n"]),
            list(r["examples"] or []),
        )


def llm_hygiene(rows: list[dict[str, Any]]) -> Iterator[Finding]:
    """LLM calls without `max_tokens`, with the SDK's default timeout, or failing."""
    for r in rows:
        where = f"{r['route']} → {r['model']}"
        if r["without_max_tokens"]:
            yield Finding(
                "llm_no_max_tokens",
                "warning",
                f"{_plural(int(r['without_max_tokens']), 'LLM call')} without max_tokens: output cost is unbounded",
                where,
                int(r["without_max_tokens"]),
                list(r["examples_without_max_tokens"] or []),
            )
        if r["timeout_known"] and r["default_timeout"]:
            yield Finding(
                "llm_default_timeout",
                "warning",
                f"{_plural(int(r['default_timeout']), 'LLM call')} without a timeout (the SDK waits up to 600 s)",
                where,
                int(r["default_timeout"]),
                list(r["examples_default_timeout"] or []),
            )
        if r["failed"]:
            yield Finding(
                "llm_error",
                "warning",
                f"{_plural(int(r['failed']), 'LLM call')} failed",
                where,
                int(r["failed"]),
                list(r["examples_failed"] or []),
            )


def spend(reader: Reader, scope: Scope, now: datetime, budget: float | None) -> Iterator[Finding]:
    """LLM spend and its run-rate against the budget."""
    totals = spend_totals(reader, scope.since)
    if not totals.calls:
        return
    rate = burn_rate(totals, now)
    over = rate.over(budget)
    budget_text = f", over the budget of {money(budget)}/day" if over else " (no budget set)"
    if budget is not None and not over:
        budget_text = f", within the budget of {money(budget)}/day"
    unpriced = (
        f"; {totals.unpriced} unpriced, {totals.no_usage} without usage"
        if totals.unpriced or totals.no_usage
        else ""
    )
    yield Finding(
        "llm_spend",
        "error" if over else "info",
        f"LLM spend {money(totals.cost_usd)} in {_plural(totals.calls, 'call')}, heading for "
        f"{money(rate.per_day_usd)}/day{budget_text}",
        "all services",
        totals.calls,
        detail=f"{totals.tokens:,} tokens; {money(rate.per_month_usd)}/month at this rate{unpriced}",
    )


def _sum(records: list[dict[str, Any]], key: str) -> dict[str, int]:
    total: dict[str, int] = {}
    for record in records:
        for name, n in as_dict(as_dict(record["details"]).get(key)).items():
            total[name] = total.get(name, 0) + int(n or 0)
    return total


def capture_health(records: list[dict[str, Any]]) -> Iterator[Finding]:
    """What obsdash itself scrubbed, dropped, or could not instrument."""
    redactions = _sum(records, "redactions")
    if redactions:
        kinds = ", ".join(f"{kind} ×{n}" for kind, n in sorted(redactions.items(), key=lambda kv: -kv[1]))
        yield Finding(
            "secrets_scrubbed",
            "info",
            f"{_plural(sum(redactions.values()), 'secret')} scrubbed before reaching disk",
            "telemetry",
            sum(redactions.values()),
            detail=f"{kinds} — the app logs or sends these; check they belong there",
        )
    dropped = _sum(records, "dropped")
    if dropped:
        reasons = ", ".join(f"{reason} ×{n}" for reason, n in sorted(dropped.items()))
        yield Finding(
            "telemetry_dropped",
            "warning",
            f"{_plural(sum(dropped.values()), 'record')} of telemetry dropped",
            "obsdash",
            sum(dropped.values()),
            detail=reasons,
        )
    skipped: dict[str, str] = {}
    for record in records:
        for library, status in as_dict(as_dict(record["details"]).get("instrumentation")).items():
            if status != "instrumented":
                skipped.setdefault(library, str(status))
    for library, status in sorted(skipped.items()):
        yield Finding("not_instrumented", "info", f"{library} not instrumented: {status}", library, 1)


def untraced(rows: list[dict[str, Any]], totals: dict[str, int]) -> Iterator[Finding]:
    """Logs outside any trace: they cannot be tied to the request that wrote them."""
    for r in rows:
        service = str(r["service"])
        share = int(r["n"]) / max(totals.get(service, 0), 1)
        yield Finding(
            "untraced_logs",
            "info",
            f"{_plural(int(r['n']), 'log line')} ({share:.0%} of {service}'s) outside any trace",
            f"{service} / {r['logger']}",
            int(r["n"]),
            detail=str(r["example"] or "")[:160],
        )


def build(reader: Reader, scope: Scope, thresholds: Thresholds, now: datetime) -> list[Finding]:
    """Every finding in scope, worst first."""
    sources: list[Callable[[], Iterator[Finding]]] = [
        lambda: unhandled(evidence.unhandled_exceptions(reader, scope)),
        lambda: upstreams(evidence.failing_upstreams(reader, scope)),
        lambda: repeated(evidence.repeated_queries(reader, scope, thresholds.n_plus_one)),
        lambda: slow(
            evidence.slow_routes(reader, scope, thresholds.slow_p95_ms, thresholds.min_requests),
            thresholds.slow_p95_ms,
        ),
        lambda: llm_hygiene(evidence.llm_call_hygiene(reader, scope)),
        lambda: spend(reader, scope, now, thresholds.budget_per_day),
        lambda: capture_health(evidence.process_records(reader, scope)),
        lambda: untraced(evidence.untraced_logs(reader, scope), evidence.log_totals(reader, scope)),
    ]
    found = [finding for source in sources for finding in source()]
    # ties broken by kind, place and title: the same store always gives the same list (rows of equal count
    # came back in any order from DuckDB's parallel aggregation)
    return sorted(found, key=lambda f: (-SEVERITIES.index(f.severity), -f.count, f.kind, f.where, f.title))
