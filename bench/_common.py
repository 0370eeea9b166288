"""Small helpers shared by the benchmarks: counts people can type, robust statistics, Markdown tables, memory.

Nothing here measures anything by itself; it must stay importable without duckdb or obsdash loaded, so a
harness can spawn cheap helper processes.
"""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Sequence

_SUFFIXES = {"k": 1_000, "m": 1_000_000, "g": 1_000_000_000}


def parse_count(text: str) -> int:
    """`2000`, `10_000_000`, `250k`, `1M`, `1.5M` → an int (ValueError otherwise)."""
    raw = text.strip().lower().replace("_", "").replace(",", "")
    factor = 1
    if raw and raw[-1] in _SUFFIXES:
        factor, raw = _SUFFIXES[raw[-1]], raw[:-1]
    value = float(raw) * factor
    if value < 1 or value != int(value):
        raise ValueError(f"not a positive whole count: {text!r}")
    return int(value)


def short_count(n: int) -> str:
    """1000000 → `1M`, 2500 → `2.5k`, 999 → `999`."""
    for suffix, factor in (("G", 1_000_000_000), ("M", 1_000_000), ("k", 1_000)):
        if n >= factor:
            return f"{n / factor:g}{suffix}"
    return str(n)


def median(values: Sequence[float]) -> float:
    """The median (NaN for no values)."""
    return statistics.median(values) if values else math.nan


def p95(values: Sequence[float]) -> float:
    """The 95th percentile, nearest rank (with 15 samples: the largest but none)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def ms(seconds: float) -> str:
    """Seconds as a short millisecond figure: 0.0123 → `12.3`, 1.234 → `1234`."""
    if math.isnan(seconds):
        return "–"
    value = seconds * 1000
    return f"{value:.2f}" if value < 10 else f"{value:.1f}" if value < 100 else f"{value:.0f}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]], align_right_from: int = 1) -> str:
    """A GitHub Markdown table, padded so it also reads well as plain text."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        padded = [
            str(c).rjust(w) if i >= align_right_from else str(c).ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "| " + " | ".join(padded) + " |"

    rule = [("-" * (w - 1) + ":") if i >= align_right_from else "-" * w for i, w in enumerate(widths)]
    return "\n".join([line(header), line(rule), *(line(r) for r in rows)])


def rss_mb(pid: int | None = None) -> tuple[float, float]:
    """(current RSS, peak RSS) of a process in MiB, from /proc (NaN where unavailable)."""
    path = f"/proc/{pid or os.getpid()}/status"
    found: dict[str, float] = {}
    try:
        with open(path, encoding="ascii") as status:
            for text in status:
                key, _, rest = text.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    found[key] = int(rest.split()[0]) / 1024
    except OSError:
        pass
    return found.get("VmRSS", math.nan), found.get("VmHWM", math.nan)


def size_mb(*paths: os.PathLike[str] | str) -> float:
    """Total size in MiB of the files that exist among `paths`."""
    total = 0
    for path in paths:
        try:
            total += os.stat(path).st_size
        except FileNotFoundError:
            pass
    return total / (1024 * 1024)
