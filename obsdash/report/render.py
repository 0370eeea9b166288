"""Findings as text (for a terminal or a CI log), Markdown (for a PR comment) or JSON (for tools)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence

from rich.console import Console
from rich.markup import escape

from obsdash.report.findings import SEVERITIES, Finding

_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def summary(findings: Sequence[Finding]) -> str:
    """`3 errors, 6 warnings, 5 info` (or `no findings`)."""
    if not findings:
        return "no findings"
    counts = Counter(f.severity for f in findings)
    parts = [f"{counts[s]} {s}{'s' if counts[s] != 1 and s != 'info' else ''}" for s in reversed(SEVERITIES)]
    return ", ".join(part for part, s in zip(parts, reversed(SEVERITIES), strict=True) if counts[s])


def as_text(findings: Sequence[Finding], heading: str, console: Console) -> None:
    """One block per finding: severity, where, title, count; then the detail and example trace ids."""
    console.print(f"[bold]{escape(heading)}[/]: {summary(findings)}")
    for f in findings:
        console.print()
        console.print(
            f"[{_STYLE[f.severity]}]{f.severity.upper():<7}[/] [bold]{escape(f.where)}[/]  {escape(f.title)}"
            f"  [dim]×{f.count}[/]"
        )
        if f.detail:
            console.print(f"        {escape(f.detail)}", soft_wrap=True)
        if f.examples:
            console.print(f"        [dim]traces:[/] {' '.join(f.examples)}", soft_wrap=True)


def as_markdown(findings: Sequence[Finding], heading: str) -> str:
    """A Markdown table of the findings under a heading."""
    lines = [f"## {heading}", "", summary(findings), ""]
    if findings:
        lines += ["| severity | where | finding | count | example traces |", "|---|---|---|---:|---|"]
        for f in findings:
            cell = f"{f.title}<br>{f.detail}" if f.detail else f.title
            examples = " ".join(f"`{t}`" for t in f.examples)
            row = [f.severity, f.where, cell, str(f.count), examples]
            lines.append("| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in row) + " |")
    return "\n".join(lines) + "\n"


def as_json(findings: Sequence[Finding], heading: str) -> str:
    """`{"scope": ..., "summary": ..., "findings": [...]}`."""
    return json.dumps(
        {"scope": heading, "summary": summary(findings), "findings": [f.as_json() for f in findings]},
        indent=2,
    )
