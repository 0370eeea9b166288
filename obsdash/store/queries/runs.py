"""Runs (one `obsdash wrap` each, every process it started included) and the comparison of two of them.

A run is found by its id, a prefix of it, or `latest` / `previous` (the newest run and the one before, by start).
Its figures come from its own spans: requests are root server (or consumer) spans — all root spans in a run that
served none, as on the overview — and LLM calls are `llm_calls` rows whose span belongs to the run. Every read of
`spans` is bounded below by the runs' start (minus SLACK for clock skew between processes), so a comparison of two
recent runs does not scan a store's whole history. Used by the MCP server's runs tools and meant for `obsdash diff`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from obsdash.errors import ObsdashError
from obsdash.store.queries import Reader, fetch
from obsdash.store.queries.window import EPOCH

MAX_RUNS = 200
MAX_ROUTES = 200
"""Per run in a comparison, the busiest first."""
SLACK = timedelta(minutes=1)
ALIASES = {"latest": 0, "previous": 1}
"""Run references that count back from the newest run."""


@dataclass(frozen=True)
class RunFigures:
    """Requests, failures, latency and LLM use of a run, or of one route in it."""

    requests: int
    errors: int
    """Requests whose root span failed (status ERROR)."""
    p50_ms: float | None
    p95_ms: float | None
    llm_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    """Of the priced calls only."""
    unpriced: int = 0
    """LLM calls with usage but no price, or without usage: not in cost_usd."""

    @property
    def error_rate(self) -> float:
        """Failed requests per request, 0..1."""
        return self.errors / self.requests if self.requests else 0.0


NO_FIGURES = RunFigures(0, 0, None, None)


@dataclass(frozen=True)
class Run:
    """One run: what was started, when, how it ended, and its figures."""

    run_id: str
    command: str
    service: str
    started: datetime | None
    ended: datetime | None
    """None while the run goes on (or when it was killed before its end record)."""
    exit_code: int | None
    processes: int
    spans: int = 0
    exceptions: int = 0
    """Rows of the `errors` view in the run (an exception recorded by a span and a log counts once)."""
    figures: RunFigures = NO_FIGURES


@dataclass(frozen=True)
class RouteComparison:
    """One route in two runs (NO_FIGURES where a run has none of it)."""

    route: str
    a: RunFigures
    b: RunFigures


@dataclass(frozen=True)
class RunComparison:
    """Two runs side by side: their totals and each route's figures, busiest first."""

    a: Run
    b: Run
    routes: list[RouteComparison]
    truncated: bool
    """True when a run had more than MAX_ROUTES routes (the quietest were left out)."""


RUN_COLUMNS = "run_id, command, service_name, started, ended, exit_code, processes"

