"""How the dashboard writes numbers and times: short, aligned, and readable in 80 columns."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from rich.text import Text

LEVEL_STYLES = {"TRACE": "dim", "DEBUG": "dim", "INFO": "green", "WARN": "yellow", "ERROR": "bold red"}


def local_time(value: datetime | None, with_date: bool = False) -> str:
    """A store time (naive UTC) as local wall-clock time."""
    if value is None:
        return "-"
    local = value.replace(tzinfo=UTC).astimezone()
    return local.strftime("%m-%d %H:%M:%S" if with_date else "%H:%M:%S")


def ago(value: datetime | None, now: datetime) -> str:
    """How long before `now` (both naive UTC): 4s, 12m, 3h, 2d."""
    if value is None:
        return "-"
    return span((now - value).total_seconds())


def span(seconds: float) -> str:
    """A length of time in its largest whole unit: 4s, 12m, 3h, 2d."""
    seconds = max(seconds, 0.0)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size:.0f}{unit}"
    return f"{seconds:.0f}s"


def duration(ms: float | None) -> str:
    """A duration in the unit that keeps 3 significant digits: 850µs, 12.3ms, 1.52s."""
    if ms is None:
        return "-"
    if ms < 1:
        return f"{ms * 1000:.0f}µs"
    if ms < 1000:
        return f"{ms:.3g}ms" if ms < 100 else f"{ms:.0f}ms"
    return f"{ms / 1000:.3g}s" if ms < 60_000 else f"{ms / 60_000:.1f}m"


def count(n: int | float) -> str:
    """A count with thousands kept short: 987, 12.3k, 4.5M."""
    if n < 1000:
        return f"{n:.0f}"
    if n < 1_000_000:
        return f"{n / 1000:.3g}k"
    return f"{n / 1_000_000:.3g}M"


def rate(per_s: float) -> str:
    """Requests per second, or per minute when under one a second."""
    return f"{per_s:.3g}/s" if per_s >= 1 else f"{per_s * 60:.3g}/m"


def percent(fraction: float) -> Text:
    """An error rate, red when anything failed."""
    text = f"{fraction * 100:.1f}%" if fraction else "0%"
    return Text(text, style="bold red" if fraction >= 0.05 else ("yellow" if fraction else "dim"))


def level(severity_text: str) -> Text:
    """A log level, coloured."""
    name = (severity_text or "-").upper()[:5]
    return Text(name, style=LEVEL_STYLES.get(name.rstrip("0123456789"), ""))


def status(code: str, http_status: int | None = None) -> Text:
    """A span status (with its HTTP status when it has one), red for errors."""
    label = str(http_status) if http_status else {"ERROR": "error", "OK": "ok"}.get(code, "-")
    return Text(
        label, style="bold red" if code == "ERROR" else ("yellow" if (http_status or 0) >= 400 else "")
    )


def short_id(trace_id: str | None) -> str:
    """The first 8 hex digits of an id: enough to tell traces apart on screen."""
    return trace_id[:8] if trace_id else ""


def one_line(text: str, width: int = 200) -> str:
    """The first line of `text`, cut to `width` characters."""
    first = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return first if len(first) <= width else first[: width - 1] + "…"


def money(usd: float | None) -> str:
    """US dollars with the digits that matter: $12.3k, $1,234.56, $0.50, $0.052, $0.0004; None is "unpriced"."""
    if usd is None:
        return "unpriced"
    if usd >= 10_000:
        return f"${count(usd)}"
    if usd == 0:
        return "$0"
    for floor, decimals in ((0.1, 2), (0.01, 3), (0.0001, 4)):
        if usd >= floor:
            return f"${usd:,.{decimals}f}"
    return "<$0.0001"


_DATED = re.compile(r"-(\d{8}|\d{4}-\d{2}-\d{2})$")


def short_model(model: str, width: int = 22) -> str:
    """A model name without its date suffix (claude-3-5-haiku-20241022 → claude-3-5-haiku), cut to `width`."""
    short = _DATED.sub("", model) or model
    return short if len(short) <= width else short[: width - 1] + "…"


def middle(text: str, width: int) -> str:
    """`text` cut to `width` in the middle, where paths differ least: /items/<int:id>/summary → /items…/summary."""
    if len(text) <= width:
        return text
    tail = (width - 1) * 3 // 5
    return text[: width - 1 - tail] + "…" + text[len(text) - tail :]
