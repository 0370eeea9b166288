"""`obsdash diff RUN_A RUN_B`: two runs side by side, per route, with every change that matters marked.

The figures come from obsdash/store/queries/runs.py (shared with the MCP server's compare tool). A change is a
regression when it crosses the thresholds below — relative AND absolute, so 2 ms → 3 ms (+50 %) is noise while
20 ms → 300 ms is not; `--fail-on-regression` makes it an exit status for CI (a prompt or code change gate).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # `obsdash --help` imports this module for its flags: Rich and the store load only to run
    from rich.text import Text

    from obsdash.store.queries.runs import RouteComparison, RunComparison, RunFigures

LATENCY_RATIO = 1.2
LATENCY_MIN_MS = 10.0
ERROR_RATE_POINTS = 1.0
PER_CALL_RATIO = 1.2
"""Tokens and cost are compared per LLM call, so more traffic alone is not a regression."""
EXIT_REGRESSION = 1


@dataclass(frozen=True)
class Change:
    """One figure of one route, A and B, and whether B is worse (+1), better (-1) or neither (0)."""

    route: str
    figure: str
    a: str
    b: str
    direction: int
    unit: str = ""

    def describe(self) -> str:
        """`/search p95 12.0→130.1 ms`."""
        return f"{self.route} {self.figure} {self.a}→{self.b}{self.unit}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _latency(a: float | None, b: float | None) -> int:
    if a is None or b is None:
        return 0
    if b > a * LATENCY_RATIO and b - a >= LATENCY_MIN_MS:
        return 1
    if a > b * LATENCY_RATIO and a - b >= LATENCY_MIN_MS:
        return -1
    return 0


def _error_rate(a: RunFigures, b: RunFigures) -> int:
    if not a.requests or not b.requests:
        return 0
    points = (b.error_rate - a.error_rate) * 100
    return 1 if points >= ERROR_RATE_POINTS else -1 if points <= -ERROR_RATE_POINTS else 0


def _per_call(total: float, calls: int) -> float | None:
    return total / calls if calls else None


def _per_call_change(a: float | None, b: float | None) -> int:
    if a is None or b is None or not a:
        return 0
    ratio = b / a
    return 1 if ratio > PER_CALL_RATIO else -1 if ratio < 1 / PER_CALL_RATIO else 0


def _tokens(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _dollars(value: float | None) -> str:
    return "-" if value is None else f"${value:.4f}"


def route_changes(row: RouteComparison) -> list[Change]:
    """Every figure of a route present in both runs, with its direction. Tokens and cost are shown and judged per
    LLM call: a route that made fewer calls in B is not cheaper per call for it (shown as totals, "$0.0029→$0.0023
    ▲" read as a regression that cost less)."""
    a, b, route = row.a, row.b, row.route
    tokens_a = _per_call(a.input_tokens + a.output_tokens, a.llm_calls)
    tokens_b = _per_call(b.input_tokens + b.output_tokens, b.llm_calls)
    cost_a, cost_b = _per_call(a.cost_usd, a.llm_calls), _per_call(b.cost_usd, b.llm_calls)
    return [
        Change(route, "requests", str(a.requests), str(b.requests), 0),
        Change(route, "error rate", f"{a.error_rate:.1%}", f"{b.error_rate:.1%}", _error_rate(a, b)),
        Change(route, "p50", _ms(a.p50_ms), _ms(b.p50_ms), _latency(a.p50_ms, b.p50_ms), " ms"),
        Change(route, "p95", _ms(a.p95_ms), _ms(b.p95_ms), _latency(a.p95_ms, b.p95_ms), " ms"),
        Change(
            route, "tokens/call", _tokens(tokens_a), _tokens(tokens_b), _per_call_change(tokens_a, tokens_b)
        ),
        Change(route, "cost/call", _dollars(cost_a), _dollars(cost_b), _per_call_change(cost_a, cost_b)),
    ]


def regressions(comparison: RunComparison) -> list[Change]:
    """The changes that make B worse than A, route by route, busiest route first."""
    return [c for row in comparison.routes for c in route_changes(row) if c.direction > 0]


_MARK = {1: ("▲", "bold red"), -1: ("▼", "green"), 0: ("", "")}


def change_cell(change: Change) -> Text:
    """`A→B ▲` (or just `A` when unchanged), red when worse, green when better."""
    from rich.text import Text

    mark, style = _MARK[change.direction]
    text = change.a if change.a == change.b else f"{change.a}→{change.b}"
    return Text(f"{text} {mark}".rstrip(), style=style)


def print_text(comparison: RunComparison) -> None:
    """A table of routes (A→B, ▲ worse, ▼ better) and a one-line verdict."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    from obsdash.output import printable

    # in a CI log or a pipe there is no width to fit: keep each route on one line
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
    a, b = comparison.a, comparison.b
    for label, run in (("A", a), ("B", b)):
        console.print(Text(f"{label} {run.run_id}  {run.command}"), no_wrap=True, overflow="ellipsis")
    table = Table(box=None, pad_edge=False)
    for header in ("route", "requests", "err%", "p50 ms", "p95 ms", "tokens/call", "$/call"):
        table.add_column(header, justify="left" if header == "route" else "right", no_wrap=True)
    for row in comparison.routes:
        table.add_row(Text(printable(row.route)), *(change_cell(change) for change in route_changes(row)))
    console.print(table)
    found = regressions(comparison)
    if found:
        listed = "; ".join(change.describe() for change in found[:8])
        console.print(
            f"[bold red]{len(found)} regression{'s' if len(found) > 1 else ''}[/]: {escape(printable(listed))}"
        )
    else:
        console.print(
            "[green]no regression[/] (thresholds: latency ×1.2 and +10 ms, error rate +1 pt, per call ×1.2)"
        )


def as_json(comparison: RunComparison) -> str:
    """Routes with each figure's A, B and direction, plus the regressions."""
    routes = [
        {"route": row.route, "changes": [vars(c) for c in route_changes(row)]} for row in comparison.routes
    ]
    found = [vars(c) for c in regressions(comparison)]
    return json.dumps(
        {"a": comparison.a.run_id, "b": comparison.b.run_id, "routes": routes, "regressions": found}
    )


def add_arguments(command: argparse.ArgumentParser) -> None:
    """The flags of `obsdash diff`."""
    command.add_argument(
        "run_a", nargs="?", default="previous", help="run id, prefix, or `previous` (default)"
    )
    command.add_argument("run_b", nargs="?", default="latest", help="run id, prefix, or `latest` (default)")
    command.add_argument("--format", choices=("text", "json"), default="text")
    command.add_argument("--fail-on-regression", action="store_true", help="exit 1 when B regressed (for CI)")


def run_diff(args: argparse.Namespace) -> int:
    """Compare the two runs; 1 when asked to fail on a regression and there is one."""
    from obsdash.datadir import resolve
    from obsdash.hub.client import open_store
    from obsdash.store.queries.runs import compare_runs, find_run

    store = open_store(resolve(args.data_dir))
    store.sync()
    comparison = compare_runs(store, find_run(store, args.run_a), find_run(store, args.run_b))
    show: Callable[[RunComparison], None] = print_text if args.format == "text" else _print_json
    show(comparison)
    return EXIT_REGRESSION if args.fail_on_regression and regressions(comparison) else 0


def _print_json(comparison: RunComparison) -> None:
    sys.stdout.write(as_json(comparison) + "\n")
