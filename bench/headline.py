"""One row per target of the P1–P7 table, the machine it was measured on, and the Markdown that shows them.

Each benchmark module has a `headline(...)` function returning `Headline` rows; `python -m bench` collects them
into one table (see bench/__main__.py). Like _common.py, importable without duckdb or obsdash loaded.
"""

from __future__ import annotations

import math
import os
import platform
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from bench._common import markdown_table

PACKAGES = (
    "obsdash",
    "opentelemetry-sdk",
    "opentelemetry-instrumentation",
    "opentelemetry-instrumentation-flask",
    "opentelemetry-exporter-otlp-proto-http",
    "orjson",
    "duckdb",
    "textual",
    "flask",
    "gunicorn",
)


@dataclass
class Headline:
    """One target's verdict: obsdash's figure against the peer or the limit, measured in the same run.

    `value` and `peer` are numbers in `unit` (NaN when not measured); `ratio` is what the target is stated in (a
    ratio, or the value itself when the target is a limit); `met` is None when the row could not be measured.
    """

    id: str
    what: str
    value: float
    peer: float
    unit: str
    peer_label: str
    ratio: float
    target: str
    met: bool | None
    note: str = ""

    def cells(self) -> list[str]:
        """The row as the summary table prints it."""
        verdict = {True: "✓", False: "✗", None: "–"}[self.met]
        peer = f"{_figure(self.peer)} {self.unit} ({self.peer_label})" if self.peer_label else "–"
        return [
            self.id,
            self.what,
            f"{_figure(self.value)} {self.unit}",
            peer,
            _figure(self.ratio),
            self.target,
            verdict,
            self.note,
        ]


def skipped(id_: str, what: str, target: str, why: str) -> Headline:
    """A row for a benchmark that could not run here (no tmux, ...), with the reason."""
    nan = math.nan
    return Headline(id_, what, nan, nan, "", "", nan, target, None, f"not measured: {why}")


def _figure(value: float) -> str:
    if math.isnan(value):
        return "–"
    magnitude = abs(value)
    if value.is_integer():
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def summary_table(rows: list[Headline]) -> str:
    """Every headline row in one Markdown table."""
    header = ["id", "what", "obsdash", "peer / limit (same run)", "ratio", "target", "met", "note"]
    return markdown_table(header, [r.cells() for r in rows], align_right_from=2)


def machine() -> dict[str, str]:
    """What the figures were measured on: cores, RAM, CPU model, OS, Python, key package versions, load."""
    cpu = ""
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    ram_gb = math.nan
    try:
        ram_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    except (ValueError, OSError, AttributeError):
        pass
    versions = []
    for name in PACKAGES:
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name} (not installed)")
    return {
        "cores": str(os.cpu_count()),
        "ram": f"{ram_gb:.0f} GB",
        "cpu": cpu or platform.processor() or "unknown",
        "os": platform.platform(),
        "python": platform.python_version(),
        "packages": ", ".join(versions),
        "load": load_average(),
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
    }


def load_average() -> str:
    """The 1-, 5- and 15-minute load averages, as `uptime` shows them."""
    try:
        return ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def machine_lines(info: dict[str, str]) -> str:
    """The machine as a few Markdown lines."""
    return (
        f"**Machine**: {info['cores']} cores ({info['cpu']}), {info['ram']} RAM, {info['os']}, "
        f"Python {info['python']}. Measured {info['date']}, load average at start {info['load']}.\n\n"
        f"**Versions**: {info['packages']}."
    )