# Per run and per route (and per run: the grouping set without the route), over root spans and LLM calls of the
# chosen runs. A route is the root's http.route, else its name, as on the overview; a call's route is its trace
# root's, else (a call made outside any request) the call span's own name.
FIGURES_SQL = """
WITH roots AS (
    SELECT run_id, coalesce(http_route, name) AS route, kind IN ('SERVER', 'CONSUMER') AS is_request,
           status_code = 'ERROR' AS failed, duration_ms
    FROM spans WHERE is_root AND start_time >= ? AND list_contains(?, run_id)
), served AS (
    -- runs that served requests count only those; a script's root spans are its requests
    SELECT run_id, bool_or(is_request) AS serves FROM roots GROUP BY run_id
), requests AS (
    SELECT r.run_id, r.route, GROUPING(r.route) = 1 AS total, count(*) AS requests,
           count(*) FILTER (WHERE failed) AS errors, quantile_cont(duration_ms, [0.5, 0.95]) AS q
    FROM roots r JOIN served s USING (run_id) WHERE r.is_request OR NOT s.serves
    GROUP BY GROUPING SETS ((r.run_id, r.route), (r.run_id))
), calls AS (
    SELECT s.run_id, coalesce(c.route, s.name) AS route, GROUPING(coalesce(c.route, s.name)) = 1 AS total,
           count(*) AS llm_calls, coalesce(sum(c.input_tokens), 0) AS input_tokens,
           coalesce(sum(c.output_tokens), 0) AS output_tokens, coalesce(sum(c.cost_usd), 0) AS cost_usd,
           count(*) FILTER (WHERE c.cost_usd IS NULL) AS unpriced
    FROM llm_calls_since(CAST(? AS TIMESTAMP)) c
    JOIN spans s ON s.trace_id = c.trace_id AND s.span_id = c.span_id
    WHERE s.start_time >= ? AND list_contains(?, s.run_id)
    GROUP BY GROUPING SETS ((s.run_id, coalesce(c.route, s.name)), (s.run_id))
)
SELECT * FROM (
    SELECT coalesce(r.run_id, c.run_id) AS run_id, coalesce(r.route, c.route) AS route,
           coalesce(r.total, c.total) AS total, coalesce(r.requests, 0) AS requests,
           coalesce(r.errors, 0) AS errors, r.q, coalesce(c.llm_calls, 0) AS llm_calls,
           coalesce(c.input_tokens, 0) AS input_tokens, coalesce(c.output_tokens, 0) AS output_tokens,
           coalesce(c.cost_usd, 0) AS cost_usd, coalesce(c.unpriced, 0) AS unpriced
    FROM requests r FULL JOIN calls c
        ON c.run_id = r.run_id AND c.total = r.total AND c.route IS NOT DISTINCT FROM r.route
)
QUALIFY total
     OR row_number() OVER (PARTITION BY run_id, total ORDER BY requests DESC, llm_calls DESC, route) <= ?
"""

COUNTS_SQL = """
SELECT s.run_id, s.spans, coalesce(e.exceptions, 0) AS exceptions
FROM (SELECT run_id, count(*) AS spans FROM spans WHERE start_time >= ? AND list_contains(?, run_id) GROUP BY 1) s
LEFT JOIN (
    SELECT run_id, count(*) AS exceptions FROM errors_since(CAST(? AS TIMESTAMP))
    WHERE list_contains(?, run_id) GROUP BY 1
) e USING (run_id)
"""


def _run(row: dict[str, Any]) -> Run:
    return Run(
        run_id=row["run_id"],
        command=row["command"] or "",
        service=row["service_name"] or "?",
        started=row["started"],
        ended=row["ended"],
        exit_code=row["exit_code"],
        processes=int(row["processes"] or 0),
    )


def _figures(row: dict[str, Any]) -> RunFigures:
    q = row["q"] or [None, None]
    return RunFigures(
        requests=int(row["requests"]),
        errors=int(row["errors"]),
        p50_ms=None if q[0] is None else float(q[0]),
        p95_ms=None if q[1] is None else float(q[1]),
        llm_calls=int(row["llm_calls"]),
        input_tokens=int(row["input_tokens"]),
        output_tokens=int(row["output_tokens"]),
        cost_usd=float(row["cost_usd"]),
        unpriced=int(row["unpriced"]),
    )


def _since(runs: list[Run]) -> datetime:
    starts = [r.started for r in runs if r.started is not None]
    # a run without its start record (killed early, spool lost): no bound is safe
    return min(starts) - SLACK if starts and len(starts) == len(runs) else EPOCH


def newest_runs(reader: Reader, limit: int = 20) -> list[Run]:
    """The newest `limit` runs (by start), without figures."""
    limit = max(1, min(limit, MAX_RUNS))
    rows = fetch(
        reader,
        f"SELECT {RUN_COLUMNS} FROM runs ORDER BY started DESC NULLS LAST, run_id DESC LIMIT ?",
        [limit],
        max_rows=limit,
    )
    return [_run(r) for r in rows]


