"""The MCP tools' runs: the newest runs with their figures, and two runs side by side (did the fix work?).

The figures come from obsdash/store/queries/runs.py, which `obsdash diff` is meant to share.
"""

from __future__ import annotations

from obsdash.mcp.text import bounded, clip, percent, table, usd, when
from obsdash.store.queries import Reader
from obsdash.store.queries.runs import MAX_ROUTES, Run, RunFigures, compare_runs, find_run, list_runs


def _length(run: Run) -> str:
    if run.started is None or run.ended is None:
        return "running" if run.started is not None else "-"
    return f"{(run.ended - run.started).total_seconds():.1f} s"


def _p(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def runs(reader: Reader, limit: int = 10) -> str:
    """The newest runs (each `obsdash wrap`), newest first, with requests, errors, latency and LLM cost."""
    found = list_runs(reader, max(1, limit))
    if not found:
        return "No runs in the store: run the app under `obsdash wrap` first."
    rows = [
        [
            r.run_id,
            when(r.started),
            _length(r),
            "-" if r.exit_code is None else r.exit_code,
            r.service,
            r.figures.requests,
            percent(r.figures.errors, r.figures.requests),
            _p(r.figures.p95_ms),
            r.exceptions,
            r.figures.llm_calls,
            _cost(r.figures),
            clip(r.command, 70),
        ]
        for r in found
    ]
    headers = ["run_id", "started", "length", "exit", "service", "requests", "err%", "p95_ms"]
    headers += ["exceptions", "llm_calls", "llm_cost", "command"]
    note = "Runs, newest first (err% = failed requests; exceptions = rows of the errors view):"
    return bounded([note, *table(headers, rows)])


def _change(a: float, b: float) -> str:
    if a == b:
        return "="
    delta = f"{b - a:+d}" if isinstance(a, int) and isinstance(b, int) else f"{b - a:+.3g}"
    return delta + (f" ({(b - a) / a * 100:+.0f}%)" if a else "")


def _totals(a: Run, b: Run) -> list[str]:
    fa, fb = a.figures, b.figures
    rows: list[list[object]] = [
        ["requests", fa.requests, fb.requests, _change(fa.requests, fb.requests)],
        ["failed requests", fa.errors, fb.errors, _change(fa.errors, fb.errors)],
        [
            "error rate",
            percent(fa.errors, fa.requests),
            percent(fb.errors, fb.requests),
            f"{(fb.error_rate - fa.error_rate) * 100:+.1f} pts",
        ],
        ["exceptions", a.exceptions, b.exceptions, _change(a.exceptions, b.exceptions)],
        ["p50 ms", _p(fa.p50_ms), _p(fb.p50_ms), _change(fa.p50_ms or 0, fb.p50_ms or 0)],
        ["p95 ms", _p(fa.p95_ms), _p(fb.p95_ms), _change(fa.p95_ms or 0, fb.p95_ms or 0)],
        ["llm calls", fa.llm_calls, fb.llm_calls, _change(fa.llm_calls, fb.llm_calls)],
        ["input tokens", fa.input_tokens, fb.input_tokens, _change(fa.input_tokens, fb.input_tokens)],
        ["output tokens", fa.output_tokens, fb.output_tokens, _change(fa.output_tokens, fb.output_tokens)],
        ["llm cost", _cost(fa), _cost(fb), _change(fa.cost_usd, fb.cost_usd)],
        ["unpriced calls", fa.unpriced, fb.unpriced, _change(fa.unpriced, fb.unpriced)],
    ]
    return table(["", "A", "B", "change B-A"], rows)


def _pair(a: object, b: object) -> str:
    return f"{a}→{b}" if a != b else str(a)


def _cost(figures: RunFigures) -> str:
    """The cost, or `-` when no call was priced (none made, or none could be)."""
    return usd(figures.cost_usd) if figures.llm_calls > figures.unpriced else "-"


def _route_row(route: str, a: RunFigures, b: RunFigures) -> list[object]:
    return [
        clip(route, 50),
        _pair(a.requests, b.requests),
        _pair(percent(a.errors, a.requests), percent(b.errors, b.requests)),
        _pair(_p(a.p50_ms), _p(b.p50_ms)),
        _pair(_p(a.p95_ms), _p(b.p95_ms)),
        _pair(a.llm_calls, b.llm_calls),
        _pair(a.input_tokens + a.output_tokens, b.input_tokens + b.output_tokens),
        _pair(_cost(a), _cost(b)),
    ]


def compare(reader: Reader, run_a: str = "previous", run_b: str = "latest") -> str:
    """Two runs side by side: totals with their change, then every route as A→B."""
    a, b = find_run(reader, run_a), find_run(reader, run_b)
    found = compare_runs(reader, a, b)
    lines = [
        f"A = {found.a.run_id} ({run_a}): started {when(found.a.started)}, {_length(found.a)}, exit "
        f"{found.a.exit_code if found.a.exit_code is not None else '-'}, service {found.a.service}, "
        f"`{clip(found.a.command, 120)}`",
        f"B = {found.b.run_id} ({run_b}): started {when(found.b.started)}, {_length(found.b)}, exit "
        f"{found.b.exit_code if found.b.exit_code is not None else '-'}, service {found.b.service}, "
        f"`{clip(found.b.command, 120)}`",
        "",
        *_totals(found.a, found.b),
        "",
        "per route, A→B (one value when equal; requests = root spans of the route):",
    ]
    headers = ["route", "requests", "err%", "p50_ms", "p95_ms", "llm_calls", "tokens", "llm_cost"]
    lines += table(headers, [_route_row(r.route, r.a, r.b) for r in found.routes])
    if found.truncated:
        lines.append(f"[a run has more than {MAX_ROUTES} routes: the quietest are left out]")
    return bounded(lines)
