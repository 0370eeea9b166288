"""The MCP tools' production-readiness findings: what `obsdash report` finds, worst first, as compact text.

The findings and their severities come from obsdash.report.findings (the same `build` the CLI calls), over a
window or one run; this module only picks the scope and writes them for a model.
"""

from __future__ import annotations

from datetime import timedelta

from obsdash.mcp.text import bounded, clip
from obsdash.mcp.tools import describe
from obsdash.report.findings import Thresholds, build
from obsdash.report.render import summary
from obsdash.store.queries import Reader
from obsdash.store.queries.findings import Scope
from obsdash.store.queries.runs import find_run
from obsdash.store.queries.window import utc_now, window_named

MAX_FINDINGS = 30


def findings(reader: Reader, window: str = "24h", run: str = "", slow_ms: float = 500.0) -> str:
    """The findings over `window`, or over one run when `run` names one (`latest`, `previous`, an id)."""
    now = utc_now()
    if run.strip():
        found_run = find_run(reader, run)
        if found_run.started is None:
            return f"Run {found_run.run_id} has no start record: use a window instead."
        scope = Scope(found_run.started - timedelta(seconds=1), found_run.run_id)
        heading = f"run {found_run.run_id}"
    else:
        span = window_named(window)
        scope, heading = Scope(span.start(now)), describe(span)
    found = build(reader, scope, Thresholds(slow_p95_ms=slow_ms), now)
    lines = [f"Production-readiness findings for {heading}: {summary(found)} (worst first)."]
    for f in found[:MAX_FINDINGS]:
        lines += [
            "",
            f"{f.severity.upper()} [{f.kind}] {clip(f.where, 120)}: {clip(f.title, 300)} (×{f.count})",
        ]
        if f.detail:
            lines.append(f"    {clip(f.detail, 400)}")
        if f.examples:
            lines.append(f"    example traces: {' '.join(f.examples[:3])}")
    if len(found) > MAX_FINDINGS:
        lines += [
            "",
            f"[{len(found) - MAX_FINDINGS} more findings not shown: narrow the window or pick a run]",
        ]
    return bounded(lines)