def find_run(reader: Reader, ref: str) -> Run:
    """The run named by `ref`: `latest`, `previous`, a run id or an unambiguous prefix of one (without figures).

    Raises ObsdashError when no run, or more than one, matches.
    """
    ref = ref.strip()
    if ref.lower() in ALIASES:
        back = ALIASES[ref.lower()]
        runs = newest_runs(reader, back + 1)
        if len(runs) <= back:
            raise ObsdashError(
                f"there is no {ref.lower()} run: the store holds {len(runs)}",
                hint="run the app under `obsdash wrap` first",
            )
        return runs[back]
    if not ref:
        raise ObsdashError("no run given", hint="name a run id, a prefix of one, `latest` or `previous`")
    rows = fetch(
        reader,
        f"SELECT {RUN_COLUMNS} FROM runs WHERE starts_with(run_id, ?) ORDER BY started DESC NULLS LAST LIMIT 6",
        [ref],
        max_rows=6,
    )
    exact = [r for r in rows if r["run_id"] == ref]
    if exact or len(rows) == 1:
        return _run((exact or rows)[0])
    if not rows:
        raise ObsdashError(f"no run id starts with {ref!r}", hint="list the runs to see their ids")
    shown = ", ".join(r["run_id"] for r in rows[:5])
    raise ObsdashError(f"{ref!r} names more than one run ({shown}...)", hint="give more of the run id")


def with_figures(reader: Reader, runs: list[Run]) -> list[Run]:
    """The same runs with their spans, exceptions and totals filled in."""
    if not runs:
        return []
    ids = [r.run_id for r in runs]
    since = _since(runs)
    totals = {
        row["run_id"]: _figures(row) for row in _figure_rows(reader, ids, since, max_routes=0) if row["total"]
    }
    counts = {
        row["run_id"]: row for row in fetch(reader, COUNTS_SQL, [since, ids, since, ids], max_rows=len(ids))
    }
    return [_replace(run, counts.get(run.run_id), totals.get(run.run_id, NO_FIGURES)) for run in runs]


def _replace(run: Run, counts: dict[str, Any] | None, figures: RunFigures) -> Run:
    return Run(
        run.run_id,
        run.command,
        run.service,
        run.started,
        run.ended,
        run.exit_code,
        run.processes,
        spans=int(counts["spans"]) if counts else 0,
        exceptions=int(counts["exceptions"]) if counts else 0,
        figures=figures,
    )


def _figure_rows(reader: Reader, ids: list[str], since: datetime, max_routes: int) -> list[dict[str, Any]]:
    params = [since, ids, since, since, ids, max_routes]
    return fetch(reader, FIGURES_SQL, params, max_rows=len(ids) * (max_routes + 2) + 1)


def list_runs(reader: Reader, limit: int = 20) -> list[Run]:
    """The newest `limit` runs with their figures, newest first."""
    return with_figures(reader, newest_runs(reader, limit))


def compare_runs(reader: Reader, a: Run, b: Run) -> RunComparison:
    """Runs `a` and `b` (from `find_run`) side by side: totals and every route's figures, busiest first."""
    a, b = with_figures(reader, [a, b]) if a.run_id != b.run_id else with_figures(reader, [a]) * 2
    rows = _figure_rows(reader, list({a.run_id: 0, b.run_id: 0}), _since([a, b]), MAX_ROUTES + 1)
    per_route: dict[str, dict[str, RunFigures]] = {}
    truncated = False
    counted: dict[str, int] = {}
    for row in rows:
        if row["total"]:
            continue
        counted[row["run_id"]] = counted.get(row["run_id"], 0) + 1
        if counted[row["run_id"]] > MAX_ROUTES:
            truncated = True
            continue
        per_route.setdefault(row["route"] or "?", {})[row["run_id"]] = _figures(row)
    routes = [
        RouteComparison(route, found.get(a.run_id, NO_FIGURES), found.get(b.run_id, NO_FIGURES))
        for route, found in per_route.items()
    ]
    routes.sort(key=lambda r: (-(r.a.requests + r.b.requests), -(r.a.llm_calls + r.b.llm_calls), r.route))
    return RunComparison(a, b, routes, truncated)
